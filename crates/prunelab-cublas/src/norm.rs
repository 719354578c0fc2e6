//! LayerNorm (`prunelab_models::layers::norm`) on CUDA as kernels of our own (`layer_norm.cu`):
//! one launch forward (a post-LayerNorm block's residual sum included) and three backward,
//! queued on CubeCL's stream in one submission each, where Burn's decomposed norm and its
//! autodiff take about seventeen kernels per norm and step (GPT-2 small under Burn's fusion,
//! counted by CUPTI: `bench/NOTES.md`).
//!
//! - [`LayerNormKernels`]: the forward (output, and each row's mean and reciprocal deviation) and
//!   the backward (the gradients of the input, the scale and the shift) on a backend: CUDA, and
//!   with the `fusion` feature a custom operation of Burn's fusion stream.
//! - On `Autodiff<B>` the norm is one tracked operation whose backward is the backward kernels
//!   (`prunelab_gemm::autodiff::layer_norm`, shared with the CPU kernels).
//! - [`install_norms`] checks both against Burn's ops and autodiff on the device, then registers
//!   the kernel with `prunelab_models::layers::norm::set_norm_kernel`.

use std::any::Any;

use burn::backend::Autodiff;
use burn::nn::LayerNormConfig;
use burn::prelude::*;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Device, Distribution, TensorMetadata};
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_cubecl::cubecl::cuda::CudaRuntime;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, FloatElement, IntElement};
use prunelab_gemm::autodiff::NormForward;
use prunelab_models::layers::norm::{NormArgs, NormCall, add_layer_norm, layer_norm, set_norm_kernel};

use crate::cublas::{self, CublasError};
use crate::kernels::{self, Arg, Launch, args};

type Cuda = burn::backend::Cuda<f32, i32>;

/// LayerNorm's kernels on a backend, on `[rows, cols]` f32 inputs.
pub trait LayerNormKernels: Backend {
    /// The norm of `x`, or of `x + residual`, and each row's mean and `1 / √(var + ε)`
    /// (`[rows]`); with a residual and `save`, the sum too (see
    /// `prunelab_gemm::autodiff::NormForwardFn`).
    fn layer_norm_forward(
        x: FloatTensor<Self>,
        residual: Option<FloatTensor<Self>>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f32,
        save: bool,
    ) -> NormForward<FloatTensor<Self>>;

    /// `[d x, d gamma, d beta]` from the output's gradient `g` and what the forward saved.
    fn layer_norm_backward(
        g: FloatTensor<Self>,
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 3];
}

impl<F: FloatElement, I: IntElement, BT: BoolElement> LayerNormKernels for CubeBackend<CudaRuntime, F, I, BT> {
    fn layer_norm_forward(
        x: CubeTensor<CudaRuntime>,
        residual: Option<CubeTensor<CudaRuntime>>,
        gamma: CubeTensor<CudaRuntime>,
        beta: CubeTensor<CudaRuntime>,
        epsilon: f32,
        save: bool,
    ) -> NormForward<CubeTensor<CudaRuntime>> {
        let [x, gamma, beta] = [x, gamma, beta].map(cublas::contiguous);
        let (rows, cols) = dims(&x);
        let [y, mean, rstd] = [vec![rows, cols], vec![rows], vec![rows]].map(|shape| empty(&x, shape));
        let scalars = [Arg::I32(cols as i32), Arg::F32(epsilon)];
        let grid = (rows as u32, 1, 1);
        let block = (kernels::BLOCK_THREADS, 1, 1);
        let Some(residual) = residual else {
            let buffers = [&x, &gamma, &beta, &y, &mean, &rstd].map(binding).to_vec();
            let args = args(&[0, 1, 2, 3, 4, 5], scalars);
            kernels::submit(x.device.index, buffers, vec![Launch { kernel: "layer_norm_forward", grid, block, args }]);
            return NormForward { output: y, mean, rstd, sum: None };
        };
        // The sum is written whether or not it is kept: one launch either way.
        let (residual, sum) = (cublas::contiguous(residual), empty(&x, vec![rows, cols]));
        let buffers = [&x, &residual, &gamma, &beta, &y, &sum, &mean, &rstd].map(binding).to_vec();
        let args = args(&[0, 1, 2, 3, 4, 5, 6, 7], scalars);
        kernels::submit(x.device.index, buffers, vec![Launch { kernel: "add_layer_norm_forward", grid, block, args }]);
        NormForward { output: y, mean, rstd, sum: save.then_some(sum) }
    }

