//! The fine-tuning loop as a [`Trainer`]: [`fine_tune`] builds one (resuming from a checkpoint
//! when there is one), runs its epochs and hands back the best model. An epoch is a sequence of
//! optimizer steps ([`Trainer::step`]), a dev evaluation and a checkpoint ([`Trainer::save`]).

use std::time::Instant;

use burn::data::dataloader::batcher::Batcher;
use burn::module::AutodiffModule;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use prunelab_glue::batcher::shuffled_batches;
use prunelab_glue::{Encoded, GlueBatch, GlueBatcher, GlueTask};
use prunelab_models::{Classifier, ModelInput};
use prunelab_prune::{DeviceMasks, MaskSet};
use prunelab_record::{EpochRecord, MaskMode, PruneEvent, TrainConfig};
use prunelab_stats::weights;

use crate::Reporter;
use crate::checkpoint::{self, Checkpointing};
use crate::distill::{Distillation, distillation_loss};
use crate::error::{Error, Result};
use crate::evaluate::evaluate;
use crate::gradual::GradualPruning;
use crate::optim::{OptimizerKind, ParamEntry, StepSettings, TrainerOptimizer, linear_schedule, param_entries};
use crate::phase::{self, Phase};

/// The examples a run trains and evaluates on.
#[derive(Debug, Clone, Copy)]
pub struct TrainData<'a> {
    /// Labelled training examples.
    pub train: &'a [Encoded],
    /// Labelled dev examples, evaluated after every epoch.
    pub dev: &'a [Encoded],
    /// The task (its metric ranks the epochs).
    pub task: GlueTask,
    /// How examples become padded batches.
    pub batcher: &'a GlueBatcher,
}

/// Everything about a run besides its model and data (`B`: the inner backend, the teacher's).
#[derive(Debug, Clone)]
pub struct TrainOptions<'a, B: Backend> {
    /// The recipe.
    pub config: TrainConfig,
    /// Masks applied before training (one-shot pruning), held or released ([`MaskMode`]).
    pub masks: Option<(&'a MaskSet, MaskMode)>,
    /// Pruning during training instead, along a gradual schedule (masks held).
    pub gradual: Option<GradualPruning<'a>>,
    /// Knowledge distillation from a teacher.
    pub distillation: Option<Distillation<'a, B>>,
    /// Epoch checkpoints: where, and for which settings.
    pub checkpoint: Option<Checkpointing<'a>>,
    /// Which implementation of the optimizer step runs (the flat one unless a benchmark asks).
    pub optimizer: OptimizerKind,
}

impl<B: Backend> Default for TrainOptions<'_, B> {
    fn default() -> Self {
        TrainOptions {
            config: TrainConfig::default(),
            masks: None,
            gradual: None,
            distillation: None,
            checkpoint: None,
            optimizer: OptimizerKind::default(),
        }
    }
}

impl<B: Backend> TrainOptions<'_, B> {
    fn validate(&self) -> Result<()> {
        self.config.validate()?;
        if let Some(gradual) = &self.gradual {
            gradual.validate()?;
            if self.masks.is_some() {
                return Err(Error::Config {
                    key: "masks",
                    message: "a gradual schedule computes its own masks".into(),
                });
            }
        }
        if let Some(d) = &self.distillation {
            d.validate()?;
        }
        Ok(())
    }
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
    /// Every mask update of a gradual schedule, in order.
    pub prune_events: Vec<PruneEvent>,
    /// The masks a gradual schedule ended with.
    pub final_masks: Option<MaskSet>,
    /// Host seconds spent issuing the teacher's forward passes (on GPU backends the passes run
    /// asynchronously; the throughput figures include their device time).
    pub teacher_seconds: Option<f64>,
}

/// Fine-tune `model` on `data.train`, evaluating on `data.dev` after every epoch. With
/// `options.checkpoint`, a checkpoint is saved after every epoch and, when one with the same
/// fingerprint is there, the run starts after its epoch (the model, the optimizer states, the
/// schedule's position, the best model and the epoch records come from it; `model` gives only
/// the structure). Epochs after the first draw their dropout from a seed derived from the run's
/// seed and the epoch, so a resumed run ends as an uninterrupted one.
pub fn fine_tune<B: AutodiffBackend>(
    model: Classifier<B>,
    data: &TrainData<'_>,
    options: &TrainOptions<'_, B::InnerBackend>,
    device: &B::Device,
    reporter: &mut dyn Reporter,
) -> Result<TrainOutcome<B>> {
    let (mut trainer, mut model) = Trainer::new(model, data, options, device)?;
    for record in &trainer.progress.epochs {
        reporter.on_eval(record.epoch, &record.eval);
    }
    let first_epoch = trainer.progress.epochs.len() + 1;
    for epoch in first_epoch..=options.config.num_train_epochs {
        model = trainer.run_epoch(model, epoch, reporter)?;
        trainer.save(&model, epoch)?;
    }
    trainer.finish()
}

