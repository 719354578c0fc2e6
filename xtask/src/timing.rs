//! `cargo xtask reproduce --timing N`: how long a grid takes, measured instead of run. Each
//! model × task of the grid fine-tunes once, dense, on its first N training rows (one epoch, a
//! dev slice, no test predictions, no export) with the grid's batch size and lengths; from what
//! those runs record, `TIMING.md` projects every cell of the full grid and the grid's wall time.
//!
//! Timing runs are not results: on checkpoints with random weights (the study's models are timed
//! that way where their weights cannot be downloaded) their scores mean nothing, so the timing
//! directory gets no report and `TIMING.md` shows no score.
//!
//! The projection of a cell: its fixed cost (process start, loading, the first step with its
//! kernel compilation, inference timing, saving: the run's wall time less its training and
//! evaluation time) plus the full grid's training rows × epochs at the measured training rate
//! and its dev rows × epochs at the measured evaluation rate. Rates were measured with `--jobs`
//! runs sharing the device, so the projected wall time holds for that `--jobs`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use prunelab_record::RunRecord;

use crate::grid::{Grid, Train};

/// Dev rows each timing run evaluates (enough for a stable rate; scores are not reported).
const DEV_SLICE: usize = 256;

/// The timing grid of `full`: its models and tasks, one dense cell each, on `rows` rows.
pub fn grid(full: &Grid, rows: usize) -> Grid {
    Grid {
        name: format!("{}-timing", full.name),
        arms: Vec::new(),
        seeds: full.seeds[..1].to_vec(),
        train: Train {
            epochs: Some(1),
            train_limit: Some(rows),
            dev_limit: Some(DEV_SLICE),
            no_test_predictions: true,
            ..full.train.clone()
        },
        ..full.clone()
    }
}

/// What one timing run measured.
struct Measured {
    train_per_s: f64,
    eval_per_s: f64,
    /// Seconds of the run outside training and evaluation (first step included).
    fixed_s: f64,
    first_step_s: f64,
}

impl Measured {
    fn read(dir: &Path) -> Result<Measured> {
        let path = dir.join("result.json");
        let record = RunRecord::read(&path)?;
        let epoch = record.epochs.first().with_context(|| format!("{}: no finished epoch", path.display()))?;
        let data = record.data.as_ref().with_context(|| format!("{}: no `data`", path.display()))?;
        let started = record.started_unix.with_context(|| format!("{}: no `started_unix`", path.display()))?;
        // result.json is written last: its modification time is the end of the run.
        let ended = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .with_context(|| format!("reading the time of {}", path.display()))?
            .duration_since(std::time::UNIX_EPOCH)
            .context("a file time before 1970")?
            .as_secs_f64();
        let wall = ended - started as f64;
        Ok(Measured {
            train_per_s: epoch.samples_per_second,
            eval_per_s: data.dev as f64 / epoch.eval_seconds.max(1e-9),
            fixed_s: (wall - epoch.train_seconds - epoch.eval_seconds).max(0.0),
            first_step_s: record.first_step_seconds.unwrap_or(0.0),
        })
    }
}

/// Timing runs on fewer training rows than this are dominated by compiling kernels for the
/// sequence lengths they meet first (dynamic padding: up to one shape per length), so their
/// projection is marked as an upper bound.
const AMORTISED_ROWS: usize = 4096;

/// Writes `<out>/TIMING.md` for the timing runs of `timing` (run with `jobs` at once) projected
/// onto `full`, and returns its text.
pub fn write(out: &Path, full: &Grid, timing: &Grid, jobs: u32) -> Result<String> {
    let epochs = full.train.epochs.unwrap_or(3) as f64;
    let full_cells = full.cells();
    let mut text = format!(
        "# Timing of the {} grid\n\nTiming runs, not results: each model × task fine-tuned once, dense, on {} training rows \
         (one epoch) and {DEV_SLICE} dev rows, {jobs} run(s) at a time; the scores of these runs are not reported. \
         A full cell is projected as the run's fixed cost plus the grid's {} epoch(s) of training and evaluation at \
         the measured rates; pruned cells are projected like dense ones (held masks cost no measurable time in the \
         flat optimizer step).\n\n\
         | model | task | train samples/s | eval samples/s | first step s | fixed s | cells / seed | projected s / cell |\n\
         |---|---|---|---|---|---|---|---|\n",
        full.name,
        timing.train.train_limit.unwrap_or(0),
        epochs,
    );
    let (mut per_seed, mut missing) = (0.0, Vec::new());
    for cell in timing.cells() {
        let m = match Measured::read(&cell.dir(out)) {
            Ok(m) => m,
            Err(err) => {
                // A run that failed or never finished: its row says why, the total leaves it out.
                writeln!(text, "| {} | {} | not measured: {} | | | | | |", cell.model, cell.task, one_line(&err))?;
                missing.push(format!("{} × {}", cell.model, cell.task));
                continue;
            }
        };
        let (rows, dev) = (cell.train_rows(&full.train) as f64, cell.dev_rows(&full.train) as f64);
        let projected = m.fixed_s + epochs * (rows / m.train_per_s + dev / m.eval_per_s);
        let count = full_cells
            .iter()
            .filter(|c| c.model == cell.model && c.task == cell.task && c.seed == full.seeds[0])
            .count();
        per_seed += projected * count as f64;
        writeln!(
            text,
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {count} | {:.0} |",
            cell.model, cell.task, m.train_per_s, m.eval_per_s, m.first_step_s, m.fixed_s, projected
        )?;
    }
    let jobs = f64::from(jobs);
    let without = if missing.is_empty() {
        String::new()
    } else {
        format!(", **without** the cells of {} (not measured)", missing.join(", "))
    };
    writeln!(
        text,
        "\nProjected wall time of the whole grid at --jobs {jobs}: **{}** for one seed, **{}** for three \
         ({:.0} cell-seconds per seed){without}.",
        hours(per_seed / jobs),
        hours(3.0 * per_seed / jobs),
        per_seed
    )?;
    let rows = timing.train.train_limit.unwrap_or(0);
    if rows < AMORTISED_ROWS {
        writeln!(
            text,
            "\n**An upper bound.** On {rows} rows of dynamically padded batches most sequence lengths are met for \
             the first time, and compiling their kernels counts in the measured rates (bench/NOTES.md, \"The \
             study's seed grid, timed\"). Time at least {AMORTISED_ROWS} rows for a projection of the running speed."
        )?;
    }
    let path = out.join("TIMING.md");
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    Ok(text)
}

