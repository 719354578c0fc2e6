//! `prunelab prune`: masks, their application, sparsity accounting and export.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use prunelab_glue::GlueTask;
use prunelab_models::{LoadedClassifier, ModelFiles, load_as_stored, load_classifier};
use prunelab_prune::export::{export_compressed, export_hf};
use prunelab_prune::file::{load_masks, save_masks, write_atomic};
use prunelab_prune::{DeviceMasks, PruneSpec, Scope, SparsityReport, compute_masks, sparsity};
use prunelab_stats::weights;

use crate::backend;
use crate::selection::{CommandPruning, PruneSelection, SchemeArg};
use crate::table::{compact, thousands};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Targets {
    /// Heads and neurons
    Both,
    /// Attention heads only
    Heads,
    /// MLP neurons only
    Neurons,
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// A model directory or a Hugging Face Hub model id
    model: String,
    /// Hub revision, for Hub ids
    #[arg(long, default_value = "main")]
    revision: String,
    #[command(flatten)]
    selection: PruneSelection,
    /// Seed of the random scheme
    #[arg(long, default_value_t = 0, help_heading = crate::selection::HEADING)]
    seed: u64,
    /// Also prune parameters whose Hugging Face key matches (`*` is a wildcard); repeatable
    #[arg(long, value_name = "PATTERN", help_heading = crate::selection::HEADING)]
    include: Vec<String>,
    /// Leave out parameters whose key matches; repeatable
    #[arg(long, value_name = "PATTERN", help_heading = crate::selection::HEADING)]
    exclude: Vec<String>,
    /// Apply the masks in this file instead of computing new ones
    #[arg(long, value_name = "FILE", conflicts_with_all = ["scheme", "amount", "nm", "seed"], help_heading = crate::selection::HEADING)]
    masks: Option<PathBuf>,
    /// Size the classification head for this task (default: as stored in the checkpoint)
    #[arg(long, value_enum)]
    task: Option<GlueTask>,
    /// Write masks.safetensors, sparsity.json and the pruned model (model/) here
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Also write the compressed checkpoint (bitmask + packed non-zeros) and compare sizes
    #[arg(long, requires = "out")]
    compressed: bool,
    /// What --scheme structured removes
    #[arg(long, value_enum, default_value_t = Targets::Both, help_heading = crate::selection::HEADING)]
    targets: Targets,
}

/// `prune`'s pruning defaults, and the schemes it leaves to `finetune`.
const PRUNING: CommandPruning = CommandPruning {
    command: "prune",
    scheme: SchemeArg::GlobalL1,
    amount: 0.5,
    elsewhere: &[
        (SchemeArg::None, "prune needs a scheme that prunes (global-l1, layer-l1, nm, random, structured)"),
        (SchemeArg::Wanda, "Wanda scores weights by activations on training data: use finetune --scheme wanda"),
    ],
};

