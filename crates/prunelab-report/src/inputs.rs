//! Finding and reading everything under the input directory: `result.json` (runs),
//! `stats.json` (weight statistics), `skipped.json` (cells the grid driver left out) and a
//! top-level `grid.json` (the preset).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use prunelab_record::RunRecord;

use crate::json::{self, Node};
use crate::results::Run;
use crate::weights::WeightStats;

/// Runs' file name.
pub const RESULT_FILE: &str = "result.json";
/// Weight statistics' file name.
pub const STATS_FILE: &str = "stats.json";
/// Skipped cells' file name: `[{"model": …, "task": …, "reason": …}]`.
pub const SKIPPED_FILE: &str = "skipped.json";
/// The grid description's file name (top level only): `{"preset": …, …}`.
pub const GRID_FILE: &str = "grid.json";

/// A model × task cell the grid driver did not run, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Skipped {
    /// The model.
    pub model: String,
    /// The task.
    pub task: String,
    /// Why.
    pub reason: String,
}

/// The grid's description, from `grid.json`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Grid {
    /// The preset's name.
    pub preset: Option<String>,
    /// Every scalar entry, as text, sorted by key (`preset` included).
    pub entries: Vec<(String, String)>,
}

/// Everything the report is made from, sorted.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Inputs {
    /// Runs, sorted by model, task, arm (dense first), amount, seed and file.
    pub runs: Vec<Run>,
    /// Weight statistics, sorted by model and file.
    pub stats: Vec<WeightStats>,
    /// Skipped cells with the file that lists them, sorted.
    pub skipped: Vec<(Skipped, String)>,
    /// `grid.json`, if there is one at the top.
    pub grid: Option<Grid>,
}

/// Read every input under `dir` (recursively; a subdirectory `exclude` is left out, so a report
/// written inside its input is not read back).
pub fn read_inputs(dir: &Path, exclude: Option<&Path>) -> Result<Inputs> {
    if !dir.is_dir() {
        return Err(Error::NotADirectory { path: dir.to_owned() });
    }
    let mut files = Vec::new();
    walk(dir, exclude, &mut files)?;
    files.sort();
    let mut inputs = Inputs::default();
    for file in files {
        let relative = relative(dir, &file);
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name == RESULT_FILE {
            let record = RunRecord::read(&file)?;
            tracing::debug!(file = %file.display(), "read a run");
            inputs.runs.push(Run::from_record(relative, record));
            continue;
        }
        let bytes = std::fs::read(&file).map_err(Error::io(&file))?;
        let value = json::parse(&file, &bytes)?;
        let root = Node::root(&file, &value);
        match name {
            STATS_FILE => inputs.stats.push(WeightStats::read(relative, root)?),
            SKIPPED_FILE => inputs.skipped.extend(read_skipped(root)?.into_iter().map(|s| (s, relative.clone()))),
            GRID_FILE if file.parent() == Some(dir) => inputs.grid = Some(read_grid(root)?),
            _ => {}
        }
    }
    inputs.runs.sort_by(|a, b| {
        (a.model_name(), &a.task, !a.arm.is_dense(), &a.arm)
            .cmp(&(b.model_name(), &b.task, !b.arm.is_dense(), &b.arm))
            .then(a.amount.total_cmp(&b.amount))
            .then((a.seed, &a.path).cmp(&(b.seed, &b.path)))
    });
    inputs.stats.sort_by(|a, b| (a.model_name(), &a.path).cmp(&(b.model_name(), &b.path)));
    inputs.skipped.sort();
    tracing::info!(
        runs = inputs.runs.len(),
        stats = inputs.stats.len(),
        skipped = inputs.skipped.len(),
        dir = %dir.display(),
        "read the inputs"
    );
    Ok(inputs)
}

/// Collect the input files under `dir`. Symbolic links to files are followed, links to
/// directories are not (no cycles).
fn walk(dir: &Path, exclude: Option<&Path>, files: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(Error::io(dir))? {
        let entry = entry.map_err(Error::io(dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(Error::io(&path))?;
        if kind.is_dir() {
            if exclude.is_some_and(|ex| same_dir(ex, &path)) {
                tracing::debug!(dir = %path.display(), "not reading the report's own output directory");
                continue;
            }
            walk(&path, exclude, files)?;
        } else if (kind.is_file() || (kind.is_symlink() && path.is_file()))
            && matches!(entry.file_name().to_str(), Some(RESULT_FILE | STATS_FILE | SKIPPED_FILE | GRID_FILE))
        {
            files.push(path);
        }
    }
    Ok(())
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// `file` relative to `dir`, `/`-separated.
fn relative(dir: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(dir).unwrap_or(file);
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

fn read_skipped(root: Node<'_>) -> Result<Vec<Skipped>> {
    root.items(|s| {
        Ok(Skipped {
            model: s.required_str("model")?.to_owned(),
            task: s.required_str("task")?.to_owned(),
            reason: s.str("reason")?.unwrap_or("no reason given").to_owned(),
        })
    })
}

fn read_grid(root: Node<'_>) -> Result<Grid> {
    Ok(Grid { preset: root.str("preset")?.map(str::to_owned), entries: root.scalars() })
}
