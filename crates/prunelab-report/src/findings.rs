//! Findings computed from the cells, never typed in: how far each arm can be pruned within one
//! point of dense, and the study's two flaws measured against the corrected method.
//! Where the runs a finding needs are missing it says "not enough data".

use std::fmt::Write;

use crate::aggregate::{Cell, Stat, dense};
use crate::fmt;
use crate::results::Arm;

/// "Within one point of dense": a mean main metric at most this far below the dense mean.
pub const TOLERANCE: f64 = 0.01;

/// How far one arm of one model × task can be pruned.
#[derive(Debug, Clone, PartialEq)]
pub struct Prunable {
    /// Model short name.
    pub model: String,
    /// Task.
    pub task: String,
    /// The pruned arm.
    pub arm: Arm,
    /// The main metric's name.
    pub metric: String,
    /// The dense baseline's main metric, if it ran.
    pub dense: Option<Stat>,
    /// Every amount tested, ascending.
    pub tested: Vec<Tested>,
    /// The largest tested amount whose mean is at most [`TOLERANCE`] below dense (`None`:
    /// none is, or no dense baseline).
    pub largest_within: Option<f64>,
}

/// One amount of a [`Prunable`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tested {
    /// The amount.
    pub amount: f64,
    /// Its main metric over seeds.
    pub main: Stat,
    /// The zero share of all parameters reached (after fine-tuning).
    pub all_after: Option<Stat>,
}

/// A study-style cell next to the cell of the corrected method it is measured against.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// The cell with the flaw (`--scope seed`, or `mask_mode: release`).
    pub flawed: Cell,
    /// The same scheme and amount without the flaw, if it ran.
    pub corrected: Option<Cell>,
    /// Whether `corrected` differs from `flawed` in the flaw's setting only (else it is the
    /// corrected method, default scope with masks held, and may differ in both).
    pub exact: bool,
}

/// Everything the report concludes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Findings {
    /// Per model × task × pruned arm.
    pub prunable: Vec<Prunable>,
    /// Flaw 1: `--scope seed` next to the default scope.
    pub scope: Vec<Pair>,
    /// Flaw 2: `release` next to `hold`.
    pub release: Vec<Pair>,
}

/// Compute the findings from the cells (as [`crate::aggregate`] sorts them).
pub fn findings(cells: &[Cell]) -> Findings {
    Findings { prunable: prunable(cells), scope: scope_pairs(cells), release: release_pairs(cells) }
}

fn prunable(cells: &[Cell]) -> Vec<Prunable> {
    let mut out: Vec<Prunable> = Vec::new();
    for cell in cells.iter().filter(|c| !c.is_dense()) {
        let Some(main) = cell.main else { continue };
        let same = |p: &Prunable| p.model == cell.model && p.task == cell.task && p.arm == cell.arm;
        if !out.last().is_some_and(same) {
            out.push(Prunable {
                model: cell.model.clone(),
                task: cell.task.clone(),
                arm: cell.arm.clone(),
                metric: cell.metric.clone(),
                dense: dense(cells, &cell.model, &cell.task).and_then(|d| d.main),
                tested: Vec::new(),
                largest_within: None,
            });
        }
        let Some(p) = out.last_mut() else { continue };
        p.tested.push(Tested { amount: cell.amount, main, all_after: cell.all_after });
        if let Some(d) = p.dense
            && main.mean >= d.mean - TOLERANCE - 1e-12
        {
            p.largest_within = Some(p.largest_within.map_or(cell.amount, |a| a.max(cell.amount)));
        }
    }
    out
}

/// The cell of `model` × `task` with this scheme, scope, mask mode and amount.
fn find<'a>(cells: &'a [Cell], like: &Cell, scope: &str, mask_mode: &str) -> Option<&'a Cell> {
    cells.iter().find(|c| {
        c.model == like.model
            && c.task == like.task
            && c.arm.scheme == like.arm.scheme
            && c.arm.scope == scope
            && c.arm.mask_mode == mask_mode
            && (c.amount - like.amount).abs() < 1e-9
    })
}

