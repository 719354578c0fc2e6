//! [`RunRecord`]: one run's `result.json`, and how it is read and written.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::pruning::{Distillation, PruningRecord};
use crate::scores::Scores;
use crate::sparsity::SparsityReport;
use crate::train::{EpochRecord, TrainConfig};

/// The shape of the records this version writes. 1: every file before the field existed; 2:
/// adds `schema`, `hardware`, `distillation` and `pruning.schedule`/`nm`/`calibration` (all
/// optional, so a version-1 file reads as a version-2 one without them).
pub const SCHEMA: u32 = 2;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine-tuned, evaluated and timed.
    Finished,
    /// Failed; `reason` says why.
    Failed,
    /// Started and not (yet) finished: still running, or killed.
    Running,
}

impl Status {
    /// As written in result files.
    pub fn name(self) -> &'static str {
        match self {
            Status::Finished => "finished",
            Status::Failed => "failed",
            Status::Running => "running",
        }
    }
}

/// One run of `prunelab finetune`. A run that failed early has only the settings known when it
/// started; everything measured later is optional.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunRecord {
    /// The record's shape ([`SCHEMA`]; 1 when absent).
    #[serde(default = "schema_1")]
    pub schema: u32,
    /// How the run ended.
    pub status: Status,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The model id (a Hub id, or `--model-id` for a local copy).
    pub model: String,
    /// The model as given on the command line (directory or Hub id).
    #[serde(default)]
    pub model_path: Option<String>,
    /// Hub revision.
    #[serde(default)]
    pub revision: Option<String>,
    /// `sst2` or `cola`.
    pub task: String,
    /// What was pruned, and when.
    pub pruning: PruningRecord,
    /// Knowledge distillation from a teacher, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distillation: Option<Distillation>,
    /// Burn backend (`ndarray`, `cuda`, `wgpu`).
    #[serde(default)]
    pub backend: Option<String>,
    /// Burn's optional GPU kernel features (`plain`, `fusion`, `autotune`, `fusion+autotune`).
    #[serde(default)]
    pub kernels: Option<String>,
    /// Burn's device, as Burn prints it (`Cuda(0)`, `Cpu`).
    #[serde(default)]
    pub device: Option<String>,
    /// The machine: GPU and CPU model, counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<Hardware>,
    /// `f32` or `bf16-mixed`.
    #[serde(default)]
    pub precision: Option<String>,
    /// What multiplied the projections' f32 matrices (`burn`, `cublas`, ...).
    #[serde(default)]
    pub gemm: Option<String>,
    /// What ran softmax, GELU and dropout, and the flat optimizer step's gathers (`cpu-threads`:
    /// prunelab's fused CPU kernels; `cuda-stream`: the gathers as copies on CubeCL's stream; `burn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fused: Option<String>,
    /// The measured arithmetic of the projections' f32 products.
    #[serde(default)]
    pub matmul_arithmetic: Option<MatmulArithmetic>,
    /// prunelab's commit.
    #[serde(default)]
    pub prunelab_commit: Option<String>,
    /// Burn's version.
    #[serde(default)]
    pub burn_version: Option<String>,
    /// When the run started (seconds since 1970).
    #[serde(default)]
    pub started_unix: Option<u64>,
    /// The training recipe.
    #[serde(default)]
    pub hyperparameters: Option<TrainConfig>,
    /// Truncation length.
    #[serde(default)]
    pub max_length: Option<usize>,
    /// The data read.
    #[serde(default)]
    pub data: Option<DataRecord>,
    /// The checkpoint read.
    #[serde(default)]
    pub load: Option<LoadRecord>,
    /// After one-shot pruning, before fine-tuning.
    #[serde(default)]
    pub sparsity_before: Option<SparsityReport>,
    /// The epoch of the checkpoint this run resumed after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_after_epoch: Option<usize>,
    /// Per epoch.
    #[serde(default)]
    pub epochs: Vec<EpochRecord>,
    /// The dev scores of the epochs a failed run finished.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub epochs_evaluated: Vec<EvaluatedEpoch>,
    /// The epoch whose model was kept (1-based).
    #[serde(default)]
    pub best_epoch: Option<usize>,
    /// Seconds of the first optimizer step (compilation and warm-up included).
    #[serde(default)]
    pub first_step_seconds: Option<f64>,
    /// The best epoch's dev scores.
    #[serde(default)]
    pub metrics: Option<Metrics>,
    /// After fine-tuning (the best model), measured on the weights.
    #[serde(default)]
    pub sparsity_after: Option<SparsityReport>,
    /// Inference timing of the best model.
    #[serde(default)]
    pub inference: Option<InferenceRecord>,
}

fn schema_1() -> u32 {
    1
}

/// The machine a run or a benchmark ran on.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hardware {
    /// The GPU's name as the driver gives it (`NVIDIA H200`); `None` on the CPU backend.
    #[serde(default)]
    pub gpu: Option<String>,
    /// GPUs visible to the process.
    #[serde(default)]
    pub gpu_count: usize,
    /// The CPU model (`/proc/cpuinfo`'s `model name`).
    #[serde(default)]
    pub cpu: Option<String>,
    /// Threads the process may run on.
    #[serde(default)]
    pub threads: usize,
}

