//! `prunelab finetune`: prune (optionally), fine-tune with masks held, evaluate, time, and write
//! one result file per run.

use std::cell::RefCell;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::module::AutodiffModule;
use indicatif::{ProgressBar, ProgressStyle};
use prunelab_glue::{GlueBatcher, GlueTask, PaddingSide, Split, TextEncoder};
use prunelab_models::load_classifier;
use prunelab_prune::file::{load_masks, write_atomic};
use prunelab_prune::{MaskSet, PruneSpec, Scheme, Scope, compute_masks, compute_wanda_masks, sparsity};
use prunelab_record::{
    DataRecord, Distillation, EvaluatedEpoch, GradualSchedule, Metrics, PruningRecord, RunRecord, Schedule, Status,
};
use prunelab_stats::weights;
use prunelab_train::{
    Checkpointing, GradualPruning, MaskMode, Reporter, TrainConfig, TrainData, TrainOptions, fine_tune, predict,
    time_inference,
};

use crate::backend::{self, TrainBackend};
use crate::common;
use crate::panics;
use crate::selection::{CommandPruning, PruneSelection, Resolved, SchemeArg};

/// `finetune`'s pruning defaults, and the scheme it leaves to `prune`.
const PRUNING: CommandPruning = CommandPruning {
    command: "finetune",
    scheme: SchemeArg::None,
    amount: 0.0,
    elsewhere: &[(
        SchemeArg::Structured,
        "structured pruning makes a smaller model: run prune --scheme structured --out DIR, then finetune DIR/model",
    )],
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ScheduleArg {
    /// Prune once, before fine-tuning (the study's method)
    Oneshot,
    /// Raise the sparsity from --initial-amount to --amount during fine-tuning along Zhu &
    /// Gupta's cubic schedule, recomputing masks every --prune-every steps (masks held)
    Gradual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum MaskModeArg {
    /// Zero pruned weights' gradients and re-apply masks after every step
    Hold,
    /// The study's prune.remove: prune once, then let weights regrow
    Release,
}

#[derive(Debug, clap::Args)]
pub struct FinetuneArgs {
    /// A model directory or a Hugging Face Hub model id
    model: String,
    /// Hub revision, for Hub ids
    #[arg(long, default_value = "main")]
    revision: String,
    /// Record the model under this id in result.json (when MODEL is a local copy of a Hub model)
    #[arg(long, value_name = "ID")]
    model_id: Option<String>,
    /// The GLUE task
    #[arg(long, value_enum)]
    task: GlueTask,
    #[command(flatten)]
    data: crate::common::GlueDataArgs,
    /// tokenizer.json (default: the model's own)
    #[arg(long, value_name = "FILE")]
    tokenizer: Option<PathBuf>,
    #[command(flatten)]
    selection: PruneSelection,
    /// Wanda: training examples whose activations score the weights
    #[arg(long, default_value_t = 128, value_name = "N", help_heading = crate::selection::HEADING)]
    calibration: usize,
    /// Apply the masks of this file (from `prunelab prune --out`) instead of computing them
    #[arg(long, value_name = "FILE", conflicts_with = "scheme", help_heading = crate::selection::HEADING)]
    masks: Option<PathBuf>,
    /// Hold masks through training, or release them as the study did
    #[arg(long, value_enum, default_value_t = MaskModeArg::Hold, help_heading = crate::selection::HEADING)]
    mask_mode: MaskModeArg,
    /// When masks are computed
    #[arg(long, value_enum, default_value_t = ScheduleArg::Oneshot, help_heading = crate::selection::HEADING)]
    schedule: ScheduleArg,
    /// Gradual: the sparsity of the first mask update
    #[arg(long, default_value_t = 0.0, value_name = "A", help_heading = crate::selection::HEADING)]
    initial_amount: f64,
    /// Gradual: the first mask update, as a fraction of the optimizer steps
    #[arg(long, default_value_t = 0.0, value_name = "FRACTION", help_heading = crate::selection::HEADING)]
    prune_start: f64,
    /// Gradual: the update that reaches --amount, as a fraction of the optimizer steps
    #[arg(long, default_value_t = 0.7, value_name = "FRACTION", help_heading = crate::selection::HEADING)]
    prune_end: f64,
    /// Gradual: optimizer steps between mask updates
    #[arg(long, default_value_t = 50, value_name = "N", help_heading = crate::selection::HEADING)]
    prune_every: usize,
    /// Distil from this fine-tuned model (a directory or Hub id with a trained classification
    /// head and the same tokenizer, e.g. the dense run's model/): the loss becomes
    /// (1 - kd_alpha)·CE + kd_alpha·T²·KL(teacher ‖ student) at temperature T
    #[arg(long, value_name = "MODEL", help_heading = "Distillation")]
    teacher: Option<String>,
    /// Weight of the distillation term
    #[arg(long, default_value_t = 0.5, requires = "teacher", value_name = "A", help_heading = "Distillation")]
    kd_alpha: f64,
    /// Softmax temperature of distillation
    #[arg(long, default_value_t = 2.0, requires = "teacher", value_name = "T", help_heading = "Distillation")]
    kd_temperature: f64,
    /// Epochs
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Peak learning rate
    #[arg(long, default_value_t = 2e-5)]
    lr: f64,
    /// Training batch size
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Evaluation batch size
    #[arg(long, default_value_t = 64)]
    eval_batch_size: usize,
    /// Warm-up fraction of the steps
    #[arg(long, default_value_t = 0.0)]
    warmup_ratio: f64,
    /// Weight decay (not on biases and LayerNorm weights)
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    /// Forward passes per optimizer step
    #[arg(long, default_value_t = 1)]
    grad_accum: usize,
    /// Global gradient-norm clip
    #[arg(long, default_value_t = 1.0)]
    max_grad_norm: f64,
    /// Seed (data order, dropout, new heads, random pruning)
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Truncation length
    #[arg(long, default_value_t = 128)]
    max_length: usize,
    /// Batch examples of similar length together
    #[arg(long)]
    group_by_length: bool,
    /// Read the loss back from the device (progress, NaN check) every N steps
    #[arg(long, default_value_t = 50, value_name = "N")]
    logging_steps: usize,
    /// Use only the first N training examples (quick runs)
    #[arg(long, value_name = "N")]
    train_limit: Option<usize>,
    /// Use only the first N dev examples
    #[arg(long, value_name = "N")]
    dev_limit: Option<usize>,
    /// Output directory: result.json, test_predictions.tsv, masks.safetensors, model/
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Do not export the fine-tuned model to <out>/model (grids use this to save disk)
    #[arg(long)]
    no_export: bool,
    /// Do not predict the test split (test_predictions.tsv); quick CPU runs use this
    #[arg(long)]
    no_test_predictions: bool,
    /// Do not keep a checkpoint after every epoch (<out>/checkpoint/: the model, the optimizer
    /// states and the best model, about 4× the model's f32 size, removed when the run finishes);
    /// without one an interrupted run starts over instead of resuming after its last epoch
    #[arg(long)]
    no_checkpoint: bool,
}

/// `PRUNELAB_FAULT=oom@STEP` makes the step STEP (counted from 1 over the run) panic as a backend
/// that ran out of memory does: a fault-injection hook for the tests of what a failed run leaves.
fn injected_fault_step() -> Option<usize> {
    std::env::var("PRUNELAB_FAULT").ok()?.strip_prefix("oom@")?.parse().ok()
}

struct Bars<'a> {
    bar: ProgressBar,
    steps: usize,
    fault_at: Option<usize>,
    /// Each epoch's dev scores as they come, for the result of a run that fails later.
    evals: &'a RefCell<Vec<EvaluatedEpoch>>,
}

impl Reporter for Bars<'_> {
    fn on_epoch_start(&mut self, epoch: usize, steps: usize) {
        self.bar.set_length(steps as u64);
        self.bar.set_position(0);
        self.bar.set_prefix(format!("epoch {epoch}"));
    }
    fn on_step(&mut self, _step: usize, loss: Option<f32>, lr: f64) {
        self.steps += 1;
        if self.fault_at == Some(self.steps) {
            panic!("injected fault (PRUNELAB_FAULT): CUDA_ERROR_OUT_OF_MEMORY: out of memory at step {}", self.steps);
        }
        self.bar.inc(1);
        if let Some(loss) = loss {
            self.bar.set_message(format!("loss {loss:.4} lr {lr:.2e}"));
        }
    }
    fn on_eval(&mut self, epoch: usize, scores: &prunelab_glue::Scores) {
        self.evals.borrow_mut().push(EvaluatedEpoch { epoch, eval: *scores });
        self.bar.println(format!(
            "epoch {epoch}: dev accuracy {:.4}, mcc {:.4}, f1 {:.4}{}",
            scores.accuracy,
            scores.mcc,
            scores.f1,
            if scores.collapsed { " (collapsed: one class predicted)" } else { "" }
        ));
    }
}

