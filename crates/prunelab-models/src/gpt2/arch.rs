//! GPT-2 in the registry ([`crate::registry`]).

use burn::prelude::*;

use super::{Gpt2Config, Gpt2ForSequenceClassification, Gpt2Naming};
use crate::config::{LabelFields, StackCheck, stack_parameters};
use crate::load::HfNaming;
use crate::registry::{Architecture, ClassifierModel, RawSize};
use crate::{ClassifierOutput, ModelInput};

impl Architecture for Gpt2Config {
    fn naming(&self) -> Box<dyn HfNaming> {
        Box::new(Gpt2Naming { initializer_range: self.initializer_range })
    }

    fn labels(&self) -> &LabelFields {
        &self.labels
    }

    fn summary(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("n_layer", self.n_layer),
            ("n_embd", self.n_embd),
            ("n_head", self.n_head),
            ("n_inner", self.inner_dim()),
            ("vocab_size", self.vocab_size),
            ("n_positions", self.n_positions),
        ]
    }

    fn hidden_key(&self) -> &'static str {
        "n_embd"
    }

    fn inner_size_key(&self) -> &'static str {
        "n_inner"
    }

    fn head_dim(&self) -> usize {
        self.n_embd / self.n_head
    }

    fn heads_per_layer(&self) -> Vec<usize> {
        (0..self.n_layer).map(|i| self.heads_in_layer(i)).collect()
    }

    fn raw_sizes(&self) -> Vec<RawSize> {
        let mut sizes = vec![
            RawSize::dim("vocab_size", self.vocab_size),
            RawSize::dim("n_positions", self.n_positions),
            RawSize::dim("n_embd", self.n_embd),
            RawSize::layers("n_layer", self.n_layer),
        ];
        sizes.extend(self.n_inner.map(|n| RawSize::dim("n_inner", n)));
        sizes
    }

    fn approx_parameters(&self) -> u128 {
        (self.vocab_size + self.n_positions) as u128 * self.n_embd as u128
            + stack_parameters(self.n_layer, self.n_embd, self.inner_dim())
    }

    fn problem(&self) -> Option<(&'static str, String)> {
        StackCheck {
            hidden: self.n_embd,
            heads: self.n_head,
            activation: ("activation_function", &self.activation_function),
            layers: self.n_layer,
            kept: self.prunelab_heads.as_deref(),
        }
        .problem()
    }
}

impl<B: Backend> ClassifierModel<B> for Gpt2ForSequenceClassification<B> {
    fn classify(&self, input: ModelInput<B>) -> ClassifierOutput<B> {
        self.forward_detailed(input.input_ids, input.attention_mask)
    }

    fn uses_token_types(&self) -> bool {
        false
    }

    fn max_positions(&self) -> usize {
        self.transformer.wpe.weight.lazy_shape().as_slice()[0]
    }

    fn naming(&self) -> Box<dyn HfNaming> {
        Box::new(Gpt2Naming { initializer_range: 0.02 })
    }
}
