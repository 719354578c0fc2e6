//! RoBERTa in the registry ([`crate::registry`]).

use burn::prelude::*;

use super::{RobertaConfig, RobertaForSequenceClassification, RobertaNaming};
use crate::config::LabelFields;
use crate::load::HfNaming;
use crate::registry::{Architecture, ClassifierModel, RawSize};
use crate::{ClassifierOutput, ModelInput};

/// BERT's answers, but for the naming and the padding id positions count from.
impl Architecture for RobertaConfig {
    fn naming(&self) -> Box<dyn HfNaming> {
        Box::new(RobertaNaming::roberta(self.0.initializer_range))
    }

    fn labels(&self) -> &LabelFields {
        &self.0.labels
    }

    fn summary(&self) -> Vec<(&'static str, usize)> {
        self.0.summary()
    }

    fn hidden_key(&self) -> &'static str {
        self.0.hidden_key()
    }

    fn inner_size_key(&self) -> &'static str {
        self.0.inner_size_key()
    }

    fn head_dim(&self) -> usize {
        self.0.head_dim()
    }

    fn heads_per_layer(&self) -> Vec<usize> {
        self.0.heads_per_layer()
    }

    fn raw_sizes(&self) -> Vec<RawSize> {
        self.0.raw_sizes()
    }

    fn approx_parameters(&self) -> u128 {
        self.0.approx_parameters()
    }

    fn problem(&self) -> Option<(&'static str, String)> {
        let Some(pad) = self.0.pad_token_id.map(|p| p as usize) else {
            return Some(("pad_token_id", "is needed (positions count from it)".into()));
        };
        if self.0.max_position_embeddings <= pad + 1 {
            return Some((
                "max_position_embeddings",
                format!("{} leaves no position after the padding id {pad}", self.0.max_position_embeddings),
            ));
        }
        self.0.problem()
    }
}

impl<B: Backend> ClassifierModel<B> for RobertaForSequenceClassification<B> {
    fn classify(&self, input: ModelInput<B>) -> ClassifierOutput<B> {
        self.forward_detailed(input.input_ids, input.attention_mask, input.token_type_ids)
    }

    fn uses_token_types(&self) -> bool {
        false
    }

    fn max_positions(&self) -> usize {
        self.roberta.embeddings.max_positions()
    }

    fn naming(&self) -> Box<dyn HfNaming> {
        Box::new(RobertaNaming::roberta(0.02))
    }
}
