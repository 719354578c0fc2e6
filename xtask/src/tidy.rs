//! `cargo xtask tidy`: cheap checks of repository invariants (run by `cargo test` as well).

use std::path::Path;

use anyhow::{Result, bail};

use crate::read;

/// Run every check; report all failures at once.
pub fn run(root: &Path) -> Result<()> {
    let mut problems = Vec::new();
    problems.extend(crate_docs(root)?);
    problems.extend(ci_runs_readme_test_command(root)?);
    problems.extend(bad_input_tests_exist(root)?);
    if problems.is_empty() {
        return Ok(());
    }
    bail!("tidy found {} problem(s):\n  {}", problems.len(), problems.join("\n  "))
}

/// Every module of every crate (each `.rs` file under a crate's `src/`, the crate root
/// included) opens with a `//!` doc saying what it owns.
fn crate_docs(root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut dirs: Vec<_> =
        std::fs::read_dir(root.join("crates"))?.filter_map(|e| e.ok().map(|e| e.path().join("src"))).collect();
    dirs.push(root.join("xtask/src"));
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") && !read(&path)?.starts_with("//!") {
                problems.push(format!("{} does not open with a `//!` module doc", path.display()));
            }
        }
    }
    problems.sort();
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

/// Every test docs/BAD_INPUT.md names (`` `file.rs::function` `` in a table row) is a function of
/// a file of that name under `crates/` or `xtask/`.
fn bad_input_tests_exist(root: &Path) -> Result<Vec<String>> {
    let doc = read(&root.join("docs/BAD_INPUT.md"))?;
    let mut sources = Vec::new();
    let mut dirs = vec![root.join("crates"), root.join("xtask")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() && !path.ends_with("target") && !path.ends_with("fixtures") {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                sources.push(path);
            }
        }
    }
    let mut problems = Vec::new();
    let named = test_references(&doc);
    if named.is_empty() {
        problems.push("docs/BAD_INPUT.md names no test (`file.rs::function`)".to_owned());
    }
    for (file, function) in named {
        let mut found = false;
        for path in sources.iter().filter(|p| p.file_name().is_some_and(|n| n == file.as_str())) {
            found |= read(path)?.contains(&format!("fn {function}("));
        }
        if !found {
            problems.push(format!("docs/BAD_INPUT.md names {file}::{function}, which is no test of a file {file}"));
        }
    }
    Ok(problems)
}

/// `(file, function)` for every `` `file.rs::function` `` in the table rows of `doc`.
fn test_references(doc: &str) -> Vec<(String, String)> {
    doc.lines()
        .filter(|l| l.starts_with('|'))
        .flat_map(|l| l.split('`'))
        .filter_map(|part| part.split_once(".rs::"))
        .filter(|(file, function)| {
            !file.is_empty() && !function.is_empty() && function.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .map(|(file, function)| (format!("{file}.rs"), function.to_owned()))
        .collect()
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
    fn finds_test_references_in_table_rows() {
        let doc =
            "see `a.rs::no` here\n| x | `msg` | 1 | `bad_input.rs::empty_split`, `grid.rs::nm_arms_are_checked` |\n";
        assert_eq!(
            test_references(doc),
            [("bad_input.rs".into(), "empty_split".into()), ("grid.rs".into(), "nm_arms_are_checked".into())]
        );
    }

    #[test]
    fn finds_the_command_after_the_marker() {
        let readme = "# x\n```sh\ncargo run\n```\nRun the tests:\n\n```sh\ncargo test --workspace\n```\n";
        assert_eq!(readme_test_command(readme).as_deref(), Some("cargo test --workspace"));
        assert_eq!(readme_test_command("no marker"), None);
    }
}
