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
//!
//! Several builds (`--bin LABEL=FILE`, repeated: say the default `cuda` build and a
//! `cuda,fusion,autotune` one) get a column each against the same torch runs. `--repeats N`
//! alternates the f32 fine-tune measure N times (every build, then torch), because a GPU
//! process's throughput varies between processes more than within one: the table then gives
//! medians and the range of the N paired ratios.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// A prebuilt prunelab binary, as `[LABEL=]FILE` (the label defaults to the file's name);
    /// repeat to compare builds side by side against the same torch runs. Default: build one
    /// with --backend's feature
    #[arg(long = "bin", value_name = "[LABEL=]FILE", value_parser = parse_build)]
    builds: Vec<Build>,
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
    /// Alternate the f32 fine-tune measure this many times (every build, then torch); the table
    /// gives medians and the range of the paired ratios
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeats: u32,
    /// Also time torch.compile variants
    #[arg(long)]
    compile: bool,
    /// Use this (already filled) kernel cache and skip the cold-start measurement; with several
    /// builds, each uses DIR/LABEL
    #[arg(long, value_name = "DIR")]
    kernel_cache: Option<PathBuf>,
}

/// One prunelab binary under test and its column label.
#[derive(Debug, Clone)]
struct Build {
    label: String,
    bin: PathBuf,
}

/// `LABEL=FILE`, or a bare `FILE` labelled by its file name (an `=` after a `/` is part of the path).
fn parse_build(text: &str) -> Result<Build, String> {
    let (label, file) = match text.split_once('=') {
        Some((label, file)) if !label.contains('/') => (label.to_owned(), file),
        _ => {
            let stem = Path::new(text).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            (stem, text)
        }
    };
    if label.is_empty() || file.is_empty() {
        return Err(format!("{text:?}: expected LABEL=FILE or FILE"));
    }
    if label.contains(['|', ',', '"']) {
        return Err(format!("label {label:?} may not contain '|', ',' or '\"' (it heads a table column)"));
    }
    Ok(Build { label, bin: PathBuf::from(file) })
}

/// The H200's measured bf16 dense peak (TFLOP/s), the MFU denominator.
const PEAK_TFLOPS: f64 = 790.0;

