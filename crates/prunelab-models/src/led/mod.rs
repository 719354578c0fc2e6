//! LED, the Longformer-Encoder-Decoder (Beltagy et al., 2020, <https://arxiv.org/abs/2004.05150>),
//! as transformers implements it (`transformers/models/led/modeling_led.py`), `model_type: led`.
//!
//! A BART-style encoder-decoder whose encoder self-attention is Longformer's
//! ([`crate::longformer::attention`]: sliding window per layer, optional global tokens, input
//! padded to a multiple of the window) and whose decoder is BART's (causal self-attention,
//! cross-attention to the encoder, post-LayerNorm blocks). Token embeddings are one matrix
//! (`led.shared`) for encoder and decoder, as transformers ties them; learned positions start at 0
//! in both stacks (no BART offset).
//!
//! The sequence classifier is `LEDForSequenceClassification` of transformers 4 (the class was
//! removed in transformers 5; its module names and semantics are kept here, and the parity
//! fixtures rebuild it from transformers' `LEDModel` and `LEDClassificationHead`): the decoder
//! reads the input shifted right (`shift_tokens_right` with `decoder_start_token_id`), the
//! decoder hidden state at the last `eos_token_id` of each row goes through a BART classification
//! head (`dense`, tanh, `out_proj`). No token has global attention unless asked for, as in
//! transformers. Where transformers raises (rows with different numbers of eos tokens), each row
//! still pools its own last eos; a row without eos pools position 0. LayerDrop
//! (`encoder_layerdrop`, `decoder_layerdrop`) is not implemented: every layer always runs.

pub(crate) mod arch;
mod loader;
mod model;

pub use loader::LedNaming;
pub use model::*;

use crate::config::LabelFields;
use crate::longformer::AttentionWindow;

/// A token id that transformers 5 allows to be a list (`eos_token_id`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    /// One id.
    One(u32),
    /// Several ids.
    Many(Vec<u32>),
}

/// `LEDConfig` of transformers, read from `config.json` (same field names and defaults).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct LedConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden size.
    pub d_model: usize,
    /// Encoder layers.
    pub encoder_layers: usize,
    /// Decoder layers.
    pub decoder_layers: usize,
    /// Attention heads per encoder layer.
    pub encoder_attention_heads: usize,
    /// Attention heads per decoder attention block.
    pub decoder_attention_heads: usize,
    /// Inner size of the encoder's feed-forward blocks.
    pub encoder_ffn_dim: usize,
    /// Inner size of the decoder's feed-forward blocks.
    pub decoder_ffn_dim: usize,
    /// Learned encoder positions (the window-padded input must fit).
    pub max_encoder_position_embeddings: usize,
    /// Learned decoder positions.
    pub max_decoder_position_embeddings: usize,
    /// Feed-forward activation.
    pub activation_function: String,
    /// Dropout on embeddings and sub-layer outputs.
    pub dropout: f64,
    /// Dropout on attention probabilities.
    pub attention_dropout: f64,
    /// Dropout after the feed-forward activation.
    pub activation_dropout: f64,
    /// Dropout in the classification head.
    pub classifier_dropout: f64,
    /// Standard deviation of the normal initialisation.
    pub init_std: f64,
    /// Padding token id.
    pub pad_token_id: Option<u32>,
    /// End-of-sequence token id (the classifier pools the last one).
    pub eos_token_id: Option<TokenIds>,
    /// First decoder input token.
    pub decoder_start_token_id: Option<u32>,
    /// Sliding-window width of the encoder layers, per layer or for all.
    pub attention_window: AttentionWindow,
    /// Declared labels.
    #[serde(flatten)]
    pub labels: LabelFields,
}

impl Default for LedConfig {
    fn default() -> Self {
        Self {
            vocab_size: 50265,
            d_model: 1024,
            encoder_layers: 12,
            decoder_layers: 12,
            encoder_attention_heads: 16,
            decoder_attention_heads: 16,
            encoder_ffn_dim: 4096,
            decoder_ffn_dim: 4096,
            max_encoder_position_embeddings: 16384,
            max_decoder_position_embeddings: 1024,
            activation_function: "gelu".into(),
            dropout: 0.1,
            attention_dropout: 0.0,
            activation_dropout: 0.0,
            classifier_dropout: 0.0,
            init_std: 0.02,
            pad_token_id: Some(1),
            eos_token_id: Some(TokenIds::One(2)),
            decoder_start_token_id: Some(2),
            attention_window: AttentionWindow::Uniform(512),
            labels: LabelFields::default(),
        }
    }
}

impl LedConfig {
    /// The ids the model needs, `(pad, eos, decoder_start)`, or the key that lacks one.
    pub fn special_ids(&self) -> Result<(u32, u32, u32), (&'static str, &'static str)> {
        let pad = self.pad_token_id.ok_or(("pad_token_id", "is needed (decoder inputs and window padding)"))?;
        let eos = match &self.eos_token_id {
            Some(TokenIds::One(id)) => *id,
            Some(TokenIds::Many(ids)) if ids.len() == 1 => ids[0],
            _ => return Err(("eos_token_id", "must be one id (the classifier pools the last eos token)")),
        };
        let start = self.decoder_start_token_id.ok_or(("decoder_start_token_id", "is needed (decoder inputs)"))?;
        Ok((pad, eos, start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_ids() {
        let c: LedConfig = serde_json::from_str(r#"{"eos_token_id": [2]}"#).unwrap();
        assert_eq!(c.special_ids(), Ok((1, 2, 2)));
        let c: LedConfig = serde_json::from_str(r#"{"eos_token_id": [2, 3]}"#).unwrap();
        assert_eq!(c.special_ids().unwrap_err().0, "eos_token_id");
        let c: LedConfig = serde_json::from_str(r#"{"pad_token_id": null}"#).unwrap();
        assert_eq!(c.special_ids().unwrap_err().0, "pad_token_id");
    }
}
