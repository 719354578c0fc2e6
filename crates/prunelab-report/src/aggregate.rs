//! Finished runs grouped into cells — model × task × arm × amount — and summarised over seeds.

use std::collections::BTreeMap;

use crate::results::{Arm, Run, Sparsity};

/// Mean and sample standard deviation (n − 1) of some values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    /// How many values.
    pub n: usize,
    /// Their mean.
    pub mean: f64,
    /// Their sample standard deviation; `None` for a single value.
    pub std: Option<f64>,
}

impl Stat {
    /// The statistics of the finite `values`; `None` when there are none.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Stat> {
        let values: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = (n > 1).then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
        Some(Stat { n, mean, std })
    }

    /// `mean ± std` with `decimals` decimals (`mean` alone for one value).
    pub fn format(&self, decimals: usize) -> String {
        match self.std {
            Some(std) => format!("{:.*} ± {:.*}", decimals, self.mean, decimals, std),
            None => format!("{:.*}", decimals, self.mean),
        }
    }
}

/// Sparsity of one layer in a cell, over seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerStat {
    /// Layer index (`None`: embeddings, final norm, head).
    pub layer: Option<u64>,
    /// Zero fraction of the layer's scope (`None` if the layer has nothing in the scope).
    pub scope: Option<Stat>,
    /// Zero fraction of all the layer's parameters.
    pub all: Option<Stat>,
}

/// One model × task × arm × amount, over its finished runs (one per seed).
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Model short name.
    pub model: String,
    /// Task.
    pub task: String,
    /// Arm.
    pub arm: Arm,
    /// Pruned fraction of the scope asked for.
    pub amount: f64,
    /// The main metric's name (`accuracy`, `mcc`).
    pub metric: String,
    /// The seeds of its runs, sorted.
    pub seeds: Vec<u64>,
    /// Finished runs.
    pub runs: usize,
    /// Runs that predicted one class only.
    pub collapsed: usize,
    /// The main metric (best epoch on dev).
    pub main: Option<Stat>,
    /// Accuracy.
    pub accuracy: Option<Stat>,
    /// Zero fraction of the scope after pruning, before fine-tuning.
    pub scope_before: Option<Stat>,
    /// Zero fraction of the scope after fine-tuning.
    pub scope_after: Option<Stat>,
    /// Zero fraction of all parameters after pruning, before fine-tuning.
    pub all_before: Option<Stat>,
    /// Zero fraction of all parameters after fine-tuning.
    pub all_after: Option<Stat>,
    /// Training examples per second (mean over epochs, then over seeds).
    pub samples_per_second: Option<Stat>,
    /// Training tokens per second.
    pub tokens_per_second: Option<Stat>,
    /// Inference examples per second at batch 64.
    pub throughput: Option<Stat>,
    /// Inference latency at batch 1, median, ms.
    pub latency_p50: Option<Stat>,
    /// Per layer after fine-tuning.
    pub layers_after: Vec<LayerStat>,
    /// Per layer before fine-tuning.
    pub layers_before: Vec<LayerStat>,
}

impl Cell {
    /// Whether this is the dense baseline.
    pub fn is_dense(&self) -> bool {
        self.arm.is_dense()
    }
}

/// Amounts closer than this are the same amount.
const AMOUNT_RESOLUTION: f64 = 1e-9;

/// The cells of the finished runs, sorted by model, task, arm (dense first) and amount.
pub fn aggregate(runs: &[Run]) -> Vec<Cell> {
    let mut groups: BTreeMap<(String, String, Arm, i64), Vec<&Run>> = BTreeMap::new();
    for run in runs.iter().filter(|r| r.finished()) {
        let amount = (run.amount / AMOUNT_RESOLUTION).round() as i64;
        groups.entry((run.model_name(), run.task.clone(), run.arm.clone(), amount)).or_default().push(run);
    }
    let mut cells: Vec<Cell> =
        groups.into_iter().map(|((model, task, arm, _), runs)| cell(model, task, arm, &runs)).collect();
    // The dense arm sorts first: its scheme is `none`, but `global-l1` < `none`.
    cells.sort_by(|a, b| {
        (&a.model, &a.task, !a.is_dense(), &a.arm)
            .cmp(&(&b.model, &b.task, !b.is_dense(), &b.arm))
            .then(a.amount.total_cmp(&b.amount))
    });
    cells
}

fn cell(model: String, task: String, arm: Arm, runs: &[&Run]) -> Cell {
    let stat = |f: &dyn Fn(&Run) -> Option<f64>| Stat::of(runs.iter().filter_map(|r| f(r)));
    let fraction = |s: &Option<Sparsity>, all: bool| {
        s.as_ref().and_then(|s| if all { s.all_total } else { s.scope_total }).and_then(|c| c.fraction())
    };
    let mut seeds: Vec<u64> = runs.iter().filter_map(|r| r.seed).collect();
    seeds.sort_unstable();
    Cell {
        amount: runs[0].amount,
        metric: runs[0].main_metric(),
        seeds,
        runs: runs.len(),
        collapsed: runs.iter().filter(|r| r.metrics.collapsed == Some(true)).count(),
        main: stat(&|r| r.metrics.main),
        accuracy: stat(&|r| r.metrics.accuracy),
        scope_before: stat(&|r| fraction(&r.sparsity_before, false)),
        scope_after: stat(&|r| fraction(&r.sparsity_after, false)),
        all_before: stat(&|r| fraction(&r.sparsity_before, true)),
        all_after: stat(&|r| fraction(&r.sparsity_after, true)),
        samples_per_second: stat(&|r| r.samples_per_second()),
        tokens_per_second: stat(&|r| r.tokens_per_second()),
        throughput: stat(&|r| r.inference.throughput_batch64),
        latency_p50: stat(&|r| r.inference.latency_ms_p50),
        layers_after: layers(runs.iter().filter_map(|r| r.sparsity_after.as_ref())),
        layers_before: layers(runs.iter().filter_map(|r| r.sparsity_before.as_ref())),
        model,
        task,
        arm,
    }
}

/// Per-layer zero fractions over several runs' sparsity reports.
fn layers<'a>(reports: impl Iterator<Item = &'a Sparsity>) -> Vec<LayerStat> {
    let mut by_layer: BTreeMap<Option<u64>, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for report in reports {
        for l in &report.layers {
            let entry = by_layer.entry(l.layer).or_default();
            entry.0.extend(l.scope.fraction());
            entry.1.extend(l.all.fraction());
        }
    }
    by_layer
        .into_iter()
        .map(|(layer, (scope, all))| LayerStat { layer, scope: Stat::of(scope), all: Stat::of(all) })
        .collect()
}

/// The dense cell of `model` × `task`.
pub fn dense<'a>(cells: &'a [Cell], model: &str, task: &str) -> Option<&'a Cell> {
    cells.iter().find(|c| c.is_dense() && c.model == model && c.task == task)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_standard_deviation() {
        let s = Stat::of([0.8, 0.9]).unwrap();
        assert_eq!(s.n, 2);
        assert!((s.mean - 0.85).abs() < 1e-12);
        assert!((s.std.unwrap() - 0.0707106781).abs() < 1e-9);
        assert_eq!(s.format(4), "0.8500 ± 0.0707");
        assert_eq!(Stat::of([0.5]).unwrap().format(2), "0.50");
        assert_eq!(Stat::of([f64::NAN]), None);
        assert_eq!(Stat::of([]), None);
    }
}
