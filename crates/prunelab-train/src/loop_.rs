//! The fine-tuning loop.

use std::time::Instant;

use burn::data::dataloader::batcher::Batcher;
use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use prunelab_glue::batcher::shuffled_batches;
use prunelab_glue::{Encoded, GlueBatch, GlueBatcher, GlueTask, Scores};
use prunelab_models::{Classifier, ModelInput};
use prunelab_prune::{DeviceMasks, MaskSet};

use crate::Reporter;
use crate::checkpoint::{self, Checkpointing};
use crate::error::{Error, Result};
use crate::evaluate::evaluate;
use crate::optim::{StepScale, TrainerAdamW, clip_coefficient, linear_schedule, param_entries};

/// Hyper-parameters, named as transformers' `TrainingArguments` names them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Decoupled weight decay (not applied to biases and LayerNorm weights).
    pub weight_decay: f64,
    /// Adam β1.
    pub adam_beta1: f32,
    /// Adam β2.
    pub adam_beta2: f32,
    /// Adam ε.
    pub adam_epsilon: f32,
    /// Fraction of the optimizer steps spent warming up linearly from 0.
    pub warmup_ratio: f64,
    /// Epochs.
    pub num_train_epochs: usize,
    /// Examples per forward pass.
    pub per_device_train_batch_size: usize,
    /// Examples per evaluation batch.
    pub per_device_eval_batch_size: usize,
    /// Forward passes per optimizer step.
    pub gradient_accumulation_steps: usize,
    /// Global gradient-norm clip.
    pub max_grad_norm: f64,
    /// Seed of data order, dropout and new heads.
    pub seed: u64,
    /// Batch examples of similar length together (less padding).
    pub group_by_length: bool,
    /// Read the loss back from the device every this many optimizer steps (and at the end of
    /// each epoch): progress display and the NaN/inf check happen then. Reading it every step
    /// would stall GPU backends on a host round trip per step.
    pub logging_steps: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            learning_rate: 2e-5,
            weight_decay: 0.01,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_epsilon: 1e-8,
            warmup_ratio: 0.0,
            num_train_epochs: 3,
            per_device_train_batch_size: 32,
            per_device_eval_batch_size: 64,
            gradient_accumulation_steps: 1,
            max_grad_norm: 1.0,
            seed: 42,
            group_by_length: false,
            logging_steps: 50,
        }
    }
}

impl TrainConfig {
    fn validate(&self) -> Result<()> {
        let bad = |key, message: &str| Err(Error::Config { key, message: message.into() });
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("learning_rate", "must be a positive number");
        }
        if self.per_device_train_batch_size == 0 || self.per_device_eval_batch_size == 0 {
            return bad("batch size", "must be at least 1");
        }
        if self.gradient_accumulation_steps == 0 {
            return bad("gradient_accumulation_steps", "must be at least 1");
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            return bad("warmup_ratio", "must be in [0, 1)");
        }
        if self.num_train_epochs == 0 {
            return bad("num_train_epochs", "must be at least 1");
        }
        if self.logging_steps == 0 {
            return bad("logging_steps", "must be at least 1");
        }
        Ok(())
    }
}

/// What happens to pruning masks during fine-tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskMode {
    /// Zero the gradients of pruned weights and re-apply the masks after every step.
    Hold,
    /// Apply the masks once and train freely (the study's `prune.remove`): pruned weights may
    /// grow back.
    Release,
}

/// One epoch's figures.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochRecord {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Optimizer steps.
    pub steps: usize,
    /// Training wall time, excluding the first optimizer step of the run (reported separately).
    pub train_seconds: f64,
    /// Training examples per second (excluding the first step).
    pub samples_per_second: f64,
    /// Real (non-padding) training tokens per second (excluding the first step).
    pub tokens_per_second: f64,
    /// Dev-set metrics after the epoch.
    pub eval: Scores,
    /// Evaluation wall time.
    pub eval_seconds: f64,
}

/// The result of fine-tuning.
pub struct TrainOutcome<B: AutodiffBackend> {
    /// The model after the best epoch (by the task's main metric), for inference.
    pub best_model: Classifier<B::InnerBackend>,
    /// The best epoch (1-based).
    pub best_epoch: usize,
    /// Per-epoch figures.
    pub epochs: Vec<EpochRecord>,
    /// Wall time of the first optimizer step (warm-up: allocation, kernel compilation and
    /// autotuning on GPUs), kept out of the throughput figures.
    pub first_step_seconds: f64,
    /// The epoch of the checkpoint this run resumed after, if it resumed.
    pub resumed_after_epoch: Option<usize>,
}

