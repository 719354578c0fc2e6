//! The per-tensor step: Burn's AdamW arithmetic one parameter at a time, with the global
//! gradient norm summed tensor by tensor and the clipping coefficient and held masks folded into
//! each parameter's update (one fused kernel per parameter on GPU backends with fusion).

use std::collections::{HashMap, HashSet};

use burn::module::{AutodiffModule, ModuleMapper, Param, ParamId};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::record::AdaptorRecord;
use burn::optim::{AdamW, AdamWConfig, GradientsParams, Optimizer, SimpleOptimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use prunelab_models::Classifier;
use prunelab_prune::DeviceMasks;

use super::ParamEntry;

/// The global L2 norm of all gradients (each masked by `masks` first, when given) and torch's
/// `clip_grad_norm_` coefficient for it, `max_norm / (norm + 1e-6)` clamped to at most 1, both
/// as `[1]` device tensors: no host round trip per step. [`TrainerAdamW::step`] applies the
/// coefficient.
///
/// Each gradient's sum of squares is two `sum_dim` reductions, over its last axis and then over
/// the row sums (one `sum_dim` over a flattened 38.6M-value gradient runs in one thread block:
/// 8 ms with autotuning, 2 s a step without; see `bench/NOTES.md`), and the partial sums are
/// added only after all of them are queued, so that the additions of `[1]` tensors sit next to
/// each other and fuse, instead of one addition kernel per parameter between the reductions.
pub(crate) fn clip_coefficient<B: AutodiffBackend>(
    grads: &GradientsParams,
    entries: &[ParamEntry],
    masks: Option<&DeviceMasks<B::InnerBackend>>,
    max_norm: f64,
    device: &B::Device,
) -> (Tensor<B::InnerBackend, 1>, Tensor<B::InnerBackend, 1>) {
    fn squares<B: Backend, const D: usize>(
        g: Tensor<B, D>,
        e: &ParamEntry,
        masks: Option<&DeviceMasks<B>>,
    ) -> Tensor<B, 1> {
        let shape: [usize; D] = g.dims();
        let g = match masks.and_then(|m| m.get::<D>(&e.path, shape)) {
            Some(m) => g * m,
            None => g,
        };
        // Over the last axis in the gradient's own shape (a reshape of the gradient could copy
        // it: Burn's CPU backend copies a non-contiguous array element by element), then over
        // the row sums.
        let per_row = g.square().sum_dim(D - 1);
        let rows = shape[..D - 1].iter().product::<usize>();
        if D == 1 { per_row.reshape([1]) } else { per_row.reshape([rows]).sum_dim(0) }
    }
    let parts: Vec<Tensor<B::InnerBackend, 1>> = entries
        .iter()
        .filter_map(|e| match e.shape.len() {
            1 => grads.get::<B::InnerBackend, 1>(e.id).map(|g| squares(g, e, masks)),
            2 => grads.get::<B::InnerBackend, 2>(e.id).map(|g| squares(g, e, masks)),
            3 => grads.get::<B::InnerBackend, 3>(e.id).map(|g| squares(g, e, masks)),
            _ => None,
        })
        .collect();
    let sum_sq = parts.into_iter().reduce(|a, b| a + b).unwrap_or_else(|| Tensor::zeros([1], device));
    let norm = sum_sq.sqrt();
    let coef = (norm.clone().add_scalar(1e-6).recip() * max_norm).clamp_max(1.0);
    (norm, coef)
}

/// AdamW over transformers' Trainer's two parameter groups (weight decay on the parameters
/// [`decays`] selects, none on the others), with the step's gradient clipping and held pruning
/// masks folded into each parameter's update: the gradient AdamW sees is `(g * mask) * clip`,
/// and the updated parameter is multiplied by its mask again. Per parameter this is one chain of
/// element-wise operations that Burn's kernel fusion compiles into one kernel, where separate
/// passes (mask the gradients, scale them, step, re-apply the masks) launch one kernel each per
/// parameter tensor. The arithmetic is the same operations in the same order as those passes.
///
/// The state of each group is a map from parameter id to Burn's AdamW state
/// ([`Optimizer::to_record`]'s type for Burn's own `AdamW`), so checkpoints keep their format.
#[derive(Clone)]
pub(crate) struct TrainerAdamW<B: AutodiffBackend> {
    decay: AdamW,
    plain: AdamW,
    states: HashMap<ParamId, AdaptorRecord<AdamW, B>>,
}

/// One group's optimizer state, as saved in checkpoints: the record type of Burn's own AdamW
/// optimizer (a map from parameter id to [`AdaptorRecord`]).
pub(crate) type GroupRecord<B> = <OptimizerAdaptor<AdamW, Classifier<B>, B> as Optimizer<Classifier<B>, B>>::Record;

/// What [`TrainerAdamW::step`] multiplies into the gradients and parameters.
pub(crate) struct StepScale<'a, B: Backend> {
    /// The clipping coefficient from [`clip_coefficient`], `[1]`.
    pub clip: Tensor<B, 1>,
    /// Held pruning masks: pruned weights get no gradient and stay exactly 0.
    pub masks: Option<&'a DeviceMasks<B>>,
}

