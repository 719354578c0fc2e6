//! DeBERTa checkpoint keys.
//!
//! | Hugging Face key | Burn path | owner / layout |
//! |---|---|---|
//! | `deberta.embeddings.{word,position,token_type}_embeddings.weight` | same | `nn.Embedding`; position and token-type embeddings only when the config has them |
//! | `deberta.embeddings.embed_proj.weight` | same | `nn.Linear` (no bias), only when `embedding_size != hidden_size`: transposed |
//! | `deberta.embeddings.LayerNorm.{weight,bias}` | `deberta.embeddings.layer_norm.{gamma,beta}` | `DebertaLayerNorm`: as is |
//! | `deberta.encoder.layer.N.attention.self.{q_bias,v_bias}` | `...attention.self_attn.{q_bias,v_bias}` | bare `nn.Parameter`s of `DisentangledSelfAttention`: as is |
//! | `deberta.encoder.layer.N.attention.self.in_proj.weight` (q, k, v per head) | `...self_attn.in_proj.weight` | `nn.Linear` (no bias): transposed |
//! | `deberta.encoder.layer.N.attention.self.pos_proj.weight` (`c2p`) | same under `self_attn` | `nn.Linear` (no bias): transposed |
//! | `deberta.encoder.layer.N.attention.self.pos_q_proj.{weight,bias}` (`p2c`) | same under `self_attn` | `nn.Linear`: transposed |
//! | `deberta.encoder.layer.N.attention.output.dense.*`, `.intermediate.dense.*`, `.output.dense.*` | same | `nn.Linear`: transposed |
//! | `deberta.encoder.layer.N.{attention.output,output}.LayerNorm.*` | `...layer_norm.{gamma,beta}` | `DebertaLayerNorm`: as is |
//! | `deberta.encoder.rel_embeddings.weight` | same | `nn.Embedding` `[2 * max_relative_positions, hidden]`, when `relative_attention` |
//! | `pooler.dense.*` | same | `nn.Linear` (`ContextPooler`); initialised if absent |
//! | `classifier.{weight,bias}` | same | `nn.Linear`; initialised if absent (N(0, initializer_range), zero bias) |
//!
//! Base-model checkpoints (`DebertaModel`) omit the `deberta.` prefix. Ignored by name:
//! `*position_ids` (a buffer), leftover `*position_embeddings.weight` (transformers'
//! `_keys_to_ignore_on_load_unexpected`: checkpoints that store them although
//! `position_biased_input` is off) and the pretraining heads `lm_predictions.*`, `cls.*` and
//! `mask_predictions.*`.

use crate::load::{BERT_RENAMES, HfNaming, Init};

/// DeBERTa's naming (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct DebertaNaming {
    /// `initializer_range` of the config, for parameters the checkpoint lacks.
    pub initializer_range: f64,
}

impl HfNaming for DebertaNaming {
    fn model_name(&self) -> &'static str {
        "deberta"
    }

    fn base_prefix(&self) -> &'static str {
        "deberta."
    }

    fn head_weight_key(&self) -> &'static str {
        "classifier.weight"
    }

    fn renames(&self) -> &'static [(&'static str, &'static str)] {
        BERT_RENAMES
    }

    fn init_if_missing(&self, key: &str) -> Option<Init> {
        deberta_init_if_missing(key, self.initializer_range)
    }

    fn ignored(&self, key: &str) -> bool {
        deberta_ignored(key)
    }
}

/// What DeBERTa (v1 or v2) initialises when a checkpoint lacks it: the pooler and classifier.
pub(crate) fn deberta_init_if_missing(key: &str, initializer_range: f64) -> Option<Init> {
    let optional = key.starts_with("classifier.") || key.starts_with("pooler.");
    optional.then(|| Init::normal_or_zero_bias(key, initializer_range))
}

/// Checkpoint keys DeBERTa (v1 or v2) loads deliberately without using them.
pub(crate) fn deberta_ignored(key: &str) -> bool {
    key.ends_with("position_ids")
        || key.ends_with("position_embeddings.weight")
        || ["lm_predictions.", "cls.", "mask_predictions."].iter().any(|p| key.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::HfModule;

    #[test]
    fn key_map() {
        let n = DebertaNaming { initializer_range: 0.02 };
        let p = n.hf_param("deberta.encoder.layer.3.attention.self_attn.in_proj.weight", HfModule::Linear);
        assert_eq!(p.key, "deberta.encoder.layer.3.attention.self.in_proj.weight");
        assert!(p.transposed());
        let p = n.hf_param("deberta.encoder.layer.3.attention.self_attn.q_bias", HfModule::Parameter);
        assert_eq!((p.key.as_str(), p.module), ("deberta.encoder.layer.3.attention.self.q_bias", HfModule::Parameter));
        assert!(!p.transposed());
        let p = n.hf_param("deberta.embeddings.layer_norm.gamma", HfModule::LayerNorm);
        assert_eq!((p.key.as_str(), p.module), ("deberta.embeddings.LayerNorm.weight", HfModule::LayerNorm));
        assert_eq!(n.hf_param("deberta.encoder.conv.layer_norm.beta", HfModule::LayerNorm).key, "deberta.encoder.conv.LayerNorm.bias");
        assert_eq!(n.hf_param("pooler.dense.bias", HfModule::Linear).init_if_missing, Some(Init::Zeros));
        assert_eq!(n.hf_param("classifier.weight", HfModule::Linear).init_if_missing, Some(Init::Normal(0.02)));
        assert_eq!(n.hf_param("deberta.encoder.layer.0.output.dense.weight", HfModule::Linear).init_if_missing, None);
        assert!(n.ignored("deberta.embeddings.position_embeddings.weight") && n.ignored("lm_predictions.lm_head.bias"));
        assert!(!n.ignored("deberta.encoder.rel_embeddings.weight"));
    }
}
