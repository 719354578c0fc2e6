//! The DeBERTa-v2 modules: disentangled self-attention with separate projections, the encoder
//! with its bucketed relative positions, normalised relative embeddings and convolution, and the
//! sequence-classification head (DeBERTa's embeddings, feed-forward blocks and pooler).

use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, Linear, PaddingConfig1d};
use burn::prelude::*;

use super::DebertaV2Config;
use crate::deberta::relative::{self, RelativeInputs};
use crate::deberta::{
    ContextPooler, DebertaConfig, DebertaEmbeddings, attend,
    blocked_pairs, classify, gathered_scores,
};
use crate::layers::blocks::{Intermediate, PostLnOutput};
use crate::layers::{self, Activation};

impl DebertaV2Config {
    /// The encoder (`DebertaV2Model`).
    pub fn init<B: Backend>(&self, device: &B::Device) -> DebertaV2Model<B> {
        let shared = self.shared();
        let h = self.hidden_size;
        let head_dim = h / self.num_attention_heads;
        let relative = self.relative_attention;
        let own_projections = relative && !self.share_att_key;
        let (c2p, p2c) = (shared.c2p(), shared.p2c());
        let layer = |i: usize| {
            let heads = self.heads_in_layer(i);
            let width = heads * head_dim;
            let (intermediate, output) = shared.init_feed_forward(device);
            DebertaV2Layer {
                attention: DebertaV2Attention {
                    self_attn: DebertaV2SelfAttention {
                        query_proj: shared.linear(h, width, true, device),
                        key_proj: shared.linear(h, width, true, device),
                        value_proj: shared.linear(h, width, true, device),
                        pos_key_proj: (own_projections && c2p).then(|| shared.linear(h, width, true, device)),
                        pos_query_proj: (own_projections && p2c).then(|| shared.linear(h, width, true, device)),
                        pos_dropout: DropoutConfig::new(self.hidden_dropout_prob).init(),
                        dropout: DropoutConfig::new(self.attention_probs_dropout_prob).init(),
                        num_heads: heads,
                        c2p,
                        p2c,
                        share_att_key: self.share_att_key,
                        scale_factor: 1 + usize::from(c2p) + usize::from(p2c),
                    },
                    output: shared.init_self_output(width, device),
                },
                intermediate,
                output,
            }
        };
        let span = self.relative_span();
        let conv = self.conv_kernel().map(|k| ConvLayer {
            conv: Conv1dConfig::new(h, h, k)
                .with_padding(PaddingConfig1d::Explicit((k - 1) / 2, (k - 1) / 2))
                .with_groups(self.conv_groups)
                .init(device),
            layer_norm: shared.layer_norm(device),
            dropout: DropoutConfig::new(self.hidden_dropout_prob).init(),
            act: DebertaConfig::activation(&self.conv_act),
        });
        DebertaV2Model {
            embeddings: shared.init_embeddings(device),
            encoder: DebertaV2Encoder {
                layer: (0..self.num_hidden_layers).map(layer).collect(),
                rel_embeddings: relative.then(|| EmbeddingConfig::new(2 * span, h).init(device)),
                layer_norm: self.norm_rel_embeddings().then(|| shared.layer_norm(device)),
                conv,
                span,
                position_buckets: self.buckets().unwrap_or(0),
                max_relative_positions: shared.relative_range(),
            },
        }
    }

    /// `DebertaV2ForSequenceClassification` with `num_labels` classes.
    pub fn init_classifier<B: Backend>(
        &self,
        num_labels: usize,
        device: &B::Device,
    ) -> DebertaV2ForSequenceClassification<B> {
        let shared = self.shared();
        DebertaV2ForSequenceClassification {
            deberta: self.init(device),
            pooler: shared.init_pooler(device),
            classifier: shared.linear(self.hidden_size, num_labels, true, device),
            dropout: shared.classifier_dropout(),
        }
    }
}

