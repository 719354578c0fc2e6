//! Longformer's self-attention (`LongformerSelfAttention`, also LED's encoder attention), with
//! exactly transformers' semantics and memory linear in the sequence length.
//!
//! In a sequence padded to a multiple of the window, with `w = attention_window / 2`:
//!
//! - a **local** (non-global, non-padding) query `i` attends the keys `j` with `|i - j| <= w`
//!   inside the padded sequence that are neither padding nor global, plus every global key
//!   (through the local `key`/`value` projections), in one softmax;
//! - a **global** query attends every non-padding key through `query_global`, `key_global` and
//!   `value_global` (its local result is discarded);
//! - a **padding** query gets a zero attention output (transformers zeroes its probabilities).
//!
//! The window is computed in chunks, not as a full `seq × seq` score matrix: queries are cut into
//! blocks of `w`, and block `c` is scored against the `3w` keys `[(c - 1)w, (c + 2)w)` (blocks
//! `c - 1`, `c`, `c + 1` of the key sequence padded by `w` on both sides), then masked to the band
//! `a <= b <= a + 2w` (query `a`, key `b` within the chunk) and to valid keys. Scores take
//! `batch × heads × seq × 3w` values, against transformers' `(2w + 1)` per query plus its
//! `2w × 2w` chunk products. Global tokens are gathered and scattered with one-hot matrices
//! (`[batch, seq, max globals]`), which keeps every step an ordinary differentiable tensor op.
//!
//! Masked scores are filled with `f32::MIN` (finite, like transformers' `finfo.min`), so a row with
//! nothing to attend yields a uniform distribution, never NaN, and is zeroed afterwards.

use burn::nn::{Dropout, Linear};
use burn::prelude::*;

use crate::layers::{self, MASKED};

/// Who attends whom in one forward pass, shared by every layer.
#[derive(Debug, Clone)]
pub struct AttentionPattern<B: Backend> {
    /// `[batch, seq]`: 1.0 on padding (masked) positions.
    masked: Tensor<B, 2>,
    /// `[batch, seq]`: true where a key may be attended through the window (a token, not global).
    window_key: Tensor<B, 2, Bool>,
    /// The global tokens, if any row has one.
    global: Option<GlobalTokens<B>>,
}

#[derive(Debug, Clone)]
struct GlobalTokens<B: Backend> {
    /// `[batch, seq, max_globals]`: 1.0 where position `l` is the `g`-th global token of its row.
    select: Tensor<B, 3>,
    /// `[batch, max_globals]`: true where slot `g` holds a global token of the row.
    slot: Tensor<B, 2, Bool>,
    /// `[batch, seq]`: 1.0 on global positions.
    is_global: Tensor<B, 2>,
}

impl<B: Backend> AttentionPattern<B> {
    /// The pattern of a (window-padded) batch.
    ///
    /// # Shapes
    /// - `attention_mask`: `[batch, seq]`, nonzero on tokens, 0 on padding
    /// - `global_attention_mask`: `[batch, seq]`, nonzero on global tokens (ignored on padding)
    pub fn new(attention_mask: Tensor<B, 2, Int>, global_attention_mask: Option<Tensor<B, 2, Int>>) -> Self {
        let [batch, seq] = attention_mask.dims();
        let device = attention_mask.device();
        let token = attention_mask.not_equal_elem(0);
        let masked = token.clone().bool_not().float();
        let is_global = match global_attention_mask {
            Some(g) => g.not_equal_elem(0).bool_and(token.clone()),
            None => Tensor::<B, 2, Int>::zeros([batch, seq], &device).not_equal_elem(0),
        };
        let window_key = token.bool_and(is_global.clone().bool_not());
        let count = is_global.clone().int().sum_dim(1); // [batch, 1]
        // The one host read of a forward pass: the number of global slots decides shapes.
        let max_globals = count.clone().max().into_scalar().elem::<i64>().max(0) as usize;
        let global = (max_globals > 0).then(|| {
            // Rank of each global token within its row: 0, 1, ...
            let rank = is_global.clone().int().cumsum(1) - 1;
            let slots = Tensor::<B, 1, Int>::arange(0..max_globals as i64, &device);
            let select = rank
                .reshape([batch, seq, 1])
                .equal(slots.clone().reshape([1, 1, max_globals]).expand([batch, seq, max_globals]))
                .bool_and(is_global.clone().reshape([batch, seq, 1]).expand([batch, seq, max_globals]))
                .float();
            let slot =
                slots.reshape([1, max_globals]).expand([batch, max_globals]).lower(count.expand([batch, max_globals]));
            GlobalTokens { select, slot, is_global: is_global.float() }
        });
        Self { masked, window_key, global }
    }

