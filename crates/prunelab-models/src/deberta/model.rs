//! The DeBERTa modules: embeddings, disentangled self-attention, encoder layers, the context
//! pooler and the sequence-classification head. The embeddings, feed-forward blocks and pooler
//! are shared with DeBERTa-v2.

use burn::module::Param;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;

use super::DebertaConfig;
use super::relative::{self, RelativeInputs};
use crate::layers::blocks::{BlockSizes, Intermediate, PostLnOutput};
use crate::layers::{self, Activation};

impl DebertaConfig {
    /// An activation by its transformers name (validated when the config was read).
    pub(crate) fn activation(name: &str) -> Activation {
        Activation::from_hf(name).unwrap_or(Activation::Gelu)
    }

    pub(crate) fn layer_norm<B: Backend>(&self, device: &B::Device) -> LayerNorm<B> {
        LayerNormConfig::new(self.hidden_size).with_epsilon(self.layer_norm_eps).init(device)
    }

    pub(crate) fn linear<B: Backend>(&self, d_in: usize, d_out: usize, bias: bool, device: &B::Device) -> Linear<B> {
        LinearConfig::new(d_in, d_out).with_bias(bias).init(device)
    }

    /// `DebertaEmbeddings` (also DeBERTa-v2's).
    pub(crate) fn init_embeddings<B: Backend>(&self, device: &B::Device) -> DebertaEmbeddings<B> {
        let e = self.embedding_dim();
        DebertaEmbeddings {
            word_embeddings: EmbeddingConfig::new(self.vocab_size, e).init(device),
            position_embeddings: self
                .position_biased_input
                .then(|| EmbeddingConfig::new(self.max_position_embeddings, e).init(device)),
            token_type_embeddings: (self.type_vocab_size > 0)
                .then(|| EmbeddingConfig::new(self.type_vocab_size, e).init(device)),
            embed_proj: (e != self.hidden_size).then(|| self.linear(e, self.hidden_size, false, device)),
            layer_norm: self.layer_norm(device),
            dropout: DropoutConfig::new(self.hidden_dropout_prob).init(),
            max_position_embeddings: self.max_position_embeddings,
        }
    }

    fn block_sizes(&self) -> BlockSizes {
        BlockSizes {
            hidden: self.hidden_size,
            layer_norm_eps: self.layer_norm_eps,
            hidden_dropout: self.hidden_dropout_prob,
        }
    }

    /// The attention output block for `width` attention features.
    pub(crate) fn init_self_output<B: Backend>(&self, width: usize, device: &B::Device) -> PostLnOutput<B> {
        self.block_sizes().output(width, device)
    }

    /// The feed-forward blocks of a layer.
    pub(crate) fn init_feed_forward<B: Backend>(&self, device: &B::Device) -> (Intermediate<B>, PostLnOutput<B>) {
        let (h, inner) = (self.hidden_size, self.intermediate_size);
        (
            Intermediate::new(h, inner, Self::activation(&self.hidden_act), device),
            self.block_sizes().output(inner, device),
        )
    }

    /// `ContextPooler`.
    pub(crate) fn init_pooler<B: Backend>(&self, device: &B::Device) -> ContextPooler<B> {
        ContextPooler {
            dense: self.linear(self.hidden_size, self.hidden_size, true, device),
            dropout: DropoutConfig::new(self.pooler_dropout).init(),
            act: Self::activation(&self.pooler_hidden_act),
        }
    }

    /// The classifier's dropout: `cls_dropout`, else `hidden_dropout_prob`.
    pub(crate) fn classifier_dropout(&self) -> Dropout {
        DropoutConfig::new(self.cls_dropout.unwrap_or(self.hidden_dropout_prob)).init()
    }

