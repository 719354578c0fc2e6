//! The RoBERTa modules: RoBERTa's embeddings, BERT's layers, RoBERTa's classification head.

use burn::prelude::*;

use super::RobertaConfig;
use crate::bert::BertEncoder;
use crate::layers::blocks::{ClassificationHead, RobertaEmbeddings};

impl RobertaConfig {
    /// The encoder (`RobertaModel` without the pooler, as the classifier builds it).
    pub fn init<B: Backend>(&self, device: &B::Device) -> RobertaModel<B> {
        let c = &self.0;
        RobertaModel {
            embeddings: RobertaEmbeddings::new(
                &c.block_sizes(),
                [c.vocab_size, c.max_position_embeddings, c.type_vocab_size],
                self.pad_id(),
                device,
            ),
            encoder: c.init_encoder(device),
        }
    }

    /// `RobertaForSequenceClassification` with `num_labels` classes.
    pub fn init_classifier<B: Backend>(
        &self,
        num_labels: usize,
        device: &B::Device,
    ) -> RobertaForSequenceClassification<B> {
        let dropout = self.0.classifier_dropout.unwrap_or(self.0.hidden_dropout_prob);
        RobertaForSequenceClassification {
            roberta: self.init(device),
            classifier: ClassificationHead::new(self.0.hidden_size, num_labels, dropout, device),
        }
    }
}

/// `RobertaModel` (without the pooler, which the classifier does not use).
#[derive(Module, Debug)]
pub struct RobertaModel<B: Backend> {
    /// Embeddings.
    pub embeddings: RobertaEmbeddings<B>,
    /// Encoder layers (BERT's).
    pub encoder: BertEncoder<B>,
}

impl<B: Backend> RobertaModel<B> {
    /// The embedding output followed by every layer's output: `num_hidden_layers + 1` tensors
    /// `[batch, seq, hidden]`, as transformers' `hidden_states`.
    pub fn hidden_states(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Vec<Tensor<B, 3>> {
        let [batch, seq] = input_ids.dims();
        let types = token_type_ids.unwrap_or_else(|| Tensor::zeros([batch, seq], &input_ids.device()));
        self.encoder.hidden_states(self.embeddings.forward(input_ids, types), attention_mask)
    }
}

/// `RobertaForSequenceClassification`: the encoder and RoBERTa's head on the first token.
#[derive(Module, Debug)]
pub struct RobertaForSequenceClassification<B: Backend> {
    /// The encoder.
    pub roberta: RobertaModel<B>,
    /// The head.
    pub classifier: ClassificationHead<B>,
}

impl<B: Backend> RobertaForSequenceClassification<B> {
    /// Logits `[batch, num_labels]` with every hidden state.
    pub fn forward_detailed(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> crate::ClassifierOutput<B> {
        let hidden_states = self.roberta.hidden_states(input_ids, attention_mask, token_type_ids);
        let logits = self.classifier.forward(hidden_states.last().cloned().expect("embedding output"));
        crate::ClassifierOutput { logits, hidden_states, pooled: None }
    }
}
