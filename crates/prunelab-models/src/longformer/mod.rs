//! Longformer (Beltagy et al., 2020, <https://arxiv.org/abs/2004.05150>) as transformers
//! implements it (`transformers/models/longformer/modeling_longformer.py`),
//! `model_type: longformer`.
//!
//! A RoBERTa encoder whose self-attention is Longformer's: each token attends the
//! `attention_window / 2` tokens on either side of it (per layer), and tokens marked global
//! attend, and are attended by, every token through their own projections (`query_global`,
//! `key_global`, `value_global`). The sliding window is computed in chunks ([`attention`]), so
//! memory grows linearly with the sequence. Sequences are padded internally to a multiple of the
//! window, as transformers pads them, and the outputs cut back.
//!
//! `LongformerForSequenceClassification` gives the first token global attention (transformers'
//! default when no `global_attention_mask` is passed) and classifies it with a RoBERTa-style head
//! (`dense`, tanh, `out_proj`).

pub mod attention;
pub(crate) mod arch;
mod loader;
mod model;

pub use attention::{AttentionPattern, LongformerSelfAttention};
pub use loader::longformer_naming;
pub use model::*;

use crate::config::LabelFields;

/// `attention_window`: one even width for every layer, or one per layer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum AttentionWindow {
    /// The same window in every layer.
    Uniform(usize),
    /// One window per layer.
    PerLayer(Vec<usize>),
}

impl AttentionWindow {
    /// The window (both sides together) of layer `i`.
    pub fn of_layer(&self, i: usize) -> usize {
        match self {
            Self::Uniform(w) => *w,
            Self::PerLayer(ws) => ws.get(i).copied().unwrap_or_default(),
        }
    }

    /// Check: even, positive, and one value per layer when given per layer. The message is for
    /// the `attention_window` key.
    pub fn check(&self, layers: usize) -> Result<(), String> {
        let windows = match self {
            Self::Uniform(w) => vec![*w],
            Self::PerLayer(ws) if ws.len() != layers => {
                return Err(format!("has {} values for {layers} layers", ws.len()));
            }
            Self::PerLayer(ws) => ws.clone(),
        };
        match windows.iter().find(|w| **w == 0 || **w % 2 != 0) {
            Some(w) => Err(format!("{w} is not a positive even number")),
            None => Ok(()),
        }
    }

    /// The multiple the sequence is padded to: transformers pads to a multiple of the largest
    /// window; the chunked attention also needs a multiple of every half window, which the
    /// largest window is for every configuration transformers accepts (for the others the least
    /// common multiple is taken; padding never changes the outputs of real tokens).
    pub fn padding_multiple(&self, layers: usize) -> usize {
        let windows: Vec<usize> = (0..layers.max(1)).map(|i| self.of_layer(i).max(2)).collect();
        let largest = windows.iter().copied().max().unwrap_or(2);
        windows.iter().fold(largest, |m, w| lcm(m, w / 2))
    }
}

fn lcm(a: usize, b: usize) -> usize {
    fn gcd(a: usize, b: usize) -> usize {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    a / gcd(a, b) * b
}

/// `LongformerConfig` of transformers, read from `config.json` (same field names and defaults).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct LongformerConfig {
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
    /// Dropout on embeddings, sub-layer outputs and in the classification head.
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities.
    pub attention_probs_dropout_prob: f64,
    /// Number of learned positions (RoBERTa-style: `pad_token_id + 1` of them are never used by
    /// real tokens).
    pub max_position_embeddings: usize,
    /// Number of token types.
    pub type_vocab_size: usize,
    /// Standard deviation of the normal initialisation.
    pub initializer_range: f64,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Padding token id; positions count from `pad_token_id + 1`.
    pub pad_token_id: Option<u32>,
    /// Sliding-window width (both sides together), per layer or for all.
    pub attention_window: AttentionWindow,
    /// prunelab's extension: attention heads kept in each layer after structured pruning
    /// (absent: `num_attention_heads` everywhere).
    pub prunelab_heads: Option<Vec<usize>>,
    /// Declared labels.
    #[serde(flatten)]
    pub labels: LabelFields,
}

impl Default for LongformerConfig {
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
            pad_token_id: Some(1),
            attention_window: AttentionWindow::Uniform(512),
            prunelab_heads: None,
            labels: LabelFields::default(),
        }
    }
}

impl LongformerConfig {
    /// Attention heads of layer `i` (fewer than `num_attention_heads` after structured pruning).
    pub fn heads_in_layer(&self, i: usize) -> usize {
        self.prunelab_heads.as_ref().and_then(|h| h.get(i).copied()).unwrap_or(self.num_attention_heads)
    }

    /// The padding id (validated to be present when the config was read).
    pub fn pad_id(&self) -> u32 {
        self.pad_token_id.unwrap_or(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        let w: AttentionWindow = serde_json::from_str("512").unwrap();
        assert_eq!((w.of_layer(3), w.padding_multiple(12)), (512, 512));
        assert_eq!(w.check(12), Ok(()));
        let w: AttentionWindow = serde_json::from_str("[4, 6]").unwrap();
        assert_eq!((w.of_layer(0), w.of_layer(1), w.padding_multiple(2)), (4, 6, 6));
        assert_eq!(w.check(3).unwrap_err(), "has 2 values for 3 layers");
        let w: AttentionWindow = serde_json::from_str("[8, 6]").unwrap();
        assert_eq!(w.padding_multiple(2), 24, "8 and half of 6");
        assert!(AttentionWindow::Uniform(5).check(1).unwrap_err().contains("5 is not a positive even number"));
        assert!(AttentionWindow::PerLayer(vec![4, 0]).check(2).is_err());
    }
}
