//! `prunelab data ...`: look at GLUE data before training on it.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use prunelab_glue::stats::{SplitStats, split_stats};
use prunelab_glue::{GlueTask, Split, TextEncoder};

use crate::table::thousands;

#[derive(Debug, clap::Subcommand)]
pub enum DataCommand {
    /// Rows per split, label balance and token-length percentiles of a GLUE task
    Stats(StatsArgs),
}

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// The GLUE task
    #[arg(long, value_enum)]
    task: GlueTask,
    #[command(flatten)]
    data: crate::common::GlueDataArgs,
    /// A tokenizer.json to measure token lengths with (e.g. a model's)
    #[arg(long, value_name = "FILE")]
    tokenizer: Option<PathBuf>,
    /// Truncation length the lengths are compared against
    #[arg(long, default_value_t = prunelab_glue::tokenize::DEFAULT_MAX_LENGTH)]
    max_length: usize,
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
}

impl DataCommand {
    pub fn run(self) -> Result<()> {
        match self {
            DataCommand::Stats(args) => args.run(),
        }
    }
}

impl StatsArgs {
    fn run(self) -> Result<()> {
        let source = self.data.source();
        let encoder = match &self.tokenizer {
            Some(path) => Some(TextEncoder::from_file(path)?.with_max_length(self.max_length)?),
            None => None,
        };
        let mut all = Vec::new();
        for split in Split::ALL {
            let data = source.load(self.task, split).with_context(|| format!("loading {} {split}", self.task))?;
            tracing::info!(task = %self.task, %split, rows = data.len(), "loaded");
            all.push(split_stats(&data, encoder.as_ref())?);
        }
        let out = if self.json {
            serde_json::to_string_pretty(&serde_json::json!({
                "task": self.task,
                "main_metric": self.task.spec().main_metric,
                "tokenizer": self.tokenizer,
                "splits": all,
            }))? + "\n"
        } else {
            render_table(self.task, &all)
        };
        #[allow(clippy::print_stdout)]
        {
            print!("{out}");
        }
        Ok(())
    }
}

fn render_table(task: GlueTask, splits: &[SplitStats]) -> String {
    let spec = task.spec();
    let mut out = String::new();
    let _ = writeln!(out, "{} ({}), main metric: {}", spec.dir, spec.name, spec.main_metric.name());
    let mut header = format!("{:<6} {:>8}", "split", "rows");
    for name in spec.class_names {
        let _ = write!(header, "  {:>18}", name);
    }
    let lengths = splits.iter().find_map(|s| s.lengths);
    if let Some(l) = lengths {
        let _ = write!(header, "  {:>7} {:>7} {:>5} {:>6}", "tok p50", "tok p95", "max", format!(">{}", l.max_length));
    }
    let _ = writeln!(out, "{header}");
    for s in splits {
        let _ = write!(out, "{:<6} {:>8}", s.split, thousands(s.rows));
        if s.labels.is_empty() {
            for _ in spec.class_names {
                let _ = write!(out, "  {:>18}", "-");
            }
        }
        for (_, n) in &s.labels {
            let cell = format!("{} ({:.1}%)", thousands(*n), 100.0 * *n as f64 / s.rows as f64);
            let _ = write!(out, "  {cell:>18}");
        }
        if let Some(l) = s.lengths {
            let _ = write!(out, "  {:>7.1} {:>7.1} {:>5} {:>6}", l.p50, l.p95, l.max, thousands(l.truncated));
        }
        let _ = writeln!(out);
    }
    for s in splits {
        let _ = writeln!(out, "  {}: {}", s.split, s.source);
    }
    out
}
