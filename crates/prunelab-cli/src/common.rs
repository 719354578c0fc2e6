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

/// `--data-dir DIR`, else the Hub dataset (`--hub`).
pub fn glue_source(data_dir: Option<&Path>) -> GlueSource {
    match data_dir {
        Some(dir) => GlueSource::Dir(dir.to_path_buf()),
        None => GlueSource::Hub { hub: prunelab_hub::Hub::from_env(), revision: "main".into() },
    }
}
