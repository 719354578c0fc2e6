//! Softmax, GELU and dropout on Burn's CPU backend (`prunelab_models::layers::fused`'s
//! operations): one pass each, forward and backward, split over the cores, and deterministic.
//!
//! Burn 0.21 runs them as chains of small ops on one core (GELU's gradient alone was 13 % of a
//! MiniLM training step, dropout's element-by-element ChaCha draws 7 %: `bench/NOTES.md`). Here:
//! - every row (softmax) or element (GELU, dropout) is computed by one thread in a fixed order,
//!   so the result does not depend on the number of threads;
//! - dropout draws its masks by the layers' rule (`fused::DropoutMask`: a counter-based hash of
//!   the element's index, the same on every backend) under a seed taken from Burn's seeded
//!   generator (so a run remains a function of its seed), and its backward pass recomputes the
//!   mask instead of keeping it;
//! - the functions are the branch-free approximations of [`math`] (within 6e-7 of f64), which
//!   the compiler vectorises — 16 lanes wide on CPUs with AVX-512, where each block of rows runs
//!   in a copy of its loop compiled for it (`block_of_rows`; the same bits as the 4-lane one).

use std::any::Any;
use std::mem::MaybeUninit;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::ops::{FloatTensor, FloatTensorOps};
use burn::tensor::{DType, Distribution, FloatDType, Shape, TensorMetadata};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn_ndarray::NdArrayTensor;
use ndarray::{ArcArray, Array2, Ix2};
use prunelab_models::layers::fused::{self, DropoutMask, FusedCall, FusedOp, set_fused_kernel};

use super::{math, standard, threads, write_rows};

/// Route softmax, GELU and dropout of prunelab's models on `NdArray` (and `Autodiff<NdArray>`)
/// through these kernels.
pub fn install() {
    set_fused_kernel(Some(kernel));
    tracing::info!(threads = threads(), "softmax, GELU and dropout fused over the CPU's cores");
}

fn kernel(call: &mut dyn Any) {
    if let Some(call) = call.downcast_mut::<FusedCall<FloatTensor<Autodiff<NdArray>>>>() {
        take_if_f32(call, tracked);
    } else if let Some(call) = call.downcast_mut::<FusedCall<NdArrayTensor>>() {
        take_if_f32(call, |op| forward(op).0);
    }
}

/// Runs `run` on the call's operation when its input is a non-empty 2-D f32 tensor.
fn take_if_f32<P: TensorMetadata>(call: &mut FusedCall<P>, run: impl FnOnce(FusedOp<P>) -> P) {
    let Some(op) = call.op.take() else { return };
    let input = op.input();
    if input.dtype() == DType::F32 && input.shape().num_dims() == 2 && input.shape().num_elements() > 0 {
        call.output = Some(run(op));
    } else {
        call.op = Some(op);
    }
}

type Matrix = ArcArray<f32, Ix2>;

/// What a backward pass needs of its forward one.
#[derive(Debug, Clone)]
enum Saved {
    /// Softmax's output.
    Softmax(Matrix),
    /// GELU's input.
    Gelu { input: Matrix, approximate: bool },
    /// The mask.
    Dropout(DropoutMask),
}

