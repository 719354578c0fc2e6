//! The flat optimizer step's global norm (`prunelab_train::squares`) on CUDA: the sum of the
//! squares of the whole flat gradient buffer as two launches of a kernel of our own
//! (`squares.cu`: fixed-order partial sums, then their total), queued on CubeCL's stream in one
//! submission, where Burn's ops take a square, a row-wise sum and a total (three kernels and
//! 1.35 ms of GPU time per GPT-2 small step on an H100, for one read of 124M floats that takes
//! about 0.2 ms: `bench/NOTES.md`).

use std::any::Any;

use burn::prelude::*;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Device, Distribution, TensorMetadata, TensorPrimitive};
use burn_cubecl::cubecl::cuda::CudaRuntime;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, FloatElement, IntElement};
use prunelab_train::squares::{SquaresCall, set_squares_kernel};

use crate::cublas::{self, CublasError};
use crate::install::require_stream;
use crate::kernels::{self, Arg, Launch};

type Cuda = burn::backend::Cuda<f32, i32>;

/// Blocks of the first launch (each sums a strided share into one partial sum). A constant, so
/// that the order of additions, and with it the sum's bits, is the same on every card.
const BLOCKS: usize = 1024;

/// The sum of the squares of a 1-D f32 tensor, as a `[1]` tensor, on one backend.
pub trait SumOfSquares: Backend {
    /// The sum; `values` is 1-D, f32 and at most `i32::MAX` long.
    fn sum_of_squares(values: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl<F: FloatElement, I: IntElement, BT: BoolElement> SumOfSquares for CubeBackend<CudaRuntime, F, I, BT> {
    fn sum_of_squares(values: CubeTensor<CudaRuntime>) -> CubeTensor<CudaRuntime> {
        const F32: usize = std::mem::size_of::<f32>();
        let values = cublas::contiguous(values);
        let n = values.meta.shape().num_elements();
        let empty = |len: usize| {
            empty_device_contiguous_dtype(values.client.clone(), values.device.clone(), [len].into(), DType::F32)
        };
        let (partial, out) = (empty(BLOCKS), empty(1));
        let buffers = [(&values, n), (&partial, BLOCKS), (&out, 1)]
            .map(|(t, len)| (t.handle.clone().binding(), len * F32))
            .to_vec();
        let n = i32::try_from(n).expect("checked by the kernel hook");
        let launches = vec![
            Launch {
                kernel: "sum_squares_partial",
                grid: (BLOCKS as u32, 1, 1),
                block: (kernels::BLOCK_THREADS, 1, 1),
                args: vec![Arg::Buffer(0), Arg::I32(n), Arg::Buffer(1)],
            },
            Launch {
                kernel: "sum_squares_total",
                grid: (1, 1, 1),
                block: (kernels::BLOCK_THREADS, 1, 1),
                args: vec![Arg::Buffer(1), Arg::I32(BLOCKS as i32), Arg::Buffer(2)],
            },
        ];
        kernels::submit(values.device.index, buffers, launches);
        out
    }
}

#[cfg(feature = "fusion")]
impl<B: burn_fusion::FusionBackend + SumOfSquares> SumOfSquares for burn_fusion::Fusion<B> {
    fn sum_of_squares(values: FloatTensor<Self>) -> FloatTensor<Self> {
        let [sum] =
            crate::fusion::register::<B, 1, 1>("prunelab_sum_of_squares", [values], [Shape::new([1])], |[values]| {
                [B::sum_of_squares(values)]
            });
        sum
    }
}

/// Compile the kernels and hand the flat step's sums of squares on `burn::backend::Cuda` (plain or
/// fused) to them, after checking one against Burn's sum on `device`. Needs CubeCL's stream
/// (learnt here if not yet) and libnvrtc; without either, or when the check differs, nothing is
/// installed and the error says why.
pub fn install_squares(device: &Device<Cuda>) -> Result<(), CublasError> {
    require_stream(device)?;
    kernels::load()?;
    check(device)?;
    set_squares_kernel(Some(kernel));
    tracing::info!("the optimizer's global norm as a prunelab CUDA kernel on CubeCL's stream");
    Ok(())
}

/// The kernel handed to `set_squares_kernel`: takes non-empty 1-D f32 tensors of `Cuda` shorter
/// than 2³¹ elements.
fn kernel(call: &mut dyn Any) {
    let Some(call) = call.downcast_mut::<SquaresCall<FloatTensor<Cuda>>>() else { return };
    let fits = |t: &FloatTensor<Cuda>| {
        let shape = t.shape();
        shape.num_dims() == 1 && shape[0] > 0 && shape[0] <= i32::MAX as usize && t.dtype() == DType::F32
    };
    if call.input.as_ref().is_some_and(fits) {
        let values = call.input.take().expect("checked above");
        call.output = Some(<Cuda as SumOfSquares>::sum_of_squares(values));
    }
}

/// Ours against Burn's `square().sum()` on lengths that exercise the aligned path, its scalar
/// tail and an unaligned start (a slice one element in): within 1e-5 relative.
fn check(device: &Device<Cuda>) -> Result<(), CublasError> {
    let values = Tensor::<Cuda, 1>::random(
        [3 * BLOCKS * kernels::BLOCK_THREADS as usize + 7],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let len = values.dims()[0];
    for part in [values.clone(), values.clone().slice(1..len), values.slice(0..1000)] {
        let ours = <Cuda as SumOfSquares>::sum_of_squares(part.clone().into_primitive().tensor());
        let ours = Tensor::<Cuda, 1>::from_primitive(TensorPrimitive::Float(ours)).into_scalar();
        let burn = part.square().sum().into_scalar();
        // Written so that a NaN fails the check.
        let close = (ours - burn).abs() <= 1e-5 * burn.abs();
        if !close {
            return Err(CublasError::Unavailable(format!("the sum of squares' check gives {ours}, Burn's {burn}")));
        }
    }
    Ok(())
}
