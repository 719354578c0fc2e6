//! DeBERTa in the registry ([`crate::registry`]).

use burn::prelude::*;

use super::{DebertaConfig, DebertaForSequenceClassification, DebertaNaming};
use crate::config::{LabelFields, stack_parameters};
use crate::load::HfNaming;
use crate::registry::{Architecture, ClassifierModel, RawSize};
use crate::{ClassifierOutput, ModelInput};

impl Architecture for DebertaConfig {
    fn naming(&self) -> Box<dyn HfNaming> {
        Box::new(DebertaNaming { initializer_range: self.initializer_range })
    }

    fn labels(&self) -> &LabelFields {
        &self.labels
    }

    fn summary(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("num_hidden_layers", self.num_hidden_layers),
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("vocab_size", self.vocab_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("max_relative_positions", self.relative_range()),
        ]
    }

    fn hidden_key(&self) -> &'static str {
        "hidden_size"
    }

    fn inner_size_key(&self) -> &'static str {
        "intermediate_size"
    }

    fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    fn heads_per_layer(&self) -> Vec<usize> {
        vec![self.num_attention_heads; self.num_hidden_layers]
    }

    fn raw_sizes(&self) -> Vec<RawSize> {
        let mut sizes = vec![
            RawSize::dim("vocab_size", self.vocab_size),
            RawSize::dim("hidden_size", self.hidden_size),
            RawSize::dim("intermediate_size", self.intermediate_size),
            RawSize::dim("max_position_embeddings", self.max_position_embeddings),
            RawSize::layers("num_hidden_layers", self.num_hidden_layers),
        ];
        sizes.extend(self.embedding_size.map(|n| RawSize::dim("embedding_size", n)));
        sizes.extend(self.pooler_hidden_size.map(|n| RawSize::dim("pooler_hidden_size", n)));
        sizes
    }

    fn approx_parameters(&self) -> u128 {
        let embedding = self.embedding_size.unwrap_or(self.hidden_size) as u128;
        (self.vocab_size as u128 + self.max_position_embeddings as u128 + self.type_vocab_size as u128) * embedding
            + stack_parameters(self.num_hidden_layers, self.hidden_size, self.intermediate_size)
    }

    fn problem(&self) -> Option<(&'static str, String)> {
        self.check()
    }
}

impl<B: Backend> ClassifierModel<B> for DebertaForSequenceClassification<B> {
    fn classify(&self, input: ModelInput<B>) -> ClassifierOutput<B> {
        self.forward_detailed(input.input_ids, input.attention_mask, input.token_type_ids)
    }

    fn uses_token_types(&self) -> bool {
        self.deberta.embeddings.token_type_embeddings.is_some()
    }

    fn max_positions(&self) -> usize {
        self.deberta.embeddings.max_positions()
    }

    fn naming(&self) -> Box<dyn HfNaming> {
        Box::new(DebertaNaming { initializer_range: 0.02 })
    }
}