    /// The encoder (`DebertaModel`).
    pub fn init<B: Backend>(&self, device: &B::Device) -> DebertaModel<B> {
        let h = self.hidden_size;
        let heads = self.num_attention_heads;
        let relative = self.relative_attention;
        let layer = |_| {
            let (intermediate, output) = self.init_feed_forward(device);
            DebertaLayer {
                attention: DebertaAttention {
                    self_attn: DisentangledSelfAttention {
                        q_bias: Param::from_tensor(Tensor::zeros([h], device)),
                        v_bias: Param::from_tensor(Tensor::zeros([h], device)),
                        in_proj: self.linear(h, 3 * h, false, device),
                        pos_proj: (relative && self.c2p()).then(|| self.linear(h, h, false, device)),
                        pos_q_proj: (relative && self.p2c()).then(|| self.linear(h, h, true, device)),
                        pos_dropout: DropoutConfig::new(self.hidden_dropout_prob).init(),
                        dropout: DropoutConfig::new(self.attention_probs_dropout_prob).init(),
                        num_heads: heads,
                        scale_factor: 1 + self.pos_att_type.len(),
                    },
                    output: self.init_self_output(h, device),
                },
                intermediate,
                output,
            }
        };
        let range = self.relative_range();
        DebertaModel {
            embeddings: self.init_embeddings(device),
            encoder: DebertaEncoder {
                layer: (0..self.num_hidden_layers).map(layer).collect(),
                rel_embeddings: relative.then(|| EmbeddingConfig::new(2 * range, h).init(device)),
                max_relative_positions: range,
            },
        }
    }

    /// `DebertaForSequenceClassification` with `num_labels` classes.
    pub fn init_classifier<B: Backend>(
        &self,
        num_labels: usize,
        device: &B::Device,
    ) -> DebertaForSequenceClassification<B> {
        DebertaForSequenceClassification {
            deberta: self.init(device),
            pooler: self.init_pooler(device),
            classifier: self.linear(self.hidden_size, num_labels, true, device),
            dropout: self.classifier_dropout(),
        }
    }
}

/// Word (+ position, + token-type) embeddings, the optional `embed_proj`, LayerNorm, padding
/// zeroed, dropout.
#[derive(Module, Debug)]
pub struct DebertaEmbeddings<B: Backend> {
    /// Token embeddings `[vocab, embedding_size]`.
    pub word_embeddings: Embedding<B>,
    /// Absolute position embeddings, when `position_biased_input`.
    pub position_embeddings: Option<Embedding<B>>,
    /// Segment embeddings, when `type_vocab_size > 0`.
    pub token_type_embeddings: Option<Embedding<B>>,
    /// `embedding_size -> hidden_size`, when they differ.
    pub embed_proj: Option<Linear<B>>,
    /// `LayerNorm` in transformers.
    pub layer_norm: LayerNorm<B>,
    /// Hidden dropout.
    pub dropout: Dropout,
    /// `max_position_embeddings` of the config (the longest input the model was built for).
    pub max_position_embeddings: usize,
}

impl<B: Backend> DebertaEmbeddings<B> {
    /// # Shapes
    /// - `input_ids`, `attention_mask`, `token_type_ids`: `[batch, seq]` (token types default to
    ///   0 and are ignored without token-type embeddings)
    /// - output: `[batch, seq, hidden]`, zero on padding
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Tensor<B, 3> {
        let [batch, seq] = input_ids.dims();
        let device = input_ids.device();
        let mut x = layers::embedding(&self.word_embeddings, input_ids);
        if let Some(position) = &self.position_embeddings {
            let positions = Tensor::<B, 1, Int>::arange(0..seq as i64, &device).reshape([1, seq]);
            x = x + layers::embedding(position, positions);
        }
        if let Some(token_type) = &self.token_type_embeddings {
            let types = token_type_ids.unwrap_or_else(|| Tensor::zeros([batch, seq], &device));
            x = x + layers::embedding(token_type, types);
        }
        if let Some(proj) = &self.embed_proj {
            x = proj.forward(x);
        }
        let x = layers::layer_norm(&self.layer_norm, x) * attention_mask.float().reshape([batch, seq, 1]);
        layers::dropout(&self.dropout, x)
    }

