//! DeBERTa-v2 in the registry ([`crate::registry`]).

use burn::prelude::*;

use super::{DebertaV2Config, DebertaV2ForSequenceClassification, DebertaV2Naming};
use crate::config::LabelFields;
use crate::load::HfNaming;
use crate::registry::{Architecture, BertShape, ClassifierModel, RawSize};
use crate::{ClassifierOutput, ModelInput};

impl DebertaV2Config {
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

impl Architecture for DebertaV2Config {
    fn naming(&self) -> Box<dyn HfNaming> {
        Box::new(DebertaV2Naming { initializer_range: self.initializer_range })
    }

    fn labels(&self) -> &LabelFields {
        &self.labels
    }

    fn summary(&self) -> Vec<(&'static str, usize)> {
        let mut summary = self.shape().summary();
        summary.push(("position_buckets", self.buckets().unwrap_or(0)));
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
        (0..self.num_hidden_layers).map(|i| self.heads_in_layer(i)).collect()
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

impl<B: Backend> ClassifierModel<B> for DebertaV2ForSequenceClassification<B> {
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
        Box::new(DebertaV2Naming { initializer_range: 0.02 })
    }
}
