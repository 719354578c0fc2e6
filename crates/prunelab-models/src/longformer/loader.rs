//! Longformer checkpoint keys.
//!
//! | Hugging Face key | Burn path | layout |
//! |---|---|---|
//! | `longformer.embeddings.{word,position,token_type}_embeddings.weight` | same | as is |
//! | `longformer.embeddings.LayerNorm.*`, `...{attention.output,output}.LayerNorm.*` | `...layer_norm.{gamma,beta}` | as is |
//! | `longformer.encoder.layer.N.attention.self.{query,key,value}{,_global}.*` | `...attention.self_attn.*` | `nn.Linear`: transposed |
//! | `longformer.encoder.layer.N.attention.output.dense.*`, `.intermediate.dense.*`, `.output.dense.*` | same | `nn.Linear`: transposed |
//! | `classifier.{dense,out_proj}.*` | same | `nn.Linear`; initialised if absent (N(0, initializer_range), zero bias) |
//!
//! Base-model checkpoints omit the `longformer.` prefix. Ignored by name: `*position_ids` (a
//! buffer), `lm_head.*` (the masked-LM head of the pretrained checkpoints) and `*pooler.*` (the
//! classifier is built without the pooler, as transformers builds it).

use crate::roberta::RobertaNaming;

/// Longformer's naming: RoBERTa's, under the `longformer.` prefix (see the module docs).
pub fn longformer_naming(initializer_range: f64) -> RobertaNaming {
    RobertaNaming { model: "longformer", prefix: "longformer.", initializer_range }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{HfModule, HfNaming, Init};

    #[test]
    fn key_map() {
        let n = longformer_naming(0.02);
        let p = n.hf_param("longformer.encoder.layer.1.attention.self_attn.key_global.weight", HfModule::Linear);
        assert_eq!(p.key, "longformer.encoder.layer.1.attention.self.key_global.weight");
        assert!(p.transposed() && p.init_if_missing.is_none());
        let p = n.hf_param("longformer.embeddings.layer_norm.beta", HfModule::LayerNorm);
        assert_eq!((p.key.as_str(), p.module), ("longformer.embeddings.LayerNorm.bias", HfModule::LayerNorm));
        assert_eq!(n.hf_param("classifier.out_proj.bias", HfModule::Linear).init_if_missing, Some(Init::Zeros));
        assert!(n.hf_param("classifier.dense.weight", HfModule::Linear).transposed());
        assert!(n.ignored("longformer.pooler.dense.weight") && n.ignored("lm_head.decoder.weight"));
        assert!(n.ignored("embeddings.position_ids") && !n.ignored("classifier.dense.weight"));
    }
}