    fn layer_norm_backward(
        g: CubeTensor<CudaRuntime>,
        x: CubeTensor<CudaRuntime>,
        gamma: CubeTensor<CudaRuntime>,
        mean: CubeTensor<CudaRuntime>,
        rstd: CubeTensor<CudaRuntime>,
    ) -> [CubeTensor<CudaRuntime>; 3] {
        let [g, x, gamma, mean, rstd] = [g, x, gamma, mean, rstd].map(cublas::contiguous);
        let (rows, cols) = dims(&x);
        // The column sums run over `chunks` slices of rows (stage 1), then over the slices (stage 2).
        let (chunks, rows_per_chunk) = kernels::row_chunks(rows);
        let [dx, dgamma, dbeta, partial] =
            [vec![rows, cols], vec![cols], vec![cols], vec![2 * chunks * cols]].map(|shape| empty(&x, shape));
        let buffers = [&g, &x, &gamma, &mean, &rstd, &dx, &dgamma, &dbeta, &partial].map(binding).to_vec();
        let launches = vec![
            Launch {
                kernel: "layer_norm_backward_input",
                grid: (rows as u32, 1, 1),
                block: (kernels::BLOCK_THREADS, 1, 1),
                args: args(&[0, 1, 2, 3, 4, 5], [Arg::I32(cols as i32)]),
            },
            Launch {
                kernel: "layer_norm_backward_partial",
                grid: (cols.div_ceil(32) as u32, chunks as u32, 1),
                block: (32, 8, 1),
                args: args(
                    &[0, 1, 3, 4, 8],
                    [Arg::I32(rows as i32), Arg::I32(cols as i32), Arg::I32(rows_per_chunk as i32)],
                ),
            },
            Launch {
                kernel: "layer_norm_backward_params",
                grid: (cols.div_ceil(256) as u32, 1, 1),
                block: (256, 1, 1),
                args: args(&[8, 6, 7], [Arg::I32(cols as i32), Arg::I32(chunks as i32)]),
            },
        ];
        kernels::submit(x.device.index, buffers, launches);
        [dx, dgamma, dbeta]
    }
}

/// `[rows, cols]` of a 2-D input.
fn dims(x: &CubeTensor<CudaRuntime>) -> (usize, usize) {
    let shape = x.meta.shape();
    (shape[0], shape[1])
}

/// A new contiguous f32 tensor on `like`'s device.
fn empty(like: &CubeTensor<CudaRuntime>, shape: Vec<usize>) -> CubeTensor<CudaRuntime> {
    empty_device_contiguous_dtype(like.client.clone(), like.device.clone(), shape.into(), DType::F32)
}

/// A tensor's buffer and the bytes the kernels address in it.
fn binding(t: &CubeTensor<CudaRuntime>) -> (burn_cubecl::cubecl::server::Binding, usize) {
    (t.handle.clone().binding(), t.meta.shape().num_elements() * std::mem::size_of::<f32>())
}

#[cfg(feature = "fusion")]
impl<B: burn_fusion::FusionBackend + LayerNormKernels> LayerNormKernels for burn_fusion::Fusion<B> {
    fn layer_norm_forward(
        x: FloatTensor<Self>,
        residual: Option<FloatTensor<Self>>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f32,
        save: bool,
    ) -> NormForward<FloatTensor<Self>> {
        let rows = x.shape[0];
        let Some(residual) = residual else {
            let shapes = [x.shape.clone(), Shape::new([rows]), Shape::new([rows])];
            let [output, mean, rstd] = crate::fusion::register::<B, 3, 3>(
                "prunelab_layer_norm_forward",
                [x, gamma, beta],
                shapes,
                move |[x, gamma, beta]| {
                    let out = B::layer_norm_forward(x, None, gamma, beta, epsilon, false);
                    [out.output, out.mean, out.rstd]
                },
            );
            return NormForward { output, mean, rstd, sum: None };
        };
        let shapes = [x.shape.clone(), Shape::new([rows]), Shape::new([rows]), x.shape.clone()];
        let [output, mean, rstd, sum] = crate::fusion::register::<B, 4, 4>(
            "prunelab_add_layer_norm_forward",
            [x, residual, gamma, beta],
            shapes,
            move |[x, residual, gamma, beta]| {
                let out = B::layer_norm_forward(x, Some(residual), gamma, beta, epsilon, true);
                [out.output, out.mean, out.rstd, out.sum.expect("the sum, asked for")]
            },
        );
        NormForward { output, mean, rstd, sum: save.then_some(sum) }
    }

    fn layer_norm_backward(
        g: FloatTensor<Self>,
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 3] {
        let shapes = [x.shape.clone(), gamma.shape.clone(), gamma.shape.clone()];
        crate::fusion::register::<B, 5, 3>(
            "prunelab_layer_norm_backward",
            [g, x, gamma, mean, rstd],
            shapes,
            |[g, x, gamma, mean, rstd]| B::layer_norm_backward(g, x, gamma, mean, rstd),
        )
    }
}

/// Compile the kernels and hand LayerNorms on `burn::backend::Cuda` (plain or fused, and its
/// `Autodiff`) to them, after checking them against Burn's norm on `device`. Needs CubeCL's
/// stream (learnt here if not yet) and libnvrtc; without either, or when the check differs,
/// nothing is installed and the error says why.
pub fn install_norms(device: &Device<Cuda>) -> Result<(), CublasError> {
    kernels::install_hook(device, set_norm_kernel, kernel, check)?;
    tracing::info!("LayerNorm as prunelab's CUDA kernels on CubeCL's stream");
    Ok(())
}

