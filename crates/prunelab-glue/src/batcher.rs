//! Dynamic padding into Burn tensors, and the order batches are drawn in.

use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;
use burn::tensor::TensorData;

use crate::tokenize::Encoded;

/// Which end of a sequence receives the padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaddingSide {
    /// Pad after the tokens (BERT-style models).
    #[default]
    Right,
    /// Pad before the tokens.
    Left,
}

/// Pads encoded examples to the longest sequence of each batch.
#[derive(Debug, Clone)]
pub struct GlueBatcher {
    /// Id written into padded positions.
    pub pad_id: u32,
    /// Which end gets the padding.
    pub padding_side: PaddingSide,
    /// Whether the model takes token type (segment) ids.
    pub token_types: bool,
}

/// A padded batch.
///
/// # Shapes
/// - `input_ids`, `attention_mask`, `token_type_ids`: `[batch, seq]`, `seq` = the longest
///   sequence of the batch
/// - `labels`: `[batch]`
#[derive(Debug, Clone)]
pub struct GlueBatch<B: Backend> {
    /// Token ids, padded with the pad id.
    pub input_ids: Tensor<B, 2, Int>,
    /// 1 on real tokens, 0 on padding.
    pub attention_mask: Tensor<B, 2, Int>,
    /// Segment ids, for models that use them.
    pub token_type_ids: Option<Tensor<B, 2, Int>>,
    /// Class ids; `None` unless every example of the batch is labelled.
    pub labels: Option<Tensor<B, 1, Int>>,
    /// The examples' indices, in batch order (to write predictions).
    pub idx: Vec<u32>,
    /// Real (non-padding) tokens in the batch, for tokens/s figures.
    pub num_tokens: usize,
}

impl<B: Backend> Batcher<B, Encoded, GlueBatch<B>> for GlueBatcher {
    fn batch(&self, items: Vec<Encoded>, device: &B::Device) -> GlueBatch<B> {
        let batch = items.len();
        let seq = items.iter().map(|e| e.input_ids.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(batch * seq);
        let mut mask = Vec::with_capacity(batch * seq);
        let mut types = Vec::with_capacity(batch * seq);
        for item in &items {
            let len = item.input_ids.len();
            let pad = seq - len;
            let padding = |buf: &mut Vec<i64>, value: i64| buf.extend(std::iter::repeat_n(value, pad));
            if self.padding_side == PaddingSide::Left {
                padding(&mut ids, i64::from(self.pad_id));
                padding(&mut mask, 0);
                padding(&mut types, 0);
            }
            ids.extend(item.input_ids.iter().map(|&t| i64::from(t)));
            mask.extend(std::iter::repeat_n(1, len));
            types.extend(item.token_type_ids.iter().map(|&t| i64::from(t)));
            if self.padding_side == PaddingSide::Right {
                padding(&mut ids, i64::from(self.pad_id));
                padding(&mut mask, 0);
                padding(&mut types, 0);
            }
        }
        let matrix = |values: Vec<i64>| Tensor::<B, 2, Int>::from_data(TensorData::new(values, [batch, seq]), device);
        let labels: Option<Vec<i64>> = items.iter().map(|e| e.label.map(i64::from)).collect();
        GlueBatch {
            input_ids: matrix(ids),
            attention_mask: matrix(mask),
            token_type_ids: self.token_types.then(|| matrix(types)),
            labels: labels
                .filter(|l| !l.is_empty())
                .map(|l| Tensor::<B, 1, Int>::from_data(TensorData::new(l, [batch]), device)),
            idx: items.iter().map(|e| e.idx).collect(),
            num_tokens: items.iter().map(|e| e.input_ids.len()).sum(),
        }
    }
}

/// Split `0..n` into consecutive batches of `batch_size` (the last may be smaller): the order
/// for evaluation.
pub fn sequential_batches(n: usize, batch_size: usize) -> Vec<Vec<usize>> {
    let batch_size = batch_size.max(1);
    (0..n).collect::<Vec<_>>().chunks(batch_size).map(<[usize]>::to_vec).collect()
}

/// Shuffled training batches, deterministic for a seed. With `bucket` set, examples of similar
/// length are batched together (less padding, faster steps): indices are shuffled, cut into
/// windows of 50 batches, sorted by length inside each window, cut into batches, and the
/// batches shuffled again — so every epoch still sees every example once, in a new order.
pub fn shuffled_batches(lengths: &[usize], batch_size: usize, seed: u64, bucket: bool) -> Vec<Vec<usize>> {
    const WINDOW_BATCHES: usize = 50;
    let batch_size = batch_size.max(1);
    let mut rng = SplitMix64(seed);
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    rng.shuffle(&mut order);
    if !bucket {
        return order.chunks(batch_size).map(<[usize]>::to_vec).collect();
    }
    let mut batches: Vec<Vec<usize>> = Vec::with_capacity(lengths.len().div_ceil(batch_size));
    for window in order.chunks_mut(batch_size * WINDOW_BATCHES) {
        window.sort_by_key(|&i| lengths[i]);
        batches.extend(window.chunks(batch_size).map(<[usize]>::to_vec));
    }
    rng.shuffle(&mut batches);
    batches
}

/// SplitMix64: a tiny, well-mixed generator, stable across library versions, so a seed gives
/// the same data order on every machine and every prunelab version.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fisher–Yates shuffle with an unbiased bounded draw (Lemire's multiply-shift with rejection).
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let bound = (i + 1) as u64;
            let threshold = bound.wrapping_neg() % bound;
            let j = loop {
                let m = u128::from(self.next_u64()) * u128::from(bound);
                if (m as u64) >= threshold {
                    break (m >> 64) as usize;
                }
            };
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;

