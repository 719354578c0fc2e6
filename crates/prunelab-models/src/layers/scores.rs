//! The attention's scores before their softmax, `scores · scale + mask`, as one operation a
//! backend may run its own way.
//!
//! burn-ndarray runs the product by the scale and the broadcast add of the mask as two passes on
//! one core, each into a fresh buffer: about 5 % of an evaluation on two cores, all of it while
//! the other core waits (`bench/NOTES.md`). A [`ScoresKernel`], installed by the binary for one
//! concrete backend (`prunelab-gemm`'s CPU kernels), takes both in one pass over the cores.
//!
//! Without a kernel, or for a call it leaves, [`scale_and_mask`] is Burn's `scores * scale + mask`
//! exactly.

use burn::prelude::*;
use burn::tensor::TensorPrimitive;

/// The operation on its way to a kernel: the kernel takes `args` when it handles them (dtype,
/// shapes, a mask without gradients) and leaves the result (with gradients for `scores`, for an
/// autodiff primitive) in `output`; otherwise it leaves `args` for Burn's ops.
#[derive(Debug)]
pub struct ScoresCall<P> {
    /// The scores `[batch, heads, queries, keys]` and the mask, broadcastable to them, until a
    /// kernel takes them.
    pub args: Option<(P, P)>,
    /// The factor of the scores.
    pub scale: f64,
    /// `scores · scale + mask`, when a kernel took the arguments.
    pub output: Option<P>,
}

/// A kernel for [`ScoresCall`]s of one backend's float primitive, behind `dyn Any`.
pub type ScoresKernel = super::hook::Kernel;

static SCORES_KERNEL: super::hook::Hook = super::hook::Hook::new();

/// Install (or with `None` remove) the kernel [`scale_and_mask`] tries first.
pub fn set_scores_kernel(kernel: Option<ScoresKernel>) {
    SCORES_KERNEL.set(kernel);
}

/// `scores * scale + mask`: through the installed kernel when it takes them, else Burn's.
pub fn scale_and_mask<B: Backend>(scores: Tensor<B, 4>, scale: f64, mask: Tensor<B, 4>) -> Tensor<B, 4> {
    let burn = |scores: Tensor<B, 4>, mask: Tensor<B, 4>| scores * scale + mask;
    let Some(kernel) = SCORES_KERNEL.get() else { return burn(scores, mask) };
    let (TensorPrimitive::Float(scores), TensorPrimitive::Float(mask)) =
        (scores.into_primitive(), mask.into_primitive())
    else {
        unreachable!("the attention's scores and masks are float tensors, never quantized ones, in prunelab")
    };
    let mut call = ScoresCall { args: Some((scores, mask)), scale, output: None };
    kernel(&mut call);
    let rebuild = |p: B::FloatTensorPrimitive| Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(p));
    match (call.output, call.args) {
        (Some(out), _) => rebuild(out),
        (None, Some((scores, mask))) => burn(rebuild(scores), rebuild(mask)),
        (None, None) => unreachable!("a scores kernel took the arguments and returned nothing"),
    }
}
