//! One run's `result.json` (a [`prunelab_record::RunRecord`], written by `prunelab finetune`) as
//! the report uses it: normalised into an [`Arm`], with everything a failed run may lack optional.

use prunelab_record::{RunRecord, Schedule, SparsityReport};

pub use prunelab_record::Status;

/// What was pruned and how the masks were treated: the unit results are compared across.
///
/// The dense baseline (scheme `none`) is one arm whatever its scope and mask mode say.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Arm {
    /// `none`, `global-l1`, `layer-l1`, `nm`, `random`, or `masks` (masks read from a file).
    pub scheme: String,
    /// `default` or `seed` (empty for the dense arm).
    pub scope: String,
    /// `hold` or `release` (empty for the dense arm).
    pub mask_mode: String,
    /// How the masks came about besides the scheme: empty for one-shot pruning before
    /// fine-tuning (the study's method), `gradual` for a gradual schedule, with `+kd` when a
    /// teacher distilled into the model (`kd` alone for one-shot pruning with a teacher).
    pub method: String,
}

impl Arm {
    /// The dense baseline.
    pub fn dense() -> Self {
        Arm { scheme: "none".into(), scope: String::new(), mask_mode: String::new(), method: String::new() }
    }

    /// Whether this is the dense baseline.
    pub fn is_dense(&self) -> bool {
        self.scheme == "none"
    }

    /// `dense`, or `scheme/scope/mask_mode` (`global-l1/default/hold`), with `/method` after it
    /// unless the method is one-shot (`global-l1/default/hold/gradual+kd`).
    pub fn label(&self) -> String {
        match (self.is_dense(), self.method.is_empty()) {
            (true, _) => "dense".into(),
            (false, true) => format!("{}/{}/{}", self.scheme, self.scope, self.mask_mode),
            (false, false) => format!("{}/{}/{}/{}", self.scheme, self.scope, self.mask_mode, self.method),
        }
    }

    /// The label made safe for file names (`global-l1-default-hold`).
    pub fn slug(&self) -> String {
        slug(&self.label())
    }
}

/// Zeros among some parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Count {
    /// Exactly zero.
    pub zeros: u64,
    /// Parameters.
    pub params: u64,
}

impl Count {
    /// `zeros / params`, `None` when there are no parameters.
    pub fn fraction(&self) -> Option<f64> {
        (self.params > 0).then(|| self.zeros as f64 / self.params as f64)
    }

    fn of(count: prunelab_record::Count) -> Count {
        Count { zeros: count.zeros as u64, params: count.params as u64 }
    }
}

/// Sparsity of one layer (`layer: None`: embeddings, final norm, head).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSparsity {
    /// Layer index.
    pub layer: Option<u64>,
    /// Among the layer's parameters in the pruning scope.
    pub scope: Count,
    /// Among all the layer's parameters.
    pub all: Count,
}

/// Sparsity of a model, measured on its weights.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sparsity {
    /// The scope the `scope` counts refer to.
    pub scope: Option<String>,
    /// Zeros in the scope.
    pub scope_total: Option<Count>,
    /// Zeros among all parameters.
    pub all_total: Option<Count>,
    /// Per layer.
    pub layers: Vec<LayerSparsity>,
}

impl Sparsity {
    fn of(report: SparsityReport) -> Sparsity {
        Sparsity {
            scope: Some(report.scope),
            scope_total: Some(Count::of(report.scope_total)),
            all_total: Some(Count::of(report.all_total)),
            layers: report
                .layers
                .into_iter()
                .map(|l| LayerSparsity {
                    layer: l.layer.map(|i| i as u64),
                    scope: Count::of(l.scope),
                    all: Count::of(l.all),
                })
                .collect(),
        }
    }
}

/// One epoch of training and its dev evaluation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Epoch {
    /// 1-based.
    pub epoch: Option<u64>,
    /// Mean training loss.
    pub train_loss: Option<f64>,
    /// Wall-clock seconds of training.
    pub train_seconds: Option<f64>,
    /// Training examples per second.
    pub samples_per_second: Option<f64>,
    /// Training tokens (padding included) per second.
    pub tokens_per_second: Option<f64>,
    /// The task's main metric on dev after this epoch.
    pub main_value: Option<f64>,
}

