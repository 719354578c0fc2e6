//! `cargo xtask reproduce`: build `prunelab` for a backend, check what the grid needs before
//! starting, then run every cell (inspect each model once; fine-tune and evaluate each cell),
//! skipping cells whose finished result already exists, and finish with `prunelab report`.
//!
//! Invariants: one run per output directory at a time (an OS file lock on `<out>/.lock`, which
//! the OS releases if the process dies); a cell is done only when its `result.json` says
//! `finished` (prunelab writes it atomically, last); an interrupted cell leaves no such file and
//! is run again, resuming after its last finished epoch from the checkpoint prunelab keeps in the
//! cell's `checkpoint/` (or from the start with `--no-checkpoint`), so an interrupted grid ends
//! with the same table as an uninterrupted one.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::grid::{Arm, Cell, DENSE_TEACHER, Grid, slug};
use crate::timing;

#[derive(Debug, clap::Args)]
pub struct ReproduceArgs {
    /// seed (the study), minilm (every scheme on the one checkpoint reachable offline) or quick
    /// (minutes on a CPU)
    #[arg(long, default_value = "seed", conflicts_with = "grid")]
    preset: String,
    /// A grid of your own (TOML; see xtask/src/grid.rs for the format)
    #[arg(long, value_name = "FILE")]
    grid: Option<PathBuf>,
    /// auto: cuda where an NVIDIA driver answers, else wgpu where a GPU device node exists,
    /// else ndarray
    #[arg(long, default_value = "auto", value_parser = ["auto", "cuda", "wgpu", "ndarray"])]
    backend: String,
    /// GLUE TSV directory (<dir>/SST-2/train.tsv, ...); default: the Hub's nyu-mll/glue
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Use a local copy of a model: --model-dir gpt2=/models/gpt2 (repeatable)
    #[arg(long, value_name = "ID=DIR")]
    model_dir: Vec<String>,
    /// Seeds per cell: 42, 43, ... (replaces the grid's list)
    #[arg(long, value_name = "N")]
    seeds: Option<u64>,
    /// Output directory (results, report, kernel cache)
    #[arg(long, value_name = "DIR", default_value = "reports/runs")]
    out: PathBuf,
    /// Run a prebuilt prunelab binary instead of building one
    #[arg(long, value_name = "FILE")]
    bin: Option<PathBuf>,
    /// Run a preset that wants a GPU on the CPU backend anyway
    #[arg(long)]
    allow_cpu: bool,
    /// Run cells whose result says failed again (default: keep and report them)
    #[arg(long)]
    retry_failed: bool,
    /// Check and list the cells, run nothing
    #[arg(long)]
    dry_run: bool,
    /// Run up to N cells at once (each a `prunelab finetune` process with its own kernel cache;
    /// its output goes to <out>/logs/). One small model's training step leaves a large GPU mostly
    /// idle, so several cells share it well; on a CPU, 1 is best
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    jobs: u32,
    /// Spread the --jobs over N GPUs of this machine: the k-th concurrent slot runs on GPU k mod N
    /// (through CUDA_VISIBLE_DEVICES, which may already narrow the GPUs; cuda backend only)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    gpus: u32,
    /// Keep no epoch checkpoint in the cells (each one holds about 4× a model's f32 size while it
    /// runs): less disk, but an interrupted cell starts over instead of resuming after its last
    /// finished epoch
    #[arg(long)]
    no_checkpoint: bool,
    /// f32, or bf16 mixed precision (matrix products in bf16, f32 master weights; cuda only)
    #[arg(long, default_value = "f32", value_parser = ["f32", "bf16"])]
    precision: String,
    /// Time the grid instead of running it: each model × task fine-tunes once, dense, on its
    /// first N training rows (one epoch), into <out>/timing/, and <out>/timing/TIMING.md projects
    /// every cell and the grid's wall time at this --jobs (timing runs: no scores, no report)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(64..))]
    timing: Option<u64>,
}

