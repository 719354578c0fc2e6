//! The architecture registry: the two traits every architecture implements in its own folder,
//! and the macro that turns the one list of architectures (in `lib.rs`) into everything that
//! dispatches on the architecture.
//!
//! Adding an architecture costs a folder — a config implementing [`Architecture`], a sequence
//! classifier implementing [`ClassifierModel`], a checkpoint naming ([`HfNaming`]) — and one
//! line in the list. From the list come the folder's `pub mod`, [`crate::ModelConfig`] (parsed
//! by `model_type`), [`crate::Classifier`] (a Burn module enum; its variants keep the list's
//! order, which epoch checkpoints depend on, so new architectures go at the end) and
//! [`crate::SUPPORTED_MODEL_TYPES`].

use burn::prelude::*;

use crate::config::LabelFields;
use crate::load::HfNaming;
use crate::{ClassifierOutput, ModelInput};

/// One size a config gives, as written: what validation checks before anything is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawSize {
    /// The `config.json` key.
    pub key: &'static str,
    /// Its value.
    pub value: usize,
    /// Whether it counts layers (0 allowed, at most [`crate::config::MAX_LAYERS`]) rather than
    /// being a dimension (at least 1, at most [`crate::config::MAX_DIM`]).
    pub layers: bool,
}

impl RawSize {
    /// A dimension (hidden, inner, vocabulary, positions, window).
    pub fn dim(key: &'static str, value: usize) -> Self {
        Self { key, value, layers: false }
    }

    /// A layer count.
    pub fn layers(key: &'static str, value: usize) -> Self {
        Self { key, value, layers: true }
    }
}

/// The sizes the BERT family's configs (BERT, RoBERTa, Longformer, DeBERTa) name alike:
/// `vocab_size`, `hidden_size`, `num_hidden_layers`, `num_attention_heads`, `intermediate_size`,
/// `max_position_embeddings`, `type_vocab_size`. Their [`Architecture`] size methods start from
/// these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BertShape {
    /// `vocab_size`.
    pub vocab: usize,
    /// `hidden_size`.
    pub hidden: usize,
    /// `num_hidden_layers`.
    pub layers: usize,
    /// `num_attention_heads`.
    pub heads: usize,
    /// `intermediate_size`.
    pub intermediate: usize,
    /// `max_position_embeddings`.
    pub positions: usize,
    /// `type_vocab_size`.
    pub type_vocab: usize,
}

impl BertShape {
    /// The summary's entries, as the config names them.
    pub fn summary(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("num_hidden_layers", self.layers),
            ("hidden_size", self.hidden),
            ("num_attention_heads", self.heads),
            ("intermediate_size", self.intermediate),
            ("vocab_size", self.vocab),
            ("max_position_embeddings", self.positions),
        ]
    }

    /// Every size as written (`type_vocab_size` must be at least 1 where `with_types`).
    pub fn raw_sizes(&self, with_types: bool) -> Vec<RawSize> {
        let mut sizes = vec![
            RawSize::dim("vocab_size", self.vocab),
            RawSize::dim("hidden_size", self.hidden),
            RawSize::dim("intermediate_size", self.intermediate),
            RawSize::dim("max_position_embeddings", self.positions),
        ];
        if with_types {
            sizes.push(RawSize::dim("type_vocab_size", self.type_vocab));
        }
        sizes.push(RawSize::layers("num_hidden_layers", self.layers));
        sizes
    }

    /// About how many parameters: embeddings of width `embedding` (the hidden size unless a
    /// projection follows them) and the layers.
    pub fn approx_parameters(&self, embedding: usize) -> u128 {
        (self.vocab as u128 + self.positions as u128 + self.type_vocab as u128) * embedding as u128
            + crate::config::stack_parameters(self.layers, self.hidden, self.intermediate)
    }

    /// Head dimension.
    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }
}