/// Fine-tune `model` on `train`, evaluating on `dev` after every epoch.
#[allow(clippy::too_many_arguments)]
pub fn fine_tune<B: AutodiffBackend>(
    model: Classifier<B>,
    train: &[Encoded],
    dev: &[Encoded],
    task: GlueTask,
    batcher: &GlueBatcher,
    config: &TrainConfig,
    masks: Option<(&MaskSet, MaskMode)>,
    device: &B::Device,
    reporter: &mut dyn Reporter,
) -> Result<TrainOutcome<B>> {
    fine_tune_resumable(model, train, dev, task, batcher, config, masks, device, reporter, None)
}

/// [`fine_tune`], saving a checkpoint after every epoch under `checkpoint.dir` and, when one
/// with the same fingerprint is there, starting after its epoch (the model, the optimizer
/// states, the schedule's position, the best model and the epoch records come from it; `model`
/// gives only the structure). Epochs after the first draw their dropout from a seed derived from
/// the run's seed and the epoch, so a resumed run ends as an uninterrupted one.
#[allow(clippy::too_many_arguments)]
pub fn fine_tune_resumable<B: AutodiffBackend>(
    mut model: Classifier<B>,
    train: &[Encoded],
    dev: &[Encoded],
    task: GlueTask,
    batcher: &GlueBatcher,
    config: &TrainConfig,
    masks: Option<(&MaskSet, MaskMode)>,
    device: &B::Device,
    reporter: &mut dyn Reporter,
    checkpoint: Option<Checkpointing<'_>>,
) -> Result<TrainOutcome<B>> {
    config.validate()?;
    if train.iter().any(|e| e.label.is_none()) {
        return Err(Error::Unlabelled("training"));
    }
    B::seed(device, config.seed);
    let resumed = match checkpoint {
        Some(c) => checkpoint::latest(c.dir, c.fingerprint)?,
        None => None,
    };
    if let Some((dir, state)) = &resumed {
        // Parameter ids come from the checkpoint: everything keyed by them is built after this.
        model = checkpoint::load_model(dir, checkpoint::LAST_MODEL, model, device)?;
        tracing::info!(epoch = state.epoch, dir = %dir.display(), "resuming after the checkpoint's epoch");
    }
    let naming = model.naming();
    let entries = param_entries(&model, naming.as_ref());
    let held =
        masks.filter(|(_, mode)| *mode == MaskMode::Hold).map(|(m, _)| DeviceMasks::<B::InnerBackend>::new(m, device));
    model = match masks {
        // A resumed model was masked before its checkpoint (and, released, may have regrown).
        _ if resumed.is_some() => model,
        Some((m, _)) => DeviceMasks::<B>::new(m, device).apply(model),
        None => model,
    };
    let mut optimizer =
        TrainerAdamW::<B>::new(config.adam_beta1, config.adam_beta2, config.adam_epsilon, config.weight_decay);
    let loss_fn = CrossEntropyLossConfig::new().init(device);

    let lengths: Vec<usize> = train.iter().map(|e| e.input_ids.len()).collect();
    let micro = config.per_device_train_batch_size;
    let accum = config.gradient_accumulation_steps;
    let steps_per_epoch = lengths.len().div_ceil(micro).div_ceil(accum);
    let total_steps = steps_per_epoch * config.num_train_epochs;
    let warmup = (config.warmup_ratio * total_steps as f64).ceil() as usize;
    let mut step = 0usize;
    let mut first_step_seconds = None;
    let mut epochs = Vec::new();
    let mut best: Option<(f64, usize, Classifier<B::InnerBackend>)> = None;
    let mut first_epoch = 1;
    let resumed_after_epoch = resumed.as_ref().map(|(_, state)| state.epoch);
    if let Some((dir, state)) = resumed {
        for name in checkpoint::OPTIMIZERS {
            optimizer.load_group_record(checkpoint::load_optimizer::<B>(&dir, name, device)?);
        }
        let best_model = checkpoint::load_model(&dir, checkpoint::BEST_MODEL, model.valid(), device)?;
        best = Some((state.best_value, state.best_epoch, best_model));
        for record in &state.epochs {
            reporter.on_eval(record.epoch, &record.eval);
        }
        (step, first_step_seconds, epochs, first_epoch) =
            (state.step, state.first_step_seconds, state.epochs, state.epoch + 1);
    }

    for epoch in first_epoch..=config.num_train_epochs {
        if epoch > 1 {
            B::seed(device, checkpoint::epoch_seed(config.seed, epoch));
        }
        reporter.on_epoch_start(epoch, steps_per_epoch);
        let order = shuffled_batches(&lengths, micro, config.seed.wrapping_add(epoch as u64), config.group_by_length);
        let started = Instant::now();
        let (mut loss_sum, mut loss_count, mut samples, mut tokens) = (0f64, 0usize, 0usize, 0usize);
        // Losses of the steps since the last read-back, summed on the device.
        let mut pending: Option<Tensor<B::InnerBackend, 1>> = None;
        let mut pending_steps = 0usize;
        let mut timed_from = started;
        let groups: Vec<&[Vec<usize>]> = order.chunks(accum).collect();
        for (g, group) in groups.iter().enumerate() {
            let step_started = Instant::now();
            let mut accumulator = GradientsAccumulator::<Classifier<B>>::new();
            let group_size: usize = group.iter().map(Vec::len).sum();
            for indices in group.iter() {
                let batch: GlueBatch<B> = batcher.batch(indices.iter().map(|&i| train[i].clone()).collect(), device);
                let labels = batch.labels.clone().ok_or(Error::Unlabelled("training"))?;
                let logits = model.forward(ModelInput {
                    input_ids: batch.input_ids,
                    attention_mask: batch.attention_mask,
                    token_type_ids: batch.token_type_ids,
                });
                // Mean over the whole accumulated group, as one big batch would give.
                let loss = loss_fn.forward(logits, labels) * (indices.len() as f64 / group_size as f64);
                let detached = loss.clone().inner();
                pending = Some(match pending.take() {
                    Some(sum) => sum + detached,
                    None => detached,
                });
                accumulator.accumulate(&model, GradientsParams::from_grads(loss.backward(), &model));
                tokens += batch.num_tokens;
            }
            pending_steps += 1;
            let grads = accumulator.grads();
            // The norm is that of the masked gradients (pruned weights have none), as torch's
            // pruning hooks give them.
            let (_, clip) = clip_coefficient::<B>(&grads, &entries, held.as_ref(), config.max_grad_norm, device);
            let lr = linear_schedule(config.learning_rate, step, warmup, total_steps);
            model = optimizer.step(lr, model, grads, &entries, &StepScale { clip, masks: held.as_ref() });
            step += 1;
            samples += group_size;
            // Read the loss back (one host round trip) every `logging_steps`, at the end of the
            // epoch, and after the first step (whose time is the warm-up figure).
            let read_back =
                first_step_seconds.is_none() || step.is_multiple_of(config.logging_steps) || g + 1 == groups.len();
            let mut mean_loss = None;
            if read_back && let Some(sum) = pending.take() {
                let total = f64::from(sum.into_scalar().elem::<f32>());
                if !total.is_finite() {
                    return Err(Error::NonFinite { epoch, step, value: total as f32 });
                }
                loss_sum += total;
                loss_count += pending_steps;
                mean_loss = Some((total / pending_steps as f64) as f32);
                pending_steps = 0;
            }
            reporter.on_step(step, mean_loss, lr);
            if first_step_seconds.is_none() {
                first_step_seconds = Some(step_started.elapsed().as_secs_f64());
                timed_from = Instant::now();
                samples = 0;
                tokens = 0;
            }
        }
        let train_seconds = timed_from.elapsed().as_secs_f64();
        let eval_model = model.valid();
        let evaluation = evaluate(&eval_model, dev, task, batcher, config.per_device_eval_batch_size, device)?;
        reporter.on_eval(epoch, &evaluation.scores);
        tracing::info!(
            epoch,
            loss = loss_sum / loss_count.max(1) as f64,
            main = evaluation.scores.main_value,
            "epoch done"
        );
        let better = best.as_ref().is_none_or(|(v, _, _)| evaluation.scores.main_value > *v);
        if better {
            best = Some((evaluation.scores.main_value, epoch, eval_model));
        }
        epochs.push(EpochRecord {
            epoch,
            train_loss: loss_sum / loss_count.max(1) as f64,
            steps: loss_count,
            train_seconds,
            samples_per_second: samples as f64 / train_seconds.max(1e-9),
            tokens_per_second: tokens as f64 / train_seconds.max(1e-9),
            eval: evaluation.scores,
            eval_seconds: evaluation.seconds,
        });
        if let Some(c) = checkpoint {
            let (best_value, best_epoch, best_model) = best.as_ref().expect("an epoch was evaluated");
            let state = checkpoint::State {
                fingerprint: c.fingerprint.to_owned(),
                epoch,
                step,
                first_step_seconds,
                epochs: epochs.clone(),
                best_epoch: *best_epoch,
                best_value: *best_value,
            };
            let tensors = checkpoint::Tensors {
                model: &model,
                optim_decay: optimizer.group_record(&entries, true),
                optim_plain: optimizer.group_record(&entries, false),
                new_best: better.then_some(best_model),
            };
            checkpoint::save(c.dir, &state, tensors)?;
        }
    }
    let (_, best_epoch, best_model) = best.expect("at least one epoch ran");
    Ok(TrainOutcome {
        best_model,
        best_epoch,
        epochs,
        first_step_seconds: first_step_seconds.unwrap_or(0.0),
        resumed_after_epoch,
    })
}
