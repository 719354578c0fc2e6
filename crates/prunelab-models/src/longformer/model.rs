//! The Longformer modules: RoBERTa-style embeddings, encoder layers with Longformer
//! self-attention, and `LongformerForSequenceClassification`'s head.

use burn::nn::{DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;

use super::LongformerConfig;
use super::attention::{AttentionPattern, LongformerSelfAttention};
use crate::layers::Activation;
use crate::layers::blocks::{BlockSizes, ClassificationHead, Intermediate, PostLnOutput, RobertaEmbeddings};

impl LongformerConfig {
    fn block_sizes(&self) -> BlockSizes {
        BlockSizes {
            hidden: self.hidden_size,
            layer_norm_eps: self.layer_norm_eps,
            hidden_dropout: self.hidden_dropout_prob,
        }
    }

    fn linear<B: Backend>(&self, d_in: usize, d_out: usize, device: &B::Device) -> Linear<B> {
        LinearConfig::new(d_in, d_out).init(device)
    }

    /// The encoder (`LongformerModel` without pooler, as the classifier builds it).
    pub fn init<B: Backend>(&self, device: &B::Device) -> LongformerModel<B> {
        let h = self.hidden_size;
        let head_dim = h / self.num_attention_heads;
        let sizes = self.block_sizes();
        let layer = |i: usize| {
            let heads = self.heads_in_layer(i);
            let attn = heads * head_dim;
            LongformerLayer {
                attention: LongformerAttention {
                    self_attn: LongformerSelfAttention {
                        query: self.linear(h, attn, device),
                        key: self.linear(h, attn, device),
                        value: self.linear(h, attn, device),
                        query_global: self.linear(h, attn, device),
                        key_global: self.linear(h, attn, device),
                        value_global: self.linear(h, attn, device),
                        dropout: DropoutConfig::new(self.attention_probs_dropout_prob).init(),
                        num_heads: heads,
                        one_sided_window: self.attention_window.of_layer(i) / 2,
                    },
                    output: sizes.output(attn, device),
                },
                intermediate: Intermediate::new(
                    h,
                    self.intermediate_size,
                    // Validated when the config was read.
                    Activation::from_hf(&self.hidden_act).unwrap_or(Activation::Gelu),
                    device,
                ),
                output: sizes.output(self.intermediate_size, device),
            }
        };
        LongformerModel {
            embeddings: RobertaEmbeddings::new(
                &sizes,
                [self.vocab_size, self.max_position_embeddings, self.type_vocab_size],
                self.pad_id(),
                device,
            ),
            encoder: LongformerEncoder { layer: (0..self.num_hidden_layers).map(layer).collect() },
            padding_multiple: self.attention_window.padding_multiple(self.num_hidden_layers),
            pad_token_id: self.pad_id(),
        }
    }

    /// `LongformerForSequenceClassification` with `num_labels` classes.
    pub fn init_classifier<B: Backend>(
        &self,
        num_labels: usize,
        device: &B::Device,
    ) -> LongformerForSequenceClassification<B> {
        LongformerForSequenceClassification {
            longformer: self.init(device),
            classifier: ClassificationHead::new(self.hidden_size, num_labels, self.hidden_dropout_prob, device),
        }
    }
}

/// Longformer self-attention plus its output block.
#[derive(Module, Debug)]
pub struct LongformerAttention<B: Backend> {
    /// `self` in transformers.
    pub self_attn: LongformerSelfAttention<B>,
    /// Output projection block.
    pub output: PostLnOutput<B>,
}

/// One encoder layer.
#[derive(Module, Debug)]
pub struct LongformerLayer<B: Backend> {
    /// Attention block.
    pub attention: LongformerAttention<B>,
    /// Feed-forward first half.
    pub intermediate: Intermediate<B>,
    /// Feed-forward second half.
    pub output: PostLnOutput<B>,
}

impl<B: Backend> LongformerLayer<B> {
    /// # Shapes
    /// - `x`: `[batch, seq, hidden]`, `seq` padded to the window multiple
    pub fn forward(&self, x: Tensor<B, 3>, pattern: &AttentionPattern<B>) -> Tensor<B, 3> {
        let attn = self.attention.self_attn.forward(x.clone(), pattern);
        let x = self.attention.output.forward(attn, x);
        self.output.forward(self.intermediate.forward(x.clone()), x)
    }
}

/// The stack of encoder layers.
#[derive(Module, Debug)]
pub struct LongformerEncoder<B: Backend> {
    /// `layer.N` in transformers.
    pub layer: Vec<LongformerLayer<B>>,
}

/// `LongformerModel` (without the pooler, which the classifier does not use).
#[derive(Module, Debug)]
pub struct LongformerModel<B: Backend> {
    /// Embeddings.
    pub embeddings: RobertaEmbeddings<B>,
    /// Encoder layers.
    pub encoder: LongformerEncoder<B>,
    /// Sequences are padded to a multiple of this.
    pub padding_multiple: usize,
    /// The id window padding is filled with.
    pub pad_token_id: u32,
}

/// Right-pad `[batch, seq]` ids to `padded` columns with `value`.
pub(crate) fn pad_columns<B: Backend>(x: Tensor<B, 2, Int>, padded: usize, value: i64) -> Tensor<B, 2, Int> {
    let [batch, seq] = x.dims();
    if padded == seq {
        return x;
    }
    let fill = Tensor::<B, 2, Int>::full([batch, padded - seq], value, &x.device());
    Tensor::cat(vec![x, fill], 1)
}

/// `seq` rounded up to a multiple of `multiple`.
pub(crate) fn padded_len(seq: usize, multiple: usize) -> usize {
    seq.div_ceil(multiple.max(1)) * multiple.max(1)
}

impl<B: Backend> LongformerModel<B> {
    /// The embedding output followed by every layer's output (`num_hidden_layers + 1` tensors
    /// `[batch, seq, hidden]`, cut back to the input length as transformers' `hidden_states`).
    ///
    /// # Shapes
    /// - every input `[batch, seq]`; `global_attention_mask` nonzero on global tokens
    pub fn hidden_states(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
        global_attention_mask: Option<Tensor<B, 2, Int>>,
    ) -> Vec<Tensor<B, 3>> {
        let [batch, seq] = input_ids.dims();
        let padded = padded_len(seq, self.padding_multiple);
        let device = input_ids.device();
        let types = token_type_ids.unwrap_or_else(|| Tensor::zeros([batch, seq], &device));
        let input_ids = pad_columns(input_ids, padded, self.pad_token_id as i64);
        let pattern = AttentionPattern::new(
            pad_columns(attention_mask, padded, 0),
            global_attention_mask.map(|g| pad_columns(g, padded, 0)),
        );
        let mut states = vec![self.embeddings.forward(input_ids, pad_columns(types, padded, 0))];
        for layer in &self.encoder.layer {
            let next = layer.forward(states.last().cloned().expect("embedding output"), &pattern);
            states.push(next);
        }
        states.into_iter().map(|s| s.narrow(1, 0, seq)).collect()
    }
}

/// `LongformerForSequenceClassification`.
#[derive(Module, Debug)]
pub struct LongformerForSequenceClassification<B: Backend> {
    /// The encoder.
    pub longformer: LongformerModel<B>,
    /// The head.
    pub classifier: ClassificationHead<B>,
}

impl<B: Backend> LongformerForSequenceClassification<B> {
    /// Logits `[batch, num_labels]` with every hidden state, the first token global (transformers'
    /// default).
    pub fn forward_detailed(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> crate::ClassifierOutput<B> {
        self.forward_with_global(input_ids, attention_mask, token_type_ids, None)
    }

    /// As [`Self::forward_detailed`] with an explicit `global_attention_mask` `[batch, seq]`
    /// (nonzero: global); `None` is transformers' default, global attention on the first token.
    pub fn forward_with_global(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
        global_attention_mask: Option<Tensor<B, 2, Int>>,
    ) -> crate::ClassifierOutput<B> {
        let global = global_attention_mask.unwrap_or_else(|| first_token_global(&input_ids));
        let hidden_states = self.longformer.hidden_states(input_ids, attention_mask, token_type_ids, Some(global));
        let logits = self.classifier.forward(hidden_states.last().cloned().expect("embedding output"));
        crate::ClassifierOutput { logits, hidden_states, pooled: None }
    }

    /// The longest input: positions `pad_token_id + 1 ..` are taken by real tokens.
    pub fn max_positions(&self) -> usize {
        self.longformer.embeddings.max_positions()
    }
}

/// `[batch, seq]` with 1 on the first column only.
fn first_token_global<B: Backend>(input_ids: &Tensor<B, 2, Int>) -> Tensor<B, 2, Int> {
    let [batch, seq] = input_ids.dims();
    let device = input_ids.device();
    let first = Tensor::<B, 2, Int>::ones([batch, 1], &device);
    if seq == 1 { first } else { Tensor::cat(vec![first, Tensor::zeros([batch, seq - 1], &device)], 1) }
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;

    use super::*;

    #[test]
    fn padding_helpers() {
        assert_eq!((padded_len(22, 6), padded_len(24, 6), padded_len(1, 512)), (24, 24, 512));
        let x = Tensor::<NdArray, 2, Int>::from_data([[5, 6, 7]], &Default::default());
        assert_eq!(pad_columns(x, 5, 1).into_data().to_vec::<i64>().unwrap(), [5, 6, 7, 1, 1]);
        let g = first_token_global(&Tensor::<NdArray, 2, Int>::zeros([2, 3], &Default::default()));
        assert_eq!(g.into_data().to_vec::<i64>().unwrap(), [1, 0, 0, 1, 0, 0]);
    }
}
