//! The projections' matrix products (`prunelab_models::layers::linear`'s `x · W`) as one
//! operation of their own, for kernels Burn does not have — and Burn's CPU backend's kernels of
//! prunelab's own.
//!
//! - [`autodiff::product`]: on `Autodiff<B>`, a product is one tracked operation whose forward
//!   and backward are products of a given kernel ([`autodiff::GemmFn`], `op(a) · op(b)`:
//!   `y = x · w`, `dx = g · wᵀ`, `dw = xᵀ · g`, as `torch.nn.Linear` computes them).
//!   `prunelab-cublas` (cuBLAS on CUDA) and [`cpu`] build on it.
//! - [`cpu`] (feature `ndarray`): the product on Burn's CPU backend, its output rows (or, for the
//!   attention's batched products, its matrices) split over the cores, each part by the same
//!   single-threaded kernel Burn uses, or on CPUs with AVX-512 or AVX2 by kernels of the crate's own
//!   that sums in the same order — so the result is Burn's, bit for bit, whatever the number of
//!   threads (Burn 0.21's own threads are not deterministic). [`cpu::install`] registers it
//!   with `prunelab_models::layers::set_product_kernel`; [`cpu::fused`] runs softmax, GELU and
//!   dropout as one deterministic, threaded pass each (`layers::fused::set_fused_kernel`).
//! - [`take_if_f32_of_rank`]: what a product kernel takes from a call (cuBLAS's: a projection's
//!   2-D operands, and batches of matrices where CubeCL's stream is known; the CPU kernel's:
//!   batches too), and
//!   what it leaves to Burn's matmul; [`take_biased_if_f32_matrices`]: a projection's product
//!   with its bias (the CPU kernel's [`autodiff::biased_product`]).
//! - [`reference`]: f64 references the kernels are checked against (here and on the device).
#![warn(missing_docs)]

use burn::tensor::{DType, TensorMetadata};
use prunelab_models::layers::ProductCall;

pub mod autodiff;
#[cfg(feature = "ndarray")]
pub mod cpu;
pub mod reference;

/// Whether a batched product `op(a) · b` of rank 4 writes its `[batch, heads, rows, n]` output
/// with its heads interleaved — over memory ordered `[batch, rows, heads, n]` — given `b`'s `shape`
/// and `strides` (in elements): where `b` (untransposed) is itself a view of heads lying side by
/// side in each row (`split_heads` of a projection, GPT-2's fused one included, or such a view's
/// gradient). The attention's `probs · v` and the backward's query, key and value gradients are
/// such products, and merging their heads back (`merge_heads`, or `split_heads`' backward) is then
/// a view where a contiguous output made it a copy. Both kernels (CPU and CUDA) follow this rule.
pub fn heads_interleaved(shape: &[usize], strides: &[isize], transposed: bool) -> bool {
    match (shape, strides) {
        ([_, heads, _, n], [_, head_stride, _, 1]) => !transposed && *heads >= 2 && *head_stride == *n as isize,
        _ => false,
    }
}

/// Computes `call`'s product with `product(lhs, rhs, transposed_rhs)` when both operands are
/// non-empty f32 tensors of one rank in `ranks` with equal batch axes (all but the last two: no
/// broadcasting); otherwise leaves the operands in `call` for Burn's matmul.
pub fn take_if_f32_of_rank<P: TensorMetadata>(
    call: &mut ProductCall<P>,
    ranks: std::ops::RangeInclusive<usize>,
    product: impl FnOnce(P, P, bool) -> P,
) {
    let Some((a, b)) = call.operands.take() else { return };
    let (sa, sb) = (a.shape(), b.shape());
    let rank = sa.num_dims();
    let fits = |t: &P| t.dtype() == DType::F32 && t.shape().num_dims() == rank && t.shape().num_elements() > 0;
    if ranks.contains(&rank) && fits(&a) && fits(&b) && sa[..rank - 2] == sb[..rank - 2] {
        call.product = Some(product(a, b, call.transposed_rhs));
    } else {
        call.operands = Some((a, b));
    }
}

/// Computes `call`'s product plus its bias with `product` when the operands are non-empty 2-D f32
/// tensors (`rhs` not transposed) and the bias a 1-D f32 tensor as long as the product's rows;
/// otherwise leaves all three in `call`. Returns whether it took them.
pub fn take_biased_if_f32_matrices<P: TensorMetadata>(
    call: &mut ProductCall<P>,
    product: impl FnOnce(P, P, P) -> P,
) -> bool {
    let fits = match (&call.operands, &call.bias) {
        (Some((a, b)), Some(bias)) => {
            let (sa, sb, sbias) = (a.shape(), b.shape(), bias.shape());
            let f32s = [a.dtype(), b.dtype(), bias.dtype()].iter().all(|d| *d == DType::F32);
            f32s && !call.transposed_rhs
                && sa.num_dims() == 2
                && sb.num_dims() == 2
                && sbias.num_dims() == 1
                && sa.num_elements() > 0
                && sb.num_elements() > 0
                && sbias[0] == sb[1]
        }
        _ => false,
    };
    if fits {
        let (Some((a, b)), Some(bias)) = (call.operands.take(), call.bias.take()) else {
            unreachable!("matched above")
        };
        call.product = Some(product(a, b, bias));
    }
    fits
}

#[cfg(test)]
mod tests {
    use super::heads_interleaved;

    #[test]
    fn outputs_interleave_their_heads_where_b_is_a_view_of_heads() {
        let (batch, seq, heads, dim) = (3, 5, 4, 8);
        let s = |strides: [usize; 4]| strides.map(|s| s as isize);
        // `split_heads` of a `[batch, seq, heads · dim]` projection, and of GPT-2's fused one.
        assert!(heads_interleaved(&[batch, heads, seq, dim], &s([seq * heads * dim, dim, heads * dim, 1]), false));
        assert!(heads_interleaved(
            &[batch, heads, seq, dim],
            &s([seq * 3 * heads * dim, dim, 3 * heads * dim, 1]),
            false
        ));
        // Contiguous heads, a transposed view (`kᵀ`), one head, rank 3: as they are.
        assert!(!heads_interleaved(&[batch, heads, seq, dim], &s([heads * seq * dim, seq * dim, dim, 1]), false));
        assert!(!heads_interleaved(&[batch, heads, seq, dim], &s([seq * heads * dim, dim, heads * dim, 1]), true));
        assert!(!heads_interleaved(&[batch, 1, seq, dim], &s([seq * dim, dim, dim, 1]), false));
        assert!(!heads_interleaved(&[heads, seq, dim], &[dim as isize, (heads * dim) as isize, 1], false));
    }
}
