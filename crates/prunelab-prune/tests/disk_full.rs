//! Writing onto a full disk: `write_atomic` fails with an error that names the file and says the
//! disk is full, the previous file is intact, and no temporary file is left to fill the disk more.
//!
//! Linux only, and only where a 64 KiB tmpfs can be mounted (root, or a container allowed to
//! mount); elsewhere the test says why it skipped and passes.
#![cfg(target_os = "linux")]
#![allow(clippy::print_stderr)] // a skipped test says why

use std::path::{Path, PathBuf};
use std::process::Command;

use prunelab_prune::file::write_atomic;

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct SmallFs {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl SmallFs {
    fn mount(size: &str) -> Result<Self, String> {
        let parent = tempfile::tempdir().map_err(|e| e.to_string())?;
        let dir = parent.path().join("fs");
        std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Self { dir, _parent: parent })
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn a_full_disk_keeps_the_previous_file_and_says_so() {
    let fs = match SmallFs::mount("64k") {
        Ok(fs) => fs,
        Err(reason) => {
            eprintln!("skipped: cannot set up a small filesystem ({reason})");
            return;
        }
    };
    let path = fs.dir.join("result.json");
    let good = br#"{"status": "finished"}"#;
    write_atomic(&path, good).unwrap();

    let err = write_atomic(&path, &vec![b'x'; 256 * 1024]).unwrap_err();
    let message = err.to_string();
    assert!(message.starts_with(&format!("cannot write {}: No space left on device", path.display())), "{message}");
    assert!(message.ends_with("(nothing was changed: any previous file is intact)"), "{message}");
    assert_eq!(std::fs::read(&path).unwrap(), good, "the previous file is intact");
    assert_eq!(entries(&fs.dir), ["result.json"], "no temporary file is left behind");

    // The space the failed write took is free again: a write that fits still succeeds.
    write_atomic(&path, &vec![b'y'; 32 * 1024]).unwrap();
    assert_eq!(std::fs::read(&path).unwrap().len(), 32 * 1024);
}
