//! The projections' products on Burn's CPU backend (`ndarray`), over every core and still
//! deterministic.
//!
//! Burn 0.21's `ndarray` backend multiplies a 2-D product on one thread (it parallelises over
//! batch matrices only, and the projections are one `[tokens, d_in]` matrix each), and its
//! optional threads (rayon, threaded matrixmultiply) make two runs of one seed differ in their
//! last digits (`bench/NOTES.md`). Here the output's rows are split into one block per thread and
//! each block is computed by the same single-threaded kernel Burn calls (ndarray's
//! `general_mat_mul`, i.e. matrixmultiply): every output element is the same sum in the same
//! order as in Burn's product, so the result equals Burn's bit for bit, whatever the number of
//! threads.

use std::any::Any;
use std::num::NonZeroUsize;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::ops::FloatTensor;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_ndarray::NdArrayTensor;
use ndarray::{Array2, ArrayView2, Axis, Ix2, linalg::general_mat_mul};
use prunelab_models::layers::{ProductCall, set_product_kernel};

use crate::take_if_f32_matrices;

/// The variable that sets the number of threads (default: the cores this process may use).
pub const THREADS_VARIABLE: &str = "PRUNELAB_CPU_THREADS";

/// Products smaller than this (multiply-adds) stay on one thread: a thread costs more.
const PARALLEL_MIN_WORK: usize = 1 << 20;

/// Route every f32 projection product of prunelab's models on `NdArray` (and `Autodiff<NdArray>`)
/// through [`gemm`]; returns the number of threads it uses.
pub fn install() -> usize {
    set_product_kernel(Some(kernel));
    let threads = threads();
    tracing::info!(threads, "projection products over the CPU's cores");
    threads
}

/// Threads per product: [`THREADS_VARIABLE`], else the available parallelism; read once per
/// process (it is asked for on every product, and the available parallelism reads cgroup files).
pub fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::env::var(THREADS_VARIABLE)
            .ok()
            .and_then(|v| v.parse::<NonZeroUsize>().ok())
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get)
    })
}

fn kernel(call: &mut dyn Any) {
    if let Some(call) = call.downcast_mut::<ProductCall<FloatTensor<Autodiff<NdArray>>>>() {
        take_if_f32_matrices(call, |a, b| crate::autodiff::product::<NdArray, NoCheckpointing>(a, b, primitive_gemm));
    } else if let Some(call) = call.downcast_mut::<ProductCall<FloatTensor<NdArray>>>() {
        take_if_f32_matrices(call, |a, b| primitive_gemm(a, false, b, false));
    }
}

/// [`gemm`] on the backend's primitives (a [`crate::autodiff::GemmFn`]).
pub fn primitive_gemm(a: NdArrayTensor, transpose_a: bool, b: NdArrayTensor, transpose_b: bool) -> NdArrayTensor {
    let (a, b) = (matrix(a), matrix(b));
    let a = if transpose_a { a.view().reversed_axes() } else { a.view() };
    let b = if transpose_b { b.view().reversed_axes() } else { b.view() };
    NdArrayTensor::from(gemm(a, b, threads()).into_dyn().into_shared())
}

/// `a · b`, its rows split over `threads` threads (bit for bit the single-threaded product).
pub fn gemm(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>, threads: usize) -> Array2<f32> {
    let (m, n) = (a.nrows(), b.ncols());
    let mut out = Array2::<f32>::zeros((m, n));
    let work = m * n * a.ncols();
    let threads = if work < PARALLEL_MIN_WORK { 1 } else { threads.clamp(1, m.max(1)) };
    if threads == 1 {
        general_mat_mul(1.0, &a, &b, 0.0, &mut out);
        return out;
    }
    // Blocks of whole 8-row panels (matrixmultiply's), the last one shorter.
    let rows = m.div_ceil(threads).div_ceil(8) * 8;
    std::thread::scope(|scope| {
        for (a_rows, mut out_rows) in a.axis_chunks_iter(Axis(0), rows).zip(out.axis_chunks_iter_mut(Axis(0), rows)) {
            let b = &b;
            scope.spawn(move || general_mat_mul(1.0, &a_rows, b, 0.0, &mut out_rows));
        }
    });
    out
}

