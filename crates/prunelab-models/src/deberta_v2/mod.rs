//! DeBERTa-v2 and DeBERTa-v3 (He et al., 2021/2023, <https://arxiv.org/abs/2111.09543>) as
//! transformers implements them (`transformers/models/deberta_v2/modeling_deberta_v2.py`),
//! `model_type: deberta-v2`.
//!
//! What differs from DeBERTa ([`crate::deberta`]): separate `query_proj`/`key_proj`/`value_proj`
//! with biases; relative distances optionally log-bucketed (`position_buckets`, DeBERTa-v3: 256)
//! with a fixed span of `position_buckets` (else `max_relative_positions`) embeddings; the
//! relative embeddings optionally layer-normalised (`norm_rel_ebd: "layer_norm"`) and projected
//! by the content projections themselves (`share_att_key`) instead of `pos_key_proj` /
//! `pos_query_proj`; the `c2p`/`p2c` terms divided by the scale after gathering; an optional
//! convolution (`conv_kernel_size`) over the embedding output added to the first layer's output;
//! `nn.LayerNorm` everywhere. Embeddings, feed-forward blocks and the context pooler are
//! DeBERTa's. The tokenizer (SentencePiece Unigram) is read from `tokenizer.json` by
//! `prunelab-glue` like every other.

pub(crate) mod arch;
mod loader;
mod model;

pub use loader::DebertaV2Naming;
pub use model::*;

use crate::config::LabelFields;
use crate::deberta::DebertaConfig;
use crate::layers::activation_problem;

/// `DebertaV2Config` of transformers, read from `config.json` (same field names and defaults;
/// the fields transformers reads with `getattr` have the defaults given there).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct DebertaV2Config {
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
    /// Dropout on embeddings, sub-layer outputs and relative embeddings.
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities.
    pub attention_probs_dropout_prob: f64,
    /// Number of absolute positions (and the default relative range).
    pub max_position_embeddings: usize,
    /// Number of token types; 0 means no token-type embeddings.
    pub type_vocab_size: usize,
    /// Standard deviation of the normal initialisation.
    pub initializer_range: f64,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Whether attention has the disentangled relative-position terms.
    pub relative_attention: bool,
    /// The relative range; below 1 means `max_position_embeddings`.
    pub max_relative_positions: i64,
    /// Padding token id.
    pub pad_token_id: Option<i64>,
    /// Whether absolute position embeddings are added to the token embeddings.
    pub position_biased_input: bool,
    /// Relative attention terms: a list (`["p2c", "c2p"]`) or the legacy string `"p2c|c2p"`.
    #[serde(deserialize_with = "crate::deberta::pos_att_type")]
    pub pos_att_type: Vec<String>,
    /// Dropout in the pooler (before its dense layer).
    pub pooler_dropout: f64,
    /// The pooler's activation.
    pub pooler_hidden_act: String,
    /// The pooler's size (`hidden_size` when unset; transformers needs them equal).
    pub pooler_hidden_size: Option<usize>,
    /// Dropout before the classifier (`hidden_dropout_prob` when unset).
    pub cls_dropout: Option<f64>,
    /// Size of the token embeddings, projected to `hidden_size` by `embed_proj` when different.
    pub embedding_size: Option<usize>,
    /// Number of log buckets of relative distances; 0 or below means none.
    pub position_buckets: i64,
    /// Project the relative embeddings with `query_proj`/`key_proj` instead of their own.
    pub share_att_key: bool,
    /// `"layer_norm"` (possibly among `|`-separated values) to layer-normalise the relative
    /// embeddings; `"none"` otherwise.
    pub norm_rel_ebd: String,
    /// Kernel size of the convolution after the first layer; 0 means none.
    pub conv_kernel_size: i64,
    /// Groups of that convolution.
    pub conv_groups: usize,
    /// Activation of that convolution.
    pub conv_act: String,
    /// Head size (only `hidden_size / num_attention_heads` works in transformers).
    pub attention_head_size: Option<usize>,
    /// prunelab's extension: attention heads kept in each layer after structured pruning
    /// (absent: `num_attention_heads` everywhere); loads in prunelab only.
    pub prunelab_heads: Option<Vec<usize>>,
    /// Declared labels.
    #[serde(flatten)]
    pub labels: LabelFields,
}

