//! The LED modules: the Longformer-attention encoder, the BART-style decoder and
//! `LEDForSequenceClassification`'s head.

use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation;

use super::LedConfig;
use crate::layers::{self, Activation};
use crate::longformer::attention::{AttentionPattern, LongformerSelfAttention};
use crate::longformer::{pad_columns, padded_len};

impl LedConfig {
    fn linear<B: Backend>(&self, d_in: usize, d_out: usize, device: &B::Device) -> Linear<B> {
        LinearConfig::new(d_in, d_out).init(device)
    }

    fn layer_norm<B: Backend>(&self, device: &B::Device) -> LayerNorm<B> {
        // `nn.LayerNorm(d_model)`: PyTorch's default epsilon.
        LayerNormConfig::new(self.d_model).with_epsilon(1e-5).init(device)
    }

    fn activation(&self) -> Activation {
        // Validated when the config was read.
        Activation::from_hf(&self.activation_function).unwrap_or(Activation::Gelu)
    }

    fn decoder_attention<B: Backend>(&self, device: &B::Device) -> LedDecoderAttention<B> {
        let d = self.d_model;
        LedDecoderAttention {
            k_proj: self.linear(d, d, device),
            v_proj: self.linear(d, d, device),
            q_proj: self.linear(d, d, device),
            out_proj: self.linear(d, d, device),
            dropout: DropoutConfig::new(self.attention_dropout).init(),
            num_heads: self.decoder_attention_heads,
        }
    }

    /// The encoder-decoder (`LEDModel`).
    pub fn init<B: Backend>(&self, device: &B::Device) -> LedModel<B> {
        let d = self.d_model;
        let (pad, _, _) = self.special_ids().unwrap_or((1, 2, 2));
        let dropout = DropoutConfig::new(self.dropout);
        let encoder_layer = |i: usize| LedEncoderLayer {
            self_attn: LedEncoderAttention {
                longformer_self_attn: LongformerSelfAttention {
                    query: self.linear(d, d, device),
                    key: self.linear(d, d, device),
                    value: self.linear(d, d, device),
                    query_global: self.linear(d, d, device),
                    key_global: self.linear(d, d, device),
                    value_global: self.linear(d, d, device),
                    dropout: DropoutConfig::new(self.attention_dropout).init(),
                    num_heads: self.encoder_attention_heads,
                    one_sided_window: self.attention_window.of_layer(i) / 2,
                },
                output: self.linear(d, d, device),
            },
            self_attn_layer_norm: self.layer_norm(device),
            fc1: self.linear(d, self.encoder_ffn_dim, device),
            fc2: self.linear(self.encoder_ffn_dim, d, device),
            final_layer_norm: self.layer_norm(device),
            act: self.activation(),
            dropout: dropout.init(),
            activation_dropout: DropoutConfig::new(self.activation_dropout).init(),
        };
        let decoder_layer = |_| LedDecoderLayer {
            self_attn: self.decoder_attention(device),
            self_attn_layer_norm: self.layer_norm(device),
            encoder_attn: self.decoder_attention(device),
            encoder_attn_layer_norm: self.layer_norm(device),
            fc1: self.linear(d, self.decoder_ffn_dim, device),
            fc2: self.linear(self.decoder_ffn_dim, d, device),
            final_layer_norm: self.layer_norm(device),
            act: self.activation(),
            dropout: dropout.init(),
            activation_dropout: DropoutConfig::new(self.activation_dropout).init(),
        };
        LedModel {
            shared: EmbeddingConfig::new(self.vocab_size, d).init(device),
            encoder: LedEncoder {
                embed_positions: EmbeddingConfig::new(self.max_encoder_position_embeddings, d).init(device),
                layers: (0..self.encoder_layers).map(encoder_layer).collect(),
                layernorm_embedding: self.layer_norm(device),
                dropout: dropout.init(),
                padding_multiple: self.attention_window.padding_multiple(self.encoder_layers),
                pad_token_id: pad,
            },
            decoder: LedDecoder {
                embed_positions: EmbeddingConfig::new(self.max_decoder_position_embeddings, d).init(device),
                layers: (0..self.decoder_layers).map(decoder_layer).collect(),
                layernorm_embedding: self.layer_norm(device),
                dropout: dropout.init(),
            },
        }
    }

