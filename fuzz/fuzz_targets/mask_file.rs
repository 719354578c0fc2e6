//! A mask file read by `prunelab_prune::file::load_masks` for a small model (a Linear, a Conv1D,
//! a LayerNorm and an Embedding).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use prunelab_models::HfModule;
use prunelab_prune::file::load_masks;
use prunelab_stats::{NamedTensor, Role};

fn tensor(key: &str, module: HfModule, role: Role, shape: &[usize]) -> NamedTensor {
    NamedTensor {
        path: key.replace(".weight", ".w"),
        key: key.into(),
        module,
        layer: Some(0),
        role,
        shape: shape.to_vec(),
        values: vec![0.5; shape.iter().product()],
    }
}

fuzz_target!(|data: &[u8]| {
    let model = [
        tensor("h.0.q.weight", HfModule::Linear, Role::AttnQuery, &[3, 2]),
        tensor("h.0.c_fc.weight", HfModule::Conv1D, Role::MlpIn, &[2, 4]),
        tensor("h.0.ln.weight", HfModule::LayerNorm, Role::Norm, &[3]),
        tensor("wte.weight", HfModule::Embedding, Role::Embedding, &[5, 2]),
    ];
    let path = common::write("masks.safetensors", data);
    match load_masks(&path, &model) {
        Ok(set) => {
            for mask in &set.masks {
                let t = model.iter().find(|t| t.key == mask.key).expect("a mask of a model tensor");
                assert_eq!(mask.shape, t.shape);
                assert_eq!(mask.keep.len(), t.values.len());
            }
        }
        Err(e) => common::assert_names(&e.to_string(), "masks.safetensors"),
    }
});
