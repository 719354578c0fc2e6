//! BERT checkpoint keys.
//!
//! | Hugging Face key | Burn path | layout |
//! |---|---|---|
//! | `bert.embeddings.{word,position,token_type}_embeddings.weight` | same | as is |
//! | `bert.embeddings.LayerNorm.{weight,bias}` | `bert.embeddings.layer_norm.{gamma,beta}` | as is |
//! | `bert.encoder.layer.N.attention.self.{query,key,value}.{weight,bias}` | `...attention.self_attn.{query,key,value}.{weight,bias}` | `nn.Linear`: transposed |
//! | `bert.encoder.layer.N.attention.output.dense.*`, `.intermediate.dense.*`, `.output.dense.*` | same | `nn.Linear`: transposed |
//! | `bert.encoder.layer.N.{attention.output,output}.LayerNorm.*` | `...layer_norm.{gamma,beta}` | as is |
//! | `bert.pooler.dense.*` | same | `nn.Linear`; initialised if absent |
//! | `classifier.{weight,bias}` | same | `nn.Linear`; initialised if absent (N(0, initializer_range), zero bias) |
//!
//! Base-model checkpoints (`BertModel`, e.g. all-MiniLM-L6-v2) omit the `bert.` prefix; old ones
//! name LayerNorm parameters `gamma`/`beta`. Ignored by name: `*position_ids` (a buffer) and
//! `cls.*` (pretraining heads).

use crate::load::{BERT_RENAMES, HfNaming, Init};

/// BERT's naming (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct BertNaming {
    /// `initializer_range` of the config, for parameters the checkpoint lacks.
    pub initializer_range: f64,
}

impl HfNaming for BertNaming {
    fn model_name(&self) -> &'static str {
        "bert"
    }

    fn base_prefix(&self) -> &'static str {
        "bert."
    }

    fn head_weight_key(&self) -> &'static str {
        "classifier.weight"
    }

    fn renames(&self) -> &'static [(&'static str, &'static str)] {
        BERT_RENAMES
    }

    fn init_if_missing(&self, key: &str) -> Option<Init> {
        let optional = key.starts_with("classifier.") || key.starts_with("bert.pooler.");
        optional.then(|| Init::normal_or_zero_bias(key, self.initializer_range))
    }

    fn ignored(&self, key: &str) -> bool {
        key.ends_with("position_ids") || key.starts_with("cls.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::HfModule;

    #[test]
    fn key_map() {
        let n = BertNaming { initializer_range: 0.02 };
        let p = n.hf_param("bert.encoder.layer.3.attention.self_attn.query.weight", HfModule::Linear);
        assert_eq!(p.key, "bert.encoder.layer.3.attention.self.query.weight");
        assert!(p.transposed());
        let p = n.hf_param("bert.encoder.layer.0.output.layer_norm.gamma", HfModule::LayerNorm);
        assert_eq!((p.key.as_str(), p.module), ("bert.encoder.layer.0.output.LayerNorm.weight", HfModule::LayerNorm));
        assert!(!n.hf_param("bert.embeddings.word_embeddings.weight", HfModule::Embedding).transposed());
        assert_eq!(n.hf_param("classifier.bias", HfModule::Linear).init_if_missing, Some(Init::Zeros));
        assert_eq!(n.hf_param("bert.encoder.layer.0.output.dense.weight", HfModule::Linear).init_if_missing, None);
    }
}
