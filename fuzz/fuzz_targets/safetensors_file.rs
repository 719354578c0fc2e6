//! A `model.safetensors` read by `Checkpoint::open`, every tensor then taken as f32.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use prunelab_models::Checkpoint;

fuzz_target!(|data: &[u8]| {
    let path = common::write("model.safetensors", data);
    match Checkpoint::open(&path) {
        Ok(mut ckpt) => check(&mut ckpt),
        Err(e) => common::assert_names(&e.to_string(), "model.safetensors"),
    }
});

fn check(ckpt: &mut Checkpoint) {
    let names: Vec<String> = ckpt.names().map(str::to_owned).collect();
    let _ = ckpt.float_dtype();
    let mut refused = Vec::new();
    for name in &names {
        let shape = ckpt.shape(name).expect("listed").to_vec();
        match ckpt.take(name) {
            Ok(Some(data)) => {
                assert_eq!(data.shape.to_vec(), shape);
                assert_eq!(data.num_elements(), shape.iter().product::<usize>());
            }
            Ok(None) => panic!("{name} is listed but cannot be taken"),
            Err(e) => {
                common::assert_names(&e.to_string(), "model.safetensors");
                refused.push(name.clone());
            }
        }
    }
    assert_eq!(ckpt.untaken(), refused);
}
