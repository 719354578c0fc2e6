//! `prunelab finetune`: prune (optionally), fine-tune with masks held, evaluate, time, and write
//! one result file per run.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use prunelab_glue::{GlueBatcher, GlueTask, PaddingSide, Split, TextEncoder};
use prunelab_models::load_classifier;
use prunelab_prune::file::{load_masks, write_atomic};
use prunelab_prune::{PruneSpec, Scheme, Scope, ScopeKind, compute_masks, sparsity};
use prunelab_stats::weights;
use prunelab_train::{Checkpointing, MaskMode, Reporter, TrainConfig, fine_tune_resumable, predict};
use serde_json::json;

use crate::backend::{self, TrainBackend};
use crate::common;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SchemeArg {
    /// No pruning
    None,
    /// Global magnitude over the scope
    GlobalL1,
    /// Magnitude within each tensor
    LayerL1,
    /// Keep N of every M weights along the input dimension
    Nm,
    /// Uniformly random (baseline)
    Random,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ScopeArg {
    /// Attention and MLP weight matrices of every layer
    Default,
    /// Every nn.Linear weight, as the study did (GPT-2: the score head only)
    Seed,
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
    /// Pruning before fine-tuning
    #[arg(long, value_enum, default_value_t = SchemeArg::None)]
    scheme: SchemeArg,
    /// Fraction of the scope to prune, in [0, 1)
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    amount: f64,
    /// Pruning scope
    #[arg(long, value_enum, default_value_t = ScopeArg::Default)]
    scope: ScopeArg,
    /// N and M of N:M
    #[arg(long, num_args = 2, value_names = ["N", "M"], default_values_t = [2, 4])]
    nm: Vec<usize>,
    /// Apply the masks of this file (from `prunelab prune --out`) instead of computing them
    #[arg(long, value_name = "FILE", conflicts_with = "scheme")]
    masks: Option<PathBuf>,
    /// Hold masks through training, or release them as the study did
    #[arg(long, value_enum, default_value_t = MaskModeArg::Hold)]
    mask_mode: MaskModeArg,
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

/// Why a panic stopped training, for the result file: "out of memory: …" when the backend ran
/// out of memory, else "the backend panicked: …".
fn panic_reason(payload: &(dyn std::any::Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned());
    let lower = message.to_lowercase();
    if ["out of memory", "outofmemory", "out_of_memory", "oom"].iter().any(|k| lower.contains(k)) {
        format!("out of memory: {message}")
    } else {
        format!("the backend panicked: {message}")
    }
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
    evals: &'a std::cell::RefCell<Vec<serde_json::Value>>,
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
        self.evals.borrow_mut().push(json!({"epoch": epoch, "eval": scores}));
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
        let started_at =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        std::fs::create_dir_all(&self.out)
            .with_context(|| format!("cannot create the output directory {}", self.out.display()))?;
        // One run per output directory: held until this process ends (the OS releases it if the
        // process is killed), so a grid driver can tell a live run from an abandoned one.
        let _lock = common::lock_dir(&self.out)?;
        let result_path = self.out.join("result.json");
        let mut record = json!({
            "status": "running",
            "model": self.model_id.as_deref().unwrap_or(&self.model),
            "model_path": self.model,
            "revision": self.revision,
            "task": self.task,
            "pruning": {
                "scheme": common::value_name(&self.scheme),
                "amount": self.amount,
                "scope": common::value_name(&self.scope),
                "masks_from": self.masks,
                "mask_mode": common::value_name(&self.mask_mode),
            },
            "backend": backend::NAME,
            "kernels": backend::KERNELS,
            "device": format!("{:?}", backend::device()),
            "precision": backend::precision_name(),
            "gemm": backend::gemm_name(),
            "matmul_arithmetic": backend::matmul_arithmetic(),
            "prunelab_commit": env!("PRUNELAB_GIT_COMMIT"),
            "burn_version": "0.21.0",
            "started_unix": started_at,
        });
        // A panic inside the backend (CUDA out of memory, a kernel that cannot launch) becomes a
        // failed result like any other error, so a grid keeps what it knows and goes on.
        let evals = std::cell::RefCell::new(Vec::new());
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.train(&mut record, &evals, quiet)))
            .unwrap_or_else(|payload| Err(anyhow::anyhow!(panic_reason(payload.as_ref()))));
        match outcome {
            Ok(()) => {
                record["status"] = json!("finished");
                write_atomic(&result_path, &serde_json::to_vec_pretty(&record)?)?;
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
                record["status"] = json!("failed");
                record["reason"] = json!(format!("{err:#}"));
                // What the run learned before it failed is kept.
                if record.get("epochs").is_none() && !evals.borrow().is_empty() {
                    record["epochs_evaluated"] = json!(*evals.borrow());
                }
                write_atomic(&result_path, &serde_json::to_vec_pretty(&record)?)?;
                Err(err.context(format!("run failed; see {}", result_path.display())))
            }
        }
    }

    fn checkpoint_dir(&self) -> PathBuf {
        self.out.join("checkpoint")
    }

    fn train(
        &self,
        record: &mut serde_json::Value,
        evals: &std::cell::RefCell<Vec<serde_json::Value>>,
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
        let padding_side = PaddingSide::Right;
        let batcher =
            GlueBatcher { pad_id: encoder.pad_id(), padding_side, token_types: loaded.model.uses_token_types() };
        let (train_enc, dev_enc) = (encoder.encode(&train.examples)?, encoder.encode(&dev.examples)?);

        let naming = loaded.model.naming();
        let scope = Scope::new(match self.scope {
            ScopeArg::Default => ScopeKind::Default,
            ScopeArg::Seed => ScopeKind::Seed,
        });
        let before = weights(&loaded.model, naming.as_ref());
        let masks = match (&self.masks, self.scheme) {
            (Some(path), _) => Some(load_masks(path, &before)?),
            (None, SchemeArg::None) => None,
            (None, scheme) => {
                let scheme = match scheme {
                    SchemeArg::GlobalL1 => Scheme::GlobalL1,
                    SchemeArg::LayerL1 => Scheme::LayerL1,
                    SchemeArg::Nm => Scheme::NM { n: self.nm[0], m: self.nm[1] },
                    SchemeArg::Random | SchemeArg::None => Scheme::Random,
                };
                Some(compute_masks(&before, &scope, &PruneSpec { scheme, amount: self.amount, seed: self.seed })?)
            }
        };
        let mode = match self.mask_mode {
            MaskModeArg::Hold => MaskMode::Hold,
            MaskModeArg::Release => MaskMode::Release,
        };
        let config = TrainConfig {
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
        };
        record["hyperparameters"] = serde_json::to_value(&config)?;
        record["max_length"] = json!(self.max_length);
        record["data"] =
            json!({"train": train.len(), "dev": dev.len(), "train_source": train.source, "dev_source": dev.source});
        record["load"] = serde_json::to_value(&loaded.report)?;
        if let Some(m) = &masks {
            let pruned = prunelab_prune::DeviceMasks::<TrainBackend>::new(m, &device).apply(loaded.model.clone());
            record["sparsity_before"] = serde_json::to_value(sparsity(&weights(&pruned, naming.as_ref()), &scope))?;
        }

        let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        let mut reporter = Bars { bar, steps: 0, fault_at: injected_fault_step(), evals };
        // What a checkpoint must agree on to be resumed by this run.
        let fingerprint = json!({
            "model": record["model"], "revision": record["revision"], "task": record["task"],
            "pruning": record["pruning"], "hyperparameters": record["hyperparameters"],
            "max_length": record["max_length"], "train": train.len(), "dev": dev.len(),
            "backend": record["backend"], "precision": record["precision"],
        })
        .to_string();
        let checkpoint_dir = self.checkpoint_dir();
        let checkpoint =
            (!self.no_checkpoint).then(|| Checkpointing { dir: &checkpoint_dir, fingerprint: &fingerprint });
        let outcome = fine_tune_resumable(
            loaded.model,
            &train_enc,
            &dev_enc,
            self.task,
            &batcher,
            &config,
            masks.as_ref().map(|m| (m, mode)),
            &device,
            &mut reporter,
            checkpoint,
        )?;
        reporter.bar.finish_and_clear();
        if let Some(epoch) = outcome.resumed_after_epoch {
            record["resumed_after_epoch"] = json!(epoch);
        }
        record["epochs"] = serde_json::to_value(&outcome.epochs)?;
        record["best_epoch"] = json!(outcome.best_epoch);
        record["first_step_seconds"] = json!(outcome.first_step_seconds);
        let best = &outcome.epochs[outcome.best_epoch - 1].eval;
        record["metrics"] = json!({"main_metric": spec.main_metric.name(), "main": best.main_value, "accuracy": best.accuracy, "mcc": best.mcc, "f1": best.f1, "collapsed": best.collapsed});
        let after = weights(&outcome.best_model, naming.as_ref());
        let held = sparsity(&after, &scope);
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
        record["sparsity_after"] = serde_json::to_value(&held)?;
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

        // Inference timing on the dev split: latency at batch 1 (first 200 examples) and
        // throughput at batch 64 (after one warm-up pass).
        let model = &outcome.best_model;
        let sample: Vec<_> = dev_enc.iter().take(200).cloned().collect();
        let _ = predict(model, &sample[..sample.len().min(8)], &batcher, 1, &device);
        let mut latencies: Vec<f64> = sample
            .iter()
            .map(|e| {
                let t = Instant::now();
                let _ = predict(model, std::slice::from_ref(e), &batcher, 1, &device);
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        latencies.sort_by(f64::total_cmp);
        let pct = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
        let _ = predict(model, &dev_enc[..dev_enc.len().min(64)], &batcher, 64, &device);
        let t = Instant::now();
        let _ = predict(model, &dev_enc, &batcher, 64, &device);
        let throughput = dev_enc.len() as f64 / t.elapsed().as_secs_f64();
        record["inference"] = json!({"latency_ms_batch1_p50": pct(0.5), "latency_ms_batch1_p95": pct(0.95), "throughput_batch64_per_s": throughput});

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
