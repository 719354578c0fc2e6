//! GPT-2 (Radford et al., 2019, "Language Models are Unsupervised Multitask Learners") as
//! transformers implements it (`transformers/models/gpt2/modeling_gpt2.py`), `model_type: gpt2`.
//!
//! GPT-2's attention and MLP weights are transformers' `Conv1D`, stored `[in, out]` — Burn's
//! `Linear` layout, so they load untransposed — and `c_attn` fuses the query, key and value
//! projections into one `[hidden, 3 * hidden]` matrix, kept fused here as in transformers (so
//! pruning sees the same matrices torch does). Only the classification head `score` is an
//! `nn.Linear`.

pub(crate) mod arch;
mod loader;
mod model;

pub use loader::Gpt2Naming;
pub use model::*;

use crate::config::LabelFields;

/// `GPT2Config` of transformers, read from `config.json` (same field names and defaults).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct Gpt2Config {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Number of learned positions.
    pub n_positions: usize,
    /// Hidden size.
    pub n_embd: usize,
    /// Number of blocks.
    pub n_layer: usize,
    /// Attention heads per block.
    pub n_head: usize,
    /// Inner size of the MLP (`4 * n_embd` when unset).
    pub n_inner: Option<usize>,
    /// MLP activation (`gelu_new` for GPT-2).
    pub activation_function: String,
    /// Dropout on sub-layer outputs.
    pub resid_pdrop: f64,
    /// Dropout on the embeddings.
    pub embd_pdrop: f64,
    /// Dropout on attention probabilities.
    pub attn_pdrop: f64,
    /// LayerNorm epsilon.
    pub layer_norm_epsilon: f64,
    /// Standard deviation of the normal initialisation.
    pub initializer_range: f64,
    /// Divide attention scores by `sqrt(head_dim)`.
    pub scale_attn_weights: bool,
    /// Also divide them by `layer_idx + 1`.
    pub scale_attn_by_inverse_layer_idx: bool,
    /// End-of-text token id.
    pub eos_token_id: Option<u32>,
    /// Padding token id (GPT-2 has none; the end-of-text token is used, as transformers users do).
    pub pad_token_id: Option<u32>,
    /// prunelab's extension: attention heads kept in each block after structured pruning
    /// (absent: `n_head` everywhere). transformers 5 has no head pruning, so checkpoints with
    /// fewer heads load in prunelab only.
    pub prunelab_heads: Option<Vec<usize>>,
    /// Declared labels.
    #[serde(flatten)]
    pub labels: LabelFields,
}

impl Gpt2Config {
    /// The MLP's inner size.
    pub fn inner_dim(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }

    /// The id that marks padding: `pad_token_id`, else `eos_token_id`, else 50256.
    pub fn pad_token_id(&self) -> u32 {
        self.pad_token_id.or(self.eos_token_id).unwrap_or(50256)
    }
}

impl Default for Gpt2Config {
    fn default() -> Self {
        Self {
            vocab_size: 50257,
            n_positions: 1024,
            n_embd: 768,
            n_layer: 12,
            n_head: 12,
            n_inner: None,
            activation_function: "gelu_new".into(),
            resid_pdrop: 0.1,
            embd_pdrop: 0.1,
            attn_pdrop: 0.1,
            layer_norm_epsilon: 1e-5,
            initializer_range: 0.02,
            scale_attn_weights: true,
            scale_attn_by_inverse_layer_idx: false,
            eos_token_id: Some(50256),
            pad_token_id: None,
            prunelab_heads: None,
            labels: LabelFields::default(),
        }
    }
}
