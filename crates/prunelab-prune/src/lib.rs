//! Pruning for prunelab: masks that match torch, hold through training, and export.
//!
//! - [`scope`]: which parameters are pruned: `default` (attention and MLP weight matrices of every
//!   layer, GPT-2's `Conv1D` included) or `seed` (every `nn.Linear` weight — the study's scope,
//!   which for GPT-2 is the `score` head alone), adjusted with include/exclude patterns.
//! - [`masks`]: global and layer-wise magnitude (L1), N:M along the input dimension, random;
//!   counts `round(amount * n)` as torch computes them.
//! - [`apply`]: masks multiplied into a model, once or after every optimizer step.
//! - [`file`]: mask files (safetensors, torch's layout), checked against the model on load.
//! - [`sparsity`]: zeros per layer and overall, of the scope and of all parameters.
//! - [`wanda`]: Wanda's scores, |w| times the norm of its input feature, per output unit.
//! - [`structured`]: whole heads and MLP neurons removed, matrices physically compacted.
//! - [`export`]: a Hugging Face checkpoint with zeros in place, and a compressed form.
//!
//! Everything works on [`prunelab_stats::NamedTensor`]s and Burn module paths, never on a
//! concrete model type.
#![warn(missing_docs)]

pub mod apply;
mod error;
pub mod export;
pub mod file;
pub mod masks;
pub mod scope;
pub mod sparsity;
pub mod structured;
pub mod wanda;

pub use apply::DeviceMasks;
pub use error::{Error, Result};
pub use masks::{Mask, MaskSet, PruneSpec, Scheme, compute_masks, nparams_to_prune};
pub use scope::{Scope, ScopeKind};
pub use sparsity::{SparsityReport, sparsity};
pub use wanda::compute_wanda_masks;