/// Disentangled self-attention of DeBERTa-v2 (`attention.self`).
#[derive(Module, Debug)]
pub struct DebertaV2SelfAttention<B: Backend> {
    /// Query projection (also of the relative embeddings with `share_att_key`).
    pub query_proj: Linear<B>,
    /// Key projection (also of the relative embeddings with `share_att_key`).
    pub key_proj: Linear<B>,
    /// Value projection.
    pub value_proj: Linear<B>,
    /// Keys of the relative embeddings (`c2p` without `share_att_key`).
    pub pos_key_proj: Option<Linear<B>>,
    /// Queries of the relative embeddings (`p2c` without `share_att_key`).
    pub pos_query_proj: Option<Linear<B>>,
    /// Dropout on the relative embeddings.
    pub pos_dropout: Dropout,
    /// Dropout on attention probabilities.
    pub dropout: Dropout,
    /// Number of heads.
    pub num_heads: usize,
    /// Content-to-position term on.
    pub c2p: bool,
    /// Position-to-content term on.
    pub p2c: bool,
    /// Relative embeddings projected by `query_proj`/`key_proj`.
    pub share_att_key: bool,
    /// `1 + c2p + p2c`: scores are divided by `sqrt(head_dim * scale_factor)`.
    pub scale_factor: usize,
}

impl<B: Backend> DebertaV2SelfAttention<B> {
    /// # Shapes
    /// - `x`: `[batch, seq, hidden]`; `blocked`: `[batch, 1, seq, seq]`
    /// - output: `[batch, seq, heads * head_dim]`
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        blocked: Tensor<B, 4, Bool>,
        rel: Option<&RelativeInputs<B>>,
    ) -> Tensor<B, 3> {
        let heads = self.num_heads;
        let q = layers::split_heads(layers::linear(&self.query_proj, x.clone()), heads);
        let k = layers::split_heads(layers::linear(&self.key_proj, x.clone()), heads);
        let v = layers::split_heads(layers::linear(&self.value_proj, x), heads);
        let scale = relative::scaled_size_sqrt(q.dims()[3], self.scale_factor);
        let mut scores = q.clone().matmul(k.clone().swap_dims(2, 3).div_scalar(scale));
        if let Some(bias) = rel.and_then(|rel| self.relative_scores(q, k, rel, scale)) {
            scores = scores + bias;
        }
        attend(scores, blocked, v, &self.dropout)
    }

    /// transformers' `disentangled_attention_bias`: the `c2p` and `p2c` terms, each divided by
    /// the scale after gathering.
    fn relative_scores(
        &self,
        q: Tensor<B, 4>,
        k: Tensor<B, 4>,
        rel: &RelativeInputs<B>,
        scale: f32,
    ) -> Option<Tensor<B, 4>> {
        let heads = self.num_heads;
        let embeddings = layers::dropout(&self.pos_dropout, rel.embeddings.clone()).unsqueeze::<3>();
        let project = |proj: &Linear<B>| layers::split_heads(proj.forward(embeddings.clone()), heads);
        let (key_proj, query_proj) = if self.share_att_key {
            (Some(&self.key_proj), Some(&self.query_proj))
        } else {
            (self.pos_key_proj.as_ref(), self.pos_query_proj.as_ref())
        };
        let c2p = key_proj
            .filter(|_| self.c2p)
            .map(|proj| gathered_scores(q, project(proj), rel.c2p_index.clone()).div_scalar(scale));
        let p2c = query_proj
            .filter(|_| self.p2c)
            .map(|proj| gathered_scores(k, project(proj), rel.p2c_index.clone()).swap_dims(2, 3).div_scalar(scale));
        match (c2p, p2c) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        }
    }
}

/// Self-attention plus its output block.
#[derive(Module, Debug)]
pub struct DebertaV2Attention<B: Backend> {
    /// `self` in transformers.
    pub self_attn: DebertaV2SelfAttention<B>,
    /// Output projection block.
    pub output: PostLnOutput<B>,
}

/// One encoder layer.
#[derive(Module, Debug)]
pub struct DebertaV2Layer<B: Backend> {
    /// Attention block.
    pub attention: DebertaV2Attention<B>,
    /// Feed-forward first half.
    pub intermediate: Intermediate<B>,
    /// Feed-forward second half.
    pub output: PostLnOutput<B>,
}

