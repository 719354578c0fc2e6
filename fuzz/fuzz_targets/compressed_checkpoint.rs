//! A compressed checkpoint (`model.pruned.safetensors`) read back by
//! `prunelab_prune::export::read_compressed`.
//!
//! Input starting with a byte below 0x80 is the file as it is (a safetensors header length is
//! little-endian, so real files start low). Any other input builds a file whose metadata
//! `shapes` and tensors are drawn from it: the shapes are JSON inside a JSON string, which byte
//! mutation rarely keeps valid.
#![no_main]

mod common;

use std::collections::{BTreeMap, HashMap};

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use prunelab_prune::export::{COMPRESSED_FORMAT, read_compressed};
use safetensors::{Dtype, tensor::TensorView};

fn dim(u: &mut Unstructured) -> Result<usize> {
    Ok(match u.int_in_range(0..=2)? {
        0 => u.int_in_range(0..=9)?,
        1 => 1usize << u.int_in_range(0..=63)?,
        _ => u.arbitrary()?,
    })
}

fn structured(data: &[u8]) -> Result<Vec<u8>> {
    let mut u = Unstructured::new(data);
    let mut shapes = BTreeMap::new();
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for key in ["a", "b"] {
        let shape = (0..u.int_in_range(0..=3)?).map(|_| dim(&mut u)).collect::<Result<Vec<_>>>()?;
        shapes.insert(key, shape);
        let len = |u: &mut Unstructured| u.int_in_range(0usize..=16);
        match u.int_in_range(0..=2)? {
            0 => {
                let n = len(&mut u)?;
                tensors.push((key.into(), Dtype::F32, vec![n], vec![0; 4 * n]));
            }
            1 => {
                let (bits, values) = (len(&mut u)?, len(&mut u)?);
                let mask = u.bytes(bits)?.to_vec();
                tensors.push((format!("{key}.mask"), Dtype::U8, vec![bits], mask));
                let dtype = if u.arbitrary()? { Dtype::F32 } else { Dtype::U8 };
                let size = if dtype == Dtype::F32 { 4 } else { 1 };
                tensors.push((format!("{key}.values"), dtype, vec![values], vec![0; size * values]));
            }
            _ => {}
        }
    }
    let views = tensors.iter().map(|(k, d, s, b)| (k.clone(), TensorView::new(*d, s.clone(), b).expect("sizes agree")));
    let meta = HashMap::from([
        ("format".to_owned(), COMPRESSED_FORMAT.to_owned()),
        ("shapes".to_owned(), serde_json::to_string(&shapes).expect("a map of lists")),
    ]);
    Ok(safetensors::serialize(views, Some(meta)).expect("valid views"))
}

fuzz_target!(|data: &[u8]| {
    let bytes = match data.first() {
        Some(&b) if b >= 0x80 => match structured(&data[1..]) {
            Ok(bytes) => bytes,
            Err(_) => return,
        },
        _ => data.to_vec(),
    };
    let path = common::write("model.pruned.safetensors", &bytes);
    match read_compressed(&path) {
        Ok(tensors) => {
            for (key, (shape, values)) in &tensors {
                let n = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
                assert_eq!(Some(values.len()), n, "{key}");
            }
        }
        Err(e) => common::assert_names(&e.to_string(), "model.pruned.safetensors"),
    }
});