pub fn run(root: &Path, args: BenchArgs) -> Result<()> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let builds = match args.builds.as_slice() {
        [] => vec![Build { label: args.backend.clone(), bin: crate::reproduce::build(root, &args.backend)? }],
        given => given.to_vec(),
    };
    for (i, b) in builds.iter().enumerate() {
        if builds[..i].iter().any(|o| o.label == b.label) {
            bail!("--bin: the label {:?} is given twice; label the builds (--bin LABEL=FILE)", b.label);
        }
        if !b.bin.is_file() {
            bail!("--bin {}={}: no such file", b.label, b.bin.display());
        }
    }
    let labels: Vec<&str> = builds.iter().map(|b| b.label.as_str()).collect();
    let first = &builds[0].bin;
    let torch_script = root.join("bench").join("torch_bench.py");
    let mut records = Vec::new();
    let mut rows: Vec<Row> = Vec::new();
    let steps = args.steps.to_string();

    let gpt2 = args.out.join("gpt2-small");
    prunelab(first, &["bench", "init", "--arch", "gpt2-small", "--out"], Some(&gpt2), None)?;
    let minilm = match &args.minilm {
        Some(dir) => dir.clone(),
        None => {
            let dir = args.out.join("minilm");
            prunelab(first, &["bench", "init", "--arch", "minilm", "--out"], Some(&dir), None)?;
            dir
        }
    };

    for (name, dir) in [("GPT-2 small", &gpt2), ("MiniLM-L6", &minilm)] {
        let d = dir.to_string_lossy().to_string();
        let train = ["bench", "train", &d, "--batch-size", "32", "--seq-len", "128", "--steps", &steps];
        // Cold: an empty kernel cache; warm: the same command again with the cache it filled.
        let mut caches = Vec::new();
        let mut colds = Vec::new();
        for b in &builds {
            let (cache, cold) = match &args.kernel_cache {
                Some(dir) if builds.len() == 1 => (dir.clone(), None),
                Some(dir) => (dir.join(&b.label), None),
                None => {
                    let cache = args.out.join(format!("kernels-{}-{}", b.label, name.replace(' ', "-")));
                    let _ = std::fs::remove_dir_all(&cache);
                    let cold = tagged(prunelab(&b.bin, &train, None, Some(&cache))?, &b.label);
                    (cache, Some(cold))
                }
            };
            caches.push(cache);
            colds.push(cold);
        }
        // f32 fine-tuning, alternated: every build, then torch.
        let mut warm: Vec<Vec<Value>> = vec![Vec::new(); builds.len()];
        let mut torch_f32 = Vec::new();
        for _ in 0..args.repeats {
            for (i, b) in builds.iter().enumerate() {
                warm[i].push(tagged(prunelab(&b.bin, &train, None, Some(&caches[i]))?, &b.label));
            }
            torch_f32.push(python(&args.python, &torch_script, &["train", &d, "--steps", &steps, "--precision", "f32"])?);
        }
        let params = num(&prunelab(first, &["bench", "infer", &d, "--batches", "1"], None, Some(&caches[0]))?, "parameters");
        let mut torch_train = Vec::new();
        for precision in ["tf32", "bf16"] {
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
        let sps = |runs: &[Value]| runs.iter().map(|r| num(r, "samples_per_second")).collect::<Vec<_>>();
        let ours: Vec<Vec<f64>> = warm.iter().map(|runs| sps(runs)).collect();
        let medians: Vec<f64> = ours.iter().map(|v| median(v)).collect();
        let what = |against: &str| format!("{name}: fine-tune samples/s (batch 32 × 128), torch {against}");
        rows.push(Row::paired(what("f32"), &ours, &sps(&torch_f32)));
        for (precision, r) in &torch_train {
            rows.push(Row::new(what(precision), &medians, num(r, "samples_per_second")));
        }
        // Mixed precision (cuda only): prunelab's bf16 products against torch's bf16 autocast.
        let mut mixed = Vec::new();
        for (i, b) in builds.iter().enumerate() {
            if warm[i][0].get("backend").and_then(Value::as_str) == Some("cuda") {
                let args = [&train[..], &["--precision", "bf16"]].concat();
                mixed.push(Some(tagged(prunelab(&b.bin, &args, None, Some(&caches[i]))?, &b.label)));
            } else {
                mixed.push(None);
            }
        }
        if mixed.iter().any(Option::is_some) {
            let mixed_sps: Vec<f64> = mixed.iter().map(|m| m.as_ref().map_or(f64::NAN, |m| num(m, "samples_per_second"))).collect();
            let theirs = torch_train.iter().find(|(p, _)| p == "bf16").map_or(f64::NAN, |(_, r)| num(r, "samples_per_second"));
            rows.push(Row::new(
                format!("{name}: fine-tune samples/s (batch 32 × 128), prunelab bf16-mixed vs torch bf16"),
                &mixed_sps,
                theirs,
            ));
            rows.push(Row::notes(
                format!("{name}: prunelab fine-tune speed, bf16-mixed ÷ f32"),
                mixed_sps.iter().zip(&medians).map(|(m, f)| format!("{:.2}×", m / f)).collect(),
            ));
        }
        let mfu = |sps: f64| 6.0 * params * sps * 128.0 / (PEAK_TFLOPS * 1e12);
        rows.push(Row::notes(
            format!("{name}: MFU of prunelab's fine-tune step (6·N·tokens/s ÷ {PEAK_TFLOPS} TFLOP/s)"),
            medians.iter().map(|&m| format!("{:.2} %", 100.0 * mfu(m))).collect(),
        ));
        rows.push(Row::notes(
            format!("{name}: prunelab time to first step, cold → warm kernel cache"),
            colds
                .iter()
                .zip(&warm)
                .map(|(cold, warm)| {
                    let cold = cold.as_ref().map_or("not measured".to_owned(), |c| format!("{:.1} s", num(c, "first_step_seconds")));
                    format!("{cold} → {:.1} s", num(&warm[0], "first_step_seconds"))
                })
                .collect(),
        ));
        let first_torch = torch_f32.first().map_or(f64::NAN, |r| num(r, "first_step_seconds"));
        rows.push(Row::new_lower(
            format!("{name}: seconds to the first step, prunelab with a warm kernel cache vs torch f32 (lower is better)"),
            &warm.iter().map(|runs| num(&runs[0], "first_step_seconds")).collect::<Vec<_>>(),
            first_torch,
        ));

        let mut infer = Vec::new();
        for (i, b) in builds.iter().enumerate() {
            infer.push(tagged(prunelab(&b.bin, &["bench", "infer", &d], None, Some(&caches[i]))?, &b.label));
        }
        let infer_sps = sps(&infer);
        for precision in ["f32", "tf32", "bf16"] {
            let r = python(&args.python, &torch_script, &["infer", &d, "--precision", precision])?;
            rows.push(Row::new(
                format!("{name}: eval samples/s (batch 64 × 128), torch {precision}"),
                &infer_sps,
                num(&r, "samples_per_second"),
            ));
            records.push(r);
        }
        records.extend(colds.into_iter().flatten());
        records.extend(mixed.into_iter().flatten());
        records.extend(warm.into_iter().flatten());
        records.extend(infer);
        records.extend(torch_f32);
        records.extend(torch_train.into_iter().map(|(_, r)| r));
        save(&args.out, &records)?;
    }

    // Matmul ceilings.
    let mut ours = Vec::new();
    for b in &builds {
        ours.push(tagged(prunelab(&b.bin, &["bench", "matmul"], None, None)?, &b.label));
    }
    let tflops: Vec<f64> = ours.iter().map(|r| num(r, "tflops")).collect();
    for precision in ["f32", "tf32", "bf16"] {
        let r = python(&args.python, &torch_script, &["matmul", "--precision", precision])?;
        rows.push(Row::new(format!("matmul 8192³ TFLOP/s, prunelab f32 vs torch {precision}"), &tflops, num(&r, "tflops")));
        records.push(r);
    }
    records.extend(ours);
    save(&args.out, &records)?;

    // Global pruning of GPT-2 small's attention/MLP weights at 90 %.
    let g = gpt2.to_string_lossy().to_string();
    let mut ours = Vec::new();
    for b in &builds {
        ours.push(tagged(prunelab(&b.bin, &["bench", "prune", &g, "--amount", "0.9"], None, None)?, &b.label));
    }
    let theirs = python(&args.python, &torch_script, &["prune", &g, "--amount", "0.9"])?;
    rows.push(Row::new_lower(
        format!("global L1 prune 90 % of {:.1}M weights, seconds (lower is better)", num(&ours[0], "scope_params") / 1e6),
        &ours.iter().map(|r| num(r, "total_seconds")).collect::<Vec<_>>(),
        num(&theirs, "total_seconds"),
    ));
    records.extend(ours);
    records.push(theirs);
    save(&args.out, &records)?;

    // Structured pruning's real speed-up: 50 % of heads and MLP neurons removed, compacted.
    let m = minilm.to_string_lossy().to_string();
    let compact = args.out.join("minilm-structured-50");
    run_plain(first, &["--quiet", "prune", &m, "--scheme", "structured", "--amount", "0.5", "--out"], &compact)?;
    let c = compact.join("model").to_string_lossy().to_string();
    let mut speedups = Vec::new();
    for b in &builds {
        let dense = tagged(prunelab(&b.bin, &["bench", "infer", &m], None, None)?, &b.label);
        let small = tagged(prunelab(&b.bin, &["bench", "infer", &c], None, None)?, &b.label);
        speedups.push(format!(
            "{:.2}× ({:.0} → {:.0} samples/s; {:.1}M → {:.1}M parameters)",
            num(&small, "samples_per_second") / num(&dense, "samples_per_second"),
            num(&dense, "samples_per_second"),
            num(&small, "samples_per_second"),
            num(&dense, "parameters") / 1e6,
            num(&small, "parameters") / 1e6
        ));
        records.extend([dense, small]);
    }
    rows.push(Row::notes(
        "MiniLM-L6 structured 50 % (heads + neurons, compacted): prunelab eval speed-up over dense".into(),
        speedups,
    ));

    let table = render(&labels, &rows);
    say(&format!("\n{table}"));
    save(&args.out, &records)?;
    std::fs::write(args.out.join("bench.md"), &table)?;
    std::fs::write(args.out.join("bench.csv"), csv(&labels, &rows))?;
    say(&format!("records in {}", args.out.join("bench.json").display()));
    Ok(())
}

