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
//! alternates the fine-tune measure N times (every build, then torch f32 and TF32), because a
//! GPU process's throughput varies between processes more than within one: the table then gives
//! medians and the range of the N paired ratios.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

mod measure;
mod record;
mod table;

use measure::{Run, prunelab};
use record::{Complete, Entry};
use table::{csv, render, table_rows};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// A prebuilt prunelab binary, as `[LABEL=]FILE` (the label defaults to the file's name);
    /// repeat to compare builds side by side against the same torch runs. Default: build one
    /// with --backend's feature
    #[arg(long = "bin", value_name = "[LABEL=]FILE", value_parser = parse_build)]
    builds: Vec<Build>,
    /// An argument for build LABEL's prunelab, given before each of its commands, as
    /// `LABEL=ARG`; repeat for several (e.g. `--bin burn=/tmp/pl --bin-arg burn=--gemm=burn --bin
    /// cublas=/tmp/pl --bin-arg cublas=--gemm=cublas` compares two `--gemm`s of one binary)
    #[arg(long = "bin-arg", value_name = "LABEL=ARG", value_parser = parse_bin_arg)]
    bin_args: Vec<(String, String)>,
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
    /// Alternate the fine-tune measure this many times (every build, then torch f32 and TF32); the
    /// table gives medians and the range of the paired ratios
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeats: u32,
    /// Also time torch.compile variants
    #[arg(long)]
    compile: bool,
    /// Keep the parts that `--out`'s bench.json completed with the same builds, and measure only
    /// the rest (a run cut short loses at most the part it was in)
    #[arg(long)]
    resume: bool,
    /// Use this (already filled) kernel cache and skip the cold-start measurement; with several
    /// builds, each uses DIR/LABEL
    #[arg(long, value_name = "DIR")]
    kernel_cache: Option<PathBuf>,
    /// Measure only these parts (comma-separated; default: all of them)
    #[arg(long, value_delimiter = ',', value_parser = PARTS)]
    parts: Vec<String>,
}

/// One prunelab binary under test, its column label, and the arguments it gets before each command.
#[derive(Debug, Clone)]
struct Build {
    label: String,
    bin: PathBuf,
    args: Vec<String>,
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
    Ok(Build { label, bin: PathBuf::from(file), args: Vec::new() })
}

/// `LABEL=ARG` (the first `=` ends the label, so `cublas=--gemm=cublas` gives `--gemm=cublas`).
fn parse_bin_arg(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((label, arg)) if !label.is_empty() && !arg.is_empty() => Ok((label.to_owned(), arg.to_owned())),
        _ => Err(format!("{text:?}: expected LABEL=ARG")),
    }
}

/// Gives each `--bin-arg` to the build it names, in order.
fn attach_args(mut builds: Vec<Build>, bin_args: &[(String, String)]) -> Result<Vec<Build>> {
    for (label, arg) in bin_args {
        let Some(build) = builds.iter_mut().find(|b| &b.label == label) else {
            let labels: Vec<&str> = builds.iter().map(|b| b.label.as_str()).collect();
            bail!("--bin-arg {label}={arg}: no build is labelled {label:?} (the labels are {labels:?})");
        };
        build.args.push(arg.clone());
    }
    Ok(builds)
}

/// The H200's measured bf16 dense peak (TFLOP/s), the MFU denominator.
const PEAK_TFLOPS: f64 = 790.0;

/// The measurements, in the order they run. Each ends with a marker record
/// (`{"part": …, "complete": true, "builds": […]}`); `--resume` keeps the parts that have one.
const PARTS: [&str; 5] = ["gpt2-small", "minilm", "matmul", "prune", "structured"];

pub fn run(root: &Path, args: BenchArgs) -> Result<()> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let builds = match args.builds.as_slice() {
        [] => vec![Build {
            label: args.backend.clone(),
            bin: crate::reproduce::build(root, &args.backend)?,
            args: Vec::new(),
        }],
        given => given.to_vec(),
    };
    let builds = attach_args(builds, &args.bin_args)?;
    for (i, b) in builds.iter().enumerate() {
        if builds[..i].iter().any(|o| o.label == b.label) {
            bail!("--bin: the label {:?} is given twice; label the builds (--bin LABEL=FILE)", b.label);
        }
        if !b.bin.is_file() {
            bail!("--bin {}={}: no such file", b.label, b.bin.display());
        }
    }
    let labels: Vec<&str> = builds.iter().map(|b| b.label.as_str()).collect();
    let path = args.out.join("bench.json");
    let kept = if args.resume && path.is_file() { completed_parts(&path, &labels)? } else { Vec::new() };
    let mut run =
        Run { args: &args, builds: &builds, script: root.join("bench").join("torch_bench.py"), records: kept };
    let done: Vec<String> = run.records.iter().filter_map(marker_part).map(str::to_owned).collect();

    let gpt2 = args.out.join("gpt2-small");
    let minilm = args.minilm.clone().unwrap_or_else(|| args.out.join("minilm"));
    // The checkpoints are random (seeded): a resumed run writes them again for the parts it runs.
    let chosen = |part: &str| args.parts.is_empty() || args.parts.iter().any(|p| p == part);
    let needs = |part: &str| chosen(part) && !done.iter().any(|d| d == part);
    // The checkpoints come from the first binary, without its --bin-args.
    let plain = Build { args: Vec::new(), ..builds[0].clone() };
    if needs("gpt2-small") || needs("prune") {
        prunelab(&plain, &["bench", "init", "--arch", "gpt2-small", "--out"], Some(&gpt2), None)?;
    }
    if args.minilm.is_none() && (needs("minilm") || needs("structured")) {
        prunelab(&plain, &["bench", "init", "--arch", "minilm", "--out"], Some(&minilm), None)?;
    }
    for part in PARTS {
        if !chosen(part) {
            continue;
        }
        if !needs(part) {
            say(&format!("{part}: measured before (kept from {})", path.display()));
            continue;
        }
        match part {
            "gpt2-small" => run.model(part, &gpt2)?,
            "minilm" => run.model(part, &minilm)?,
            "matmul" => run.matmul()?,
            "prune" => run.prune(&gpt2)?,
            _ => run.structured(&minilm)?,
        }
        let builds = labels.iter().map(|l| l.to_string()).collect();
        run.records.push(Entry::Complete(Complete { part: part.into(), complete: true, builds }));
        run.save()?;
    }

    let rows = table_rows(&run.records, &labels);
    let table = render(&labels, &rows);
    say(&format!("\n{table}"));
    std::fs::write(args.out.join("bench.md"), &table)?;
    std::fs::write(args.out.join("bench.csv"), csv(&labels, &rows))?;
    say(&format!("records in {}", path.display()));
    Ok(())
}

