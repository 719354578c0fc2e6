//! The report's figures, from the cells and the weight statistics: (a) main metric vs amount,
//! (b) training and inference speed vs amount, (c) weight magnitudes by layer, (d) achieved
//! sparsity by layer. Each is written as PNG and SVG under `plots/`.

use std::path::Path;

use crate::aggregate::{Cell, LayerStat, Stat, dense};
use crate::error::{Error, Result};
use crate::fmt;
use crate::plot::{Figure, Line, Panel, Point, Reference, XAxis, render};
use crate::results::slug;
use crate::weights::WeightStats;

/// The directory, under the output directory, that holds the plots.
pub const PLOTS_DIR: &str = "plots";
/// File name prefixes of the plots this crate writes (older ones are removed first).
const PREFIXES: [&str; 4] = ["metric-", "speed-", "weights-", "layers-"];

/// Which question a plot answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PlotKind {
    /// (a) Main metric vs amount, one line per arm, dense as a reference.
    Metric,
    /// (b) Training samples/s, inference throughput and latency vs amount.
    Speed,
    /// (c) Share of |w| above each threshold, by layer.
    Weights,
    /// (d) Zero share per layer after fine-tuning (before, dashed, for `release`).
    Layers,
}

/// A written plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    /// Which question it answers.
    pub kind: PlotKind,
    /// Its title.
    pub title: String,
    /// The PNG, relative to the output directory (`plots/metric-gpt2-sst2.png`).
    pub png: String,
    /// The SVG, likewise.
    pub svg: String,
}

/// Write every plot under `<out>/plots/`, replacing the plots of an earlier report there.
pub fn write_plots(cells: &[Cell], stats: &[WeightStats], out: &Path) -> Result<Vec<Plot>> {
    let dir = out.join(PLOTS_DIR);
    remove_old_plots(&dir)?;
    let mut figures: Vec<(PlotKind, String, Figure)> = Vec::new();
    for (model, task) in model_tasks(cells) {
        let group: Vec<&Cell> = cells.iter().filter(|c| c.model == model && c.task == task).collect();
        let stem = format!("{}-{}", slug(&model), slug(&task));
        if let Some(f) = metric_figure(cells, &group, &model, &task) {
            figures.push((PlotKind::Metric, format!("metric-{stem}"), f));
        }
        if let Some(f) = speed_figure(cells, &group, &model, &task) {
            figures.push((PlotKind::Speed, format!("speed-{stem}"), f));
        }
        let mut arms: Vec<_> = group.iter().filter(|c| !c.is_dense()).map(|c| c.arm.clone()).collect();
        arms.dedup();
        for arm in arms {
            let arm_cells: Vec<&Cell> = group.iter().copied().filter(|c| c.arm == arm).collect();
            if let Some(f) = layers_figure(&arm_cells, &model, &task, &arm.label()) {
                figures.push((PlotKind::Layers, format!("layers-{stem}-{}", arm.slug()), f));
            }
        }
    }
    let mut weight_stems: Vec<String> = Vec::new();
    for s in stats {
        let mut stem = format!("weights-{}", slug(&s.model_name()));
        let same = weight_stems.iter().filter(|w| w.starts_with(&stem)).count();
        if same > 0 {
            stem = format!("{stem}-{}", same + 1);
        }
        weight_stems.push(stem.clone());
        if let Some(f) = weights_figure(s) {
            figures.push((PlotKind::Weights, stem, f));
        }
    }
    figures.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let mut plots = Vec::new();
    for (kind, stem, figure) in figures {
        render(&figure, &dir, &stem)?;
        plots.push(Plot {
            kind,
            title: figure.title.clone(),
            png: format!("{PLOTS_DIR}/{stem}.png"),
            svg: format!("{PLOTS_DIR}/{stem}.svg"),
        });
    }
    tracing::info!(plots = plots.len(), dir = %dir.display(), "wrote the plots");
    Ok(plots)
}