/// How the data splits into optimizer steps.
struct Plan {
    /// Token count of every training example (what batch order is computed from).
    lengths: Vec<usize>,
    steps_per_epoch: usize,
    total_steps: usize,
    warmup_steps: usize,
}

impl Plan {
    fn new(train: &[Encoded], config: &TrainConfig) -> Self {
        let lengths: Vec<usize> = train.iter().map(|e| e.input_ids.len()).collect();
        let steps_per_epoch =
            lengths.len().div_ceil(config.per_device_train_batch_size).div_ceil(config.gradient_accumulation_steps);
        let total_steps = steps_per_epoch * config.num_train_epochs;
        let warmup_steps = (config.warmup_ratio * total_steps as f64).ceil() as usize;
        Plan { lengths, steps_per_epoch, total_steps, warmup_steps }
    }
}

/// The best model so far.
struct Best<B: AutodiffBackend> {
    value: f64,
    epoch: usize,
    model: Classifier<B::InnerBackend>,
}

/// What the run has done so far (what a checkpoint restores).
struct Progress<B: AutodiffBackend> {
    /// Optimizer steps taken (the learning-rate schedule's position).
    step: usize,
    first_step_seconds: Option<f64>,
    epochs: Vec<EpochRecord>,
    best: Option<Best<B>>,
    /// Whether the last epoch was the best so far (its checkpoint then saves it).
    last_was_best: bool,
    resumed_after_epoch: Option<usize>,
    /// A gradual schedule's mask updates so far, and its current masks.
    prune_events: Vec<PruneEvent>,
    masks: Option<MaskSet>,
    teacher_seconds: f64,
}

/// One run's optimizer and progress (the model being trained is passed through its steps).
struct Trainer<'a, B: AutodiffBackend> {
    data: &'a TrainData<'a>,
    options: &'a TrainOptions<'a, B::InnerBackend>,
    device: &'a B::Device,
    entries: Vec<ParamEntry>,
    /// Held masks, multiplied into the gradients and parameters at every step.
    held: Option<DeviceMasks<B::InnerBackend>>,
    optimizer: TrainerOptimizer<B>,
    loss_fn: CrossEntropyLoss<B>,
    plan: Plan,
    progress: Progress<B>,
}

/// Seed the generators dropout draws from: Burn's, and the layers' stream of seeds for kernels
/// that choose a mask's seed on the host (`prunelab_models::layers::fused::seed`).
fn seed_dropout<B: AutodiffBackend>(device: &B::Device, seed: u64) {
    B::seed(device, seed);
    prunelab_models::layers::fused::seed(seed);
}

impl<'a, B: AutodiffBackend> Trainer<'a, B> {
    /// A trainer and its model at the start of the run, or after the last epoch of a matching
    /// checkpoint.
    fn new(
        model: Classifier<B>,
        data: &'a TrainData<'a>,
        options: &'a TrainOptions<'a, B::InnerBackend>,
        device: &'a B::Device,
    ) -> Result<(Self, Classifier<B>)> {
        let config = &options.config;
        options.validate()?;
        if data.train.iter().any(|e| e.label.is_none()) {
            return Err(Error::Unlabelled("training"));
        }
        seed_dropout::<B>(device, config.seed);
        let resumed = match options.checkpoint {
            Some(c) => checkpoint::latest(c.dir, c.fingerprint)?,
            None => None,
        };
        let model = match &resumed {
            // Parameter ids come from the checkpoint: everything keyed by them is built after this.
            Some((dir, state)) => {
                tracing::info!(epoch = state.epoch, dir = %dir.display(), "resuming after the checkpoint's epoch");
                checkpoint::load_model(dir, checkpoint::LAST_MODEL, model, device)?
            }
            // A resumed model was masked before its checkpoint (and, released, may have regrown).
            None => match options.masks {
                Some((m, _)) => DeviceMasks::<B>::new(m, device).apply(model),
                None => model,
            },
        };
        let naming = model.naming();
        let mut trainer = Trainer {
            entries: param_entries(&model, naming.as_ref()),
            held: options.masks.filter(|(_, mode)| *mode == MaskMode::Hold).map(|(m, _)| DeviceMasks::new(m, device)),
            optimizer: TrainerOptimizer::new(options.optimizer, config),
            loss_fn: CrossEntropyLossConfig::new().init(device),
            plan: Plan::new(data.train, config),
            progress: Progress {
                step: 0,
                first_step_seconds: None,
                epochs: Vec::new(),
                best: None,
                last_was_best: false,
                resumed_after_epoch: None,
                prune_events: Vec::new(),
                masks: None,
                teacher_seconds: 0.0,
            },
            data,
            options,
            device,
        };
        if let Some((dir, state)) = resumed {
            trainer.restore(&dir, state, &model)?;
        }
        Ok((trainer, model))
    }

