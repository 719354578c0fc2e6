//! A `model.safetensors.index.json` read by `Checkpoint::open`, next to two valid shards
//! (`model-00001-of-00002.safetensors`: `a`, `b`; `model-00002-of-00002.safetensors`: `c`).
#![no_main]

mod common;

use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use prunelab_models::Checkpoint;
use safetensors::{Dtype, tensor::TensorView};

fn shard(name: &str, tensors: &[(&str, &[usize])]) {
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|(_, s)| vec![0u8; 4 * s.iter().product::<usize>()]).collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((n, s), b)| (n.to_string(), TensorView::new(Dtype::F32, s.to_vec(), b).unwrap()));
    common::write(name, &safetensors::serialize(views, None).unwrap());
}

fuzz_target!(|data: &[u8]| {
    static SHARDS: Once = Once::new();
    SHARDS.call_once(|| {
        shard("model-00001-of-00002.safetensors", &[("a", &[2, 3]), ("b", &[3])]);
        shard("model-00002-of-00002.safetensors", &[("c", &[1])]);
    });
    let path = common::write("model.safetensors.index.json", data);
    match Checkpoint::open(&path) {
        Ok(mut ckpt) => {
            let names: Vec<String> = ckpt.names().map(str::to_owned).collect();
            for name in &names {
                assert!(ckpt.take(name).expect("the shards are valid").is_some());
            }
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains("model.safetensors.index.json") || msg.contains("-of-00002"), "{msg}");
        }
    }
});