    /// The number of global slots (the most global tokens in any row).
    pub fn max_globals(&self) -> usize {
        self.global.as_ref().map_or(0, |g| g.select.dims()[2])
    }
}

/// `LongformerSelfAttention` (`attention.self` in Longformer, `self_attn.longformer_self_attn` in
/// LED's encoder).
#[derive(Module, Debug)]
pub struct LongformerSelfAttention<B: Backend> {
    /// Query projection (local attention).
    pub query: Linear<B>,
    /// Key projection (local attention, and keys of global tokens as seen by local queries).
    pub key: Linear<B>,
    /// Value projection (as `key`).
    pub value: Linear<B>,
    /// Query projection of global tokens.
    pub query_global: Linear<B>,
    /// Key projection seen by global queries.
    pub key_global: Linear<B>,
    /// Value projection seen by global queries.
    pub value_global: Linear<B>,
    /// Dropout on attention probabilities.
    pub dropout: Dropout,
    /// Number of heads.
    pub num_heads: usize,
    /// `attention_window / 2`: keys attended on each side.
    pub one_sided_window: usize,
}

impl<B: Backend> LongformerSelfAttention<B> {
    /// The attention output before the output projection.
    ///
    /// # Shapes
    /// - `x`: `[batch, seq, hidden]` with `seq` a multiple of `one_sided_window`
    /// - output: `[batch, seq, heads * head_dim]`
    pub fn forward(&self, x: Tensor<B, 3>, pattern: &AttentionPattern<B>) -> Tensor<B, 3> {
        let [batch, seq, _] = x.dims();
        let heads = self.num_heads;
        let w = self.one_sided_window;
        let chunks = seq / w;
        let q = layers::split_heads(layers::linear(&self.query, x.clone()), heads);
        let head_dim = q.dims()[3];
        let q = q / (head_dim as f64).sqrt();
        let k = layers::split_heads(layers::linear(&self.key, x.clone()), heads);
        let v = layers::split_heads(layers::linear(&self.value, x.clone()), heads);
        let device = x.device();

        // Local scores: query block c against key blocks c-1, c, c+1.
        let q_chunks = q.clone().reshape([batch, heads, chunks, w, head_dim]);
        let k_chunks = overlapping_chunks(k.clone(), w);
        let v_chunks = overlapping_chunks(v.clone(), w);
        let local = q_chunks.matmul(k_chunks.swap_dims(3, 4)); // [batch, heads, chunks, w, 3w]
        let allowed = band(w, &device).reshape([1, 1, 1, w, 3 * w]).expand([batch, 1, chunks, w, 3 * w]).bool_and(
            window_keys(pattern.window_key.clone(), w).reshape([batch, 1, chunks, 1, 3 * w]).expand([
                batch,
                1,
                chunks,
                w,
                3 * w,
            ]),
        );
        let local = local.mask_fill(allowed.bool_not().expand([batch, heads, chunks, w, 3 * w]), MASKED);

        let keep_rows = (pattern.masked.clone().neg() + 1.0).reshape([batch, 1, seq, 1]);
        let context = match &pattern.global {
            None => {
                let probs = layers::dropout(&self.dropout, layers::softmax(local, 4));
                probs.matmul(v_chunks).reshape([batch, heads, seq, head_dim])
            }
            Some(g) => {
                let globals = g.select.dims()[2];
                // [batch, 1, globals, seq]: gathers the global tokens of each row.
                let gather = g.select.clone().swap_dims(1, 2).reshape([batch, 1, globals, seq]);
                let k_global = gather.clone().matmul(k); // [batch, heads, globals, head_dim]
                let v_global = gather.matmul(v.clone());
                let to_global = q.matmul(k_global.swap_dims(2, 3)); // [batch, heads, seq, globals]
                let empty_slot =
                    g.slot.clone().bool_not().reshape([batch, 1, 1, globals]).expand([batch, heads, seq, globals]);
                let to_global = to_global.mask_fill(empty_slot, MASKED).reshape([batch, heads, chunks, w, globals]);
                let probs = layers::dropout(&self.dropout, layers::softmax(Tensor::cat(vec![to_global, local], 4), 4));
                let probs_global = probs.clone().narrow(4, 0, globals).reshape([batch, heads, seq, globals]);
                let probs_local = probs.narrow(4, globals, 3 * w);
                let local_out = probs_local.matmul(v_chunks).reshape([batch, heads, seq, head_dim]);
                let local_out = local_out + probs_global.matmul(v_global);
                // Global queries: their own projections over every token; they replace the local
                // result at their positions.
                let global_out = self.global_queries(x, pattern, g); // [batch, heads, globals, head_dim]
                let scatter = g.select.clone().reshape([batch, 1, seq, globals]);
                let not_global = (g.is_global.clone().neg() + 1.0).reshape([batch, 1, seq, 1]);
                local_out * not_global + scatter.matmul(global_out)
            }
        };
        layers::merge_heads(context * keep_rows)
    }

