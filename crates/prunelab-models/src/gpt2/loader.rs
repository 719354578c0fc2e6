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

use crate::load::{HfModule, HfNaming, HfParam, Init};

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

    fn hf_param(&self, burn_path: &str) -> HfParam {
        let key = match burn_path.rsplit_once('.') {
            Some((module, "gamma")) => format!("{module}.weight"),
            Some((module, "beta")) => format!("{module}.bias"),
            _ => burn_path.to_owned(),
        };
        let module_name = key.rsplit('.').nth(1).unwrap_or_default();
        let module = match module_name {
            "wte" | "wpe" => HfModule::Embedding,
            "ln_1" | "ln_2" | "ln_f" => HfModule::LayerNorm,
            "score" => HfModule::Linear,
            _ => HfModule::Conv1D,
        };
        let init_if_missing = key.starts_with("score.").then_some(Init::Normal(self.initializer_range));
        HfParam { key, module, init_if_missing }
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
        let p = n.hf_param("transformer.h.1.attn.c_attn.weight");
        assert_eq!(
            (p.key.as_str(), p.module, p.transposed()),
            ("transformer.h.1.attn.c_attn.weight", HfModule::Conv1D, false)
        );
        let p = n.hf_param("transformer.ln_f.beta");
        assert_eq!((p.key.as_str(), p.module), ("transformer.ln_f.bias", HfModule::LayerNorm));
        let p = n.hf_param("score.weight");
        assert!(p.transposed());
        assert!(p.init_if_missing.is_some());
        assert!(n.ignored("h.0.attn.bias") && n.ignored("transformer.h.11.attn.masked_bias"));
        assert!(!n.ignored("h.0.attn.c_attn.bias"));
    }
}