impl<B: AutodiffBackend> TrainerAdamW<B> {
    /// AdamW with the given betas and epsilon; `weight_decay` applies to the decayed group.
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: f64) -> Self {
        let config = |wd: f64| {
            AdamWConfig::new()
                .with_beta_1(beta_1)
                .with_beta_2(beta_2)
                .with_epsilon(epsilon)
                .with_weight_decay(wd as f32)
                .build()
        };
        Self { decay: config(weight_decay), plain: config(0.0), states: HashMap::new() }
    }

    /// One update of every parameter of `module` that has a gradient in `grads`.
    pub fn step<M: AutodiffModule<B>>(
        &mut self,
        lr: f64,
        module: M,
        grads: GradientsParams,
        entries: &[ParamEntry],
        scale: &StepScale<'_, B::InnerBackend>,
    ) -> M {
        let entries = entries.iter().map(|e| (e.id, e)).collect();
        module.map(&mut StepMapper { optim: self, lr, grads, entries, scale })
    }

    /// The state of the decayed (`true`) or the plain group.
    pub fn group_record(&self, entries: &[ParamEntry], decayed: bool) -> GroupRecord<B> {
        let group: HashSet<ParamId> = entries.iter().filter(|e| e.decay == decayed).map(|e| e.id).collect();
        self.states.iter().filter(|(id, _)| group.contains(id)).map(|(id, s)| (*id, s.clone())).collect()
    }

    /// Add a group's saved state.
    pub fn load_group_record(&mut self, record: GroupRecord<B>) {
        self.states.extend(record);
    }
}

struct StepMapper<'a, 'm, B: AutodiffBackend> {
    optim: &'a mut TrainerAdamW<B>,
    lr: f64,
    grads: GradientsParams,
    entries: HashMap<ParamId, &'a ParamEntry>,
    scale: &'a StepScale<'m, B::InnerBackend>,
}