impl PruneArgs {
    pub fn run(self) -> Result<()> {
        let selection = self.selection.resolve(&PRUNING)?;
        let scope =
            Scope { kind: selection.scope_kind(), include: self.include.clone(), exclude: self.exclude.clone() };
        if selection.scheme == SchemeArg::Structured {
            return self.run_structured(selection.amount);
        }
        let spec = PruneSpec {
            scheme: selection.mask_scheme().expect("prune refuses the schemes without masks"),
            amount: selection.amount,
            seed: self.seed,
        };
        if self.masks.is_none() {
            spec.validate()?;
        }
        if let Some(out) = &self.out {
            check_writable(out)?;
        }
        let device = backend::device();
        let (files, loaded) = self.load(&device)?;
        let naming = loaded.model.naming();
        let loaded_config = loaded.config.clone();
        let before = weights(&loaded.model, naming.as_ref());
        let masks = match &self.masks {
            Some(path) => load_masks(path, &before)?,
            None => compute_masks(&before, &scope, &spec)?,
        };
        let started = std::time::Instant::now();
        let model = DeviceMasks::<backend::Backend>::new(&masks, &device).apply(loaded.model);
        let after = weights(&model, naming.as_ref());
        tracing::info!(seconds = started.elapsed().as_secs_f64(), tensors = masks.masks.len(), "masks applied");
        let report = sparsity(&after, &scope);
        let mut out_text = render(&files.name, &spec, self.masks.is_some(), &report);
        if let Some(out) = &self.out {
            let mut meta = HashMap::from([
                ("model".to_owned(), files.name.clone()),
                ("scope".to_owned(), serde_json::to_string(&scope)?),
            ]);
            if self.masks.is_none() {
                meta.insert("spec".to_owned(), serde_json::to_string(&spec)?);
            }
            save_masks(&masks, &out.join("masks.safetensors"), &meta)?;
            let record = serde_json::json!({
                "model": files.name,
                "spec": (self.masks.is_none()).then_some(spec),
                "masks_from": self.masks,
                "scope": scope,
                "sparsity": report,
            });
            write_atomic(&out.join("sparsity.json"), &serde_json::to_vec_pretty(&record)?)?;
            // The head's weight is `[hidden, num_labels]` in Burn's layout.
            let head = loaded_config.head_weight_key();
            let num_labels = after.iter().find(|t| t.key == head).and_then(|t| t.shape.last().copied()).unwrap_or(2);
            let model_dir = out.join("model");
            let written = export_hf(&after, &files.config, num_labels, &[], &model_dir)?;
            if let Some(tok) = &files.tokenizer {
                let bytes = std::fs::read(tok).with_context(|| format!("reading {}", tok.display()))?;
                write_atomic(&model_dir.join("tokenizer.json"), &bytes)?;
            }
            let dense = written.last().map(|w| w.bytes).unwrap_or(0);
            let _ = writeln!(
                out_text,
                "wrote {} (masks), {} (Hugging Face checkpoint, {}B)",
                out.join("masks.safetensors").display(),
                model_dir.display(),
                compact(dense)
            );
            if self.compressed {
                let packed = export_compressed(&after, &masks, &out.join("model.pruned.safetensors"))?;
                let _ = writeln!(
                    out_text,
                    "compressed: {} ({}B, {:.1}% of the dense {}B)",
                    packed.path.display(),
                    compact(packed.bytes),
                    100.0 * packed.bytes as f64 / dense.max(1) as f64,
                    compact(dense)
                );
            }
        }
        #[allow(clippy::print_stdout)]
        {
            print!("{out_text}");
        }
        Ok(())
    }
}