    /// The longest sequence the model takes: the position embeddings' length, else the config's
    /// `max_position_embeddings`.
    pub fn max_positions(&self) -> usize {
        self.position_embeddings.as_ref().map_or(self.max_position_embeddings, |p| p.weight.lazy_shape().as_slice()[0])
    }
}

/// transformers' DeBERTa `get_attention_mask`: query `i` attends key `j` when both are tokens.
///
/// # Shapes
/// - `attention_mask`: `[batch, seq]`, 1 on tokens
/// - output: `[batch, 1, seq, seq]`, true where the score is replaced by the lowest float
pub fn blocked_pairs<B: Backend>(attention_mask: Tensor<B, 2, Int>) -> Tensor<B, 4, Bool> {
    let [batch, seq] = attention_mask.dims();
    let pairs = attention_mask.clone().reshape([batch, 1, 1, seq]) * attention_mask.reshape([batch, 1, seq, 1]);
    pairs.equal_elem(0)
}

/// Softmax over keys of scores whose blocked entries are replaced by the lowest float (rows of
/// padding queries, entirely blocked, become uniform, as in transformers), dropout, times values.
///
/// # Shapes
/// - `scores`: `[batch, heads, seq, seq]`; `blocked`: `[batch, 1, seq, seq]`; `v`: `[batch,
///   heads, seq, head_dim]`
/// - output: `[batch, seq, heads * head_dim]`
pub(crate) fn attend<B: Backend>(
    scores: Tensor<B, 4>,
    blocked: Tensor<B, 4, Bool>,
    v: Tensor<B, 4>,
    dropout: &Dropout,
) -> Tensor<B, 3> {
    let dims = scores.dims();
    let scores = scores.mask_fill(blocked.expand(dims), layers::MASKED);
    let probs = layers::dropout(dropout, layers::softmax(scores, 3));
    layers::merge_heads(probs.matmul(v))
}

/// `x @ yᵀ` for `x` `[batch, heads, n, d]` and the relative projections `y` `[1, heads, m, d]`,
/// then entries gathered along the last dimension by `index` (`[1, 1, n, seq]`).
pub(crate) fn gathered_scores<B: Backend>(x: Tensor<B, 4>, y: Tensor<B, 4>, index: Tensor<B, 4, Int>) -> Tensor<B, 4> {
    let [batch, heads, n, d] = x.dims();
    let m = y.dims()[2];
    let seq = index.dims()[3];
    let scores = x.matmul(y.swap_dims(2, 3).expand([batch, heads, d, m]));
    scores.gather(3, index.expand([batch, heads, n, seq]))
}

/// Disentangled self-attention (`attention.self`): one head-interleaved `in_proj` plus
/// `q_bias`/`v_bias`, and the relative terms.
#[derive(Module, Debug)]
pub struct DisentangledSelfAttention<B: Backend> {
    /// Added to the queries.
    pub q_bias: Param<Tensor<B, 1>>,
    /// Added to the values.
    pub v_bias: Param<Tensor<B, 1>>,
    /// `hidden -> 3 * hidden`, laid out `[q, k, v]` per head; no bias.
    pub in_proj: Linear<B>,
    /// Keys of the relative embeddings (`c2p`); no bias.
    pub pos_proj: Option<Linear<B>>,
    /// Queries of the relative embeddings (`p2c`).
    pub pos_q_proj: Option<Linear<B>>,
    /// Dropout on the relative embeddings.
    pub pos_dropout: Dropout,
    /// Dropout on attention probabilities.
    pub dropout: Dropout,
    /// Number of heads.
    pub num_heads: usize,
    /// `1 + len(pos_att_type)`: scores are divided by `sqrt(head_dim * scale_factor)`.
    pub scale_factor: usize,
}

