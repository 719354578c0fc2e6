//! What a parameter is for, from its Hugging Face key (works across BERT, GPT-2, Longformer and
//! the BART/LED/DeBERTa naming families).
//! What a parameter is for, from its Hugging Face key and owning module class (works across
//! BERT, GPT-2, DeBERTa and the BART naming family).

use prunelab_models::HfModule;

/// The role of a parameter tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Token, position, segment or relative-position embeddings, or their projection
    /// (DeBERTa's `embed_proj`).
    Embedding,
    /// Attention query weight.
    AttnQuery,
    /// Attention key weight.
    AttnKey,
    /// Attention value weight.
    AttnValue,
    /// Fused query/key/value weight (GPT-2's `c_attn`).
    AttnQkv,
    /// Attention output projection weight.
    AttnOut,
    /// First MLP projection weight (`hidden -> inner`).
    MlpIn,
    /// Second MLP projection weight (`inner -> hidden`).
    MlpOut,
    /// LayerNorm scale or shift.
    Norm,
    /// Convolution weight (DeBERTa-v2's encoder convolution); not a layer matrix.
    Conv,
    /// Bias of a projection inside a layer (DeBERTa's `q_bias`/`v_bias` included), or of a
    /// convolution.
    Bias,
    /// Pooler and classification head (weights and biases).
    Head,
}

impl Role {
    /// Every role, in report order.
    pub const ALL: [Role; 12] = [
        Role::Embedding,
        Role::AttnQuery,
        Role::AttnKey,
        Role::AttnValue,
        Role::AttnQkv,
        Role::AttnOut,
        Role::MlpIn,
        Role::MlpOut,
        Role::Norm,
        Role::Conv,
        Role::Bias,
        Role::Head,
    ];

