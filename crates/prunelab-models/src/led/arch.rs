//! LED in the registry ([`crate::registry`]).

use burn::prelude::*;

use super::{LedConfig, LedForSequenceClassification, LedNaming};
use crate::config::{LabelFields, StackCheck, stack_parameters};
use crate::load::HfNaming;
use crate::longformer::arch::{largest_window, window_sizes};
use crate::registry::{Architecture, ClassifierModel, RawSize};
use crate::{ClassifierOutput, ModelInput};

impl Architecture for LedConfig {
    fn naming(&self) -> Box<dyn HfNaming> {
        Box::new(LedNaming { init_std: self.init_std })
    }

    fn labels(&self) -> &LabelFields {
        &self.labels
    }

    fn summary(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("encoder_layers", self.encoder_layers),
            ("decoder_layers", self.decoder_layers),
            ("d_model", self.d_model),
            ("encoder_attention_heads", self.encoder_attention_heads),
            ("decoder_attention_heads", self.decoder_attention_heads),
            ("encoder_ffn_dim", self.encoder_ffn_dim),
            ("decoder_ffn_dim", self.decoder_ffn_dim),
            ("vocab_size", self.vocab_size),
            ("max_encoder_position_embeddings", self.max_encoder_position_embeddings),
            ("max_decoder_position_embeddings", self.max_decoder_position_embeddings),
            ("attention_window", largest_window(&self.attention_window, self.encoder_layers)),
        ]
    }

    fn hidden_key(&self) -> &'static str {
        "d_model"
    }

    fn inner_size_key(&self) -> &'static str {
        "encoder_ffn_dim"
    }

    fn head_dim(&self) -> usize {
        self.d_model / self.encoder_attention_heads
    }

    fn heads_per_layer(&self) -> Vec<usize> {
        [vec![self.encoder_attention_heads; self.encoder_layers], vec![self.decoder_attention_heads; self.decoder_layers]]
            .concat()
    }

    fn raw_sizes(&self) -> Vec<RawSize> {
        let mut sizes = vec![
            RawSize::dim("vocab_size", self.vocab_size),
            RawSize::dim("d_model", self.d_model),
            RawSize::dim("encoder_ffn_dim", self.encoder_ffn_dim),
            RawSize::dim("decoder_ffn_dim", self.decoder_ffn_dim),
            RawSize::dim("max_encoder_position_embeddings", self.max_encoder_position_embeddings),
            RawSize::dim("max_decoder_position_embeddings", self.max_decoder_position_embeddings),
            RawSize::layers("encoder_layers", self.encoder_layers),
            RawSize::layers("decoder_layers", self.decoder_layers),
        ];
        sizes.extend(window_sizes(&self.attention_window));
        sizes
    }

    fn approx_parameters(&self) -> u128 {
        let positions = self.max_encoder_position_embeddings + self.max_decoder_position_embeddings;
        (self.vocab_size + positions) as u128 * self.d_model as u128
            + stack_parameters(self.encoder_layers, self.d_model, self.encoder_ffn_dim)
            + stack_parameters(self.decoder_layers, self.d_model, self.decoder_ffn_dim)
    }

    fn problem(&self) -> Option<(&'static str, String)> {
        if let Err(m) = self.attention_window.check(self.encoder_layers) {
            return Some(("attention_window", m));
        }
        if let Err((key, m)) = self.special_ids() {
            return Some((key, m.into()));
        }
        let heads = self.decoder_attention_heads;
        if heads == 0 || !self.d_model.is_multiple_of(heads) {
            return Some((
                "decoder_attention_heads",
                format!("{heads} heads do not divide the hidden size {}", self.d_model),
            ));
        }
        StackCheck {
            hidden: self.d_model,
            heads: self.encoder_attention_heads,
            activation: ("activation_function", &self.activation_function),
            layers: 0,
            kept: None,
        }
        .problem()
    }
}

impl<B: Backend> ClassifierModel<B> for LedForSequenceClassification<B> {
    fn classify(&self, input: ModelInput<B>) -> ClassifierOutput<B> {
        self.forward_detailed(input.input_ids, input.attention_mask)
    }

    fn uses_token_types(&self) -> bool {
        false
    }

    fn max_positions(&self) -> usize {
        LedForSequenceClassification::max_positions(self)
    }

    fn naming(&self) -> Box<dyn HfNaming> {
        Box::new(LedNaming { init_std: 0.02 })
    }
}