impl<B: Backend> DisentangledSelfAttention<B> {
    /// # Shapes
    /// - `x`: `[batch, seq, hidden]`; `blocked`: `[batch, 1, seq, seq]`
    /// - output: `[batch, seq, hidden]`
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        blocked: Tensor<B, 4, Bool>,
        rel: Option<&RelativeInputs<B>>,
    ) -> Tensor<B, 3> {
        let heads = self.num_heads;
        let qkv = layers::split_heads(layers::linear(&self.in_proj, x), heads);
        let d = qkv.dims()[3] / 3;
        let per_head = |p: &Param<Tensor<B, 1>>| p.val().reshape([1, heads, 1, d]);
        let q = qkv.clone().narrow(3, 0, d) + per_head(&self.q_bias);
        let k = qkv.clone().narrow(3, d, d);
        let v = qkv.narrow(3, 2 * d, d) + per_head(&self.v_bias);
        let scale = relative::scaled_size_sqrt(d, self.scale_factor);
        let q = q.div_scalar(scale);
        let mut scores = q.clone().matmul(k.clone().swap_dims(2, 3));
        if let Some(bias) = rel.and_then(|rel| self.relative_scores(q, k, rel)) {
            scores = scores + bias;
        }
        attend(scores, blocked, v, &self.dropout)
    }

    /// transformers' `disentangled_att_bias`: the `c2p` and `p2c` terms (`q` already scaled).
    fn relative_scores(&self, q: Tensor<B, 4>, k: Tensor<B, 4>, rel: &RelativeInputs<B>) -> Option<Tensor<B, 4>> {
        let heads = self.num_heads;
        let embeddings = layers::dropout(&self.pos_dropout, rel.embeddings.clone()).unsqueeze::<3>();
        let d = q.dims()[3];
        let c2p = self.pos_proj.as_ref().map(|proj| {
            let pos_key = layers::split_heads(proj.forward(embeddings.clone()), heads);
            gathered_scores(q, pos_key, rel.c2p_index.clone())
        });
        let p2c = self.pos_q_proj.as_ref().map(|proj| {
            let pos_query = layers::split_heads(proj.forward(embeddings), heads)
                .div_scalar(relative::scaled_size_sqrt(d, self.scale_factor));
            gathered_scores(k, pos_query, rel.p2c_index.clone()).swap_dims(2, 3)
        });
        match (c2p, p2c) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        }
    }
}

/// Self-attention plus its output block.
#[derive(Module, Debug)]
pub struct DebertaAttention<B: Backend> {
    /// `self` in transformers (a Rust keyword, hence the name).
    pub self_attn: DisentangledSelfAttention<B>,
    /// Output projection block.
    pub output: PostLnOutput<B>,
}

/// One encoder layer.
#[derive(Module, Debug)]
pub struct DebertaLayer<B: Backend> {
    /// Attention block.
    pub attention: DebertaAttention<B>,
    /// Feed-forward first half.
    pub intermediate: Intermediate<B>,
    /// Feed-forward second half.
    pub output: PostLnOutput<B>,
}

impl<B: Backend> DebertaLayer<B> {
    /// # Shapes
    /// - `x`: `[batch, seq, hidden]`; `blocked`: `[batch, 1, seq, seq]`
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        blocked: Tensor<B, 4, Bool>,
        rel: Option<&RelativeInputs<B>>,
    ) -> Tensor<B, 3> {
        let attn = self.attention.self_attn.forward(x.clone(), blocked, rel);
        let x = self.attention.output.forward(attn, x);
        self.output.forward(self.intermediate.forward(x.clone()), x)
    }
}

/// The layers and the relative-position embeddings they share.
#[derive(Module, Debug)]
pub struct DebertaEncoder<B: Backend> {
    /// `layer.N` in transformers.
    pub layer: Vec<DebertaLayer<B>>,
    /// `[2 * max_relative_positions, hidden]`, when `relative_attention`.
    pub rel_embeddings: Option<Embedding<B>>,
    /// The relative range (`max_relative_positions`, defaulted).
    pub max_relative_positions: usize,
}

