//! DeBERTa-v2 in the registry ([`crate::registry`]).

use burn::prelude::*;

use super::{DebertaV2Config, DebertaV2ForSequenceClassification, DebertaV2Naming};
use crate::config::LabelFields;
use crate::load::HfNaming;
use crate::registry::{Architecture, ClassifierModel, RawSize};
use crate::{ClassifierOutput, ModelInput};

/// DeBERTa's answers (through `shared()`, the fields they share) but for the
/// naming, the relative-position summary, the kept heads and the v2-only checks.
impl Architecture for DebertaV2Config {
    fn naming(&self) -> Box<dyn HfNaming> {
        Box::new(DebertaV2Naming { initializer_range: self.initializer_range })
    }

    fn labels(&self) -> &LabelFields {
        &self.labels
    }

    fn summary(&self) -> Vec<(&'static str, usize)> {
        let mut summary = self.shared().shape().summary();
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
        self.shared().head_dim()
    }

    fn heads_per_layer(&self) -> Vec<usize> {
        (0..self.num_hidden_layers).map(|i| self.heads_in_layer(i)).collect()
    }

    fn raw_sizes(&self) -> Vec<RawSize> {
        self.shared().raw_sizes()
    }

    fn approx_parameters(&self) -> u128 {
        self.shared().approx_parameters()
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
