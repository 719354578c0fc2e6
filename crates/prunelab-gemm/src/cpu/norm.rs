//! LayerNorm on Burn's CPU backend (`prunelab_models::layers::norm`): the forward one pass over
//! each row, the backward one pass over each row that also sums the scale's and shift's
//! gradients, split over the cores and deterministic whatever the number of threads.
//!
//! Burn 0.21 runs LayerNorm as its decomposed ops — two means, a subtraction, a square, a square
//! root, a division, a product and a sum, each a single-threaded pass into a fresh buffer — and
//! its autodiff takes them apart again op by op. Here:
//! - each row's statistics and output are computed by one thread, its sums in eight interleaved
//!   lanes (a fixed order the compiler vectorises); a residual is added to the row in the same
//!   pass (kept as the backward's input when a backward will run);
//! - the scale's and shift's gradients are summed over fixed blocks of [`CHUNK`] rows, then over
//!   the blocks in order, so that the thread count changes which thread sums a block, not the sum;
//! - on `Autodiff<NdArray>` the norm is one tracked operation (`crate::autodiff::layer_norm`,
//!   shared with the CUDA kernels).
//!
//! The outputs are within a few ulps of Burn's (the variance and the normalisation are the same
//! formulas, `(x − mean) · rstd` multiplying by the reciprocal where Burn divides).

use std::any::Any;
use std::mem::MaybeUninit;
use std::ops::Range;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, TensorMetadata};
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_ndarray::NdArrayTensor;
use ndarray::{ArcArray, ArrayD, IxDyn};
use prunelab_models::layers::norm::{NormArgs, NormCall, set_norm_kernel};

use super::pool::split;
use super::{PARALLEL_MIN_ELEMENTS, assume_init, math, threads, uninit};
use crate::autodiff::NormForward;

/// Rows per block of the scale's and shift's gradient sums (a constant: the sums' order).
const CHUNK: usize = 32;

/// Route LayerNorms of prunelab's models on `NdArray` (and `Autodiff<NdArray>`) through these
/// kernels.
pub fn install() {
    set_norm_kernel(Some(kernel));
    tracing::info!(threads = threads(), "LayerNorm in one pass a row over the CPU's cores");
}

fn kernel(call: &mut dyn Any) {
    if let Some(call) = call.downcast_mut::<NormCall<FloatTensor<Autodiff<NdArray>>>>() {
        take_if_fits(call, |args| crate::autodiff::layer_norm::<NdArray, NoCheckpointing>(args, forward, backward));
    } else if let Some(call) = call.downcast_mut::<NormCall<NdArrayTensor>>() {
        take_if_fits(call, |args| {
            forward(args.input, args.residual, args.gamma, args.beta, args.epsilon as f32, false).output
        });
    }
}

/// Runs `run` on the call's norm when its input (and residual) is a non-empty 2-D f32 tensor and
/// its scale and shift are f32 vectors of the input's width.
fn take_if_fits<P: TensorMetadata>(call: &mut NormCall<P>, run: impl FnOnce(NormArgs<P>) -> P) {
    let Some(args) = call.args.take() else { return };
    let shape = args.input.shape();
    let fits = shape.num_dims() == 2
        && shape.num_elements() > 0
        && args.residual.as_ref().is_none_or(|r| r.dtype() == DType::F32 && r.shape() == shape)
        && [&args.input, &args.gamma, &args.beta].iter().all(|t| t.dtype() == DType::F32)
        && [&args.gamma, &args.beta].iter().all(|t| t.shape().num_dims() == 1 && t.shape()[0] == shape[1]);
    if fits {
        call.output = Some(run(args));
    } else {
        call.args = Some(args);
    }
}

/// The norm of `x` (plus `residual`) and each row's mean and rstd, with the sum when `save` and
/// there is a residual (see `crate::autodiff::NormForwardFn`), on [`threads`] threads.
fn forward(
    x: NdArrayTensor,
    residual: Option<NdArrayTensor>,
    gamma: NdArrayTensor,
    beta: NdArrayTensor,
    epsilon: f32,
    save: bool,
) -> NormForward<NdArrayTensor> {
    let (x, residual, gamma, beta) = (values(x), residual.map(values), values(gamma), values(beta));
    let (x, gamma, beta) = (slice(&x), slice(&gamma), slice(&beta));
    let residual = residual.as_ref().map(slice);
    let cols = gamma.len();
    let rows = x.len() / cols;
    let input = Rows { x, residual, keep_sum: save && residual.is_some() };
    let out = forward_rows(input, gamma, beta, epsilon, threads_for(x.len()));
    NormForward {
        output: tensor(out.y, &[rows, cols]),
        mean: tensor(out.mean, &[rows]),
        rstd: tensor(out.rstd, &[rows]),
        sum: out.sum.map(|sum| tensor(sum, &[rows, cols])),
    }
}

