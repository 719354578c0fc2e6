//! Records the git commit prunelab is built from (for result files), when git is available, marked
//! `-dirty` when tracked files differ from it (a build of uncommitted work).

fn main() {
    let git = |args: &[&str]| std::process::Command::new("git").args(args).output().ok();
    let commit = git(&["rev-parse", "--short=12", "HEAD"])
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    // `git diff --quiet HEAD` exits 1 when a tracked file differs from the commit.
    let dirty = git(&["diff", "--quiet", "HEAD", "--"]).is_some_and(|o| o.status.code() == Some(1));
    let commit = match (commit, dirty) {
        (Some(commit), true) => format!("{commit}-dirty"),
        (Some(commit), false) => commit,
        (None, _) => "unknown".into(),
    };
    println!("cargo:rustc-env=PRUNELAB_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    println!("cargo:rerun-if-changed=../../.git/refs/heads");
    println!("cargo:rerun-if-changed=../../.git/index");
    // Any source edit can make the tree dirty (cargo scans a directory's files).
    println!("cargo:rerun-if-changed=../../crates");
}
