//! `prunelab`: how much of a pretrained transformer can be pruned, and what does it cost?
//!
//! The only binary of the workspace. It owns argument parsing (clap), logging (a `tracing`
//! subscriber on stderr honouring `RUST_LOG` and `NO_COLOR`), progress display and the choice
//! of Burn backend (cargo features `ndarray`, `wgpu`, `cuda`); the work itself lives in the
//! library crates.

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod backend;
mod bench;
mod common;
mod data;
mod evaluate;
mod finetune;
mod inspect;
mod model;
mod panics;
mod prune;
mod report;
mod selection;
mod table;

/// Measure what magnitude pruning costs pretrained transformers in accuracy and buys in speed.
#[derive(Debug, Parser)]
#[command(name = "prunelab", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: GlobalArgs,
}

/// Options every subcommand takes. The GPU options are listed under their own heading, and only
/// in builds with a GPU backend (a CPU build accepts them, for scripts, but does not show them).
#[derive(Debug, clap::Args)]
struct GlobalArgs {
    /// Print only results and errors: no progress, no info logs (RUST_LOG still wins)
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Where compiled kernels (and, with the `autotune` feature, tuning results) are kept
    /// between runs
    /// [default: $PRUNELAB_KERNEL_CACHE, else the user cache dir's prunelab/kernels]
    #[arg(long, global = true, value_name = "DIR", help_heading = GPU_OPTIONS, hide = !backend::GPU)]
    kernel_cache: Option<std::path::PathBuf>,
    /// Matrix products in f32, or in bf16 with f32 master weights, LayerNorm, softmax and loss
    /// (mixed precision, like torch.autocast; cuda only: through cuBLAS, with one rounding kernel
    /// per product, where cuBLAS runs the products on Burn's stream; else with Burn's casts)
    #[arg(long, global = true, value_enum, default_value_t = backend::Precision::F32, help_heading = GPU_OPTIONS, hide = !backend::GPU)]
    precision: backend::Precision,
    /// What multiplies the projections' f32 matrices: Burn's kernels, or cuBLAS in TF32 or strict
    /// f32 arithmetic (cuBLAS needs a build with --features cublas, libcublas, and libcupti to run
    /// on Burn's CUDA stream, where it takes the attention's products too; without libcupti, or
    /// with PRUNELAB_CUBLAS_ORDER=host, each projection's product waits on the host, which is
    /// slow). Result files name the one used
    #[arg(long, global = true, value_enum, default_value_t = backend::Gemm::Auto, help_heading = GPU_OPTIONS, hide = !backend::GPU)]
    gemm: backend::Gemm,
    /// What runs softmax, GELU, dropout and LayerNorm, and the optimizer's gradient copies:
    /// prunelab's own kernels where the build has them (the CPU build: softmax, GELU and dropout in
    /// one pass each over every core, deterministic, its dropout masks differing from Burn's, and
    /// reshapes without copies; a
    /// cuda build with cublas: LayerNorm and the gradient copies on CubeCL's stream), or Burn's
    /// ops. Result files name the one used
    #[arg(long, global = true, value_enum, default_value_t = backend::Fused::Auto)]
    fused: backend::Fused,
}

/// The heading of the options only GPU backends use.
const GPU_OPTIONS: &str = "GPU options";

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect GLUE datasets
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Inspect models (local directories or Hugging Face Hub ids)
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Weight statistics per tensor and per layer: how many weights are >> 0?
    Inspect(inspect::InspectArgs),
    /// Prune a model: compute masks, apply them, report sparsity, export
    Prune(prune::PruneArgs),
    /// Fine-tune (optionally pruned, masks held) on a GLUE task, evaluate, time, write result.json
    Finetune(Box<finetune::FinetuneArgs>),
    /// Evaluate a (fine-tuned) model on a GLUE split: metrics on dev, predictions on test
    Evaluate(evaluate::EvaluateArgs),
    /// Measurements `cargo xtask bench` compares with PyTorch (JSON on stdout)
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Tables, plots and REPORT.md from the result files under a directory
    Report(report::ReportArgs),
}