/// An error and its causes on one line, for a table cell.
fn one_line(err: &anyhow::Error) -> String {
    err.to_string().replace(['\n', '|'], " ")
}

fn hours(seconds: f64) -> String {
    if seconds >= 3600.0 { format!("{:.1} h", seconds / 3600.0) } else { format!("{:.0} min", seconds / 60.0) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::Train;

    #[test]
    fn the_timing_grid_runs_one_dense_slice_per_model_and_task() {
        let full = Grid::preset("seed").unwrap();
        let timing = grid(&full, 2048);
        let cells = timing.cells();
        assert_eq!(cells.len(), full.models.len() * full.tasks.len());
        assert!(cells.iter().all(|c| c.arm.is_none()));
        let args = cells[0].finetune_args(&timing.train).join(" ");
        for expected in
            ["--epochs 1", "--train-limit 2048", "--dev-limit 256", "--no-test-predictions", "--batch-size 32"]
        {
            assert!(args.contains(expected), "{args}");
        }
    }

    #[test]
    fn a_cell_is_projected_from_its_rates_and_fixed_cost() {
        let full = Grid::preset("seed").unwrap();
        let timing = Grid {
            models: vec!["gpt2".into(), "allenai/led-base-16384".into()],
            tasks: vec!["sst2".into()],
            ..grid(&full, 2048)
        };
        let out = tempfile::tempdir().unwrap();
        let dir = timing.cells()[0].dir(out.path());
        std::fs::create_dir_all(&dir).unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        // 20 s of wall time: 4 s training at 512/s, 0.5 s evaluating 256 rows, 15.5 s fixed.
        let scores = serde_json::json!({"accuracy": 0.5, "mcc": 0.0, "f1": 0.0, "main": "accuracy",
            "main_value": 0.5, "collapsed": true, "examples": 256});
        let record = serde_json::json!({"status": "finished", "model": "gpt2", "task": "sst2",
            "pruning": {"scheme": "none"}, "started_unix": now - 20, "first_step_seconds": 9.0,
            "data": {"train": 2048, "dev": 256},
            "epochs": [{"epoch": 1, "train_loss": 0.7, "steps": 64, "train_seconds": 4.0,
                "samples_per_second": 512.0, "tokens_per_second": 5000.0, "eval": scores, "eval_seconds": 0.5}]});
        std::fs::write(dir.join("result.json"), record.to_string()).unwrap();
        let end = std::time::UNIX_EPOCH + std::time::Duration::from_secs(now);
        std::fs::File::options().write(true).open(dir.join("result.json")).unwrap().set_modified(end).unwrap();
        let text = write(out.path(), &full, &timing, 2).unwrap();
        // 15.5 + 3 × (67,349 / 512 + 872 / 512) = 415.2 s a cell; gpt2 × sst2 has 11 cells a seed.
        assert!(text.contains("| gpt2 | sst2 | 512.0 | 512.0 | 9.0 | 15.5 | 11 | 415 |"), "{text}");
        assert!(text.contains("at --jobs 2: **38 min** for one seed, **1.9 h** for three"), "{text}");
        // LED's run left no result: its row says so and the total leaves it out, by name.
        assert!(text.contains("| allenai/led-base-16384 | sst2 | not measured: "), "{text}");
        assert!(text.contains("**without** the cells of allenai/led-base-16384 × sst2 (not measured)"), "{text}");
        assert!(out.path().join("TIMING.md").is_file());
        assert!(text.contains("**An upper bound.** On 2048 rows"), "{text}");
        let enough = Grid { train: Train { train_limit: Some(4096), ..timing.train.clone() }, ..timing.clone() };
        assert!(!write(out.path(), &full, &enough, 2).unwrap().contains("upper bound"));
    }
}