    /// `LEDForSequenceClassification` (transformers 4) with `num_labels` classes.
    pub fn init_classifier<B: Backend>(
        &self,
        num_labels: usize,
        device: &B::Device,
    ) -> LedForSequenceClassification<B> {
        let (pad, eos, start) = self.special_ids().unwrap_or((1, 2, 2));
        let d = self.d_model;
        LedForSequenceClassification {
            led: self.init(device),
            classification_head: LedClassificationHead {
                dense: self.linear(d, d, device),
                dropout: DropoutConfig::new(self.classifier_dropout).init(),
                out_proj: self.linear(d, num_labels, device),
            },
            pad_token_id: pad,
            eos_token_id: eos,
            decoder_start_token_id: start,
        }
    }
}

/// `LEDEncoderAttention`: Longformer self-attention and its output projection.
#[derive(Module, Debug)]
pub struct LedEncoderAttention<B: Backend> {
    /// Sliding-window + global self-attention.
    pub longformer_self_attn: LongformerSelfAttention<B>,
    /// Output projection.
    pub output: Linear<B>,
}

/// One post-LayerNorm encoder layer.
#[derive(Module, Debug)]
pub struct LedEncoderLayer<B: Backend> {
    /// Self-attention.
    pub self_attn: LedEncoderAttention<B>,
    /// LayerNorm after the attention residual.
    pub self_attn_layer_norm: LayerNorm<B>,
    /// `d_model -> encoder_ffn_dim`.
    pub fc1: Linear<B>,
    /// `encoder_ffn_dim -> d_model`.
    pub fc2: Linear<B>,
    /// LayerNorm after the feed-forward residual.
    pub final_layer_norm: LayerNorm<B>,
    /// The activation.
    #[module(skip)]
    pub act: Activation,
    /// Dropout on sub-layer outputs.
    pub dropout: Dropout,
    /// Dropout after the activation.
    pub activation_dropout: Dropout,
}

impl<B: Backend> LedEncoderLayer<B> {
    /// # Shapes
    /// - `x`: `[batch, seq, d_model]`, `seq` padded to the window multiple
    pub fn forward(&self, x: Tensor<B, 3>, pattern: &AttentionPattern<B>) -> Tensor<B, 3> {
        let attn =
            layers::linear(&self.self_attn.output, self.self_attn.longformer_self_attn.forward(x.clone(), pattern));
        let x = layers::add_layer_norm(&self.self_attn_layer_norm, x, layers::dropout(&self.dropout, attn));
        let inner = layers::dropout(&self.activation_dropout, layers::linear_act(&self.fc1, x.clone(), self.act));
        layers::add_layer_norm(&self.final_layer_norm, x, layers::dropout(&self.dropout, layers::linear(&self.fc2, inner)))
    }
}

/// `LEDEncoder` (its `embed_tokens` is [`LedModel::shared`]).
#[derive(Module, Debug)]
pub struct LedEncoder<B: Backend> {
    /// Learned positions from 0.
    pub embed_positions: Embedding<B>,
    /// The layers.
    pub layers: Vec<LedEncoderLayer<B>>,
    /// LayerNorm of the embeddings.
    pub layernorm_embedding: LayerNorm<B>,
    /// Dropout of the embeddings.
    pub dropout: Dropout,
    /// Inputs are padded to a multiple of this.
    pub padding_multiple: usize,
    /// The id window padding is filled with.
    pub pad_token_id: u32,
}

