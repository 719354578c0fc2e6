//! LayerNorm as one operation a backend may run as kernels of its own.
//!
//! Burn 0.21's `LayerNorm` is its backend's default `layer_norm`: two means, a subtraction, a
//! square, a square root, a division, a product and a sum, whose backward autodiff takes apart
//! again op by op — on the GPU about seventeen kernels per norm and step under Burn's fusion (GPT-2
//! small, `bench/NOTES.md`), each with its host-side cost. A [`NormKernel`], installed by the binary for one concrete backend
//! (`prunelab-cublas` on CUDA), takes the norm whole: forward, and a backward of its own.
//!
//! Post-LayerNorm blocks call [`add_layer_norm`]: the residual's sum goes to the kernel with the
//! norm (one pass, one launch), where it would be an add of its own before it.
//!
//! Without a kernel, or for a norm it leaves, [`layer_norm`] is `LayerNorm::forward` exactly, and
//! [`add_layer_norm`] `LayerNorm::forward(x + residual)`.

use super::view;
use burn::module::{Content, DisplaySettings, ModuleDisplay};
use burn::nn::LayerNorm;
use burn::prelude::*;
use burn::tensor::TensorPrimitive;

/// A LayerNorm over the last axis of a `[rows, cols]` float primitive of the backend (the
/// input's leading axes flattened): `(x − mean) / √(var + epsilon) · gamma + beta`, the variance
/// biased, as `torch.nn.LayerNorm` and Burn compute it, where `x` is the input, or with a
/// residual, `input + residual` (a post-LayerNorm block's sum, added by the kernel).
#[derive(Debug)]
pub struct NormArgs<P> {
    /// The input, `[rows, cols]`.
    pub input: P,
    /// Added to the input before the norm, `[rows, cols]`: its gradient is the input's.
    pub residual: Option<P>,
    /// The scale, `[cols]`.
    pub gamma: P,
    /// The shift, `[cols]`.
    pub beta: P,
    /// Added to the variance.
    pub epsilon: f64,
}

/// A [`NormArgs`] on its way to a kernel: the kernel takes `args` when it handles them and leaves
/// the result (`[rows, cols]`, with gradients for all three tensors when the primitive is an
/// autodiff one) in `output`; otherwise it leaves `args` for Burn's ops.
#[derive(Debug)]
pub struct NormCall<P> {
    /// The arguments, until a kernel takes them.
    pub args: Option<NormArgs<P>>,
    /// The result.
    pub output: Option<P>,
}

/// A kernel for [`NormCall`]s of one backend's float primitive, behind `dyn Any`.
pub type NormKernel = super::hook::Kernel;

static NORM_KERNEL: super::hook::Hook = super::hook::Hook::new();

/// Install (or with `None` remove) the kernel [`layer_norm`] tries first.
pub fn set_norm_kernel(kernel: Option<NormKernel>) {
    NORM_KERNEL.set(kernel);
}

/// `norm.forward(x)`, through the installed kernel when there is one and the norm has a shift.
pub fn layer_norm<B: Backend, const D: usize>(norm: &LayerNorm<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    through_kernel(norm, x, None)
}

/// The variable that, set to `apart`, keeps a residual's sum out of the norm's kernel (Burn's add,
/// then the norm: the behaviour before [`add_layer_norm`], for benchmarks).
pub const RESIDUAL_VARIABLE: &str = "PRUNELAB_RESIDUAL_NORM";

/// `norm.forward(x + residual)` — a post-LayerNorm block's residual sum and norm — through the
/// installed kernel as one operation when there is one (no separate pass for the sum, and on the
/// GPU one launch fewer), else exactly that.
pub fn add_layer_norm<B: Backend, const D: usize>(
    norm: &LayerNorm<B>,
    x: Tensor<B, D>,
    residual: Tensor<B, D>,
) -> Tensor<B, D> {
    if x.dims() != residual.dims() || sums_apart() {
        // A broadcast sum (or asked to): Burn's add, then the norm.
        return layer_norm(norm, x + residual);
    }
    through_kernel(norm, x, Some(residual))
}

/// Whether [`RESIDUAL_VARIABLE`] is `apart` (read once).
fn sums_apart() -> bool {
    static APART: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *APART.get_or_init(|| std::env::var(RESIDUAL_VARIABLE).is_ok_and(|v| v == "apart"))
}

/// The norm of `x` (plus `residual`), through the installed kernel when there is one and the norm
/// has a shift: the leading axes flattened for it and restored after; where no kernel takes it,
/// `LayerNorm::forward` of the same input.
fn through_kernel<B: Backend, const D: usize>(
    norm: &LayerNorm<B>,
    x: Tensor<B, D>,
    residual: Option<Tensor<B, D>>,
) -> Tensor<B, D> {
    let kernel = NORM_KERNEL.get();
    let (Some(kernel), Some(beta), Some(epsilon)) = (kernel, norm.beta.as_ref(), epsilon(norm)) else {
        return norm.forward(match residual {
            Some(residual) => x + residual,
            None => x,
        });
    };
    let dims = x.dims();
    let cols = dims[D - 1];
    let rows = dims[..D - 1].iter().product::<usize>();
    let flat = |t: Tensor<B, D>| match view::reshape(t, [rows, cols]).into_primitive() {
        TensorPrimitive::Float(t) => t,
        TensorPrimitive::QFloat(_) => unreachable!("LayerNorm's inputs are float tensors, never quantized ones"),
    };
    let (input, residual) = (flat(x), residual.map(flat));
    let (TensorPrimitive::Float(gamma), TensorPrimitive::Float(beta)) =
        (norm.gamma.val().into_primitive(), beta.val().into_primitive())
    else {
        unreachable!("LayerNorm's parameters are float tensors, never quantized ones, in prunelab")
    };
    let mut call = NormCall { args: Some(NormArgs { input, residual, gamma, beta, epsilon }), output: None };
    kernel(&mut call);
    let tensor = |t| Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(t)).reshape(dims);
    match (call.output, call.args) {
        (Some(out), _) => view::reshape(Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(out)), dims),
        (None, Some(args)) => norm.forward(match args.residual {
            Some(residual) => tensor(args.input) + tensor(residual),
            None => tensor(args.input),
        }),
        (None, None) => unreachable!("a norm kernel took the arguments and returned nothing"),
    }
}

