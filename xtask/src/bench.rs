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
    /// Alternate the f32 fine-tune measure this many times (every build, then torch); the table
    /// gives medians and the range of the paired ratios
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
        run.records.push(serde_json::json!({ "part": part, "complete": true, "builds": labels }));
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
fn completed_parts(path: &Path, labels: &[&str]) -> Result<Vec<Value>> {
    let text = crate::read(path)?;
    let records: Vec<Value> =
        serde_json::from_str(&text).with_context(|| format!("{}: not a JSON list of bench records", path.display()))?;
    let mut complete = Vec::new();
    for r in &records {
        if let Some(part) = marker_part(r) {
            let builds: Vec<&str> = r
                .get("builds")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if builds != labels {
                bail!(
                    "{}: part {part:?} was measured with the builds {builds:?}, not {labels:?}; pass the same --bin labels or another --out",
                    path.display()
                );
            }
            complete.push(part.to_owned());
        }
    }
    Ok(records
        .into_iter()
        .filter(|r| r.get("part").and_then(Value::as_str).is_some_and(|p| complete.iter().any(|c| c == p)))
        .collect())
}

fn marker_part(record: &Value) -> Option<&str> {
    (record.get("complete") == Some(&Value::Bool(true))).then(|| record.get("part").and_then(Value::as_str)).flatten()
}

/// One bench run: the builds, torch's script, and every record so far (saved after each).
struct Run<'a> {
    args: &'a BenchArgs,
    builds: &'a [Build],
    script: PathBuf,
    records: Vec<Value>,
}

/// Where a record belongs: its part, what it measures, the build (prunelab's) or the variant
/// (torch's: `f32`, `tf32`, `bf16`, `bf16 + compile`), and the repeat.
#[derive(Clone, Copy)]
struct Tag<'t> {
    part: &'t str,
    measure: &'t str,
    build: Option<&'t str>,
    variant: Option<&'t str>,
    repeat: Option<u32>,
}

impl<'t> Tag<'t> {
    fn new(part: &'t str, measure: &'t str) -> Self {
        Self { part, measure, build: None, variant: None, repeat: None }
    }
    fn build(self, build: &'t str) -> Self {
        Self { build: Some(build), ..self }
    }
    fn variant(self, variant: &'t str) -> Self {
        Self { variant: Some(variant), ..self }
    }
    fn repeat(self, repeat: u32) -> Self {
        Self { repeat: Some(repeat), ..self }
    }
    fn apply(&self, mut record: Value) -> Value {
        if let Value::Object(map) = &mut record {
            map.insert("part".into(), self.part.into());
            map.insert("measure".into(), self.measure.into());
            if let Some(b) = self.build {
                map.insert("build".into(), b.into());
            }
            if let Some(v) = self.variant {
                map.insert("variant".into(), v.into());
            }
            if let Some(r) = self.repeat {
                map.insert("repeat".into(), r.into());
            }
        }
        record
    }
    fn matches(&self, record: &Value) -> bool {
        let field = |key: &str| record.get(key).and_then(Value::as_str);
        field("part") == Some(self.part)
            && field("measure") == Some(self.measure)
            && (self.build.is_none() || field("build") == self.build)
            && (self.variant.is_none() || field("variant") == self.variant)
    }
}

