//! The one error type of `prunelab-prune`.

use std::path::PathBuf;

/// Errors from pruning, mask files and export.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An amount outside `[0, 1)`.
    #[error("amount {0} is outside [0, 1): give the fraction of weights to prune, e.g. 0.9")]
    Amount(f64),
    /// N:M with N >= M or M = 0.
    #[error("N:M sparsity needs 0 < N < M (keep N of every M weights), got {n}:{m}")]
    NM {
        /// Kept per group.
        n: usize,
        /// Group size.
        m: usize,
    },
    /// An N:M group size that does not divide a tensor's input dimension.
    #[error(
        "N:M with M = {m} needs the input dimension of {key} ({input}) to be a multiple of {m}; exclude it with --exclude"
    )]
    NMShape {
        /// Tensor key.
        key: String,
        /// Its input dimension.
        input: usize,
        /// Group size.
        m: usize,
    },
    /// A scope that selects no parameter.
    #[error("the pruning scope {scope} matches no parameter of this model")]
    EmptyScope {
        /// The scope, as given.
        scope: String,
    },
    /// Wanda needs input norms for every tensor of the scope, of the tensor's input dimension.
    #[error("wanda: {message}")]
    Wanda {
        /// What is missing or does not fit.
        message: String,
    },
    /// A mask file that does not fit the model.
    #[error("{}: the masks do not fit this model: {message}", path.display())]
    MaskMismatch {
        /// The mask file.
        path: PathBuf,
        /// What does not fit.
        message: String,
    },
    /// A model whose layers lack the matrices structured pruning needs.
    #[error("structured pruning: {message}")]
    Structured {
        /// What is missing.
        message: String,
    },
    /// A file that cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing a file failed (e.g. the disk is full); the file keeps its previous contents.
    #[error("cannot write {}: {source} (nothing was changed: any previous file is intact)", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A malformed safetensors file (masks or compressed checkpoint).
    #[error("{}: invalid file: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Error::Io { path: path.into(), source }
    }
}