impl<B: Backend> LedEncoder<B> {
    /// The embedding output and every layer's output, cut back to the input length.
    ///
    /// # Shapes
    /// - inputs `[batch, seq]`; outputs `encoder_layers + 1` tensors `[batch, seq, d_model]`
    pub fn hidden_states(
        &self,
        shared: &Embedding<B>,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        global_attention_mask: Option<Tensor<B, 2, Int>>,
    ) -> Vec<Tensor<B, 3>> {
        let [_, seq] = input_ids.dims();
        let padded = padded_len(seq, self.padding_multiple);
        let device = input_ids.device();
        let input_ids = pad_columns(input_ids, padded, self.pad_token_id as i64);
        let pattern = AttentionPattern::new(
            pad_columns(attention_mask, padded, 0),
            global_attention_mask.map(|g| pad_columns(g, padded, 0)),
        );
        let positions = Tensor::<B, 1, Int>::arange(0..padded as i64, &device).reshape([1, padded]);
        let x = layers::embedding(shared, input_ids) + layers::embedding(&self.embed_positions, positions);
        let mut states = vec![layers::dropout(&self.dropout, layers::layer_norm(&self.layernorm_embedding, x))];
        for layer in &self.layers {
            let next = layer.forward(states.last().cloned().expect("embedding output"), &pattern);
            states.push(next);
        }
        states.into_iter().map(|s| s.narrow(1, 0, seq)).collect()
    }
}

/// `LEDDecoderAttention`: multi-head attention over the decoder itself or the encoder output.
#[derive(Module, Debug)]
pub struct LedDecoderAttention<B: Backend> {
    /// Key projection.
    pub k_proj: Linear<B>,
    /// Value projection.
    pub v_proj: Linear<B>,
    /// Query projection.
    pub q_proj: Linear<B>,
    /// Output projection.
    pub out_proj: Linear<B>,
    /// Dropout on attention probabilities.
    pub dropout: Dropout,
    /// Number of heads.
    pub num_heads: usize,
}

impl<B: Backend> LedDecoderAttention<B> {
    /// # Shapes
    /// - `x`: `[batch, tgt, d]`; `kv`: `[batch, src, d]`; `mask`: additive, broadcastable to
    ///   `[batch, heads, tgt, src]`
    pub fn forward(&self, x: Tensor<B, 3>, kv: Tensor<B, 3>, mask: Tensor<B, 4>) -> Tensor<B, 3> {
        let heads = self.num_heads;
        let q = layers::split_heads(layers::linear(&self.q_proj, x), heads);
        let k = layers::split_heads(layers::linear(&self.k_proj, kv.clone()), heads);
        let v = layers::split_heads(layers::linear(&self.v_proj, kv), heads);
        let scale = 1.0 / (q.dims()[3] as f64).sqrt();
        layers::linear(&self.out_proj, layers::merge_heads(layers::attention(q, k, v, mask, scale, &self.dropout)))
    }
}

/// One post-LayerNorm decoder layer: causal self-attention, cross-attention, feed-forward.
#[derive(Module, Debug)]
pub struct LedDecoderLayer<B: Backend> {
    /// Causal self-attention.
    pub self_attn: LedDecoderAttention<B>,
    /// LayerNorm after the self-attention residual.
    pub self_attn_layer_norm: LayerNorm<B>,
    /// Attention over the encoder output.
    pub encoder_attn: LedDecoderAttention<B>,
    /// LayerNorm after the cross-attention residual.
    pub encoder_attn_layer_norm: LayerNorm<B>,
    /// `d_model -> decoder_ffn_dim`.
    pub fc1: Linear<B>,
    /// `decoder_ffn_dim -> d_model`.
    pub fc2: Linear<B>,
    /// LayerNorm after the feed-forward residual.
    pub final_layer_norm: LayerNorm<B>,
    /// The activation.
    #[module(skip)]
    pub act: Activation,
    /// Dropout on sub-layer outputs.
    pub dropout: Dropout,
    /// Dropout after the activation.
    pub activation_dropout: Dropout,
}

