//! RoBERTa checkpoint keys.
//!
//! | Hugging Face key | Burn path | layout |
//! |---|---|---|
//! | `roberta.embeddings.{word,position,token_type}_embeddings.weight` | same | as is |
//! | `roberta.embeddings.LayerNorm.*`, `...{attention.output,output}.LayerNorm.*` | `...layer_norm.{gamma,beta}` | as is |
//! | `roberta.encoder.layer.N.attention.self.{query,key,value}.*` | `...attention.self_attn.*` | `nn.Linear`: transposed |
//! | `roberta.encoder.layer.N.attention.output.dense.*`, `.intermediate.dense.*`, `.output.dense.*` | same | `nn.Linear`: transposed |
//! | `classifier.{dense,out_proj}.*` | same | `nn.Linear`; initialised if absent (N(0, initializer_range), zero bias) |
//!
//! Base-model checkpoints omit the `roberta.` prefix. Ignored by name: `*position_ids` (a
//! buffer), `lm_head.*` (the masked-LM head of the pretrained checkpoints) and `*pooler.*` (the
//! classifier is built without the pooler, as transformers builds it).

use crate::load::{BERT_RENAMES, HfNaming, Init};

/// The naming of RoBERTa and the models built on it (Longformer): BERT's renames under the
/// model's own prefix, RoBERTa's classification head, the masked-LM head and pooler ignored.
#[derive(Debug, Clone, Copy)]
pub struct RobertaNaming {
    /// The model's name in messages (`roberta`, `longformer`).
    pub model: &'static str,
    /// Its base-model prefix (`roberta.`, `longformer.`).
    pub prefix: &'static str,
    /// `initializer_range` of the config, for a missing head.
    pub initializer_range: f64,
}

impl RobertaNaming {
    /// RoBERTa's.
    pub fn roberta(initializer_range: f64) -> Self {
        Self { model: "roberta", prefix: "roberta.", initializer_range }
    }
}

impl HfNaming for RobertaNaming {
    fn model_name(&self) -> &'static str {
        self.model
    }

    fn base_prefix(&self) -> &'static str {
        self.prefix
    }

    fn head_weight_key(&self) -> &'static str {
        "classifier.out_proj.weight"
    }

    fn renames(&self) -> &'static [(&'static str, &'static str)] {
        BERT_RENAMES
    }

    fn init_if_missing(&self, key: &str) -> Option<Init> {
        key.starts_with("classifier.").then(|| Init::normal_or_zero_bias(key, self.initializer_range))
    }

    fn ignored(&self, key: &str) -> bool {
        let key = key.strip_prefix(self.base_prefix()).unwrap_or(key);
        key.ends_with("position_ids") || key.starts_with("lm_head.") || key.starts_with("pooler.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::HfModule;

    #[test]
    fn key_map() {
        let n = RobertaNaming::roberta(0.02);
        let p = n.hf_param("roberta.encoder.layer.1.attention.self_attn.value.weight", HfModule::Linear);
        assert_eq!(p.key, "roberta.encoder.layer.1.attention.self.value.weight");
        assert!(p.transposed() && p.init_if_missing.is_none());
        let p = n.hf_param("roberta.embeddings.layer_norm.gamma", HfModule::LayerNorm);
        assert_eq!((p.key.as_str(), p.module), ("roberta.embeddings.LayerNorm.weight", HfModule::LayerNorm));
        assert_eq!(n.hf_param("classifier.out_proj.bias", HfModule::Linear).init_if_missing, Some(Init::Zeros));
        assert!(n.ignored("roberta.pooler.dense.weight") && n.ignored("lm_head.decoder.weight"));
        assert!(n.ignored("embeddings.position_ids") && !n.ignored("classifier.dense.weight"));
    }
}