    /// The optimizer states, the best model and the progress of a checkpoint.
    fn restore(&mut self, dir: &std::path::Path, state: checkpoint::State, model: &Classifier<B>) -> Result<()> {
        for name in checkpoint::OPTIMIZERS {
            self.optimizer.load_group_record(checkpoint::load_optimizer::<B>(dir, name, self.device)?);
        }
        let best = match state.best_epoch {
            0 => None,
            epoch => {
                let best = checkpoint::load_model(dir, checkpoint::BEST_MODEL, model.valid(), self.device)?;
                Some(Best { value: state.best_value, epoch, model: best })
            }
        };
        let masks = checkpoint::load_masks(dir, model)?;
        if let Some(m) = &masks {
            self.held = Some(DeviceMasks::new(m, self.device));
        }
        self.progress = Progress {
            step: state.step,
            first_step_seconds: state.first_step_seconds,
            epochs: state.epochs,
            best,
            last_was_best: false,
            resumed_after_epoch: Some(state.epoch),
            prune_events: state.prune_events,
            masks,
            teacher_seconds: state.teacher_seconds,
        };
        Ok(())
    }

    /// One epoch of `model`: its optimizer steps, then a dev evaluation.
    fn run_epoch(
        &mut self,
        mut model: Classifier<B>,
        epoch: usize,
        reporter: &mut dyn Reporter,
    ) -> Result<Classifier<B>> {
        let config = &self.options.config;
        if epoch > 1 {
            seed_dropout::<B>(self.device, checkpoint::epoch_seed(config.seed, epoch));
        }
        reporter.on_epoch_start(epoch, self.plan.steps_per_epoch);
        let seed = config.seed.wrapping_add(epoch as u64);
        let order =
            shuffled_batches(&self.plan.lengths, config.per_device_train_batch_size, seed, config.group_by_length);
        let groups: Vec<&[Vec<usize>]> = order.chunks(config.gradient_accumulation_steps).collect();
        let mut meter = EpochMeter::<B::InnerBackend>::start();
        for (g, group) in groups.iter().enumerate() {
            let started = Instant::now();
            let Stepped { model: stepped, loss, tokens, lr } = self.step(model, group)?;
            model = stepped;
            meter.add_step(loss, group.iter().map(Vec::len).sum(), tokens);
            // Read the loss back (one host round trip) every `logging_steps`, at the end of the
            // epoch, and after the first step (whose time is the warm-up figure).
            let first = self.progress.first_step_seconds.is_none();
            let read_back = first || self.progress.step.is_multiple_of(config.logging_steps) || g + 1 == groups.len();
            let mean_loss = if read_back { meter.read_back(epoch, self.progress.step)? } else { None };
            reporter.on_step(self.progress.step, mean_loss, lr);
            if first {
                self.progress.first_step_seconds = Some(started.elapsed().as_secs_f64());
                meter.restart_clock();
            }
        }
        self.end_epoch(&model, epoch, meter, reporter)?;
        Ok(model)
    }

    /// One optimizer step of `model` over a group of micro-batches (gradient accumulation).
    fn step(&mut self, model: Classifier<B>, group: &[Vec<usize>]) -> Result<Stepped<B>> {
        let model = self.prune_if_scheduled(model)?;
        let group_size: usize = group.iter().map(Vec::len).sum();
        let mut accumulator = GradientsAccumulator::<Classifier<B>>::new();
        let mut loss_sum: Option<Tensor<B::InnerBackend, 1>> = None;
        let mut tokens = 0;
        for indices in group {
            phase::enter(Phase::Forward);
            let batch: GlueBatch<B> =
                self.data.batcher.batch(indices.iter().map(|&i| self.data.train[i].clone()).collect(), self.device);
            tokens += batch.num_tokens;
            // Mean over the whole accumulated group, as one big batch would give.
            let loss = self.loss(&model, batch)? * (indices.len() as f64 / group_size as f64);
            let detached = loss.clone().inner();
            loss_sum = Some(match loss_sum.take() {
                Some(sum) => sum + detached,
                None => detached,
            });
            phase::enter(Phase::Backward);
            accumulator.accumulate(&model, GradientsParams::from_grads(loss.backward(), &model));
        }
        let grads = accumulator.grads();
        let config = &self.options.config;
        let lr =
            linear_schedule(config.learning_rate, self.progress.step, self.plan.warmup_steps, self.plan.total_steps);
        let settings = StepSettings { lr, max_norm: config.max_grad_norm, masks: self.held.as_ref() };
        phase::enter(Phase::Update);
        let model = self.optimizer.step(model, grads, &self.entries, &settings, self.device);
        phase::enter(Phase::Other);
        self.progress.step += 1;
        let loss =
            loss_sum.ok_or(Error::Config { key: "data", message: "an optimizer step without examples".into() })?;
        Ok(Stepped { model, loss, tokens, lr })
    }