pub fn run(root: &Path, mut args: ReproduceArgs) -> Result<()> {
    let mut grid = match &args.grid {
        Some(path) => Grid::from_file(path)?,
        None => Grid::preset(&args.preset)?,
    };
    if let Some(n) = args.seeds {
        if n == 0 {
            bail!("--seeds must be at least 1");
        }
        grid.seeds = (42..42 + n).collect();
    }
    let full = grid.clone();
    if let Some(rows) = args.timing {
        grid = timing::grid(&full, rows as usize);
        // Apart from the grid's own cells, which share its paths but not its training rows.
        args.out = args.out.join("timing");
    }
    let overrides = parse_overrides(&args.model_dir)?;
    let backend = resolve_backend(&args.backend);
    if grid.needs_gpu && backend == "ndarray" && !args.allow_cpu {
        bail!(
            "the {} grid wants a GPU (hours of fine-tuning) but no GPU backend is usable here (--backend {} resolved to \
             ndarray: no `nvidia-smi` answered and no /dev/dri render node). Run it on a GPU machine, or pass \
             --allow-cpu, or try --preset quick",
            grid.name,
            args.backend
        );
    }
    if let Some(dir) = &args.data_dir {
        // The grid's tasks only: a CoLA grid needs no SST-2 files.
        for task in grid.tasks.iter().map(|t| if t == "sst2" { "SST-2" } else { "CoLA" }) {
            let file = dir.join(task).join("train.tsv");
            if !file.is_file() {
                bail!("--data-dir {}: {} is missing (expected the GLUE TSV layout)", dir.display(), file.display());
            }
        }
    }
    let gpus = gpu_assignment(&args, &backend)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let _lock = lock(&args.out)?;

    let bin = match &args.bin {
        Some(bin) => bin.clone(),
        None => build(root, &backend)?,
    };
    say(&format!("prunelab binary: {} (backend {backend})", bin.display()));

    // Which models can run: available and supported; unsupported ones are skipped with the reason.
    struct Runnable {
        /// The grid's model id.
        model: String,
        /// What prunelab is given: the id, or the local directory `--model-dir` maps it to.
        spec: String,
        /// `model check`'s parameter count (0 when it gives none).
        params: u64,
    }
    let mut skipped = Vec::new();
    let mut unavailable = Vec::new();
    let mut runnable = Vec::new();
    for model in &grid.models {
        let path = overrides.iter().find(|(id, _)| id == model).map(|(_, dir)| dir.display().to_string());
        let spec = path.clone().unwrap_or_else(|| model.clone());
        let check = model_check(&bin, &spec)?;
        let reason = check.get("reason").and_then(|r| r.as_str()).unwrap_or("").to_owned();
        match (check.get("available").and_then(|v| v.as_bool()), check.get("supported").and_then(|v| v.as_bool())) {
            (Some(true), Some(true)) => {
                let params = check.get("approx_parameters").and_then(|p| p.as_u64()).unwrap_or(0);
                runnable.push(Runnable { model: model.clone(), spec, params })
            }
            (Some(true), _) => {
                for task in &grid.tasks {
                    skipped.push(serde_json::json!({"model": model, "task": task, "reason": reason}));
                }
                say(&format!("skipping {model}: {reason}"));
            }
            _ => unavailable.push(format!("  {model}: {reason}")),
        }
    }
    if !unavailable.is_empty() {
        bail!(
            "these models cannot be loaded:\n{}\nWith no network, download them once elsewhere into the Hugging Face \
             cache (HF_HOME), or pass --model-dir ID=DIR with a local copy (config.json, weights, tokenizer.json).",
            unavailable.join("\n")
        );
    }
    // Disk: a few MB of results per cell, and while a cell runs its epoch checkpoints (two at the
    // moment one replaces the other: model, AdamW moments and best model, 16 bytes a parameter
    // each) for each of the --jobs cells at once.
    let checkpoint_bytes = if args.no_checkpoint {
        0
    } else {
        let largest = runnable.iter().map(|r| r.params).max().unwrap_or(0);
        // Saturating: the parameter count is a number another process printed.
        u64::from(args.jobs.min(grid.cells().len() as u32)).saturating_mul(32).saturating_mul(largest)
    };
    check_disk(&args.out, grid.cells().len(), checkpoint_bytes)?;
    write_json(&args.out.join("skipped.json"), &serde_json::Value::Array(skipped))?;
    write_json(
        &args.out.join("grid.json"),
        &serde_json::json!({"preset": grid.name, "grid": grid, "backend": backend, "features": args.bin.is_none().then(|| features(&backend)), "data_dir": args.data_dir}),
    )?;

    let cells: Vec<(Cell, String)> = grid
        .cells()
        .into_iter()
        .filter_map(|c| runnable.iter().find(|r| r.model == c.model).map(|r| (c.clone(), r.spec.clone())))
        .collect();
    let todo: Vec<&(Cell, String)> =
        cells.iter().filter(|(c, _)| !is_done(&c.dir(&args.out), args.retry_failed)).collect();
    say(&format!(
        "{} cells in the {} grid ({} models runnable, {} skipped): {} finished before, {} to run",
        grid.cells().len(),
        grid.name,
        runnable.len(),
        grid.models.len() - runnable.len(),
        cells.len() - todo.len(),
        todo.len()
    ));
    if args.dry_run {
        for (cell, _) in &todo {
            say(&format!("  would run {}", cell.label()));
        }
        return Ok(());
    }

    let kernels = args.out.join("kernels");
    for Runnable { model, spec, .. } in &runnable {
        let dir = args.out.join("inspect").join(slug(model));
        if dir.join("stats.json").is_file() {
            continue;
        }
        say(&format!("inspect {model}"));
        let status = Command::new(&bin)
            .args(["--quiet", "inspect", spec, "--out"])
            .arg(&dir)
            .status()
            .with_context(|| format!("running {}", bin.display()))?;
        if !status.success() {
            bail!("`prunelab inspect {spec}` failed ({status})");
        }
    }

    let started = Instant::now();
    let to_run = todo.len();
    let failed = if args.jobs == 1 {
        run_one_at_a_time(&args, &bin, &grid, &kernels, cells.len(), &todo)?
    } else {
        run_in_parallel(&args, &bin, &grid, &kernels, &gpus, cells.len(), todo)?
    };
    say(&format!("cells done in {}", minutes(started.elapsed().as_secs_f64())));

    if args.timing.is_some() {
        // What was measured is written even when some runs failed; their rows say so.
        let table = timing::write(&args.out, &full, &grid, args.jobs)?;
        let _ = write!(std::io::stdout().lock(), "{table}");
        say(&format!("written to {}", args.out.join("TIMING.md").display()));
        if failed > 0 {
            bail!("{failed} of {to_run} timing runs failed (their results say why)");
        }
        return Ok(());
    }
    say("report");
    let status = Command::new(&bin)
        .arg("report")
        .arg(&args.out)
        .status()
        .with_context(|| format!("running {} report", bin.display()))?;
    if !status.success() {
        bail!("`prunelab report {}` failed ({status})", args.out.display());
    }
    if failed > 0 {
        bail!("{failed} of {} cells failed (their results say why; --retry-failed runs them again)", to_run);
    }
    Ok(())
}