impl Default for DebertaV2Config {
    fn default() -> Self {
        let v1 = DebertaConfig::default();
        Self {
            vocab_size: 128100,
            hidden_size: 1536,
            num_hidden_layers: 24,
            num_attention_heads: 24,
            intermediate_size: 6144,
            hidden_act: v1.hidden_act,
            hidden_dropout_prob: v1.hidden_dropout_prob,
            attention_probs_dropout_prob: v1.attention_probs_dropout_prob,
            max_position_embeddings: v1.max_position_embeddings,
            type_vocab_size: v1.type_vocab_size,
            initializer_range: v1.initializer_range,
            layer_norm_eps: v1.layer_norm_eps,
            relative_attention: v1.relative_attention,
            max_relative_positions: v1.max_relative_positions,
            pad_token_id: v1.pad_token_id,
            position_biased_input: v1.position_biased_input,
            pos_att_type: v1.pos_att_type,
            pooler_dropout: v1.pooler_dropout,
            pooler_hidden_act: v1.pooler_hidden_act,
            pooler_hidden_size: v1.pooler_hidden_size,
            cls_dropout: v1.cls_dropout,
            embedding_size: v1.embedding_size,
            position_buckets: -1,
            share_att_key: false,
            norm_rel_ebd: "none".into(),
            conv_kernel_size: 0,
            conv_groups: 1,
            conv_act: "tanh".into(),
            attention_head_size: None,
            prunelab_heads: None,
            labels: v1.labels,
        }
    }
}

impl DebertaV2Config {
    /// The fields DeBERTa and DeBERTa-v2 share, as a DeBERTa config (to build the shared modules).
    pub(crate) fn shared(&self) -> DebertaConfig {
        DebertaConfig {
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            intermediate_size: self.intermediate_size,
            hidden_act: self.hidden_act.clone(),
            hidden_dropout_prob: self.hidden_dropout_prob,
            attention_probs_dropout_prob: self.attention_probs_dropout_prob,
            max_position_embeddings: self.max_position_embeddings,
            type_vocab_size: self.type_vocab_size,
            initializer_range: self.initializer_range,
            layer_norm_eps: self.layer_norm_eps,
            relative_attention: self.relative_attention,
            max_relative_positions: self.max_relative_positions,
            pad_token_id: self.pad_token_id,
            position_biased_input: self.position_biased_input,
            pos_att_type: self.pos_att_type.clone(),
            pooler_dropout: self.pooler_dropout,
            pooler_hidden_act: self.pooler_hidden_act.clone(),
            pooler_hidden_size: self.pooler_hidden_size,
            cls_dropout: self.cls_dropout,
            embedding_size: self.embedding_size,
            talking_head: false,
            labels: self.labels.clone(),
        }
    }

    /// Attention heads of layer `i` (fewer than `num_attention_heads` after structured pruning).
    pub fn heads_in_layer(&self, i: usize) -> usize {
        self.prunelab_heads.as_ref().and_then(|h| h.get(i).copied()).unwrap_or(self.num_attention_heads)
    }

    /// The number of log buckets, if relative distances are bucketed.
    pub fn buckets(&self) -> Option<usize> {
        usize::try_from(self.position_buckets).ok().filter(|&b| b > 0)
    }

    /// The number of relative embeddings on each side (`pos_ebd_size`): `position_buckets`,
    /// else the relative range.
    pub fn relative_span(&self) -> usize {
        self.buckets().unwrap_or_else(|| self.shared().relative_range())
    }

    /// Whether the relative embeddings are layer-normalised.
    pub fn norm_rel_embeddings(&self) -> bool {
        self.norm_rel_ebd.to_lowercase().split('|').any(|t| t.trim() == "layer_norm")
    }

