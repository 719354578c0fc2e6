//! The one error type of `prunelab-glue`. Every variant names the file (and line) it is about.

use std::path::PathBuf;

/// Errors from reading, tokenizing or batching GLUE data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The GLUE directory lacks files of a task.
    #[error("GLUE {task} data not found under {dir}: expected {}", display_paths(expected))]
    MissingFiles {
        /// Task name.
        task: &'static str,
        /// The `--data-dir` that was given.
        dir: PathBuf,
        /// The files that were looked for and are absent.
        expected: Vec<PathBuf>,
    },
    /// Reading a file failed.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A row with the wrong number of tab-separated columns (often a stray tab in a sentence).
    #[error("{}:{line}: expected {expected} tab-separated columns, found {found}", path.display())]
    ColumnCount {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// Columns the layout has.
        expected: usize,
        /// Columns the row has.
        found: usize,
    },
    /// A header line that is not the one the official files have.
    #[error("{}:1: expected the header {expected:?}, found {found:?}", path.display())]
    Header {
        /// The file.
        path: PathBuf,
        /// The header of the official file.
        expected: String,
        /// What the file has.
        found: String,
    },
    /// A label outside the task's label set.
    #[error("{}:{line}: label {value:?} is not one of {}", path.display(), allowed.join(", "))]
    Label {
        /// The file.
        path: PathBuf,
        /// 1-based line number (row number for parquet files).
        line: u64,
        /// The offending value.
        value: String,
        /// The task's label values.
        allowed: Vec<String>,
    },
    /// An `index` column that is not a non-negative integer.
    #[error("{}:{line}: index {value:?} is not a non-negative integer", path.display())]
    Index {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// The offending value.
        value: String,
    },
    /// Bytes that are not UTF-8.
    #[error("{}:{line}: column {column} is not valid UTF-8", path.display())]
    Utf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// 1-based column number.
        column: usize,
    },
    /// A split without a single example.
    #[error("{}: the {split} split of {task} has no rows", path.display())]
    EmptySplit {
        /// The file.
        path: PathBuf,
        /// Task name.
        task: &'static str,
        /// Split name.
        split: String,
    },
    /// A malformed TSV record (reported by the `csv` reader).
    #[error("{}: malformed TSV", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: csv::Error,
    },
    /// A parquet file that cannot be read.
    #[error("{}: cannot read parquet data", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// A parquet file whose columns are not those of the GLUE dataset.
    #[error("{}: {message}", path.display())]
    ParquetSchema {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A tokenizer file that cannot be loaded, or text it cannot encode.
    #[error("tokenizer {}: {message}", path.display())]
    Tokenizer {
        /// The `tokenizer.json`.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A Hub download or cache lookup failed.
    #[cfg(feature = "hub")]
    #[error(transparent)]
    Hub(#[from] prunelab_hub::Error),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

fn display_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}
