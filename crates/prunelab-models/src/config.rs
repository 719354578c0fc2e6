//! Reading a Hugging Face `config.json` and dispatching on its `model_type`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::bert::BertConfig;
use crate::deberta::DebertaConfig;
use crate::deberta_v2::DebertaV2Config;
use crate::error::{Error, Result};
use crate::gpt2::Gpt2Config;
use crate::led::LedConfig;
use crate::longformer::LongformerConfig;

/// The `model_type`s prunelab implements.
pub const SUPPORTED_MODEL_TYPES: [&str; 6] = ["bert", "gpt2", "deberta", "deberta-v2", "longformer", "led"];

/// The largest size of one dimension (hidden, inner, vocabulary, positions, window) a config may
/// give: larger values are typos or garbage, and would overflow or exhaust memory later.
pub const MAX_DIM: usize = 1 << 24;
/// The most layers one stack may have.
pub const MAX_LAYERS: usize = 1 << 12;
/// The most parameters a config may describe (about 68.7 billion, 275 GB in f32).
pub const MAX_PARAMETERS: u128 = 1 << 36;

/// A parsed `config.json` of a supported architecture.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelConfig {
    /// `model_type: bert`.
    Bert(BertConfig),
    /// `model_type: gpt2`.
    Gpt2(Gpt2Config),
    /// `model_type: longformer`.
    Longformer(LongformerConfig),
    /// `model_type: led`.
    Led(LedConfig),
    /// `model_type: deberta`.
    Deberta(DebertaConfig),
    /// `model_type: deberta-v2` (DeBERTa-v2 and v3).
    DebertaV2(DebertaV2Config),
}

/// Label fields every Hugging Face config may carry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct LabelFields {
    /// `id2label`: class names by id (its length is the declared number of labels).
    #[serde(default)]
    pub id2label: Option<BTreeMap<String, String>>,
    /// `num_labels`, written by some tools instead of `id2label`.
    #[serde(default)]
    pub num_labels: Option<usize>,
}

impl LabelFields {
    /// The number of labels the config declares, if any.
    pub fn declared(&self) -> Option<usize> {
        self.id2label.as_ref().map(BTreeMap::len).or(self.num_labels)
    }
}