impl Run<'_> {
    fn save(&self) -> Result<()> {
        save(&self.args.out, &self.records)
    }

    /// `prunelab ARGS [last]` with build `i`'s binary, recorded under `tag`.
    fn ours(&mut self, i: usize, args: &[&str], cache: Option<&Path>, tag: Tag<'_>) -> Result<Value> {
        let b = &self.builds[i];
        let record = tag.build(&b.label).apply(prunelab(b, args, None, cache)?);
        self.records.push(record.clone());
        self.save()?;
        Ok(record)
    }

    /// `torch_bench.py ARGS`, recorded under `tag`.
    fn theirs(&mut self, args: &[&str], tag: Tag<'_>) -> Result<()> {
        let record = tag.apply(python(&self.args.python, &self.script, args)?);
        self.records.push(record);
        self.save()
    }

    /// Build `i`'s cache under --kernel-cache: the directory itself for one build, DIR/LABEL for several.
    fn given_cache(&self, i: usize) -> Option<PathBuf> {
        let dir = self.args.kernel_cache.as_ref()?;
        Some(if self.builds.len() == 1 { dir.clone() } else { dir.join(&self.builds[i].label) })
    }

    /// Fine-tuning (cold, warm alternated with torch f32, bf16-mixed) and eval of one model.
    fn model(&mut self, part: &str, dir: &Path) -> Result<()> {
        let d = dir.to_string_lossy().to_string();
        let steps = self.args.steps.to_string();
        let train = ["bench", "train", &d, "--batch-size", "32", "--seq-len", "128", "--steps", &steps];
        // Cold: an empty kernel cache; warm: the same command again with the cache it filled.
        let mut caches = Vec::new();
        for i in 0..self.builds.len() {
            let label = self.builds[i].label.clone();
            let cache = match self.given_cache(i) {
                Some(dir) => dir,
                None => {
                    let cache = self.args.out.join(format!("kernels-{label}-{part}"));
                    let _ = std::fs::remove_dir_all(&cache);
                    self.ours(i, &train, Some(&cache), Tag::new(part, "train-cold"))?;
                    cache
                }
            };
            caches.push(cache);
        }
        let mut cuda = vec![false; self.builds.len()];
        for r in 0..self.args.repeats {
            for (i, cache) in caches.iter().enumerate() {
                let record = self.ours(i, &train, Some(cache), Tag::new(part, "train").repeat(r))?;
                cuda[i] = record.get("backend").and_then(Value::as_str) == Some("cuda");
            }
            self.theirs(
                &["train", &d, "--steps", &steps, "--precision", "f32"],
                Tag::new(part, "torch-train").variant("f32").repeat(r),
            )?;
        }
        self.ours(0, &["bench", "infer", &d, "--batches", "1"], Some(&caches[0]), Tag::new(part, "parameters"))?;
        for precision in ["tf32", "bf16"] {
            self.theirs(
                &["train", &d, "--steps", &steps, "--precision", precision],
                Tag::new(part, "torch-train").variant(precision),
            )?;
        }
        if self.args.compile {
            let args = ["train", &d, "--steps", &steps, "--precision", "bf16", "--compile"];
            self.theirs(&args, Tag::new(part, "torch-train").variant("bf16 + compile"))?;
        }
        // Mixed precision (cuda only): prunelab's bf16 products against torch's bf16 autocast.
        for (i, cache) in caches.iter().enumerate() {
            if cuda[i] {
                let args = [&train[..], &["--precision", "bf16"]].concat();
                self.ours(i, &args, Some(cache), Tag::new(part, "train-mixed"))?;
            }
        }
        for (i, cache) in caches.iter().enumerate() {
            self.ours(i, &["bench", "infer", &d], Some(cache), Tag::new(part, "infer"))?;
        }
        for precision in ["f32", "tf32", "bf16"] {
            self.theirs(&["infer", &d, "--precision", precision], Tag::new(part, "torch-infer").variant(precision))?;
        }
        Ok(())
    }

    /// Matmul ceilings, and which arithmetic each build's f32 products use.
    fn matmul(&mut self) -> Result<()> {
        // With the builds' kernel caches, the MLP product runs the kernel its training step's autotuning chose.
        for i in 0..self.builds.len() {
            let cache = self.given_cache(i);
            self.ours(i, &["bench", "matmul"], cache.as_deref(), Tag::new("matmul", "matmul"))?;
            let mlp = ["bench", "matmul", "--shape", MLP_SHAPE, "--iters", "50"];
            self.ours(i, &mlp, cache.as_deref(), Tag::new("matmul", "matmul-mlp"))?;
        }
        for precision in ["f32", "tf32", "bf16"] {
            self.theirs(&["matmul", "--precision", precision], Tag::new("matmul", "torch-matmul").variant(precision))?;
        }
        Ok(())
    }

    /// Global pruning of GPT-2 small's attention/MLP weights at 90 %.
    fn prune(&mut self, gpt2: &Path) -> Result<()> {
        let g = gpt2.to_string_lossy().to_string();
        for i in 0..self.builds.len() {
            self.ours(i, &["bench", "prune", &g, "--amount", "0.9"], None, Tag::new("prune", "prune"))?;
        }
        self.theirs(&["prune", &g, "--amount", "0.9"], Tag::new("prune", "torch-prune"))
    }

    /// Structured pruning's real speed-up: 50 % of heads and MLP neurons removed, compacted.
    fn structured(&mut self, minilm: &Path) -> Result<()> {
        let m = minilm.to_string_lossy().to_string();
        let compact = self.args.out.join("minilm-structured-50");
        let first = &self.builds[0].bin;
        run_plain(first, &["--quiet", "prune", &m, "--scheme", "structured", "--amount", "0.5", "--out"], &compact)?;
        let c = compact.join("model").to_string_lossy().to_string();
        for i in 0..self.builds.len() {
            let cache = self.given_cache(i);
            self.ours(i, &["bench", "infer", &m], cache.as_deref(), Tag::new("structured", "infer-dense"))?;
            self.ours(i, &["bench", "infer", &c], cache.as_deref(), Tag::new("structured", "infer-compact"))?;
        }
        Ok(())
    }
}