impl FinetuneArgs {
    pub fn run(self, quiet: bool) -> Result<()> {
        let pruning = self.selection.resolve(&PRUNING)?;
        std::fs::create_dir_all(&self.out)
            .with_context(|| format!("cannot create the output directory {}", self.out.display()))?;
        // One run per output directory: held until this process ends (the OS releases it if the
        // process is killed), so a grid driver can tell a live run from an abandoned one.
        let _lock = common::lock_dir(&self.out)?;
        let result_path = self.out.join("result.json");
        let mut record = self.initial_record(&pruning);
        // A panic inside the backend (CUDA out of memory, a kernel that cannot launch) becomes a
        // failed result like any other error, so a grid keeps what it knows and goes on.
        let evals = RefCell::new(Vec::new());
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.train(&pruning, &mut record, &evals, quiet)))
                .unwrap_or_else(|payload| Err(anyhow::anyhow!(panics::reason(&panics::message(payload.as_ref())))));
        match outcome {
            Ok(()) => {
                record.status = Status::Finished;
                write_atomic(&result_path, &record.to_json_pretty())?;
                // The result is complete: the epoch checkpoint has served its purpose.
                let checkpoint = self.checkpoint_dir();
                if checkpoint.exists()
                    && let Err(err) = std::fs::remove_dir_all(&checkpoint)
                {
                    tracing::warn!(dir = %checkpoint.display(), %err, "could not remove the finished run's checkpoint");
                }
                Ok(())
            }
            Err(err) => {
                record.status = Status::Failed;
                let text = format!("{err:#}");
                let reason = panics::failure_reason(&text, panics::elsewhere());
                // A panic on another thread came first: it leads the error too.
                let err = if reason == text { err } else { anyhow::anyhow!(reason.clone()) };
                record.reason = Some(reason);
                // What the run learned before it failed is kept.
                if record.epochs.is_empty() {
                    record.epochs_evaluated = evals.take();
                }
                write_atomic(&result_path, &record.to_json_pretty())?;
                Err(err.context(format!("run failed; see {}", result_path.display())))
            }
        }
    }

    /// The record of the run as it starts: its settings, and the build and machine.
    fn initial_record(&self, pruning: &Resolved) -> RunRecord {
        let started_unix =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        RunRecord {
            schema: prunelab_record::SCHEMA,
            status: Status::Running,
            reason: None,
            model: self.model_id.clone().unwrap_or_else(|| self.model.clone()),
            model_path: Some(self.model.clone()),
            revision: Some(self.revision.clone()),
            task: self.task.to_string(),
            pruning: PruningRecord {
                scheme: common::value_name(&pruning.scheme),
                amount: pruning.amount,
                scope: common::value_name(&pruning.scope),
                masks_from: self.masks.clone(),
                mask_mode: self.mask_mode(),
                nm: (pruning.scheme == SchemeArg::Nm).then_some([pruning.n, pruning.m]),
                calibration: (pruning.scheme == SchemeArg::Wanda).then_some(self.calibration),
                schedule: match self.schedule {
                    ScheduleArg::Oneshot => Schedule::OneShot,
                    ScheduleArg::Gradual => Schedule::Gradual(GradualSchedule {
                        initial_amount: self.initial_amount,
                        start: self.prune_start,
                        end: self.prune_end,
                        every: self.prune_every,
                        events: Vec::new(),
                    }),
                },
            },
            distillation: self.teacher.as_ref().map(|teacher| Distillation {
                teacher: teacher.clone(),
                alpha: self.kd_alpha,
                temperature: self.kd_temperature,
                teacher_seconds: None,
                teacher_params: None,
            }),
            backend: Some(backend::NAME.to_owned()),
            kernels: Some(backend::KERNELS.to_owned()),
            device: Some(format!("{:?}", backend::device())),
            hardware: Some(backend::hardware()),
            precision: Some(backend::precision_name().to_owned()),
            gemm: Some(backend::gemm_name().to_owned()),
            fused: Some(backend::fused_name().to_owned()),
            matmul_arithmetic: Some(backend::matmul_arithmetic()),
            prunelab_commit: Some(env!("PRUNELAB_GIT_COMMIT").to_owned()),
            burn_version: Some("0.21.0".to_owned()),
            started_unix: Some(started_unix),
            hyperparameters: None,
            max_length: None,
            data: None,
            load: None,
            sparsity_before: None,
            resumed_after_epoch: None,
            epochs: Vec::new(),
            epochs_evaluated: Vec::new(),
            best_epoch: None,
            first_step_seconds: None,
            metrics: None,
            sparsity_after: None,
            inference: None,
        }
    }

    fn mask_mode(&self) -> MaskMode {
        match self.mask_mode {
            MaskModeArg::Hold => MaskMode::Hold,
            MaskModeArg::Release => MaskMode::Release,
        }
    }

    fn checkpoint_dir(&self) -> PathBuf {
        self.out.join("checkpoint")
    }

    fn config(&self) -> TrainConfig {
        TrainConfig {
            learning_rate: self.lr,
            weight_decay: self.weight_decay,
            warmup_ratio: self.warmup_ratio,
            num_train_epochs: self.epochs,
            per_device_train_batch_size: self.batch_size,
            per_device_eval_batch_size: self.eval_batch_size,
            gradient_accumulation_steps: self.grad_accum,
            max_grad_norm: self.max_grad_norm,
            seed: self.seed,
            group_by_length: self.group_by_length,
            logging_steps: self.logging_steps,
            ..TrainConfig::default()
        }
    }

    /// The one-shot masks of the run: read from `--masks`, computed by `--scheme`, or none
    /// (also for a gradual schedule, which computes its own during training). Wanda's come from
    /// the first `--calibration` training examples through `model`.
    fn masks(
        &self,
        pruning: &Resolved,
        model: &prunelab_models::Classifier<backend::Backend>,
        calibration: (&[prunelab_glue::Encoded], &GlueBatcher),
        scope: &Scope,
    ) -> Result<Option<MaskSet>> {
        let before = weights(model, model.naming().as_ref());
        if let Some(path) = &self.masks {
            return Ok(Some(load_masks(path, &before)?));
        }
        if pruning.scheme == SchemeArg::Wanda {
            if self.schedule == ScheduleArg::Gradual {
                bail!("--scheme wanda prunes once, from calibration activations: it takes no --schedule gradual");
            }
            let (train, batcher) = calibration;
            let examples = &train[..train.len().min(self.calibration)];
            let norms = prunelab_train::calibrate::input_norms(model, examples, batcher, &backend::device());
            return Ok(Some(compute_wanda_masks(&before, scope, pruning.amount, &norms)?));
        }
        match (self.schedule, pruning.mask_scheme()) {
            (ScheduleArg::Oneshot, Some(scheme)) => {
                Ok(Some(compute_masks(&before, scope, &PruneSpec { scheme, amount: pruning.amount, seed: self.seed })?))
            }
            _ => Ok(None),
        }
    }

    /// The gradual schedule of `--schedule gradual`, checked against the other options.
    fn gradual<'a>(&self, pruning: &Resolved, scope: &'a Scope) -> Result<Option<GradualPruning<'a>>> {
        if self.schedule == ScheduleArg::Oneshot {
            return Ok(None);
        }
        let scheme = match pruning.mask_scheme() {
            Some(scheme @ (Scheme::GlobalL1 | Scheme::LayerL1 | Scheme::Random)) if self.masks.is_none() => scheme,
            _ => bail!(
                "--schedule gradual computes masks during training: it needs --scheme global-l1, layer-l1 or random (not nm, none or --masks)"
            ),
        };
        if self.mask_mode == MaskModeArg::Release {
            bail!("--schedule gradual holds its masks; --mask-mode release applies to one-shot pruning only");
        }
        Ok(Some(GradualPruning {
            scope,
            scheme,
            seed: self.seed,
            amount: pruning.amount,
            initial_amount: self.initial_amount,
            start: self.prune_start,
            end: self.prune_end,
            every: self.prune_every,
        }))
    }

    /// The teacher of `--teacher`: a classifier with a trained head for the task, and the
    /// student's tokenizer.
    fn teacher(
        &self,
        tokenizer: &std::path::Path,
        device: &burn::tensor::Device<backend::Backend>,
    ) -> Result<Option<prunelab_models::Classifier<backend::Backend>>> {
        let Some(teacher) = &self.teacher else { return Ok(None) };
        let files = common::model_files(teacher, "main").context("loading the teacher")?;
        let loaded = load_classifier::<backend::Backend>(&files, self.task.spec().num_labels(), device)
            .with_context(|| format!("loading the teacher {teacher}"))?;
        if !loaded.report.newly_initialized.is_empty() {
            bail!(
                "the teacher {teacher} has no trained classification head ({} missing): give a fine-tuned model, such as the model/ directory of a dense run",
                loaded.report.newly_initialized.join(", ")
            );
        }
        if let Some(own) = &files.tokenizer
            && std::fs::read(own).ok() != std::fs::read(tokenizer).ok()
        {
            bail!(
                "the teacher {teacher} has another tokenizer ({}) than the student ({}): distillation needs the same token ids",
                own.display(),
                tokenizer.display()
            );
        }
        Ok(Some(loaded.model))
    }

    fn train(
        &self,
        pruning: &Resolved,
        record: &mut RunRecord,
        evals: &RefCell<Vec<EvaluatedEpoch>>,
        quiet: bool,
    ) -> Result<()> {
        let spec = self.task.spec();
        let files = common::model_files(&self.model, &self.revision)?;
        let tokenizer = common::tokenizer_file(self.tokenizer.as_deref(), &files)?;
        let encoder = TextEncoder::from_file(&tokenizer)?.with_max_length(self.max_length)?;
        let source = self.data.source();
        let mut train = source.load(self.task, Split::Train)?;
        let mut dev = source.load(self.task, Split::Dev)?;
        if let Some(n) = self.train_limit {
            train.truncate(n);
        }
        if let Some(n) = self.dev_limit {
            dev.truncate(n);
        }
        let device = backend::device();
        // Seed before loading: a checkpoint without a classification head gets a new one drawn
        // from the backend's generator, and the run must not depend on the process it runs in.
        <TrainBackend as burn::tensor::backend::Backend>::seed(&device, self.seed);
        let loaded = load_classifier::<TrainBackend>(&files, spec.num_labels(), &device)?;
        if self.max_length > loaded.model.max_positions() {
            bail!("--max-length {} exceeds the model's {} positions", self.max_length, loaded.model.max_positions());
        }
        let batcher = GlueBatcher {
            pad_id: encoder.pad_id(),
            padding_side: PaddingSide::Right,
            token_types: loaded.model.uses_token_types(),
        };
        let (train_enc, dev_enc) = (encoder.encode(&train.examples)?, encoder.encode(&dev.examples)?);

        let naming = loaded.model.naming();
        let scope = Scope::new(pruning.scope_kind());
        let masks = self.masks(pruning, &loaded.model.valid(), (&train_enc, &batcher), &scope)?;
        let gradual = self.gradual(pruning, &scope)?;
        let teacher = self.teacher(&tokenizer, &device)?;
        let config = self.config();
        record.hyperparameters = Some(config.clone());
        record.max_length = Some(self.max_length);
        record.data = Some(DataRecord {
            train: train.len(),
            dev: dev.len(),
            train_source: train.source.display().to_string(),
            dev_source: dev.source.display().to_string(),
        });
        record.load = Some(common::load_record(&loaded.report));
        if let Some(m) = &masks {
            let pruned = prunelab_prune::DeviceMasks::<TrainBackend>::new(m, &device).apply(loaded.model.clone());
            record.sparsity_before = Some(sparsity(&weights(&pruned, naming.as_ref()), &scope));
        }

        let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        let mut reporter = Bars { bar, steps: 0, fault_at: injected_fault_step(), evals };
        let fingerprint = Checkpointing::fingerprint(record);
        let checkpoint_dir = self.checkpoint_dir();
        let options = TrainOptions {
            config,
            masks: masks.as_ref().map(|m| (m, self.mask_mode())),
            gradual,
            distillation: teacher.as_ref().map(|teacher| prunelab_train::Distillation {
                teacher,
                alpha: self.kd_alpha,
                temperature: self.kd_temperature,
            }),
            checkpoint: (!self.no_checkpoint)
                .then(|| Checkpointing { dir: &checkpoint_dir, fingerprint: &fingerprint }),
            ..TrainOptions::default()
        };
        let data = TrainData { train: &train_enc, dev: &dev_enc, task: self.task, batcher: &batcher };
        let outcome = fine_tune(loaded.model, &data, &options, &device, &mut reporter)?;
        reporter.bar.finish_and_clear();
        if let Schedule::Gradual(schedule) = &mut record.pruning.schedule {
            schedule.events = outcome.prune_events.clone();
        }
        if let (Some(d), Some(teacher)) = (&mut record.distillation, &teacher) {
            d.teacher_seconds = outcome.teacher_seconds;
            d.teacher_params = Some(teacher.param_infos().iter().map(|p| p.numel()).sum());
        }
        record.resumed_after_epoch = outcome.resumed_after_epoch;
        record.epochs = outcome.epochs.clone();
        record.best_epoch = Some(outcome.best_epoch);
        record.first_step_seconds = Some(outcome.first_step_seconds);
        let best = outcome.epochs[outcome.best_epoch - 1].eval;
        record.metrics = Some(Metrics::of(&best));
        let after = weights(&outcome.best_model, naming.as_ref());
        let held = sparsity(&after, &scope);
        let masks = masks.or(outcome.final_masks);
        if masks.is_some() {
            #[allow(clippy::print_stdout)]
            {
                println!(
                    "sparsity after fine-tuning: {:.2}% of the scope ({} of {} weights are zero), {:.2}% of all parameters",
                    100.0 * held.scope_total.fraction(),
                    held.scope_total.zeros,
                    held.scope_total.params,
                    100.0 * held.all_total.fraction()
                );
            }
        }
        record.sparsity_after = Some(held);
        // The best model, as a Hugging Face checkpoint with its tokenizer (and masks, if any).
        if !self.no_export {
            let model_dir = self.out.join("model");
            prunelab_prune::export::export_hf(&after, &files.config, spec.num_labels(), &[], &model_dir)?;
            write_atomic(
                &model_dir.join("tokenizer.json"),
                &std::fs::read(&tokenizer).with_context(|| format!("reading {}", tokenizer.display()))?,
            )?;
        }
        if let Some(m) = &masks {
            let meta = std::collections::HashMap::from([("model".to_owned(), files.name.clone())]);
            prunelab_prune::file::save_masks(m, &self.out.join("masks.safetensors"), &meta)?;
        }

        let model = &outcome.best_model;
        record.inference = Some(time_inference(model, &dev_enc, &batcher, &device)?);
        // Test-split predictions in GLUE's submission format.
        if self.no_test_predictions {
            tracing::info!("test predictions skipped (--no-test-predictions)");
        } else if let Ok(test) = source.load(self.task, Split::Test) {
            let test_enc = encoder.encode(&test.examples)?;
            let predictions = predict(model, &test_enc, &batcher, self.eval_batch_size, &device);
            common::write_predictions(&self.out.join("test_predictions.tsv"), &predictions)?;
        }
        #[allow(clippy::print_stdout)]
        {
            println!(
                "{} on {}: best epoch {} {} {:.4} (accuracy {:.4}, mcc {:.4}); {:.1} samples/s training; result in {}",
                files.name,
                self.task,
                outcome.best_epoch,
                spec.main_metric.name(),
                best.main_value,
                best.accuracy,
                best.mcc,
                outcome.epochs.iter().map(|e| e.samples_per_second).sum::<f64>() / outcome.epochs.len() as f64,
                self.out.join("result.json").display()
            );
        }
        Ok(())
    }
}
