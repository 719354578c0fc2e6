//! Applying masks to a model: once after pruning, and after every optimizer step while
//! fine-tuning, so pruned weights stay exactly zero.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::TensorData;
use prunelab_models::info::PathTracker;

use crate::masks::MaskSet;

/// Masks as tensors on a device, ready to multiply into parameters (built once, used every step).
#[derive(Debug, Clone)]
pub struct DeviceMasks<B: Backend> {
    by_path: HashMap<String, Tensor<B, 1>>,
}

impl<B: Backend> DeviceMasks<B> {
    /// Upload `masks` to `device`.
    pub fn new(masks: &MaskSet, device: &B::Device) -> Self {
        let by_path = masks
            .masks
            .iter()
            .map(|m| {
                let values: Vec<f32> = m.keep.iter().map(|k| if *k { 1.0 } else { 0.0 }).collect();
                let len = values.len();
                (m.path.clone(), Tensor::from_data(TensorData::new(values, [len]), device))
            })
            .collect();
        Self { by_path }
    }

    /// Number of masked tensors.
    pub fn len(&self) -> usize {
        self.by_path.len()
    }

    /// Whether no tensor is masked.
    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }

    /// Multiply every masked parameter of `model` by its mask (pruned weights become 0; the
    /// parameters keep their ids, so optimizer state stays attached).
    pub fn apply<M: Module<B>>(&self, model: M) -> M {
        let mut mapper = ApplyMapper { masks: self, path: PathTracker::default(), applied: 0 };
        let model = model.map(&mut mapper);
        debug_assert_eq!(mapper.applied, self.by_path.len(), "every mask found its parameter");
        model
    }

    /// The mask of a parameter path, shaped like the parameter.
    pub fn get<const D: usize>(&self, path: &str, shape: [usize; D]) -> Option<Tensor<B, D>> {
        self.by_path.get(path).map(|m| m.clone().reshape(shape))
    }
}

struct ApplyMapper<'a, B: Backend> {
    masks: &'a DeviceMasks<B>,
    path: PathTracker,
    applied: usize,
}

impl<B: Backend> ModuleMapper<B> for ApplyMapper<'_, B> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let Some(mask) = self.masks.by_path.get(&self.path.path()) else { return param };
        self.applied += 1;
        param.map(|tensor| {
            let shape: [usize; D] = tensor.dims();
            let require_grad = tensor.is_require_grad();
            // Detach the product too: on an autodiff backend a parameter must be a leaf.
            (tensor.detach() * mask.clone().reshape(shape)).detach().set_require_grad(require_grad)
        })
    }
}