/// The forward's input: `x`, plus `residual` where there is one (row-major, as `x`), the sum
/// kept for the backward when `keep_sum`.
#[derive(Clone, Copy)]
struct Rows<'a> {
    x: &'a [f32],
    residual: Option<&'a [f32]>,
    keep_sum: bool,
}

impl<'a> Rows<'a> {
    /// The norm's input row at `at`: `x`'s own, or its sum with the residual, written into `kept`
    /// (the sum the backward reads) where given, else into `scratch` (`at.len()` values).
    fn row<'r>(&self, at: Range<usize>, kept: Option<&'r mut [MaybeUninit<f32>]>, scratch: &'r mut [f32]) -> &'r [f32]
    where
        'a: 'r,
    {
        let Some(residual) = self.residual else { return &self.x[at] };
        let pairs = self.x[at.clone()].iter().zip(&residual[at]);
        match kept {
            Some(sum) => {
                sum.iter_mut().zip(pairs).for_each(|(s, (a, b))| _ = s.write(a + b));
                // SAFETY: every element of `sum` was written just above.
                #[allow(unsafe_code)]
                unsafe {
                    std::slice::from_raw_parts(sum.as_ptr().cast::<f32>(), sum.len())
                }
            }
            None => {
                scratch.iter_mut().zip(pairs).for_each(|(s, (a, b))| *s = a + b);
                scratch
            }
        }
    }
}

/// The forward's results.
struct Forward {
    y: Vec<f32>,
    mean: Vec<f32>,
    rstd: Vec<f32>,
    sum: Option<Vec<f32>>,
}

/// The forward on slices, `gamma.len()` columns. A residual is added element by element as
/// Burn's add does it, so that the norm of the sum is the norm of Burn's sum, bit for bit.
fn forward_rows(input: Rows<'_>, gamma: &[f32], beta: &[f32], epsilon: f32, threads: usize) -> Forward {
    let cols = gamma.len();
    let rows = input.x.len() / cols;
    let (mut y, mut mean, mut rstd) = (uninit(rows * cols), uninit(rows), uninit(rows));
    let mut sum = input.keep_sum.then(|| uninit(rows * cols));
    let block = rows.div_ceil(threads.clamp(1, rows));
    let sums = sum.as_mut().map(|s| s.chunks_mut(block * cols));
    let sums = sums.into_iter().flatten().map(Some).chain(std::iter::repeat_with(|| None));
    let parts = y.chunks_mut(block * cols).zip(mean.chunks_mut(block).zip(rstd.chunks_mut(block))).zip(sums);
    split(parts.enumerate(), |(i, ((y, (mean, rstd)), mut sums))| {
        let first = i * block;
        // Where the sum is not kept, each row's sum is made here.
        let mut scratch = if input.residual.is_some() && sums.is_none() { vec![0f32; cols] } else { Vec::new() };
        for (r, y) in y.chunks_mut(cols).enumerate() {
            let at = (first + r) * cols..(first + r + 1) * cols;
            let kept = sums.as_deref_mut().map(|sums| &mut sums[r * cols..(r + 1) * cols]);
            let row = input.row(at, kept, &mut scratch);
            let m = math::lanes_sum(cols, |c| row[c]) / cols as f32;
            let var = math::lanes_sum(cols, |c| (row[c] - m) * (row[c] - m)) / cols as f32;
            let s = 1.0 / (var + epsilon).sqrt();
            for c in 0..cols {
                y[c].write((row[c] - m) * s * gamma[c] + beta[c]);
            }
            mean[r].write(m);
            rstd[r].write(s);
        }
    });
    // SAFETY: the blocks cover the outputs, and each block wrote every element of its part.
    #[allow(unsafe_code)]
    unsafe {
        Forward {
            y: assume_init(y),
            mean: assume_init(mean),
            rstd: assume_init(rstd),
            sum: sum.map(|s| assume_init(s)),
        }
    }
}

/// `[d x, d gamma, d beta]` (see `crate::autodiff::NormBackwardFn`), on [`threads`] threads.
fn backward(
    g: NdArrayTensor,
    x: NdArrayTensor,
    gamma: NdArrayTensor,
    mean: NdArrayTensor,
    rstd: NdArrayTensor,
) -> [NdArrayTensor; 3] {
    let arrays = [g, x, gamma, mean, rstd].map(values);
    let [g, x, gamma, mean, rstd] = arrays.each_ref().map(slice);
    let cols = gamma.len();
    let (dx, dgamma, dbeta) = backward_rows(g, x, gamma, mean, rstd, threads_for(x.len()));
    [tensor(dx, &[x.len() / cols, cols]), tensor(dgamma, &[cols]), tensor(dbeta, &[cols])]
}