    /// The training loss of one batch: cross-entropy, mixed with the distillation term when a
    /// teacher is given.
    fn loss(&mut self, model: &Classifier<B>, batch: GlueBatch<B>) -> Result<Tensor<B, 1>> {
        let labels = batch.labels.ok_or(Error::Unlabelled("training"))?;
        let input = ModelInput {
            input_ids: batch.input_ids,
            attention_mask: batch.attention_mask,
            token_type_ids: batch.token_type_ids,
        };
        let Some(d) = &self.options.distillation else {
            return Ok(self.loss_fn.forward(model.forward(input), labels));
        };
        let started = Instant::now();
        let teacher = d.teacher.forward(ModelInput {
            input_ids: input.input_ids.clone().inner(),
            attention_mask: input.attention_mask.clone().inner(),
            token_type_ids: input.token_type_ids.clone().map(Tensor::inner),
        });
        self.progress.teacher_seconds += started.elapsed().as_secs_f64();
        let logits = model.forward(input);
        let kd = distillation_loss(logits.clone(), Tensor::from_inner(teacher), d.temperature);
        Ok(self.loss_fn.forward(logits, labels) * (1.0 - d.alpha) + kd * d.alpha)
    }

    /// Before a step at which the gradual schedule updates the masks: masks at the schedule's
    /// sparsity, computed from the current weights, applied to the model and held from now on.
    fn prune_if_scheduled(&mut self, model: Classifier<B>) -> Result<Classifier<B>> {
        let Some(gradual) = &self.options.gradual else { return Ok(model) };
        let Some(target) = gradual.target(self.progress.step, self.plan.total_steps) else { return Ok(model) };
        let current = weights(&model, model.naming().as_ref());
        let (masks, event) = gradual.masks(&current, target, self.progress.step)?;
        tracing::debug!(step = event.step, target, reached = event.reached(), "gradual pruning step");
        let model = DeviceMasks::<B>::new(&masks, self.device).apply(model);
        self.held = Some(DeviceMasks::new(&masks, self.device));
        self.optimizer.reset();
        self.progress.prune_events.push(event);
        self.progress.masks = Some(masks);
        Ok(model)
    }

    /// Evaluates the epoch's model on dev, records the epoch and keeps the model if it is the
    /// best so far.
    fn end_epoch(
        &mut self,
        model: &Classifier<B>,
        epoch: usize,
        meter: EpochMeter<B::InnerBackend>,
        reporter: &mut dyn Reporter,
    ) -> Result<()> {
        let train_seconds = meter.seconds();
        let eval_model = model.valid();
        let data = self.data;
        let evaluation = evaluate(
            &eval_model,
            data.dev,
            data.task,
            data.batcher,
            self.options.config.per_device_eval_batch_size,
            self.device,
        )?;
        reporter.on_eval(epoch, &evaluation.scores);
        let record = meter.record(epoch, train_seconds, evaluation.scores, evaluation.seconds);
        tracing::info!(epoch, loss = record.train_loss, main = record.eval.main_value, "epoch done");
        // A gradual schedule's model is a candidate only once it has its final sparsity.
        let eligible =
            self.options.gradual.as_ref().is_none_or(|g| g.reached(self.progress.step, self.plan.total_steps));
        let better = eligible && self.progress.best.as_ref().is_none_or(|b| evaluation.scores.main_value > b.value);
        if better {
            self.progress.best = Some(Best { value: evaluation.scores.main_value, epoch, model: eval_model });
        }
        self.progress.last_was_best = better;
        self.progress.epochs.push(record);
        Ok(())
    }

