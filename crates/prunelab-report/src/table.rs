//! The Markdown table of the cells: the main metric's mean ± std over seeds per model × task ×
//! arm × amount, with the sparsity actually reached and the speeds.

use std::fmt::Write;

use crate::aggregate::Cell;
use crate::fmt;

/// The table, one row per cell, in the cells' order.
pub fn markdown_table(cells: &[Cell]) -> String {
    let mut md = String::from(
        "| model | task | arm | amount | metric | mean ± std | n seeds | zero, all params (after) | train samples/s | inference/s (batch 64) |\n\
         |---|---|---|---:|---|---:|---:|---:|---:|---:|\n",
    );
    if cells.is_empty() {
        md.push_str("| – | – | – | – | – | no finished runs | 0 | – | – | – |\n");
    }
    for c in cells {
        let collapsed = if c.collapsed > 0 { format!(" ({} collapsed)", c.collapsed) } else { String::new() };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {}{collapsed} | {} | {} | {} | {} |",
            fmt::cell(&c.model),
            fmt::cell(&c.task),
            fmt::cell(&c.arm.label()),
            fmt::amount(c.amount),
            c.metric,
            fmt::stat(c.main, 4),
            c.main.map_or(0, |s| s.n),
            fmt::stat_percent(c.all_after),
            fmt::mean(c.samples_per_second, 1),
            fmt::mean(c.throughput, 1),
        );
    }
    md
}
