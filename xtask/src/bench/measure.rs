//! The measurements of `cargo xtask bench`: each part runs prunelab's builds and torch on the same
//! model directory, tags every JSON record with its part, measure, build or variant and repeat
//! ([`Tag`]), and saves all records after each one (`bench.json`), so a failure loses nothing
//! measured before it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Deserialize as _;
use serde_json::Value;

use super::record::{Entry, Record};
use super::{BenchArgs, Build, say};

pub(super) struct Run<'a> {
    pub(super) args: &'a BenchArgs,
    pub(super) builds: &'a [Build],
    pub(super) script: PathBuf,
    pub(super) records: Vec<Entry>,
}

/// Where a record belongs: its part, what it measures, the build (prunelab's) or the variant
/// (torch's: `f32`, `tf32`, `bf16`, `bf16 + compile`), and the repeat.
#[derive(Clone, Copy)]
pub(super) struct Tag<'t> {
    part: &'t str,
    measure: &'t str,
    build: Option<&'t str>,
    variant: Option<&'t str>,
    repeat: Option<u32>,
}

impl<'t> Tag<'t> {
    pub(super) fn new(part: &'t str, measure: &'t str) -> Self {
        Self { part, measure, build: None, variant: None, repeat: None }
    }
    pub(super) fn build(self, build: &'t str) -> Self {
        Self { build: Some(build), ..self }
    }
    pub(super) fn variant(self, variant: &'t str) -> Self {
        Self { variant: Some(variant), ..self }
    }
    pub(super) fn repeat(self, repeat: u32) -> Self {
        Self { repeat: Some(repeat), ..self }
    }
    /// The record a tool printed, tagged; an error if it is not one (not an object, or a figure
    /// of the wrong type).
    pub(super) fn apply(&self, mut record: Value) -> Result<Record> {
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
        Record::deserialize(&record).with_context(|| format!("not a bench record: {record}"))
    }
    pub(super) fn matches(&self, record: &Record) -> bool {
        record.part == self.part
            && record.measure == self.measure
            && (self.build.is_none() || record.build.as_deref() == self.build)
            && (self.variant.is_none() || record.variant.as_deref() == self.variant)
    }
}

impl Run<'_> {
    pub(super) fn save(&self) -> Result<()> {
        save(&self.args.out, &self.records)
    }

    /// `prunelab ARGS [last]` with build `i`'s binary, recorded under `tag`.
    pub(super) fn ours(&mut self, i: usize, args: &[&str], cache: Option<&Path>, tag: Tag<'_>) -> Result<Record> {
        let b = &self.builds[i];
        let record = tag.build(&b.label).apply(prunelab(b, args, None, cache)?)?;
        self.records.push(Entry::Record(Box::new(record.clone())));
        self.save()?;
        Ok(record)
    }

    /// `torch_bench.py ARGS`, recorded under `tag`.
    pub(super) fn theirs(&mut self, args: &[&str], tag: Tag<'_>) -> Result<()> {
        let record = tag.apply(python(&self.args.python, &self.script, args)?)?;
        self.records.push(Entry::Record(Box::new(record)));
        self.save()
    }

    /// Build `i`'s cache under --kernel-cache: the directory itself for one build, DIR/LABEL for several.
    pub(super) fn given_cache(&self, i: usize) -> Option<PathBuf> {
        let dir = self.args.kernel_cache.as_ref()?;
        Some(if self.builds.len() == 1 { dir.clone() } else { dir.join(&self.builds[i].label) })
    }

    /// Fine-tuning (cold, warm alternated with torch f32 and TF32, bf16-mixed) and eval of one model.
    pub(super) fn model(&mut self, part: &str, dir: &Path) -> Result<()> {
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
                cuda[i] = record.backend.as_deref() == Some("cuda");
            }
            // TF32 is the like-for-like arithmetic on a GPU: paired with every repeat too, since one
            // process of a host-bound step spreads by ±20 % (bench/NOTES.md, 2026-12-08).
            for precision in ["f32", "tf32"] {
                self.theirs(
                    &["train", &d, "--steps", &steps, "--precision", precision],
                    Tag::new(part, "torch-train").variant(precision).repeat(r),
                )?;
            }
        }
        self.ours(0, &["bench", "infer", &d, "--batches", "1"], Some(&caches[0]), Tag::new(part, "parameters"))?;
        self.theirs(
            &["train", &d, "--steps", &steps, "--precision", "bf16"],
            Tag::new(part, "torch-train").variant("bf16"),
        )?;
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
    pub(super) fn matmul(&mut self) -> Result<()> {
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
    pub(super) fn prune(&mut self, gpt2: &Path) -> Result<()> {
        let g = gpt2.to_string_lossy().to_string();
        for i in 0..self.builds.len() {
            self.ours(i, &["bench", "prune", &g, "--amount", "0.9"], None, Tag::new("prune", "prune"))?;
        }
        self.theirs(&["prune", &g, "--amount", "0.9"], Tag::new("prune", "torch-prune"))
    }

    /// Structured pruning's real speed-up: 50 % of heads and MLP neurons removed, compacted.
    pub(super) fn structured(&mut self, minilm: &Path) -> Result<()> {
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
pub(super) fn tagged<'r>(records: &'r [Entry], tag: Tag<'_>) -> Vec<&'r Record> {
    records.iter().filter_map(Entry::record).filter(|r| tag.matches(r)).collect()
}

/// GPT-2 small's MLP product at batch 32 × 128: [4096, 768] × [768, 3072].
pub(super) const MLP_SHAPE: &str = "4096,768,3072";

/// Every record so far, so that a failure later in the run loses nothing measured before it.
pub(super) fn save(out: &Path, records: &[Entry]) -> Result<()> {
    let path = out.join("bench.json");
    std::fs::write(&path, serde_json::to_vec_pretty(records)?).with_context(|| format!("writing {}", path.display()))
}

/// Runs `build`'s binary with its arguments, then `args [last]` (with a kernel cache if given), and
/// parses its JSON stdout.
pub(super) fn prunelab(build: &Build, args: &[&str], last: Option<&Path>, cache: Option<&Path>) -> Result<Value> {
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
pub(super) fn run_plain(bin: &Path, args: &[&str], last: &Path) -> Result<()> {
    say(&format!("prunelab {} {}", args.join(" "), last.display()));
    let out = Command::new(bin).args(args).arg(last).output().with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!("prunelab {} failed ({}): {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

pub(super) fn python(python: &str, script: &Path, args: &[&str]) -> Result<Value> {
    let mut cmd = Command::new(python);
    cmd.arg(script).args(args);
    say(&format!("torch {}", args.join(" ")));
    json_of(cmd, "torch_bench.py")
}

pub(super) fn json_of(mut cmd: Command, what: &str) -> Result<Value> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!("{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // The last line is the JSON record (prune prints tables before it).
    let line = text.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or("");
    serde_json::from_str(line).with_context(|| format!("{what} printed no JSON record: {text}"))
}
