//! What transformers' Trainer does around AdamW that Burn's optimizer does not: two parameter
//! groups (no weight decay on biases and norms, by the Trainer's name rules), gradient clipping
//! by the global norm over all parameters (Burn clips each tensor separately), gradients of
//! pruned weights zeroed, and the linear warm-up/decay schedule.
//!
//! Two implementations of one step, chosen by [`OptimizerKind`]:
//! - [`flat`] (the default): parameters, gradients, moments and masks in one flat buffer each,
//!   so the global norm, clipping, masking, AdamW over both groups and re-masking are a handful
//!   of whole-buffer operations, however many tensors the model has (the module's parameters
//!   are views into the flat buffer);
//!   (on Burn's CPU backend, with the `ndarray` feature, the element-wise part is one threaded
//!   pass: `cpu`; on CUDA the gradients' copy into the flat buffer can be one operation of
//!   `prunelab-cublas`'s, through the [`gather`] hook, and the global norm's sum of squares one
//!   of its kernels, through the [`squares`] hook);
//! - [`per_tensor`]: Burn's AdamW arithmetic one parameter at a time with the clipping and the
//!   masks folded in (the reference the flat step is tested against, and a benchmark column).
//!
//! Both keep their state as Burn's own AdamW record per parameter, so checkpoints are the same.

use burn::module::{Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use prunelab_models::info::{ParamFn, for_each_param};
use prunelab_models::{Classifier, HfModule, HfNaming};
use prunelab_prune::DeviceMasks;

mod cpu;
pub(crate) mod flat;
pub mod gather;
pub(crate) mod per_tensor;
pub mod squares;

pub(crate) use per_tensor::GroupRecord;

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
        fn param<const D: usize>(&mut self, path: &str, owner: HfModule, param: &Param<Tensor<B, D>>) {
            let hf = self.0.hf_param(path, owner);
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

/// transformers' `get_linear_schedule_with_warmup`: 0 → `lr` over `warmup` steps, then linearly
/// to 0 at `total` steps. `step` counts from 0 (the lr of the first update).
pub fn linear_schedule(lr: f64, step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        lr * step as f64 / warmup.max(1) as f64
    } else {
        lr * (total.saturating_sub(step)) as f64 / total.saturating_sub(warmup).max(1) as f64
    }
}

/// Which implementation of the optimizer step a run uses (the same arithmetic; see the module
/// documentation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OptimizerKind {
    /// Flat buffers: a handful of whole-buffer operations per step.
    #[default]
    Flat,
    /// One fused update per parameter tensor (the reference implementation).
    PerTensor,
}

/// What one step needs besides the gradients.
pub(crate) struct StepSettings<'a, B: Backend> {
    /// The learning rate of this step.
    pub lr: f64,
    /// Global gradient-norm clip.
    pub max_norm: f64,
    /// Held masks: pruned weights get no gradient and stay exactly 0.
    pub masks: Option<&'a DeviceMasks<B>>,
}

/// AdamW as transformers' Trainer runs it, by either implementation.
pub(crate) enum TrainerOptimizer<B: AutodiffBackend> {
    Flat(flat::FlatAdamW<B>),
    PerTensor(per_tensor::TrainerAdamW<B>),
}

impl<B: AutodiffBackend> TrainerOptimizer<B> {
    /// AdamW of `config`'s betas, epsilon and weight decay.
    pub fn new(kind: OptimizerKind, config: &prunelab_record::TrainConfig) -> Self {
        let (b1, b2, eps, wd) = (config.adam_beta1, config.adam_beta2, config.adam_epsilon, config.weight_decay);
        match kind {
            OptimizerKind::Flat => TrainerOptimizer::Flat(flat::FlatAdamW::new(b1, b2, eps, wd)),
            OptimizerKind::PerTensor => TrainerOptimizer::PerTensor(per_tensor::TrainerAdamW::new(b1, b2, eps, wd)),
        }
    }

    /// One update of every parameter of `model` that has a gradient in `grads`, after clipping
    /// the gradients to the global norm `settings.max_norm` (with held masks: of the masked
    /// gradients) and zeroing pruned weights' gradients; held masks are re-applied after.
    pub fn step(
        &mut self,
        model: Classifier<B>,
        grads: GradientsParams,
        entries: &[ParamEntry],
        settings: &StepSettings<'_, B::InnerBackend>,
        device: &B::Device,
    ) -> Classifier<B> {
        match self {
            TrainerOptimizer::Flat(flat) => flat.step(model, grads, entries, settings, device),
            TrainerOptimizer::PerTensor(optim) => {
                let (_, clip) =
                    per_tensor::clip_coefficient::<B>(&grads, entries, settings.masks, settings.max_norm, device);
                let scale = per_tensor::StepScale { clip, masks: settings.masks };
                optim.step(settings.lr, model, grads, entries, &scale)
            }
        }
    }

    /// The model's parameters or the held masks were changed outside a step.
    pub fn reset(&mut self) {
        if let TrainerOptimizer::Flat(flat) = self {
            flat.reset();
        }
    }

    /// The state of the decayed (`true`) or the plain group.
    pub fn group_record(&self, entries: &[ParamEntry], decayed: bool) -> GroupRecord<B> {
        match self {
            TrainerOptimizer::Flat(flat) => flat.group_record(entries, decayed),
            TrainerOptimizer::PerTensor(optim) => optim.group_record(entries, decayed),
        }
    }

    /// Add a group's saved state.
    pub fn load_group_record(&mut self, record: GroupRecord<B>) {
        match self {
            TrainerOptimizer::Flat(flat) => flat.load_group_record(record),
            TrainerOptimizer::PerTensor(optim) => optim.load_group_record(record),
        }
    }
}

/// Fixtures of the optimizer tests: the tiny BERT and its gradients on one batch.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use burn::backend::{Autodiff, NdArray};
    use prunelab_models::{ModelFiles, ModelInput, load_classifier};

    pub(crate) type B = Autodiff<NdArray>;

    /// The tiny BERT fixture as a two-label classifier.
    pub(crate) fn tiny_model() -> Classifier<B> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../prunelab-models/tests/fixtures/bert-tiny");
        let files = ModelFiles {
            name: "bert-tiny".into(),
            config: dir.join("config.json"),
            weights: dir.join("model.safetensors"),
            tokenizer: None,
        };
        load_classifier::<B>(&files, 2, &Default::default()).unwrap().model
    }

    /// The backend's random generator is process-wide: tests that seed it and draw dropout masks
    /// take turns.
    pub(crate) static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// Gradients of the sum of the squared logits of `model` on one fixed batch, with the same
    /// dropout draws every time.
    pub(crate) fn grads_on_batch(model: &Classifier<B>) -> GradientsParams {
        let _turn = RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let device = Default::default();
        B::seed(&device, 7);
        let ids = Tensor::<B, 2, Int>::from_ints([[2, 7, 11, 12, 3], [2, 8, 13, 3, 0]], &device);
        let mask = Tensor::<B, 2, Int>::from_ints([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]], &device);
        let logits = model.forward(ModelInput { input_ids: ids, attention_mask: mask, token_type_ids: None });
        GradientsParams::from_grads((logits.clone() * logits).sum().backward(), model)
    }

    /// Gradients of the tiny BERT fixture on one batch, with their parameter entries.
    pub(crate) fn tiny_grads() -> (GradientsParams, Vec<ParamEntry>) {
        let model = tiny_model();
        (grads_on_batch(&model), param_entries(&model, model.naming().as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