/// The norm's epsilon, which Burn keeps private but shows (as Rust prints an `f64`, which parses
/// back to the same value) in the module's display content.
pub fn epsilon<B: Backend>(norm: &LayerNorm<B>) -> Option<f64> {
    let content = norm.custom_content(Content::new(DisplaySettings::new()))?;
    let attribute = content.attributes.iter().find(|a| a.name == "epsilon")?;
    attribute.value.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use std::any::Any;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use burn::backend::{Autodiff, NdArray};
    use burn::nn::LayerNormConfig;
    use burn::tensor::Distribution;
    use burn::tensor::TensorMetadata;
    use burn::tensor::ops::{FloatTensor, FloatTensorOps, ModuleOps};

    use super::*;

    #[test]
    fn the_epsilon_is_read_back_exactly() {
        let device = Default::default();
        for eps in [1e-5, 1e-12, 1e-7, 0.1 + 0.2] {
            let norm = LayerNormConfig::new(8).with_epsilon(eps).init::<NdArray>(&device);
            assert_eq!(epsilon(&norm), Some(eps));
        }
    }

    type A = Autodiff<NdArray>;

    /// Calls the test kernel took.
    static TAKEN: AtomicUsize = AtomicUsize::new(0);

    /// A kernel that computes the norm with Burn's own op on what the hook hands it, so that its
    /// results are Burn's (other tests running meanwhile are unaffected) and only the hook's
    /// plumbing is under test: the flattening, the epsilon, the parameters, the gradients.
    fn burns_op_as_a_kernel(call: &mut dyn Any) {
        let Some(call) = call.downcast_mut::<NormCall<FloatTensor<A>>>() else { return };
        let Some(NormArgs { input, residual, gamma, beta, epsilon }) = call.args.take() else { return };
        assert_eq!(input.shape().num_dims(), 2, "the hook flattens the leading axes");
        let input = match residual {
            Some(residual) => A::float_add(input, residual),
            None => input,
        };
        call.output = Some(A::layer_norm(input, gamma, Some(beta), epsilon));
        TAKEN.fetch_add(1, Ordering::SeqCst);
    }

    /// Through the hook, a 3-D input's output and all three gradients are `LayerNorm::forward`'s;
    /// with a residual, `LayerNorm::forward(x + r)`'s, the residual getting the input's gradient;
    /// without a kernel, `add_layer_norm` is that exactly.
    #[test]
    fn a_kernel_gets_the_norm_whole_and_gradients_flow() {
        let device = Default::default();
        let mut norm = LayerNormConfig::new(6).with_epsilon(1e-3).init::<A>(&device);
        norm.gamma = norm.gamma.map(|_| Tensor::random([6], Distribution::Normal(1.0, 0.5), &device).require_grad());
        let x = Tensor::<A, 3>::random([2, 3, 6], Distribution::Normal(0.3, 2.0), &device);
        let r = Tensor::<A, 3>::random([2, 3, 6], Distribution::Normal(-0.2, 1.0), &device);
        let upstream = Tensor::<A, 3>::random([2, 3, 6], Distribution::Default, &device);
        let run = |through_hook: bool, with_residual: bool| {
            let (x, r) = (x.clone().require_grad(), r.clone().require_grad());
            let y = match (through_hook, with_residual) {
                (true, false) => layer_norm(&norm, x.clone()),
                (true, true) => add_layer_norm(&norm, x.clone(), r.clone()),
                (false, false) => norm.forward(x.clone()),
                (false, true) => norm.forward(x.clone() + r.clone()),
            };
            let grads = (y.clone() * upstream.clone()).sum().backward();
            let grad = |t: Tensor<A, 1>| t.grad(&grads).expect("a gradient").into_data();
            let beta = norm.beta.as_ref().expect("a shift").val();
            let dx = x.grad(&grads).expect("a gradient").into_data();
            let dr = r.grad(&grads).map_or_else(|| dx.clone(), |dr| dr.into_data());
            [y.inner().into_data(), dx, dr, grad(norm.gamma.val()), grad(beta)]
        };
        let unhooked = run(true, true);
        for (got, want) in unhooked.into_iter().zip(run(false, true)) {
            assert_eq!(got, want, "add_layer_norm without a kernel is the norm of Burn's sum");
        }
        set_norm_kernel(Some(burns_op_as_a_kernel));
        let before = TAKEN.load(Ordering::SeqCst);
        let hooked = [run(true, false), run(true, true)];
        let taken = TAKEN.load(Ordering::SeqCst) - before;
        set_norm_kernel(None);
        assert!(taken >= 2, "the kernel was not called for both");
        // The scale's and shift's gradients are summed over 6 rows instead of 2 × 3: equal up to
        // the order of the sums.
        for (hooked, with_residual) in hooked.into_iter().zip([false, true]) {
            for (got, want) in hooked.into_iter().zip(run(false, with_residual)) {
                assert_eq!(got.shape, want.shape);
                got.assert_approx_eq::<f32>(&want, burn::tensor::Tolerance::rel_abs(1e-5, 1e-6));
            }
        }
    }
}