impl<B: AutodiffBackend> ModuleMapper<B> for StepMapper<'_, '_, B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<B::InnerBackend, D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let entry = self.entries.get(&id);
        let shape: [usize; D] = tensor.dims();
        let mask = match (self.scale.masks, entry) {
            (Some(masks), Some(e)) => masks.get::<D>(&e.path, shape),
            _ => None,
        };
        let grad = match &mask {
            Some(m) => grad * m.clone(),
            None => grad,
        };
        let grad = grad * self.scale.clip.clone().reshape([1; D]);
        let require_grad = tensor.is_require_grad();
        let device = tensor.device();
        let state = self
            .optim
            .states
            .remove(&id)
            .map(|s| <AdamW as SimpleOptimizer<B::InnerBackend>>::to_device(s.into_state::<D>(), &device));
        let optimizer = if entry.is_none_or(|e| e.decay) { &self.optim.decay } else { &self.optim.plain };
        let (updated, state) = optimizer.step(self.lr, tensor.inner(), grad, state);
        if let Some(state) = state {
            self.optim.states.insert(id, AdaptorRecord::from_state(state));
        }
        let updated = match mask {
            Some(m) => updated * m,
            None => updated,
        };
        let mut tensor = Tensor::from_inner(updated);
        if require_grad {
            tensor = tensor.require_grad();
        }
        Param::from_mapped_value(id, tensor, mapper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::param_entries;
    use crate::optim::testing::{B, grads_on_batch, tiny_grads, tiny_model};
    use burn::backend::NdArray;

    fn host(grads: &GradientsParams, entries: &[ParamEntry]) -> Vec<Vec<f32>> {
        entries
            .iter()
            .filter_map(|e| match e.shape.len() {
                1 => grads.get::<NdArray, 1>(e.id).map(|g| g.into_data().to_vec::<f32>().unwrap()),
                2 => grads.get::<NdArray, 2>(e.id).map(|g| g.reshape([-1]).into_data().to_vec::<f32>().unwrap()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn clip_coefficient_is_torchs() {
        let (grads, entries) = tiny_grads();
        let norm: f64 =
            host(&grads, &entries).iter().flatten().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt();
        assert!(norm > 0.0);
        let (reported, coef) = clip_coefficient::<B>(&grads, &entries, None, norm / 4.0, &Default::default());
        let reported = f64::from(reported.into_scalar());
        assert!((reported - norm).abs() <= 1e-5 * norm, "norm {reported} vs {norm}");
        let expected = (norm / 4.0) / (norm + 1e-6);
        assert!((f64::from(coef.into_scalar()) - expected).abs() <= 1e-6, "coefficient");
        let (_, coef) = clip_coefficient::<B>(&grads, &entries, None, 1e9, &Default::default());
        assert_eq!(coef.into_scalar(), 1.0, "a small norm is left as it is");
    }

    /// Two steps of [`TrainerAdamW`] with masks and clipping against the passes it replaces:
    /// masked gradients, gradients times the coefficient, Burn's `AdamW` optimizer on each group,
    /// masks re-applied to the parameters. Same operations in the same order: equal bit for bit.
    #[test]
    fn folded_step_equals_separate_passes() {
        use burn::optim::Optimizer;
        use prunelab_prune::{PruneSpec, Scheme, Scope, ScopeKind, compute_masks};
        use prunelab_stats::weights;

        let device = Default::default();
        let model = tiny_model();
        let spec = PruneSpec { scheme: Scheme::GlobalL1, amount: 0.5, seed: 0 };
        let masks =
            compute_masks(&weights(&model, model.naming().as_ref()), &Scope::new(ScopeKind::Default), &spec).unwrap();
        let inner = DeviceMasks::<NdArray>::new(&masks, &device);
        let outer = DeviceMasks::<B>::new(&masks, &device);
        let entries = param_entries(&model, model.naming().as_ref());
        let config = |wd: f32| AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(wd);

        let mut folded = outer.apply(model.clone());
        let mut optim = TrainerAdamW::<B>::new(0.9, 0.999, 1e-8, 0.01);
        let mut separate = outer.apply(model);
        let (mut decay, mut plain) = (config(0.01).init::<B, Classifier<B>>(), config(0.0).init::<B, Classifier<B>>());
        for lr in [1e-3, 5e-4] {
            let grads = grads_on_batch(&folded);
            let (_, clip) = clip_coefficient::<B>(&grads, &entries, Some(&inner), 0.5, &device);
            folded = optim.step(lr, folded, grads, &entries, &StepScale { clip, masks: Some(&inner) });

            let mut grads = grads_on_batch(&separate);
            let (_, clip) = clip_coefficient::<B>(&grads, &entries, Some(&inner), 0.5, &device);
            for e in &entries {
                if e.shape.len() == 2 {
                    let g = grads.remove::<NdArray, 2>(e.id).unwrap();
                    let g = match inner.get::<2>(&e.path, [e.shape[0], e.shape[1]]) {
                        Some(m) => g * m,
                        None => g,
                    };
                    grads.register::<NdArray, 2>(e.id, g * clip.clone().reshape([1, 1]));
                } else {
                    let g = grads.remove::<NdArray, 1>(e.id).unwrap();
                    grads.register::<NdArray, 1>(e.id, g * clip.clone());
                }
            }
            let mut other = GradientsParams::new();
            for e in entries.iter().filter(|e| !e.decay) {
                other.register::<NdArray, 1>(e.id, grads.remove::<NdArray, 1>(e.id).unwrap());
            }
            separate = decay.step(lr, separate, grads);
            separate = plain.step(lr, separate, other);
            separate = outer.apply(separate);
        }
        let (a, b) = (weights(&folded, folded.naming().as_ref()), weights(&separate, separate.naming().as_ref()));
        assert_eq!(a.len(), entries.len());
        for m in &masks.masks {
            let t = a.iter().find(|t| t.path == m.path).expect("a masked parameter");
            assert!(m.keep.iter().zip(&t.values).all(|(keep, v)| *keep || *v == 0.0), "{} regrew", m.path);
        }
        for (x, y) in a.iter().zip(&b) {
            let d = x.values.iter().zip(&y.values).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max);
            assert!(x.values == y.values, "{} differs by up to {d}", x.path);
        }
        assert_eq!(optim.group_record(&entries, true).len() + optim.group_record(&entries, false).len(), entries.len());
    }
}
