//! Resolve files of Hugging Face Hub repositories (models and datasets) to local paths.
//!
//! This crate owns prunelab's one door to the network. It wraps [`hf_hub`]'s blocking API and
//! adds the environment semantics of Python's `huggingface_hub` that `hf-hub` 0.4 lacks:
//!
//! | variable | effect |
//! |---|---|
//! | `HF_HUB_CACHE` | cache directory (wins over `HF_HOME`) |
//! | `HF_HOME` | cache directory is `$HF_HOME/hub` |
//! | `HF_HUB_OFFLINE` | `1`/`true`/`yes`/`on`: never touch the network, read the cache only |
//! | `HF_ENDPOINT` | mirror to download from |
//! | `HF_TOKEN` | access token (else the token file in the cache directory) |
//!
//! The cache layout is the standard one (`<cache>/datasets--org--name/{refs,snapshots,blobs}`),
//! so files downloaded by Python tools are found here and the other way round.
//!
//! ```no_run
//! use prunelab_hub::{Hub, HubRepo};
//! let repo = HubRepo::dataset("nyu-mll/glue");
//! let path = Hub::from_env().fetch(&repo, "sst2/validation-00000-of-00001.parquet")?;
//! # Ok::<(), prunelab_hub::Error>(())
//! ```
#![warn(missing_docs)]

use std::path::{Path, PathBuf};

use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Cache, Repo, RepoType};

/// Errors from resolving Hub files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `HF_HUB_OFFLINE` is set and the file is not in the cache.
    #[error(
        "{file} of {repo} is not in the Hugging Face cache at {cache} and HF_HUB_OFFLINE is set; \
         download it once with network access, or point prunelab at a local copy"
    )]
    NotCached {
        /// The repository, as `kind:id@revision`.
        repo: String,
        /// The file inside the repository.
        file: String,
        /// The cache directory that was searched.
        cache: PathBuf,
    },
    /// Setting up the Hub client failed.
    #[error("cannot set up the Hugging Face Hub client")]
    Client(#[source] hf_hub::api::sync::ApiError),
    /// The Hub could not be reached at all (no network, DNS or a proxy refusing).
    #[error(
        "cannot reach the Hugging Face Hub for {file} of {repo} (no network?): run once with network \
         (files are then kept in the cache, HF_HOME) or use local files (a model directory instead of a Hub \
         id, `--data-dir` for GLUE)"
    )]
    Unreachable {
        /// The repository, as `kind:id@revision`.
        repo: String,
        /// The file inside the repository.
        file: String,
        /// What `hf-hub` reported.
        #[source]
        source: hf_hub::api::sync::ApiError,
    },
    /// The download failed (unknown repository or file, refused, ...).
    #[error("cannot download {file} of {repo} from the Hugging Face Hub (set HF_HUB_OFFLINE=1 to use the cache only)")]
    Download {
        /// The repository, as `kind:id@revision`.
        repo: String,
        /// The file inside the repository.
        file: String,
        /// What `hf-hub` reported.
        #[source]
        source: hf_hub::api::sync::ApiError,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// What kind of repository a [`HubRepo`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoKind {
    /// A model repository (`gpt2`, `microsoft/deberta-base`, ...).
    Model,
    /// A dataset repository (`nyu-mll/glue`, ...).
    Dataset,
}

/// A repository on the Hub at a revision (branch, tag or commit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRepo {
    /// `org/name` or `name`.
    pub id: String,
    /// Model or dataset.
    pub kind: RepoKind,
    /// Branch, tag or commit hash; `main` by default.
    pub revision: String,
}

impl HubRepo {
    /// A model repository at `main`.
    pub fn model(id: impl Into<String>) -> Self {
        Self { id: id.into(), kind: RepoKind::Model, revision: "main".into() }
    }

    /// A dataset repository at `main`.
    pub fn dataset(id: impl Into<String>) -> Self {
        Self { id: id.into(), kind: RepoKind::Dataset, revision: "main".into() }
    }

    /// The same repository at another revision.
    pub fn at_revision(mut self, revision: impl Into<String>) -> Self {
        self.revision = revision.into();
        self
    }

    fn to_hf(&self) -> Repo {
        let kind = match self.kind {
            RepoKind::Model => RepoType::Model,
            RepoKind::Dataset => RepoType::Dataset,
        };
        Repo::with_revision(self.id.clone(), kind, self.revision.clone())
    }
}

impl std::fmt::Display for HubRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            RepoKind::Model => "model",
            RepoKind::Dataset => "dataset",
        };
        write!(f, "{kind}:{}@{}", self.id, self.revision)
    }
}

/// Whether `HF_HUB_OFFLINE` asks for cache-only operation (same truth values as `huggingface_hub`).
pub fn offline_from_env() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| is_true(&v))
}

fn is_true(value: &str) -> bool {
    matches!(value.trim().to_ascii_uppercase().as_str(), "1" | "ON" | "YES" | "TRUE")
}

