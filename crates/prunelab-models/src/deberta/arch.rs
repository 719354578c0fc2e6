//! DeBERTa in the registry ([`crate::registry`]).

use burn::prelude::*;

use super::{DebertaConfig, DebertaForSequenceClassification, DebertaNaming};
use crate::config::LabelFields;
use crate::load::HfNaming;
use crate::registry::{Architecture, BertShape, ClassifierModel, RawSize};
use crate::{ClassifierOutput, ModelInput};

impl DebertaConfig {
    /// The sizes named as in every BERT-family config.
    pub fn shape(&self) -> BertShape {
        BertShape {
            vocab: self.vocab_size,
            hidden: self.hidden_size,
            layers: self.num_hidden_layers,
            heads: self.num_attention_heads,
            intermediate: self.intermediate_size,
            positions: self.max_position_embeddings,
            type_vocab: self.type_vocab_size,
        }
    }
}

impl Architecture for DebertaConfig {
    fn naming(&self) -> Box<dyn HfNaming> {
        Box::new(DebertaNaming { initializer_range: self.initializer_range })
    }

    fn labels(&self) -> &LabelFields {
        &self.labels
    }

    fn summary(&self) -> Vec<(&'static str, usize)> {
        let mut summary = self.shape().summary();
        summary.push(("max_relative_positions", self.relative_range()));
        summary
    }

    fn hidden_key(&self) -> &'static str {
        "hidden_size"
    }

    fn inner_size_key(&self) -> &'static str {
        "intermediate_size"
    }

    fn head_dim(&self) -> usize {
        self.shape().head_dim()
    }

    fn heads_per_layer(&self) -> Vec<usize> {
        vec![self.num_attention_heads; self.num_hidden_layers]
    }

    fn raw_sizes(&self) -> Vec<RawSize> {
        let mut sizes = self.shape().raw_sizes(false);
        sizes.extend(self.embedding_size.map(|n| RawSize::dim("embedding_size", n)));
        sizes.extend(self.pooler_hidden_size.map(|n| RawSize::dim("pooler_hidden_size", n)));
        sizes
    }

    fn approx_parameters(&self) -> u128 {
        self.shape().approx_parameters(self.embedding_size.unwrap_or(self.hidden_size))
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