/// What prunelab asks of an architecture's `config.json`, implemented by its config type.
pub trait Architecture {
    /// The checkpoint naming, with this config's initialisation for parameters a checkpoint
    /// lacks.
    fn naming(&self) -> Box<dyn HfNaming>;
    /// The declared labels.
    fn labels(&self) -> &LabelFields;
    /// The main sizes, named as in the config: `(key, value)` pairs for display.
    fn summary(&self) -> Vec<(&'static str, usize)>;
    /// The JSON key of the hidden size (`hidden_size`, `n_embd`, `d_model`).
    fn hidden_key(&self) -> &'static str;
    /// The JSON key of the feed-forward inner size (`intermediate_size`, `n_inner`).
    fn inner_size_key(&self) -> &'static str;
    /// Head dimension (hidden size / configured heads).
    fn head_dim(&self) -> usize;
    /// Attention heads per layer, after any structured pruning (every stack, in order).
    fn heads_per_layer(&self) -> Vec<usize>;
    /// Every size as written.
    fn raw_sizes(&self) -> Vec<RawSize>;
    /// About how many parameters the sizes make (only called once [`Self::raw_sizes`] are
    /// within limits, so it cannot overflow).
    fn approx_parameters(&self) -> u128;
    /// The first unusable value other than a size, as `(key, message)`.
    fn problem(&self) -> Option<(&'static str, String)>;
}

/// What prunelab asks of an architecture's sequence classifier, implemented by its Burn module.
pub trait ClassifierModel<B: Backend> {
    /// Logits with every hidden state (see [`ClassifierOutput`]).
    fn classify(&self, input: ModelInput<B>) -> ClassifierOutput<B>;
    /// Whether the model takes token type (segment) ids.
    fn uses_token_types(&self) -> bool;
    /// The longest sequence the position embeddings cover.
    fn max_positions(&self) -> usize;
    /// The checkpoint naming (for statistics, pruning scopes and export; the initialisation of
    /// missing parameters only matters when loading, so transformers' default is used).
    fn naming(&self) -> Box<dyn HfNaming>;
}

/// Generates the registry from the list of architectures: `Variant(module, "model_type",
/// Config, Classifier)`, each with its doc comment.
macro_rules! architectures {
    ($( $(#[$doc:meta])* $variant:ident($module:ident, $model_type:literal, $config:ident, $classifier:ident) ),+ $(,)?) => {
        $( pub mod $module; )+

        /// The `model_type`s prunelab implements, in the registry's order.
        pub const SUPPORTED_MODEL_TYPES: &[&str] = &[$($model_type),+];

        /// A parsed `config.json` of a supported architecture.
        #[derive(Debug, Clone, PartialEq)]
        pub enum ModelConfig {
            $( $(#[$doc])* $variant($module::$config), )+
        }

        // In a module of its own so that the allowance covers the record type the derive writes.
        #[allow(clippy::large_enum_variant)] // one per process; boxing would change Burn module paths
        mod classifier {
            use burn::prelude::*;

            /// A sequence classifier of any supported architecture.
            #[derive(Module, Debug)]
            pub enum Classifier<B: Backend> {
                $( $(#[$doc])* $variant(super::$module::$classifier<B>), )+
            }
        }
        pub use classifier::{Classifier, ClassifierRecord};

        impl ModelConfig {
            /// The config of `model_type` from its JSON, or `None` for a type not in the registry.
            fn deserialize_as(model_type: &str, value: serde_json::Value) -> Option<serde_json::Result<Self>> {
                match model_type {
                    $( $model_type => Some(serde_json::from_value(value).map(ModelConfig::$variant)), )+
                    _ => None,
                }
            }

            /// The `model_type`.
            pub fn model_type(&self) -> &'static str {
                match self {
                    $( ModelConfig::$variant(_) => $model_type, )+
                }
            }

            /// The architecture behind the config.
            pub fn architecture(&self) -> &dyn $crate::registry::Architecture {
                match self {
                    $( ModelConfig::$variant(c) => c, )+
                }
            }

            /// A classifier with freshly initialised weights (Burn's initialisers).
            fn init<B: burn::prelude::Backend>(&self, num_labels: usize, device: &B::Device) -> Classifier<B> {
                match self {
                    $( ModelConfig::$variant(c) => Classifier::$variant(c.init_classifier(num_labels, device)), )+
                }
            }

            /// A classifier loaded from `checkpoint` through the architecture's naming.
            fn load<B: burn::prelude::Backend>(
                &self,
                num_labels: usize,
                checkpoint: &mut $crate::Checkpoint,
                device: &B::Device,
            ) -> $crate::Result<(Classifier<B>, $crate::LoadReport)> {
                let naming = self.architecture().naming();
                match self {
                    $( ModelConfig::$variant(c) => {
                        $crate::load::load_module(c.init_classifier(num_labels, device), checkpoint, naming.as_ref(), device)
                            .map(|(m, r)| (Classifier::$variant(m), r))
                    } )+
                }
            }
        }

        impl<B: burn::prelude::Backend> Classifier<B> {
            /// The architecture's model behind the enum.
            pub fn model(&self) -> &dyn $crate::registry::ClassifierModel<B> {
                match self {
                    $( Classifier::$variant(m) => m, )+
                }
            }
        }
    };
}

pub(crate) use architectures;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use burn::backend::NdArray;

    use crate::{HfModule, ModelConfig, SUPPORTED_MODEL_TYPES, init_classifier};

    /// Sizes for every architecture's keys at once (each reads its own, the rest are ignored).
    fn small_config(model_type: &str, extra: &str) -> ModelConfig {
        let json = format!(
            r#"{{"model_type": "{model_type}", "vocab_size": 20, "hidden_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 12, "max_position_embeddings": 16, "n_embd": 8,
            "n_layer": 1, "n_head": 2, "n_positions": 16, "d_model": 8, "encoder_layers": 1, "decoder_layers": 1,
            "encoder_attention_heads": 2, "decoder_attention_heads": 2, "encoder_ffn_dim": 12, "decoder_ffn_dim": 12,
            "max_encoder_position_embeddings": 16, "max_decoder_position_embeddings": 16, "attention_window": 4{extra}}}"#
        );
        ModelConfig::from_json(&json, Path::new("config.json")).unwrap_or_else(|e| panic!("{model_type}: {e}"))
    }

    /// Every architecture in the list parses, builds, and names every parameter; the module
    /// classes come from Burn's container types (not from key strings), with GPT-2's `Conv1D`
    /// the one naming's own decision.
    #[test]
    fn every_registered_architecture_builds_and_classifies_its_parameters() {
        for &model_type in SUPPORTED_MODEL_TYPES {
            let config = small_config(model_type, "");
            assert_eq!(config.model_type(), model_type);
            let infos = init_classifier::<NdArray>(&config, 3, &Default::default()).param_infos();
            for module in [HfModule::LayerNorm, HfModule::Embedding] {
                assert!(infos.iter().any(|p| p.module == module), "{model_type}: no {module:?}");
            }
            let head = infos.iter().find(|p| p.key == config.head_weight_key());
            assert_eq!(head.map(|p| p.shape.clone()), Some(vec![8, 3]), "{model_type}: the head");
            let of = |key: &str| infos.iter().find(|p| p.key == key).map(|p| p.module);
            match model_type {
                "gpt2" => {
                    assert_eq!(of("transformer.h.0.attn.c_attn.weight"), Some(HfModule::Conv1D));
                    assert_eq!(of("score.weight"), Some(HfModule::Linear));
                }
                "deberta" => {
                    assert_eq!(of("deberta.encoder.layer.0.attention.self.q_bias"), Some(HfModule::Parameter));
                    assert_eq!(of("deberta.embeddings.LayerNorm.weight"), Some(HfModule::LayerNorm));
                }
                "roberta" => {
                    assert_eq!(of("roberta.encoder.layer.0.attention.self.query.weight"), Some(HfModule::Linear));
                    assert_eq!(of("roberta.embeddings.position_embeddings.weight"), Some(HfModule::Embedding));
                }
                _ => {}
            }
        }
        let conv = small_config("deberta-v2", r#", "conv_kernel_size": 3"#);
        let infos = init_classifier::<NdArray>(&conv, 2, &Default::default()).param_infos();
        let module = infos.iter().find(|p| p.key == "deberta.encoder.conv.conv.weight").map(|p| p.module);
        assert_eq!(module, Some(HfModule::Convolution));
    }
}
