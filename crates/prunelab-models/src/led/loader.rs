//! LED checkpoint keys.
//!
//! | Hugging Face key | Burn path | layout |
//! |---|---|---|
//! | `led.shared.weight`, `led.{encoder,decoder}.embed_positions.weight` | same | as is |
//! | `led.encoder.layers.N.self_attn.longformer_self_attn.{query,key,value}{,_global}.*` | same | `nn.Linear`: transposed |
//! | `led.encoder.layers.N.self_attn.output.*`, `.fc1.*`, `.fc2.*` | same | `nn.Linear`: transposed |
//! | `led.decoder.layers.N.{self_attn,encoder_attn}.{k,v,q,out}_proj.*`, `.fc1.*`, `.fc2.*` | same | `nn.Linear`: transposed |
//! | `...{self_attn,encoder_attn,final}_layer_norm.*`, `led.{encoder,decoder}.layernorm_embedding.*` | `....{gamma,beta}` | as is |
//! | `classification_head.{dense,out_proj}.*` | same | `nn.Linear`; initialised if absent (N(0, init_std), zero bias) |
//!
//! Base-model checkpoints (`LEDModel`) omit the `led.` prefix. Ignored by name:
//! `{encoder,decoder}.embed_tokens.weight` (tied to `shared`; transformers 5 does not save them,
//! older checkpoints do) and the generation head of `LEDForConditionalGeneration` checkpoints
//! (`lm_head.weight`, tied to `shared`, and the buffer `final_logits_bias`).

use crate::load::{HfNaming, Init};

/// LED's naming (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct LedNaming {
    /// `init_std` of the config, for a missing head.
    pub init_std: f64,
}

impl HfNaming for LedNaming {
    fn model_name(&self) -> &'static str {
        "led"
    }

    fn base_prefix(&self) -> &'static str {
        "led."
    }

    fn head_weight_key(&self) -> &'static str {
        "classification_head.out_proj.weight"
    }

    fn init_if_missing(&self, key: &str) -> Option<Init> {
        key.starts_with("classification_head.").then(|| Init::normal_or_zero_bias(key, self.init_std))
    }

    fn ignored(&self, key: &str) -> bool {
        let key = key.strip_prefix("led.").unwrap_or(key);
        matches!(
            key,
            "encoder.embed_tokens.weight" | "decoder.embed_tokens.weight" | "lm_head.weight" | "final_logits_bias"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::HfModule;

    #[test]
    fn key_map() {
        let n = LedNaming { init_std: 0.02 };
        let p = n.hf_param("led.encoder.layers.1.self_attn.longformer_self_attn.value_global.weight", HfModule::Linear);
        assert_eq!(
            (p.key.as_str(), p.transposed()),
            ("led.encoder.layers.1.self_attn.longformer_self_attn.value_global.weight", true)
        );
        let p = n.hf_param("led.decoder.layers.0.encoder_attn_layer_norm.gamma", HfModule::LayerNorm);
        assert_eq!(
            (p.key.as_str(), p.module),
            ("led.decoder.layers.0.encoder_attn_layer_norm.weight", HfModule::LayerNorm)
        );
        assert_eq!(n.hf_param("classification_head.out_proj.bias", HfModule::Linear).init_if_missing, Some(Init::Zeros));
        assert!(n.ignored("led.encoder.embed_tokens.weight") && n.ignored("decoder.embed_tokens.weight"));
        assert!(n.ignored("final_logits_bias") && n.ignored("lm_head.weight") && !n.ignored("led.shared.weight"));
    }
}
