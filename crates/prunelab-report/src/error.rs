//! The crate's one error type: every variant names the file it is about.

use std::path::{Path, PathBuf};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file or directory failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file is not valid JSON.
    #[error("{} is not valid JSON: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's error (with line and column).
        source: serde_json::Error,
    },
    /// A JSON file is valid but a key has the wrong type, or a required key is missing.
    #[error("{}: {pointer}: {message}", path.display())]
    Field {
        /// The file.
        path: PathBuf,
        /// Where in the file, as a JSON pointer (`/pruning/amount`).
        pointer: String,
        /// What is wrong.
        message: String,
    },
    /// Writing the CSV file failed.
    #[error("writing {}: {source}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// The CSV writer's error.
        source: csv::Error,
    },
    /// Encoding a PNG failed.
    #[error("encoding {}: {source}", path.display())]
    Png {
        /// The file.
        path: PathBuf,
        /// The encoder's error.
        source: png::EncodingError,
    },
    /// Drawing a plot failed. plotters' error type is generic over its backend (one type per
    /// backend), so its message is kept as text.
    #[error("drawing {}: {message}", path.display())]
    Plot {
        /// The plot file.
        path: PathBuf,
        /// plotters' message.
        message: String,
    },
    /// A `result.json` that cannot be read as a run record (the message names the file, and
    /// the line and column of what is wrong).
    #[error(transparent)]
    Record(#[from] prunelab_record::Error),
    /// The input is not a directory.
    #[error("{} is not a directory", path.display())]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A closure turning an I/O error into [`Error::Io`] for `path`.
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Error::Io { path: path.to_owned(), source }
    }
}
