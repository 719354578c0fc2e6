//! Where a model comes from: a local directory or a Hub model id at a revision.

use std::path::{Path, PathBuf};

use prunelab_hub::{Hub, HubRepo};

use crate::checkpoint::WEIGHT_FILES;
use crate::error::{Error, Result};

/// A model given on the command line: an existing directory, else a Hub model id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A directory with `config.json` and weights.
    Dir(PathBuf),
    /// A Hub model (`gpt2`, `microsoft/deberta-base`, ...) at a revision.
    Hub(HubRepo),
}

/// The local files of a resolved model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    /// How the user named the model (directory or Hub id).
    pub name: String,
    /// `config.json`.
    pub config: PathBuf,
    /// The weight file (for sharded checkpoints, the index; shards sit beside it).
    pub weights: PathBuf,
    /// `tokenizer.json`, when the model has one.
    pub tokenizer: Option<PathBuf>,
}

impl ModelSource {
    /// A directory if `spec` is one, else the Hub model `spec` at `revision` if `spec` is a
    /// valid Hub id (`name` or `org/name`); anything else is a directory that does not exist.
    pub fn parse(spec: &str, revision: &str) -> Result<Self> {
        let path = Path::new(spec);
        if path.is_dir() {
            Ok(Self::Dir(path.to_path_buf()))
        } else if is_hub_id(spec) {
            Ok(Self::Hub(HubRepo::model(spec).at_revision(revision)))
        } else {
            Err(Error::Io {
                path: path.into(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such model directory (and not a Hugging Face Hub id like `gpt2` or `org/name`)",
                ),
            })
        }
    }

    /// Only the model's `config.json` (downloaded from the Hub if needed): enough to tell whether
    /// prunelab supports the architecture before fetching the weights.
    pub fn config_file(&self, hub: &Hub) -> Result<PathBuf> {
        match self {
            ModelSource::Dir(dir) => {
                let config = dir.join("config.json");
                if config.is_file() {
                    Ok(config)
                } else {
                    Err(Error::Io {
                        path: config,
                        source: std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "a model directory needs a config.json",
                        ),
                    })
                }
            }
            ModelSource::Hub(repo) => Ok(hub.fetch(repo, "config.json")?),
        }
    }

    /// Find (or download) the model's files.
    pub fn resolve(&self, hub: &Hub) -> Result<ModelFiles> {
        match self {
            ModelSource::Dir(dir) => {
                let config = dir.join("config.json");
                if !config.is_file() {
                    return Err(Error::Io {
                        path: config,
                        source: std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "a model directory needs a config.json",
                        ),
                    });
                }
                let weights =
                    WEIGHT_FILES.iter().map(|f| dir.join(f)).find(|p| p.is_file()).ok_or_else(|| Error::NoWeights {
                        dir: dir.clone(),
                        expected: WEIGHT_FILES.iter().map(|s| s.to_string()).collect(),
                    })?;
                let tokenizer = Some(dir.join("tokenizer.json")).filter(|p| p.is_file());
                Ok(ModelFiles { name: dir.display().to_string(), config, weights, tokenizer })
            }
            ModelSource::Hub(repo) => resolve_hub(hub, repo),
        }
    }
}

/// `name` or `org/name` with the characters the Hub allows, not starting with `.` or `-`.
fn is_hub_id(spec: &str) -> bool {
    let parts: Vec<&str> = spec.split('/').collect();
    parts.len() <= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with(['.', '-'])
                && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
}

fn resolve_hub(hub: &Hub, repo: &HubRepo) -> Result<ModelFiles> {
    let config = hub.fetch(repo, "config.json")?;
    let mut last_err = None;
    let mut weights = None;
    for file in WEIGHT_FILES {
        match hub.fetch(repo, file) {
            Ok(path) => {
                weights = Some(path);
                break;
            }
            Err(err) => last_err = Some(err),
        }
    }
    let weights = match (weights, last_err) {
        (Some(w), _) => w,
        (None, Some(err)) => return Err(err.into()),
        (None, None) => unreachable!("WEIGHT_FILES is not empty"),
    };
    if weights.ends_with("model.safetensors.index.json") {
        for shard in shard_files(&weights)? {
            hub.fetch(repo, &shard)?;
        }
    }
    let tokenizer = hub.fetch(repo, "tokenizer.json").ok();
    Ok(ModelFiles { name: repo.id.clone(), config, weights, tokenizer })
}

fn shard_files(index: &Path) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: std::collections::BTreeMap<String, String>,
    }
    let text = std::fs::read_to_string(index).map_err(|source| Error::Io { path: index.into(), source })?;
    let parsed: Index = serde_json::from_str(&text).map_err(|source| Error::Json { path: index.into(), source })?;
    let mut shards: Vec<String> = parsed.weight_map.into_values().collect();
    shards.sort();
    shards.dedup();
    Ok(shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids_and_paths() {
        for id in ["gpt2", "microsoft/deberta-base", "allenai/led-base-16384", "sentence-transformers/all-MiniLM-L6-v2"]
        {
            assert!(is_hub_id(id), "{id}");
        }
        for not_id in ["/abs/dir", "./rel", "../up", "a/b/c", "", "dir/", "has space"] {
            assert!(!is_hub_id(not_id), "{not_id}");
        }
        let err = ModelSource::parse("/nonexistent/model", "main").unwrap_err();
        assert!(err.to_string().starts_with("cannot read /nonexistent/model"), "{err}");
    }
}
