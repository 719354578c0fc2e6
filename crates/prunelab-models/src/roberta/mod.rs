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

use crate::bert::BertConfig;

/// `RobertaConfig` of transformers: `BertConfig`'s fields, defaults and meaning (transformers'
/// class derives from it), with RoBERTa's vocabulary (50,265) and padding id (1) as defaults.
/// `max_position_embeddings` counts the `pad_token_id + 1` positions no token takes
/// (roberta-base: 514 for 512 tokens).
#[derive(Debug, Clone, PartialEq)]
pub struct RobertaConfig(pub BertConfig);

impl<'de> serde::Deserialize<'de> for RobertaConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut value = serde_json::Value::deserialize(deserializer)?;
        if let Some(fields) = value.as_object_mut() {
            fields.entry("vocab_size").or_insert(50265.into());
            fields.entry("pad_token_id").or_insert(1.into());
        }
        BertConfig::deserialize(value).map(Self).map_err(serde::de::Error::custom)
    }
}

impl RobertaConfig {
    /// The padding id (validated to be present when the config was read).
    pub fn pad_id(&self) -> u32 {
        self.0.pad_token_id.unwrap_or(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_bert_s_with_roberta_s_vocabulary_and_padding() {
        let c: RobertaConfig = serde_json::from_str(r#"{"hidden_size": 64}"#).unwrap();
        assert_eq!((c.0.vocab_size, c.0.pad_token_id, c.0.hidden_size), (50265, Some(1), 64));
        assert_eq!((c.0.max_position_embeddings, c.0.layer_norm_eps), (512, 1e-12), "BertConfig's");
        let c: RobertaConfig = serde_json::from_str(r#"{"vocab_size": 99, "pad_token_id": 0}"#).unwrap();
        assert_eq!((c.0.vocab_size, c.pad_id()), (99, 0));
    }
}
