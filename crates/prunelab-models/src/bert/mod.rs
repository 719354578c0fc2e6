//! BERT (Devlin et al., 2019, <https://arxiv.org/abs/1810.04805>) as transformers implements it
//! (`transformers/models/bert/modeling_bert.py`), `model_type: bert`. Covers MiniLM checkpoints
//! such as `sentence-transformers/all-MiniLM-L6-v2`, which are BERT-architecture models.
//!
//! The module tree mirrors transformers' (`bert.encoder.layer.N.attention.self_attn.query`), so
//! the checkpoint key map in [`loader`] is a handful of renames.

pub(crate) mod arch;
mod loader;
mod model;

pub use loader::BertNaming;
pub use model::*;

use crate::config::LabelFields;

/// `BertConfig` of transformers, read from `config.json` (same field names and defaults).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct BertConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden size.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Inner size of the feed-forward block.
    pub intermediate_size: usize,
    /// Feed-forward activation (`gelu`, `gelu_new`, `relu`, ...).
    pub hidden_act: String,
    /// Dropout on embeddings and sub-layer outputs.
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities.
    pub attention_probs_dropout_prob: f64,
    /// Number of learned positions.
    pub max_position_embeddings: usize,
    /// Number of token types (segments).
    pub type_vocab_size: usize,
    /// Standard deviation of the normal initialisation.
    pub initializer_range: f64,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Padding token id.
    pub pad_token_id: Option<u32>,
    /// Only `absolute` is supported.
    pub position_embedding_type: String,
    /// Dropout before the classifier (`hidden_dropout_prob` when unset).
    pub classifier_dropout: Option<f64>,
    /// prunelab's extension: attention heads kept in each layer after structured pruning
    /// (absent: `num_attention_heads` everywhere). transformers 5 has no head pruning, so
    /// checkpoints with fewer heads load in prunelab only.
    pub prunelab_heads: Option<Vec<usize>>,
    /// Declared labels.
    #[serde(flatten)]
    pub labels: LabelFields,
}

impl Default for BertConfig {
    fn default() -> Self {
        Self {
            vocab_size: 30522,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: "gelu".into(),
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
            pad_token_id: Some(0),
            position_embedding_type: "absolute".into(),
            classifier_dropout: None,
            prunelab_heads: None,
            labels: LabelFields::default(),
        }
    }
}