/// Pair each flawed cell with the cell differing only in the flaw's setting, else with the
/// corrected method (default scope, hold).
fn pairs(cells: &[Cell], flawed: impl Fn(&Cell) -> bool, exact: impl Fn(&Cell) -> (&str, &str)) -> Vec<Pair> {
    cells
        .iter()
        .filter(|c| !c.is_dense() && flawed(c))
        .map(|c| {
            let (scope, mask_mode) = exact(c);
            match find(cells, c, scope, mask_mode) {
                Some(m) => Pair { flawed: c.clone(), corrected: Some(m.clone()), exact: true },
                None => Pair { flawed: c.clone(), corrected: find(cells, c, "default", "hold").cloned(), exact: false },
            }
        })
        .collect()
}

fn scope_pairs(cells: &[Cell]) -> Vec<Pair> {
    pairs(cells, |c| c.arm.scope == "seed", |c| ("default", c.arm.mask_mode.as_str()))
}

fn release_pairs(cells: &[Cell]) -> Vec<Pair> {
    pairs(cells, |c| c.arm.mask_mode == "release", |c| (c.arm.scope.as_str(), "hold"))
}

const NOT_ENOUGH: &str = "not enough data";

impl Findings {
    /// The findings as Markdown sections (level-3 headings).
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        self.prunable_markdown(&mut md);
        self.scope_markdown(&mut md);
        self.release_markdown(&mut md);
        md
    }

    fn prunable_markdown(&self, md: &mut String) {
        md.push_str("### How far can each model be pruned?\n\n");
        let _ = writeln!(
            md,
            "The largest amount (pruned fraction of the scope) whose mean main metric over seeds is at most \
             {} point ({TOLERANCE}) below the dense model's mean. Means over seeds; a pruned model better than \
             dense counts as within. Arms: the scheme, scope and mask mode, then `gradual` for pruning during \
             fine-tuning along Zhu & Gupta's schedule and `+kd` (or `kd`) for distillation from a teacher; \
             without them, one-shot pruning before fine-tuning (the study's method).\n",
            TOLERANCE * 100.0
        );
        if self.prunable.is_empty() {
            let _ = writeln!(md, "Not enough data: no finished pruned run with a main metric.\n");
            return;
        }
        md.push_str(
            "| model | task | arm | metric | dense | largest amount within 1 point | its mean | zero, all params there | amounts tested: mean ± std (points from dense) |\n",
        );
        md.push_str("|---|---|---|---|---|---|---|---|---|\n");
        for p in &self.prunable {
            let dense = p.dense.map_or_else(|| format!("{NOT_ENOUGH} (no dense run)"), |d| d.format(4));
            let (largest, at, all) = match (p.dense, p.largest_within) {
                (None, _) => (NOT_ENOUGH.to_owned(), "–".to_owned(), "–".to_owned()),
                (Some(_), None) => ("none of those tested".to_owned(), "–".to_owned(), "–".to_owned()),
                (Some(_), Some(a)) => {
                    let t = p.tested.iter().find(|t| t.amount == a);
                    (fmt::amount(a), fmt::stat(t.map(|t| t.main), 4), fmt::stat_percent(t.and_then(|t| t.all_after)))
                }
            };
            // Each amount's mean ± std over seeds, and how far it is from dense, in points.
            let tested: Vec<String> = p
                .tested
                .iter()
                .map(|t| {
                    let delta =
                        p.dense.map_or_else(String::new, |d| format!(" ({:+.1})", 100.0 * (t.main.mean - d.mean)));
                    format!("{}: {}{delta}", fmt::amount(t.amount), t.main.format(4))
                })
                .collect();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {dense} | {largest} | {at} | {all} | {} |",
                fmt::cell(&p.model),
                p.task,
                p.arm.label(),
                p.metric,
                tested.join(", ")
            );
        }
        md.push('\n');
    }

    fn scope_markdown(&self, md: &mut String) {
        md.push_str("### The study's flaw 1: `--scope seed` prunes only `nn.Linear` weights\n\n");
        md.push_str(
            "The study pruned every `nn.Linear` weight. GPT-2's attention and MLP are `Conv1D`, so on GPT-2 that \
             scope is the `score` head alone, and \"90% pruned\" leaves almost every weight in place. The share of \
             *all* parameters that are zero after fine-tuning tells what was really pruned.\n\n",
        );
        if self.scope.is_empty() {
            let _ = writeln!(md, "Not enough data: no finished run with `--scope seed`.\n");
            return;
        }
        md.push_str(
            "| model | task | amount | study: arm | zero, all params | metric | corrected: arm | zero, all params | metric | metric difference (study − corrected) |\n",
        );
        md.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
        for pair in &self.scope {
            let f = &pair.flawed;
            let (c_arm, c_all, c_metric, diff) = corrected_columns(pair, |c| fmt::stat_percent(c.all_after));
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {c_arm} | {c_all} | {c_metric} | {diff} |",
                fmt::cell(&f.model),
                f.task,
                fmt::amount(f.amount),
                f.arm.label(),
                fmt::stat_percent(f.all_after),
                fmt::stat(f.main, 4),
            );
        }
        md.push('\n');
        footnote_inexact(md, &self.scope);
    }

    fn release_markdown(&self, md: &mut String) {
        md.push_str("### The study's flaw 2: `prune.remove` before fine-tuning lets pruned weights grow back\n\n");
        md.push_str(
            "The study made the pruning permanent (`prune.remove`) and then fine-tuned, so the optimizer updates the \
             pruned weights again (`mask_mode: release`); prunelab holds the masks (`hold`). The zero share of the \
             scope before fine-tuning (right after pruning) and after it tells how much of the pruning survived.\n\n",
        );
        if self.release.is_empty() {
            let _ = writeln!(md, "Not enough data: no finished run with `mask_mode: release`.\n");
            return;
        }
        md.push_str(
            "| model | task | amount | study: arm | zero in scope, before → after | metric | corrected: arm | zero in scope, before → after | metric | metric difference (study − corrected) |\n",
        );
        md.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
        let before_after =
            |c: &Cell| format!("{} → {}", fmt::stat_percent(c.scope_before), fmt::stat_percent(c.scope_after));
        for pair in &self.release {
            let f = &pair.flawed;
            let (c_arm, c_sparsity, c_metric, diff) = corrected_columns(pair, before_after);
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {c_arm} | {c_sparsity} | {c_metric} | {diff} |",
                fmt::cell(&f.model),
                f.task,
                fmt::amount(f.amount),
                f.arm.label(),
                before_after(f),
                fmt::stat(f.main, 4),
            );
        }
        md.push('\n');
        footnote_inexact(md, &self.release);
    }
}

/// The corrected cell's arm, sparsity (as `sparsity` renders it), metric, and the difference.
fn corrected_columns(pair: &Pair, sparsity: impl Fn(&Cell) -> String) -> (String, String, String, String) {
    match &pair.corrected {
        None => (NOT_ENOUGH.into(), "–".into(), "–".into(), NOT_ENOUGH.into()),
        Some(c) => {
            let arm = if pair.exact { c.arm.label() } else { format!("{}\\*", c.arm.label()) };
            let diff = match (pair.flawed.main, c.main) {
                (Some(f), Some(c)) => fmt::signed(f.mean - c.mean, 4),
                _ => NOT_ENOUGH.into(),
            };
            (arm, sparsity(c), fmt::stat(c.main, 4), diff)
        }
    }
}

fn footnote_inexact(md: &mut String, pairs: &[Pair]) {
    if pairs.iter().any(|p| !p.exact && p.corrected.is_some()) {
        md.push_str(
            "\\* No run differs from the study's arm in this setting alone; compared with the corrected method \
             (default scope, masks held) at the same scheme and amount instead.\n\n",
        );
    }
}
