//! `cargo xtask bench`: prunelab and PyTorch on identical work, in one command, as ratios.
//!
//! Both tools load the same model directories (`prunelab bench init` writes randomly initialised
//! GPT-2 small and MiniLM-shaped checkpoints; `--minilm DIR` uses the real all-MiniLM-L6-v2
//! instead), run the same synthetic batches (fixed length, no padding), and report JSON; this
//! task runs them one after the other (never concurrently), prints a table of ratios and saves
//! every record (`bench.json`) and the table (`bench.csv`, `bench.md`) under `--out`.
//!
//! Measured: fine-tune step throughput (samples/s; first step reported separately, cold and
//! with a warm kernel cache), eval throughput, matmul TFLOP/s, model FLOP utilisation against
//! 790 TFLOP/s (the H200's measured bf16 dense peak), global-prune time for GPT-2 small's 85M
//! attention/MLP weights, and structured 50 % (heads + MLP neurons) inference speed-up.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// A prebuilt prunelab binary (default: build it with --backend's feature)
    #[arg(long, value_name = "FILE")]
    bin: Option<PathBuf>,
    /// Backend feature to build with when --bin is not given
    #[arg(long, default_value = "cuda", value_parser = ["cuda", "wgpu", "ndarray"])]
    backend: String,
    /// Python with torch and transformers
    #[arg(long, default_value = "python3")]
    python: String,
    /// The real all-MiniLM-L6-v2 directory (default: a random checkpoint of its shape)
    #[arg(long, value_name = "DIR")]
    minilm: Option<PathBuf>,
    /// Work and output directory
    #[arg(long, value_name = "DIR", default_value = "target/bench")]
    out: PathBuf,
    /// Timed training steps per measurement
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// Also time torch.compile variants
    #[arg(long)]
    compile: bool,
    /// Use this (already filled) kernel cache and skip the cold-start measurement
    #[arg(long, value_name = "DIR")]
    kernel_cache: Option<PathBuf>,
}

/// The H200's measured bf16 dense peak (TFLOP/s), the MFU denominator.
const PEAK_TFLOPS: f64 = 790.0;

