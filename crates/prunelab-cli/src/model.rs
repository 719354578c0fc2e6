//! `prunelab model ...`: what a checkpoint holds.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use prunelab_models::info::{ParamCounts, ParamKind};
use prunelab_models::load_as_stored;

use crate::backend;
use crate::table::{compact, thousands};

#[derive(Debug, clap::Subcommand)]
pub enum ModelCommand {
    /// Architecture, parameter counts by kind and by layer, dtype and file sizes
    Info(InfoArgs),
    /// Is the model available (local, cached or downloadable) and is its architecture supported?
    /// Prints one JSON object; exits non-zero only on bad arguments. `cargo xtask reproduce`
    /// runs this before a grid.
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// A model directory or a Hugging Face Hub model id
    model: String,
    /// Hub revision, for Hub ids
    #[arg(long, default_value = "main")]
    revision: String,
}

#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// A model directory (config.json + weights) or a Hugging Face Hub model id
    model: String,
    /// Hub revision (branch, tag or commit), for Hub ids
    #[arg(long, default_value = "main")]
    revision: String,
    /// Print JSON instead of tables
    #[arg(long)]
    json: bool,
}

impl ModelCommand {
    pub fn run(self) -> Result<()> {
        match self {
            ModelCommand::Info(args) => args.run(),
            ModelCommand::Check(args) => args.run(),
        }
    }
}

impl InfoArgs {
    fn run(self) -> Result<()> {
        let files = crate::common::model_files(&self.model, &self.revision)?;
        let loaded = load_as_stored::<backend::Backend>(&files, &backend::device())
            .with_context(|| format!("loading {}", files.weights.display()))?;
        let infos = loaded.model.param_infos();
        let counts = ParamCounts::of(&infos);
        let new: usize =
            infos.iter().filter(|p| loaded.report.newly_initialized.contains(&p.key)).map(|p| p.numel()).sum();
        let out = if self.json {
            serde_json::to_string_pretty(&serde_json::json!({
                "model": files.name,
                "model_type": loaded.config.model_type(),
                "config": loaded.config.summary().into_iter().collect::<std::collections::BTreeMap<_, _>>(),
                "load": loaded.report,
                "parameters": counts,
                "newly_initialized_parameters": new,
                "tensors": infos,
            }))? + "\n"
        } else {
            render(&files.name, &loaded, &counts, new)
        };
        #[allow(clippy::print_stdout)]
        {
            print!("{out}");
        }
        Ok(())
    }
}

impl CheckArgs {
    fn run(self) -> Result<()> {
        let source = prunelab_models::ModelSource::parse(&self.model, &self.revision)?;
        let hub = prunelab_hub::Hub::from_env();
        let answer = check(&source, &hub);
        let mut out = serde_json::json!({"model": self.model, "revision": self.revision});
        match answer {
            Ok((model_type, parameters)) => {
                out["available"] = true.into();
                out["supported"] = true.into();
                out["model_type"] = model_type.into();
                out["approx_parameters"] = parameters.into();
            }
            Err(Check::Unsupported(reason)) => {
                out["available"] = true.into();
                out["supported"] = false.into();
                out["reason"] = reason.into();
            }
            Err(Check::Unavailable(reason)) => {
                out["available"] = false.into();
                out["supported"] = serde_json::Value::Null;
                out["reason"] = reason.into();
            }
        }
        #[allow(clippy::print_stdout)]
        {
            println!("{out}");
        }
        Ok(())
    }
}

enum Check {
    Unsupported(String),
    Unavailable(String),
}

/// The model type and about how many parameters it has, if config and weights can be had and
/// the architecture is supported.
fn check(source: &prunelab_models::ModelSource, hub: &prunelab_hub::Hub) -> std::result::Result<(String, u64), Check> {
    use prunelab_models::Error;
    let config = source.config_file(hub).map_err(|e| Check::Unavailable(e.to_string()))?;
    match prunelab_models::ModelConfig::from_file(&config) {
        Ok(parsed) => {
            source.resolve(hub).map_err(|e| Check::Unavailable(e.to_string()))?;
            Ok((parsed.model_type().to_owned(), u64::try_from(parsed.approx_parameters()).unwrap_or(u64::MAX)))
        }
        Err(err @ Error::UnsupportedModelType { .. }) => Err(Check::Unsupported(err.to_string())),
        Err(err) => Err(Check::Unavailable(err.to_string())),
    }
}

fn render<B: burn::tensor::backend::Backend>(
    name: &str,
    loaded: &prunelab_models::LoadedClassifier<B>,
    counts: &ParamCounts,
    new: usize,
) -> String {
    let mut out = String::new();
    let report = &loaded.report;
    let _ = writeln!(out, "model       {name}");
    let _ = writeln!(out, "model_type  {}", loaded.config.model_type());
    let sizes: Vec<String> = loaded.config.summary().iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(out, "config      {}", sizes.join(", "));
    for (path, bytes) in &report.files {
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let _ = writeln!(out, "weights     {file} ({}B, {}, {})", compact(*bytes), report.format, report.dtype);
    }
    let head = if report.newly_initialized.is_empty() {
        "loaded from the checkpoint".to_owned()
    } else {
        format!(
            "newly initialised: {} ({} parameters; fine-tune before use)",
            report.newly_initialized.join(", "),
            thousands(new)
        )
    };
    let _ = writeln!(out, "head        {head}");
    if !report.ignored.is_empty() {
        let _ = writeln!(out, "ignored     {} (on purpose: buffers and tied heads)", report.ignored.join(", "));
    }
    let _ = writeln!(out, "parameters  {} ({})", thousands(counts.total), compact(counts.total as u64));
    let _ = writeln!(out);
    let _ = writeln!(out, "{:<12} {:>14} {:>7}", "kind", "parameters", "share");
    for kind in ParamKind::ALL {
        let n = counts.by_kind.get(&kind).copied().unwrap_or(0);
        let _ =
            writeln!(out, "{:<12} {:>14} {:>6.1}%", kind.name(), thousands(n), 100.0 * n as f64 / counts.total as f64);
    }
    let _ = writeln!(out);
    let kinds = [ParamKind::Attention, ParamKind::Mlp, ParamKind::Norms];
    let _ = writeln!(out, "{:<6} {:>12} {:>12} {:>10} {:>12}", "layer", "attention", "mlp", "norms", "total");
    for (layer, by_kind) in &counts.by_layer {
        let cells: Vec<String> = kinds.iter().map(|k| thousands(by_kind.get(k).copied().unwrap_or(0))).collect();
        let total: usize = by_kind.values().sum();
        let _ = writeln!(out, "{layer:<6} {:>12} {:>12} {:>10} {:>12}", cells[0], cells[1], cells[2], thousands(total));
    }
    out
}
