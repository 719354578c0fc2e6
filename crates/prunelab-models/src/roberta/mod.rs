//! RoBERTa (Liu et al., 2019, <https://arxiv.org/abs/1907.11692>) as transformers implements it
//! (`transformers/models/roberta/modeling_roberta.py`), `model_type: roberta`.
//!
//! BERT's encoder layers under RoBERTa's embeddings (positions counted from `pad_token_id + 1`)
//! and RoBERTa's classification head on the first token (`dense`, tanh, `out_proj`); no pooler,
//! as `RobertaForSequenceClassification` builds none. Built from the shared blocks in
//! [`crate::layers::blocks`] and [`crate::bert`]'s layer.

pub(crate) mod arch;
mod loader;
mod model;

pub use loader::RobertaNaming;
pub use model::*;

use crate::config::LabelFields;

/// `RobertaConfig` of transformers, read from `config.json` (same field names and defaults).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct RobertaConfig {
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
    /// Feed-forward activation.
    pub hidden_act: String,
    /// Dropout on embeddings and sub-layer outputs.
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities.
    pub attention_probs_dropout_prob: f64,
    /// Number of learned positions (`pad_token_id + 1` of them are never a real token's:
    /// roberta-base has 514 for 512 tokens).
    pub max_position_embeddings: usize,
    /// Number of token types.
    pub type_vocab_size: usize,
    /// Standard deviation of the normal initialisation.
    pub initializer_range: f64,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Padding token id; positions count from `pad_token_id + 1`.
    pub pad_token_id: Option<u32>,
    /// Only `absolute` is supported.
    pub position_embedding_type: String,
    /// Dropout in the classification head (`hidden_dropout_prob` when unset).
    pub classifier_dropout: Option<f64>,
    /// prunelab's extension: attention heads kept in each layer after structured pruning
    /// (absent: `num_attention_heads` everywhere).
    pub prunelab_heads: Option<Vec<usize>>,
    /// Declared labels.
    #[serde(flatten)]
    pub labels: LabelFields,
}

impl Default for RobertaConfig {
    fn default() -> Self {
        Self {
            vocab_size: 50265,
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
            pad_token_id: Some(1),
            position_embedding_type: "absolute".into(),
            classifier_dropout: None,
            prunelab_heads: None,
            labels: LabelFields::default(),
        }
    }
}

impl RobertaConfig {
    /// Attention heads of layer `i` (fewer than `num_attention_heads` after structured pruning).
    pub fn heads_in_layer(&self, i: usize) -> usize {
        self.prunelab_heads.as_ref().and_then(|h| h.get(i).copied()).unwrap_or(self.num_attention_heads)
    }

    /// The padding id (validated to be present when the config was read).
    pub fn pad_id(&self) -> u32 {
        self.pad_token_id.unwrap_or(1)
    }
}
