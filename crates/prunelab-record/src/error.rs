//! The one error type of `prunelab-record`.

use std::path::PathBuf;

/// A record that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a record of this shape (serde_json's message names the line and column).
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        source: serde_json::Error,
    },
    /// The file was written by a newer prunelab, in a shape this version does not know.
    #[error("{}: record schema {found} is newer than this prunelab reads (up to {known}); update prunelab", path.display())]
    Schema {
        /// The file.
        path: PathBuf,
        /// The file's schema.
        found: u32,
        /// The newest schema this version reads.
        known: u32,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