/// The cells in order, each in the foreground with the terminal (progress bars) of its own.
fn run_one_at_a_time(
    args: &ReproduceArgs,
    bin: &Path,
    grid: &Grid,
    kernels: &Path,
    total: usize,
    todo: &[&(Cell, String)],
) -> Result<usize> {
    let started = Instant::now();
    let mut failed = 0;
    for (i, (cell, spec)) in todo.iter().enumerate() {
        say(&format!("[{}/{total}] {} ({})", total - todo.len() + i + 1, cell.label(), eta(started, i, todo.len())));
        let dir = cell.dir(&args.out);
        // A run left behind by a killed driver may still be going: wait for it, then use its
        // result if it finished.
        wait_for_unlocked(&dir)?;
        if is_done(&dir, args.retry_failed) {
            say("  finished meanwhile by a run this driver did not start");
            continue;
        }
        let status = finetune_command(args, bin, grid, kernels, cell, spec)
            .status()
            .with_context(|| format!("running {}", bin.display()))?;
        if !status.success() {
            // prunelab wrote a result marked failed (with the reason) unless it was killed.
            failed += 1;
            say(&format!("  failed ({status}); see {}", dir.join("result.json").display()));
        }
    }
    Ok(failed)
}

/// Up to `--jobs` cells at once, the longest first (largest training set), each writing its output
/// to `<out>/logs/<cell>.log` and compiling into a kernel cache of its own (`kernels`, then
/// `kernels-1`, ... seeded from `kernels`): CubeCL's cache files are not shared between processes.
/// With `--gpus`, slot k runs on `gpus[k % gpus.len()]`.
fn run_in_parallel(
    args: &ReproduceArgs,
    bin: &Path,
    grid: &Grid,
    kernels: &Path,
    gpus: &[String],
    total: usize,
    mut todo: Vec<&(Cell, String)>,
) -> Result<usize> {
    todo.sort_by_key(|(cell, _)| std::cmp::Reverse(cell.train_rows(&grid.train)));
    let logs = args.out.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let slots = (args.jobs as usize).min(todo.len());
    let caches: Vec<PathBuf> = (0..slots)
        .map(|k| if k == 0 { kernels.to_path_buf() } else { kernels.with_file_name(format!("kernels-{k}")) })
        .collect();
    for cache in &caches[1..] {
        if !cache.exists() && kernels.is_dir() {
            copy_dir(kernels, cache)?;
        }
    }
    say(&format!("running {} cells, {slots} at a time; logs in {}", todo.len(), logs.display()));
    let started = Instant::now();
    let (mut next, mut finished, mut failed) = (0, 0, 0);
    let mut running: Vec<(std::process::Child, usize, &Cell)> = Vec::new();
    let mut free: Vec<usize> = (0..slots).rev().collect();
    while next < todo.len() || !running.is_empty() {
        while next < todo.len() && !free.is_empty() {
            // A distilling cell waits for its teacher, the dense cell, to end (which it does
            // first: cells of one training size keep the grid's order, the dense one first);
            // when nothing else can start, it starts anyway (and fails, naming the missing model).
            let ready = |(cell, _): &&(Cell, String)| {
                !cell.arm.as_ref().is_some_and(Arm::needs_dense_teacher) || is_done(&cell.dense().dir(&args.out), false)
            };
            let pick = match todo[next..].iter().position(ready) {
                Some(i) => next + i,
                None if running.is_empty() => next,
                None => break,
            };
            todo[next..=pick].rotate_right(1);
            let (cell, spec) = todo[next];
            next += 1;
            let dir = cell.dir(&args.out);
            wait_for_unlocked(&dir)?;
            if is_done(&dir, args.retry_failed) {
                finished += 1;
                say(&format!("  {}: finished meanwhile by a run this driver did not start", cell.label()));
                continue;
            }
            let slot = free.pop().expect("a free slot");
            let log_path = logs.join(format!("{}.log", cell.slug()));
            let log = std::fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
            let mut cmd = finetune_command(args, bin, grid, &caches[slot], cell, spec);
            let mut on = String::new();
            if !gpus.is_empty() {
                let gpu = &gpus[slot % gpus.len()];
                cmd.env("CUDA_VISIBLE_DEVICES", gpu);
                on = format!(" on GPU {gpu}");
            }
            let child = cmd
                .stdout(log.try_clone().with_context(|| format!("opening {}", log_path.display()))?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("running {}", bin.display()))?;
            say(&format!("  started {}{on} (log {})", cell.label(), log_path.display()));
            running.push((child, slot, cell));
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
        let mut i = 0;
        while i < running.len() {
            let Some(status) = running[i].0.try_wait().context("waiting for a prunelab run")? else {
                i += 1;
                continue;
            };
            let (_, slot, cell) = running.swap_remove(i);
            free.push(slot);
            finished += 1;
            let outcome = if status.success() {
                "finished".to_owned()
            } else {
                failed += 1;
                format!("FAILED ({status}); see {}", cell.dir(&args.out).join("result.json").display())
            };
            say(&format!(
                "[{}/{total}] {} {outcome} ({})",
                total - todo.len() + finished,
                cell.label(),
                eta(started, finished, todo.len())
            ));
        }
    }
    Ok(failed)
}

/// The `CUDA_VISIBLE_DEVICES` value of each GPU that `--gpus N` spreads the jobs over (empty for
/// the default of one GPU, where the environment is left as it is): the first N of those already
/// visible (the caller's `CUDA_VISIBLE_DEVICES`, else `nvidia-smi -L`'s indices).
fn gpu_assignment(args: &ReproduceArgs, backend: &str) -> Result<Vec<String>> {
    let n = args.gpus as usize;
    if n == 1 {
        return Ok(Vec::new());
    }
    if backend != "cuda" {
        bail!("--gpus {n} needs the cuda backend (--backend {} resolved to {backend})", args.backend);
    }
    if (args.jobs as usize) < n {
        bail!("--gpus {n} with --jobs {}: give at least one job per GPU (--jobs {n} or more)", args.jobs);
    }
    let visible: Vec<String> = match std::env::var("CUDA_VISIBLE_DEVICES") {
        Ok(list) if !list.trim().is_empty() => list.split(',').map(|d| d.trim().to_owned()).collect(),
        _ => {
            let out = Command::new("nvidia-smi")
                .arg("-L")
                .output()
                .context("--gpus: running `nvidia-smi -L` to count the GPUs")?;
            let listing = String::from_utf8_lossy(&out.stdout);
            (0..listing.lines().filter(|l| l.starts_with("GPU ")).count()).map(|i| i.to_string()).collect()
        }
    };
    if visible.len() < n {
        bail!("--gpus {n}: only {} GPU(s) visible ({})", visible.len(), visible.join(","));
    }
    Ok(visible[..n].to_vec())
}

/// `prunelab finetune` for one cell.
fn finetune_command(args: &ReproduceArgs, bin: &Path, grid: &Grid, kernels: &Path, cell: &Cell, spec: &str) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("--kernel-cache").arg(kernels);
    if args.precision != "f32" {
        cmd.args(["--precision", &args.precision]);
    }
    cmd.args(["finetune", spec]).args(cell.finetune_args(&grid.train));
    // A dense cell whose model teaches another arm keeps its model; the others need none.
    let teaches = cell.arm.is_none() && grid.arms.iter().any(Arm::needs_dense_teacher);
    if !teaches {
        cmd.arg("--no-export");
    }
    match cell.arm.as_ref().and_then(|arm| arm.teacher.as_deref()) {
        Some(DENSE_TEACHER) => {
            cmd.arg("--teacher").arg(cell.dense().dir(&args.out).join("model"));
        }
        Some(teacher) => {
            cmd.args(["--teacher", teacher]);
        }
        None => {}
    }
    cmd.args(["--model-id", &cell.model, "--out"]).arg(cell.dir(&args.out));
    if args.no_checkpoint {
        cmd.arg("--no-checkpoint");
    }
    match &args.data_dir {
        Some(d) => cmd.arg("--data-dir").arg(d),
        None => cmd.arg("--hub"),
    };
    cmd
}