/// A 2-D f32 primitive as an ndarray matrix (shared, not copied).
fn matrix(tensor: NdArrayTensor) -> ndarray::ArcArray<f32, Ix2> {
    match tensor {
        NdArrayTensor::F32(storage) => {
            storage.into_shared().into_dimensionality::<Ix2>().expect("the kernel takes 2-D operands only")
        }
        _ => unreachable!("the kernel takes f32 operands only"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::*;
    use burn::tensor::{Distribution, TensorPrimitive};

    type B = NdArray;

    fn random(shape: [usize; 2], seed: u64) -> Tensor<B, 2> {
        B::seed(&Default::default(), seed);
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
    }

    fn ours(a: Tensor<B, 2>, ta: bool, b: Tensor<B, 2>, tb: bool) -> Vec<f32> {
        let (a, b) = (a.into_primitive().tensor(), b.into_primitive().tensor());
        let out = Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(primitive_gemm(a, ta, b, tb)));
        out.into_data().to_vec::<f32>().unwrap()
    }

    /// The three layouts of a projection (`x·W`, `g·Wᵀ`, `xᵀ·g`), large enough to be split over
    /// threads, equal Burn's matmul bit for bit — with 1, 2 and 3 threads.
    #[test]
    fn threaded_products_are_burns_bit_for_bit() {
        let (x, w, g) = (random([301, 96], 1), random([96, 77], 2), random([301, 77], 3));
        let cases = [
            (x.clone(), false, w.clone(), false, x.clone().matmul(w.clone())),
            (g.clone(), false, w.clone(), true, g.clone().matmul(w.clone().transpose())),
            (x.clone(), true, g.clone(), false, x.clone().transpose().matmul(g.clone())),
        ];
        for (i, (a, ta, b, tb, want)) in cases.into_iter().enumerate() {
            let want = want.into_data().to_vec::<f32>().unwrap();
            let (a, b) = (a.into_data(), b.into_data());
            let view = |d: &burn::tensor::TensorData, t: bool| {
                let shape = [d.shape[0], d.shape[1]];
                let m = Array2::from_shape_vec(shape, d.to_vec::<f32>().unwrap()).unwrap();
                if t { m.reversed_axes() } else { m }
            };
            for threads in [1, 2, 3] {
                let got = gemm(view(&a, ta).view(), view(&b, tb).view(), threads);
                assert!(got.iter().copied().eq(want.iter().copied()), "case {i}, {threads} threads");
            }
            let through_burn = ours(
                Tensor::from_data(a.clone(), &Default::default()),
                ta,
                Tensor::from_data(b.clone(), &Default::default()),
                tb,
            );
            assert_eq!(through_burn, want, "case {i} through the backend primitive");
        }
    }

    /// On `Autodiff<NdArray>` the kernel's gradients are Burn's.
    #[test]
    fn gradients_through_the_kernel_are_burns() {
        type A = Autodiff<NdArray>;
        let device = Default::default();
        let x = Tensor::<A, 2>::from_data(random([70, 40], 4).into_data(), &device).require_grad();
        let w = Tensor::<A, 2>::from_data(random([40, 30], 5).into_data(), &device).require_grad();
        let reference = x.clone().matmul(w.clone());
        let grads = (reference.clone() * reference).sum().backward();
        let (gx, gw) = (x.grad(&grads).unwrap(), w.grad(&grads).unwrap());
        let (lhs, rhs) = (x.clone().into_primitive().tensor(), w.clone().into_primitive().tensor());
        let product = crate::autodiff::product::<NdArray, NoCheckpointing>(lhs, rhs, primitive_gemm);
        let out = Tensor::<A, 2>::from_primitive(TensorPrimitive::Float(product));
        let grads = (out.clone() * out).sum().backward();
        assert_eq!(x.grad(&grads).unwrap().into_data(), gx.into_data());
        assert_eq!(w.grad(&grads).unwrap().into_data(), gw.into_data());
    }
}
