//! The GPT-2 modules: embeddings, blocks (causal self-attention + MLP), final LayerNorm and the
//! sequence-classification head on the last non-padding token.

use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;

use super::Gpt2Config;
use crate::layers::{self, Activation};

impl Gpt2Config {
    /// Attention heads of block `i` (fewer than `n_head` after structured pruning).
    pub fn heads_in_layer(&self, i: usize) -> usize {
        self.prunelab_heads.as_ref().and_then(|h| h.get(i).copied()).unwrap_or(self.n_head)
    }

    fn layer_norm<B: Backend>(&self, device: &B::Device) -> LayerNorm<B> {
        LayerNormConfig::new(self.n_embd).with_epsilon(self.layer_norm_epsilon).init(device)
    }

    /// The decoder stack (`GPT2Model`).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Gpt2Model<B> {
        let d = self.n_embd;
        let head_dim = d / self.n_head;
        let block = |i: usize| {
            let mut scale = if self.scale_attn_weights { 1.0 / (head_dim as f64).sqrt() } else { 1.0 };
            if self.scale_attn_by_inverse_layer_idx {
                scale /= (i + 1) as f64;
            }
            let heads = self.heads_in_layer(i);
            let attn = heads * head_dim;
            Gpt2Block {
                ln_1: self.layer_norm(device),
                attn: Gpt2Attention {
                    c_attn: LinearConfig::new(d, 3 * attn).init(device),
                    c_proj: LinearConfig::new(attn, d).init(device),
                    attn_dropout: DropoutConfig::new(self.attn_pdrop).init(),
                    resid_dropout: DropoutConfig::new(self.resid_pdrop).init(),
                    num_heads: heads,
                    scale,
                },
                ln_2: self.layer_norm(device),
                mlp: Gpt2Mlp {
                    c_fc: LinearConfig::new(d, self.inner_dim()).init(device),
                    c_proj: LinearConfig::new(self.inner_dim(), d).init(device),
                    // Validated when the config was read.
                    act: Activation::from_hf(&self.activation_function).unwrap_or(Activation::GeluTanh),
                    dropout: DropoutConfig::new(self.resid_pdrop).init(),
                },
            }
        };
        Gpt2Model {
            wte: EmbeddingConfig::new(self.vocab_size, d).init(device),
            wpe: EmbeddingConfig::new(self.n_positions, d).init(device),
            drop: DropoutConfig::new(self.embd_pdrop).init(),
            h: (0..self.n_layer).map(block).collect(),
            ln_f: self.layer_norm(device),
        }
    }

    /// `GPT2ForSequenceClassification` with `num_labels` classes.
    pub fn init_classifier<B: Backend>(
        &self,
        num_labels: usize,
        device: &B::Device,
    ) -> Gpt2ForSequenceClassification<B> {
        Gpt2ForSequenceClassification {
            transformer: self.init(device),
            score: LinearConfig::new(self.n_embd, num_labels).with_bias(false).init(device),
            pad_token_id: self.pad_token_id(),
        }
    }
}

/// Causal self-attention with fused q/k/v (`attn` in transformers).
#[derive(Module, Debug)]
pub struct Gpt2Attention<B: Backend> {
    /// `Conv1D(hidden, 3 * hidden)`: query, key, value side by side.
    pub c_attn: Linear<B>,
    /// `Conv1D(hidden, hidden)`: output projection.
    pub c_proj: Linear<B>,
    /// Dropout on attention probabilities.
    pub attn_dropout: Dropout,
    /// Dropout on the output.
    pub resid_dropout: Dropout,
    /// Number of heads.
    pub num_heads: usize,
    /// Score scale (`1/sqrt(head_dim)`, possibly `/(layer+1)`).
    pub scale: f64,
}

impl<B: Backend> Gpt2Attention<B> {
    /// # Shapes
    /// - `x`: `[batch, seq, hidden]`; `mask`: `[batch, 1, seq, seq]` additive
    pub fn forward(&self, x: Tensor<B, 3>, mask: Tensor<B, 4>) -> Tensor<B, 3> {
        let mut qkv =
            layers::linear(&self.c_attn, x).chunk(3, 2).into_iter().map(|t| layers::split_heads(t, self.num_heads));
        let (Some(q), Some(k), Some(v)) = (qkv.next(), qkv.next(), qkv.next()) else {
            unreachable!("chunk(3) yields three tensors")
        };
        let context = layers::merge_heads(layers::attention(q, k, v, mask, self.scale, &self.attn_dropout));
        layers::dropout(&self.resid_dropout, layers::linear(&self.c_proj, context))
    }
}

