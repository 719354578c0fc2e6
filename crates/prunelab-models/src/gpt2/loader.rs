//! GPT-2 checkpoint keys.
//!
//! | Hugging Face key | Burn path | layout |
//! |---|---|---|
//! | `transformer.{wte,wpe}.weight` | same | as is |
//! | `transformer.h.N.ln_{1,2}.{weight,bias}`, `transformer.ln_f.*` | `...ln_*.{gamma,beta}` | as is |
//! | `transformer.h.N.attn.c_attn.{weight,bias}` (q, k, v fused) | same | `Conv1D`: `[in, out]`, as is |
//! | `transformer.h.N.attn.c_proj.*`, `.mlp.c_fc.*`, `.mlp.c_proj.*` | same | `Conv1D`: as is |
//! | `score.weight` | same | `nn.Linear`: transposed; initialised if absent (N(0, initializer_range)) |
//!
//! The Hub's `gpt2` checkpoints are `GPT2LMHeadModel`s saved without the `transformer.` prefix.
//! Ignored by name: `h.N.attn.bias` and `h.N.attn.masked_bias` (causal-mask buffers of old
//! checkpoints) and `lm_head.weight` (the language-model head, tied to `wte`).

use crate::load::{HfModule, HfNaming, Init};

/// GPT-2's naming (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Gpt2Naming {
    /// `initializer_range` of the config, for a missing `score`.
    pub initializer_range: f64,
}

impl HfNaming for Gpt2Naming {
    fn model_name(&self) -> &'static str {
        "gpt2"
    }

    fn base_prefix(&self) -> &'static str {
        "transformer."
    }

    fn head_weight_key(&self) -> &'static str {
        "score.weight"
    }

    /// Every projection of a block is a `Conv1D` in transformers (`[in, out]`, stored as Burn
    /// stores it); only the `score` head is an `nn.Linear`.
    fn module(&self, key: &str, owner: HfModule) -> HfModule {
        if owner == HfModule::Linear && !key.starts_with("score.") { HfModule::Conv1D } else { owner }
    }

    fn init_if_missing(&self, key: &str) -> Option<Init> {
        key.starts_with("score.").then_some(Init::Normal(self.initializer_range))
    }

    fn ignored(&self, key: &str) -> bool {
        key.ends_with(".attn.bias") || key.ends_with(".attn.masked_bias") || key == "lm_head.weight"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_map() {
        let n = Gpt2Naming { initializer_range: 0.02 };
        let p = n.hf_param("transformer.h.1.attn.c_attn.weight", HfModule::Linear);
        assert_eq!(
            (p.key.as_str(), p.module, p.transposed()),
            ("transformer.h.1.attn.c_attn.weight", HfModule::Conv1D, false)
        );
        let p = n.hf_param("transformer.ln_f.beta", HfModule::LayerNorm);
        assert_eq!((p.key.as_str(), p.module), ("transformer.ln_f.bias", HfModule::LayerNorm));
        let p = n.hf_param("score.weight", HfModule::Linear);
        assert!(p.transposed());
        assert!(p.init_if_missing.is_some());
        assert!(n.ignored("h.0.attn.bias") && n.ignored("transformer.h.11.attn.masked_bias"));
        assert!(!n.ignored("h.0.attn.c_attn.bias"));
    }
}