/// The backward on slices: with `xhat = (x − mean) · rstd` and `d = g · gamma`, each row's
/// `d x = rstd · (d − mean(d) − xhat · mean(d · xhat))`, `d gamma = Σ g · xhat` and
/// `d beta = Σ g` over the rows, summed per [`CHUNK`] rows and then over the chunks in order.
fn backward_rows(
    g: &[f32],
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    rstd: &[f32],
    threads: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let cols = gamma.len();
    let rows = x.len() / cols;
    let chunks = rows.div_ceil(CHUNK);
    let mut dx = uninit(rows * cols);
    // Per chunk: its d gamma sums, then its d beta sums.
    let mut partial = vec![0.0f32; chunks * 2 * cols];
    let block = chunks.div_ceil(threads.clamp(1, chunks));
    let parts = dx.chunks_mut(block * CHUNK * cols).zip(partial.chunks_mut(block * 2 * cols));
    split(parts.enumerate(), |(i, (dx, partial))| {
        let first = i * block * CHUNK;
        for (k, (dx, sums)) in dx.chunks_mut(CHUNK * cols).zip(partial.chunks_mut(2 * cols)).enumerate() {
            let (dgamma, dbeta) = sums.split_at_mut(cols);
            for (r, dx) in dx.chunks_mut(cols).enumerate() {
                let row = first + k * CHUNK + r;
                let (g, x) = (&g[row * cols..(row + 1) * cols], &x[row * cols..(row + 1) * cols]);
                let (m, s) = (mean[row], rstd[row]);
                let a = math::lanes_sum(cols, |c| g[c] * gamma[c]) / cols as f32;
                let b = math::lanes_sum(cols, |c| g[c] * gamma[c] * ((x[c] - m) * s)) / cols as f32;
                for c in 0..cols {
                    let xhat = (x[c] - m) * s;
                    dx[c].write(s * (g[c] * gamma[c] - a - xhat * b));
                    dgamma[c] += g[c] * xhat;
                    dbeta[c] += g[c];
                }
            }
        }
    });
    let mut dgamma = vec![0.0f32; cols];
    let mut dbeta = vec![0.0f32; cols];
    for sums in partial.chunks(2 * cols) {
        for c in 0..cols {
            dgamma[c] += sums[c];
            dbeta[c] += sums[cols + c];
        }
    }
    // SAFETY: the blocks cover `dx`, and each block wrote every element of its part.
    #[allow(unsafe_code)]
    let dx = unsafe { assume_init(dx) };
    (dx, dgamma, dbeta)
}

/// Threads for a norm of `elements` elements.
fn threads_for(elements: usize) -> usize {
    if elements < PARALLEL_MIN_ELEMENTS { 1 } else { threads() }
}

/// An f32 primitive in row-major layout (shared, copied only when laid out otherwise); its
/// elements are `.as_slice()`.
fn values(tensor: NdArrayTensor) -> ArcArray<f32, IxDyn> {
    let NdArrayTensor::F32(storage) = tensor else { unreachable!("the kernel takes f32 tensors only") };
    let array = storage.into_shared();
    if array.is_standard_layout() { array } else { array.as_standard_layout().into_owned().into_shared() }
}

/// A row-major array's elements.
fn slice(array: &ArcArray<f32, IxDyn>) -> &[f32] {
    array.as_slice().expect("`values` returns row-major arrays")
}

/// A new primitive of `shape` holding `values`.
fn tensor(values: Vec<f32>, shape: &[usize]) -> NdArrayTensor {
    let array = ArrayD::from_shape_vec(IxDyn(shape), values).expect("the shape's number of elements");
    NdArrayTensor::from(array.into_shared())
}

#[cfg(test)]
mod tests {
    use burn::nn::LayerNormConfig;
    use burn::prelude::*;
    use burn::tensor::{Distribution, TensorPrimitive};

    use super::*;

    type A = Autodiff<NdArray>;

    fn primitive<const D: usize>(t: Tensor<A, D>) -> FloatTensor<A> {
        match t.into_primitive() {
            TensorPrimitive::Float(p) => p,
            TensorPrimitive::QFloat(_) => unreachable!("float tensors"),
        }
    }

    /// The largest difference relative to the largest magnitude of `want`.
    fn error(got: Tensor<NdArray, 1>, want: Tensor<NdArray, 1>) -> f32 {
        let scale = want.clone().abs().max().into_scalar().max(f32::MIN_POSITIVE);
        (got - want).abs().max().into_scalar() / scale
    }