/// "ETA 12 min" from the pace of the `done` cells out of `of`.
fn eta(started: Instant, done: usize, of: usize) -> String {
    if done == 0 {
        return "ETA after the first cell".to_owned();
    }
    let per = started.elapsed().as_secs_f64() / done as f64;
    format!("ETA {}", minutes(per * of.saturating_sub(done) as f64))
}

/// Copies the directory tree `from` to `to` (files and folders only).
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

/// `ID=DIR` pairs; the directory must exist.
fn parse_overrides(specs: &[String]) -> Result<Vec<(String, PathBuf)>> {
    specs
        .iter()
        .map(|s| {
            let (id, dir) = s.split_once('=').with_context(|| format!("--model-dir {s:?}: expected ID=DIR"))?;
            let dir = PathBuf::from(dir);
            if !dir.join("config.json").is_file() {
                bail!("--model-dir {s}: {} has no config.json", dir.display());
            }
            Ok((id.to_owned(), dir))
        })
        .collect()
}

/// `auto` → `cuda` if `nvidia-smi -L` lists a GPU, else `wgpu` if a DRM render node exists (or on
/// macOS: Metal), else `ndarray`.
fn resolve_backend(choice: &str) -> String {
    if choice != "auto" {
        return choice.to_owned();
    }
    let nvidia = Command::new("nvidia-smi")
        .arg("-L")
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("GPU"))
        .unwrap_or(false);
    if nvidia {
        return "cuda".into();
    }
    let render_node = std::fs::read_dir("/dev/dri")
        .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("renderD")))
        .unwrap_or(false);
    if render_node || cfg!(target_os = "macos") { "wgpu".into() } else { "ndarray".into() }
}

