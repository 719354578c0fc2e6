//! GLUE tasks for prunelab: reading, tokenizing, batching and scoring.
//!
//! This crate owns everything between a GLUE file and a padded batch of token ids, plus the
//! metrics the GLUE leaderboard ranks by:
//!
//! - [`task`]: the task table ([`TaskSpec`]): adding a GLUE task is adding an entry.
//! - [`tsv`]: the official GLUE TSV files (`<dir>/SST-2/train.tsv`, ...), parsed strictly.
//! - [`parquet`]: the Hugging Face dataset `nyu-mll/glue` (parquet), downloaded through the
//!   Hugging Face cache with the `hub` feature.
//! - [`tokenize`]: a `tokenizer.json` with truncation; [`batcher`]: dynamic padding into Burn
//!   tensors and (length-bucketed) batch orders.
//! - [`metrics`]: accuracy, Matthews correlation and F1 exactly as scikit-learn computes them.
//!
//! ```no_run
//! use prunelab_glue::{GlueSource, GlueTask, Split, TextEncoder};
//! let source = GlueSource::Dir("data/glue".into());
//! let dev = source.load(GlueTask::Cola, Split::Dev)?;
//! let encoder = TextEncoder::from_file("tokenizer.json")?.with_max_length(128)?;
//! let encoded = encoder.encode(&dev.examples)?;
//! # Ok::<(), prunelab_glue::Error>(())
//! ```
#![warn(missing_docs)]

pub mod batcher;
mod error;
mod example;
pub mod metrics;
pub mod parquet;
pub mod stats;
pub mod task;
pub mod tokenize;
pub mod tsv;

use std::path::PathBuf;

pub use batcher::{GlueBatch, GlueBatcher, PaddingSide};
pub use error::{Error, Result};
pub use example::{Example, GlueSplit};
pub use metrics::{Confusion, Scores};
pub use task::{GlueTask, MainMetric, Split, TaskSpec};
pub use tokenize::{Encoded, TextEncoder};

/// Where GLUE data comes from.
#[derive(Debug, Clone)]
pub enum GlueSource {
    /// A directory in the GLUE TSV layout (`<dir>/SST-2/train.tsv`, `<dir>/CoLA/dev.tsv`, ...).
    Dir(PathBuf),
    /// The Hugging Face dataset `nyu-mll/glue` at a revision, through the Hugging Face cache.
    #[cfg(feature = "hub")]
    Hub {
        /// The Hub client (cache directory, offline mode).
        hub: prunelab_hub::Hub,
        /// Branch, tag or commit of `nyu-mll/glue`.
        revision: String,
    },
}

impl GlueSource {
    /// Load `split` of `task`.
    pub fn load(&self, task: GlueTask, split: Split) -> Result<GlueSplit> {
        match self {
            GlueSource::Dir(dir) => tsv::read_split(dir, task, split),
            #[cfg(feature = "hub")]
            GlueSource::Hub { hub, revision } => parquet::download_split(hub, revision, task, split),
        }
    }
}
