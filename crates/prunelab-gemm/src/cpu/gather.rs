//! Many slices copied into one new buffer over every core: the flat optimizer step's gather of
//! all gradients into one buffer (`prunelab-train`'s `optim::gather`), every step.
//!
//! With Burn's ops that is a `full` of the whole buffer and then one `slice_assign` per tensor,
//! each a single-threaded pass: MiniLM's 22.7 M gradients are written twice, 91 MB each time.
//! Here the buffer is cut into one block per thread and every element is written once: copied
//! from its part, or `fill` where no part lies. A copy does no arithmetic, so the buffer is the
//! same bits either way.

use std::mem::MaybeUninit;

use burn_ndarray::NdArrayTensor;
use ndarray::Array1;

use super::{PARALLEL_MIN_ELEMENTS, assume_init, in_blocks, threads, uninit};

/// [`gather`] of Burn's CPU tensors: a new 1-D tensor, or `None` when a part is not a contiguous
/// f32 array in standard layout (then Burn's ops do the copy).
///
/// # Panics
/// As [`gather`].
pub fn primitive_gather(parts: &[(NdArrayTensor, usize)], len: usize, fill: f32) -> Option<NdArrayTensor> {
    let views: Vec<_> = parts
        .iter()
        .map(|(tensor, offset)| match tensor {
            NdArrayTensor::F32(storage) => Some((storage.view(), *offset)),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let slices: Vec<(&[f32], usize)> =
        views.iter().map(|(view, offset)| view.as_slice().map(|slice| (slice, *offset))).collect::<Option<_>>()?;
    let values = gather(&slices, len, fill);
    Some(NdArrayTensor::from(Array1::from_vec(values).into_dyn().into_shared()))
}

/// `parts` (each a slice and the offset where it starts) copied into a new buffer of `len`
/// elements that is `fill` wherever no part lies.
///
/// # Panics
/// When two parts overlap or one ends past `len`.
#[allow(unsafe_code)]
pub fn gather(parts: &[(&[f32], usize)], len: usize, fill: f32) -> Vec<f32> {
    let mut sorted: Vec<(usize, &[f32])> =
        parts.iter().filter(|(part, _)| !part.is_empty()).map(|&(part, offset)| (offset, part)).collect();
    sorted.sort_by_key(|&(offset, _)| offset);
    let ends_in_order = sorted.windows(2).all(|pair| pair[0].0 + pair[0].1.len() <= pair[1].0);
    assert!(ends_in_order, "gathered parts overlap");
    assert!(
        sorted.last().is_none_or(|(offset, part)| offset + part.len() <= len),
        "a gathered part ends past the buffer"
    );
    let mut out = uninit(len);
    let block = if len < PARALLEL_MIN_ELEMENTS { len } else { len.div_ceil(threads()) };
    in_blocks(&mut out, 1, block, |start, block| write_block(&sorted, start, fill, block));
    // SAFETY: `write_block` writes every element of each block, and the blocks cover `out`.
    unsafe { assume_init(out) }
}

/// Elements `start..start + out.len()` of the buffer into `out`, every one: from the parts
/// (sorted by offset, not overlapping) that reach into it, `fill` between them.
fn write_block(parts: &[(usize, &[f32])], start: usize, fill: f32, out: &mut [MaybeUninit<f32>]) {
    let end = start + out.len();
    let mut at = start;
    let first = parts.partition_point(|(offset, part)| offset + part.len() <= start);
    for &(offset, part) in parts[first..].iter().take_while(|(offset, _)| *offset < end) {
        let from = offset.max(start);
        let to = (offset + part.len()).min(end);
        out[at - start..from - start].fill(MaybeUninit::new(fill));
        for (o, &v) in out[from - start..to - start].iter_mut().zip(&part[from - offset..to - offset]) {
            *o = MaybeUninit::new(v);
        }
        at = to;
    }
    out[at - start..].fill(MaybeUninit::new(fill));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The buffer Burn's ops make: `fill` everywhere, then each part copied in.
    fn reference(parts: &[(&[f32], usize)], len: usize, fill: f32) -> Vec<f32> {
        let mut out = vec![fill; len];
        for (part, offset) in parts {
            out[*offset..offset + part.len()].copy_from_slice(part);
        }
        out
    }

    /// Parts out of order, with gaps before, between and after them, an empty one, and a buffer
    /// long enough to be cut into blocks that start and end inside parts and inside gaps.
    #[test]
    fn every_element_is_its_part_or_the_fill_across_blocks() {
        let values = |n: usize, base: f32| (0..n).map(|i| base + i as f32).collect::<Vec<f32>>();
        let (a, b, c, d) = (values(40_000, 1.0), values(7, -50.0), values(25_001, 1e6), values(0, 0.0));
        let len = 100_003;
        let parts: [(&[f32], usize); 4] = [(&c, 60_000), (&a, 3), (&d, 45_000), (&b, 40_003)];
        let fill = -0.5;
        let gathered = gather(&parts, len, fill);
        assert_eq!(gathered, reference(&parts, len, fill));
        assert!(len >= PARALLEL_MIN_ELEMENTS, "the buffer is cut into blocks");
    }

    /// A short buffer stays on one thread and is still complete; no parts at all is all fill.
    #[test]
    fn short_and_empty_gathers() {
        let part = [1.0, 2.0, 3.0];
        assert_eq!(gather(&[(&part, 2)], 6, 0.0), [0.0, 0.0, 1.0, 2.0, 3.0, 0.0]);
        assert_eq!(gather(&[], 4, 7.0), [7.0; 4]);
        assert!(gather(&[], 0, 7.0).is_empty());
    }

    #[test]
    #[should_panic(expected = "overlap")]
    fn overlapping_parts_are_refused() {
        let part = [1.0; 4];
        let _ = gather(&[(&part, 0), (&part, 3)], 8, 0.0);
    }
}
