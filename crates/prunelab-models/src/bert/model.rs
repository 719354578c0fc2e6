//! The BERT modules: embeddings, encoder layers, pooler and the sequence-classification head.

use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation;

use super::BertConfig;
use crate::layers::blocks::{BlockSizes, Intermediate, PostLnOutput};
use crate::layers::{self, Activation};

impl BertConfig {
    /// Attention heads of layer `i` (fewer than `num_attention_heads` after structured pruning).
    pub fn heads_in_layer(&self, i: usize) -> usize {
        self.prunelab_heads.as_ref().and_then(|h| h.get(i).copied()).unwrap_or(self.num_attention_heads)
    }

    pub(crate) fn activation(&self) -> Activation {
        // Validated when the config was read.
        Activation::from_hf(&self.hidden_act).unwrap_or(Activation::Gelu)
    }

    pub(crate) fn block_sizes(&self) -> BlockSizes {
        BlockSizes {
            hidden: self.hidden_size,
            layer_norm_eps: self.layer_norm_eps,
            hidden_dropout: self.hidden_dropout_prob,
        }
    }

    fn linear<B: Backend>(&self, d_in: usize, d_out: usize, device: &B::Device) -> Linear<B> {
        LinearConfig::new(d_in, d_out).init(device)
    }

    /// The encoder with its pooler (`BertModel`).
    pub fn init<B: Backend>(&self, device: &B::Device) -> BertModel<B> {
        let h = self.hidden_size;
        let sizes = self.block_sizes();
        BertModel {
            embeddings: BertEmbeddings {
                word_embeddings: EmbeddingConfig::new(self.vocab_size, h).init(device),
                position_embeddings: EmbeddingConfig::new(self.max_position_embeddings, h).init(device),
                token_type_embeddings: EmbeddingConfig::new(self.type_vocab_size, h).init(device),
                layer_norm: sizes.layer_norm(device),
                dropout: DropoutConfig::new(self.hidden_dropout_prob).init(),
            },
            encoder: self.init_encoder(device),
            pooler: BertPooler { dense: self.linear(h, h, device) },
        }
    }

    /// The encoder layers (also RoBERTa's).
    pub(crate) fn init_encoder<B: Backend>(&self, device: &B::Device) -> BertEncoder<B> {
        let layer = |i: usize| {
            BertLayerSizes {
                block: self.block_sizes(),
                heads: self.heads_in_layer(i),
                head_dim: self.hidden_size / self.num_attention_heads,
                intermediate: self.intermediate_size,
                act: self.activation(),
                attention_dropout: self.attention_probs_dropout_prob,
            }
            .init(device)
        };
        BertEncoder { layer: (0..self.num_hidden_layers).map(layer).collect() }
    }

    /// `BertForSequenceClassification` with `num_labels` classes.
    pub fn init_classifier<B: Backend>(
        &self,
        num_labels: usize,
        device: &B::Device,
    ) -> BertForSequenceClassification<B> {
        BertForSequenceClassification {
            bert: self.init(device),
            dropout: DropoutConfig::new(self.classifier_dropout.unwrap_or(self.hidden_dropout_prob)).init(),
            classifier: self.linear(self.hidden_size, num_labels, device),
        }
    }
}

/// Word + position + token-type embeddings, then LayerNorm and dropout.
#[derive(Module, Debug)]
pub struct BertEmbeddings<B: Backend> {
    /// Token embeddings `[vocab, hidden]`.
    pub word_embeddings: Embedding<B>,
    /// Absolute position embeddings `[max_positions, hidden]`.
    pub position_embeddings: Embedding<B>,
    /// Segment embeddings `[type_vocab, hidden]`.
    pub token_type_embeddings: Embedding<B>,
    /// `LayerNorm` in transformers.
    pub layer_norm: LayerNorm<B>,
    /// Hidden dropout.
    pub dropout: Dropout,
}

