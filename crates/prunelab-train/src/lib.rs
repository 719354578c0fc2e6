//! Fine-tuning and evaluation for prunelab: a Hugging Face Trainer-class loop for any
//! [`prunelab_models::Classifier`] on a GLUE task, with pruning masks held through training.
//!
//! - [`TrainConfig`] (owned by `prunelab-record`, as are [`MaskMode`] and [`EpochRecord`]):
//!   transformers' defaults (AdamW lr 2e-5, weight decay 0.01 except biases and
//!   LayerNorm weights, betas 0.9/0.999, eps 1e-8, linear warm-up then linear decay, gradient
//!   clipping at global norm 1.0), gradient accumulation, epochs, batch size, seed.
//! - [`fine_tune`]: the loop, on [`TrainData`] with [`TrainOptions`]; with masks in
//!   [`MaskMode::Hold`] the gradients of pruned weights are zeroed and the masks re-applied after
//!   every optimizer step, so sparsity is unchanged; [`MaskMode::Release`] reproduces the study's
//!   `prune.remove` (pruned weights may regrow). With epoch checkpoints ([`Checkpointing`]) an
//!   interrupted run resumes after its last finished epoch and ends as an uninterrupted one.
//! - [`GradualPruning`]: Zhu & Gupta's cubic schedule, masks recomputed during training and
//!   held; [`Distillation`]: a teacher's softened logits mixed into the loss.
//! - [`calibrate`]: input norms of every projection over calibration examples (Wanda).
//! - [`evaluate`]: predictions and [`prunelab_glue::Scores`] on a split; [`time_inference`]:
//!   latency and throughput of a model.
//! - [`Reporter`]: progress callbacks (the CLI draws bars; libraries never do); [`phase`]: marks
//!   between a step's phases, for profilers.
#![warn(missing_docs)]

pub mod calibrate;
mod checkpoint;
mod distill;
mod error;
mod evaluate;
mod gradual;
mod optim;
pub mod phase;
mod timing;
mod trainer;

pub use checkpoint::Checkpointing;
pub use distill::{Distillation, distillation_loss};
pub use error::{Error, Result};
pub use evaluate::{Evaluation, evaluate, predict};
pub use gradual::GradualPruning;
pub use optim::{OptimizerKind, gather, squares};
pub use prunelab_record::{EpochRecord, MaskMode, TrainConfig};
pub use timing::time_inference;
pub use trainer::{TrainData, TrainOptions, TrainOutcome, fine_tune};

/// Progress callbacks from the loop.
pub trait Reporter {
    /// An epoch begins; `steps` optimizer steps will follow.
    fn on_epoch_start(&mut self, _epoch: usize, _steps: usize) {}
    /// An optimizer step finished, with its learning rate; `loss` is the mean loss of the steps
    /// since the last read-back when this step read it back (every `logging_steps`), else `None`.
    fn on_step(&mut self, _step: usize, _loss: Option<f32>, _lr: f64) {}
    /// An evaluation finished.
    fn on_eval(&mut self, _epoch: usize, _scores: &prunelab_glue::Scores) {}
}

/// A reporter that reports nothing.
pub struct Silent;

impl Reporter for Silent {}
