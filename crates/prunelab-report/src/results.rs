//! One run's `result.json` (written by `prunelab finetune`), read leniently: a failed run may
//! lack anything but `status`, `model` and `task`.

use std::path::Path;

use crate::error::Result;
use crate::json::Node;

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Fine-tuned, evaluated and timed.
    Finished,
    /// Failed; `reason` says why.
    Failed,
    /// Started and not (yet) finished: still running, or killed.
    Running,
    /// A status this version does not know.
    Other(String),
}

impl Status {
    fn parse(text: &str) -> Self {
        match text {
            "finished" => Status::Finished,
            "failed" => Status::Failed,
            "running" => Status::Running,
            other => Status::Other(other.to_owned()),
        }
    }

    /// As written in result files.
    pub fn as_str(&self) -> &str {
        match self {
            Status::Finished => "finished",
            Status::Failed => "failed",
            Status::Running => "running",
            Status::Other(s) => s,
        }
    }
}

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
}

impl Arm {
    /// The dense baseline.
    pub fn dense() -> Self {
        Arm { scheme: "none".into(), scope: String::new(), mask_mode: String::new() }
    }

    /// Whether this is the dense baseline.
    pub fn is_dense(&self) -> bool {
        self.scheme == "none"
    }

    /// `dense`, or `scheme/scope/mask_mode` (`global-l1/default/hold`).
    pub fn label(&self) -> String {
        if self.is_dense() { "dense".into() } else { format!("{}/{}/{}", self.scheme, self.scope, self.mask_mode) }
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

    fn read(node: Node<'_>) -> Result<Count> {
        Ok(Count { zeros: node.u64("zeros")?.unwrap_or(0), params: node.u64("params")?.unwrap_or(0) })
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
    fn read(node: Node<'_>) -> Result<Sparsity> {
        let layer = |n: Node<'_>| -> Result<LayerSparsity> {
            Ok(LayerSparsity {
                layer: n.u64("layer")?,
                scope: n.object("scope", Count::read)?.unwrap_or_default(),
                all: n.object("all", Count::read)?.unwrap_or_default(),
            })
        };
        Ok(Sparsity {
            scope: node.str("scope")?.map(str::to_owned),
            scope_total: node.object("scope_total", Count::read)?,
            all_total: node.object("all_total", Count::read)?,
            layers: node.array("layers", layer)?.unwrap_or_default(),
        })
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
    /// Read a `result.json` document; `path` is the file (for errors), `relative` its name in
    /// the report.
    pub(crate) fn read(path: &Path, relative: String, root: Node<'_>) -> Result<Run> {
        let status = Status::parse(root.required_str("status")?);
        let model = root.required_str("model")?.to_owned();
        let task = root.required_str("task")?.to_owned();
        let pruning = root.object("pruning", |p| {
            Ok((
                p.str("scheme")?.map(normalise_scheme),
                p.f64("amount")?,
                p.str("scope")?.map(str::to_owned),
                p.str("mask_mode")?.map(str::to_owned),
                p.str("masks_from")?.map(str::to_owned),
            ))
        })?;
        let (scheme, amount, scope, mask_mode, masks_from) = pruning.unwrap_or_default();
        let scheme = match (scheme, &masks_from) {
            // `--masks FILE` leaves `--scheme` at its default, `none`: the run is pruned all the same.
            (Some(s), Some(_)) if s == "none" => "masks".to_owned(),
            (Some(s), _) => s,
            (None, _) => "unknown".to_owned(),
        };
        let arm = if scheme == "none" {
            Arm::dense()
        } else {
            let or_unknown = |s: &Option<String>| s.clone().unwrap_or_else(|| "unknown".into());
            Arm { scheme, scope: or_unknown(&scope), mask_mode: or_unknown(&mask_mode) }
        };
        let hyper = root.object("hyperparameters", |h| Ok((h.scalars(), h.u64("seed")?)))?;
        let (hyperparameters, seed) = hyper.unwrap_or_default();
        let data = root.object("data", |d| Ok((d.u64("train")?, d.u64("dev")?)))?;
        let epoch = |e: Node<'_>| -> Result<Epoch> {
            Ok(Epoch {
                epoch: e.u64("epoch")?,
                train_loss: e.f64("train_loss")?,
                train_seconds: e.f64("train_seconds")?,
                samples_per_second: e.f64("samples_per_second")?,
                tokens_per_second: e.f64("tokens_per_second")?,
                main_value: e.object("eval", |v| v.f64("main_value"))?.flatten(),
            })
        };
        let metrics = root.object("metrics", |m| {
            Ok(Metrics {
                main_metric: m.str("main_metric")?.map(str::to_owned),
                main: m.f64("main")?,
                accuracy: m.f64("accuracy")?,
                mcc: m.f64("mcc")?,
                f1: m.f64("f1")?,
                collapsed: m.bool("collapsed")?,
            })
        })?;
        let inference = root.object("inference", |i| {
            Ok(Inference {
                latency_ms_p50: i.f64("latency_ms_batch1_p50")?,
                latency_ms_p95: i.f64("latency_ms_batch1_p95")?,
                throughput_batch64: i.f64("throughput_batch64_per_s")?,
            })
        })?;
        let arm_is_dense = arm.is_dense();
        Ok(Run {
            seed: seed.or_else(|| seed_from_path(&relative)),
            path: relative,
            status,
            reason: root.str("reason")?.map(str::to_owned),
            model,
            revision: root.str("revision")?.map(str::to_owned),
            task,
            arm,
            scope,
            mask_mode,
            amount: if arm_is_dense { 0.0 } else { amount.unwrap_or(0.0) },
            masks_from,
            backend: root.str("backend")?.map(str::to_owned),
            device: root.str("device")?.map(str::to_owned),
            precision: root.str("precision")?.map(str::to_owned),
            prunelab_commit: root.str("prunelab_commit")?.map(str::to_owned),
            burn_version: root.str("burn_version")?.map(str::to_owned),
            hyperparameters,
            max_length: root.u64("max_length")?,
            train_examples: data.and_then(|d| d.0),
            dev_examples: data.and_then(|d| d.1),
            epochs: root.array("epochs", epoch)?.unwrap_or_default(),
            best_epoch: root.u64("best_epoch")?,
            first_step_seconds: root.f64("first_step_seconds")?,
            metrics: metrics.unwrap_or_default(),
            sparsity_before: root.object("sparsity_before", Sparsity::read)?,
            sparsity_after: root.object("sparsity_after", Sparsity::read)?,
            inference: inference.unwrap_or_default(),
        })
        .inspect(|_| tracing::debug!(file = %path.display(), "read a run"))
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
                        "eval": {"main_value": 0.0}}],
            "metrics": {"main_metric": "mcc", "main": 0.0, "accuracy": 0.75, "mcc": 0.0, "f1": 0.857, "collapsed": true},
            "sparsity_after": {"scope": "default", "all_total": {"params": 100, "zeros": 40},
                               "scope_total": {"params": 80, "zeros": 40},
                               "layers": [{"layer": null, "all": {"params": 20, "zeros": 0}, "scope": {"params": 0, "zeros": 0}}]}}"#;
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        let path = Path::new("result.json");
        let run = Run::read(path, "result.json".into(), Node::root(path, &value)).unwrap();
        assert_eq!(run.arm.label(), "global-l1/default/hold");
        assert_eq!(run.seed, Some(42));
        assert_eq!(run.model_name(), "all-MiniLM-L6-v2");
        assert_eq!(run.hyperparameters[0], ("learning_rate".to_owned(), "0.0001".to_owned()));
        assert_eq!(run.sparsity_after.as_ref().unwrap().all_total.unwrap().fraction(), Some(0.4));
        assert_eq!(run.sparsity_after.as_ref().unwrap().layers[0].layer, None);
        assert_eq!(run.samples_per_second(), Some(4.0));
        assert_eq!(run.metrics.collapsed, Some(true));
    }
}
