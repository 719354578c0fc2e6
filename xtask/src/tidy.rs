//! `cargo xtask tidy`: cheap checks of repository invariants (run by `cargo test` as well).

use std::path::Path;

use anyhow::{Result, bail};

use crate::read;

/// Run every check; report all failures at once.
pub fn run(root: &Path) -> Result<()> {
    let mut problems = Vec::new();
    problems.extend(crate_docs(root)?);
    problems.extend(ci_runs_readme_test_command(root)?);
    if problems.is_empty() {
        return Ok(());
    }
    bail!("tidy found {} problem(s):\n  {}", problems.len(), problems.join("\n  "))
}

/// Every crate root (`lib.rs` or `main.rs`) opens with a `//!` doc saying what it owns.
fn crate_docs(root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(root.join("crates"))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    dirs.push(root.join("xtask"));
    for dir in dirs {
        for file in ["src/lib.rs", "src/main.rs"] {
            let path = dir.join(file);
            if path.is_file() && !read(&path)?.starts_with("//!") {
                problems.push(format!("{} does not open with a `//!` crate doc", path.display()));
            }
        }
    }
    Ok(problems)
}

/// The README names the test command in a fenced block right after a line containing
/// "Run the tests"; `.ci/run` must contain exactly that command on a line of its own.
fn ci_runs_readme_test_command(root: &Path) -> Result<Vec<String>> {
    let readme = read(&root.join("README.md"))?;
    let Some(command) = readme_test_command(&readme) else {
        return Ok(vec!["README.md has no fenced command after a line containing \"Run the tests\"".into()]);
    };
    let ci = read(&root.join(".ci/run"))?;
    if ci.lines().any(|l| l.trim() == command) {
        Ok(Vec::new())
    } else {
        Ok(vec![format!(".ci/run does not run the README's test command `{command}`")])
    }
}

fn readme_test_command(readme: &str) -> Option<String> {
    let mut lines = readme.lines().skip_while(|l| !l.contains("Run the tests"));
    lines.next()?;
    let mut lines = lines.skip_while(|l| !l.starts_with("```"));
    lines.next()?;
    lines.next().map(|l| l.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_is_tidy() {
        run(&crate::project_root()).unwrap();
    }

    #[test]
    fn finds_the_command_after_the_marker() {
        let readme = "# x\n```sh\ncargo run\n```\nRun the tests:\n\n```sh\ncargo test --workspace\n```\n";
        assert_eq!(readme_test_command(readme).as_deref(), Some("cargo test --workspace"));
        assert_eq!(readme_test_command("no marker"), None);
    }
}