impl ModelConfig {
    /// Read and validate a `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.into(), source })?;
        Self::from_json(&text, path)
    }

    /// Parse and validate the text of a `config.json`; `path` is used in error messages.
    pub fn from_json(text: &str, path: &Path) -> Result<Self> {
        let json_err = |source| Error::Json { path: path.into(), source };
        let value: serde_json::Value = serde_json::from_str(text).map_err(json_err)?;
        let model_type = value.get("model_type").and_then(|v| v.as_str()).ok_or_else(|| Error::Config {
            path: path.into(),
            key: "model_type".into(),
            message: format!("missing or not a string (supported: {})", SUPPORTED_MODEL_TYPES.join(", ")),
        })?;
        let config = match model_type {
            "bert" => ModelConfig::Bert(serde_json::from_value(value.clone()).map_err(json_err)?),
            "gpt2" => ModelConfig::Gpt2(serde_json::from_value(value.clone()).map_err(json_err)?),
            "longformer" => ModelConfig::Longformer(serde_json::from_value(value.clone()).map_err(json_err)?),
            "led" => ModelConfig::Led(serde_json::from_value(value.clone()).map_err(json_err)?),
            "deberta" => ModelConfig::Deberta(serde_json::from_value(value.clone()).map_err(json_err)?),
            "deberta-v2" => ModelConfig::DebertaV2(serde_json::from_value(value.clone()).map_err(json_err)?),
            other => {
                return Err(Error::UnsupportedModelType {
                    path: path.into(),
                    found: other.into(),
                    supported: SUPPORTED_MODEL_TYPES.to_vec(),
                });
            }
        };
        config.validate(path)?;
        Ok(config)
    }

    /// The `model_type`.
    pub fn model_type(&self) -> &'static str {
        match self {
            ModelConfig::Bert(_) => "bert",
            ModelConfig::Gpt2(_) => "gpt2",
            ModelConfig::Longformer(_) => "longformer",
            ModelConfig::Led(_) => "led",
            ModelConfig::Deberta(_) => "deberta",
            ModelConfig::DebertaV2(_) => "deberta-v2",
        }
    }

    /// The main sizes, named as in the config: `(key, value)` pairs for display.
    pub fn summary(&self) -> Vec<(&'static str, usize)> {
        match self {
            ModelConfig::Bert(c) => vec![
                ("num_hidden_layers", c.num_hidden_layers),
                ("hidden_size", c.hidden_size),
                ("num_attention_heads", c.num_attention_heads),
                ("intermediate_size", c.intermediate_size),
                ("vocab_size", c.vocab_size),
                ("max_position_embeddings", c.max_position_embeddings),
            ],
            ModelConfig::Gpt2(c) => vec![
                ("n_layer", c.n_layer),
                ("n_embd", c.n_embd),
                ("n_head", c.n_head),
                ("n_inner", c.inner_dim()),
                ("vocab_size", c.vocab_size),
                ("n_positions", c.n_positions),
            ],
            ModelConfig::Longformer(c) => vec![
                ("num_hidden_layers", c.num_hidden_layers),
                ("hidden_size", c.hidden_size),
                ("num_attention_heads", c.num_attention_heads),
                ("intermediate_size", c.intermediate_size),
                ("vocab_size", c.vocab_size),
                ("max_position_embeddings", c.max_position_embeddings),
                (
                    "attention_window",
                    (0..c.num_hidden_layers).map(|i| c.attention_window.of_layer(i)).max().unwrap_or(0),
                ),
            ],
            ModelConfig::Led(c) => vec![
                ("encoder_layers", c.encoder_layers),
                ("decoder_layers", c.decoder_layers),
                ("d_model", c.d_model),
                ("encoder_attention_heads", c.encoder_attention_heads),
                ("decoder_attention_heads", c.decoder_attention_heads),
                ("encoder_ffn_dim", c.encoder_ffn_dim),
                ("decoder_ffn_dim", c.decoder_ffn_dim),
                ("vocab_size", c.vocab_size),
                ("max_encoder_position_embeddings", c.max_encoder_position_embeddings),
                ("max_decoder_position_embeddings", c.max_decoder_position_embeddings),
                // The largest window when they differ per layer (also for Longformer above).
                ("attention_window", (0..c.encoder_layers).map(|i| c.attention_window.of_layer(i)).max().unwrap_or(0)),
            ],
            ModelConfig::Deberta(c) => vec![
                ("num_hidden_layers", c.num_hidden_layers),
                ("hidden_size", c.hidden_size),
                ("num_attention_heads", c.num_attention_heads),
                ("intermediate_size", c.intermediate_size),
                ("vocab_size", c.vocab_size),
                ("max_position_embeddings", c.max_position_embeddings),
                ("max_relative_positions", c.relative_range()),
            ],
            ModelConfig::DebertaV2(c) => vec![
                ("num_hidden_layers", c.num_hidden_layers),
                ("hidden_size", c.hidden_size),
                ("num_attention_heads", c.num_attention_heads),
                ("intermediate_size", c.intermediate_size),
                ("vocab_size", c.vocab_size),
                ("max_position_embeddings", c.max_position_embeddings),
                ("position_buckets", c.buckets().unwrap_or(0)),
            ],
        }
    }

    /// The JSON key of the hidden size.
    fn hidden_key(&self) -> &'static str {
        match self {
            ModelConfig::Bert(_) | ModelConfig::Longformer(_) | ModelConfig::Deberta(_) | ModelConfig::DebertaV2(_) => {
                "hidden_size"
            }
            ModelConfig::Gpt2(_) => "n_embd",
            ModelConfig::Led(_) => "d_model",
        }
    }

    /// The JSON key of the feed-forward inner size (`intermediate_size`, `n_inner`).
    pub fn inner_size_key(&self) -> &'static str {
        match self {
            ModelConfig::Bert(_) | ModelConfig::Deberta(_) | ModelConfig::DebertaV2(_) => "intermediate_size",
            ModelConfig::Gpt2(_) => "n_inner",
            ModelConfig::Longformer(_) => "intermediate_size",
            ModelConfig::Led(_) => "encoder_ffn_dim",
        }
    }

    /// Head dimension (hidden size / configured heads).
    pub fn head_dim(&self) -> usize {
        match self {
            ModelConfig::Bert(c) => c.hidden_size / c.num_attention_heads,
            ModelConfig::Gpt2(c) => c.n_embd / c.n_head,
            ModelConfig::Longformer(c) => c.hidden_size / c.num_attention_heads,
            ModelConfig::Led(c) => c.d_model / c.encoder_attention_heads,
            ModelConfig::Deberta(c) => c.hidden_size / c.num_attention_heads,
            ModelConfig::DebertaV2(c) => c.hidden_size / c.num_attention_heads,
        }
    }

    /// Attention heads per layer, after any structured pruning.
    pub fn heads_per_layer(&self) -> Vec<usize> {
        match self {
            ModelConfig::Bert(c) => (0..c.num_hidden_layers).map(|i| c.heads_in_layer(i)).collect(),
            ModelConfig::Gpt2(c) => (0..c.n_layer).map(|i| c.heads_in_layer(i)).collect(),
            ModelConfig::Longformer(c) => (0..c.num_hidden_layers).map(|i| c.heads_in_layer(i)).collect(),
            ModelConfig::Led(c) => {
                [vec![c.encoder_attention_heads; c.encoder_layers], vec![c.decoder_attention_heads; c.decoder_layers]]
                    .concat()
            }
            ModelConfig::Deberta(c) => vec![c.num_attention_heads; c.num_hidden_layers],
            ModelConfig::DebertaV2(c) => (0..c.num_hidden_layers).map(|i| c.heads_in_layer(i)).collect(),
        }
    }

    /// The checkpoint key of the classification head's weight.
    pub fn head_weight_key(&self) -> &'static str {
        match self {
            ModelConfig::Bert(_) | ModelConfig::Deberta(_) | ModelConfig::DebertaV2(_) => "classifier.weight",
            ModelConfig::Gpt2(_) => "score.weight",
            ModelConfig::Longformer(_) => "classifier.out_proj.weight",
            ModelConfig::Led(_) => "classification_head.out_proj.weight",
        }
    }

    /// The prefix of base-model keys inside a task model (`bert.`, `transformer.`, `deberta.`).
    pub fn base_prefix(&self) -> &'static str {
        match self {
            ModelConfig::Bert(_) => "bert.",
            ModelConfig::Gpt2(_) => "transformer.",
            ModelConfig::Longformer(_) => "longformer.",
            ModelConfig::Led(_) => "led.",
            ModelConfig::Deberta(_) | ModelConfig::DebertaV2(_) => "deberta.",
        }
    }

    /// The number of labels the config declares, if any.
    pub fn declared_num_labels(&self) -> Option<usize> {
        match self {
            ModelConfig::Bert(c) => c.labels.declared(),
            ModelConfig::Gpt2(c) => c.labels.declared(),
            ModelConfig::Longformer(c) => c.labels.declared(),
            ModelConfig::Led(c) => c.labels.declared(),
            ModelConfig::Deberta(c) => c.labels.declared(),
            ModelConfig::DebertaV2(c) => c.labels.declared(),
        }
    }

    /// Sizes as written, before anything is computed from them: `(key, value, is a layer count)`.
    fn raw_sizes(&self) -> Vec<(&'static str, usize, bool)> {
        let windows = |w: &crate::longformer::AttentionWindow| match w {
            crate::longformer::AttentionWindow::Uniform(w) => vec![("attention_window", *w, false)],
            crate::longformer::AttentionWindow::PerLayer(ws) => {
                ws.iter().map(|w| ("attention_window", *w, false)).collect()
            }
        };
        match self {
            ModelConfig::Bert(c) => vec![
                ("vocab_size", c.vocab_size, false),
                ("hidden_size", c.hidden_size, false),
                ("intermediate_size", c.intermediate_size, false),
                ("max_position_embeddings", c.max_position_embeddings, false),
                ("type_vocab_size", c.type_vocab_size, false),
                ("num_hidden_layers", c.num_hidden_layers, true),
            ],
            ModelConfig::Gpt2(c) => {
                let mut sizes = vec![
                    ("vocab_size", c.vocab_size, false),
                    ("n_positions", c.n_positions, false),
                    ("n_embd", c.n_embd, false),
                    ("n_layer", c.n_layer, true),
                ];
                sizes.extend(c.n_inner.map(|n| ("n_inner", n, false)));
                sizes
            }
            ModelConfig::Deberta(c) => {
                let mut sizes = vec![
                    ("vocab_size", c.vocab_size, false),
                    ("hidden_size", c.hidden_size, false),
                    ("intermediate_size", c.intermediate_size, false),
                    ("max_position_embeddings", c.max_position_embeddings, false),
                    ("num_hidden_layers", c.num_hidden_layers, true),
                ];
                sizes.extend(c.embedding_size.map(|n| ("embedding_size", n, false)));
                sizes.extend(c.pooler_hidden_size.map(|n| ("pooler_hidden_size", n, false)));
                sizes
            }
            ModelConfig::DebertaV2(c) => {
                let mut sizes = vec![
                    ("vocab_size", c.vocab_size, false),
                    ("hidden_size", c.hidden_size, false),
                    ("intermediate_size", c.intermediate_size, false),
                    ("max_position_embeddings", c.max_position_embeddings, false),
                    ("num_hidden_layers", c.num_hidden_layers, true),
                ];
                sizes.extend(c.embedding_size.map(|n| ("embedding_size", n, false)));
                sizes.extend(c.pooler_hidden_size.map(|n| ("pooler_hidden_size", n, false)));
                sizes
            }
            ModelConfig::Longformer(c) => [
                vec![
                    ("vocab_size", c.vocab_size, false),
                    ("hidden_size", c.hidden_size, false),
                    ("intermediate_size", c.intermediate_size, false),
                    ("max_position_embeddings", c.max_position_embeddings, false),
                    ("type_vocab_size", c.type_vocab_size, false),
                    ("num_hidden_layers", c.num_hidden_layers, true),
                ],
                windows(&c.attention_window),
            ]
            .concat(),
            ModelConfig::Led(c) => [
                vec![
                    ("vocab_size", c.vocab_size, false),
                    ("d_model", c.d_model, false),
                    ("encoder_ffn_dim", c.encoder_ffn_dim, false),
                    ("decoder_ffn_dim", c.decoder_ffn_dim, false),
                    ("max_encoder_position_embeddings", c.max_encoder_position_embeddings, false),
                    ("max_decoder_position_embeddings", c.max_decoder_position_embeddings, false),
                    ("encoder_layers", c.encoder_layers, true),
                    ("decoder_layers", c.decoder_layers, true),
                ],
                windows(&c.attention_window),
            ]
            .concat(),
        }
    }

    /// About how many parameters the sizes make (embeddings, and per layer four attention
    /// projections, Longformer's and LED's extra ones counted generously, and the MLP). Every
    /// parsed config has its sizes within [`MAX_DIM`] and [`MAX_LAYERS`] (checked before this is
    /// called), so it cannot overflow.
    pub fn approx_parameters(&self) -> u128 {
        let n = |v: usize| v as u128;
        let stack =
            |layers: usize, hidden: usize, inner: usize| n(layers) * (8 * n(hidden).pow(2) + 2 * n(hidden) * n(inner));
        match self {
            ModelConfig::Bert(c) => {
                n(c.vocab_size + c.max_position_embeddings + c.type_vocab_size) * n(c.hidden_size)
                    + stack(c.num_hidden_layers, c.hidden_size, c.intermediate_size)
            }
            ModelConfig::Gpt2(c) => {
                n(c.vocab_size + c.n_positions) * n(c.n_embd) + stack(c.n_layer, c.n_embd, c.inner_dim())
            }
            ModelConfig::Longformer(c) => {
                n(c.vocab_size + c.max_position_embeddings + c.type_vocab_size) * n(c.hidden_size)
                    + stack(c.num_hidden_layers, c.hidden_size, c.intermediate_size)
            }
            ModelConfig::Deberta(c) => {
                let embedding = n(c.embedding_size.unwrap_or(c.hidden_size));
                (n(c.vocab_size) + n(c.max_position_embeddings) + n(c.type_vocab_size)) * embedding
                    + stack(c.num_hidden_layers, c.hidden_size, c.intermediate_size)
            }
            ModelConfig::DebertaV2(c) => {
                let embedding = n(c.embedding_size.unwrap_or(c.hidden_size));
                (n(c.vocab_size) + n(c.max_position_embeddings) + n(c.type_vocab_size)) * embedding
                    + stack(c.num_hidden_layers, c.hidden_size, c.intermediate_size)
            }
            ModelConfig::Led(c) => {
                n(c.vocab_size + c.max_encoder_position_embeddings + c.max_decoder_position_embeddings) * n(c.d_model)
                    + stack(c.encoder_layers, c.d_model, c.encoder_ffn_dim)
                    + stack(c.decoder_layers, c.d_model, c.decoder_ffn_dim)
            }
        }
    }

    fn validate(&self, path: &Path) -> Result<()> {
        match self.problem() {
            Some((key, message)) => Err(Error::Config { path: path.into(), key: key.into(), message }),
            None => Ok(()),
        }
    }

    /// The first unusable value, as `(key, message)`.
    fn problem(&self) -> Option<(&'static str, String)> {
        // Sizes first: everything below computes with them.
        for (key, value, layers) in self.raw_sizes() {
            if layers && value > MAX_LAYERS {
                return Some((key, format!("{value} layers are more than prunelab accepts ({MAX_LAYERS})")));
            }
            if !layers && value == 0 {
                return Some((key, "must be at least 1".into()));
            }
            if !layers && value > MAX_DIM {
                return Some((key, format!("{value} is more than prunelab accepts for one dimension ({MAX_DIM})")));
            }
        }
        let parameters = self.approx_parameters();
        if parameters > MAX_PARAMETERS {
            return Some((
                self.hidden_key(),
                format!("the sizes make about {parameters} parameters, more than prunelab accepts ({MAX_PARAMETERS})"),
            ));
        }
        let (hidden, heads, act_key, act, layers, kept) = match self {
            ModelConfig::Bert(c) => {
                if c.position_embedding_type != "absolute" {
                    return Some((
                        "position_embedding_type",
                        format!("{:?} is not supported (only \"absolute\")", c.position_embedding_type),
                    ));
                }
                (
                    c.hidden_size,
                    c.num_attention_heads,
                    "hidden_act",
                    &c.hidden_act,
                    c.num_hidden_layers,
                    &c.prunelab_heads,
                )
            }
            ModelConfig::Gpt2(c) => {
                (c.n_embd, c.n_head, "activation_function", &c.activation_function, c.n_layer, &c.prunelab_heads)
            }
            ModelConfig::Deberta(c) => return c.problem(),
            ModelConfig::DebertaV2(c) => return c.problem(),
            ModelConfig::Longformer(c) => {
                if let Err(m) = c.attention_window.check(c.num_hidden_layers) {
                    return Some(("attention_window", m));
                }
                let Some(pad) = c.pad_token_id.map(|p| p as usize) else {
                    return Some(("pad_token_id", "is needed (positions count from it)".into()));
                };
                if c.max_position_embeddings <= pad + 1 {
                    return Some((
                        "max_position_embeddings",
                        format!("{} leaves no position after the padding id {pad}", c.max_position_embeddings),
                    ));
                }
                (
                    c.hidden_size,
                    c.num_attention_heads,
                    "hidden_act",
                    &c.hidden_act,
                    c.num_hidden_layers,
                    &c.prunelab_heads,
                )
            }
            ModelConfig::Led(c) => {
                if let Err(m) = c.attention_window.check(c.encoder_layers) {
                    return Some(("attention_window", m));
                }
                if let Err((key, m)) = c.special_ids() {
                    return Some((key, m.into()));
                }
                let heads = c.decoder_attention_heads;
                if heads == 0 || c.d_model % heads != 0 {
                    return Some((
                        "decoder_attention_heads",
                        format!("{heads} heads do not divide the hidden size {}", c.d_model),
                    ));
                }
                (c.d_model, c.encoder_attention_heads, "activation_function", &c.activation_function, 0, &None)
            }
        };
        if heads == 0 || hidden % heads != 0 {
            return Some(("num_attention_heads", format!("{heads} heads do not divide the hidden size {hidden}")));
        }
        if let Some(kept) = kept
            && (kept.len() != layers || kept.iter().any(|&k| k == 0 || k > heads))
        {
            return Some(("prunelab_heads", format!("needs {layers} values in 1..={heads}, got {kept:?}")));
        }
        crate::layers::activation_problem(act).map(|message| (act_key, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ModelConfig> {
        ModelConfig::from_json(text, Path::new("config.json"))
    }

    #[test]
    fn unknown_model_type_lists_the_supported_ones() {
        let err = parse(r#"{"model_type": "t5"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "config.json: model_type \"t5\" is not supported (supported: bert, gpt2, deberta, deberta-v2, longformer, led)"
        );
        let err = parse(r#"{"hidden_size": 3}"#).unwrap_err();
        assert!(err.to_string().starts_with("config.json: key \"model_type\": missing"), "{err}");
    }

    #[test]
    fn defaults_follow_transformers() {
        let ModelConfig::Gpt2(c) = parse(r#"{"model_type": "gpt2"}"#).unwrap() else { panic!() };
        assert_eq!((c.n_embd, c.n_layer, c.n_head, c.n_positions, c.vocab_size), (768, 12, 12, 1024, 50257));
        assert_eq!(c.inner_dim(), 3072);
        assert_eq!(c.pad_token_id(), 50256, "pad falls back to eos");
        let ModelConfig::Bert(c) = parse(r#"{"model_type": "bert"}"#).unwrap() else { panic!() };
        assert_eq!((c.hidden_size, c.num_hidden_layers, c.intermediate_size, c.layer_norm_eps), (768, 12, 3072, 1e-12));
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = parse(r#"{"model_type": "bert", "hidden_act": "mish"}"#).unwrap_err();
        assert!(err.to_string().starts_with("config.json: key \"hidden_act\": \"mish\" is not supported"), "{err}");
        let err = parse(r#"{"model_type": "gpt2", "n_embd": 10, "n_head": 4}"#).unwrap_err();
        assert!(
            err.to_string().contains("key \"num_attention_heads\": 4 heads do not divide the hidden size 10"),
            "{err}"
        );
        let err = parse(r#"{"model_type": "bert", "hidden_size": "big"}"#).unwrap_err();
        assert!(err.to_string().starts_with("config.json: invalid type"), "{err}");
    }

    /// Found while fuzzing (`fuzz/`, target `model_config`, whose structured mode reaches it in a
    /// few thousand runs): sizes that overflowed (`n_embd` 2^62 in `4 * n_embd`) or asked for
    /// terabytes (10^14 layers) aborted instead of being refused.
    #[test]
    fn absurd_sizes_are_refused_by_key() {
        for (text, start) in [
            (
                r#"{"model_type": "gpt2", "n_embd": 4611686018427387904, "n_head": 1}"#,
                "key \"n_embd\": 4611686018427387904 is more than",
            ),
            (
                r#"{"model_type": "bert", "num_hidden_layers": 100000000000000}"#,
                "key \"num_hidden_layers\": 100000000000000 layers are more than",
            ),
            (r#"{"model_type": "bert", "hidden_size": 0}"#, "key \"hidden_size\": must be at least 1"),
            (
                r#"{"model_type": "led", "attention_window": [2, 4294967296], "encoder_layers": 2}"#,
                "key \"attention_window\": 4294967296 is more than",
            ),
            (
                r#"{"model_type": "bert", "vocab_size": 16777216, "hidden_size": 16777216, "num_attention_heads": 1}"#,
                "key \"hidden_size\": the sizes make about",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.starts_with(&format!("config.json: {start}")), "{text}: {err}");
        }
        let ModelConfig::Gpt2(c) =
            parse(r#"{"model_type": "gpt2", "n_layer": 4096, "n_embd": 64, "n_head": 1}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!(c.n_layer, MAX_LAYERS, "the limits themselves are accepted");
    }

    #[test]
    fn declared_labels() {
        let c = parse(r#"{"model_type": "bert", "id2label": {"0": "a", "1": "b", "2": "c"}}"#).unwrap();
        assert_eq!(c.declared_num_labels(), Some(3));
        assert_eq!(parse(r#"{"model_type": "gpt2"}"#).unwrap().declared_num_labels(), None);
    }
}
