//! Softmax over the last axis (`prunelab_models::layers::fused`'s `FusedOp::Softmax`: the
//! attention probabilities) on CUDA as kernels of our own (`softmax.cu`): one launch forward, one
//! backward, where Burn's softmax is a max and a sum reduction with element-wise kernels between
//! them, and its autodiff as many again (on an H100, MiniLM's evaluation spent 0.34 ms a batch in
//! the reduction pair alone against 0.21 ms for all of torch's softmax: `bench/NOTES.md`).
//!
//! - [`SoftmaxKernels`]: forward and backward on a backend: CUDA, and with the `fusion` feature
//!   custom operations of Burn's fusion stream.
//! - On `Autodiff<B>` the softmax is one tracked operation that keeps its output for the backward.
//! - [`install_softmax`] checks both against Burn's softmax and autodiff on the device, then
//!   registers the kernel for softmaxes alone with
//!   `prunelab_models::layers::fused::set_fused_kernel_for`: GELU and dropout stay Burn's on CUDA,
//!   unflattened.

use std::any::Any;

use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Device, Distribution, TensorMetadata, activation};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::{CheckpointStrategy, NoCheckpointing};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_cubecl::cubecl::cuda::CudaRuntime;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, FloatElement, IntElement};
use prunelab_models::layers::fused::{FusedCall, FusedOp, Kinds, set_fused_kernel_for, softmax};

use crate::cublas::{self, CublasError};
use crate::kernels::{self, Arg, Launch, args};

type Cuda = burn::backend::Cuda<f32, i32>;

/// Rows per block (`SOFTMAX_WARPS` in `softmax.cu`: a warp a row).
const ROWS_PER_BLOCK: usize = 8;