impl<B: Backend> BertEmbeddings<B> {
    /// # Shapes
    /// - `input_ids`, `token_type_ids`: `[batch, seq]` (token types default to 0)
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, input_ids: Tensor<B, 2, Int>, token_type_ids: Option<Tensor<B, 2, Int>>) -> Tensor<B, 3> {
        let [batch, seq] = input_ids.dims();
        let device = input_ids.device();
        let positions = Tensor::<B, 1, Int>::arange(0..seq as i64, &device).reshape([1, seq]);
        let types = token_type_ids.unwrap_or_else(|| Tensor::zeros([batch, seq], &device));
        let x = layers::embedding(&self.word_embeddings, input_ids)
            + layers::embedding(&self.position_embeddings, positions)
            + layers::embedding(&self.token_type_embeddings, types);
        layers::dropout(&self.dropout, layers::layer_norm(&self.layer_norm, x))
    }
}

/// Multi-head self-attention (`attention.self` in transformers).
#[derive(Module, Debug)]
pub struct BertSelfAttention<B: Backend> {
    /// Query projection.
    pub query: Linear<B>,
    /// Key projection.
    pub key: Linear<B>,
    /// Value projection.
    pub value: Linear<B>,
    /// Dropout on attention probabilities.
    pub dropout: Dropout,
    /// Number of heads.
    pub num_heads: usize,
}

impl<B: Backend> BertSelfAttention<B> {
    /// # Shapes
    /// - `x`: `[batch, seq, hidden]`; `mask`: `[batch, 1, 1, seq]` additive
    /// - output: `[batch, seq, hidden]`
    pub fn forward(&self, x: Tensor<B, 3>, mask: Tensor<B, 4>) -> Tensor<B, 3> {
        let heads = self.num_heads;
        let q = layers::split_heads(layers::linear(&self.query, x.clone()), heads);
        let k = layers::split_heads(layers::linear(&self.key, x.clone()), heads);
        let v = layers::split_heads(layers::linear(&self.value, x), heads);
        let head_dim = q.dims()[3];
        let scale = 1.0 / (head_dim as f64).sqrt();
        layers::merge_heads(layers::attention(q, k, v, mask, scale, &self.dropout))
    }
}

/// Self-attention plus its output block.
#[derive(Module, Debug)]
pub struct BertAttention<B: Backend> {
    /// `self` in transformers (a Rust keyword, hence the name).
    pub self_attn: BertSelfAttention<B>,
    /// Output projection block.
    pub output: PostLnOutput<B>,
}

/// One encoder layer.
#[derive(Module, Debug)]
pub struct BertLayer<B: Backend> {
    /// Attention block.
    pub attention: BertAttention<B>,
    /// Feed-forward first half.
    pub intermediate: Intermediate<B>,
    /// Feed-forward second half.
    pub output: PostLnOutput<B>,
}

impl<B: Backend> BertLayer<B> {
    /// # Shapes
    /// - `x`: `[batch, seq, hidden]`; `mask`: `[batch, 1, 1, seq]` additive
    pub fn forward(&self, x: Tensor<B, 3>, mask: Tensor<B, 4>) -> Tensor<B, 3> {
        let attn = self.attention.self_attn.forward(x.clone(), mask);
        let x = self.attention.output.forward(attn, x);
        self.output.forward(self.intermediate.forward(x.clone()), x)
    }
}

/// What a BERT encoder layer is built from (BERT's and RoBERTa's layers).
#[derive(Debug, Clone, Copy)]
pub struct BertLayerSizes {
    /// Hidden size, LayerNorm epsilon, hidden dropout.
    pub block: BlockSizes,
    /// Attention heads of this layer.
    pub heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Inner size of the feed-forward block.
    pub intermediate: usize,
    /// Feed-forward activation.
    pub act: Activation,
    /// Dropout on attention probabilities.
    pub attention_dropout: f64,
}

