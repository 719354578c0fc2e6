//! The records of `cargo xtask bench`, as `bench.json` holds them: each measurement that
//! `prunelab bench …` or `bench/torch_bench.py` printed, tagged with where it belongs, and a
//! marker after each part that finished. The figures the table reads are typed fields; whatever
//! else a tool printed is kept as it is.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One entry of `bench.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub(super) enum Entry {
    /// A part ended: every record of it is in (`--resume` keeps such parts).
    Complete(Complete),
    Record(Box<Record>),
}

/// The marker after a finished part, naming the builds it measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Complete {
    pub part: String,
    /// Always true (it tells a marker from a record in the file).
    pub complete: bool,
    pub builds: Vec<String>,
}

/// One measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Record {
    /// `gpt2-small`, `minilm`, `matmul`, `prune` or `structured` (empty in files from before
    /// records were tagged, 2026-11-29's: no part keeps them on `--resume`).
    #[serde(default)]
    pub part: String,
    /// What was measured: `train`, `train-cold`, `torch-train`, `infer`, `matmul`, ...
    #[serde(default)]
    pub measure: String,
    /// prunelab's build label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    /// torch's variant: `f32`, `tf32`, `bf16`, `bf16 + compile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Which alternation of `--repeats`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u32>,
    /// Burn's backend (prunelab's records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples_per_second: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_step_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tflops: Option<f64>,
    /// The product's relative error against f64, and what arithmetic that indicates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_error: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arithmetic: Option<String>,
    /// Global pruning: seconds, and the weights in its scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_params: Option<f64>,
    /// Everything else the tool printed.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A figure, or NaN where the record has none (the table prints it as missing).
pub(super) fn figure(value: Option<f64>) -> f64 {
    value.unwrap_or(f64::NAN)
}

impl Entry {
    pub(super) fn record(&self) -> Option<&Record> {
        match self {
            Entry::Record(r) => Some(r.as_ref()),
            Entry::Complete(_) => None,
        }
    }

    pub(super) fn part(&self) -> &str {
        match self {
            Entry::Record(r) => &r.part,
            Entry::Complete(c) => &c.part,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_and_records_read_back_as_written_keeping_unknown_fields() {
        let text = r#"[{"part": "prune", "complete": true, "builds": ["cuda"]},
            {"part": "minilm", "measure": "train", "build": "cuda", "samples_per_second": 1426, "tool": "prunelab"}]"#;
        let entries: Vec<Entry> = serde_json::from_str(text).unwrap();
        assert!(matches!(&entries[0], Entry::Complete(c) if c.builds == ["cuda"]));
        let record = entries[1].record().unwrap();
        assert_eq!((record.samples_per_second, record.first_step_seconds), (Some(1426.0), None));
        assert_eq!(record.other["tool"], "prunelab");
        let again: Vec<Entry> = serde_json::from_str(&serde_json::to_string(&entries).unwrap()).unwrap();
        assert_eq!(again, entries);
    }

    #[test]
    fn every_committed_bench_json_reads() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/results");
        let mut read = 0;
        for run in std::fs::read_dir(&root).unwrap() {
            let path = run.unwrap().path().join("bench.json");
            if path.is_file() {
                let text = std::fs::read_to_string(&path).unwrap();
                let entries: Vec<Entry> =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(entries.iter().any(|e| e.record().is_some_and(|r| r.samples_per_second.is_some())));
                read += 1;
            }
        }
        assert!(read >= 2, "the bench.json files under bench/results");
    }
}