/// Which arithmetic the projections' f32 products ran in, measured on a probe product.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MatmulArithmetic {
    /// `[m, k, n]` of the probe.
    pub shape: [usize; 3],
    /// Relative error against an f64 product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_error: Option<f64>,
    /// `f32`, `tf32` or `bf16`, judged from the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arithmetic: Option<String>,
    /// Why the probe could not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The data of a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DataRecord {
    /// Training examples used.
    pub train: usize,
    /// Dev examples used.
    pub dev: usize,
    /// Where the training split was read.
    #[serde(default)]
    pub train_source: String,
    /// Where the dev split was read.
    #[serde(default)]
    pub dev_source: String,
}

/// The checkpoint a run loaded.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LoadRecord {
    /// The weight files read, with sizes in bytes.
    pub files: Vec<(PathBuf, u64)>,
    /// The storage format (`safetensors`, `fp16-safetensors`, ...).
    pub format: String,
    /// The checkpoint's float dtype.
    pub dtype: String,
    /// Keys the checkpoint lacked that were initialised as transformers does (heads).
    pub newly_initialized: Vec<String>,
    /// Keys present in the checkpoint and deliberately not used.
    pub ignored: Vec<String>,
}

/// The dev scores of one finished epoch of a run that failed later.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EvaluatedEpoch {
    /// 1-based.
    pub epoch: usize,
    /// Its dev scores.
    pub eval: Scores,
}

/// The best epoch's dev scores.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Metrics {
    /// `accuracy` or `mcc`.
    pub main_metric: String,
    /// The main metric's value.
    pub main: f64,
    /// Accuracy.
    pub accuracy: f64,
    /// Matthews correlation.
    pub mcc: f64,
    /// F1 of the positive class.
    pub f1: f64,
    /// Whether the model predicted one class only.
    pub collapsed: bool,
}

impl Metrics {
    /// The metrics of `scores`.
    pub fn of(scores: &Scores) -> Metrics {
        Metrics {
            main_metric: scores.main.name().to_owned(),
            main: scores.main_value,
            accuracy: scores.accuracy,
            mcc: scores.mcc,
            f1: scores.f1,
            collapsed: scores.collapsed,
        }
    }
}

/// Inference timing of a model on dev examples.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InferenceRecord {
    /// Median latency of one example at batch 1, ms.
    pub latency_ms_batch1_p50: f64,
    /// 95th percentile latency of one example at batch 1, ms.
    pub latency_ms_batch1_p95: f64,
    /// Examples per second in batches of 64, longest examples first (since 2026-12-07; before,
    /// in the split's order, which pads every batch to a longer sentence).
    pub throughput_batch64_per_s: f64,
}

impl RunRecord {
    /// Reads a `result.json`; errors name the file, and the line and column of bad JSON.
    pub fn read(path: &Path) -> Result<RunRecord> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_owned(), source })?;
        Self::from_json(path, &text)
    }

    /// Parses a `result.json` document (`path` names it in errors).
    pub fn from_json(path: &Path, text: &str) -> Result<RunRecord> {
        #[derive(serde::Deserialize)]
        struct Version {
            #[serde(default = "schema_1")]
            schema: u32,
        }
        let json = |source| Error::Json { path: path.to_owned(), source };
        let version: Version = serde_json::from_str(text).map_err(json)?;
        if version.schema > SCHEMA {
            return Err(Error::Schema { path: path.to_owned(), found: version.schema, known: SCHEMA });
        }
        serde_json::from_str(text).map_err(json)
    }

    /// The record as pretty-printed JSON.
    pub fn to_json_pretty(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a record serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_file_reads() {
        let text = r#"{"status": "failed", "reason": "out of memory", "model": "gpt2", "task": "cola",
            "pruning": {"scheme": "globall1", "amount": 0.5, "scope": "default", "masks_from": null, "mask_mode": "hold"},
            "matmul_arithmetic": {"shape": [512, 768, 768], "relative_error": 0.0001, "arithmetic": "tf32"},
            "hyperparameters": {"seed": 7}}"#;
        let record = RunRecord::from_json(Path::new("r.json"), text).unwrap();
        assert_eq!(record.schema, 1);
        assert_eq!(record.status, Status::Failed);
        assert!(record.pruning.schedule.is_one_shot());
        assert_eq!(record.hyperparameters.unwrap().seed, 7);
        assert!(record.epochs.is_empty());
    }

    #[test]
    fn errors_name_the_file_and_the_line() {
        let err =
            RunRecord::from_json(Path::new("runs/r.json"), "{\"status\": \"finished\",\n \"model\": 3}").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("runs/r.json: ") && text.contains("line 2"), "{text}");
        let err = RunRecord::from_json(Path::new("r.json"), r#"{"schema": 99}"#).unwrap_err();
        assert!(err.to_string().contains("schema 99 is newer"), "{err}");
    }

    #[test]
    fn one_shot_runs_write_what_version_1_wrote() {
        let pruning = PruningRecord {
            scheme: "global-l1".into(),
            amount: 0.5,
            scope: "default".into(),
            masks_from: None,
            mask_mode: crate::MaskMode::Hold,
            nm: None,
            calibration: None,
            schedule: crate::Schedule::OneShot,
        };
        let value = serde_json::to_value(&pruning).unwrap();
        let keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["amount", "mask_mode", "masks_from", "scheme", "scope"]);
    }
}