impl<B: Backend> DebertaV2Layer<B> {
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

/// `ConvLayer`: a convolution over the encoder's input, added to the first layer's output.
#[derive(Module, Debug)]
pub struct ConvLayer<B: Backend> {
    /// `nn.Conv1d(hidden, hidden, conv_kernel_size, padding=(k - 1) / 2, groups=conv_groups)`.
    pub conv: Conv1d<B>,
    /// `LayerNorm` in transformers.
    pub layer_norm: LayerNorm<B>,
    /// Hidden dropout.
    pub dropout: Dropout,
    /// `conv_act`.
    #[module(skip)]
    pub act: Activation,
}

impl<B: Backend> ConvLayer<B> {
    /// `LayerNorm(residual + act(dropout(conv(x) zeroed on padding)))`, zeroed on padding.
    ///
    /// # Shapes
    /// - `x`, `residual`: `[batch, seq, hidden]`; `attention_mask`: `[batch, seq]`
    pub fn forward(&self, x: Tensor<B, 3>, residual: Tensor<B, 3>, attention_mask: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [batch, seq, hidden] = x.dims();
        let out = self.conv.forward(x.swap_dims(1, 2)).swap_dims(1, 2);
        let padding = attention_mask.clone().equal_elem(0).reshape([batch, seq, 1]).expand([batch, seq, hidden]);
        let out = self.act.forward(layers::dropout(&self.dropout, out.mask_fill(padding, 0.0)));
        layers::add_layer_norm(&self.layer_norm, residual, out) * attention_mask.float().reshape([batch, seq, 1])
    }
}

/// The layers, the relative embeddings (optionally normalised) and the convolution.
#[derive(Module, Debug)]
pub struct DebertaV2Encoder<B: Backend> {
    /// `layer.N` in transformers.
    pub layer: Vec<DebertaV2Layer<B>>,
    /// `[2 * span, hidden]`, when `relative_attention`.
    pub rel_embeddings: Option<Embedding<B>>,
    /// `LayerNorm` of the relative embeddings (`norm_rel_ebd: layer_norm`).
    pub layer_norm: Option<LayerNorm<B>>,
    /// The convolution after the first layer (`conv_kernel_size`).
    pub conv: Option<ConvLayer<B>>,
    /// Relative embeddings on each side (`pos_ebd_size`).
    pub span: usize,
    /// Log buckets of relative distances; 0 means none.
    pub position_buckets: usize,
    /// The relative range (the largest bucketed distance).
    pub max_relative_positions: usize,
}

impl<B: Backend> DebertaV2Encoder<B> {
    /// The (normalised) relative embeddings and indices for sequences of `seq` tokens.
    pub fn relative_inputs(&self, seq: usize) -> Option<RelativeInputs<B>> {
        let table = self.rel_embeddings.as_ref()?;
        let mut embeddings = table.weight.val();
        if let Some(norm) = &self.layer_norm {
            embeddings = layers::layer_norm(norm, embeddings);
        }
        let buckets = (self.position_buckets > 0).then_some((self.position_buckets, self.max_relative_positions));
        let relative = relative::relative_positions(seq, buckets);
        Some(RelativeInputs::new(embeddings.narrow(0, 0, 2 * self.span), &relative, seq, self.span))
    }
}

/// `DebertaV2Model`: embeddings and encoder.
#[derive(Module, Debug)]
pub struct DebertaV2Model<B: Backend> {
    /// Embeddings.
    pub embeddings: DebertaEmbeddings<B>,
    /// Encoder.
    pub encoder: DebertaV2Encoder<B>,
}

impl<B: Backend> DebertaV2Model<B> {
    /// The embedding output followed by every layer's output (the first one after the
    /// convolution, when there is one): `num_hidden_layers + 1` tensors `[batch, seq, hidden]`,
    /// as transformers' `hidden_states`.
    pub fn hidden_states(
        &self,
        input_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
        token_type_ids: Option<Tensor<B, 2, Int>>,
    ) -> Vec<Tensor<B, 3>> {
        let seq = input_ids.dims()[1];
        let blocked = blocked_pairs(attention_mask.clone());
        let rel = self.encoder.relative_inputs(seq);
        let embedded = self.embeddings.forward(input_ids, attention_mask.clone(), token_type_ids);
        let mut states = vec![embedded.clone()];
        for (i, layer) in self.encoder.layer.iter().enumerate() {
            let mut next =
                layer.forward(states.last().cloned().expect("embedding output"), blocked.clone(), rel.as_ref());
            if i == 0
                && let Some(conv) = &self.encoder.conv
            {
                next = conv.forward(embedded.clone(), next, attention_mask.clone());
            }
            states.push(next);
        }
        states
    }
}

/// `DebertaV2ForSequenceClassification`: context pooler, dropout, linear classifier.
#[derive(Module, Debug)]
pub struct DebertaV2ForSequenceClassification<B: Backend> {
    /// The encoder.
    pub deberta: DebertaV2Model<B>,
    /// The pooler.
    pub pooler: ContextPooler<B>,
    /// `hidden -> num_labels`.
    pub classifier: Linear<B>,
    /// Classifier dropout (`cls_dropout`).
    pub dropout: Dropout,
}

impl<B: Backend> DebertaV2ForSequenceClassification<B> {
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

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;

