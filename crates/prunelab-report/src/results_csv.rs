//! `results.csv`: one row per run (finished, failed or running), every number as recorded.

use std::path::Path;

use crate::error::{Error, Result};
use crate::results::{Run, Sparsity};

/// The columns, in order.
pub const COLUMNS: &[&str] = &[
    "model",
    "model_source",
    "revision",
    "task",
    "arm",
    "scheme",
    "amount",
    "scope",
    "mask_mode",
    "masks_from",
    "seed",
    "status",
    "main_metric",
    "main",
    "accuracy",
    "mcc",
    "f1",
    "collapsed",
    "best_epoch",
    "epochs",
    "scope_sparsity_before",
    "scope_sparsity_after",
    "all_sparsity_before",
    "all_sparsity_after",
    "train_seconds_total",
    "train_samples_per_s_mean",
    "train_tokens_per_s_mean",
    "first_step_seconds",
    "latency_ms_batch1_p50",
    "latency_ms_batch1_p95",
    "throughput_batch64_per_s",
    "backend",
    "device",
    "precision",
    "burn_version",
    "prunelab_commit",
    "reason",
    "path",
];

/// The CSV text of `runs` (in their order).
pub fn results_csv(runs: &[Run], path: &Path) -> Result<Vec<u8>> {
    let err = |source| Error::Csv { path: path.to_owned(), source };
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(COLUMNS).map_err(err)?;
    for run in runs {
        writer.write_record(row(run)).map_err(err)?;
    }
    writer.into_inner().map_err(|e| Error::Io { path: path.to_owned(), source: e.into_error() })
}

fn row(run: &Run) -> Vec<String> {
    let num = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    let int = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let fraction = |s: &Option<Sparsity>, all: bool| {
        num(s.as_ref().and_then(|s| if all { s.all_total } else { s.scope_total }).and_then(|c| c.fraction()))
    };
    let m = &run.metrics;
    vec![
        run.model_name(),
        run.model.clone(),
        text(&run.revision),
        run.task.clone(),
        run.arm.label(),
        run.arm.scheme.clone(),
        run.amount.to_string(),
        text(&run.scope),
        text(&run.mask_mode),
        text(&run.masks_from),
        int(run.seed),
        run.status.name().to_owned(),
        run.main_metric(),
        num(m.main),
        num(m.accuracy),
        num(m.mcc),
        num(m.f1),
        m.collapsed.map(|c| c.to_string()).unwrap_or_default(),
        int(run.best_epoch),
        run.epochs.len().to_string(),
        fraction(&run.sparsity_before, false),
        fraction(&run.sparsity_after, false),
        fraction(&run.sparsity_before, true),
        fraction(&run.sparsity_after, true),
        num(run.train_seconds_total()),
        num(run.samples_per_second()),
        num(run.tokens_per_second()),
        num(run.first_step_seconds),
        num(run.inference.latency_ms_p50),
        num(run.inference.latency_ms_p95),
        num(run.inference.throughput_batch64),
        text(&run.backend),
        text(&run.device),
        text(&run.precision),
        text(&run.burn_version),
        text(&run.prunelab_commit),
        text(&run.reason),
        run.path.clone(),
    ]
}