    use super::*;

    fn enc(idx: u32, ids: &[u32], label: Option<u32>) -> Encoded {
        Encoded { idx, input_ids: ids.to_vec(), token_type_ids: vec![0; ids.len()], label }
    }

    fn rows(t: Tensor<NdArray, 2, Int>) -> Vec<Vec<i64>> {
        let [_, seq] = t.dims();
        let flat = t.into_data().convert::<i64>().to_vec::<i64>().unwrap();
        flat.chunks(seq.max(1)).map(<[i64]>::to_vec).collect()
    }

    #[test]
    fn pads_right_to_the_longest_sequence() {
        let batcher = GlueBatcher { pad_id: 9, padding_side: PaddingSide::Right, token_types: true };
        let b: GlueBatch<NdArray> =
            batcher.batch(vec![enc(3, &[1, 2, 3], Some(1)), enc(5, &[4], Some(0))], &Default::default());
        assert_eq!(rows(b.input_ids), [vec![1, 2, 3], vec![4, 9, 9]]);
        assert_eq!(rows(b.attention_mask), [vec![1, 1, 1], vec![1, 0, 0]]);
        assert_eq!(rows(b.token_type_ids.unwrap()), [vec![0, 0, 0], vec![0, 0, 0]]);
        assert_eq!(b.labels.unwrap().into_data().convert::<i64>().to_vec::<i64>().unwrap(), [1, 0]);
        assert_eq!(b.idx, [3, 5]);
        assert_eq!(b.num_tokens, 4);
    }

    #[test]
    fn pads_left_when_asked_and_drops_labels_of_unlabelled_batches() {
        let batcher = GlueBatcher { pad_id: 0, padding_side: PaddingSide::Left, token_types: false };
        let b: GlueBatch<NdArray> = batcher.batch(vec![enc(0, &[7], None), enc(1, &[5, 6], None)], &Default::default());
        assert_eq!(rows(b.input_ids), [vec![0, 7], vec![5, 6]]);
        assert_eq!(rows(b.attention_mask), [vec![0, 1], vec![1, 1]]);
        assert!(b.token_type_ids.is_none());
        assert!(b.labels.is_none());
    }

    #[test]
    fn shuffled_batches_cover_every_example_once_and_repeat_per_seed() {
        let lengths: Vec<usize> = (0..1000).map(|i| (i * 7919) % 97).collect();
        for bucket in [false, true] {
            let a = shuffled_batches(&lengths, 8, 42, bucket);
            let mut all: Vec<usize> = a.iter().flatten().copied().collect();
            all.sort_unstable();
            assert_eq!(all, (0..1000).collect::<Vec<_>>());
            assert_eq!(a, shuffled_batches(&lengths, 8, 42, bucket), "deterministic");
            assert_ne!(a, shuffled_batches(&lengths, 8, 43, bucket), "seed matters");
        }
    }

    #[test]
    fn bucketing_reduces_padding() {
        let lengths: Vec<usize> = (0..4000).map(|i| 5 + (i * 7919) % 120).collect();
        let padded = |batches: &[Vec<usize>]| -> usize {
            batches.iter().map(|b| b.iter().map(|&i| lengths[i]).max().unwrap() * b.len()).sum()
        };
        let plain = padded(&shuffled_batches(&lengths, 32, 1, false));
        let bucketed = padded(&shuffled_batches(&lengths, 32, 1, true));
        assert!(bucketed * 10 < plain * 7, "bucketed {bucketed} vs plain {plain}");
    }

    #[test]
    fn sequential_batches_keep_order() {
        assert_eq!(sequential_batches(5, 2), [vec![0, 1], vec![2, 3], vec![4]]);
        assert!(sequential_batches(0, 4).is_empty());
    }
}