    /// The convolution's kernel size, if the encoder has one.
    pub fn conv_kernel(&self) -> Option<usize> {
        usize::try_from(self.conv_kernel_size).ok().filter(|&k| k > 0)
    }

    /// The problem with this config, as `(key, message)`, if any.
    pub(crate) fn check(&self) -> Option<(&'static str, String)> {
        if let Some(problem) = self.shared().check() {
            return Some(problem);
        }
        let (hidden, heads) = (self.hidden_size, self.num_attention_heads);
        if let Some(size) = self.attention_head_size.filter(|&s| s * heads != hidden) {
            return Some((
                "attention_head_size",
                format!("{size} x {heads} heads differs from hidden_size {hidden} (transformers needs them equal)"),
            ));
        }
        if let Some(bad) =
            self.norm_rel_ebd.to_lowercase().split('|').map(str::trim).find(|t| !matches!(*t, "none" | "layer_norm"))
        {
            return Some(("norm_rel_ebd", format!("{bad:?} is not \"none\" or \"layer_norm\"")));
        }
        if let Some(k) = self.conv_kernel() {
            if k % 2 == 0 {
                return Some((
                    "conv_kernel_size",
                    format!("{k} is even (transformers' padding keeps the length for odd kernels only)"),
                ));
            }
            if self.conv_groups == 0 || hidden % self.conv_groups != 0 {
                return Some((
                    "conv_groups",
                    format!("{} groups do not divide the hidden size {hidden}", self.conv_groups),
                ));
            }
            if let Some(problem) = activation_problem(&self.conv_act) {
                return Some(("conv_act", problem));
            }
        }
        if let Some(kept) = &self.prunelab_heads
            && (kept.len() != self.num_hidden_layers || kept.iter().any(|&k| k == 0 || k > heads))
        {
            return Some((
                "prunelab_heads",
                format!("needs {} values in 1..={heads}, got {kept:?}", self.num_hidden_layers),
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> DebertaV2Config {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn deberta_v3_base_config() {
        // The fields of microsoft/deberta-v3-base's config.json that differ from the defaults.
        let c = parse(
            r#"{"model_type": "deberta-v2", "hidden_size": 768, "num_hidden_layers": 12,
                "num_attention_heads": 12, "intermediate_size": 3072, "relative_attention": true,
                "position_buckets": 256, "norm_rel_ebd": "layer_norm", "share_att_key": true,
                "pos_att_type": "p2c|c2p", "max_relative_positions": -1, "position_biased_input": false,
                "type_vocab_size": 0}"#,
        );
        assert_eq!((c.buckets(), c.relative_span(), c.norm_rel_embeddings()), (Some(256), 256, true));
        assert_eq!(c.pos_att_type, ["p2c", "c2p"]);
        assert_eq!(c.conv_kernel(), None);
        assert_eq!(c.check(), None);
        assert_eq!(c.shared().relative_range(), 512);
    }

    #[test]
    fn bad_values_name_their_key() {
        let key = |json: &str| parse(json).check().map(|(k, _)| k);
        assert_eq!(key(r#"{"conv_kernel_size": 4}"#), Some("conv_kernel_size"));
        assert_eq!(key(r#"{"conv_kernel_size": 3, "conv_act": "mish"}"#), Some("conv_act"));
        assert_eq!(key(r#"{"norm_rel_ebd": "batch_norm"}"#), Some("norm_rel_ebd"));
        assert_eq!(key(r#"{"pos_att_type": ["c2p", "x2y"]}"#), Some("pos_att_type"));
        assert_eq!(key(r#"{"attention_head_size": 32}"#), Some("attention_head_size"));
        assert_eq!(key(r#"{"pooler_hidden_act": "nope"}"#), Some("pooler_hidden_act"));
        assert_eq!(key(r#"{"conv_kernel_size": 3, "conv_act": "gelu"}"#), None);
    }
}
