//! Longformer in the registry ([`crate::registry`]).

use burn::prelude::*;

use super::{AttentionWindow, LongformerConfig, LongformerForSequenceClassification, longformer_naming};
use crate::config::{LabelFields, StackCheck};
use crate::load::HfNaming;
use crate::registry::{Architecture, BertShape, ClassifierModel, RawSize};
use crate::{ClassifierOutput, ModelInput};

/// `attention_window` as sizes: one, or one per layer.
pub(crate) fn window_sizes(windows: &AttentionWindow) -> Vec<RawSize> {
    match windows {
        AttentionWindow::Uniform(w) => vec![RawSize::dim("attention_window", *w)],
        AttentionWindow::PerLayer(ws) => ws.iter().map(|w| RawSize::dim("attention_window", *w)).collect(),
    }
}

/// The largest window over `layers` layers.
pub(crate) fn largest_window(windows: &AttentionWindow, layers: usize) -> usize {
    (0..layers).map(|i| windows.of_layer(i)).max().unwrap_or(0)
}

impl LongformerConfig {
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

impl Architecture for LongformerConfig {
    fn naming(&self) -> Box<dyn HfNaming> {
        Box::new(longformer_naming(self.initializer_range))
    }

    fn labels(&self) -> &LabelFields {
        &self.labels
    }

    fn summary(&self) -> Vec<(&'static str, usize)> {
        let mut summary = self.shape().summary();
        // The largest window when they differ per layer.
        summary.push(("attention_window", largest_window(&self.attention_window, self.num_hidden_layers)));
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
        let mut sizes = self.shape().raw_sizes(true);
        sizes.extend(window_sizes(&self.attention_window));
        sizes
    }

    fn approx_parameters(&self) -> u128 {
        self.shape().approx_parameters(self.hidden_size)
    }

    fn problem(&self) -> Option<(&'static str, String)> {
        if let Err(m) = self.attention_window.check(self.num_hidden_layers) {
            return Some(("attention_window", m));
        }
        let Some(pad) = self.pad_token_id.map(|p| p as usize) else {
            return Some(("pad_token_id", "is needed (positions count from it)".into()));
        };
        if self.max_position_embeddings <= pad + 1 {
            return Some((
                "max_position_embeddings",
                format!("{} leaves no position after the padding id {pad}", self.max_position_embeddings),
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

impl<B: Backend> ClassifierModel<B> for LongformerForSequenceClassification<B> {
    fn classify(&self, input: ModelInput<B>) -> ClassifierOutput<B> {
        self.forward_detailed(input.input_ids, input.attention_mask, input.token_type_ids)
    }

    fn uses_token_types(&self) -> bool {
        false
    }

    fn max_positions(&self) -> usize {
        LongformerForSequenceClassification::max_positions(self)
    }

    fn naming(&self) -> Box<dyn HfNaming> {
        Box::new(longformer_naming(0.02))
    }
}