/// The records `tag` matches, in order.
fn tagged<'r>(records: &'r [Value], tag: Tag<'_>) -> Vec<&'r Value> {
    records.iter().filter(|r| tag.matches(r)).collect()
}

/// GPT-2 small's MLP product at batch 32 × 128: [4096, 768] × [768, 3072].
const MLP_SHAPE: &str = "4096,768,3072";

/// The table, from the records alone (so that a resumed run's table covers every part).
fn table_rows(records: &[Value], labels: &[&str]) -> Vec<Row> {
    let find = |tag: Tag<'_>| tagged(records, tag);
    let one = |tag: Tag<'_>| tagged(records, tag).into_iter().next();
    let value = |r: Option<&Value>, key: &str| r.map_or(f64::NAN, |r| num(r, key));
    let per_build = |tag: Tag<'_>, key: &str| labels.iter().map(|l| value(one(tag.build(l)), key)).collect::<Vec<_>>();
    let mut rows = Vec::new();
    for (part, name) in [("gpt2-small", "GPT-2 small"), ("minilm", "MiniLM-L6")] {
        let t = |measure| Tag::new(part, measure);
        if one(t("train")).is_none() {
            continue;
        }
        let sps = |tag: Tag<'_>| find(tag).into_iter().map(|r| num(r, "samples_per_second")).collect::<Vec<_>>();
        let ours: Vec<Vec<f64>> = labels.iter().map(|l| sps(t("train").build(l))).collect();
        let medians: Vec<f64> = ours.iter().map(|v| median(v)).collect();
        let what = |against: &str| format!("{name}: fine-tune samples/s (batch 32 × 128), torch {against}");
        rows.push(Row::paired(what("f32"), &ours, &sps(t("torch-train").variant("f32"))));
        for variant in ["tf32", "bf16", "bf16 + compile"] {
            if let Some(r) = one(t("torch-train").variant(variant)) {
                rows.push(Row::new(what(variant), &medians, num(r, "samples_per_second")));
            }
        }
        if one(t("train-mixed")).is_some() {
            let mixed = per_build(t("train-mixed"), "samples_per_second");
            rows.push(Row::new(
                format!("{name}: fine-tune samples/s (batch 32 × 128), prunelab bf16-mixed vs torch bf16"),
                &mixed,
                value(one(t("torch-train").variant("bf16")), "samples_per_second"),
            ));
            rows.push(Row::notes(
                format!("{name}: prunelab fine-tune speed, bf16-mixed ÷ f32"),
                mixed.iter().zip(&medians).map(|(m, f)| format!("{:.2}×", m / f)).collect(),
            ));
        }
        let params = value(one(t("parameters")), "parameters");
        let mfu = |sps: f64| 6.0 * params * sps * 128.0 / (PEAK_TFLOPS * 1e12);
        rows.push(Row::notes(
            format!("{name}: MFU of prunelab's fine-tune step (6·N·tokens/s ÷ {PEAK_TFLOPS} TFLOP/s)"),
            medians.iter().map(|&m| format!("{:.2} %", 100.0 * mfu(m))).collect(),
        ));
        let warm_first = per_build(t("train"), "first_step_seconds");
        rows.push(Row::notes(
            format!("{name}: prunelab time to first step, cold → warm kernel cache"),
            labels
                .iter()
                .zip(&warm_first)
                .map(|(l, warm)| {
                    let cold = one(t("train-cold").build(l))
                        .map_or("not measured".to_owned(), |c| format!("{:.1} s", num(c, "first_step_seconds")));
                    format!("{cold} → {warm:.1} s")
                })
                .collect(),
        ));
        rows.push(Row::new_lower(
            format!(
                "{name}: seconds to the first step, prunelab with a warm kernel cache vs torch f32 (lower is better)"
            ),
            &warm_first,
            value(one(t("torch-train").variant("f32")), "first_step_seconds"),
        ));
        let infer = per_build(t("infer"), "samples_per_second");
        for variant in ["f32", "tf32", "bf16"] {
            rows.push(Row::new(
                format!("{name}: eval samples/s (batch 64 × 128), torch {variant}"),
                &infer,
                value(one(t("torch-infer").variant(variant)), "samples_per_second"),
            ));
        }
    }
    if one(Tag::new("matmul", "matmul")).is_some() {
        let ours = per_build(Tag::new("matmul", "matmul"), "tflops");
        for variant in ["f32", "tf32", "bf16"] {
            rows.push(Row::new(
                format!("matmul 8192³ TFLOP/s, prunelab f32 vs torch {variant}"),
                &ours,
                value(one(Tag::new("matmul", "torch-matmul").variant(variant)), "tflops"),
            ));
        }
        let arithmetic = |r: Option<&Value>| {
            r.map_or("not measured".to_owned(), |r| {
                format!(
                    "{} ({:.1e})",
                    r.get("arithmetic").and_then(Value::as_str).unwrap_or("?"),
                    num(r, "relative_error")
                )
            })
        };
        rows.push(Row::notes(
            format!("prunelab's f32 matmul arithmetic (relative error against f64): 8192³; {MLP_SHAPE}"),
            labels
                .iter()
                .map(|l| {
                    let square = arithmetic(one(Tag::new("matmul", "matmul").build(l)));
                    let mlp = arithmetic(one(Tag::new("matmul", "matmul-mlp").build(l)));
                    format!("{square}; {mlp}")
                })
                .collect(),
        ));
    }
    if let Some(first) = one(Tag::new("prune", "prune")) {
        rows.push(Row::new_lower(
            format!(
                "global L1 prune 90 % of {:.1}M weights, seconds (lower is better)",
                num(first, "scope_params") / 1e6
            ),
            &per_build(Tag::new("prune", "prune"), "total_seconds"),
            value(one(Tag::new("prune", "torch-prune")), "total_seconds"),
        ));
    }
    if one(Tag::new("structured", "infer-compact")).is_some() {
        rows.push(Row::notes(
            "MiniLM-L6 structured 50 % (heads + neurons, compacted): prunelab eval speed-up over dense".into(),
            labels
                .iter()
                .map(|l| {
                    let dense = one(Tag::new("structured", "infer-dense").build(l));
                    let small = one(Tag::new("structured", "infer-compact").build(l));
                    format!(
                        "{:.2}× ({:.0} → {:.0} samples/s; {:.1}M → {:.1}M parameters)",
                        value(small, "samples_per_second") / value(dense, "samples_per_second"),
                        value(dense, "samples_per_second"),
                        value(small, "samples_per_second"),
                        value(dense, "parameters") / 1e6,
                        value(small, "parameters") / 1e6
                    )
                })
                .collect(),
        ));
    }
    rows
}