pub fn run(root: &Path, args: BenchArgs) -> Result<()> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let bin = match &args.bin {
        Some(b) => b.clone(),
        None => crate::reproduce::build(root, &args.backend)?,
    };
    let torch_script = root.join("bench").join("torch_bench.py");
    let mut records = Vec::new();
    let mut rows: Vec<Row> = Vec::new();
    let steps = args.steps.to_string();

    let gpt2 = args.out.join("gpt2-small");
    prunelab(&bin, &["bench", "init", "--arch", "gpt2-small", "--out"], Some(&gpt2), None)?;
    let minilm = match &args.minilm {
        Some(dir) => dir.clone(),
        None => {
            let dir = args.out.join("minilm");
            prunelab(&bin, &["bench", "init", "--arch", "minilm", "--out"], Some(&dir), None)?;
            dir
        }
    };

    for (name, dir) in [("GPT-2 small", &gpt2), ("MiniLM-L6", &minilm)] {
        let d = dir.to_string_lossy().to_string();
        // Cold: an empty kernel cache; warm: the same command again with the cache it filled.
        let train = ["bench", "train", &d, "--batch-size", "32", "--seq-len", "128", "--steps", &steps];
        let (cache, cold) = match &args.kernel_cache {
            Some(dir) => (dir.clone(), None),
            None => {
                let cache = args.out.join(format!("kernels-{}", name.replace(' ', "-")));
                let _ = std::fs::remove_dir_all(&cache);
                let cold = prunelab(&bin, &train, None, Some(&cache))?;
                (cache, Some(cold))
            }
        };
        let warm = prunelab(&bin, &train, None, Some(&cache))?;
        let params = num(&prunelab(&bin, &["bench", "infer", &d, "--batches", "1"], None, Some(&cache))?, "parameters");
        let mut torch_train = Vec::new();
        for precision in ["f32", "tf32", "bf16"] {
            let r = python(&args.python, &torch_script, &["train", &d, "--steps", &steps, "--precision", precision])?;
            torch_train.push((precision.to_owned(), r));
        }
        if args.compile {
            let r = python(
                &args.python,
                &torch_script,
                &["train", &d, "--steps", &steps, "--precision", "bf16", "--compile"],
            )?;
            torch_train.push(("bf16 + compile".into(), r));
        }
        let ours = num(&warm, "samples_per_second");
        let tokens = |sps: f64| sps * 128.0;
        let mfu = |sps: f64| 6.0 * params * tokens(sps) / (PEAK_TFLOPS * 1e12);
        for (precision, r) in &torch_train {
            let theirs = num(r, "samples_per_second");
            rows.push(Row::new(
                format!("{name}: fine-tune samples/s (batch 32 × 128), torch {precision}"),
                ours,
                theirs,
            ));
        }
        // Mixed precision (cuda only): prunelab's bf16 products against torch's bf16 autocast.
        let cuda = warm.get("backend").and_then(Value::as_str) == Some("cuda");
        let mixed = if cuda {
            let mixed = prunelab(&bin, &[&train[..], &["--precision", "bf16"]].concat(), None, Some(&cache))?;
            let theirs = torch_train.iter().find(|(p, _)| p == "bf16").map(|(_, r)| num(r, "samples_per_second"));
            if let Some(theirs) = theirs {
                rows.push(Row::new(
                    format!("{name}: fine-tune samples/s (batch 32 × 128), prunelab bf16-mixed vs torch bf16"),
                    num(&mixed, "samples_per_second"),
                    theirs,
                ));
            }
            rows.push(Row::note(
                format!("{name}: prunelab fine-tune speed, bf16-mixed ÷ f32"),
                format!("{:.2}×", num(&mixed, "samples_per_second") / ours),
            ));
            Some(mixed)
        } else {
            None
        };
        rows.push(Row::note(
            format!("{name}: MFU of prunelab's fine-tune step (6·N·tokens/s ÷ {PEAK_TFLOPS} TFLOP/s)"),
            format!("{:.2} %", 100.0 * mfu(ours)),
        ));
        let cold_text =
            cold.as_ref().map_or("not measured".to_owned(), |c| format!("{:.1} s", num(c, "first_step_seconds")));
        rows.push(Row::note(
            format!("{name}: prunelab time to first step, cold → warm kernel cache"),
            format!("{cold_text} → {:.1} s", num(&warm, "first_step_seconds")),
        ));
        let first_torch = torch_train.first().map(|(_, r)| num(r, "first_step_seconds")).unwrap_or(f64::NAN);
        rows.push(Row::note(format!("{name}: torch f32 time to first step"), format!("{first_torch:.1} s")));

        let infer = prunelab(&bin, &["bench", "infer", &d], None, Some(&cache))?;
        for precision in ["f32", "tf32", "bf16"] {
            let r = python(&args.python, &torch_script, &["infer", &d, "--precision", precision])?;
            rows.push(Row::new(
                format!("{name}: eval samples/s (batch 64 × 128), torch {precision}"),
                num(&infer, "samples_per_second"),
                num(&r, "samples_per_second"),
            ));
            records.push(r);
        }
        records.extend(cold);
        records.extend(mixed);
        records.extend([warm, infer]);
        records.extend(torch_train.into_iter().map(|(_, r)| r));
    }

    save(&args.out, &records)?;

    // Matmul ceilings.
    let ours = prunelab(&bin, &["bench", "matmul"], None, None)?;
    for precision in ["f32", "tf32", "bf16"] {
        let r = python(&args.python, &torch_script, &["matmul", "--precision", precision])?;
        rows.push(Row::new(
            format!("matmul 8192³ TFLOP/s, prunelab f32 vs torch {precision}"),
            num(&ours, "tflops"),
            num(&r, "tflops"),
        ));
        records.push(r);
    }
    records.push(ours);

    save(&args.out, &records)?;

    // Global pruning of GPT-2 small's attention/MLP weights at 90 %.
    let g = gpt2.to_string_lossy().to_string();
    let ours = prunelab(&bin, &["bench", "prune", &g, "--amount", "0.9"], None, None)?;
    let theirs = python(&args.python, &torch_script, &["prune", &g, "--amount", "0.9"])?;
    rows.push(Row::new_lower(
        format!("global L1 prune 90 % of {:.1}M weights, seconds (lower is better)", num(&ours, "scope_params") / 1e6),
        num(&ours, "total_seconds"),
        num(&theirs, "total_seconds"),
    ));
    records.extend([ours, theirs]);

    save(&args.out, &records)?;

    // Structured pruning's real speed-up: 50 % of heads and MLP neurons removed, compacted.
    let m = minilm.to_string_lossy().to_string();
    let compact = args.out.join("minilm-structured-50");
    run_plain(&bin, &["--quiet", "prune", &m, "--scheme", "structured", "--amount", "0.5", "--out"], &compact)?;
    let c = compact.join("model").to_string_lossy().to_string();
    let dense = prunelab(&bin, &["bench", "infer", &m], None, None)?;
    let small = prunelab(&bin, &["bench", "infer", &c], None, None)?;
    rows.push(Row::note(
        "MiniLM-L6 structured 50 % (heads + neurons, compacted): prunelab eval speed-up over dense".into(),
        format!(
            "{:.2}× ({:.0} → {:.0} samples/s; {:.1}M → {:.1}M parameters)",
            num(&small, "samples_per_second") / num(&dense, "samples_per_second"),
            num(&dense, "samples_per_second"),
            num(&small, "samples_per_second"),
            num(&dense, "parameters") / 1e6,
            num(&small, "parameters") / 1e6
        ),
    ));
    records.extend([dense, small]);

    let table = render(&rows);
    say(&format!("\n{table}"));
    save(&args.out, &records)?;
    std::fs::write(args.out.join("bench.md"), &table)?;
    let mut csv = String::from("measure,prunelab,torch,ratio\n");
    for r in &rows {
        let _ = writeln!(
            csv,
            "\"{}\",{},{},{}",
            r.what,
            r.ours.map_or(String::new(), |v| v.to_string()),
            r.theirs.map_or(String::new(), |v| v.to_string()),
            r.ratio_text()
        );
    }
    std::fs::write(args.out.join("bench.csv"), csv)?;
    say(&format!("records in {}", args.out.join("bench.json").display()));
    Ok(())
}