/// The records of `path`'s completed parts (those measured with the same builds); the records of
/// a part cut short are dropped, to be measured again.
fn completed_parts(path: &Path, labels: &[&str]) -> Result<Vec<Entry>> {
    let text = crate::read(path)?;
    let records: Vec<Entry> =
        serde_json::from_str(&text).with_context(|| format!("{}: not a JSON list of bench records", path.display()))?;
    let mut complete = Vec::new();
    for r in &records {
        if let Entry::Complete(Complete { part, complete: true, builds }) = r {
            if builds != labels {
                bail!(
                    "{}: part {part:?} was measured with the builds {builds:?}, not {labels:?}; pass the same --bin labels or another --out",
                    path.display()
                );
            }
            complete.push(part.to_owned());
        }
    }
    Ok(records.into_iter().filter(|r| complete.iter().any(|c| c == r.part())).collect())
}

fn marker_part(entry: &Entry) -> Option<&str> {
    match entry {
        Entry::Complete(Complete { part, complete: true, .. }) => Some(part),
        _ => None,
    }
}

/// One bench run: the builds, torch's script, and every record so far (saved after each).
fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "bench: {line}");
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::measure::Tag;
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
    fn bin_args_go_to_the_build_they_name_in_order() {
        assert_eq!(parse_bin_arg("cublas=--gemm=cublas").unwrap(), ("cublas".to_owned(), "--gemm=cublas".to_owned()));
        assert!(parse_bin_arg("--gemm").is_err());
        assert!(parse_bin_arg("=--gemm").is_err());
        assert!(parse_bin_arg("cublas=").is_err());
        let builds = vec![parse_build("burn=/tmp/pl").unwrap(), parse_build("cublas=/tmp/pl").unwrap()];
        let given = [("cublas", "--gemm"), ("cublas", "cublas-f32")].map(|(l, a)| (l.to_owned(), a.to_owned()));
        let builds = attach_args(builds, &given).unwrap();
        assert!(builds[0].args.is_empty());
        assert_eq!(builds[1].args, ["--gemm", "cublas-f32"]);
        let error = attach_args(builds, &[("fused".to_owned(), "--gemm=cublas".to_owned())]).unwrap_err().to_string();
        assert!(error.contains("--bin-arg fused=--gemm=cublas") && error.contains(r#"["burn", "cublas"]"#), "{error}");
    }

    fn write_records(records: &[Value]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}-{}", std::process::id(), records.len()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("bench.json"), serde_json::to_vec(records).unwrap()).unwrap();
        dir.join("bench.json")
    }

    #[test]
    fn resuming_keeps_completed_parts_only_and_refuses_other_builds() {
        let t = |part, measure| Tag::new(part, measure).build("cuda");
        let value = |tag: Tag<'_>, figures: Value| serde_json::to_value(tag.apply(figures).unwrap()).unwrap();
        let records = vec![
            value(t("prune", "prune"), serde_json::json!({ "total_seconds": 3.5, "scope_params": 84.9e6 })),
            value(Tag::new("prune", "torch-prune"), serde_json::json!({ "total_seconds": 14.0 })),
            serde_json::json!({ "part": "prune", "complete": true, "builds": ["cuda"] }),
            // Cut short: no marker.
            value(t("structured", "infer-dense"), serde_json::json!({ "samples_per_second": 6000.0 })),
        ];
        let path = write_records(&records);
        let kept = completed_parts(&path, &["cuda"]).unwrap();
        assert_eq!(kept.len(), 3);
        assert!(kept.iter().all(|r| r.part() == "prune"));
        let rows = table_rows(&kept, &["cuda"]);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].what, "global L1 prune 90 % of 84.9M weights, seconds (lower is better)");
        assert_eq!(rows[0].ratio(0), Some((4.0, None)));
        let err = completed_parts(&path, &["cuda", "fused"]).unwrap_err().to_string();
        assert!(err.contains("bench.json") && err.contains("\"prune\"") && err.contains("fused"), "{err}");
    }
}
