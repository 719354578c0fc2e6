//! Relative positions and the gather indices of the disentangled attention terms, computed on
//! the host once per forward (they depend on the sequence length only).
//!
//! transformers: `build_relative_position` (`q - k`), DeBERTa-v2's `make_log_bucket_position`
//! (computed in f32 as torch does, so the buckets are the same integers), and the indices
//! `clamp(±relative + span, 0, 2 * span - 1)` into the `2 * span` relative embeddings.

use burn::prelude::*;
use burn::tensor::TensorData;

/// transformers' `make_log_bucket_position` for one relative distance: distances below
/// `bucket_size / 2` stay as they are, longer ones share logarithmically wider buckets up to
/// `max_position`. The arithmetic follows torch's dtypes (f32 for the logarithms).
pub fn log_bucket(relative: i64, bucket_size: i64, max_position: i64) -> i64 {
    let mid = bucket_size.div_euclid(2);
    let abs_pos = if relative < mid && relative > -mid { mid - 1 } else { relative.abs() };
    if abs_pos <= mid {
        return relative;
    }
    let ratio = ((abs_pos as f32) / (mid as f32)).ln();
    let range = (((max_position - 1) as f64 / mid as f64) as f32).ln();
    let log_pos = (ratio / range * (mid - 1) as f32).ceil() + mid as f32;
    // `as` saturates (and maps NaN to 0) where torch's cast of a degenerate config is undefined.
    (log_pos * relative.signum() as f32) as i64
}

/// `q - k` for every query `q` and key `k` of a sequence, row-major `[seq, seq]`; bucketed with
/// `(bucket_size, max_position)` when given.
pub fn relative_positions(seq: usize, buckets: Option<(usize, usize)>) -> Vec<i64> {
    let mut out = Vec::with_capacity(seq * seq);
    for q in 0..seq as i64 {
        for k in 0..seq as i64 {
            let r = q - k;
            out.push(match buckets {
                Some((size, max)) => log_bucket(r, size as i64, max as i64),
                None => r,
            });
        }
    }
    out
}

/// The gather indices into `2 * span` relative embeddings: `clamp(sign * relative + span, 0,
/// 2 * span - 1)` (`sign` 1 for content-to-position, -1 for position-to-content).
pub fn gather_index(relative: &[i64], sign: i64, span: usize) -> Vec<i64> {
    let span = span as i64;
    relative.iter().map(|r| (sign * r + span).clamp(0, (2 * span - 1).max(0))).collect()
}

/// Row-major `[seq, seq]` indices as a `[1, 1, seq, seq]` tensor.
pub fn index_tensor<B: Backend>(values: Vec<i64>, seq: usize, device: &B::Device) -> Tensor<B, 4, Int> {
    Tensor::<B, 2, Int>::from_data(TensorData::new(values, [seq, seq]), device).reshape([1, 1, seq, seq])
}

/// What every layer's disentangled attention needs: the relative embeddings in use and the two
/// gather indices.
#[derive(Debug, Clone)]
pub struct RelativeInputs<B: Backend> {
    /// `[2 * span, hidden]`.
    pub embeddings: Tensor<B, 2>,
    /// Content-to-position indices, `[1, 1, seq, seq]`.
    pub c2p_index: Tensor<B, 4, Int>,
    /// Position-to-content indices, `[1, 1, seq, seq]`.
    pub p2c_index: Tensor<B, 4, Int>,
}

impl<B: Backend> RelativeInputs<B> {
    /// The inputs for relative positions `relative` (row-major `[seq, seq]`) and `2 * span`
    /// embeddings.
    pub fn new(embeddings: Tensor<B, 2>, relative: &[i64], seq: usize, span: usize) -> Self {
        let device = embeddings.device();
        Self {
            c2p_index: index_tensor(gather_index(relative, 1, span), seq, &device),
            p2c_index: index_tensor(gather_index(relative, -1, span), seq, &device),
            embeddings,
        }
    }
}

/// transformers' `scaled_size_sqrt`: `sqrt(head_dim * scale_factor)` in f32.
pub fn scaled_size_sqrt(head_dim: usize, scale_factor: usize) -> f32 {
    ((head_dim as f32) * scale_factor as f32).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_buckets_as_torch_computes_them() {
        // make_log_bucket_position(torch.arange(-20, 21), 8, 32), computed by hand from the
        // formula: |r| < 4 and |r| = 4 stay; 5..=7 -> 5; 8..=15 -> 6; 16..=20 -> 7.
        let got: Vec<i64> = (0..=20).map(|r| log_bucket(r, 8, 32)).collect();
        assert_eq!(got, [0, 1, 2, 3, 4, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7]);
        assert_eq!(log_bucket(-9, 8, 32), -6);
        // DeBERTa-v3's (256, 512): exact at the top of the range.
        assert_eq!(log_bucket(511, 256, 512), 128 + 127);
        assert_eq!(log_bucket(100, 256, 512), 100);
    }

    #[test]
    fn indices_clamp_to_the_span() {
        let rel = relative_positions(4, None);
        assert_eq!(rel, [0, -1, -2, -3, 1, 0, -1, -2, 2, 1, 0, -1, 3, 2, 1, 0]);
        assert_eq!(gather_index(&rel, 1, 2)[..4], [2, 1, 0, 0]);
        assert_eq!(gather_index(&rel, -1, 2)[..4], [2, 3, 3, 3]);
    }
}
