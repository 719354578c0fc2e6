//! Blocks several architectures share, with transformers' module names as field names (so their
//! checkpoint keys come out of the same renames everywhere): the post-LayerNorm output block,
//! the feed-forward's first half, RoBERTa's embeddings and RoBERTa's classification head.

use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation;

use super::{Activation, linear};

/// Sizes and rates the shared blocks are built from.
#[derive(Debug, Clone, Copy)]
pub struct BlockSizes {
    /// Hidden size.
    pub hidden: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Dropout on sub-layer outputs (and embeddings).
    pub hidden_dropout: f64,
}

impl BlockSizes {
    /// A LayerNorm over the hidden size.
    pub fn layer_norm<B: Backend>(&self, device: &B::Device) -> LayerNorm<B> {
        LayerNormConfig::new(self.hidden).with_epsilon(self.layer_norm_eps).init(device)
    }

    /// An output block from `d_in` features back to the hidden size.
    pub fn output<B: Backend>(&self, d_in: usize, device: &B::Device) -> PostLnOutput<B> {
        PostLnOutput {
            dense: LinearConfig::new(d_in, self.hidden).init(device),
            layer_norm: self.layer_norm(device),
            dropout: DropoutConfig::new(self.hidden_dropout).init(),
        }
    }
}

/// `LayerNorm(dropout(dense(x)) + residual)`: BERT's, RoBERTa's and Longformer's
/// `attention.output` and `output` (`SelfOutput`, `Output` in transformers).
#[derive(Module, Debug)]
pub struct PostLnOutput<B: Backend> {
    /// The projection back to the hidden size.
    pub dense: Linear<B>,
    /// `LayerNorm` in transformers.
    pub layer_norm: LayerNorm<B>,
    /// Hidden dropout.
    pub dropout: Dropout,
}

impl<B: Backend> PostLnOutput<B> {
    /// # Shapes
    /// - `x`: `[batch, seq, d_in]`; `residual` and output: `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<B, 3>, residual: Tensor<B, 3>) -> Tensor<B, 3> {
        super::add_layer_norm(&self.layer_norm, super::dropout(&self.dropout, linear(&self.dense, x)), residual)
    }
}

/// `act(dense(x))`: the feed-forward's first half (`intermediate` in transformers).
#[derive(Module, Debug)]
pub struct Intermediate<B: Backend> {
    /// `hidden -> intermediate`.
    pub dense: Linear<B>,
    /// The activation.
    #[module(skip)]
    pub act: Activation,
}

impl<B: Backend> Intermediate<B> {
    /// A `hidden -> inner` projection with `act`.
    pub fn new(hidden: usize, inner: usize, act: Activation, device: &B::Device) -> Self {
        Self { dense: LinearConfig::new(hidden, inner).init(device), act }
    }

    /// # Shapes
    /// - `x`: `[batch, seq, hidden]` -> `[batch, seq, intermediate]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        super::linear_act(&self.dense, x, self.act)
    }
}

/// RoBERTa's embeddings (RoBERTa, Longformer): word + position + token type, LayerNorm,
/// dropout; positions count the non-padding tokens from `pad_token_id + 1` and padding takes
/// position `pad_token_id` (transformers' `create_position_ids_from_input_ids`).
#[derive(Module, Debug)]
pub struct RobertaEmbeddings<B: Backend> {
    /// Token embeddings `[vocab, hidden]`.
    pub word_embeddings: Embedding<B>,
    /// Position embeddings `[max_positions, hidden]`.
    pub position_embeddings: Embedding<B>,
    /// Segment embeddings `[type_vocab, hidden]`.
    pub token_type_embeddings: Embedding<B>,
    /// `LayerNorm` in transformers.
    pub layer_norm: LayerNorm<B>,
    /// Hidden dropout.
    pub dropout: Dropout,
    /// Padding id, which also offsets the positions.
    pub pad_token_id: u32,
}

impl<B: Backend> RobertaEmbeddings<B> {
    /// Embeddings for `[vocab, positions, type_vocab]` tokens, positions (padding's included)
    /// and token types.
    pub fn new(
        sizes: &BlockSizes,
        [vocab, positions, type_vocab]: [usize; 3],
        pad_token_id: u32,
        device: &B::Device,
    ) -> Self {
        Self {
            word_embeddings: EmbeddingConfig::new(vocab, sizes.hidden).init(device),
            position_embeddings: EmbeddingConfig::new(positions, sizes.hidden).init(device),
            token_type_embeddings: EmbeddingConfig::new(type_vocab, sizes.hidden).init(device),
            layer_norm: sizes.layer_norm(device),
            dropout: DropoutConfig::new(sizes.hidden_dropout).init(),
            pad_token_id,
        }
    }

    /// # Shapes
    /// - `input_ids`, `token_type_ids`: `[batch, seq]`; output `[batch, seq, hidden]`
    pub fn forward(&self, input_ids: Tensor<B, 2, Int>, token_type_ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let pad = self.pad_token_id as i64;
        let not_pad = input_ids.clone().not_equal_elem(pad).int();
        let positions = not_pad.clone().cumsum(1) * not_pad + pad;
        let x = super::embedding(&self.word_embeddings, input_ids)
            + super::embedding(&self.position_embeddings, positions)
            + super::embedding(&self.token_type_embeddings, token_type_ids);
        super::dropout(&self.dropout, super::layer_norm(&self.layer_norm, x))
    }

    /// The longest sequence the positions cover (those up to `pad_token_id` are never a real
    /// token's).
    pub fn max_positions(&self) -> usize {
        let rows = self.position_embeddings.weight.lazy_shape().as_slice()[0];
        rows.saturating_sub(self.pad_token_id as usize + 1)
    }
}

/// RoBERTa's classification head (RoBERTa, Longformer): first token, dropout, `dense`, tanh,
/// dropout, `out_proj`.
#[derive(Module, Debug)]
pub struct ClassificationHead<B: Backend> {
    /// `hidden -> hidden`.
    pub dense: Linear<B>,
    /// Classifier dropout.
    pub dropout: Dropout,
    /// `hidden -> num_labels`.
    pub out_proj: Linear<B>,
}

impl<B: Backend> ClassificationHead<B> {
    /// A head over `hidden` features with `num_labels` outputs and `dropout`.
    pub fn new(hidden: usize, num_labels: usize, dropout: f64, device: &B::Device) -> Self {
        Self {
            dense: LinearConfig::new(hidden, hidden).init(device),
            dropout: DropoutConfig::new(dropout).init(),
            out_proj: LinearConfig::new(hidden, num_labels).init(device),
        }
    }

    /// # Shapes
    /// - `hidden`: `[batch, seq, hidden]` -> `[batch, num_labels]`
    pub fn forward(&self, hidden: Tensor<B, 3>) -> Tensor<B, 2> {
        let [batch, _, h] = hidden.dims();
        let first = super::dropout(&self.dropout, hidden.narrow(1, 0, 1).reshape([batch, h]));
        linear(&self.out_proj, super::dropout(&self.dropout, activation::tanh(linear(&self.dense, first))))
    }
}