/// The kernel handed to `set_norm_kernel`: takes non-empty 2-D f32 norms of `Cuda` and
/// `Autodiff<Cuda>` whose scale and shift have the input's width.
fn kernel(call: &mut dyn Any) {
    if let Some(call) = call.downcast_mut::<NormCall<FloatTensor<Autodiff<Cuda>>>>() {
        take_if_fits(call, |args| {
            prunelab_gemm::autodiff::layer_norm::<Cuda, NoCheckpointing>(
                args,
                Cuda::layer_norm_forward,
                Cuda::layer_norm_backward,
            )
        });
    } else if let Some(call) = call.downcast_mut::<NormCall<FloatTensor<Cuda>>>() {
        take_if_fits(call, |args| {
            Cuda::layer_norm_forward(args.input, args.residual, args.gamma, args.beta, args.epsilon as f32, false)
                .output
        });
    }
}

fn take_if_fits<P: TensorMetadata>(call: &mut NormCall<P>, run: impl FnOnce(NormArgs<P>) -> P) {
    let Some(args) = call.args.take() else { return };
    let shape = args.input.shape();
    let fits = shape.num_dims() == 2
        && shape.num_elements() > 0
        && shape[0] <= i32::MAX as usize
        && args.residual.as_ref().is_none_or(|r| r.dtype() == DType::F32 && r.shape() == shape)
        && [&args.input, &args.gamma, &args.beta].iter().all(|t| t.dtype() == DType::F32)
        && [&args.gamma, &args.beta].iter().all(|t| t.shape().dims::<1>() == [shape[1]]);
    if fits {
        call.output = Some(run(args));
    } else {
        call.args = Some(args);
    }
}

/// The installed norm against Burn's on random inputs of a few widths, alone and of an input
/// plus a residual (`norm.forward(x + r)`): outputs and all gradients within 1e-4 of the largest
/// magnitude.
fn check(device: &Device<Cuda>) -> Result<(), CublasError> {
    type A = Autodiff<Cuda>;
    const TOLERANCE: f64 = 1e-4;
    let cases = [(67, 768, false), (5, 1000, false), (130, 37, false), (67, 768, true), (130, 37, true)];
    for (rows, cols, with_residual) in cases {
        let normal = Distribution::Normal(0.5, 2.0);
        let x = Tensor::<A, 3>::random([1, rows, cols], normal, device);
        let r = Tensor::<A, 3>::random([1, rows, cols], normal, device);
        let upstream = Tensor::<A, 3>::random([1, rows, cols], normal, device);
        let mut norm = LayerNormConfig::new(cols).with_epsilon(1e-5).init::<A>(device);
        norm.gamma = norm.gamma.map(|_| Tensor::random([cols], normal, device).require_grad());
        norm.beta = norm.beta.map(|b| b.map(|_| Tensor::random([cols], normal, device).require_grad()));
        let run = |ours: bool| {
            let (x, r) = (x.clone().require_grad(), r.clone().require_grad());
            let y = match (ours, with_residual) {
                (true, true) => add_layer_norm(&norm, x.clone(), r.clone()),
                (true, false) => layer_norm(&norm, x.clone()),
                (false, true) => norm.forward(x.clone() + r.clone()),
                (false, false) => norm.forward(x.clone()),
            };
            let grads = (y.clone() * upstream.clone()).sum().backward();
            let beta = norm.beta.as_ref().expect("a shift").val();
            let grad = |t: Tensor<A, 1>| t.grad(&grads).expect("a gradient").into_data();
            let dx = x.grad(&grads).expect("a gradient").into_data();
            let dr = r.grad(&grads).map_or_else(|| dx.clone(), |dr| dr.into_data());
            [y.inner().into_data(), dx, dr, grad(norm.gamma.val()), grad(beta)]
        };
        let (ours, burn) = (run(true), run(false));
        for ((what, a), b) in ["output", "d x", "d residual", "d gamma", "d beta"].into_iter().zip(ours).zip(burn) {
            let (a, b) = (a.to_vec::<f32>().unwrap_or_default(), b.to_vec::<f32>().unwrap_or_default());
            let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE) as f64;
            let error = a.iter().zip(&b).fold(0f32, |m, (p, q)| m.max((p - q).abs())) as f64 / scale;
            if a.len() != b.len() || a.is_empty() || error.is_nan() || error > TOLERANCE {
                return Err(CublasError::Unavailable(format!(
                    "the LayerNorm kernels' {what} differs from Burn's by {error:.2e} (relative, [{rows}, {cols}], \
                     residual: {with_residual}), more than {TOLERANCE:.0e}"
                )));
            }
        }
    }
    Ok(())
}
