//! `prunelab prune --out` onto a disk that is full: exit 1 with an error naming the file and the
//! full disk, every file of the previous run intact, no temporary file left behind.
//!
//! Linux only, and only where a small tmpfs can be mounted (root, or a container allowed to
//! mount); elsewhere the test says why it skipped and passes.
#![cfg(target_os = "linux")]
#![allow(clippy::print_stderr)] // a skipped test says why

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{fixture, prunelab, text};

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

/// Every file under `dir` (relative path → bytes).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(path.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[test]
fn prune_onto_a_full_disk_keeps_the_previous_run() {
    let fs = match SmallFs::mount("1m") {
        Ok(fs) => fs,
        Err(reason) => {
            eprintln!("skipped: cannot set up a small filesystem ({reason})");
            return;
        }
    };
    let out = fs.dir.join("run");
    let run = |amount: &str| {
        prunelab(&["prune", &fixture("gpt2-tiny"), "--amount", amount, "--out", out.to_str().unwrap(), "--compressed"])
    };
    let first = run("0.5");
    assert!(first.status.success(), "{}", text(&first).1);
    let before = snapshot(&out);
    assert!(before.contains_key(Path::new("model/model.safetensors")), "{:?}", before.keys());

    // Fill what is left of the disk.
    let mut filler = std::fs::File::create(fs.dir.join("filler")).unwrap();
    while filler.write_all(&[0; 4096]).is_ok() {}
    drop(filler);

    let second = run("0.9");
    let (_, stderr) = text(&second);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    let error = stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_default();
    assert!(error.starts_with(&format!("error: cannot write {}/", out.display())), "{stderr}");
    assert!(
        error.ends_with(": No space left on device (os error 28) (nothing was changed: any previous file is intact)"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(snapshot(&out), before, "every file of the first run is intact, and no temporary file is left");
}
