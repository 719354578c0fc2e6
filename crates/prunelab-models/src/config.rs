//! Reading a Hugging Face `config.json`, dispatching on its `model_type` through the registry
//! ([`crate::registry`]), and the checks every architecture's sizes go through.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
pub use crate::{ModelConfig, SUPPORTED_MODEL_TYPES};

/// The largest size of one dimension (hidden, inner, vocabulary, positions, window) a config may
/// give: larger values are typos or garbage, and would overflow or exhaust memory later.
pub const MAX_DIM: usize = 1 << 24;
/// The most layers one stack may have.
pub const MAX_LAYERS: usize = 1 << 12;
/// The most parameters a config may describe (about 68.7 billion, 275 GB in f32).
pub const MAX_PARAMETERS: u128 = 1 << 36;

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
        let config = match Self::deserialize_as(model_type, value.clone()) {
            Some(parsed) => parsed.map_err(json_err)?,
            None => {
                return Err(Error::UnsupportedModelType {
                    path: path.into(),
                    found: model_type.into(),
                    supported: SUPPORTED_MODEL_TYPES.to_vec(),
                });
            }
        };
        config.validate(path)?;
        Ok(config)
    }

    /// The main sizes, named as in the config: `(key, value)` pairs for display.
    pub fn summary(&self) -> Vec<(&'static str, usize)> {
        self.architecture().summary()
    }

    /// The JSON key of the feed-forward inner size (`intermediate_size`, `n_inner`).
    pub fn inner_size_key(&self) -> &'static str {
        self.architecture().inner_size_key()
    }

    /// Head dimension (hidden size / configured heads).
    pub fn head_dim(&self) -> usize {
        self.architecture().head_dim()
    }

    /// Attention heads per layer, after any structured pruning.
    pub fn heads_per_layer(&self) -> Vec<usize> {
        self.architecture().heads_per_layer()
    }

    /// The checkpoint key of the classification head's weight (the naming's).
    pub fn head_weight_key(&self) -> &'static str {
        self.architecture().naming().head_weight_key()
    }

    /// The prefix of base-model keys inside a task model (`bert.`, `transformer.`, `deberta.`),
    /// the naming's.
    pub fn base_prefix(&self) -> &'static str {
        self.architecture().naming().base_prefix()
    }

    /// The number of labels the config declares, if any.
    pub fn declared_num_labels(&self) -> Option<usize> {
        self.architecture().labels().declared()
    }

    /// About how many parameters the sizes make (see [`crate::Architecture::approx_parameters`]).
    pub fn approx_parameters(&self) -> u128 {
        self.architecture().approx_parameters()
    }

    fn validate(&self, path: &Path) -> Result<()> {
        match self.problem() {
            Some((key, message)) => Err(Error::Config { path: path.into(), key: key.into(), message }),
            None => Ok(()),
        }
    }

    /// The first unusable value, as `(key, message)`: sizes first (everything else computes
    /// with them), then the architecture's own checks.
    fn problem(&self) -> Option<(&'static str, String)> {
        let arch = self.architecture();
        for size in arch.raw_sizes() {
            let (key, value) = (size.key, size.value);
            if size.layers && value > MAX_LAYERS {
                return Some((key, format!("{value} layers are more than prunelab accepts ({MAX_LAYERS})")));
            }
            if !size.layers && value == 0 {
                return Some((key, "must be at least 1".into()));
            }
            if !size.layers && value > MAX_DIM {
                return Some((key, format!("{value} is more than prunelab accepts for one dimension ({MAX_DIM})")));
            }
        }
        let parameters = arch.approx_parameters();
        if parameters > MAX_PARAMETERS {
            return Some((
                arch.hidden_key(),
                format!("the sizes make about {parameters} parameters, more than prunelab accepts ({MAX_PARAMETERS})"),
            ));
        }
        arch.problem()
    }
}

/// About how many parameters a stack of `layers` transformer layers makes: four attention
/// projections (Longformer's and LED's extra ones counted generously) and the MLP.
pub fn stack_parameters(layers: usize, hidden: usize, inner: usize) -> u128 {
    let n = |v: usize| v as u128;
    n(layers) * (8 * n(hidden).pow(2) + 2 * n(hidden) * n(inner))
}

/// The checks an encoder or decoder stack shares: heads divide the hidden size, structured
/// pruning's kept heads (`prunelab_heads`) fit, the activation is known.
#[derive(Debug, Clone, Copy)]
pub struct StackCheck<'a> {
    /// The hidden size.
    pub hidden: usize,
    /// Attention heads per layer, as configured.
    pub heads: usize,
    /// The activation's key and value.
    pub activation: (&'static str, &'a str),
    /// The number of layers `prunelab_heads` must cover.
    pub layers: usize,
    /// `prunelab_heads`, if given.
    pub kept: Option<&'a [usize]>,
}

impl StackCheck<'_> {
    /// The first problem, as `(key, message)`.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        let (hidden, heads, layers) = (self.hidden, self.heads, self.layers);
        if heads == 0 || hidden % heads != 0 {
            return Some(("num_attention_heads", format!("{heads} heads do not divide the hidden size {hidden}")));
        }
        if let Some(kept) = self.kept
            && (kept.len() != layers || kept.iter().any(|&k| k == 0 || k > heads))
        {
            return Some(("prunelab_heads", format!("needs {layers} values in 1..={heads}, got {kept:?}")));
        }
        let (key, act) = self.activation;
        crate::layers::activation_problem(act).map(|message| (key, message))
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
            "config.json: model_type \"t5\" is not supported (supported: bert, gpt2, longformer, led, deberta, deberta-v2, roberta)"
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
