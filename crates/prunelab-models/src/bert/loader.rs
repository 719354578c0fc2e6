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

use crate::load::{HfModule, HfNaming, HfParam, Init};

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

    fn hf_param(&self, burn_path: &str) -> HfParam {
        let key = burn_path
            .replace(".self_attn.", ".self.")
            .replace("layer_norm.gamma", "LayerNorm.weight")
            .replace("layer_norm.beta", "LayerNorm.bias");
        let module = if key.contains("LayerNorm.") {
            HfModule::LayerNorm
        } else if key.starts_with("bert.embeddings.") {
            HfModule::Embedding
        } else {
            HfModule::Linear
        };
        let optional = key.starts_with("classifier.") || key.starts_with("bert.pooler.");
        let init_if_missing =
            optional.then(|| if key.ends_with(".bias") { Init::Zeros } else { Init::Normal(self.initializer_range) });
        HfParam { key, module, init_if_missing }
    }

    fn ignored(&self, key: &str) -> bool {
        key.ends_with("position_ids") || key.starts_with("cls.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_map() {
        let n = BertNaming { initializer_range: 0.02 };
        let p = n.hf_param("bert.encoder.layer.3.attention.self_attn.query.weight");
        assert_eq!(p.key, "bert.encoder.layer.3.attention.self.query.weight");
        assert!(p.transposed());
        let p = n.hf_param("bert.encoder.layer.0.output.layer_norm.gamma");
        assert_eq!((p.key.as_str(), p.module), ("bert.encoder.layer.0.output.LayerNorm.weight", HfModule::LayerNorm));
        assert!(!n.hf_param("bert.embeddings.word_embeddings.weight").transposed());
        assert_eq!(n.hf_param("classifier.bias").init_if_missing, Some(Init::Zeros));
        assert_eq!(n.hf_param("bert.encoder.layer.0.output.dense.weight").init_if_missing, None);
    }
}
