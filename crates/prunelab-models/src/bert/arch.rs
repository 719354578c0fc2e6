//! BERT in the registry ([`crate::registry`]).

use burn::prelude::*;

use super::{BertConfig, BertForSequenceClassification, BertNaming};
use crate::config::{LabelFields, StackCheck};
use crate::load::HfNaming;
use crate::registry::{Architecture, BertShape, ClassifierModel, RawSize};
use crate::{ClassifierOutput, ModelInput};

impl BertConfig {
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

impl Architecture for BertConfig {
    fn naming(&self) -> Box<dyn HfNaming> {
        Box::new(BertNaming { initializer_range: self.initializer_range })
    }

    fn labels(&self) -> &LabelFields {
        &self.labels
    }

    fn summary(&self) -> Vec<(&'static str, usize)> {
        self.shape().summary()
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
        self.shape().raw_sizes(true)
    }

    fn approx_parameters(&self) -> u128 {
        self.shape().approx_parameters(self.hidden_size)
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