/// Every record so far, so that a failure later in the run loses nothing measured before it.
fn save(out: &Path, records: &[Value]) -> Result<()> {
    let path = out.join("bench.json");
    std::fs::write(&path, serde_json::to_vec_pretty(records)?).with_context(|| format!("writing {}", path.display()))
}

/// `record` with `"build": label` added (prunelab's records, so that each names its column).
fn tagged(mut record: Value, label: &str) -> Value {
    if let Value::Object(map) = &mut record {
        map.insert("build".into(), Value::String(label.to_owned()));
    }
    record
}

/// The median (the mean of the middle two for an even count; NaN for none).
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if !n.is_multiple_of(2) => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// One table line: a cell per build, and torch's figure when the line compares.
struct Row {
    what: String,
    cells: Vec<Cell>,
    theirs: Option<f64>,
    /// For times: ratio = theirs / ours, so > 1 means prunelab is faster either way.
    lower_is_better: bool,
}

enum Cell {
    /// A measured figure, and the range of the paired ratios when it was measured repeatedly.
    Value { value: f64, range: Option<(f64, f64)> },
    Note(String),
}

impl Row {
    fn new(what: String, ours: &[f64], theirs: f64) -> Self {
        let cells = ours.iter().map(|&value| Cell::Value { value, range: None }).collect();
        Self { what, cells, theirs: Some(theirs), lower_is_better: false }
    }
    fn new_lower(what: String, ours: &[f64], theirs: f64) -> Self {
        Self { lower_is_better: true, ..Self::new(what, ours, theirs) }
    }
    fn notes(what: String, notes: Vec<String>) -> Self {
        Self { what, cells: notes.into_iter().map(Cell::Note).collect(), theirs: None, lower_is_better: false }
    }
    /// Alternated runs: `ours[build][repeat]` against `theirs[repeat]`. Medians, and the range
    /// of `ours[b][r] / theirs[r]` over the repeats when there are several.
    fn paired(what: String, ours: &[Vec<f64>], theirs: &[f64]) -> Self {
        let cells = ours
            .iter()
            .map(|runs| {
                let ratios: Vec<f64> = runs.iter().zip(theirs).map(|(o, t)| o / t).collect();
                let range = (ratios.len() > 1)
                    .then(|| ratios.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &r| (lo.min(r), hi.max(r))));
                Cell::Value { value: median(runs), range }
            })
            .collect();
        Self { what, cells, theirs: Some(median(theirs)), lower_is_better: false }
    }
    /// The speed ratio of build `i` (> 1: prunelab faster) and its paired range.
    fn ratio(&self, i: usize) -> Option<(f64, Option<(f64, f64)>)> {
        match (self.cells.get(i), self.theirs) {
            (Some(Cell::Value { value, range }), Some(t)) if self.lower_is_better => {
                Some((t / value, range.map(|(lo, hi)| (1.0 / hi, 1.0 / lo))))
            }
            (Some(Cell::Value { value, range }), Some(t)) => Some((value / t, *range)),
            _ => None,
        }
    }
}

