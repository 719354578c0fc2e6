//! Embedding lookups whose gradient a backend may compute with a kernel of its own.
//!
//! Burn 0.21's `Embedding` is its backend's default `embedding`: a row select forward, and
//! backward a zero `[vocab, hidden]` gradient into which every token's row is added with
//! `select_add`. On CUDA that add is CubeCL's `select_assign` kernel, which serialises on rows
//! many tokens share (a token-type embedding whose every token has type 0, the positions of a
//! batch): on an H100 it took 2.2 ms of MiniLM's 9.6 ms training step (`bench/NOTES.md`). An
//! [`EmbedKernel`], installed by the binary for one concrete backend (`prunelab-cublas` on CUDA),
//! takes the lookup whole: Burn's select forward, and a backward of its own.
//!
//! Without a kernel, or for a lookup it leaves, [`embedding`] is `Embedding::forward` exactly.

use burn::nn::Embedding;
use burn::prelude::*;
use burn::tensor::TensorPrimitive;

/// A lookup of `ids` (`[batch, seq]`, ints) in `weight` (`[vocab, hidden]`), as the backend's
/// float and int primitives.
#[derive(Debug)]
pub struct EmbedArgs<F, I> {
    /// The table, `[vocab, hidden]`.
    pub weight: F,
    /// The ids, `[batch, seq]`.
    pub ids: I,
}

/// An [`EmbedArgs`] on its way to a kernel: the kernel takes `args` when it handles them and leaves
/// the rows (`[batch, seq, hidden]`, with the table's gradient when the primitive is an autodiff
/// one) in `output`; otherwise it leaves `args` for Burn's ops.
#[derive(Debug)]
pub struct EmbedCall<F, I> {
    /// The arguments, until a kernel takes them.
    pub args: Option<EmbedArgs<F, I>>,
    /// The result.
    pub output: Option<F>,
}

/// A kernel for [`EmbedCall`]s of one backend's primitives, behind `dyn Any`.
pub type EmbedKernel = super::hook::Kernel;

static EMBED_KERNEL: super::hook::Hook = super::hook::Hook::new();

/// Install (or with `None` remove) the kernel [`embedding`] tries first.
pub fn set_embed_kernel(kernel: Option<EmbedKernel>) {
    EMBED_KERNEL.set(kernel);
}

/// `table.forward(ids)`: the rows of `ids`, `[batch, seq, hidden]`, through the installed kernel
/// when there is one.
pub fn embedding<B: Backend>(table: &Embedding<B>, ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
    let Some(kernel) = EMBED_KERNEL.get() else { return table.forward(ids) };
    let TensorPrimitive::Float(weight) = table.weight.val().into_primitive() else {
        unreachable!("embedding tables are float tensors, never quantized ones, in prunelab")
    };
    let mut call = EmbedCall { args: Some(EmbedArgs { weight, ids: ids.into_primitive() }), output: None };
    kernel(&mut call);
    match (call.output, call.args) {
        (Some(out), _) => Tensor::from_primitive(TensorPrimitive::Float(out)),
        (None, Some(EmbedArgs { ids, .. })) => table.forward(Tensor::from_primitive(ids)),
        (None, None) => unreachable!("an embedding kernel took the arguments and returned nothing"),
    }
}

#[cfg(test)]
mod tests {
    use std::any::Any;

    use burn::backend::{Autodiff, NdArray};
    use burn::nn::EmbeddingConfig;
    use burn::tensor::ops::{FloatTensor, IntTensor};

    use super::*;

    type A = Autodiff<NdArray>;

    /// A kernel for tables 11 wide on `Autodiff<NdArray>` that runs Burn's lookup and doubles it,
    /// so the test sees which path ran (other tests running meanwhile never use that width).
    fn doubling_kernel(call: &mut dyn Any) {
        let Some(call) = call.downcast_mut::<EmbedCall<FloatTensor<A>, IntTensor<A>>>() else { return };
        let Some(args) = call.args.take() else { return };
        let weight = Tensor::<A, 2>::from_primitive(TensorPrimitive::Float(args.weight));
        if weight.dims()[1] != 11 {
            let TensorPrimitive::Float(weight) = weight.into_primitive() else { unreachable!() };
            call.args = Some(EmbedArgs { weight, ids: args.ids });
            return;
        }
        let ids = Tensor::<A, 2, Int>::from_primitive(args.ids);
        let rows = burn::tensor::module::embedding(weight, ids) * 2.0;
        call.output = Some(rows.into_primitive().tensor());
    }

    #[test]
    fn lookups_go_through_the_installed_kernel_and_others_fall_back() {
        let device = Default::default();
        let taken = EmbeddingConfig::new(5, 11).init::<A>(&device);
        let left = EmbeddingConfig::new(5, 3).init::<A>(&device);
        let ids = Tensor::<A, 2, Int>::from_data([[4, 0, 4], [1, 1, 2]], &device);
        set_embed_kernel(Some(doubling_kernel));
        let (marked, fallback) = (embedding(&taken, ids.clone()), embedding(&left, ids.clone()));
        set_embed_kernel(None);
        let unmarked = embedding(&taken, ids.clone());
        let max_diff = |a: Tensor<A, 3>, b: Tensor<A, 3>| (a - b).abs().max().into_scalar();
        assert_eq!(max_diff(marked.clone(), taken.forward(ids.clone()) * 2.0), 0.0);
        assert_eq!(max_diff(fallback, left.forward(ids.clone())), 0.0);
        assert_eq!(max_diff(unmarked, taken.forward(ids.clone())), 0.0);
        // The kernel's output carries the table's gradient: 2 per use of a row.
        let grad = taken.weight.grad(&marked.sum().backward()).expect("a gradient");
        let per_row: Vec<f32> = grad.sum_dim(1).into_data().to_vec().expect("f32");
        assert_eq!(per_row, [2.0 * 11.0, 4.0 * 11.0, 2.0 * 11.0, 0.0, 4.0 * 11.0]);
    }
}