/// The best epoch's dev scores.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metrics {
    /// `accuracy` or `mcc`.
    pub main_metric: Option<String>,
    /// The main metric's value.
    pub main: Option<f64>,
    /// Accuracy.
    pub accuracy: Option<f64>,
    /// Matthews correlation.
    pub mcc: Option<f64>,
    /// F1 of the positive class.
    pub f1: Option<f64>,
    /// Whether the model predicted one class only.
    pub collapsed: Option<bool>,
}

/// Inference timing of the best model on dev.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Inference {
    /// Median latency of one example, ms.
    pub latency_ms_p50: Option<f64>,
    /// 95th percentile latency of one example, ms.
    pub latency_ms_p95: Option<f64>,
    /// Examples per second in batches of 64.
    pub throughput_batch64: Option<f64>,
}

/// One run, as its `result.json` records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The file, relative to the report's input directory (`/`-separated).
    pub path: String,
    /// How it ended.
    pub status: Status,
    /// Why it failed.
    pub reason: Option<String>,
    /// The model as given to `prunelab finetune` (directory or Hub id).
    pub model: String,
    /// Hub revision.
    pub revision: Option<String>,
    /// `sst2` or `cola`.
    pub task: String,
    /// Scheme, scope and mask mode (normalised; the dense baseline is one arm).
    pub arm: Arm,
    /// The scope as written (also for the dense arm).
    pub scope: Option<String>,
    /// The mask mode as written (also for the dense arm).
    pub mask_mode: Option<String>,
    /// Pruned fraction of the scope asked for (0 for the dense arm).
    pub amount: f64,
    /// Masks read from this file instead of computed.
    pub masks_from: Option<String>,
    /// The training seed (from the hyper-parameters, else from a `seed-N` directory).
    pub seed: Option<u64>,
    /// Burn backend.
    pub backend: Option<String>,
    /// Device.
    pub device: Option<String>,
    /// The machine, where the record names it.
    pub hardware: Option<prunelab_record::Hardware>,
    /// Floating-point precision.
    pub precision: Option<String>,
    /// prunelab's commit.
    pub prunelab_commit: Option<String>,
    /// Burn's version.
    pub burn_version: Option<String>,
    /// Hyper-parameters, as text, sorted by name.
    pub hyperparameters: Vec<(String, String)>,
    /// Truncation length.
    pub max_length: Option<u64>,
    /// Training examples.
    pub train_examples: Option<u64>,
    /// Dev examples.
    pub dev_examples: Option<u64>,
    /// Per epoch.
    pub epochs: Vec<Epoch>,
    /// The epoch whose model was kept (1-based).
    pub best_epoch: Option<u64>,
    /// Seconds of the first optimizer step (compilation and warm-up included).
    pub first_step_seconds: Option<f64>,
    /// The best epoch's dev scores.
    pub metrics: Metrics,
    /// After pruning, before fine-tuning.
    pub sparsity_before: Option<Sparsity>,
    /// After fine-tuning (the best model).
    pub sparsity_after: Option<Sparsity>,
    /// Inference timing.
    pub inference: Inference,
}

