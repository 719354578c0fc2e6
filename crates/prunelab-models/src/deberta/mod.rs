//! DeBERTa (He et al., 2021, "DeBERTa: Decoding-enhanced BERT with Disentangled Attention",
//! <https://arxiv.org/abs/2006.03654>) as transformers implements it
//! (`transformers/models/deberta/modeling_deberta.py`), `model_type: deberta`.
//!
//! What differs from BERT: attention scores get content-to-position (`c2p`) and
//! position-to-content (`p2c`) terms computed from learned relative-position embeddings
//! (`encoder.rel_embeddings`, distances clamped to `max_relative_positions`); absolute position
//! embeddings are optional (`position_biased_input`), token types only exist when
//! `type_vocab_size > 0`; the query, key and value projections are one bias-free `in_proj` whose
//! output is laid out head by head (`[q_h, k_h, v_h]` for each head `h`), with separate `q_bias`
//! and `v_bias` parameters; LayerNorms are `DebertaLayerNorm` (the same arithmetic as
//! `nn.LayerNorm`); padding positions of the embedding output are zeroed; masked attention
//! scores are replaced (not offset) by the lowest float. The classifier pools the first token
//! through `ContextPooler` (dropout, dense, `pooler_hidden_act`).
//!
//! [`crate::deberta_v2`] (DeBERTa-v2 and v3) shares the embeddings, feed-forward blocks and
//! pooler defined here.

pub(crate) mod arch;
mod loader;
mod model;
pub(crate) mod relative;

pub use loader::DebertaNaming;
pub(crate) use loader::{deberta_ignored, deberta_init_if_missing};
pub use model::*;

use crate::config::LabelFields;
use crate::layers::activation_problem;

/// `DebertaConfig` of transformers, read from `config.json` (same field names and defaults).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct DebertaConfig {
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
    /// Number of token types; 0 (DeBERTa's default) means no token-type embeddings.
    pub type_vocab_size: usize,
    /// Standard deviation of the normal initialisation.
    pub initializer_range: f64,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Whether attention has the disentangled relative-position terms.
    pub relative_attention: bool,
    /// Relative distances are clamped to this; below 1 means `max_position_embeddings`.
    pub max_relative_positions: i64,
    /// Padding token id.
    pub pad_token_id: Option<i64>,
    /// Whether absolute position embeddings are added to the token embeddings.
    pub position_biased_input: bool,
    /// Relative attention terms: a list (`["c2p", "p2c"]`) or the legacy string `"c2p|p2c"`.
    #[serde(deserialize_with = "pos_att_type")]
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
    /// Talking-heads attention (not supported; rejected when set).
    pub talking_head: bool,
    /// Declared labels.
    #[serde(flatten)]
    pub labels: LabelFields,
}

impl Default for DebertaConfig {
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
            type_vocab_size: 0,
            initializer_range: 0.02,
            layer_norm_eps: 1e-7,
            relative_attention: false,
            max_relative_positions: -1,
            pad_token_id: Some(0),
            position_biased_input: true,
            pos_att_type: Vec::new(),
            pooler_dropout: 0.0,
            pooler_hidden_act: "gelu".into(),
            pooler_hidden_size: None,
            cls_dropout: None,
            embedding_size: None,
            talking_head: false,
            labels: LabelFields::default(),
        }
    }
}

impl DebertaConfig {
    /// The relative range actually used: `max_relative_positions`, or `max_position_embeddings`
    /// when that is below 1.
    pub fn relative_range(&self) -> usize {
        usize::try_from(self.max_relative_positions).ok().filter(|&r| r >= 1).unwrap_or(self.max_position_embeddings)
    }

    /// Whether `pos_att_type` has the content-to-position term.
    pub fn c2p(&self) -> bool {
        self.pos_att_type.iter().any(|t| t == "c2p")
    }

    /// Whether `pos_att_type` has the position-to-content term.
    pub fn p2c(&self) -> bool {
        self.pos_att_type.iter().any(|t| t == "p2c")
    }

    /// Size of the token embeddings before `embed_proj`.
    pub fn embedding_dim(&self) -> usize {
        self.embedding_size.unwrap_or(self.hidden_size)
    }

    /// The problem with this config, as `(key, message)`, if any (shared by DeBERTa-v2).
    pub(crate) fn check(&self) -> Option<(&'static str, String)> {
        let (hidden, heads) = (self.hidden_size, self.num_attention_heads);
        if heads == 0 || hidden % heads != 0 {
            return Some(("num_attention_heads", format!("{heads} heads do not divide the hidden size {hidden}")));
        }
        for (key, act) in [("hidden_act", &self.hidden_act), ("pooler_hidden_act", &self.pooler_hidden_act)] {
            if let Some(problem) = activation_problem(act) {
                return Some((key, problem));
            }
        }
        if let Some(size) = self.pooler_hidden_size.filter(|&s| s != hidden) {
            return Some((
                "pooler_hidden_size",
                format!("{size} differs from hidden_size {hidden} (transformers' ContextPooler needs them equal)"),
            ));
        }
        if self.talking_head {
            return Some(("talking_head", "talking-heads attention is not supported".into()));
        }
        if let Some(bad) = self.pos_att_type.iter().find(|t| !POS_ATT_TYPES.contains(&t.as_str())) {
            return Some(("pos_att_type", format!("{bad:?} is not one of {}", POS_ATT_TYPES.join(", "))));
        }
        if self.relative_attention && self.relative_range() == 0 {
            return Some(("max_relative_positions", "relative attention needs a range of at least 1".into()));
        }
        if self.embedding_dim() == 0 {
            return Some(("embedding_size", "must be at least 1".into()));
        }
        None
    }
}

/// The relative attention terms transformers accepts (`p2p` is accepted and ignored, as there).
const POS_ATT_TYPES: [&str; 3] = ["c2p", "p2c", "p2p"];

/// `pos_att_type`: `null`, a list of names, or the legacy `|`-separated string (lower-cased and
/// trimmed, as transformers' config does).
pub(crate) fn pos_att_type<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Form {
        Text(String),
        List(Vec<String>),
    }
    Ok(match <Option<Form> as serde::Deserialize>::deserialize(d)? {
        None => Vec::new(),
        Some(Form::List(list)) => list,
        Some(Form::Text(text)) => text.to_lowercase().split('|').map(|t| t.trim().to_owned()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pos_att_type_as_string_list_or_null() {
        let parse = |json: &str| serde_json::from_str::<DebertaConfig>(json).unwrap().pos_att_type;
        assert_eq!(parse(r#"{"pos_att_type": "C2P | p2c"}"#), ["c2p", "p2c"]);
        assert_eq!(parse(r#"{"pos_att_type": ["p2c", "c2p"]}"#), ["p2c", "c2p"]);
        assert!(parse(r#"{"pos_att_type": null}"#).is_empty());
        assert!(parse("{}").is_empty());
    }

    #[test]
    fn relative_range_defaults_to_positions() {
        let c = DebertaConfig { max_relative_positions: -1, max_position_embeddings: 64, ..Default::default() };
        assert_eq!(c.relative_range(), 64);
        assert_eq!(DebertaConfig { max_relative_positions: 6, ..c }.relative_range(), 6);
    }
}