    /// Attention of the global tokens over the whole (non-padding) sequence.
    ///
    /// # Shapes
    /// - output: `[batch, heads, max_globals, head_dim]` (rows of empty slots are meaningless)
    fn global_queries(&self, x: Tensor<B, 3>, pattern: &AttentionPattern<B>, g: &GlobalTokens<B>) -> Tensor<B, 4> {
        let [batch, seq, _] = x.dims();
        let globals = g.select.dims()[2];
        let heads = self.num_heads;
        let x_global = g.select.clone().swap_dims(1, 2).matmul(x.clone()); // [batch, globals, hidden]
        let q = layers::split_heads(layers::linear(&self.query_global, x_global), heads);
        let head_dim = q.dims()[3];
        let q = q / (head_dim as f64).sqrt();
        let k = layers::split_heads(layers::linear(&self.key_global, x.clone()), heads);
        let v = layers::split_heads(layers::linear(&self.value_global, x), heads);
        let padding =
            pattern.masked.clone().equal_elem(1.0).reshape([batch, 1, 1, seq]).expand([batch, heads, globals, seq]);
        let scores = q.matmul(k.swap_dims(2, 3)).mask_fill(padding, MASKED);
        layers::dropout(&self.dropout, layers::softmax(scores, 3)).matmul(v)
    }
}

/// `[batch, heads, seq, d]` → `[batch, heads, seq / w, 3w, d]`: for each block of `w` positions,
/// the previous, own and next block (zeros beyond the ends).
fn overlapping_chunks<B: Backend>(x: Tensor<B, 4>, w: usize) -> Tensor<B, 5> {
    let [batch, heads, seq, d] = x.dims();
    let chunks = seq / w;
    let pad = Tensor::<B, 4>::zeros([batch, heads, w, d], &x.device());
    let padded = Tensor::cat(vec![pad.clone(), x, pad], 2).reshape([batch, heads, chunks + 2, w, d]);
    Tensor::cat((0..3).map(|s| padded.clone().narrow(2, s, chunks)).collect(), 3)
}

/// `[batch, seq]` key flags → `[batch, seq / w, 3w]` per chunk, false beyond the ends.
fn window_keys<B: Backend>(ok: Tensor<B, 2, Bool>, w: usize) -> Tensor<B, 3, Bool> {
    let [batch, seq] = ok.dims();
    let chunks = seq / w;
    let pad = Tensor::<B, 2, Int>::zeros([batch, w], &ok.device());
    let padded = Tensor::cat(vec![pad.clone(), ok.int(), pad], 1).reshape([batch, chunks + 2, w]);
    Tensor::cat((0..3).map(|s| padded.clone().narrow(1, s, chunks)).collect(), 2).equal_elem(1)
}