/// The cargo features `reproduce` and `bench` build prunelab with for a backend: on `cuda`, Burn's
/// kernel fusion and cuBLAS (which bring LayerNorm's kernels and the optimizer's gathers on
/// CubeCL's stream), the fastest GPU build that needs no autotuning wait — autotuning measured no
/// faster on a fixed shape and spent minutes on each new sequence length of a real fine-tune
/// (`bench/NOTES.md`, "Which build `cargo xtask reproduce` takes"); elsewhere the backend's own.
pub fn features(backend: &str) -> &str {
    match backend {
        "cuda" => "cuda,fusion,cublas",
        other => other,
    }
}

/// Builds the release binary for a backend (with [`features`]) and returns its path.
pub fn build(root: &Path, backend: &str) -> Result<PathBuf> {
    let features = features(backend);
    let why =
        if features == backend { String::new() } else { ": the fastest GPU build without autotuning waits".into() };
    say(&format!("building prunelab (release, --features {features}{why}); the first build takes several minutes"));
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(root)
        .args(["build", "--release", "-p", "prunelab-cli", "--no-default-features", "--features", features])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building prunelab with --features {features} failed ({status})");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    Ok(target.join("release").join("prunelab"))
}

/// `prunelab model check` as JSON.
fn model_check(bin: &Path, spec: &str) -> Result<serde_json::Value> {
    let out = Command::new(bin)
        .args(["--quiet", "model", "check", spec])
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!("`prunelab model check {spec}` failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("`prunelab model check {spec}` printed no JSON"))
}

/// A cell is done when its result exists and is finished (or failed, unless retrying).
fn is_done(dir: &Path, retry_failed: bool) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join("result.json")) else { return false };
    let status = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(str::to_owned));
    match status.as_deref() {
        Some("finished") => true,
        Some("failed") => !retry_failed,
        _ => false,
    }
}