    /// The norm alone, and of an input plus a residual, against Burn's (`norm.forward(x + r)`):
    /// the output and the gradients of the input, the residual, the scale and the shift.
    #[test]
    fn norm_and_its_gradients_match_burns() {
        let device = Default::default();
        let normal = Distribution::Normal(0.5, 2.0);
        // 70 rows: three chunks, the last one short; 37 columns: lanes with a remainder.
        for ((rows, cols), with_residual) in [((70, 37), false), ((4, 384), false), ((70, 37), true), ((9, 384), true)]
        {
            let mut norm = LayerNormConfig::new(cols).with_epsilon(1e-12).init::<A>(&device);
            norm.gamma = norm.gamma.map(|_| Tensor::random([cols], normal, &device).require_grad());
            norm.beta = norm.beta.map(|b| b.map(|_| Tensor::random([cols], normal, &device).require_grad()));
            let x = Tensor::<A, 2>::random([rows, cols], normal, &device);
            let r = Tensor::<A, 2>::random([rows, cols], normal, &device);
            let upstream = Tensor::<A, 2>::random([rows, cols], normal, &device);
            let run = |ours: bool| {
                let (x, r) = (x.clone().require_grad(), r.clone().require_grad());
                let y = if ours {
                    let beta = norm.beta.as_ref().expect("a shift").val();
                    let args = NormArgs {
                        input: primitive(x.clone()),
                        residual: with_residual.then(|| primitive(r.clone())),
                        gamma: primitive(norm.gamma.val()),
                        beta: primitive(beta),
                        epsilon: 1e-12,
                    };
                    let out = crate::autodiff::layer_norm::<NdArray, NoCheckpointing>(args, forward, backward);
                    Tensor::<A, 2>::from_primitive(TensorPrimitive::Float(out))
                } else if with_residual {
                    norm.forward(x.clone() + r.clone())
                } else {
                    norm.forward(x.clone())
                };
                let grads = (y.clone() * upstream.clone()).sum().backward();
                let grad = |t: Tensor<A, 1>| t.grad(&grads).expect("a gradient");
                let beta = norm.beta.as_ref().expect("a shift").val();
                let dx = x.grad(&grads).expect("a gradient").reshape([rows * cols]);
                let dr = r.grad(&grads).map_or_else(|| dx.clone(), |dr| dr.reshape([rows * cols]));
                (y.inner().reshape([rows * cols]), dx, dr, grad(norm.gamma.val()), grad(beta))
            };
            let (ours, burn) = (run(true), run(false));
            for (what, got, want) in [
                ("output", ours.0, burn.0),
                ("d x", ours.1, burn.1),
                ("d residual", ours.2, burn.2),
                ("d gamma", ours.3, burn.3),
                ("d beta", ours.4, burn.4),
            ] {
                let e = error(got, want);
                assert!(
                    e < 1e-5,
                    "{what} of a [{rows}, {cols}] norm (residual: {with_residual}) differs from Burn's by {e:e}"
                );
            }
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let values = |n: usize, seed: u32| -> Vec<f32> {
            (0..n)
                .map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 1000) as f32 / 250.0 - 2.0)
                .collect()
        };
        let (rows, cols) = (101, 45);
        let (x, g) = (values(rows * cols, 1), values(rows * cols, 2));
        let (gamma, beta) = (values(cols, 3), values(cols, 4));
        let bits = |v: &Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        fn alone(x: &[f32]) -> Rows<'_> {
            Rows { x, residual: None, keep_sum: false }
        }
        let one = forward_rows(alone(&x), &gamma, &beta, 1e-5, 1);
        let back_one = backward_rows(&g, &x, &gamma, &one.mean, &one.rstd, 1);
        for threads in [2, 3, 7] {
            let many = forward_rows(alone(&x), &gamma, &beta, 1e-5, threads);
            let back = backward_rows(&g, &x, &gamma, &many.mean, &many.rstd, threads);
            assert_eq!(
                (bits(&many.y), bits(&many.mean), bits(&many.rstd)),
                (bits(&one.y), bits(&one.mean), bits(&one.rstd))
            );
            assert_eq!(
                (bits(&back.0), bits(&back.1), bits(&back.2)),
                (bits(&back_one.0), bits(&back_one.1), bits(&back_one.2))
            );
        }
        // With a residual, kept or not: the norm of the sum, bit for bit, on any thread count.
        let (input, residual) = (values(rows * cols, 5), values(rows * cols, 6));
        let summed: Vec<f32> = input.iter().zip(&residual).map(|(a, b)| a + b).collect();
        let want = forward_rows(alone(&summed), &gamma, &beta, 1e-5, 1);
        for (threads, keep_sum) in [(1, true), (3, true), (1, false), (7, false)] {
            let rows = Rows { x: &input, residual: Some(&residual), keep_sum };
            let got = forward_rows(rows, &gamma, &beta, 1e-5, threads);
            assert_eq!(
                (bits(&got.y), bits(&got.mean), bits(&got.rstd)),
                (bits(&want.y), bits(&want.mean), bits(&want.rstd))
            );
            assert_eq!(got.sum.as_ref().map(bits), keep_sum.then(|| bits(&summed)));
        }
    }
}
