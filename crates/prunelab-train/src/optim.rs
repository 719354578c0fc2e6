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

/// Scale all gradients so their global L2 norm is at most `max_norm`, as torch's
/// `clip_grad_norm_` does: coefficient `max_norm / (norm + 1e-6)` clamped to at most 1, applied
/// to every gradient (a multiplication by exactly 1 when the norm is small). Everything stays on
/// the device: no host round trip per step. Returns the norm before clipping, as a `[1]` tensor.
pub(crate) fn clip_global_norm<B: AutodiffBackend>(
    grads: &mut GradientsParams,
    entries: &[ParamEntry],
    max_norm: f64,
    device: &B::Device,
) -> Tensor<B::InnerBackend, 1> {
    let mut sum_sq = Tensor::<B::InnerBackend, 1>::zeros([1], device);
    for e in entries {
        let part = match e.shape.len() {
            1 => grads.get::<B::InnerBackend, 1>(e.id).map(|g| g.powi_scalar(2).sum()),
            2 => grads.get::<B::InnerBackend, 2>(e.id).map(|g| g.powi_scalar(2).sum()),
            3 => grads.get::<B::InnerBackend, 3>(e.id).map(|g| g.powi_scalar(2).sum()),
            _ => None,
        };
        if let Some(part) = part {
            sum_sq = sum_sq + part;
        }
    }
    let norm = sum_sq.sqrt();
    let coef = (norm.clone().add_scalar(1e-6).recip() * max_norm).clamp_max(1.0);
    map_grads::<B>(
        grads,
        entries,
        |_, g| g * coef.clone(),
        |_, g| g * coef.clone().unsqueeze::<2>(),
        |_, g| g * coef.clone().unsqueeze::<3>(),
    );
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
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use prunelab_models::{ModelFiles, ModelInput, load_classifier};

    type B = Autodiff<NdArray>;

    /// Gradients of the tiny BERT fixture on one batch, with their parameter entries.
    fn tiny_grads() -> (GradientsParams, Vec<ParamEntry>) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../prunelab-models/tests/fixtures/bert-tiny");
        let files = ModelFiles {
            name: "bert-tiny".into(),
            config: dir.join("config.json"),
            weights: dir.join("model.safetensors"),
            tokenizer: None,
        };
        let device = Default::default();
        let model = load_classifier::<B>(&files, 2, &device).unwrap().model;
        let ids = Tensor::<B, 2, Int>::from_ints([[2, 7, 11, 12, 3], [2, 8, 13, 3, 0]], &device);
        let mask = Tensor::<B, 2, Int>::from_ints([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]], &device);
        let logits = model.forward(ModelInput { input_ids: ids, attention_mask: mask, token_type_ids: None });
        let loss = (logits.clone() * logits).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let entries = param_entries(&model, model.naming().as_ref());
        (grads, entries)
    }

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
    fn clipping_scales_every_gradient_by_torchs_coefficient() {
        let (mut grads, entries) = tiny_grads();
        let before = host(&grads, &entries);
        let norm: f64 = before.iter().flatten().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt();
        assert!(norm > 0.0);
        let reported = clip_global_norm::<B>(&mut grads, &entries, norm / 4.0, &Default::default());
        let reported = f64::from(reported.into_scalar());
        assert!((reported - norm).abs() <= 1e-4 * norm, "norm {reported} vs {norm}");
        let after = host(&grads, &entries);
        let coef = (norm / 4.0) / (norm + 1e-6);
        for (b, a) in before.iter().flatten().zip(after.iter().flatten()) {
            assert!((f64::from(*a) - coef * f64::from(*b)).abs() <= 1e-5 * (1.0 + f64::from(b.abs())), "{a} vs {b}");
        }
        let clipped: f64 = after.iter().flatten().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt();
        assert!((clipped - norm / 4.0).abs() <= 1e-4 * norm, "clipped norm {clipped}");
    }

    #[test]
    fn small_gradients_are_left_exactly_as_they_are() {
        let (mut grads, entries) = tiny_grads();
        let before = host(&grads, &entries);
        let _ = clip_global_norm::<B>(&mut grads, &entries, 1e9, &Default::default());
        assert_eq!(host(&grads, &entries), before, "a coefficient clamped to 1 changes nothing");
    }

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
