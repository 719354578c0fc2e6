//! What transformers' Trainer does around AdamW that Burn's optimizer does not: two parameter
//! groups (no weight decay on biases and norms, by the Trainer's name rules), gradient clipping
//! by the global norm over all parameters (Burn clips each tensor separately), gradients of
//! pruned weights zeroed, and the linear warm-up/decay schedule.

use std::collections::HashSet;

use burn::module::{Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use prunelab_models::info::{ParamFn, for_each_param};
use prunelab_models::{HfModule, HfNaming};
use prunelab_prune::DeviceMasks;

/// A float parameter's id, Burn path and shape.
pub(crate) struct ParamEntry {
    pub id: ParamId,
    pub path: String,
    pub shape: Vec<usize>,
    pub decay: bool,
}

/// Every float parameter of `model`, with whether weight decay applies (see [`decays`]).
pub(crate) fn param_entries<B: Backend, M: burn::module::Module<B>>(
    model: &M,
    naming: &dyn HfNaming,
) -> Vec<ParamEntry> {
    struct Collect<'a>(&'a dyn HfNaming, Vec<ParamEntry>);
    impl<B: Backend> ParamFn<B> for Collect<'_> {
        fn param<const D: usize>(&mut self, path: &str, param: &Param<Tensor<B, D>>) {
            let hf = self.0.hf_param(path);
            let decay = decays(&hf.key, hf.module);
            self.1.push(ParamEntry { id: param.id, path: path.to_owned(), shape: param.lazy_shape().to_vec(), decay });
        }
    }
    let mut c = Collect(naming, Vec::new());
    for_each_param(model, &mut c);
    c.1
}

/// transformers' Trainer (`get_decay_parameter_names`): weight decay applies to every parameter
/// except those of LayerNorm modules and those whose lower-cased name contains `bias` (DeBERTa's
/// `q_bias`/`v_bias` too), `layernorm` or `rmsnorm`, or has a segment `norm` or `*_norm`.
pub(crate) fn decays(key: &str, module: HfModule) -> bool {
    let key = key.to_lowercase();
    let norm_segment = key.split('.').any(|s| s == "norm" || s.ends_with("_norm"));
    module != HfModule::LayerNorm
        && !key.contains("bias")
        && !key.contains("layernorm")
        && !key.contains("rmsnorm")
        && !norm_segment
}

fn with_grad<B: AutodiffBackend, const D: usize>(
    grads: &mut GradientsParams,
    id: ParamId,
    f: impl FnOnce(Tensor<B::InnerBackend, D>) -> Tensor<B::InnerBackend, D>,
) {
    if let Some(g) = grads.remove::<B::InnerBackend, D>(id) {
        grads.register::<B::InnerBackend, D>(id, f(g));
    }
}

/// Run `f` on the gradient of every parameter (dispatching on its rank: 1, 2, or 3 for
/// convolution weights).
fn map_grads<B: AutodiffBackend>(
    grads: &mut GradientsParams,
    entries: &[ParamEntry],
    mut f1: impl FnMut(&ParamEntry, Tensor<B::InnerBackend, 1>) -> Tensor<B::InnerBackend, 1>,
    mut f2: impl FnMut(&ParamEntry, Tensor<B::InnerBackend, 2>) -> Tensor<B::InnerBackend, 2>,
    mut f3: impl FnMut(&ParamEntry, Tensor<B::InnerBackend, 3>) -> Tensor<B::InnerBackend, 3>,
) {
    for e in entries {
        match e.shape.len() {
            1 => with_grad::<B, 1>(grads, e.id, |g| f1(e, g)),
            2 => with_grad::<B, 2>(grads, e.id, |g| f2(e, g)),
            3 => with_grad::<B, 3>(grads, e.id, |g| f3(e, g)),
            _ => {}
        }
    }
}

/// Zero the gradients of pruned weights.
pub(crate) fn mask_grads<B: AutodiffBackend>(
    grads: &mut GradientsParams,
    entries: &[ParamEntry],
    masks: &DeviceMasks<B::InnerBackend>,
) {
    map_grads::<B>(
        grads,
        entries,
        |e, g| match masks.get::<1>(&e.path, [e.shape[0]]) {
            Some(m) => g * m,
            None => g,
        },
        |e, g| match masks.get::<2>(&e.path, [e.shape[0], e.shape[1]]) {
            Some(m) => g * m,
            None => g,
        },
        |e, g| match masks.get::<3>(&e.path, [e.shape[0], e.shape[1], e.shape[2]]) {
            Some(m) => g * m,
            None => g,
        },
    );
}

