//! Shared by the targets that read files: a scratch directory per process.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A directory of this process (on tmpfs where there is one), created once, left behind on exit.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
        let dir = base.join(format!("prunelab-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    })
}

/// Write `data` to `name` in the scratch directory and return the path.
pub fn write(name: &str, data: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, data).expect("scratch file");
    path
}

/// Every error must name the file it is about.
pub fn assert_names(message: &str, file: &str) {
    assert!(message.contains(file), "the error does not name {file}: {message}");
}