/// The MLP (`mlp` in transformers).
#[derive(Module, Debug)]
pub struct Gpt2Mlp<B: Backend> {
    /// `Conv1D(hidden, inner)`.
    pub c_fc: Linear<B>,
    /// `Conv1D(inner, hidden)`.
    pub c_proj: Linear<B>,
    /// The activation (`gelu_new`).
    #[module(skip)]
    pub act: Activation,
    /// Dropout on the output.
    pub dropout: Dropout,
}

/// One pre-LayerNorm block.
#[derive(Module, Debug)]
pub struct Gpt2Block<B: Backend> {
    /// LayerNorm before attention.
    pub ln_1: LayerNorm<B>,
    /// Causal self-attention.
    pub attn: Gpt2Attention<B>,
    /// LayerNorm before the MLP.
    pub ln_2: LayerNorm<B>,
    /// The MLP.
    pub mlp: Gpt2Mlp<B>,
}

impl<B: Backend> Gpt2Block<B> {
    /// # Shapes
    /// - `x`: `[batch, seq, hidden]`; `mask`: `[batch, 1, seq, seq]` additive
    pub fn forward(&self, x: Tensor<B, 3>, mask: Tensor<B, 4>) -> Tensor<B, 3> {
        let x = x.clone() + self.attn.forward(layers::layer_norm(&self.ln_1, x), mask);
        let mlp = &self.mlp;
        let inner = layers::linear_act(&mlp.c_fc, layers::layer_norm(&self.ln_2, x.clone()), mlp.act);
        x + layers::dropout(&mlp.dropout, layers::linear(&mlp.c_proj, inner))
    }
}

/// `GPT2Model`: token and position embeddings, blocks, final LayerNorm.
#[derive(Module, Debug)]
pub struct Gpt2Model<B: Backend> {
    /// Token embeddings.
    pub wte: Embedding<B>,
    /// Position embeddings.
    pub wpe: Embedding<B>,
    /// Embedding dropout.
    pub drop: Dropout,
    /// The blocks (`h.N`).
    pub h: Vec<Gpt2Block<B>>,
    /// Final LayerNorm.
    pub ln_f: LayerNorm<B>,
}

impl<B: Backend> Gpt2Model<B> {
    /// The embedding output followed by every block's output (`n_layer + 1` tensors), and the
    /// final LayerNorm's output.
    ///
    /// Positions are `0..seq` whatever the padding, as in transformers (so left padding shifts
    /// the positions of the tokens).
    ///
    /// # Shapes
    /// - `input_ids`, `attention_mask`: `[batch, seq]`; every output `[batch, seq, hidden]`
    pub fn hidden_states(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
    ) -> (Vec<Tensor<B, 3>>, Tensor<B, 3>) {
        let [_, seq] = input_ids.dims();
        let device = input_ids.device();
        let positions = Tensor::<B, 1, Int>::arange(0..seq as i64, &device).reshape([1, seq]);
        let mask = layers::causal_mask(attention_mask);
        let mut states = vec![layers::dropout(&self.drop, layers::embedding(&self.wte, input_ids) + layers::embedding(&self.wpe, positions))];
        for block in &self.h {
            let next = block.forward(states.last().cloned().expect("embedding output"), mask.clone());
            states.push(next);
        }
        let last = layers::layer_norm(&self.ln_f, states.last().cloned().expect("embedding output"));
        (states, last)
    }
}

/// `GPT2ForSequenceClassification`: `score` on the last non-padding token.
#[derive(Module, Debug)]
pub struct Gpt2ForSequenceClassification<B: Backend> {
    /// The decoder.
    pub transformer: Gpt2Model<B>,
    /// `nn.Linear(hidden, num_labels, bias=False)`.
    pub score: Linear<B>,
    /// Padding id used to find the last real token.
    pub pad_token_id: u32,
}

impl<B: Backend> Gpt2ForSequenceClassification<B> {
    /// Logits `[batch, num_labels]` with every hidden state.
    ///
    /// Like transformers, the pooled token of each row is the rightmost token that is not the
    /// pad id (which works for left and right padding; a row of pad ids only pools token 0).
    pub fn forward_detailed(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
    ) -> crate::ClassifierOutput<B> {
        let [batch, seq] = input_ids.dims();
        let device = input_ids.device();
        let not_pad = input_ids.clone().not_equal_elem(self.pad_token_id as i64).int();
        let positions = Tensor::<B, 1, Int>::arange(0..seq as i64, &device).reshape([1, seq]);
        let last_token = (not_pad * positions).argmax(1); // [batch, 1]
        let (hidden_states, last) = self.transformer.hidden_states(input_ids, attention_mask);
        let [_, _, hidden] = last.dims();
        let index = last_token.reshape([batch, 1, 1]).expand([batch, 1, hidden]);
        let pooled = last.clone().gather(1, index).reshape([batch, hidden]);
        let mut hidden_states = hidden_states;
        hidden_states.push(last);
        crate::ClassifierOutput { logits: self.score.forward(pooled), hidden_states, pooled: None }
    }
}