/// Scale all gradients so their global L2 norm is at most `max_norm` (torch's
/// `clip_grad_norm_`, with its 1e-6 in the denominator); returns the norm before clipping.
pub(crate) fn clip_global_norm<B: AutodiffBackend>(
    grads: &mut GradientsParams,
    entries: &[ParamEntry],
    max_norm: f64,
) -> f64 {
    let mut sum_sq = 0f64;
    for e in entries {
        sum_sq += match e.shape.len() {
            1 => grads
                .get::<B::InnerBackend, 1>(e.id)
                .map_or(0.0, |g| g.powi_scalar(2).sum().into_scalar().elem::<f64>()),
            2 => grads
                .get::<B::InnerBackend, 2>(e.id)
                .map_or(0.0, |g| g.powi_scalar(2).sum().into_scalar().elem::<f64>()),
            3 => grads
                .get::<B::InnerBackend, 3>(e.id)
                .map_or(0.0, |g| g.powi_scalar(2).sum().into_scalar().elem::<f64>()),
            _ => 0.0,
        };
    }
    let norm = sum_sq.sqrt();
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        map_grads::<B>(grads, entries, |_, g| g * coef, |_, g| g * coef, |_, g| g * coef);
    }
    norm
}

/// Split gradients into the weight-decay group and the no-decay group.
pub(crate) fn split_decay<B: AutodiffBackend>(
    mut grads: GradientsParams,
    entries: &[ParamEntry],
) -> (GradientsParams, GradientsParams) {
    let no_decay: HashSet<ParamId> = entries.iter().filter(|e| !e.decay).map(|e| e.id).collect();
    let mut other = GradientsParams::new();
    for e in entries.iter().filter(|e| no_decay.contains(&e.id)) {
        match e.shape.len() {
            1 => {
                if let Some(g) = grads.remove::<B::InnerBackend, 1>(e.id) {
                    other.register::<B::InnerBackend, 1>(e.id, g);
                }
            }
            2 => {
                if let Some(g) = grads.remove::<B::InnerBackend, 2>(e.id) {
                    other.register::<B::InnerBackend, 2>(e.id, g);
                }
            }
            3 => {
                if let Some(g) = grads.remove::<B::InnerBackend, 3>(e.id) {
                    other.register::<B::InnerBackend, 3>(e.id, g);
                }
            }
            _ => {}
        }
    }
    (grads, other)
}

/// transformers' `get_linear_schedule_with_warmup`: 0 → `lr` over `warmup` steps, then linearly
/// to 0 at `total` steps. `step` counts from 0 (the lr of the first update).
pub fn linear_schedule(lr: f64, step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        lr * step as f64 / warmup.max(1) as f64
    } else {
        lr * (total.saturating_sub(step)) as f64 / total.saturating_sub(warmup).max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::{decays, linear_schedule};
    use prunelab_models::HfModule;

    #[test]
    fn no_decay_on_biases_and_norms_as_the_trainer() {
        assert!(decays("bert.encoder.layer.0.attention.self.query.weight", HfModule::Linear));
        assert!(!decays("bert.encoder.layer.0.attention.self.query.bias", HfModule::Linear));
        assert!(!decays("bert.embeddings.LayerNorm.weight", HfModule::LayerNorm));
        assert!(!decays("deberta.encoder.layer.0.attention.self.q_bias", HfModule::Parameter));
        assert!(decays("deberta.encoder.conv.conv.weight", HfModule::Convolution));
        assert!(!decays("model.layers.0.input_layernorm.weight", HfModule::Linear));
        assert!(!decays("model.norm.weight", HfModule::Linear));
        assert!(decays("transformer.h.0.mlp.c_fc.weight", HfModule::Conv1D));
    }

    #[test]
    fn schedule_matches_transformers() {
        // get_linear_schedule_with_warmup(num_warmup_steps=2, num_training_steps=10), base lr 1.
        let lrs: Vec<f64> = (0..10).map(|s| linear_schedule(1.0, s, 2, 10)).collect();
        assert_eq!(lrs, [0.0, 0.5, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125]);
        assert_eq!(linear_schedule(1.0, 0, 0, 4), 1.0, "no warm-up starts at the full rate");
    }
}
