//! Tables, plots and a generated report from prunelab's result files.
//!
//! The report is made from files alone — `result.json` of `prunelab finetune`, `stats.json` of
//! `prunelab inspect`, `skipped.json` and `grid.json` of the grid driver — found anywhere under
//! one directory, so it can be regenerated at any time and anywhere. This crate never depends
//! on Burn.
//!
//! [`generate`] writes, under the output directory:
//! - `results.csv`: one row per run (failed ones included), every number as recorded;
//! - `table.md`: the main metric's mean ± std over seeds per model × task × arm × amount;
//! - `plots/`: PNG and SVG of metric vs sparsity, speed vs sparsity, weights by layer and zero
//!   weights per layer;
//! - `REPORT.md`: method, set-up, the table, the plots and findings computed from the data
//!   (never typed in: "not enough data" where the runs a finding needs are missing);
//! - `report.html`: the same as one self-contained page (no network): the results table sorts
//!   and filters, the metric charts show values on hover.
//!
//! ```no_run
//! let report = prunelab_report::generate("runs".as_ref(), "runs/report".as_ref())?;
//! println!("{}", report.markdown_table);
//! # Ok::<(), prunelab_report::Error>(())
//! ```

#![warn(missing_docs)]

use std::path::{Path, PathBuf};

mod aggregate;
mod error;
mod findings;
mod fmt;
mod html;
mod inputs;
mod json;
mod markdown;
mod plot;
mod plots;
mod results;
mod results_csv;
mod table;
mod weights;
mod write;

pub use aggregate::{Cell, LayerStat, Stat, aggregate};
pub use error::{Error, Result};
pub use findings::{Findings, Pair, Prunable, TOLERANCE, Tested, findings};
pub use inputs::{GRID_FILE, Grid, Inputs, RESULT_FILE, SKIPPED_FILE, STATS_FILE, Skipped, read_inputs};
pub use plots::{PLOTS_DIR, Plot, PlotKind};
pub use results::{Arm, Count, Epoch, Inference, LayerSparsity, Metrics, Run, Sparsity, Status, model_name, slug};
pub use results_csv::COLUMNS;
pub use table::markdown_table;
pub use weights::{LayerWeights, WeightStats};
pub use write::write_atomic;

/// The report's file names.
pub const REPORT_FILE: &str = "REPORT.md";
/// See [`REPORT_FILE`].
pub const CSV_FILE: &str = "results.csv";
/// See [`REPORT_FILE`].
pub const TABLE_FILE: &str = "table.md";
/// See [`REPORT_FILE`].
pub const HTML_FILE: &str = "report.html";

/// What [`generate`] wrote and found.
#[derive(Debug, Clone)]
pub struct Report {
    /// `REPORT.md`.
    pub report: PathBuf,
    /// `results.csv`.
    pub csv: PathBuf,
    /// `table.md`.
    pub table: PathBuf,
    /// `report.html`.
    pub html: PathBuf,
    /// The plots (paths relative to the output directory).
    pub plots: Vec<Plot>,
    /// The Markdown table (the content of `table.md`).
    pub markdown_table: String,
    /// Everything read.
    pub inputs: Inputs,
    /// The cells of the finished runs.
    pub cells: Vec<Cell>,
    /// The findings.
    pub findings: Findings,
}

/// The default output directory for input `dir`: `<dir>/report`.
pub fn default_out(dir: &Path) -> PathBuf {
    dir.join("report")
}

/// `to` as a path from `from` (`/`-separated; `.` when they are one directory), from their
/// canonical forms; `to` itself, as given, when either cannot be resolved.
fn relative(from: &Path, to: &Path) -> String {
    let (Ok(from_abs), Ok(to_abs)) = (from.canonicalize(), to.canonicalize()) else {
        return to.display().to_string();
    };
    let (a, b): (Vec<_>, Vec<_>) = (from_abs.components().collect(), to_abs.components().collect());
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = vec!["..".to_owned(); a.len() - common];
    parts.extend(b[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned()));
    if parts.is_empty() { ".".to_owned() } else { parts.join("/") }
}

/// Read every result under `input` (recursively, leaving `out` out) and write the CSV, the
/// table, the plots and `REPORT.md` under `out`.
pub fn generate(input: &Path, out: &Path) -> Result<Report> {
    let inputs = read_inputs(input, Some(out))?;
    let cells = aggregate(&inputs.runs);
    let findings = findings(&cells);

    let csv = out.join(CSV_FILE);
    write_atomic(&csv, &results_csv::results_csv(&inputs.runs, &csv)?)?;
    let markdown_table = markdown_table(&cells);
    let table = out.join(TABLE_FILE);
    write_atomic(&table, markdown_table.as_bytes())?;
    let plots = plots::write_plots(&cells, &inputs.stats, out)?;
    let parts = markdown::Parts {
        inputs: &inputs,
        cells: &cells,
        findings: &findings,
        table: &markdown_table,
        plots: &plots,
        csv: CSV_FILE,
        input: &relative(out, input),
    };
    let report = out.join(REPORT_FILE);
    write_atomic(&report, markdown::report(&parts).as_bytes())?;
    let html = out.join(HTML_FILE);
    write_atomic(&html, html::report_html(&parts, out)?.as_bytes())?;
    tracing::info!(report = %report.display(), cells = cells.len(), "wrote the report");
    Ok(Report { report, csv, table, html, plots, markdown_table, inputs, cells, findings })
}