impl<B: Backend> LedDecoderLayer<B> {
    /// # Shapes
    /// - `x`: `[batch, tgt, d]`; `encoder`: `[batch, src, d]`; `causal`: `[1, 1, tgt, tgt]`;
    ///   `cross`: `[batch, 1, 1, src]` (both additive)
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        encoder: Tensor<B, 3>,
        causal: Tensor<B, 4>,
        cross: Tensor<B, 4>,
    ) -> Tensor<B, 3> {
        let attn = self.self_attn.forward(x.clone(), x.clone(), causal);
        let x = layers::add_layer_norm(&self.self_attn_layer_norm, x, layers::dropout(&self.dropout, attn));
        let attn = self.encoder_attn.forward(x.clone(), encoder, cross);
        let x = layers::add_layer_norm(&self.encoder_attn_layer_norm, x, layers::dropout(&self.dropout, attn));
        let inner = layers::dropout(&self.activation_dropout, layers::linear_act(&self.fc1, x.clone(), self.act));
        layers::add_layer_norm(&self.final_layer_norm, x, layers::dropout(&self.dropout, layers::linear(&self.fc2, inner)))
    }
}

/// `LEDDecoder` (its `embed_tokens` is [`LedModel::shared`]).
#[derive(Module, Debug)]
pub struct LedDecoder<B: Backend> {
    /// Learned positions from 0.
    pub embed_positions: Embedding<B>,
    /// The layers.
    pub layers: Vec<LedDecoderLayer<B>>,
    /// LayerNorm of the embeddings.
    pub layernorm_embedding: LayerNorm<B>,
    /// Dropout of the embeddings.
    pub dropout: Dropout,
}

impl<B: Backend> LedDecoder<B> {
    /// The embedding output and every layer's output.
    ///
    /// As transformers without a `decoder_attention_mask`, the self-attention is causal only
    /// (decoder positions that read padding still compute); cross-attention skips encoder
    /// padding.
    ///
    /// # Shapes
    /// - `decoder_input_ids`: `[batch, tgt]`; `encoder`: `[batch, src, d]`;
    ///   `encoder_attention_mask`: `[batch, src]`; outputs `decoder_layers + 1` tensors
    ///   `[batch, tgt, d]`
    pub fn hidden_states(
        &self,
        shared: &Embedding<B>,
        decoder_input_ids: Tensor<B, 2, Int>,
        encoder: Tensor<B, 3>,
        encoder_attention_mask: Tensor<B, 2, Int>,
    ) -> Vec<Tensor<B, 3>> {
        let [_, tgt] = decoder_input_ids.dims();
        let device = decoder_input_ids.device();
        let positions = Tensor::<B, 1, Int>::arange(0..tgt as i64, &device).reshape([1, tgt]);
        let causal = layers::causal_mask(Tensor::<B, 2, Int>::ones([1, tgt], &device));
        let cross = layers::padding_mask(encoder_attention_mask);
        let x = layers::embedding(shared, decoder_input_ids) + layers::embedding(&self.embed_positions, positions);
        let mut states = vec![layers::dropout(&self.dropout, layers::layer_norm(&self.layernorm_embedding, x))];
        for layer in &self.layers {
            let x = states.last().cloned().expect("embedding output");
            states.push(layer.forward(x, encoder.clone(), causal.clone(), cross.clone()));
        }
        states
    }
}

/// `LEDModel`: shared token embeddings, encoder and decoder.
#[derive(Module, Debug)]
pub struct LedModel<B: Backend> {
    /// Token embeddings of encoder and decoder (`encoder.embed_tokens` and
    /// `decoder.embed_tokens` are tied to it in transformers).
    pub shared: Embedding<B>,
    /// The encoder.
    pub encoder: LedEncoder<B>,
    /// The decoder.
    pub decoder: LedDecoder<B>,
}

/// transformers' `shift_tokens_right`: `[start, ids[..-1]]`, with -100 replaced by the pad id.
///
/// # Shapes
/// - `[batch, seq]` -> `[batch, seq]`
pub fn shift_tokens_right<B: Backend>(input_ids: Tensor<B, 2, Int>, pad: u32, start: u32) -> Tensor<B, 2, Int> {
    let [batch, seq] = input_ids.dims();
    let first = Tensor::<B, 2, Int>::full([batch, 1], start as i64, &input_ids.device());
    let shifted =
        if seq <= 1 { first.narrow(1, 0, seq) } else { Tensor::cat(vec![first, input_ids.narrow(1, 0, seq - 1)], 1) };
    let ignore = shifted.clone().equal_elem(-100);
    shifted.mask_fill(ignore, pad as i64)
}