impl<B: Backend> DebertaEncoder<B> {
    /// The relative embeddings and indices for sequences of `seq` tokens: distances clamped to
    /// `span = min(seq, max_relative_positions)`, the embeddings `max - span .. max + span`.
    pub fn relative_inputs(&self, seq: usize) -> Option<RelativeInputs<B>> {
        let table = self.rel_embeddings.as_ref()?;
        let max = self.max_relative_positions;
        let span = seq.min(max);
        let embeddings = table.weight.val().narrow(0, max - span, 2 * span);
        Some(RelativeInputs::new(embeddings, &relative::relative_positions(seq, None), seq, span))
    }
}

/// `DebertaModel`: embeddings and encoder.
#[derive(Module, Debug)]
pub struct DebertaModel<B: Backend> {
    /// Embeddings.
    pub embeddings: DebertaEmbeddings<B>,
    /// Encoder layers.
    pub encoder: DebertaEncoder<B>,
}

impl<B: Backend> DebertaModel<B> {
    /// The embedding output followed by every layer's output: `num_hidden_layers + 1` tensors
    /// `[batch, seq, hidden]`, as transformers' `hidden_states`.
    pub fn hidden_states(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Vec<Tensor<B, 3>> {
        let seq = input_ids.dims()[1];
        let blocked = blocked_pairs(attention_mask.clone());
        let rel = self.encoder.relative_inputs(seq);
        let mut states = vec![self.embeddings.forward(input_ids, attention_mask, token_type_ids)];
        for layer in &self.encoder.layer {
            let next = layer.forward(states.last().cloned().expect("embedding output"), blocked.clone(), rel.as_ref());
            states.push(next);
        }
        states
    }
}

/// `ContextPooler`: the first token, dropout, dense, `pooler_hidden_act`.
#[derive(Module, Debug)]
pub struct ContextPooler<B: Backend> {
    /// `hidden -> hidden`.
    pub dense: Linear<B>,
    /// `pooler_dropout`.
    pub dropout: Dropout,
    /// `pooler_hidden_act`.
    #[module(skip)]
    pub act: Activation,
}

impl<B: Backend> ContextPooler<B> {
    /// # Shapes
    /// - `hidden`: `[batch, seq, hidden]` -> `[batch, hidden]`
    pub fn forward(&self, hidden: Tensor<B, 3>) -> Tensor<B, 2> {
        let [batch, _, h] = hidden.dims();
        let first = layers::dropout(&self.dropout, hidden.narrow(1, 0, 1).reshape([batch, h]));
        layers::linear_act(&self.dense, first, self.act)
    }
}

/// `DebertaForSequenceClassification`: context pooler, dropout, linear classifier.
#[derive(Module, Debug)]
pub struct DebertaForSequenceClassification<B: Backend> {
    /// The encoder.
    pub deberta: DebertaModel<B>,
    /// The pooler.
    pub pooler: ContextPooler<B>,
    /// `hidden -> num_labels`.
    pub classifier: Linear<B>,
    /// Classifier dropout (`cls_dropout`).
    pub dropout: Dropout,
}

impl<B: Backend> DebertaForSequenceClassification<B> {
    /// Logits `[batch, num_labels]` with every hidden state and the pooled output.
    pub fn forward_detailed(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> crate::ClassifierOutput<B> {
        let hidden_states = self.deberta.hidden_states(input_ids, attention_mask, token_type_ids);
        classify(hidden_states, &self.pooler, &self.dropout, &self.classifier)
    }
}

/// Pool the last hidden state, apply dropout and the classifier.
pub(crate) fn classify<B: Backend>(
    hidden_states: Vec<Tensor<B, 3>>,
    pooler: &ContextPooler<B>,
    dropout: &Dropout,
    classifier: &Linear<B>,
) -> crate::ClassifierOutput<B> {
    let pooled = pooler.forward(hidden_states.last().cloned().expect("embedding output"));
    let logits = classifier.forward(layers::dropout(dropout, pooled.clone()));
    crate::ClassifierOutput { logits, hidden_states, pooled: Some(pooled) }
}