/// Every record so far, so that a failure later in the run loses nothing measured before it.
fn save(out: &Path, records: &[Value]) -> Result<()> {
    let path = out.join("bench.json");
    std::fs::write(&path, serde_json::to_vec_pretty(records)?).with_context(|| format!("writing {}", path.display()))
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
    Value {
        value: f64,
        range: Option<(f64, f64)>,
    },
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
                let range = (ratios.len() > 1).then(|| {
                    ratios.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &r| (lo.min(r), hi.max(r)))
                });
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
    // An empty cell is " |".
    let put = |out: &mut String, text: String| {
        let _ = if text.is_empty() { write!(out, " |") } else { write!(out, " {text} |") };
    };
    for r in rows {
        let _ = write!(out, "| {} |", r.what);
        for i in 0..labels.len() {
            let cell = match r.cells.get(i) {
                Some(Cell::Value { value, .. }) => format!("{value:.3}"),
                Some(Cell::Note(note)) => note.clone(),
                None => String::new(),
            };
            put(&mut out, cell);
        }
        put(&mut out, r.theirs.map_or(String::new(), |t| format!("{t:.3}")));
        for i in 0..labels.len() {
            let ratio = match r.ratio(i) {
                Some((ratio, Some((lo, hi)))) => format!("{ratio:.2}× ({lo:.2}–{hi:.2})"),
                Some((ratio, None)) => format!("{ratio:.2}×"),
                None => String::new(),
            };
            put(&mut out, ratio);
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
                    let (lo, hi) = range
                        .map_or((String::new(), String::new()), |(lo, hi)| (format!("{lo:.4}"), format!("{hi:.4}")));
                    let _ = write!(out, ",{ratio:.4},{lo},{hi}");
                }
                None => out.push_str(",,,"),
            }
        }
        out.push('\n');
    }
    out
}