/// `[w, 3w]`: query `a` of a chunk may attend key `b` of its `3w` keys when `|a + w - b| <= w`.
fn band<B: Backend>(w: usize, device: &B::Device) -> Tensor<B, 2, Bool> {
    let values: Vec<bool> = (0..w).flat_map(|a| (0..3 * w).map(move |b| a <= b && b <= a + 2 * w)).collect();
    Tensor::from_data(TensorData::new(values, [w, 3 * w]), device)
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::nn::{DropoutConfig, LinearConfig};

    use super::*;

    type B = NdArray;

    fn attention(heads: usize, window: usize, hidden: usize) -> LongformerSelfAttention<B> {
        let device = Default::default();
        let linear = || LinearConfig::new(hidden, hidden).init::<B>(&device);
        LongformerSelfAttention {
            query: linear(),
            key: linear(),
            value: linear(),
            query_global: linear(),
            key_global: linear(),
            value_global: linear(),
            dropout: DropoutConfig::new(0.0).init(),
            num_heads: heads,
            one_sided_window: window / 2,
        }
    }

    /// The definition, with full `seq × seq` scores: what the chunked version must equal.
    fn reference(a: &LongformerSelfAttention<B>, x: Tensor<B, 3>, mask: &[Vec<i64>], global: &[Vec<i64>]) -> Vec<f32> {
        let [batch, seq, hidden] = x.dims();
        let heads = a.num_heads;
        let d = hidden / heads;
        let w = a.one_sided_window as i64;
        let proj = |l: &Linear<B>| l.forward(x.clone()).into_data().to_vec::<f32>().unwrap();
        let (q, k, v) = (proj(&a.query), proj(&a.key), proj(&a.value));
        let (qg, kg, vg) = (proj(&a.query_global), proj(&a.key_global), proj(&a.value_global));
        let at = |t: &[f32], b: usize, l: usize, h: usize, e: usize| t[(b * seq + l) * hidden + h * d + e];
        let mut out = vec![0f32; batch * seq * hidden];
        for b in 0..batch {
            for h in 0..heads {
                for i in 0..seq {
                    if mask[b][i] == 0 {
                        continue;
                    }
                    let is_global = |j: usize| global[b][j] != 0;
                    let (qq, kk, vv) = if is_global(i) { (&qg, &kg, &vg) } else { (&q, &k, &v) };
                    let allowed: Vec<usize> = (0..seq)
                        .filter(|&j| {
                            mask[b][j] != 0 && (is_global(i) || is_global(j) || (i as i64 - j as i64).abs() <= w)
                        })
                        .collect();
                    let scores: Vec<f32> = allowed
                        .iter()
                        .map(|&j| {
                            (0..d).map(|e| at(qq, b, i, h, e) * at(kk, b, j, h, e)).sum::<f32>() / (d as f32).sqrt()
                        })
                        .collect();
                    let max = scores.iter().copied().fold(f32::MIN, f32::max);
                    let exps: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
                    let total: f32 = exps.iter().sum();
                    for e in 0..d {
                        out[(b * seq + i) * hidden + h * d + e] =
                            allowed.iter().zip(&exps).map(|(&j, p)| p / total * at(vv, b, j, h, e)).sum();
                    }
                }
            }
        }
        out
    }

    #[test]
    fn chunked_equals_the_definition() {
        let device = Default::default();
        let (batch, seq, hidden) = (3, 12, 8);
        let mask = vec![vec![1; 12], [vec![1; 9], vec![0; 3]].concat(), [vec![1; 4], vec![0; 8]].concat()];
        let globals = [
            vec![vec![0; 12]; 3],
            vec![
                [vec![1], vec![0; 6], vec![1], vec![0; 4]].concat(),
                [vec![0, 0, 1], vec![0; 9]].concat(),
                [vec![0; 10], vec![1, 0]].concat(), // global on padding: ignored
            ],
        ];
        for window in [2, 4, 6] {
            let a = attention(2, window, hidden);
            let x = Tensor::<B, 3>::random([batch, seq, hidden], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
            for global in &globals {
                let pattern = AttentionPattern::new(
                    Tensor::from_data(TensorData::new(mask.concat(), [batch, seq]), &device),
                    Some(Tensor::from_data(TensorData::new(global.concat(), [batch, seq]), &device)),
                );
                let effective: Vec<Vec<i64>> =
                    global.iter().zip(&mask).map(|(g, m)| g.iter().zip(m).map(|(g, m)| g * m).collect()).collect();
                let ours = a.forward(x.clone(), &pattern).into_data().to_vec::<f32>().unwrap();
                let expected = reference(&a, x.clone(), &mask, &effective);
                let max = ours.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                assert!(max < 1e-5, "window {window}, globals {global:?}: max |Δ| {max}");
            }
        }
    }

    #[test]
    fn the_band_of_a_chunk() {
        let b = band::<B>(2, &Default::default()).into_data().to_vec::<bool>().unwrap();
        #[rustfmt::skip]
        assert_eq!(b, [true, true, true, true, true, false,
                       false, true, true, true, true, true]);
    }
}
