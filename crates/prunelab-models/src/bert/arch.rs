//! BERT in the registry ([`crate::registry`]).

use burn::prelude::*;

use super::{BertConfig, BertForSequenceClassification, BertNaming};
use crate::config::{LabelFields, StackCheck, stack_parameters};
use crate::load::HfNaming;
use crate::registry::{Architecture, ClassifierModel, RawSize};
use crate::{ClassifierOutput, ModelInput};

impl Architecture for BertConfig {
    fn naming(&self) -> Box<dyn HfNaming> {
        Box::new(BertNaming { initializer_range: self.initializer_range })
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
        (0..self.num_hidden_layers).map(|i| self.heads_in_layer(i)).collect()
    }

    fn raw_sizes(&self) -> Vec<RawSize> {
        vec![
            RawSize::dim("vocab_size", self.vocab_size),
            RawSize::dim("hidden_size", self.hidden_size),
            RawSize::dim("intermediate_size", self.intermediate_size),
            RawSize::dim("max_position_embeddings", self.max_position_embeddings),
            RawSize::dim("type_vocab_size", self.type_vocab_size),
            RawSize::layers("num_hidden_layers", self.num_hidden_layers),
        ]
    }

    fn approx_parameters(&self) -> u128 {
        (self.vocab_size + self.max_position_embeddings + self.type_vocab_size) as u128 * self.hidden_size as u128
            + stack_parameters(self.num_hidden_layers, self.hidden_size, self.intermediate_size)
    }

    fn problem(&self) -> Option<(&'static str, String)> {
        if self.position_embedding_type != "absolute" {
            return Some((
                "position_embedding_type",
                format!("{:?} is not supported (only \"absolute\")", self.position_embedding_type),
            ));
        }
        StackCheck {
            hidden: self.hidden_size,
            heads: self.num_attention_heads,
            activation: ("hidden_act", &self.hidden_act),
            layers: self.num_hidden_layers,
            kept: self.prunelab_heads.as_deref(),
        }
        .problem()
    }
}

impl<B: Backend> ClassifierModel<B> for BertForSequenceClassification<B> {
    fn classify(&self, input: ModelInput<B>) -> ClassifierOutput<B> {
        self.forward_detailed(input.input_ids, input.attention_mask, input.token_type_ids)
    }

    fn uses_token_types(&self) -> bool {
        true
    }

    fn max_positions(&self) -> usize {
        self.bert.embeddings.position_embeddings.weight.lazy_shape().as_slice()[0]
    }

    fn naming(&self) -> Box<dyn HfNaming> {
        Box::new(BertNaming { initializer_range: 0.02 })
    }
}