    /// The checkpoint after `epoch`, when checkpoints are kept.
    fn save(&self, model: &Classifier<B>, epoch: usize) -> Result<()> {
        let Some(c) = self.options.checkpoint else { return Ok(()) };
        // A gradual schedule may have no candidate for the best model yet (epoch 0: none).
        let (best_epoch, best_value) = self.progress.best.as_ref().map_or((0, f64::MIN), |b| (b.epoch, b.value));
        let state = checkpoint::State {
            fingerprint: c.fingerprint.to_owned(),
            epoch,
            step: self.progress.step,
            first_step_seconds: self.progress.first_step_seconds,
            epochs: self.progress.epochs.clone(),
            best_epoch,
            best_value,
            prune_events: self.progress.prune_events.clone(),
            teacher_seconds: self.progress.teacher_seconds,
        };
        let tensors = checkpoint::Tensors {
            model,
            optim_decay: self.optimizer.group_record(&self.entries, true),
            optim_plain: self.optimizer.group_record(&self.entries, false),
            new_best: self.progress.best.as_ref().filter(|_| self.progress.last_was_best).map(|b| &b.model),
            has_best: self.progress.best.is_some(),
            masks: self.progress.masks.as_ref(),
        };
        checkpoint::save(c.dir, &state, tensors)
    }

    fn finish(self) -> Result<TrainOutcome<B>> {
        let best =
            self.progress.best.ok_or(Error::Config { key: "num_train_epochs", message: "no epoch ran".into() })?;
        Ok(TrainOutcome {
            best_model: best.model,
            best_epoch: best.epoch,
            epochs: self.progress.epochs,
            first_step_seconds: self.progress.first_step_seconds.unwrap_or(0.0),
            resumed_after_epoch: self.progress.resumed_after_epoch,
            prune_events: self.progress.prune_events,
            final_masks: self.progress.masks,
            teacher_seconds: self.options.distillation.is_some().then_some(self.progress.teacher_seconds),
        })
    }
}

/// What one optimizer step gives back.
struct Stepped<B: AutodiffBackend> {
    /// The updated model.
    model: Classifier<B>,
    /// The summed loss of the step's micro-batches, still on the device.
    loss: Tensor<B::InnerBackend, 1>,
    /// Real (non-padding) tokens.
    tokens: usize,
    /// The learning rate of the step.
    lr: f64,
}

/// An epoch's running figures: the losses since the last read-back (summed on the device), the
/// losses read so far, and the examples, tokens and time since the clock started.
struct EpochMeter<B: Backend> {
    pending: Option<Tensor<B, 1>>,
    pending_steps: usize,
    loss_sum: f64,
    loss_steps: usize,
    samples: usize,
    tokens: usize,
    clock: Instant,
}

impl<B: Backend> EpochMeter<B> {
    fn start() -> Self {
        EpochMeter {
            pending: None,
            pending_steps: 0,
            loss_sum: 0.0,
            loss_steps: 0,
            samples: 0,
            tokens: 0,
            clock: Instant::now(),
        }
    }

    fn add_step(&mut self, loss: Tensor<B, 1>, samples: usize, tokens: usize) {
        self.pending = Some(match self.pending.take() {
            Some(sum) => sum + loss,
            None => loss,
        });
        self.pending_steps += 1;
        self.samples += samples;
        self.tokens += tokens;
    }

    /// Reads the pending losses back from the device: their mean, or an error if it is not
    /// finite.
    fn read_back(&mut self, epoch: usize, step: usize) -> Result<Option<f32>> {
        let Some(sum) = self.pending.take() else { return Ok(None) };
        let total = f64::from(sum.into_scalar().elem::<f32>());
        if !total.is_finite() {
            return Err(Error::NonFinite { epoch, step, value: total as f32 });
        }
        let mean = (total / self.pending_steps as f64) as f32;
        self.loss_sum += total;
        self.loss_steps += self.pending_steps;
        self.pending_steps = 0;
        Ok(Some(mean))
    }

    /// Throughput is timed from here (after the run's first step, which is reported apart).
    fn restart_clock(&mut self) {
        self.clock = Instant::now();
        self.samples = 0;
        self.tokens = 0;
    }

    fn seconds(&self) -> f64 {
        self.clock.elapsed().as_secs_f64()
    }

    fn record(&self, epoch: usize, train_seconds: f64, eval: prunelab_glue::Scores, eval_seconds: f64) -> EpochRecord {
        EpochRecord {
            epoch,
            train_loss: self.loss_sum / self.loss_steps.max(1) as f64,
            steps: self.loss_steps,
            train_seconds,
            samples_per_second: self.samples as f64 / train_seconds.max(1e-9),
            tokens_per_second: self.tokens as f64 / train_seconds.max(1e-9),
            eval,
            eval_seconds,
        }
    }
}
