//! Reshapes a backend may do without copying: the projections' `[batch, seq, d]` ↔ `[tokens, d]`
//! and the fused operations' `[.., cols]` ↔ `[rows, cols]`, forward and backward.
//!
//! burn-ndarray 0.21 copies the whole tensor on every `reshape`, even one whose layout already
//! fits (it turns a view into a new array), and autodiff reshapes each gradient back the same
//! way: about two dozen activation-sized copies per layer and training step. A [`ReshapeKernel`],
//! installed by the binary for one concrete backend (`prunelab-gemm`'s CPU kernels), returns a
//! view of the same memory instead where it can. Without one, [`reshape`] is Burn's exactly.

use burn::prelude::*;
use burn::tensor::TensorPrimitive;

/// A reshape on its way to a kernel: `input` as `shape` (the same number of elements). The kernel
/// takes `input` when it handles it and leaves the result (with gradients, for an autodiff
/// primitive) in `output`; otherwise it leaves `input` for Burn's `reshape`.
#[derive(Debug)]
pub struct ReshapeCall<P> {
    /// The tensor, until a kernel takes it.
    pub input: Option<P>,
    /// The shape wanted.
    pub shape: Vec<usize>,
    /// The reshaped tensor, when a kernel took the input.
    pub output: Option<P>,
}

/// A kernel for [`ReshapeCall`]s of one backend's float primitive, behind `dyn Any`.
pub type ReshapeKernel = super::hook::Kernel;

static RESHAPE_KERNEL: super::hook::Hook = super::hook::Hook::new();

/// Install (or with `None` remove) the kernel [`reshape`] tries first.
pub fn set_reshape_kernel(kernel: Option<ReshapeKernel>) {
    RESHAPE_KERNEL.set(kernel);
}

/// `x.reshape(shape)`: through the installed kernel when it takes it, else Burn's.
pub fn reshape<B: Backend, const D: usize, const E: usize>(x: Tensor<B, D>, shape: [usize; E]) -> Tensor<B, E> {
    let Some(kernel) = RESHAPE_KERNEL.get() else { return x.reshape(shape) };
    let input = match x.into_primitive() {
        TensorPrimitive::Float(input) => input,
        quantized => return Tensor::<B, D>::from_primitive(quantized).reshape(shape),
    };
    let mut call = ReshapeCall { input: Some(input), shape: shape.to_vec(), output: None };
    kernel(&mut call);
    match (call.output, call.input) {
        (Some(out), _) => Tensor::from_primitive(TensorPrimitive::Float(out)),
        (None, Some(input)) => Tensor::<B, D>::from_primitive(TensorPrimitive::Float(input)).reshape(shape),
        (None, None) => unreachable!("a reshape kernel took the input and returned nothing"),
    }
}