impl BertLayerSizes {
    /// A freshly initialised layer (Burn's initialisers, in transformers' module order).
    pub fn init<B: Backend>(&self, device: &B::Device) -> BertLayer<B> {
        let (h, attn) = (self.block.hidden, self.heads * self.head_dim);
        let linear = |d_in, d_out| LinearConfig::new(d_in, d_out).init(device);
        BertLayer {
            attention: BertAttention {
                self_attn: BertSelfAttention {
                    query: linear(h, attn),
                    key: linear(h, attn),
                    value: linear(h, attn),
                    dropout: DropoutConfig::new(self.attention_dropout).init(),
                    num_heads: self.heads,
                },
                output: self.block.output(attn, device),
            },
            intermediate: Intermediate::new(h, self.intermediate, self.act, device),
            output: self.block.output(self.intermediate, device),
        }
    }
}

/// The stack of encoder layers.
#[derive(Module, Debug)]
pub struct BertEncoder<B: Backend> {
    /// `layer.N` in transformers.
    pub layer: Vec<BertLayer<B>>,
}

impl<B: Backend> BertEncoder<B> {
    /// `embedded` followed by every layer's output, the padding (`attention_mask` 0) masked out
    /// of the keys.
    ///
    /// # Shapes
    /// - `embedded`: `[batch, seq, hidden]`; `attention_mask`: `[batch, seq]`
    pub fn hidden_states(&self, embedded: Tensor<B, 3>, attention_mask: Tensor<B, 2, Int>) -> Vec<Tensor<B, 3>> {
        let mask = layers::padding_mask(attention_mask);
        let mut states = vec![embedded];
        for layer in &self.layer {
            let next = layer.forward(states.last().cloned().expect("embedding output"), mask.clone());
            states.push(next);
        }
        states
    }
}

/// `tanh(dense(h[:, 0]))`: the pooled `[CLS]` representation.
#[derive(Module, Debug)]
pub struct BertPooler<B: Backend> {
    /// `hidden -> hidden`.
    pub dense: Linear<B>,
}

impl<B: Backend> BertPooler<B> {
    /// # Shapes
    /// - `hidden`: `[batch, seq, hidden]` -> `[batch, hidden]`
    pub fn forward(&self, hidden: Tensor<B, 3>) -> Tensor<B, 2> {
        let [batch, _, h] = hidden.dims();
        let first = hidden.narrow(1, 0, 1).reshape([batch, h]);
        activation::tanh(layers::linear(&self.dense, first))
    }
}

/// `BertModel`: embeddings, encoder and pooler.
#[derive(Module, Debug)]
pub struct BertModel<B: Backend> {
    /// Embeddings.
    pub embeddings: BertEmbeddings<B>,
    /// Encoder layers.
    pub encoder: BertEncoder<B>,
    /// Pooler.
    pub pooler: BertPooler<B>,
}

impl<B: Backend> BertModel<B> {
    /// The embedding output followed by every layer's output: `num_hidden_layers + 1` tensors
    /// `[batch, seq, hidden]`, as transformers' `hidden_states`.
    pub fn hidden_states(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Vec<Tensor<B, 3>> {
        self.encoder.hidden_states(self.embeddings.forward(input_ids, token_type_ids), attention_mask)
    }
}

/// `BertForSequenceClassification`: pooled `[CLS]`, dropout, linear classifier.
#[derive(Module, Debug)]
pub struct BertForSequenceClassification<B: Backend> {
    /// The encoder.
    pub bert: BertModel<B>,
    /// Classifier dropout.
    pub dropout: Dropout,
    /// `hidden -> num_labels`.
    pub classifier: Linear<B>,
}

impl<B: Backend> BertForSequenceClassification<B> {
    /// Logits `[batch, num_labels]` with every hidden state and the pooled output.
    pub fn forward_detailed(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> crate::ClassifierOutput<B> {
        let hidden_states = self.bert.hidden_states(input_ids, attention_mask, token_type_ids);
        let pooled = self.bert.pooler.forward(hidden_states.last().cloned().expect("embedding output"));
        let logits = self.classifier.forward(layers::dropout(&self.dropout, pooled.clone()));
        crate::ClassifierOutput { logits, hidden_states, pooled: Some(pooled) }
    }
}