fn main() -> std::process::ExitCode {
    keep_freed_memory();
    panics::record_thread_panics();
    // `--version`: the crate version, the commit and the build's backend and kernel features.
    let version = format!(
        "{} (commit {}, backend {}, {})",
        env!("CARGO_PKG_VERSION"),
        env!("PRUNELAB_GIT_COMMIT"),
        backend::NAME,
        backend::BUILD_FEATURES
    );
    // clap takes a `&'static str` here (without its `string` feature): the one string of the
    // process's lifetime.
    let version: &'static str = Box::leak(version.into_boxed_str());
    let cli = Cli::from_arg_matches(&Cli::command().version(version).get_matches()).unwrap_or_else(|e| e.exit());
    init_logging(&cli.global);
    backend::configure_kernel_cache(cli.global.kernel_cache.clone());
    match run(cli) {
        Ok(()) => {
            backend::log_kernel_use();
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {}", error_chain(&err));
            }
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    backend::set_precision(cli.global.precision)?;
    backend::check_gemm(cli.global.gemm)?;
    // Commands that compute on the backend start it first (a missing GPU stack is then one
    // clear error); the others (data, model, report) run without a device.
    if matches!(
        cli.command,
        Command::Inspect(_) | Command::Prune(_) | Command::Finetune(_) | Command::Evaluate(_) | Command::Bench(_)
    ) {
        backend::start()?;
        backend::set_gemm(cli.global.gemm)?;
        backend::set_fused(cli.global.fused)?;
        backend::set_phase_marks()?;
    }
    match cli.command {
        Command::Data(cmd) => cmd.run(),
        Command::Model(cmd) => cmd.run(),
        Command::Inspect(args) => args.run(),
        Command::Prune(args) => args.run(),
        Command::Finetune(args) => args.run(cli.global.quiet),
        Command::Evaluate(args) => args.run(),
        Command::Bench(cmd) => cmd.run(),
        Command::Report(args) => args.run(),
    }
}

/// glibc hands every block above 128 KiB to the OS when it is freed (`munmap`), so each new
/// activation or gradient of a step is fresh memory whose pages the kernel faults in and zeroes:
/// on the CPU backend that was a tenth of a fine-tuning step. Blocks up to 32 MiB (glibc's
/// largest threshold) are kept in the heap instead, and the heap is not trimmed: +20 % on
/// MiniLM's step on two cores (`bench/NOTES.md`, "CPU fine-tuning"). Larger blocks (the flat
/// optimizer step's gradient buffer, 91 MB for MiniLM; the word embeddings' gradient; attention
/// scores at batch 64 × 128) come from the heap too (`M_MMAP_MAX` 0): a 640-row SST-2 fine-tune
/// 1.03–1.07× (`bench/NOTES.md`, "No `mmap` for large blocks"). Called first thing, before any
/// other thread exists.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn keep_freed_memory() {
    // SAFETY: `mallopt` only sets allocator parameters; it is called before any allocation by
    // another thread (no thread has been started yet), with glibc's documented parameters and
    // values in their ranges (a rejected value leaves glibc's default in place).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

/// The error and its causes joined by ": ", leaving out a cause whose text the message already
/// holds (some libraries repeat their source inside their own message).
fn error_chain(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

/// Logs go to stderr; `RUST_LOG` selects them (default: info for prunelab, warn elsewhere).
fn init_logging(global: &GlobalArgs) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    // CubeCL's device thread warns "Task failed: Any { .. }" for the panic a missing GPU stack
    // causes, which `backend::start` turns into one error line of its own.
    let default = if global.quiet {
        "warn,cubecl_common=error"
    } else {
        "warn,cubecl_common=error,prunelab=info,prunelab_glue=info,prunelab_hub=info,prunelab_models=info,prunelab_prune=info,prunelab_report=info,prunelab_stats=info,prunelab_train=info"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .init();
}
