//! prunelab's developer tasks, run as `cargo xtask <task>` (the cargo-xtask pattern,
//! <https://github.com/matklad/cargo-xtask>). This crate stays light: no Burn, no async, only
//! `anyhow`; it builds in seconds in its own target directory (`target/xtask`).
//!
//! Tasks:
//! - `tidy`: repository invariants that are cheap to check: every crate root opens with a `//!`
//!   doc, and `.ci/run` runs exactly the test command README.md gives. Also run by `cargo test`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

mod tidy;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("tidy") => tidy::run(&project_root()),
        Some("help" | "--help" | "-h") | None => {
            #[allow(clippy::print_stdout)]
            {
                println!(
                    "usage: cargo xtask <task>\n\ntasks:\n  tidy    check repository invariants (crate docs, README/CI test command)"
                );
            }
            Ok(())
        }
        Some(other) => bail!("unknown task {other:?}; run `cargo xtask help`"),
    }
}

/// The workspace root (the parent of this crate's directory).
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}
