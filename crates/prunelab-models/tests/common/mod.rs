//! Helpers shared by the integration tests: reading reference tensors and comparing.
#![allow(dead_code, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use burn::prelude::*;
use burn::tensor::TensorData;
use prunelab_models::info::PathTracker;
use safetensors::{Dtype, SafeTensors};

pub type B = NdArray;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `../shared` beside the repository, when present (developers and CI only).
pub fn shared() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    dir.is_dir().then_some(dir)
}

/// Every tensor of a safetensors file as `TensorData` (f32 or i64).
pub fn read_tensors(path: &Path) -> BTreeMap<String, TensorData> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            let shape = view.shape().to_vec();
            let data = match view.dtype() {
                Dtype::F32 => TensorData::new(
                    view.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect::<Vec<_>>(),
                    shape,
                ),
                Dtype::I64 => TensorData::new(
                    view.data().chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect::<Vec<_>>(),
                    shape,
                ),
                Dtype::U8 => TensorData::new(view.data().to_vec(), shape),
                other => panic!("{name}: unexpected dtype {other:?}"),
            };
            (name, data)
        })
        .collect()
}

pub fn int2(data: &TensorData) -> Tensor<B, 2, Int> {
    Tensor::from_data(data.clone(), &Default::default())
}

/// Max |a - b| over the positions where `keep` (per `[batch, seq]` position) is true, checked
/// against `tol`; returns the max.
pub fn assert_close(name: &str, actual: TensorData, expected: &TensorData, keep: Option<&[bool]>, tol: f32) -> f32 {
    assert_eq!(actual.shape, expected.shape, "{name}: shape");
    let a = actual.convert::<f32>().to_vec::<f32>().unwrap();
    let e = expected.clone().convert::<f32>().to_vec::<f32>().unwrap();
    let row = a.len() / keep.map_or(a.len(), <[bool]>::len).max(1);
    let mut max = 0f32;
    for (i, (x, y)) in a.iter().zip(&e).enumerate() {
        if keep.is_some_and(|k| !k[i / row]) {
            continue;
        }
        max = max.max((x - y).abs());
    }
    eprintln!("parity {name}: max |Δ| = {max:.3e}");
    assert!(max <= tol, "{name}: max |Δ| = {max} > {tol}");
    max
}

/// The float parameters of a module, by Burn path (never empty: a visitor that sees nothing
/// would make every comparison vacuous).
pub fn params<M: burn::module::Module<B>>(model: &M) -> BTreeMap<String, Vec<f32>> {
    struct Collect(PathTracker, BTreeMap<String, Vec<f32>>);
    impl burn::module::ModuleVisitor<B> for Collect {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.0.enter(name, container_type);
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.0.exit();
        }
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
            self.1.insert(self.0.path(), param.val().to_data().to_vec::<f32>().unwrap());
        }
    }
    let mut c = Collect(PathTracker::default(), BTreeMap::new());
    model.visit(&mut c);
    assert!(c.1.len() > 10, "the visitor saw {} parameters", c.1.len());
    c.1
}