/// The operation on `Autodiff<NdArray>`: the forward pass, and a backward one when the input is
/// tracked.
fn tracked(op: FusedOp<FloatTensor<Autodiff<NdArray>>>) -> FloatTensor<Autodiff<NdArray>> {
    #[derive(Debug)]
    struct Fused;

    impl Backward<NdArray, 1> for Fused {
        type State = Saved;

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            let saved = ops.state;
            unary::<NdArray, _>(ops.parents, ops.node, grads, |grad| backward(&saved, grad));
        }
    }

    let node = op.input().node.clone();
    let (output, saved) = forward(op.map(|tensor| tensor.primitive));
    match Fused.prepare::<NoCheckpointing>([node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(saved, output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

/// The forward pass: the output, and what the backward pass needs.
fn forward(op: FusedOp<NdArrayTensor>) -> (NdArrayTensor, Saved) {
    match op {
        FusedOp::Softmax(input) => {
            let out = map_rows(&matrix(input), None, &(), SoftmaxForward);
            (tensor(out.clone()), Saved::Softmax(out))
        }
        FusedOp::Gelu { input, approximate } => {
            let input = matrix(input);
            // One loop per function, so that each is inlined and vectorised.
            let out = match approximate {
                false => map_rows(&input, None, &(), GeluForward),
                true => map_rows(&input, None, &(), GeluTanhForward),
            };
            (tensor(out), Saved::Gelu { input, approximate })
        }
        FusedOp::Dropout { input, prob } => {
            let input = matrix(input);
            let mask = DropoutMask::new(draw_seed(), prob);
            let out = map_rows(&input, None, &(mask, input.ncols()), Dropout);
            (tensor(out), Saved::Dropout(mask))
        }
    }
}

/// The backward pass: the input's gradient from the output's.
fn backward(saved: &Saved, grad: NdArrayTensor) -> NdArrayTensor {
    let grad = matrix(grad);
    let cols = grad.ncols();
    let out = match saved {
        Saved::Softmax(y) => map_rows(&grad, Some(y), &(), SoftmaxBackward),
        Saved::Gelu { input, approximate: false } => map_rows(&grad, Some(input), &(), GeluBackward),
        Saved::Gelu { input, approximate: true } => map_rows(&grad, Some(input), &(), GeluTanhBackward),
        Saved::Dropout(mask) => map_rows(&grad, None, &(*mask, cols), Dropout),
    };
    tensor(out)
}

/// One row's work for `map_rows`, as a type's function (not a closure, whose call goes through a
/// shim the inliner may keep) so that it is inlined, and vectorised, in both of
/// [`block_of_rows`]'s compilations.
trait Row {
    /// What the operation carries (the dropout's seed and rate; else nothing).
    type Context: Sync;

    /// The row `index`: its input row `x`, the second input's row `y` (or `x` again), its output.
    fn row(context: &Self::Context, index: usize, x: &[f32], y: &[f32], out: &mut [f32]);
}

struct SoftmaxForward;

impl Row for SoftmaxForward {
    type Context = ();

    #[inline(always)]
    fn row(_: &Self::Context, _: usize, x: &[f32], _: &[f32], out: &mut [f32]) {
        softmax_row(x, out);
    }
}

struct SoftmaxBackward;

impl Row for SoftmaxBackward {
    type Context = ();

    #[inline(always)]
    fn row(_: &Self::Context, _: usize, g: &[f32], y: &[f32], out: &mut [f32]) {
        let dot = math::lanes_sum(g.len(), |i| g[i] * y[i]);
        out.iter_mut().zip(g.iter().zip(y)).for_each(|(o, (&g, &y))| *o = y * (g - dot));
    }
}

struct GeluForward;

impl Row for GeluForward {
    type Context = ();

    #[inline(always)]
    fn row(_: &Self::Context, _: usize, x: &[f32], _: &[f32], out: &mut [f32]) {
        each(x, out, math::gelu);
    }
}

struct GeluTanhForward;

impl Row for GeluTanhForward {
    type Context = ();

    #[inline(always)]
    fn row(_: &Self::Context, _: usize, x: &[f32], _: &[f32], out: &mut [f32]) {
        each(x, out, math::gelu_tanh);
    }
}

struct GeluBackward;

impl Row for GeluBackward {
    type Context = ();

    #[inline(always)]
    fn row(_: &Self::Context, _: usize, g: &[f32], x: &[f32], out: &mut [f32]) {
        each_pair(g, x, out, |g, x| g * math::gelu_grad(x));
    }
}

struct GeluTanhBackward;

impl Row for GeluTanhBackward {
    type Context = ();

    #[inline(always)]
    fn row(_: &Self::Context, _: usize, g: &[f32], x: &[f32], out: &mut [f32]) {
        each_pair(g, x, out, |g, x| g * math::gelu_tanh_grad(x));
    }
}

/// Dropout forward and backward alike (the same mask): `(mask, columns)`.
struct Dropout;

impl Row for Dropout {
    type Context = (DropoutMask, usize);

    #[inline(always)]
    fn row(&(mask, cols): &Self::Context, row: usize, x: &[f32], _: &[f32], out: &mut [f32]) {
        let first = row * cols;
        for (offset, (o, &x)) in out.iter_mut().zip(x).enumerate() {
            *o = mask.apply((first + offset) as u64, x);
        }
    }
}

/// `out[i] = f(x[i])`.
#[inline(always)]
fn each(x: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32) {
    // Indexed loops here and below: an iterator adapter's `fold` may stay out of line, unvectorised.
    let out = &mut out[..x.len()];
    for i in 0..x.len() {
        out[i] = f(x[i]);
    }
}

/// `out[i] = f(a[i], b[i])`.
#[inline(always)]
fn each_pair(a: &[f32], b: &[f32], out: &mut [f32], f: impl Fn(f32, f32) -> f32) {
    let (out, b) = (&mut out[..a.len()], &b[..a.len()]);
    for i in 0..a.len() {
        out[i] = f(a[i], b[i]);
    }
}

/// A row's softmax (`out` the same length as `x`). Probabilities that would be subnormal are 0
/// (below 1.2e-38, they carry nothing, and every product that meets one is slow on x86).
#[inline(always)]
fn softmax_row(x: &[f32], out: &mut [f32]) {
    let max = math::lanes_max(x.len(), |i| x[i]);
    let out = &mut out[..x.len()];
    for i in 0..x.len() {
        out[i] = math::exp(x[i] - max);
    }
    let scale = 1.0 / math::lanes_sum(out.len(), |i| out[i]);
    for o in out.iter_mut() {
        let p = *o * scale;
        *o = if p < f32::MIN_POSITIVE { 0.0 } else { p };
    }
}

/// A seed for one dropout call, from Burn's seeded generator (four uniform draws' bits).
fn draw_seed() -> u64 {
    let draws = <NdArray as FloatTensorOps<NdArray>>::float_random(
        Shape::new([4]),
        Distribution::Default,
        &Default::default(),
        FloatDType::F32,
    );
    let NdArrayTensor::F32(draws) = draws else { unreachable!("drawn as f32") };
    let bits: Vec<u64> = draws.into_shared().iter().map(|v| u64::from(v.to_bits())).collect();
    fused::mask_hash((bits[0] << 32) | bits[1], (bits[2] << 32) | bits[3])
}

/// `R::row(context, index of the row, row of a, row of b, row of the output)` for every row of
/// `a` (and of `b`, the same shape, when given; else `a` again), the rows split into one block
/// per thread; each block's loop compiled for AVX-512 where the CPU has it ([`block_of_rows`]).
fn map_rows<R: Row>(a: &Matrix, b: Option<&Matrix>, context: &R::Context, _: R) -> Matrix {
    let (rows, cols) = a.dim();
    let a = standard(a);
    let b = b.map(standard);
    let b: &[f32] = b.as_deref().unwrap_or(&a);
    // Each thread zeroes its own rows before writing them: a `vec![0.0; n]` was one thread's
    // memset of the whole output while the other cores waited (`bench/NOTES.md`).
    let out = write_rows(rows, cols, |first_row, out| block_of_rows::<R>(context, first_row, &a, b, cols, zeroed(out)));
    Array2::from_shape_vec((rows, cols), out).expect("rows × cols elements").into_shared()
}

/// `out`, every element set to 0, as initialised values.
#[allow(unsafe_code)]
fn zeroed(out: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    out.fill(MaybeUninit::new(0.0));
    // SAFETY: `MaybeUninit<f32>` has `f32`'s layout, and every element was just written.
    unsafe { &mut *(std::ptr::from_mut(out) as *mut [f32]) }
}

/// The rows of `out` (from row `first_row` on) by `R`: on CPUs with AVX-512 a copy of this loop
/// compiled for it, into which `R::row` and the functions it calls are inlined, so that their loops
/// are vectorised 16 lanes wide instead of the 4 of the baseline x86-64 target the project builds
/// for; on CPUs with AVX2 and FMA (most laptops), a copy compiled for those, 8 lanes wide. The
/// arithmetic per element is the same (Rust contracts nothing into fused multiply-adds, and the
/// lane sums keep their eight lanes), so are the results.
#[allow(unsafe_code)]
fn block_of_rows<R: Row>(context: &R::Context, first_row: usize, a: &[f32], b: &[f32], cols: usize, out: &mut [f32]) {
    #[inline(always)]
    fn each_row<R: Row>(context: &R::Context, first_row: usize, a: &[f32], b: &[f32], cols: usize, out: &mut [f32]) {
        for (i, out) in out.chunks_mut(cols).enumerate() {
            let at = (first_row + i) * cols;
            R::row(context, first_row + i, &a[at..at + cols], &b[at..at + cols], out);
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        use super::isa::{Isa, isa};
        #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
        fn each_row_avx512<R: Row>(c: &R::Context, first: usize, a: &[f32], b: &[f32], cols: usize, out: &mut [f32]) {
            each_row::<R>(c, first, a, b, cols, out);
        }
        #[target_feature(enable = "avx2,fma")]
        fn each_row_avx2<R: Row>(c: &R::Context, first: usize, a: &[f32], b: &[f32], cols: usize, out: &mut [f32]) {
            each_row::<R>(c, first, a, b, cols, out);
        }
        // SAFETY (both calls): `isa` is the CPU's level or below it (`isa::detected`), so the
        // CPU has the target features of the copy it picks.
        match isa() {
            Isa::Avx512 => return unsafe { each_row_avx512::<R>(context, first_row, a, b, cols, out) },
            Isa::Avx2 => return unsafe { each_row_avx2::<R>(context, first_row, a, b, cols, out) },
            Isa::Baseline => {}
        }
    }
    each_row::<R>(context, first_row, a, b, cols, out);
}

/// A 2-D f32 primitive as an ndarray matrix (shared, not copied).
fn matrix(tensor: NdArrayTensor) -> Matrix {
    match tensor {
        NdArrayTensor::F32(storage) => {
            storage.into_shared().into_dimensionality::<Ix2>().expect("the kernel takes 2-D operands only")
        }
        _ => unreachable!("the kernel takes f32 operands only"),
    }
}

fn tensor(m: Matrix) -> NdArrayTensor {
    NdArrayTensor::from(m.into_dyn())
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;
    use burn::tensor::TensorPrimitive;

    use super::*;

    type A = Autodiff<NdArray>;
    type N = NdArray;

    fn random(shape: [usize; 2], seed: u64, scale: f32) -> Tensor<NdArray, 2> {
        let _turn = super::super::tests::RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        N::seed(&Default::default(), seed);
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default()) * scale
    }

    fn values<Bk: burn::tensor::backend::Backend>(t: Tensor<Bk, 2>) -> Vec<f32> {
        t.into_data().to_vec::<f32>().unwrap()
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    /// `op` through the kernel on `Autodiff<NdArray>`: the output and the input's gradient under
    /// the upstream gradient `upstream`.
    fn ours(
        x: &Tensor<NdArray, 2>,
        upstream: &Tensor<NdArray, 2>,
        op: fn(FloatTensor<A>) -> FusedOp<FloatTensor<A>>,
    ) -> (Vec<f32>, Vec<f32>) {
        let x = Tensor::<A, 2>::from_data(x.to_data(), &Default::default()).require_grad();
        let out =
            Tensor::<A, 2>::from_primitive(TensorPrimitive::Float(tracked(op(x.clone().into_primitive().tensor()))));
        let grads = (out.clone() * Tensor::from_data(upstream.to_data(), &Default::default())).sum().backward();
        (values(out), values(x.grad(&grads).unwrap()))
    }

    /// Burn's composed `f` on `Autodiff<NdArray>`, as [`ours`].
    fn burns(
        x: &Tensor<NdArray, 2>,
        upstream: &Tensor<NdArray, 2>,
        f: fn(Tensor<A, 2>) -> Tensor<A, 2>,
    ) -> (Vec<f32>, Vec<f32>) {
        let x = Tensor::<A, 2>::from_data(x.to_data(), &Default::default()).require_grad();
        let out = f(x.clone());
        let grads = (out.clone() * Tensor::from_data(upstream.to_data(), &Default::default())).sum().backward();
        (values(out), values(x.grad(&grads).unwrap()))
    }

    /// Softmax over rows with masked entries (transformers' f32::MIN), threaded (over 2¹⁵
    /// elements), against Burn's: output and gradient.
    #[test]
    fn softmax_and_its_gradient_are_burns() {
        let x = random([301, 160], 1, 3.0);
        let masked = Tensor::<NdArray, 2>::from_data(
            TensorData::new((0..301 * 160).map(|i| if i % 7 == 3 { f32::MIN } else { 0.0 }).collect(), [301, 160]),
            &Default::default(),
        );
        let x = x + masked;
        let upstream = random([301, 160], 2, 1.0);
        let (out, grad) = ours(&x, &upstream, FusedOp::Softmax);
        let (want, want_grad) = burns(&x, &upstream, |x| burn::tensor::activation::softmax(x, 1));
        assert!(max_diff(&out, &want) < 1e-6, "output {}", max_diff(&out, &want));
        assert!(max_diff(&grad, &want_grad) < 1e-6, "gradient {}", max_diff(&grad, &want_grad));
        assert!(out.iter().chain(&grad).all(|v| !v.is_subnormal()), "no subnormal probability or gradient");
    }

    /// Both GELUs and their gradients against Burn's ops composed exactly (Burn's own
    /// `gelu_backward` is the tanh approximation's gradient, also for the exact GELU). The tanh
    /// form's gradient differs by up to 1e-5 where `1 − tanh²` cancels (|x| > 5), in both.
    #[test]
    fn gelus_and_their_gradients_are_the_exact_ones() {
        let x = random([257, 130], 3, 3.0);
        let upstream = random([257, 130], 4, 1.0);
        let exact = |x: Tensor<A, 2>| x.clone() * ((x * std::f32::consts::FRAC_1_SQRT_2).erf() + 1.0) * 0.5;
        let (out, grad) = ours(&x, &upstream, |input| FusedOp::Gelu { input, approximate: false });
        let (want, want_grad) = burns(&x, &upstream, exact);
        assert!(max_diff(&out, &want) < 2e-6, "exact output {}", max_diff(&out, &want));
        assert!(max_diff(&grad, &want_grad) < 2e-6, "exact gradient {}", max_diff(&grad, &want_grad));
        let (out, grad) = ours(&x, &upstream, |input| FusedOp::Gelu { input, approximate: true });
        let (want, want_grad) = burns(&x, &upstream, burn::tensor::activation::gelu_approximate);
        assert!(max_diff(&out, &want) < 2e-6, "tanh output {}", max_diff(&out, &want));
        assert!(max_diff(&grad, &want_grad) < 1e-5, "tanh gradient {}", max_diff(&grad, &want_grad));
    }

    /// Dropout keeps about `1 − p` of the elements, scaled by `1 / (1 − p)`; its gradient passes
    /// exactly where the output kept; the mask of a threaded call is the layers' rule
    /// (`fused::dropout_keeps`, which the CUDA kernel draws by too); and reseeding Burn's
    /// generator repeats it.
    #[test]
    fn dropout_masks_are_seeded_thread_independent_and_held_by_the_gradient() {
        let (rows, cols) = (300, 200);
        let x = random([rows, cols], 5, 1.0).abs() + 0.5;
        let upstream = Tensor::<NdArray, 2>::ones([rows, cols], &Default::default());
        let op = |input| FusedOp::Dropout { input, prob: 0.1 };
        let _turn = super::super::tests::RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        N::seed(&Default::default(), 42);
        let (out, grad) = ours(&x, &upstream, op);
        N::seed(&Default::default(), 42);
        let (again, _) = ours(&x, &upstream, op);
        assert_eq!(out, again, "the same seed draws the same mask");
        let x = values(x);
        let kept = out.iter().filter(|v| **v != 0.0).count();
        assert!((53_400..54_600).contains(&kept), "kept {kept} of {}", rows * cols);
        for ((&o, &g), &x) in out.iter().zip(&grad).zip(&x) {
            if o == 0.0 {
                assert_eq!(g, 0.0);
            } else {
                assert_eq!(o, x * (1.0 / 0.9f64) as f32);
                assert_eq!(g, (1.0 / 0.9f64) as f32);
            }
        }
        N::seed(&Default::default(), 42);
        let seed = draw_seed();
        let mask = DropoutMask::new(seed, 0.1);
        let rule: Vec<f32> = x.iter().enumerate().map(|(i, &v)| mask.apply(i as u64, v)).collect();
        assert_eq!(out, rule, "the threaded call's mask is the layers' rule's, element by element (CUDA's too)");
    }

    /// A projection with its GELU applied as the product kernel stores it equals the product plus
    /// bias followed by the fused pass, bit for bit, both forms: shapes in both loop orders, with
    /// partial tiles, on 1 and 2 threads (without AVX-512, matrixmultiply's product, then both).
    #[test]
    fn products_ending_in_a_gelu_are_the_product_then_the_pass() {
        use super::super::{Act, activated_gemm, biased_gemm};
        for (m, k, n) in [(100, 384, 1536), (37, 300, 70), (9, 384, 33)] {
            let a = values(random([m, k], 11, 1.0));
            let b = values(random([k, n], 12, 0.1));
            let (a, b) = (Array2::from_shape_vec((m, k), a).unwrap(), Array2::from_shape_vec((k, n), b).unwrap());
            let bias = ndarray::Array1::from_iter((0..n).map(|j| j as f32 * 0.01 - 0.3));
            for (act, approximate) in [(Act::Gelu, false), (Act::GeluTanh, true)] {
                let plain = biased_gemm(a.view(), b.view(), Some(bias.view()), 2).into_shared();
                let (want, _) = forward(FusedOp::Gelu { input: tensor(plain), approximate });
                let want = matrix(want);
                for threads in [1, 2] {
                    let got = activated_gemm(a.view(), b.view(), Some(bias.view()), Some(act), threads);
                    assert!(
                        got.iter().zip(want.iter()).all(|(g, w)| g.to_bits() == w.to_bits()),
                        "[{m}, {k}, {n}], {act:?}, {threads} threads"
                    );
                }
            }
        }
    }

    /// Through `prunelab_models::layers` once installed: a 3-D softmax over its last axis and
    /// GELU on plain `NdArray` (evaluation) match Burn's.
    #[test]
    fn the_installed_kernel_serves_the_layers_functions() {
        let x = Tensor::<NdArray, 3>::random([4, 50, 300], Distribution::Normal(0.0, 2.0), &Default::default());
        install();
        let (softmax, gelu) = (
            prunelab_models::layers::softmax(x.clone(), 2),
            prunelab_models::layers::Activation::Gelu.forward(x.clone()),
        );
        set_fused_kernel(None);
        let diff = |a: Tensor<NdArray, 3>, b: Tensor<NdArray, 3>| (a - b).abs().max().into_scalar();
        assert!(diff(softmax, burn::tensor::activation::softmax(x.clone(), 2)) < 1e-6);
        assert!(diff(gelu, burn::tensor::activation::gelu(x)) < 2e-6);
    }
}