impl Run {
    /// The run a record describes; `relative` is its file's name in the report.
    pub(crate) fn from_record(relative: String, record: RunRecord) -> Run {
        let pruning = record.pruning;
        let scheme = match normalise_scheme(&pruning.scheme) {
            // `--masks FILE` leaves `--scheme` at its default, `none`: the run is pruned all the same.
            s if s == "none" && pruning.masks_from.is_some() => "masks".to_owned(),
            s => s,
        };
        let kd = record.distillation.is_some();
        let method = match (&pruning.schedule, kd) {
            (Schedule::OneShot, false) => "",
            (Schedule::OneShot, true) => "kd",
            (Schedule::Gradual(_), false) => "gradual",
            (Schedule::Gradual(_), true) => "gradual+kd",
        };
        let arm = if scheme == "none" {
            Arm::dense()
        } else {
            Arm {
                scheme,
                scope: pruning.scope.clone(),
                mask_mode: pruning.mask_mode.name().to_owned(),
                method: method.into(),
            }
        };
        let (hyperparameters, seed) = match &record.hyperparameters {
            Some(config) => (scalars(config), Some(config.seed)),
            None => (Vec::new(), None),
        };
        let epochs = record
            .epochs
            .iter()
            .map(|e| Epoch {
                epoch: Some(e.epoch as u64),
                train_loss: Some(e.train_loss),
                train_seconds: Some(e.train_seconds),
                samples_per_second: Some(e.samples_per_second),
                tokens_per_second: Some(e.tokens_per_second),
                main_value: Some(e.eval.main_value),
            })
            .collect();
        let metrics = record.metrics.map(|m| Metrics {
            main_metric: Some(m.main_metric),
            main: Some(m.main),
            accuracy: Some(m.accuracy),
            mcc: Some(m.mcc),
            f1: Some(m.f1),
            collapsed: Some(m.collapsed),
        });
        let inference = record.inference.map(|i| Inference {
            latency_ms_p50: Some(i.latency_ms_batch1_p50),
            latency_ms_p95: Some(i.latency_ms_batch1_p95),
            throughput_batch64: Some(i.throughput_batch64_per_s),
        });
        let amount = if arm.is_dense() { 0.0 } else { pruning.amount };
        Run {
            seed: seed.or_else(|| seed_from_path(&relative)),
            path: relative,
            status: record.status,
            reason: record.reason,
            model: record.model,
            revision: record.revision,
            task: record.task,
            arm,
            scope: Some(pruning.scope),
            mask_mode: Some(pruning.mask_mode.name().to_owned()),
            amount,
            masks_from: pruning.masks_from.map(|p| p.display().to_string()),
            backend: record.backend,
            device: record.device,
            hardware: record.hardware,
            precision: record.precision,
            prunelab_commit: record.prunelab_commit,
            burn_version: record.burn_version,
            hyperparameters,
            max_length: record.max_length.map(|m| m as u64),
            train_examples: record.data.as_ref().map(|d| d.train as u64),
            dev_examples: record.data.as_ref().map(|d| d.dev as u64),
            epochs,
            best_epoch: record.best_epoch.map(|e| e as u64),
            first_step_seconds: record.first_step_seconds,
            metrics: metrics.unwrap_or_default(),
            sparsity_before: record.sparsity_before.map(Sparsity::of),
            sparsity_after: record.sparsity_after.map(Sparsity::of),
            inference: inference.unwrap_or_default(),
        }
    }

    /// Whether the run finished.
    pub fn finished(&self) -> bool {
        self.status == Status::Finished
    }

    /// The model's short name: a Hub id as is, a directory by its last component.
    pub fn model_name(&self) -> String {
        model_name(&self.model)
    }

    /// The task's main metric: as recorded, else the task's (`accuracy` for SST-2, `mcc` for CoLA).
    pub fn main_metric(&self) -> String {
        self.metrics.main_metric.clone().unwrap_or_else(|| default_metric(&self.task).to_owned())
    }

    /// Training seconds over all epochs.
    pub fn train_seconds_total(&self) -> Option<f64> {
        sum(self.epochs.iter().map(|e| e.train_seconds))
    }

    /// Mean over epochs of training examples per second.
    pub fn samples_per_second(&self) -> Option<f64> {
        mean(self.epochs.iter().filter_map(|e| e.samples_per_second))
    }

    /// Mean over epochs of training tokens per second.
    pub fn tokens_per_second(&self) -> Option<f64> {
        mean(self.epochs.iter().filter_map(|e| e.tokens_per_second))
    }
}

/// The hyper-parameters as `(name, value)` text pairs, sorted by name.
fn scalars(config: &prunelab_record::TrainConfig) -> Vec<(String, String)> {
    let value = serde_json::to_value(config).unwrap_or_default();
    let mut pairs: Vec<(String, String)> = value
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.to_string().trim_matches('"').to_owned())).collect())
        .unwrap_or_default();
    pairs.sort();
    pairs
}

/// `globall1` (older files) → `global-l1`, `layerl1` → `layer-l1`.
pub(crate) fn normalise_scheme(scheme: &str) -> String {
    match scheme {
        "globall1" => "global-l1".into(),
        "layerl1" => "layer-l1".into(),
        other => other.into(),
    }
}

/// The task's main metric name when a file does not say.
pub(crate) fn default_metric(task: &str) -> &'static str {
    if task == "cola" { "mcc" } else { "accuracy" }
}

