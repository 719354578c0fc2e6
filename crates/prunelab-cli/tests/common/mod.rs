//! Helpers shared by the CLI tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Run the built `prunelab` offline, without the caller's `RUST_LOG`.
pub fn prunelab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prunelab"))
        .args(args)
        .env_remove("RUST_LOG")
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap()
}

/// A model fixture of prunelab-models.
pub fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../prunelab-models/tests/fixtures").join(name).display().to_string()
}

/// `(stdout, stderr)`.
pub fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}