/// The Markdown table: a prunelab column and a ratio column per build.
fn render(labels: &[&str], rows: &[Row]) -> String {
    let mut out = String::from("| measure |");
    for l in labels {
        let _ = write!(out, " prunelab {l} |");
    }
    out.push_str(" torch |");
    for l in labels {
        let _ = write!(out, " {l} ÷ torch (speed) |");
    }
    out.push_str(&format!("\n|---|{}---|{}\n", "---|".repeat(labels.len()), "---|".repeat(labels.len())));
    for r in rows {
        let _ = write!(out, "| {} |", r.what);
        for i in 0..labels.len() {
            match r.cells.get(i) {
                Some(Cell::Value { value, .. }) => {
                    let _ = write!(out, " {value:.3} |");
                }
                Some(Cell::Note(note)) => {
                    let _ = write!(out, " {note} |");
                }
                None => out.push_str(" |"),
            }
        }
        match r.theirs {
            Some(t) => {
                let _ = write!(out, " {t:.3} |");
            }
            None => out.push_str(" |"),
        }
        for i in 0..labels.len() {
            match r.ratio(i) {
                Some((ratio, Some((lo, hi)))) => {
                    let _ = write!(out, " {ratio:.2}× ({lo:.2}–{hi:.2}) |");
                }
                Some((ratio, None)) => {
                    let _ = write!(out, " {ratio:.2}× |");
                }
                None => out.push_str(" |"),
            }
        }
        out.push('\n');
    }
    out
}

