//! `prunelab report`: results.csv, the table, plots and REPORT.md from result files alone.

use std::path::PathBuf;

use anyhow::{Context, Result};

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Directory searched recursively for result.json, stats.json, skipped.json (and grid.json at its top)
    dir: PathBuf,
    /// Output directory [default: DIR/report]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

impl ReportArgs {
    pub fn run(self) -> Result<()> {
        let out = self.out.clone().unwrap_or_else(|| prunelab_report::default_out(&self.dir));
        let report = prunelab_report::generate(&self.dir, &out)
            .with_context(|| format!("cannot make a report of {}", self.dir.display()))?;
        let runs = &report.inputs.runs;
        let finished = runs.iter().filter(|r| r.finished()).count();
        #[allow(clippy::print_stdout)]
        {
            println!(
                "{} runs ({finished} finished, {} failed or unfinished), {} weight statistics, {} skipped cells",
                runs.len(),
                runs.len() - finished,
                report.inputs.stats.len(),
                report.inputs.skipped.len()
            );
            println!("wrote {}", report.report.display());
            println!("wrote {} (open it in a browser: sortable table, values on hover)", report.html.display());
            println!("wrote {}", report.csv.display());
            println!("wrote {}", report.table.display());
            println!(
                "wrote {} plots (PNG and SVG) in {}",
                report.plots.len(),
                out.join(prunelab_report::PLOTS_DIR).display()
            );
            println!();
            print!("{}", report.markdown_table);
        }
        Ok(())
    }
}
