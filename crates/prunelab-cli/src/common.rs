//! Resolution steps the commands share: model files, tokenizer, GLUE source.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use prunelab_glue::GlueSource;
use prunelab_models::{ModelFiles, ModelSource};

/// The local files of a model directory or Hub id.
pub fn model_files(model: &str, revision: &str) -> Result<ModelFiles> {
    ModelSource::parse(model, revision)?
        .resolve(&prunelab_hub::Hub::from_env())
        .with_context(|| format!("finding model {model}"))
}

/// `--tokenizer`, else the model's own `tokenizer.json`.
pub fn tokenizer_file(arg: Option<&Path>, files: &ModelFiles) -> Result<PathBuf> {
    match (arg, &files.tokenizer) {
        (Some(t), _) => Ok(t.to_path_buf()),
        (None, Some(t)) => Ok(t.clone()),
        (None, None) => bail!("{} has no tokenizer.json; pass --tokenizer", files.name),
    }
}

/// Where GLUE data comes from, as every data-reading command takes it.
#[derive(Debug, clap::Args)]
pub struct GlueDataArgs {
    /// A directory in the GLUE TSV layout (<dir>/SST-2/train.tsv, <dir>/CoLA/dev.tsv, ...)
    #[arg(long, value_name = "DIR", conflicts_with = "hub", required_unless_present = "hub")]
    pub data_dir: Option<PathBuf>,
    /// Read the parquet files of the Hugging Face dataset nyu-mll/glue instead (cached under
    /// HF_HOME; HF_HUB_OFFLINE=1 reads the cache only)
    #[arg(long)]
    pub hub: bool,
    /// Revision (branch, tag or commit) of nyu-mll/glue, with --hub
    #[arg(long = "glue-revision", default_value = "main", requires = "hub")]
    pub glue_revision: String,
}

impl GlueDataArgs {
    /// The source these arguments name.
    pub fn source(&self) -> GlueSource {
        match &self.data_dir {
            Some(dir) => GlueSource::Dir(dir.clone()),
            None => GlueSource::Hub { hub: prunelab_hub::Hub::from_env(), revision: self.glue_revision.clone() },
        }
    }
}

/// Write predictions in GLUE's submission format (`index<TAB>prediction`), atomically.
pub fn write_predictions(path: &Path, predictions: &[(u32, u32)]) -> Result<()> {
    let mut tsv = String::from("index\tprediction\n");
    for (idx, class) in predictions {
        tsv.push_str(&format!("{idx}\t{class}\n"));
    }
    prunelab_prune::file::write_atomic(path, tsv.as_bytes())?;
    Ok(())
}

/// The name clap shows for a value of a `ValueEnum` (`global-l1`), for result files.
pub fn value_name<T: clap::ValueEnum>(value: &T) -> String {
    value.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default()
}

/// Takes the exclusive lock `<dir>/.lock` (an OS file lock, released when the returned file is
/// dropped or the process dies); fails at once, naming the directory, if another process holds it.
pub fn lock_dir(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            bail!("another prunelab process is writing to {} (it holds {})", dir.display(), path.display())
        }
        Err(std::fs::TryLockError::Error(err)) => Err(err).with_context(|| format!("locking {}", path.display())),
    }
}

/// What a load read, for result files.
pub fn load_record(report: &prunelab_models::LoadReport) -> prunelab_record::LoadRecord {
    let format = serde_json::to_value(report.format).ok().and_then(|v| v.as_str().map(str::to_owned));
    prunelab_record::LoadRecord {
        files: report.files.clone(),
        format: format.unwrap_or_else(|| format!("{:?}", report.format)),
        dtype: report.dtype.clone(),
        newly_initialized: report.newly_initialized.clone(),
        ignored: report.ignored.clone(),
    }
}