    /// Name in tables and files.
    pub fn name(self) -> &'static str {
        match self {
            Role::Embedding => "embedding",
            Role::AttnQuery => "attn_q",
            Role::AttnKey => "attn_k",
            Role::AttnValue => "attn_v",
            Role::AttnQkv => "attn_qkv",
            Role::AttnOut => "attn_out",
            Role::MlpIn => "mlp_in",
            Role::MlpOut => "mlp_out",
            Role::Norm => "norm",
            Role::Conv => "conv",
            Role::Bias => "bias",
            Role::Head => "head",
        }
    }

    /// Whether this is an attention or MLP weight matrix (the default pruning scope).
    pub fn is_layer_matrix(self) -> bool {
        matches!(
            self,
            Role::AttnQuery
                | Role::AttnKey
                | Role::AttnValue
                | Role::AttnQkv
                | Role::AttnOut
                | Role::MlpIn
                | Role::MlpOut
        )
    }

    /// The role of the parameter stored under `key`.
    pub fn of(key: &str, module: HfModule) -> Role {
        let in_layer = prunelab_models::info::classify(key, module).1.is_some();
        let parts: Vec<&str> = key.split('.').collect();
        let bias = key.ends_with(".bias") || key.ends_with("_bias");
        match module {
            HfModule::Embedding => return Role::Embedding,
            HfModule::LayerNorm => return Role::Norm,
            HfModule::Convolution => return if bias { Role::Bias } else { Role::Conv },
            _ => {}
        }
        if !in_layer {
            return if parts.contains(&"embeddings") { Role::Embedding } else { Role::Head };
        }
        if bias {
            return Role::Bias;
        }
        let module_name = parts.iter().rev().nth(1).copied().unwrap_or_default();
        let parent = parts.iter().rev().nth(2).copied().unwrap_or_default();
        let in_attention = parts.iter().any(|p| matches!(*p, "attention" | "attn" | "self_attn" | "encoder_attn"));
        match module_name {
            // Longformer's `*_global` projections serve its global tokens; DeBERTa's `pos_*`
            // projections are the query/key side of its relative-position terms.
            "query" | "q_proj" | "query_proj" | "query_global" | "pos_q_proj" | "pos_query_proj" => Role::AttnQuery,
            "key" | "k_proj" | "key_proj" | "key_global" | "pos_proj" | "pos_key_proj" => Role::AttnKey,
            "value" | "v_proj" | "value_proj" | "value_global" => Role::AttnValue,
            "c_attn" | "in_proj" => Role::AttnQkv,
            "out_proj" | "o_proj" => Role::AttnOut,
            "c_fc" | "fc1" => Role::MlpIn,
            "fc2" => Role::MlpOut,
            "c_proj" | "dense" if in_attention => Role::AttnOut,
            "c_proj" => Role::MlpOut,
            "dense" if parent == "intermediate" => Role::MlpIn,
            "dense" if parent == "output" => Role::MlpOut,
            _ if in_attention => Role::AttnOut,
            _ => Role::MlpIn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HfModule::*;

    #[test]
    fn roles_of_keys() {
        let cases = [
            ("bert.encoder.layer.0.attention.self.query.weight", Linear, Role::AttnQuery),
            ("bert.encoder.layer.0.attention.self.key.weight", Linear, Role::AttnKey),
            ("bert.encoder.layer.0.attention.self.value.weight", Linear, Role::AttnValue),
            ("bert.encoder.layer.0.attention.output.dense.weight", Linear, Role::AttnOut),
            ("bert.encoder.layer.0.intermediate.dense.weight", Linear, Role::MlpIn),
            ("bert.encoder.layer.0.output.dense.weight", Linear, Role::MlpOut),
            ("bert.encoder.layer.0.output.dense.bias", Linear, Role::Bias),
            ("bert.encoder.layer.0.output.LayerNorm.weight", LayerNorm, Role::Norm),
            ("bert.embeddings.word_embeddings.weight", Embedding, Role::Embedding),
            ("bert.pooler.dense.weight", Linear, Role::Head),
            ("classifier.bias", Linear, Role::Head),
            ("transformer.h.3.attn.c_attn.weight", Conv1D, Role::AttnQkv),
            ("transformer.h.3.attn.c_proj.weight", Conv1D, Role::AttnOut),
            ("transformer.h.3.mlp.c_fc.weight", Conv1D, Role::MlpIn),
            ("transformer.h.3.mlp.c_proj.weight", Conv1D, Role::MlpOut),
            ("transformer.h.3.ln_1.weight", LayerNorm, Role::Norm),
            ("score.weight", Linear, Role::Head),
            ("longformer.encoder.layer.0.attention.self.query_global.weight", Linear, Role::AttnQuery),
            ("longformer.encoder.layer.0.attention.self.value_global.weight", Linear, Role::AttnValue),
            ("longformer.encoder.layer.0.attention.output.dense.weight", Linear, Role::AttnOut),
            ("longformer.encoder.layer.0.output.dense.weight", Linear, Role::MlpOut),
            ("classifier.out_proj.weight", Linear, Role::Head),
            ("led.encoder.layers.1.self_attn.longformer_self_attn.key_global.weight", Linear, Role::AttnKey),
            ("led.encoder.layers.1.self_attn.output.weight", Linear, Role::AttnOut),
            ("led.decoder.layers.0.encoder_attn.v_proj.weight", Linear, Role::AttnValue),
            ("led.decoder.layers.0.fc2.weight", Linear, Role::MlpOut),
            ("led.decoder.layers.0.encoder_attn_layer_norm.weight", LayerNorm, Role::Norm),
            ("led.shared.weight", Embedding, Role::Embedding),
            ("classification_head.dense.weight", Linear, Role::Head),
            ("deberta.embeddings.word_embeddings.weight", Embedding, Role::Embedding),
            ("deberta.embeddings.embed_proj.weight", Linear, Role::Embedding),
            ("deberta.encoder.rel_embeddings.weight", Embedding, Role::Embedding),
            ("deberta.encoder.layer.1.attention.self.in_proj.weight", Linear, Role::AttnQkv),
            ("deberta.encoder.layer.1.attention.self.q_bias", Parameter, Role::Bias),
            ("deberta.encoder.layer.1.attention.self.v_bias", Parameter, Role::Bias),
            ("deberta.encoder.layer.1.attention.self.pos_proj.weight", Linear, Role::AttnKey),
            ("deberta.encoder.layer.1.attention.self.pos_q_proj.weight", Linear, Role::AttnQuery),
            ("deberta.encoder.layer.1.attention.self.query_proj.weight", Linear, Role::AttnQuery),
            ("deberta.encoder.layer.1.attention.self.pos_key_proj.weight", Linear, Role::AttnKey),
            ("deberta.encoder.layer.1.attention.self.pos_query_proj.weight", Linear, Role::AttnQuery),
            ("deberta.encoder.layer.1.attention.output.dense.weight", Linear, Role::AttnOut),
            ("deberta.encoder.layer.1.intermediate.dense.weight", Linear, Role::MlpIn),
            ("deberta.encoder.layer.1.output.dense.weight", Linear, Role::MlpOut),
            ("deberta.encoder.LayerNorm.weight", LayerNorm, Role::Norm),
            ("deberta.encoder.conv.conv.weight", Convolution, Role::Conv),
            ("deberta.encoder.conv.conv.bias", Convolution, Role::Bias),
            ("pooler.dense.weight", Linear, Role::Head),
        ];
        for (key, module, role) in cases {
            assert_eq!(Role::of(key, module), role, "{key}");
        }
    }
}
