//! The flat step's global norm: the sum of squares of the whole flat gradient buffer, as one
//! operation a backend may run its own way.
//!
//! With Burn's ops it is a square, a sum over rows of [`ROW`] elements and a sum of the rows' sums:
//! three kernels on the GPU backends, and 1.35 ms of GPU time per GPT-2 small step on an H100
//! where one pass over the 124M gradients would take about 0.2 ms (`bench/NOTES.md`). A
//! [`SquaresKernel`], installed by the binary for one concrete backend, takes the whole sum
//! (`prunelab-cublas`: two launches of a kernel of its own on CubeCL's stream). On Burn's CPU
//! backend [`super::cpu::sum_of_squares`] is one threaded pass and comes first.
//!
//! Each way sums in its own fixed order, so the norm's last bits differ between them, and each
//! gives the same bits on every run.

use burn::prelude::*;
use burn::tensor::TensorPrimitive;
use prunelab_models::layers::hook::Hook;

/// Burn's ops (and the CPU pass) sum rows of this many elements first; the flat buffers' length
/// is a multiple of it. (One reduction over a whole 1-D buffer runs in a single thread block on
/// CubeCL without autotuning: see `bench/NOTES.md`.)
pub(crate) const ROW: usize = 4096;

/// A sum of squares on its way to a kernel: the kernel takes `input` (a 1-D float primitive of
/// the backend) when it handles it and leaves the `[1]` sum in `output`; otherwise it leaves
/// `input` for Burn's ops.
#[derive(Debug)]
pub struct SquaresCall<P> {
    /// The values, until a kernel takes them.
    pub input: Option<P>,
    /// The sum, when a kernel took the values.
    pub output: Option<P>,
}

/// A kernel for [`SquaresCall`]s of one backend's float primitive, behind `dyn Any`.
pub type SquaresKernel = prunelab_models::layers::hook::Kernel;

static SQUARES_KERNEL: Hook = Hook::new();

/// Install (or with `None` remove) the kernel [`sum_of_squares`] tries after the CPU pass.
pub fn set_squares_kernel(kernel: Option<SquaresKernel>) {
    SQUARES_KERNEL.set(kernel);
}

/// The sum of the squares of `values` (1-D, a multiple of [`ROW`] long), as a `[1]` tensor on its
/// device, without a host read: the CPU pass, the installed kernel, or Burn's ops.
pub(crate) fn sum_of_squares<B: Backend>(values: Tensor<B, 1>) -> Tensor<B, 1> {
    match super::cpu::sum_of_squares(&values, ROW) {
        Some(sum) => sum,
        None => kernel_or_burn(values),
    }
}

/// The installed kernel's sum, or Burn's ops'.
fn kernel_or_burn<B: Backend>(values: Tensor<B, 1>) -> Tensor<B, 1> {
    let mut call = SquaresCall { input: Some(values.into_primitive().tensor()), output: None };
    if let Some(kernel) = SQUARES_KERNEL.get() {
        kernel(&mut call);
    }
    let rebuild = |p: B::FloatTensorPrimitive| Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(p));
    match (call.output, call.input) {
        (Some(sum), _) => rebuild(sum),
        (None, Some(values)) => {
            let values = rebuild(values);
            let rows = values.dims()[0] / ROW;
            values.square().reshape([rows, ROW]).sum_dim(1).reshape([rows]).sum_dim(0)
        }
        (None, None) => unreachable!("a squares kernel took the values and returned nothing"),
    }
}

#[cfg(test)]
mod tests {
    use std::any::Any;

    use burn::backend::NdArray;
    use burn::tensor::TensorMetadata;
    use burn::tensor::ops::FloatTensor;

    use super::*;

    /// Only calls of this length reach the test kernel (no flat step of another test makes one:
    /// theirs go through the CPU pass, which comes before the hook).
    const ODD: usize = 3 * ROW;

    /// A kernel that answers with the sum of the absolute values instead of the squares, so that
    /// the test can tell its answer from Burn's.
    fn sum_of_magnitudes(call: &mut dyn Any) {
        let Some(call) = call.downcast_mut::<SquaresCall<FloatTensor<NdArray>>>() else { return };
        if call.input.as_ref().is_none_or(|input| input.shape().num_elements() != ODD) {
            return;
        }
        let values = Tensor::<NdArray, 1>::from_primitive(TensorPrimitive::Float(call.input.take().expect("checked")));
        call.output = Some(values.abs().sum().into_primitive().tensor());
    }

    fn values(len: usize) -> Vec<f32> {
        (0..len).map(|i| ((i % 7) as f32 - 3.0) * 0.5).collect()
    }

    /// Without a kernel Burn's ops give the sum of squares, as the CPU pass does; with one the
    /// kernel's answer is returned.
    #[test]
    fn burn_ops_the_cpu_pass_and_an_installed_kernel() {
        let device = Default::default();
        let values = values(ODD);
        let squares: f32 = values.iter().map(|v| v * v).sum();
        let magnitudes: f32 = values.iter().map(|v| v.abs()).sum();
        let tensor = Tensor::<NdArray, 1>::from_floats(values.as_slice(), &device);
        let burn = kernel_or_burn(tensor.clone()).into_scalar();
        let cpu = sum_of_squares(tensor.clone()).into_scalar();
        set_squares_kernel(Some(sum_of_magnitudes));
        let kernel = kernel_or_burn(tensor).into_scalar();
        set_squares_kernel(None);
        assert!((burn - squares).abs() <= squares * 1e-6, "Burn's ops: {burn} against {squares}");
        assert!((cpu - squares).abs() <= squares * 1e-6, "the CPU pass: {cpu} against {squares}");
        assert_eq!(kernel, magnitudes);
    }
}