/// Waits while another process holds `<dir>/.lock` (prunelab finetune holds it while it runs).
fn wait_for_unlocked(dir: &Path) -> Result<()> {
    let path = dir.join(".lock");
    let Ok(file) = std::fs::OpenOptions::new().write(true).open(&path) else { return Ok(()) };
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => {
                if !told {
                    say(&format!("  waiting for the run already writing to {}", dir.display()));
                    told = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            Err(std::fs::TryLockError::Error(err)) => {
                return Err(err).with_context(|| format!("locking {}", path.display()));
            }
        }
    }
}

/// Holds `<out>/.lock` for the life of the returned file; a second run on the same directory
/// stops at once.
fn lock(out: &Path) -> Result<std::fs::File> {
    let path = out.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            bail!("another `cargo xtask reproduce` is running on {} (it holds {})", out.display(), path.display())
        }
        Err(std::fs::TryLockError::Error(err)) => Err(err).with_context(|| format!("locking {}", path.display())),
    }
}

/// Free space under `out` (from `df -Pk`) must cover what the grid writes: results, masks and
/// the kernel cache, a few MB per cell, the running cells' checkpoints (`checkpoint_bytes`), plus
/// 1 GiB of margin.
fn check_disk(out: &Path, cells: usize, checkpoint_bytes: u64) -> Result<()> {
    let Ok(df) = Command::new("df").arg("-Pk").arg(out).output() else { return Ok(()) };
    let text = String::from_utf8_lossy(&df.stdout);
    let free_kib = text.lines().nth(1).and_then(|l| l.split_whitespace().nth(3)).and_then(|v| v.parse::<u64>().ok());
    if let Some(free) = free_kib {
        let checkpoint_kib = checkpoint_bytes / 1024;
        let need = 1024 * 1024 + 64 * 1024 * cells as u64 + checkpoint_kib;
        if free < need {
            let hint = if checkpoint_kib > 0 {
                format!(
                    "; {} MiB of it are the running cells' epoch checkpoints (--no-checkpoint or fewer --jobs need less)",
                    checkpoint_kib / 1024
                )
            } else {
                String::new()
            };
            bail!(
                "{} has {} MiB free; the grid needs about {} MiB (results, masks, kernel cache{hint}). Free space or \
                 pick another --out",
                out.display(),
                free / 1024,
                need / 1024
            );
        }
    }
    Ok(())
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value)?).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

fn minutes(seconds: f64) -> String {
    if seconds < 90.0 { format!("{seconds:.0} s") } else { format!("{:.0} min", seconds / 60.0) }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "reproduce: {line}");
}