impl PruneArgs {
    /// `--scheme structured`: plan, compact, report, export the smaller model.
    fn run_structured(self, amount: f64) -> Result<()> {
        use prunelab_prune::structured::{StructuredSpec, compact, plan};
        let spec = StructuredSpec {
            heads: if self.targets == Targets::Neurons { 0.0 } else { amount },
            neurons: if self.targets == Targets::Heads { 0.0 } else { amount },
        };
        if self.masks.is_some() || !self.include.is_empty() || !self.exclude.is_empty() || self.compressed {
            bail!(
                "--scheme structured removes whole heads and neurons of every layer: it takes no --masks, --include, --exclude or --compressed"
            );
        }
        if let Some(out) = &self.out {
            check_writable(out)?;
        }
        let device = backend::device();
        let (files, loaded) = self.load(&device)?;
        let tensors = weights(&loaded.model, loaded.model.naming().as_ref());
        let p = plan(&tensors, &loaded.config.heads_per_layer(), loaded.config.head_dim(), &spec)?;
        let compacted = compact(&tensors, &p)?;
        let before: usize = tensors.iter().map(|t| t.values.len()).sum();
        let after: usize = compacted.iter().map(|t| t.values.len()).sum();
        let mut text = String::new();
        let _ = writeln!(
            text,
            "{}: structured, {:.0}% of heads and {:.0}% of MLP neurons removed per layer",
            files.name,
            100.0 * spec.heads,
            100.0 * spec.neurons
        );
        let _ = writeln!(text, "{:<6} {:>12} {:>14}", "layer", "heads kept", "neurons kept");
        for l in &p.layers {
            let _ = writeln!(
                text,
                "{:<6} {:>12} {:>14}",
                l.layer,
                format!("{}/{}", l.kept_heads.len(), l.heads_before),
                format!("{}/{}", l.kept_neurons.len(), l.neurons_before)
            );
        }
        let _ = writeln!(
            text,
            "parameters: {} -> {} ({:.1}% removed)",
            thousands(before),
            thousands(after),
            100.0 * (before - after) as f64 / before as f64
        );
        if let Some(out) = &self.out {
            let heads_pruned = p.layers.iter().any(|l| l.kept_heads.len() < l.heads_before);
            let mut overrides = vec![(loaded.config.inner_size_key(), serde_json::json!(p.neurons()))];
            if heads_pruned {
                overrides.push(("prunelab_heads", serde_json::json!(p.heads())));
            }
            let head = loaded.config.head_weight_key();
            let num_labels =
                compacted.iter().find(|t| t.key == head).and_then(|t| t.shape.last().copied()).unwrap_or(2);
            let model_dir = out.join("model");
            export_hf(&compacted, &files.config, num_labels, &overrides, &model_dir)?;
            if let Some(tok) = &files.tokenizer {
                let bytes = std::fs::read(tok).with_context(|| format!("reading {}", tok.display()))?;
                write_atomic(&model_dir.join("tokenizer.json"), &bytes)?;
            }
            write_atomic(
                &out.join("structured.json"),
                &serde_json::to_vec_pretty(&serde_json::json!({"model": files.name, "spec": spec, "plan": p}))?,
            )?;
            let loads_in = if heads_pruned {
                "prunelab (transformers 5 cannot load fewer heads)"
            } else {
                "transformers and prunelab"
            };
            let _ = writeln!(text, "wrote {} (compacted checkpoint; loads in {loads_in})", model_dir.display());
        }
        #[allow(clippy::print_stdout)]
        {
            print!("{text}");
        }
        Ok(())
    }
}

impl PruneArgs {
    /// The model's files, and the model with its head sized for `--task` (else as stored).
    fn load(
        &self,
        device: &burn::tensor::Device<backend::Backend>,
    ) -> Result<(ModelFiles, LoadedClassifier<backend::Backend>)> {
        let files = crate::common::model_files(&self.model, &self.revision)?;
        let loaded = match self.task {
            Some(task) => load_classifier::<backend::Backend>(&files, task.spec().num_labels(), device)?,
            None => load_as_stored::<backend::Backend>(&files, device)?,
        };
        Ok((files, loaded))
    }
}

/// Fail before any work when the output directory cannot be created or written.
fn check_writable(dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the output directory {}", dir.display()))?;
    let probe = dir.join(".prunelab-write-test");
    std::fs::write(&probe, b"").with_context(|| format!("cannot write into the output directory {}", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    Ok(())
}

fn render(model: &str, spec: &PruneSpec, from_file: bool, report: &SparsityReport) -> String {
    let mut out = String::new();
    let what =
        if from_file { "masks from file".to_owned() } else { format!("{} at amount {}", spec.scheme, spec.amount) };
    let _ = writeln!(out, "{model}: {what}, scope {}", report.scope);
    let _ = writeln!(out, "{:<8} {:>12} {:>9} {:>14} {:>9}", "layer", "scope", "of scope", "all params", "of all");
    for l in &report.layers {
        let name = l.layer.map_or_else(|| "other".to_owned(), |i| i.to_string());
        let _ = writeln!(
            out,
            "{name:<8} {:>12} {:>8.1}% {:>14} {:>8.1}%",
            thousands(l.scope.params),
            100.0 * l.scope.fraction(),
            thousands(l.all.params),
            100.0 * l.all.fraction()
        );
    }
    let _ = writeln!(
        out,
        "sparsity: {:.1}% of the scope ({} of {} weights are zero), {:.2}% of all {} parameters",
        100.0 * report.scope_total.fraction(),
        thousands(report.scope_total.zeros),
        thousands(report.scope_total.params),
        100.0 * report.all_total.fraction(),
        thousands(report.all_total.params)
    );
    out
}
