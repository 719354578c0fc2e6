//! `prunelab inspect`: weight statistics per tensor and per layer.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use prunelab_models::load_as_stored;
use prunelab_stats::{GroupStats, TensorStats, group_by_layer, group_by_layer_and_role, weights};

use crate::backend;
use crate::table::thousands;

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// A model directory or a Hugging Face Hub model id
    model: String,
    /// Hub revision, for Hub ids
    #[arg(long, default_value = "main")]
    revision: String,
    /// Write stats.csv (per tensor) and stats.json (per tensor, per layer, per layer and role) here
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// How many of the largest |w| to keep per tensor
    #[arg(long, default_value_t = 10)]
    top_k: usize,
}

impl InspectArgs {
    pub fn run(self) -> Result<()> {
        let files = crate::common::model_files(&self.model, &self.revision)?;
        let loaded = load_as_stored::<backend::Backend>(&files, &backend::device())?;
        let tensors = weights(&loaded.model, loaded.model.naming().as_ref());
        let stats: Vec<TensorStats> = tensors.iter().map(|t| TensorStats::of(t, self.top_k)).collect();
        let layers = group_by_layer(&stats);
        if let Some(out) = &self.out {
            write_files(out, &files.name, &stats, &layers)?;
            tracing::info!(dir = %out.display(), "wrote stats.csv and stats.json");
        }
        #[allow(clippy::print_stdout)]
        {
            print!("{}", render_layers(&files.name, &layers));
        }
        Ok(())
    }
}

fn write_files(out: &Path, model: &str, stats: &[TensorStats], layers: &[GroupStats]) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let csv_path = out.join("stats.csv");
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record([
        "key",
        "layer",
        "role",
        "shape",
        "count",
        "zero_fraction",
        "above_1e-3",
        "above_1e-2",
        "above_1e-1",
        "above_1",
        "l1",
        "l2",
        "mean",
        "std",
        "min",
        "max",
        "top_abs",
        "histogram",
    ])?;
    for s in stats {
        let above = s.above_fractions();
        let join = |v: Vec<String>| v.join(";");
        csv.write_record([
            s.key.clone(),
            s.layer.map(|l| l.to_string()).unwrap_or_default(),
            s.role.name().to_owned(),
            join(s.shape.iter().map(ToString::to_string).collect()),
            s.count.to_string(),
            s.zero_fraction().to_string(),
            above[0].to_string(),
            above[1].to_string(),
            above[2].to_string(),
            above[3].to_string(),
            s.l1.to_string(),
            s.l2.to_string(),
            s.mean.to_string(),
            s.std.to_string(),
            s.min.to_string(),
            s.max.to_string(),
            join(s.top_abs.iter().map(ToString::to_string).collect()),
            join(s.histogram.iter().map(ToString::to_string).collect()),
        ])?;
    }
    let bytes = csv.into_inner().context("finishing stats.csv")?;
    prunelab_prune::file::write_atomic(&csv_path, &bytes)?;
    let json = serde_json::json!({
        "model": model,
        "thresholds": prunelab_stats::THRESHOLDS,
        "histogram_edges": prunelab_stats::HISTOGRAM_EDGES,
        "tensors": stats,
        "layers": layers,
        "layers_by_role": group_by_layer_and_role(stats),
    });
    prunelab_prune::file::write_atomic(&out.join("stats.json"), &serde_json::to_vec_pretty(&json)?)?;
    Ok(())
}

fn render_layers(model: &str, layers: &[GroupStats]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{model}: share of |w| above each threshold, per layer");
    let _ = writeln!(
        out,
        "{:<8} {:>12} {:>7} {:>7} {:>7} {:>7} {:>7} {:>10} {:>8}",
        "layer", "params", "zero", ">1e-3", ">1e-2", ">1e-1", ">1", "mean |w|", "max |w|"
    );
    let total = layers.iter().fold((0, 0, [0usize; 4], 0f64, 0f32), |acc, g| {
        let mut above = acc.2;
        for (a, b) in above.iter_mut().zip(g.above) {
            *a += b;
        }
        (acc.0 + g.count, acc.1 + g.zeros, above, acc.3 + g.l1, acc.4.max(g.max_abs))
    });
    let pct = |n: usize, of: usize| format!("{:.1}%", 100.0 * n as f64 / of.max(1) as f64);
    let mut row = |name: String, count: usize, zeros: usize, above: [usize; 4], l1: f64, max: f32| {
        let _ = writeln!(
            out,
            "{name:<8} {:>12} {:>7} {:>7} {:>7} {:>7} {:>7} {:>10.4} {:>8.3}",
            thousands(count),
            pct(zeros, count),
            pct(above[0], count),
            pct(above[1], count),
            pct(above[2], count),
            pct(above[3], count),
            l1 / count.max(1) as f64,
            max
        );
    };
    for g in layers {
        let name = g.layer.map_or_else(|| "other".to_owned(), |l| l.to_string());
        row(name, g.count, g.zeros, g.above, g.l1, g.max_abs);
    }
    row("all".into(), total.0, total.1, total.2, total.3, total.4);
    let _ = writeln!(out, "(\"other\": embeddings, final norms, pooler and head)");
    out
}