/// Runs `build`'s binary with its arguments, then `args [last]` (with a kernel cache if given), and
/// parses its JSON stdout.
fn prunelab(build: &Build, args: &[&str], last: Option<&Path>, cache: Option<&Path>) -> Result<Value> {
    let mut cmd = Command::new(&build.bin);
    cmd.arg("--quiet").args(&build.args);
    if let Some(c) = cache {
        cmd.arg("--kernel-cache").arg(c);
    }
    cmd.args(args);
    if let Some(l) = last {
        cmd.arg(l);
    }
    let all: Vec<&str> = build.args.iter().map(String::as_str).chain(args.iter().copied()).collect();
    say(&format!("prunelab {}{}", all.join(" "), last.map(|l| format!(" {}", l.display())).unwrap_or_default()));
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

    #[test]
    fn medians_of_odd_even_and_no_values() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn paired_rows_give_medians_and_the_range_of_per_repeat_ratios() {
        // Build a: 400, 500, 450 against torch 500, 500, 450 → ratios 0.8, 1.0, 1.0.
        let row =
            Row::paired("x".into(), &[vec![400.0, 500.0, 450.0], vec![250.0, 250.0, 225.0]], &[500.0, 500.0, 450.0]);
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
        let rows =
            [Row::new_lower("prune s".into(), &[2.0], 8.0), Row::notes("first step".into(), vec!["0.2 s".into()])];
        assert_eq!(rows[0].ratio(0), Some((4.0, None)));
        assert_eq!(rows[1].ratio(0), None);
        let csv = csv(&["cuda"], &rows);
        assert_eq!(
            csv,
            "measure,prunelab cuda,torch,ratio cuda,ratio min cuda,ratio max cuda\n\"prune s\",2,8,4.0000,,\n\"first step\",\"0.2 s\",,,,\n"
        );
    }

    fn write_records(records: &[Value]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}-{}", std::process::id(), records.len()));
        std::fs::create_dir_all(&dir).unwrap();
        save(&dir, records).unwrap();
        dir.join("bench.json")
    }

    #[test]
    fn resuming_keeps_completed_parts_only_and_refuses_other_builds() {
        let t = |part, measure| Tag::new(part, measure).build("cuda");
        let records = vec![
            t("prune", "prune").apply(serde_json::json!({ "total_seconds": 3.5, "scope_params": 84.9e6 })),
            Tag::new("prune", "torch-prune").apply(serde_json::json!({ "total_seconds": 14.0 })),
            serde_json::json!({ "part": "prune", "complete": true, "builds": ["cuda"] }),
            // Cut short: no marker.
            t("structured", "infer-dense").apply(serde_json::json!({ "samples_per_second": 6000.0 })),
        ];
        let path = write_records(&records);
        let kept = completed_parts(&path, &["cuda"]).unwrap();
        assert_eq!(kept.len(), 3);
        assert!(kept.iter().all(|r| r["part"] == "prune"));
        let rows = table_rows(&kept, &["cuda"]);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].what, "global L1 prune 90 % of 84.9M weights, seconds (lower is better)");
        assert_eq!(rows[0].ratio(0), Some((4.0, None)));
        let err = completed_parts(&path, &["cuda", "fused"]).unwrap_err().to_string();
        assert!(err.contains("bench.json") && err.contains("\"prune\"") && err.contains("fused"), "{err}");
    }

    #[test]
    fn model_rows_pair_each_build_with_the_torch_run_of_its_repeat() {
        let mut records = Vec::new();
        for (r, (cuda, fused, torch)) in
            [(280.0, 470.0, 475.0), (275.0, 506.0, 477.0), (281.0, 465.0, 475.0)].into_iter().enumerate()
        {
            let r = r as u32;
            for (label, sps) in [("cuda", cuda), ("fused", fused)] {
                let record =
                    serde_json::json!({ "samples_per_second": sps, "first_step_seconds": 0.5, "backend": "cuda" });
                records.push(Tag::new("gpt2-small", "train").build(label).repeat(r).apply(record));
            }
            let record = serde_json::json!({ "samples_per_second": torch, "first_step_seconds": 0.6 });
            records.push(Tag::new("gpt2-small", "torch-train").variant("f32").repeat(r).apply(record));
        }
        let rows = table_rows(&records, &["cuda", "fused"]);
        assert_eq!(rows[0].what, "GPT-2 small: fine-tune samples/s (batch 32 × 128), torch f32");
        let (ratio, range) = rows[0].ratio(1).unwrap();
        assert!((ratio - 470.0 / 475.0).abs() < 1e-12);
        let (lo, hi) = range.unwrap();
        assert!((lo - 465.0 / 475.0).abs() < 1e-12 && (hi - 506.0 / 477.0).abs() < 1e-12);
        assert!((rows[0].ratio(0).unwrap().0 - 280.0 / 475.0).abs() < 1e-12);
    }
}