/// A Hub id (`gpt2`, `microsoft/deberta-base`) as is; a path (`../models/gpt2`) by its last part.
pub fn model_name(model: &str) -> String {
    let trimmed = model.trim_end_matches(['/', '\\']);
    let is_path = trimmed.starts_with(['/', '.', '~']) || trimmed.contains('\\') || trimmed.matches('/').count() > 1;
    let name = if is_path { trimmed.rsplit(['/', '\\']).next().unwrap_or(trimmed) } else { trimmed };
    if name.is_empty() { model.to_owned() } else { name.to_owned() }
}

/// `text` with every character other than ASCII letters, digits, `.`, `_` and `-` replaced by `-`.
pub fn slug(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' }).collect()
}

/// The seed of a `…/seed-N/…` path, for failed runs that died before recording it.
fn seed_from_path(relative: &str) -> Option<u64> {
    relative.split('/').rev().find_map(|part| part.strip_prefix("seed-")?.parse().ok())
}

fn sum(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    values.fold(None, |acc, v| match v {
        Some(v) => Some(acc.unwrap_or(0.0) + v),
        None => acc,
    })
}

/// The mean, `None` for no values.
pub(crate) fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (n, total) = values.fold((0usize, 0.0), |(n, t), v| (n + 1, t + v));
    (n > 0).then(|| total / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_and_slugs() {
        assert_eq!(model_name("gpt2"), "gpt2");
        assert_eq!(model_name("microsoft/deberta-base"), "microsoft/deberta-base");
        assert_eq!(model_name("../shared/models/all-MiniLM-L6-v2"), "all-MiniLM-L6-v2");
        assert_eq!(model_name("/models/gpt2/"), "gpt2");
        assert_eq!(slug("microsoft/deberta-base"), "microsoft-deberta-base");
        assert_eq!(slug("global-l1/default/hold"), "global-l1-default-hold");
    }

    #[test]
    fn seeds_from_grid_paths() {
        assert_eq!(seed_from_path("runs/gpt2/sst2/dense/0/seed-13/result.json"), Some(13));
        assert_eq!(seed_from_path("ft/result.json"), None);
    }

    #[test]
    fn the_sample_file_reads() {
        // A real file's shape (abridged), with the older scheme spelling.
        let text = r#"{"status": "finished", "model": "../shared/models/all-MiniLM-L6-v2", "task": "cola",
            "pruning": {"amount": 0.5, "mask_mode": "hold", "masks_from": null, "scheme": "globall1", "scope": "default"},
            "hyperparameters": {"seed": 42, "learning_rate": 0.0001},
            "epochs": [{"epoch": 1, "samples_per_second": 4.0, "tokens_per_second": 40.0, "train_seconds": 10.0,
                        "train_loss": 0.6, "steps": 3, "eval_seconds": 1.0,
                        "eval": {"main": "matthews", "main_value": 0.0, "accuracy": 0.75, "mcc": 0.0, "f1": 0.857,
                                 "collapsed": true, "examples": 4}}],
            "metrics": {"main_metric": "mcc", "main": 0.0, "accuracy": 0.75, "mcc": 0.0, "f1": 0.857, "collapsed": true},
            "sparsity_after": {"scope": "default", "all_total": {"params": 100, "zeros": 40},
                               "scope_total": {"params": 80, "zeros": 40},
                               "layers": [{"layer": null, "all": {"params": 20, "zeros": 0}, "scope": {"params": 0, "zeros": 0}}]}}"#;
        let path = std::path::Path::new("result.json");
        let run = Run::from_record("result.json".into(), RunRecord::from_json(path, text).unwrap());
        assert_eq!(run.arm.label(), "global-l1/default/hold");
        assert_eq!(run.seed, Some(42));
        assert_eq!(run.model_name(), "all-MiniLM-L6-v2");
        let lr = run.hyperparameters.iter().find(|(k, _)| k == "learning_rate");
        assert_eq!(lr, Some(&("learning_rate".to_owned(), "0.0001".to_owned())));
        assert_eq!(run.sparsity_after.as_ref().unwrap().all_total.unwrap().fraction(), Some(0.4));
        assert_eq!(run.sparsity_after.as_ref().unwrap().layers[0].layer, None);
        assert_eq!(run.samples_per_second(), Some(4.0));
        assert_eq!(run.metrics.collapsed, Some(true));
    }
}