fn remove_old_plots(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let path = entry.map_err(Error::io(dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if PREFIXES.iter().any(|p| name.starts_with(p)) && (name.ends_with(".png") || name.ends_with(".svg")) {
            std::fs::remove_file(&path).map_err(Error::io(&path))?;
        }
    }
    Ok(())
}

/// The model × task pairs of the cells, in order.
fn model_tasks(cells: &[Cell]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = cells.iter().map(|c| (c.model.clone(), c.task.clone())).collect();
    pairs.dedup();
    pairs
}

/// One line per pruned arm through `value` of its cells (cells without a value are left out).
fn arm_lines(group: &[&Cell], value: impl Fn(&Cell) -> Option<Stat>) -> Vec<Line> {
    let mut lines: Vec<Line> = Vec::new();
    for cell in group.iter().filter(|c| !c.is_dense()) {
        let Some(s) = value(cell) else { continue };
        let label = cell.arm.label();
        if lines.last().is_none_or(|l| l.label != label) {
            lines.push(Line { label, points: Vec::new(), dashed: false, color: None });
        }
        if let Some(line) = lines.last_mut() {
            line.points.push(Point { x: cell.amount, y: s.mean, std: s.std });
        }
    }
    lines
}

fn dense_reference(cells: &[Cell], model: &str, task: &str, value: impl Fn(&Cell) -> Option<Stat>) -> Vec<Reference> {
    let stat = dense(cells, model, task).and_then(value);
    stat.map(|s| Reference { label: format!("dense (n={})", s.n), y: s.mean, std: s.std }).into_iter().collect()
}

/// The main metric against the amount, twice: on a linear axis, and against the remaining
/// fraction on a log axis (where 90, 95 and 99 % pruned spread apart, as sparsity papers plot
/// them). Accuracy and MCC axes end at 1.
fn metric_figure(cells: &[Cell], group: &[&Cell], model: &str, task: &str) -> Option<Figure> {
    let lines = arm_lines(group, |c| c.main);
    let references = dense_reference(cells, model, task, |c| c.main);
    if lines.is_empty() && references.is_empty() {
        return None;
    }
    let metric = group.first().map_or_else(String::new, |c| c.metric.clone());
    let remaining: Vec<Line> = lines
        .iter()
        .map(|l| Line {
            points: l.points.iter().map(|p| Point { x: (1.0 - p.x).log10(), ..*p }).collect(),
            ..l.clone()
        })
        .collect();
    let panel = |x: XAxis, x_label: &str, lines: Vec<Line>| Panel {
        title: String::new(),
        x_label: x_label.into(),
        y_label: format!("dev {metric} (best epoch)"),
        x,
        lines,
        references: references.clone(),
        include_zero: false,
        y_max: Some(1.0),
    };
    Some(Figure {
        title: format!("{model} on {task}: {metric} vs pruned fraction (mean ± std over seeds)"),
        panels: vec![
            panel(XAxis::Amount, "pruned fraction of the scope (amount)", lines),
            panel(XAxis::RemainingLog, "remaining fraction of the scope (log)", remaining),
        ],
    })
}

fn speed_figure(cells: &[Cell], group: &[&Cell], model: &str, task: &str) -> Option<Figure> {
    type Value = fn(&Cell) -> Option<Stat>;
    let panels: [(&str, &str, Value); 3] = [
        ("training", "training examples/s (mean over epochs)", |c| c.samples_per_second),
        ("inference, batch 64", "dev examples/s", |c| c.throughput),
        ("inference, batch 1", "median latency (ms)", |c| c.latency_p50),
    ];
    let panels: Vec<Panel> = panels
        .into_iter()
        .map(|(title, y_label, value)| Panel {
            title: title.into(),
            x_label: "pruned fraction of the scope (amount)".into(),
            y_label: y_label.into(),
            x: XAxis::Amount,
            lines: arm_lines(group, value),
            references: dense_reference(cells, model, task, value),
            include_zero: true,
            y_max: None,
        })
        .collect();
    if panels.iter().all(|p| p.lines.is_empty() && p.references.is_empty()) {
        return None;
    }
    Some(Figure { title: format!("{model} on {task}: speed vs pruned fraction (mean ± std over seeds)"), panels })
}

/// x of a layer: its index, −1 for the parameters outside layers.
fn layer_x(layer: Option<u64>) -> f64 {
    layer.map_or(-1.0, |l| l as f64)
}

fn layers_figure(arm_cells: &[&Cell], model: &str, task: &str, arm: &str) -> Option<Figure> {
    let release = arm_cells.iter().any(|c| c.arm.mask_mode == "release");
    let line = |cell: &Cell, layers: &[LayerStat], dashed: bool, i: usize, value: fn(&LayerStat) -> Option<Stat>| {
        let points: Vec<Point> = layers
            .iter()
            .filter_map(|l| value(l).map(|s| Point { x: layer_x(l.layer), y: s.mean, std: s.std }))
            .collect();
        let when = match (release, dashed) {
            (false, _) => "",
            (true, false) => " after fine-tuning",
            (true, true) => " before",
        };
        let label = format!("amount {}{when}", fmt::amount(cell.amount));
        (!points.is_empty()).then_some(Line { label, points, dashed, color: Some(i) })
    };
    let panel = |title: &str, y_label: &str, value: fn(&LayerStat) -> Option<Stat>| {
        let mut lines = Vec::new();
        for (i, cell) in arm_cells.iter().enumerate() {
            lines.extend(line(cell, &cell.layers_after, false, i, value));
            if release {
                lines.extend(line(cell, &cell.layers_before, true, i, value));
            }
        }
        Panel {
            title: title.into(),
            x_label: "layer (other: embeddings, final norm, head)".into(),
            y_label: y_label.into(),
            x: XAxis::Layer,
            lines,
            references: Vec::new(),
            include_zero: true,
            y_max: None,
        }
    };
    let panels = vec![
        panel("in the pruning scope", "zero share of the layer's scope", |l| l.scope),
        panel("of all parameters", "zero share of the layer's parameters", |l| l.all),
    ];
    if panels.iter().all(|p| p.lines.is_empty()) {
        return None;
    }
    Some(Figure { title: format!("{model} on {task}, {arm}: zero weights per layer (mean over seeds)"), panels })
}

fn weights_figure(stats: &WeightStats) -> Option<Figure> {
    let lines: Vec<Line> = stats
        .thresholds
        .iter()
        .enumerate()
        .map(|(i, t)| Line {
            label: format!("|w| > {}", threshold(*t)),
            points: stats
                .layers
                .iter()
                .filter_map(|l| l.above_fraction(i).map(|y| Point { x: layer_x(l.layer), y, std: None }))
                .collect(),
            dashed: false,
            color: None,
        })
        .filter(|l| !l.points.is_empty())
        .collect();
    if lines.is_empty() {
        return None;
    }
    let model = stats.model_name();
    Some(Figure {
        title: format!("{model}: share of weights with |w| above each threshold, by layer"),
        panels: vec![Panel {
            title: String::new(),
            x_label: "layer (other: embeddings, final norm, head)".into(),
            y_label: "share of the layer's parameters".into(),
            x: XAxis::Layer,
            lines,
            references: Vec::new(),
            include_zero: true,
            y_max: None,
        }],
    })
}

/// A threshold as written in the study: `1e-3`, `0.1`, `1`. (Thresholds are stored as f32.)
pub(crate) fn threshold(t: f64) -> String {
    let t = (t as f32) as f64;
    let exponent = t.log10().round();
    if t > 0.0 && t < 0.05 && ((t / 10f64.powf(exponent)) - 1.0).abs() < 1e-4 {
        format!("1e{exponent:.0}")
    } else {
        format!("{}", t as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_read_as_written() {
        assert_eq!(threshold(0.0010000000474974513), "1e-3");
        assert_eq!(threshold(0.009999999776482582), "1e-2");
        assert_eq!(threshold(0.10000000149011612), "0.1");
        assert_eq!(threshold(1.0), "1");
    }
}
