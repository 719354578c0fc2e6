//! prunelab's developer tasks, run as `cargo xtask <task>` (the cargo-xtask pattern,
//! <https://github.com/matklad/cargo-xtask>). This crate stays light: no Burn, no async; it
//! drives the `prunelab` binary and cargo, and builds in well under a minute in its own target
//! directory (`target/xtask`).
//!
//! Tasks:
//! - `bench`: prunelab and PyTorch on identical work, side by side, as ratios.
//! - `reproduce`: the study's grid (or a preset or grid file of your own), resumable, ending in
//!   `prunelab report`; with `--timing N`, how long that grid would take, measured on N rows.
//! - `tidy`: repository invariants that are cheap to check: every crate root opens with a `//!`
//!   doc, `.ci/run` runs exactly the test command README.md gives, and every test
//!   docs/BAD_INPUT.md names exists. Also run by `cargo test`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

mod bench;
mod grid;
mod reproduce;
mod tidy;
mod timing;

/// prunelab's developer tasks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// prunelab vs PyTorch on identical work (GPU machine): a table of ratios
    Bench(bench::BenchArgs),
    /// Run a grid of prune → fine-tune → evaluate cells (resumable) and write the report
    Reproduce(reproduce::ReproduceArgs),
    /// Check repository invariants (crate docs, README/CI test command, tests named in docs/BAD_INPUT.md)
    Tidy,
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Bench(args) => bench::run(&project_root(), args),
        Task::Reproduce(args) => reproduce::run(&project_root(), args),
        Task::Tidy => tidy::run(&project_root()),
    }
}

/// The workspace root (the parent of this crate's directory).
/// The workspace root: where this crate was built from, or, for a copied binary (the GPU machine
/// gets prebuilt binaries), the working directory.
fn project_root() -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default();
    if built.join("Cargo.toml").is_file() { built } else { std::env::current_dir().unwrap_or(built) }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}