/// Every record so far, so that a failure later in the run loses nothing measured before it.
fn save(out: &Path, records: &[Value]) -> Result<()> {
    let path = out.join("bench.json");
    std::fs::write(&path, serde_json::to_vec_pretty(records)?).with_context(|| format!("writing {}", path.display()))
}

struct Row {
    what: String,
    ours: Option<f64>,
    theirs: Option<f64>,
    /// For times: ratio = theirs / ours, so > 1 means prunelab is faster either way.
    lower_is_better: bool,
    note: Option<String>,
}

impl Row {
    fn new(what: String, ours: f64, theirs: f64) -> Self {
        Self { what, ours: Some(ours), theirs: Some(theirs), lower_is_better: false, note: None }
    }
    fn new_lower(what: String, ours: f64, theirs: f64) -> Self {
        Self { lower_is_better: true, ..Self::new(what, ours, theirs) }
    }
    fn note(what: String, note: String) -> Self {
        Self { what, ours: None, theirs: None, lower_is_better: false, note: Some(note) }
    }
    fn ratio_text(&self) -> String {
        match (self.ours, self.theirs) {
            (Some(o), Some(t)) if self.lower_is_better => format!("{:.2}", t / o),
            (Some(o), Some(t)) => format!("{:.2}", o / t),
            _ => String::new(),
        }
    }
}

fn render(rows: &[Row]) -> String {
    let mut out = String::from("| measure | prunelab | torch | prunelab ÷ torch (speed) |\n|---|---|---|---|\n");
    for r in rows {
        match &r.note {
            Some(note) => {
                let _ = writeln!(out, "| {} | {note} | | |", r.what);
            }
            None => {
                let f = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.3}"));
                let _ = writeln!(out, "| {} | {} | {} | {}× |", r.what, f(r.ours), f(r.theirs), r.ratio_text());
            }
        }
    }
    out
}

/// Runs `bin args [last]` (with a kernel cache if given) and parses its JSON stdout.
fn prunelab(bin: &Path, args: &[&str], last: Option<&Path>, cache: Option<&Path>) -> Result<Value> {
    let mut cmd = Command::new(bin);
    cmd.arg("--quiet");
    if let Some(c) = cache {
        cmd.arg("--kernel-cache").arg(c);
    }
    cmd.args(args);
    if let Some(l) = last {
        cmd.arg(l);
    }
    say(&format!("prunelab {}{}", args.join(" "), last.map(|l| format!(" {}", l.display())).unwrap_or_default()));
    json_of(cmd, "prunelab")
}

/// Runs `bin args last` for its side effects (files), not for a JSON record.
fn run_plain(bin: &Path, args: &[&str], last: &Path) -> Result<()> {
    say(&format!("prunelab {} {}", args.join(" "), last.display()));
    let out = Command::new(bin).args(args).arg(last).output().with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!("prunelab {} failed ({}): {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn python(python: &str, script: &Path, args: &[&str]) -> Result<Value> {
    let mut cmd = Command::new(python);
    cmd.arg(script).args(args);
    say(&format!("torch {}", args.join(" ")));
    json_of(cmd, "torch_bench.py")
}

fn json_of(mut cmd: Command, what: &str) -> Result<Value> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!("{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // The last line is the JSON record (prune prints tables before it).
    let line = text.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or("");
    serde_json::from_str(line).with_context(|| format!("{what} printed no JSON record: {text}"))
}

fn num(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "bench: {line}");
}