    use super::*;
    use crate::deberta::DebertaConfig;

    type B = NdArray;

    fn input() -> (Tensor<B, 2, Int>, Tensor<B, 2, Int>) {
        let device = Default::default();
        let ids = Tensor::from_data([[1, 5, 6, 7, 8, 9, 2], [1, 8, 9, 2, 0, 0, 0]], &device);
        let mask = Tensor::from_data([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0]], &device);
        (ids, mask)
    }

    fn check(out: crate::ClassifierOutput<B>, what: &str) {
        assert_eq!(out.logits.dims(), [2, 3], "{what}");
        let values = out.logits.into_data().to_vec::<f32>().unwrap();
        assert!(values.iter().all(|v| v.is_finite()), "{what}: {values:?}");
        assert_eq!(out.hidden_states.len(), 3, "{what}");
    }

    /// The configurations the fixtures do not cover build and run: relative attention off (the
    /// scale still counts `pos_att_type`, as in transformers), one term only, `p2p`, no
    /// buckets with shared keys, a grouped convolution, fewer heads in a layer.
    #[test]
    fn other_configurations_run() {
        let device = Default::default();
        let v1 = |relative: bool, pos: &[&str]| DebertaConfig {
            vocab_size: 20,
            hidden_size: 8,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            intermediate_size: 5,
            relative_attention: relative,
            max_relative_positions: 3,
            pos_att_type: pos.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        };
        for (relative, pos) in [
            (false, &["c2p", "p2c"][..]),
            (true, &[]),
            (true, &["c2p"]),
            (true, &["p2c"]),
            (true, &["p2c", "c2p", "p2p"]),
        ] {
            let c = v1(relative, pos);
            assert!(c.check().is_none());
            let (ids, mask) = input();
            check(c.init_classifier::<B>(3, &device).forward_detailed(ids, mask, None), &format!("v1 {pos:?}"));
        }
        let v2 = |buckets: i64, share: bool, conv: i64, heads: Option<Vec<usize>>| DebertaV2Config {
            vocab_size: 20,
            hidden_size: 8,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            intermediate_size: 5,
            relative_attention: true,
            max_relative_positions: 16,
            position_buckets: buckets,
            share_att_key: share,
            pos_att_type: vec!["c2p".into()],
            conv_kernel_size: conv,
            conv_groups: 2,
            prunelab_heads: heads,
            ..Default::default()
        };
        for c in [v2(-1, true, 0, None), v2(4, false, 5, None), v2(4, true, 3, Some(vec![1, 2]))] {
            assert!(c.check().is_none(), "{:?}", c.check());
            let (ids, mask) = input();
            let model = c.init_classifier::<B>(3, &device);
            assert_eq!(
                model.deberta.encoder.layer[0].attention.self_attn.query_proj.weight.dims(),
                [8, 4 * c.heads_in_layer(0)]
            );
            check(model.forward_detailed(ids, mask, None), &format!("v2 {c:?}"));
        }
    }
}