/// `LEDClassificationHead`: dropout, dense, tanh, dropout, `out_proj`.
#[derive(Module, Debug)]
pub struct LedClassificationHead<B: Backend> {
    /// `d_model -> d_model`.
    pub dense: Linear<B>,
    /// `classifier_dropout`.
    pub dropout: Dropout,
    /// `d_model -> num_labels`.
    pub out_proj: Linear<B>,
}

/// `LEDForSequenceClassification` of transformers 4.
#[derive(Module, Debug)]
pub struct LedForSequenceClassification<B: Backend> {
    /// The encoder-decoder.
    pub led: LedModel<B>,
    /// The head.
    pub classification_head: LedClassificationHead<B>,
    /// Padding id.
    pub pad_token_id: u32,
    /// The pooled token's id.
    pub eos_token_id: u32,
    /// First decoder input.
    pub decoder_start_token_id: u32,
}

impl<B: Backend> LedForSequenceClassification<B> {
    /// Logits `[batch, num_labels]` with every hidden state: the encoder's embedding output and
    /// layer outputs, then the decoder's (`encoder_layers + decoder_layers + 2` tensors
    /// `[batch, seq, d_model]`). No global attention (transformers' default).
    pub fn forward_detailed(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
    ) -> crate::ClassifierOutput<B> {
        self.forward_with_global(input_ids, attention_mask, None)
    }

    /// As [`Self::forward_detailed`] with an encoder `global_attention_mask` `[batch, seq]`
    /// (nonzero: global).
    pub fn forward_with_global(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        global_attention_mask: Option<Tensor<B, 2, Int>>,
    ) -> crate::ClassifierOutput<B> {
        let [batch, seq] = input_ids.dims();
        let device = input_ids.device();
        let led = &self.led;
        let decoder_input_ids = shift_tokens_right(input_ids.clone(), self.pad_token_id, self.decoder_start_token_id);
        let mut hidden_states =
            led.encoder.hidden_states(&led.shared, input_ids.clone(), attention_mask.clone(), global_attention_mask);
        let encoder = hidden_states.last().cloned().expect("embedding output");
        let decoder = led.decoder.hidden_states(&led.shared, decoder_input_ids, encoder, attention_mask);
        let last = decoder.last().cloned().expect("embedding output");
        hidden_states.extend(decoder);

        // The last eos of each row (transformers: `hidden[eos_mask].view(batch, -1, d)[:, -1]`).
        let is_eos = input_ids.equal_elem(self.eos_token_id as i64).int();
        let positions = Tensor::<B, 1, Int>::arange(0..seq as i64, &device).reshape([1, seq]);
        let last_eos = (is_eos * positions).argmax(1); // [batch, 1]
        let [_, _, d] = last.dims();
        let pooled = last.gather(1, last_eos.reshape([batch, 1, 1]).expand([batch, 1, d])).reshape([batch, d]);
        let head = &self.classification_head;
        let x = activation::tanh(layers::linear(&head.dense, layers::dropout(&head.dropout, pooled)));
        let logits = layers::linear(&head.out_proj, layers::dropout(&head.dropout, x));
        crate::ClassifierOutput { logits, hidden_states, pooled: None }
    }

    /// The longest input: the window-padded encoder input and the decoder input must fit their
    /// position tables.
    pub fn max_positions(&self) -> usize {
        let rows = |e: &Embedding<B>| e.weight.lazy_shape().as_slice()[0];
        let multiple = self.led.encoder.padding_multiple.max(1);
        let encoder = rows(&self.led.encoder.embed_positions) / multiple * multiple;
        encoder.min(rows(&self.led.decoder.embed_positions))
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;

    use super::*;

    #[test]
    fn shift_right_starts_with_the_start_token() {
        let ids = Tensor::<NdArray, 2, Int>::from_data([[0, 5, 6, 2], [0, 7, 2, 1]], &Default::default());
        let shifted = shift_tokens_right(ids, 1, 2).into_data().convert::<i64>().to_vec::<i64>().unwrap();
        assert_eq!(shifted, [2, 0, 5, 6, 2, 0, 7, 2]);
    }
}