/// The cache directory from the environment: `HF_HUB_CACHE`, else `HF_HOME/hub`, else
/// `~/.cache/huggingface/hub`.
pub fn cache_dir_from_env() -> PathBuf {
    if let Some(dir) = std::env::var_os("HF_HUB_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    Cache::from_env().path().clone()
}

/// A Hub client: a cache directory and whether the network may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hub {
    cache_dir: PathBuf,
    offline: bool,
}

impl Hub {
    /// The client the environment describes (see the crate docs for the variables).
    pub fn from_env() -> Self {
        Self::new(cache_dir_from_env(), offline_from_env())
    }

    /// A client on an explicit cache directory.
    pub fn new(cache_dir: impl Into<PathBuf>, offline: bool) -> Self {
        Self { cache_dir: cache_dir.into(), offline }
    }

    /// The cache directory in use.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// Whether the network is off limits.
    pub fn is_offline(&self) -> bool {
        self.offline
    }

    /// Look `file` of `repo` up in the cache only; `None` when it is not there.
    pub fn cached(&self, repo: &HubRepo, file: &str) -> Option<PathBuf> {
        Cache::new(self.cache_dir.clone()).repo(repo.to_hf()).get(file)
    }

    /// Resolve `file` of `repo` to a local path: from the cache when present, else by
    /// downloading it into the cache (a cache miss is an error when offline).
    pub fn fetch(&self, repo: &HubRepo, file: &str) -> Result<PathBuf> {
        if let Some(path) = self.cached(repo, file) {
            tracing::debug!(%repo, file, path = %path.display(), "found in the Hugging Face cache");
            return Ok(path);
        }
        if self.offline {
            return Err(Error::NotCached { repo: repo.to_string(), file: file.into(), cache: self.cache_dir.clone() });
        }
        tracing::info!(%repo, file, "downloading from the Hugging Face Hub");
        let mut builder =
            ApiBuilder::from_env().with_cache_dir(self.cache_dir.clone()).with_progress(false).with_retries(2);
        if let Some(token) = std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty()) {
            builder = builder.with_token(Some(token));
        }
        let api = builder.build().map_err(Error::Client)?;
        api.repo(repo.to_hf()).get(file).map_err(|source| {
            let (repo, file) = (repo.to_string(), file.to_owned());
            if is_unreachable(&source.to_string()) {
                Error::Unreachable { repo, file, source }
            } else {
                Error::Download { repo, file, source }
            }
        })
    }
}

/// Whether a request error means the Hub was not reached at all (as ureq words it).
fn is_unreachable(message: &str) -> bool {
    let message = message.to_lowercase();
    ["dns failed", "failed to lookup address", "connection refused", "network is unreachable", "timed out", "connect"]
        .iter()
        .any(|k| message.contains(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truth_values_follow_huggingface_hub() {
        for v in ["1", "true", "TRUE", "yes", "On", " 1 "] {
            assert!(is_true(v), "{v:?}");
        }
        for v in ["0", "false", "", "no", "off", "2"] {
            assert!(!is_true(v), "{v:?}");
        }
    }

    /// Lay out a cache entry the way `huggingface_hub` does: `refs/<rev>` holds the commit,
    /// `snapshots/<commit>/<file>` the file.
    fn fake_cache(dir: &Path, file: &str) -> PathBuf {
        let repo = dir.join("datasets--org--data");
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), "0123abc").unwrap();
        let path = repo.join("snapshots/0123abc").join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"payload").unwrap();
        path
    }

    #[test]
    fn offline_fetch_reads_the_cache_and_names_misses() {
        let dir = tempfile::tempdir().unwrap();
        let expected = fake_cache(dir.path(), "cfg/part.bin");
        let hub = Hub::new(dir.path(), true);
        let repo = HubRepo::dataset("org/data");
        assert_eq!(hub.fetch(&repo, "cfg/part.bin").unwrap(), expected);

        let err = hub.fetch(&repo, "cfg/other.bin").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("cfg/other.bin of dataset:org/data@main is not in the Hugging Face cache at"), "{msg}");
        assert!(msg.contains("HF_HUB_OFFLINE"), "{msg}");
        // Another revision is another cache entry.
        assert!(hub.fetch(&repo.clone().at_revision("v2"), "cfg/part.bin").is_err());
    }

    #[test]
    fn unreachable_hubs_are_told_apart() {
        assert!(is_unreachable(
            "request error: https://huggingface.co/gpt2/resolve/main/config.json: Dns Failed: resolve dns name"
        ));
        assert!(is_unreachable("io error: Connection refused (os error 111)"));
        assert!(!is_unreachable("request error: https://huggingface.co/x/resolve/main/config.json: status code 404"));
    }

    #[test]
    fn display_names_kind_id_and_revision() {
        let repo = HubRepo::dataset("nyu-mll/glue").at_revision("v1");
        assert_eq!(repo.to_string(), "dataset:nyu-mll/glue@v1");
        assert_eq!(HubRepo::model("gpt2").to_string(), "model:gpt2@main");
    }
}