/// The same rows as CSV: per build its figure (or note), ratio and paired ratio range.
fn csv(labels: &[&str], rows: &[Row]) -> String {
    let mut out = String::from("measure");
    for l in labels {
        let _ = write!(out, ",prunelab {l}");
    }
    out.push_str(",torch");
    for l in labels {
        let _ = write!(out, ",ratio {l},ratio min {l},ratio max {l}");
    }
    out.push('\n');
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    for r in rows {
        out.push_str(&quote(&r.what));
        for i in 0..labels.len() {
            out.push(',');
            match r.cells.get(i) {
                Some(Cell::Value { value, .. }) => out.push_str(&value.to_string()),
                Some(Cell::Note(note)) => out.push_str(&quote(note)),
                None => {}
            }
        }
        let _ = write!(out, ",{}", r.theirs.map_or(String::new(), |t| t.to_string()));
        for i in 0..labels.len() {
            match r.ratio(i) {
                Some((ratio, range)) => {
                    let (lo, hi) = range.map_or((String::new(), String::new()), |(lo, hi)| (format!("{lo:.4}"), format!("{hi:.4}")));
                    let _ = write!(out, ",{ratio:.4},{lo},{hi}");
                }
                None => out.push_str(",,,"),
            }
        }
        out.push('\n');
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_are_labelled_or_named_by_their_file() {
        let b = parse_build("fused=/tmp/pl-fused").unwrap();
        assert_eq!((b.label.as_str(), b.bin.as_path()), ("fused", Path::new("/tmp/pl-fused")));
        let b = parse_build("/tmp/bin/prunelab-cuda").unwrap();
        assert_eq!((b.label.as_str(), b.bin.as_path()), ("prunelab-cuda", Path::new("/tmp/bin/prunelab-cuda")));
        // An `=` inside the path is part of the path.
        let b = parse_build("/tmp/a=b/prunelab").unwrap();
        assert_eq!((b.label.as_str(), b.bin.as_path()), ("prunelab", Path::new("/tmp/a=b/prunelab")));
        assert!(parse_build("=/tmp/x").is_err());
        assert!(parse_build("fused=").is_err());
        assert!(parse_build("a|b=/tmp/x").unwrap_err().contains("a|b"));
    }

    #[test]
    fn medians_of_odd_even_and_no_values() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn paired_rows_give_medians_and_the_range_of_per_repeat_ratios() {
        // Build a: 400, 500, 450 against torch 500, 500, 450 → ratios 0.8, 1.0, 1.0.
        let row = Row::paired("x".into(), &[vec![400.0, 500.0, 450.0], vec![250.0, 250.0, 225.0]], &[500.0, 500.0, 450.0]);
        let (ratio, range) = row.ratio(0).unwrap();
        assert!((ratio - 0.9).abs() < 1e-12, "{ratio}"); // 450 / 500
        assert_eq!(range, Some((0.8, 1.0)));
        let table = render(&["a", "b"], &[row]);
        let line = table.lines().nth(2).unwrap();
        assert_eq!(line, "| x | 450.000 | 250.000 | 500.000 | 0.90× (0.80–1.00) | 0.50× (0.50–0.50) |");
        assert!(table.starts_with("| measure | prunelab a | prunelab b | torch | a ÷ torch (speed) | b ÷ torch (speed) |\n|---|---|---|---|---|---|\n"));
    }

    #[test]
    fn times_invert_the_ratio_and_notes_have_none() {
        let rows = [Row::new_lower("prune s".into(), &[2.0], 8.0), Row::notes("first step".into(), vec!["0.2 s".into()])];
        assert_eq!(rows[0].ratio(0), Some((4.0, None)));
        assert_eq!(rows[1].ratio(0), None);
        let csv = csv(&["cuda"], &rows);
        assert_eq!(
            csv,
            "measure,prunelab cuda,torch,ratio cuda,ratio min cuda,ratio max cuda\n\"prune s\",2,8,4.0000,,\n\"first step\",\"0.2 s\",,,,\n"
        );
    }
}
