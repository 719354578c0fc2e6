//! The typed record of one prunelab run — what `prunelab finetune` writes as `result.json`, what
//! `prunelab report` and the tests read — and the plain data inside it. Serde only: no Burn, no
//! other prunelab crate, so a report can be made anywhere from the result files alone.
//!
//! - [`RunRecord`]: one run, finished or not; every part a failed run may lack is optional, so
//!   the files written by every earlier version still read ([`SCHEMA`] says which shape a file
//!   has; files without it are version 1, which this version reads as they are).
//! - [`TrainConfig`], [`MaskMode`], [`EpochRecord`]: the training recipe and what each epoch
//!   measured (owned here, re-exported by `prunelab-train`).
//! - [`Scores`], [`MainMetric`]: an evaluation (owned here, re-exported by `prunelab-glue`).
//! - [`SparsityReport`]: zeros per layer and overall (owned here, re-exported by `prunelab-prune`).
//! - [`PruningRecord`], [`GradualSchedule`], [`Distillation`]: how a run was pruned.
#![warn(missing_docs)]

mod error;
mod pruning;
mod run;
mod scores;
mod sparsity;
mod train;

pub use error::{Error, Result};
pub use pruning::{Distillation, GradualSchedule, PruneEvent, PruningRecord, Schedule};
pub use run::{
    DataRecord, EvaluatedEpoch, Hardware, InferenceRecord, LoadRecord, MatmulArithmetic, Metrics, RunRecord, SCHEMA,
    Status,
};
pub use scores::{MainMetric, Scores};
pub use sparsity::{Count, LayerSparsity, SparsityReport};
pub use train::{ConfigError, EpochRecord, MaskMode, TrainConfig};