/// Softmax's kernels on a backend, along the last axis of `[rows, cols]` f32 inputs.
pub trait SoftmaxKernels: Backend {
    /// `softmax(x)` along each row.
    fn softmax_forward(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The input's gradient from the output's gradient `g` and the output `y`.
    fn softmax_backward(g: FloatTensor<Self>, y: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl<F: FloatElement, I: IntElement, BT: BoolElement> SoftmaxKernels for CubeBackend<CudaRuntime, F, I, BT> {
    fn softmax_forward(x: CubeTensor<CudaRuntime>) -> CubeTensor<CudaRuntime> {
        let x = cublas::contiguous(x);
        let y = like(&x);
        launch("softmax_forward", [&x, &y]);
        y
    }

    fn softmax_backward(g: CubeTensor<CudaRuntime>, y: CubeTensor<CudaRuntime>) -> CubeTensor<CudaRuntime> {
        let (g, y) = (cublas::contiguous(g), cublas::contiguous(y));
        let dx = like(&y);
        launch("softmax_backward", [&g, &y, &dx]);
        dx
    }
}

/// A new contiguous f32 tensor of `x`'s shape on its device.
fn like(x: &CubeTensor<CudaRuntime>) -> CubeTensor<CudaRuntime> {
    empty_device_contiguous_dtype(x.client.clone(), x.device.clone(), x.meta.shape().clone(), DType::F32)
}

/// `kernel` over the rows of `tensors` (inputs, then the output; all `[rows, cols]`).
fn launch<const N: usize>(kernel: &'static str, tensors: [&CubeTensor<CudaRuntime>; N]) {
    let shape = tensors[0].meta.shape();
    let (rows, cols) = (shape[0], shape[1]);
    let buffers = tensors.map(|t| (t.handle.clone().binding(), rows * cols * std::mem::size_of::<f32>())).to_vec();
    let [rows_, cols_] = [rows, cols].map(|v| Arg::I32(i32::try_from(v).expect("checked by the kernel hook")));
    let mut arguments = args(&(0..N - 1).collect::<Vec<_>>(), [rows_, cols_]);
    arguments.push(Arg::Buffer(N - 1));
    let launch = Launch {
        kernel,
        grid: (rows.div_ceil(ROWS_PER_BLOCK) as u32, 1, 1),
        block: (32 * ROWS_PER_BLOCK as u32, 1, 1),
        args: arguments,
    };
    kernels::submit(tensors[0].device.index, buffers, vec![launch]);
}

#[cfg(feature = "fusion")]
impl<B: burn_fusion::FusionBackend + SoftmaxKernels> SoftmaxKernels for burn_fusion::Fusion<B> {
    fn softmax_forward(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let shape = x.shape.clone();
        let [y] =
            crate::fusion::register::<B, 1, 1>("prunelab_softmax_forward", [x], [shape], |[x]| [B::softmax_forward(x)]);
        y
    }

    fn softmax_backward(g: FloatTensor<Self>, y: FloatTensor<Self>) -> FloatTensor<Self> {
        let shape = y.shape.clone();
        let [dx] = crate::fusion::register::<B, 2, 1>("prunelab_softmax_backward", [g, y], [shape], |[g, y]| {
            [B::softmax_backward(g, y)]
        });
        dx
    }
}

/// The softmax on `Autodiff<B>`: the forward kernel, and a backward of the backward kernel.
fn tracked<B: SoftmaxKernels, C: CheckpointStrategy>(x: FloatTensor<Autodiff<B, C>>) -> FloatTensor<Autodiff<B, C>> {
    #[derive(Debug)]
    struct Softmax;

    impl<B: SoftmaxKernels> Backward<B, 1> for Softmax {
        /// The output.
        type State = FloatTensor<B>;

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            let [node] = ops.parents;
            let g = grads.consume::<B>(&ops.node);
            if let Some(node) = node {
                grads.register::<B>(node.id, B::softmax_backward(g, ops.state));
            }
        }
    }

    let y = B::softmax_forward(x.primitive);
    match Softmax.prepare::<C>([x.node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(y.clone(), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}

/// Compile the kernels and hand softmaxes on `burn::backend::Cuda` (plain or fused, and its
/// `Autodiff`) to them, after checking them against Burn's softmax on `device`. Needs CubeCL's
/// stream (learnt here if not yet) and libnvrtc; without either, or when the check differs,
/// nothing is installed and the error says why.
pub fn install_softmax(device: &Device<Cuda>) -> Result<(), CublasError> {
    kernels::install_hook(device, |kernel| set_fused_kernel_for(kernel, Kinds::SOFTMAX), kernel, check)?;
    tracing::info!("softmax as prunelab CUDA kernels on CubeCL's stream");
    Ok(())
}

/// The kernel handed to `set_fused_kernel_for`: takes softmaxes of non-empty 2-D f32 inputs of `Cuda`
/// and `Autodiff<Cuda>` with fewer than 2³¹ rows and columns; leaves GELU and dropout to Burn.
fn kernel(call: &mut dyn Any) {
    if let Some(call) = call.downcast_mut::<FusedCall<FloatTensor<Autodiff<Cuda>>>>() {
        take_if_fits(call, tracked::<Cuda, NoCheckpointing>);
    } else if let Some(call) = call.downcast_mut::<FusedCall<FloatTensor<Cuda>>>() {
        take_if_fits(call, <Cuda as SoftmaxKernels>::softmax_forward);
    }
}

fn take_if_fits<P: TensorMetadata>(call: &mut FusedCall<P>, run: impl FnOnce(P) -> P) {
    let fits = |x: &P| {
        let shape = x.shape();
        shape.num_dims() == 2
            && shape.num_elements() > 0
            && shape[0] <= i32::MAX as usize
            && shape[1] <= i32::MAX as usize
            && x.dtype() == DType::F32
    };
    if matches!(&call.op, Some(FusedOp::Softmax(x)) if fits(x)) {
        let Some(FusedOp::Softmax(x)) = call.op.take() else { unreachable!("matched above") };
        call.output = Some(run(x));
    }
}

/// The installed softmax against Burn's on random scores of a few widths, with a quarter of the
/// columns masked as the attention masks them (`f32::MIN` added) and one row masked whole:
/// outputs and gradients within 1e-5 of the largest magnitude.
fn check(device: &Device<Cuda>) -> Result<(), CublasError> {
    type A = Autodiff<Cuda>;
    const TOLERANCE: f64 = 1e-5;
    for (rows, cols) in [(67, 128), (5, 1000), (130, 37)] {
        let normal = Distribution::Normal(0.0, 3.0);
        let mask =
            Tensor::<A, 2>::random([rows, cols], Distribution::Uniform(0.0, 1.0), device).lower_elem(0.25).float()
                * f32::MIN;
        let mask = mask.slice_assign([0..1, 0..cols], Tensor::full([1, cols], f32::MIN, device));
        let x = Tensor::<A, 2>::random([rows, cols], normal, device) + mask;
        let upstream = Tensor::<A, 2>::random([rows, cols], normal, device);
        let run = |ours: bool| {
            let x = x.clone().detach().require_grad();
            let y = if ours { softmax(x.clone(), 1) } else { activation::softmax(x.clone(), 1) };
            let grads = (y.clone() * upstream.clone()).sum().backward();
            (y.inner().into_data(), x.grad(&grads).expect("a gradient").into_data())
        };
        let (ours, burn) = (run(true), run(false));
        for (what, a, b) in [("output", ours.0, burn.0), ("gradient", ours.1, burn.1)] {
            let (a, b) = (a.to_vec::<f32>().unwrap_or_default(), b.to_vec::<f32>().unwrap_or_default());
            let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE) as f64;
            let error = a.iter().zip(&b).fold(0f32, |m, (p, q)| m.max((p - q).abs())) as f64 / scale;
            if a.len() != b.len() || a.is_empty() || error.is_nan() || error > TOLERANCE {
                return Err(CublasError::Unavailable(format!(
                    "the softmax kernels' {what} differs from Burn's by {error:.2e} (relative, [{rows}, {cols}]), more \
                     than {TOLERANCE:.0e}"
                )));
            }
        }
    }
    Ok(())
}
