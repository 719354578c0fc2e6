//! DeBERTa-v2 (and v3) checkpoint keys.
//!
//! | Hugging Face key | Burn path | owner / layout |
//! |---|---|---|
//! | `deberta.embeddings.{word,position,token_type}_embeddings.weight` | same | `nn.Embedding`; position and token-type embeddings only when the config has them (DeBERTa-v3 has neither) |
//! | `deberta.embeddings.embed_proj.weight` | same | `nn.Linear` (no bias), only when `embedding_size != hidden_size`: transposed |
//! | `deberta.embeddings.LayerNorm.{weight,bias}` | `deberta.embeddings.layer_norm.{gamma,beta}` | `nn.LayerNorm`: as is |
//! | `deberta.encoder.layer.N.attention.self.{query,key,value}_proj.{weight,bias}` | `...attention.self_attn.{query,key,value}_proj.*` | `nn.Linear`: transposed |
//! | `deberta.encoder.layer.N.attention.self.pos_key_proj.*` (`c2p`), `.pos_query_proj.*` (`p2c`) | same under `self_attn` | `nn.Linear`: transposed; only without `share_att_key` |
//! | `deberta.encoder.layer.N.attention.output.dense.*`, `.intermediate.dense.*`, `.output.dense.*` | same | `nn.Linear`: transposed |
//! | `deberta.encoder.layer.N.{attention.output,output}.LayerNorm.*` | `...layer_norm.{gamma,beta}` | `nn.LayerNorm`: as is |
//! | `deberta.encoder.rel_embeddings.weight` | same | `nn.Embedding` `[2 * span, hidden]` (span: `position_buckets`, else the relative range), when `relative_attention` |
//! | `deberta.encoder.LayerNorm.{weight,bias}` | `deberta.encoder.layer_norm.{gamma,beta}` | `nn.LayerNorm` of the relative embeddings (`norm_rel_ebd`) |
//! | `deberta.encoder.conv.conv.{weight,bias}` | same | `nn.Conv1d` `[hidden, hidden / conv_groups, conv_kernel_size]`: as is (Burn's layout) |
//! | `deberta.encoder.conv.LayerNorm.*` | `deberta.encoder.conv.layer_norm.{gamma,beta}` | `nn.LayerNorm`: as is |
//! | `pooler.dense.*` | same | `nn.Linear` (`ContextPooler`); initialised if absent |
//! | `classifier.{weight,bias}` | same | `nn.Linear`; initialised if absent (N(0, initializer_range), zero bias) |
//!
//! Base-model checkpoints (`DebertaV2Model`) omit the `deberta.` prefix. Ignored by name, as for
//! DeBERTa: `*position_ids`, leftover `*position_embeddings.weight`, and the pretraining heads
//! `lm_predictions.*`, `cls.*` and `mask_predictions.*` (DeBERTa-v3's checkpoints carry them).

use crate::deberta::{deberta_ignored, deberta_init_if_missing};
use crate::load::{BERT_RENAMES, HfNaming, Init};

/// DeBERTa-v2's naming (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct DebertaV2Naming {
    /// `initializer_range` of the config, for parameters the checkpoint lacks.
    pub initializer_range: f64,
}

impl HfNaming for DebertaV2Naming {
    fn model_name(&self) -> &'static str {
        "deberta-v2"
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::HfModule;

    #[test]
    fn key_map() {
        let n = DebertaV2Naming { initializer_range: 0.02 };
        let p = n.hf_param("deberta.encoder.layer.0.attention.self_attn.query_proj.weight", HfModule::Linear);
        assert_eq!(p.key, "deberta.encoder.layer.0.attention.self.query_proj.weight");
        assert!(p.transposed());
        let p = n.hf_param("deberta.encoder.layer_norm.gamma", HfModule::LayerNorm);
        assert_eq!((p.key.as_str(), p.module), ("deberta.encoder.LayerNorm.weight", HfModule::LayerNorm));
        let p = n.hf_param("deberta.encoder.conv.conv.weight", HfModule::Convolution);
        assert_eq!((p.module, p.transposed()), (HfModule::Convolution, false));
        assert!(n.ignored("mask_predictions.classifier.weight"));
    }
}
