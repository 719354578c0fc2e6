//! Building blocks shared by the architectures: activations as transformers names them,
//! attention masks in transformers' additive form, the matrix products of mixed precision, the
//! element-wise operations a backend may fuse ([`fused`]), LayerNorm as one operation
//! ([`norm`]), embedding lookups whose gradient a backend may compute ([`embed`]), reshapes a backend may do without copying ([`view`]), the attention scores' scale and mask in one
//! operation ([`scores`]), the slot those kernels go
//! in ([`hook`]), and the modules several architectures share ([`blocks`]).

pub mod blocks;
pub mod embed;
pub mod fused;
pub mod hook;
pub mod norm;
pub mod scores;
pub mod view;

pub use embed::embedding;
pub use fused::{dropout, softmax};
pub use norm::{add_layer_norm, layer_norm};

use std::sync::atomic::{AtomicU8, Ordering};

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::{FloatDType, TensorPrimitive, activation};

/// The additive mask value transformers uses for masked positions (`torch.finfo(float32).min`).
pub const MASKED: f32 = f32::MIN;

/// Activation functions by their transformers (`ACT2FN`) names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `gelu`: exact, with erf.
    Gelu,
    /// `gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`: the tanh approximation.
    GeluTanh,
    /// `relu`.
    Relu,
    /// `silu` / `swish`.
    Silu,
    /// `tanh`.
    Tanh,
}

impl Activation {
    /// Every accepted name.
    pub const NAMES: [&'static str; 8] =
        ["gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "relu", "silu", "swish", "tanh"];

    /// The activation a transformers name stands for.
    pub fn from_hf(name: &str) -> Option<Self> {
        Some(match name {
            "gelu" => Self::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Self::GeluTanh,
            "relu" => Self::Relu,
            "silu" | "swish" => Self::Silu,
            "tanh" => Self::Tanh,
            _ => return None,
        })
    }

    /// Apply element-wise.
    pub fn forward<B: Backend, const D: usize>(self, x: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            Self::Gelu => fused::gelu(x),
            Self::GeluTanh => fused::gelu_tanh(x),
            Self::Relu => activation::relu(x),
            Self::Silu => activation::silu(x),
            Self::Tanh => activation::tanh(x),
        }
    }
}

/// Why `name` is not an activation prunelab implements (a config error message), if it is not.
pub fn activation_problem(name: &str) -> Option<String> {
    Activation::from_hf(name)
        .is_none()
        .then(|| format!("{name:?} is not supported (supported: {})", Activation::NAMES.join(", ")))
}

/// Additive padding mask for bidirectional attention.
///
/// # Shapes
/// - `attention_mask`: `[batch, seq]`, 1 on tokens, 0 on padding
/// - output: `[batch, 1, 1, seq]`, 0 where attended, [`MASKED`] on padding
pub fn padding_mask<B: Backend>(attention_mask: Tensor<B, 2, Int>) -> Tensor<B, 4> {
    let [batch, seq] = attention_mask.dims();
    let keep = attention_mask.float();
    ((keep.neg() + 1.0) * MASKED).reshape([batch, 1, 1, seq])
}

/// Additive causal + padding mask for decoder self-attention.
///
/// # Shapes
/// - `attention_mask`: `[batch, seq]`
/// - output: `[batch, 1, seq, seq]`: query `i` may attend key `j` when `j <= i` and `j` is a token
pub fn causal_mask<B: Backend>(attention_mask: Tensor<B, 2, Int>) -> Tensor<B, 4> {
    let [batch, seq] = attention_mask.dims();
    let device = attention_mask.device();
    // Burn's tril_mask marks what lies outside the lower triangle: the future (j > i).
    let future = Tensor::<B, 2, Bool>::tril_mask([seq, seq], 0, &device).float().reshape([1, 1, seq, seq]);
    let padding = (attention_mask.float().neg() + 1.0).reshape([batch, 1, 1, seq]);
    (future + padding).clamp_max(1.0) * MASKED
}

/// Split `[batch, seq, heads * head_dim]` into `[batch, heads, seq, head_dim]` (the split itself
/// a [`view::reshape`]: no copy where the backend allows).
pub fn split_heads<B: Backend>(x: Tensor<B, 3>, heads: usize) -> Tensor<B, 4> {
    let [batch, seq, hidden] = x.dims();
    view::reshape(x, [batch, seq, heads, hidden / heads]).swap_dims(1, 2)
}

/// Merge `[batch, heads, seq, head_dim]` back into `[batch, seq, heads * head_dim]`.
pub fn merge_heads<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 3> {
    let [batch, heads, seq, head_dim] = x.dims();
    // A view where the heads already lie interleaved (the CPU's attention product makes them so).
    view::reshape(x.swap_dims(1, 2), [batch, seq, heads * head_dim])
}

/// The dtype the matrix products run in, process-wide (0: the parameters' own, f32).
static MATMUL_DTYPE: AtomicU8 = AtomicU8::new(0);

/// Mixed precision, like `torch.autocast`: with `Some(dtype)`, every [`linear`] layer and the two
/// products of [`attention`] cast their operands to `dtype`, multiply, and cast the result back
/// to f32. Parameters, LayerNorm, softmax, the loss and the optimizer stay in f32 — the f32
/// weights are the master copy AdamW updates (a cast's gradient is cast back to the input's
/// dtype). `None` (the default) is plain f32.
pub fn set_matmul_dtype(dtype: Option<FloatDType>) {
    let code = match dtype {
        None | Some(FloatDType::F32) => 0,
        Some(FloatDType::BF16) => 1,
        Some(FloatDType::F16) => 2,
        Some(FloatDType::F64) => 3,
        Some(other) => panic!("no mixed precision in {other:?}"),
    };
    MATMUL_DTYPE.store(code, Ordering::Relaxed);
}

/// The dtype set by [`set_matmul_dtype`].
pub fn matmul_dtype() -> Option<FloatDType> {
    match MATMUL_DTYPE.load(Ordering::Relaxed) {
        1 => Some(FloatDType::BF16),
        2 => Some(FloatDType::F16),
        3 => Some(FloatDType::F64),
        _ => None,
    }
}

/// `layer.forward(x)`, in the mixed-precision dtype when one is set.
///
/// Inputs of rank 3 and more are multiplied as one `[tokens, d_in]` matrix, as `torch.nn.Linear`
/// does: Burn's `linear` multiplies them as a batch of matrices against the broadcast weight, so
/// its weight gradient is one `[d_in, d_out]` product per batch row, summed afterwards — at
/// batch 32 it writes and reduces 32 weight-sized tensors per projection instead of running one
/// product over every token. The bias is added in the input's rank, so that its gradient is
/// reduced one axis at a time (batch, then sequence): a single reduction over all tokens is
/// about 10× slower with CubeCL's untuned reduce (see `bench/NOTES.md`).
pub fn linear<B: Backend, const D: usize>(layer: &Linear<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    linear_then(layer, x, None)
}

/// `act(layer.forward(x))`, as [`linear`] then [`Activation::forward`]. Outside training (no
/// autodiff) the installed [`ProductKernel`] may apply a GELU as it stores the product (the CPU
/// kernel does, in the same bits), saving a pass over the feed-forward's widest activations.
pub fn linear_act<B: Backend, const D: usize>(layer: &Linear<B>, x: Tensor<B, D>, act: Activation) -> Tensor<B, D> {
    let fusable = matches!(act, Activation::Gelu | Activation::GeluTanh) && !B::ad_enabled(&x.device());
    match fusable {
        true => linear_then(layer, x, Some(act)),
        false => act.forward(linear(layer, x)),
    }
}

/// [`linear`], then `act` when given (by the kernel, or after it).
fn linear_then<B: Backend, const D: usize>(
    layer: &Linear<B>,
    x: Tensor<B, D>,
    act: Option<Activation>,
) -> Tensor<B, D> {
    crate::observe::record(layer, &x);
    let bias = layer.bias.as_ref().map(|b| b.val());
    if D < 3 {
        return product(x, layer.weight.val(), bias, act);
    }
    let dims = x.dims();
    let [d_in, d_out] = layer.weight.dims();
    let tokens = dims[..D - 1].iter().product();
    let mut out_dims = dims;
    out_dims[D - 1] = d_out;
    let x = view::reshape(x, [tokens, d_in]);
    let (out, bias, act) = match matmul_dtype() {
        None => match kernel_product((x, layer.weight.val(), false), bias, act) {
            Ok(taken) => taken,
            Err((x, weight, bias)) => (burn::tensor::module::linear(x, weight, None), bias, act),
        },
        Some(_) => (product(x, layer.weight.val(), None, None), bias, act),
    };
    then_act(plus_bias(view::reshape(out, out_dims), bias), act)
}

/// `act(x)`, or `x`.
fn then_act<B: Backend, const D: usize>(x: Tensor<B, D>, act: Option<Activation>) -> Tensor<B, D> {
    match act {
        Some(act) => act.forward(x),
        None => x,
    }
}

/// `out + bias`, the bias broadcast over the leading axes.
fn plus_bias<B: Backend, const D: usize>(out: Tensor<B, D>, bias: Option<Tensor<B, 1>>) -> Tensor<B, D> {
    match bias {
        Some(bias) => out + bias.unsqueeze::<D>(),
        None => out,
    }
}

/// `x · weight` as every projection multiplies: in the mixed-precision dtype when one is set,
/// else through the installed [`ProductKernel`] when there is one, else Burn's matmul.
pub fn projection<B: Backend>(x: Tensor<B, 2>, weight: Tensor<B, 2>) -> Tensor<B, 2> {
    product(x, weight, None, None)
}

/// `act(x · weight + bias)`, in the mixed-precision dtype when one is set (the result in f32).
fn product<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
    act: Option<Activation>,
) -> Tensor<B, D> {
    match matmul_dtype() {
        None => match kernel_product((x, weight, false), bias, act) {
            Ok((out, bias, act)) => then_act(plus_bias(out, bias), act),
            Err((x, weight, bias)) => then_act(burn::tensor::module::linear(x, weight, bias), act),
        },
        Some(dtype) => then_act(
            burn::tensor::module::linear(x.cast(dtype), weight.cast(dtype), bias.map(|b| b.cast(dtype)))
                .cast(FloatDType::F32),
            act,
        ),
    }
}

/// A product handed to a [`ProductKernel`] as the backend's own float primitives: a
/// projection's 2-D one, or an attention product (two batches of matrices of one rank, 3 or 4).
/// The kernel takes `operands` when it handles their type and shape, and leaves the product in
/// `product`; otherwise it leaves both untouched and Burn's `matmul` runs. A projection's bias
/// comes along: a kernel may take it too and add it to every row of the product (and, on an
/// autodiff backend, give it its gradient); a bias it leaves is added by Burn's ops after it.
/// Outside training a projection's activation may come too ([`linear_act`]): a kernel that took
/// the bias may apply it to every element (bias included) as it stores it, exactly as
/// [`Activation::forward`] would after it; one it leaves runs after the kernel.
#[derive(Debug)]
pub struct ProductCall<P> {
    /// `(lhs, rhs)`: `[.., rows, inner]` and `[.., inner, cols]` (`[.., cols, inner]` with
    /// `transposed_rhs`).
    pub operands: Option<(P, P)>,
    /// Whether the product is `lhs · rhsᵀ` ([`matmul_transposed`]: the attention's scores,
    /// `q · kᵀ`, handed `k` itself so that a kernel's backward can write the key's gradient as
    /// `gᵀ · q`, laid out as `k` is, where `(qᵀ · g)ᵀ` is a transposed view).
    pub transposed_rhs: bool,
    /// A projection's bias, `[cols]`, when it has one and no kernel took it yet.
    pub bias: Option<P>,
    /// The activation of the product plus bias, when one is to follow (only on a backend
    /// without autodiff) and no kernel took it yet.
    pub activation: Option<Activation>,
    /// `lhs · rhs` (plus the bias and through the activation, when the kernel took them),
    /// `[.., rows, cols]`.
    pub product: Option<P>,
}

/// A replacement for Burn's matmul in every projection (`linear` layers in f32), installed by the
/// binary for one concrete backend (`prunelab-cublas` for cuBLAS on CUDA). It receives a
/// [`ProductCall`] of that backend's float primitive behind `dyn Any`, and must compute exactly
/// `lhs · rhs`, gradients included when the primitive is an autodiff one.
pub type ProductKernel = hook::Kernel;

/// The installed [`ProductKernel`], if any.
static PRODUCT_KERNEL: hook::Hook = hook::Hook::new();

/// Install (or with `None` remove) the kernel every f32 projection's product goes through.
pub fn set_product_kernel(kernel: Option<ProductKernel>) {
    PRODUCT_KERNEL.set(kernel);
}

/// A float tensor, and the bias and activation still to apply, as [`kernel_product`] hands them
/// back.
type Taken<B, const D: usize> = (Tensor<B, D>, Option<Tensor<B, 1>>, Option<Activation>);

/// `x · weight` (plus `bias` and through `act`, if the kernel takes them) through the installed
/// [`ProductKernel`], with the bias and activation it left; or the operands and bias back when
/// there is no kernel or it does not handle them (a kernel checks the operands' ranks: a
/// projection's are `[rows, d_in] · [d_in, d_out]`, an attention product's two batches of
/// matrices).
#[allow(clippy::type_complexity)]
fn kernel_product<B: Backend, const D: usize, const E: usize>(
    (x, weight, transposed_rhs): (Tensor<B, D>, Tensor<B, E>, bool),
    bias: Option<Tensor<B, 1>>,
    act: Option<Activation>,
) -> Result<Taken<B, D>, (Tensor<B, D>, Tensor<B, E>, Option<Tensor<B, 1>>)> {
    let Some(kernel) = PRODUCT_KERNEL.get() else { return Err((x, weight, bias)) };
    let float = |t: TensorPrimitive<B>| match t {
        TensorPrimitive::Float(t) => Ok(t),
        other => Err(other),
    };
    let (lhs, rhs, bias) = match (float(x.into_primitive()), float(weight.into_primitive())) {
        (Ok(lhs), Ok(rhs)) => match bias.map(|b| float(b.into_primitive())).transpose() {
            Ok(bias) => (lhs, rhs, bias),
            Err(bias) => {
                let (lhs, rhs) = (TensorPrimitive::Float(lhs), TensorPrimitive::Float(rhs));
                let (x, w, b) =
                    (Tensor::from_primitive(lhs), Tensor::from_primitive(rhs), Tensor::from_primitive(bias));
                return Err((x, w, Some(b)));
            }
        },
        (lhs, rhs) => {
            let back = |t: Result<TensorPrimitive<B>, TensorPrimitive<B>>| t.unwrap_or_else(|t| t);
            let (lhs, rhs) = (back(lhs.map(TensorPrimitive::Float)), back(rhs.map(TensorPrimitive::Float)));
            return Err((Tensor::from_primitive(lhs), Tensor::from_primitive(rhs), bias));
        }
    };
    let mut call = ProductCall { operands: Some((lhs, rhs)), transposed_rhs, bias, activation: act, product: None };
    kernel(&mut call);
    assert!(
        call.activation.is_some() || act.is_none() || call.bias.is_none(),
        "a product kernel applied the activation before the bias it left"
    );
    let bias = call.bias.map(|b| Tensor::from_primitive(TensorPrimitive::Float(b)));
    match (call.product, call.operands) {
        (Some(out), _) => Ok((Tensor::from_primitive(TensorPrimitive::Float(out)), bias, call.activation)),
        (None, Some((lhs, rhs))) => Err((
            Tensor::from_primitive(TensorPrimitive::Float(lhs)),
            Tensor::from_primitive(TensorPrimitive::Float(rhs)),
            bias,
        )),
        (None, None) => unreachable!("a product kernel took the operands and returned no product"),
    }
}

/// `a.matmul(b)` (the attention's products), in the mixed-precision dtype when one is set, else
/// through the installed [`ProductKernel`] when it takes the operands, else Burn's matmul.
pub fn matmul<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, D> {
    match matmul_dtype() {
        None => kernel_product((a, b, false), None, None).map_or_else(|(a, b, _)| a.matmul(b), |(out, ..)| out),
        Some(dtype) => a.cast(dtype).matmul(b.cast(dtype)).cast(FloatDType::F32),
    }
}

/// `a.matmul(b.swap_dims(D - 2, D - 1))`, `a · bᵀ` (the attention's scores), as [`matmul`]: the
/// kernel is handed `b` itself ([`ProductCall::transposed_rhs`]).
pub fn matmul_transposed<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, D> {
    let transpose = |b: Tensor<B, D>| b.swap_dims(D - 2, D - 1);
    match matmul_dtype() {
        None => {
            kernel_product((a, b, true), None, None).map_or_else(|(a, b, _)| a.matmul(transpose(b)), |(out, ..)| out)
        }
        Some(dtype) => a.cast(dtype).matmul(transpose(b).cast(dtype)).cast(FloatDType::F32),
    }
}

/// Scaled dot-product attention with an additive mask (transformers' eager path).
///
/// # Shapes
/// - `q`, `k`, `v`: `[batch, heads, seq, head_dim]`
/// - `mask`: broadcastable to `[batch, heads, seq_q, seq_k]`
/// - output: `[batch, heads, seq, head_dim]`
pub fn attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    mask: Tensor<B, 4>,
    scale: f64,
    dropout: &burn::nn::Dropout,
) -> Tensor<B, 4> {
    let probs = scores::masked_softmax_dropout(matmul_transposed(q, k), scale, mask, dropout);
    matmul(probs, v)
}

#[cfg(test)]
mod tests {
    use std::any::Any;

    use burn::backend::NdArray;

    use super::*;

    #[test]
    fn causal_mask_blocks_future_and_padding() {
        let device = Default::default();
        let mask = Tensor::<NdArray, 2, Int>::from_data([[0, 1, 1]], &device);
        let m = causal_mask(mask).reshape([3, 3]).into_data().to_vec::<f32>().unwrap();
        let blocked: Vec<bool> = m.iter().map(|v| *v == MASKED).collect();
        #[rustfmt::skip]
        assert_eq!(blocked, [true, true, true,
                             true, false, true,
                             true, false, false]);
    }

    #[test]
    fn linear_on_tokens_matches_burns_batched_linear_with_gradients() {
        use burn::backend::Autodiff;
        use burn::nn::LinearConfig;
        type AB = Autodiff<NdArray>;
        let device = Default::default();
        let layer = LinearConfig::new(6, 5).init::<AB>(&device);
        let x = Tensor::<AB, 3>::random([2, 3, 6], burn::tensor::Distribution::Default, &device);
        let upstream = Tensor::<AB, 3>::random([2, 3, 5], burn::tensor::Distribution::Default, &device);
        let grads_of = |y: Tensor<AB, 3>| {
            let values = y.clone().into_data().to_vec::<f32>().unwrap();
            let grads = (y * upstream.clone()).sum().backward();
            let w = layer.weight.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
            let b = layer.bias.as_ref().unwrap().grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
            (values, w, b)
        };
        let ours = grads_of(linear(&layer, x.clone()));
        let burns = grads_of(layer.forward(x));
        for (name, a, b) in
            [("output", &ours.0, &burns.0), ("weight grad", &ours.1, &burns.1), ("bias grad", &ours.2, &burns.2)]
        {
            assert_eq!(a.len(), b.len(), "{name}");
            let d = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
            assert!(d < 1e-5, "{name} differs by {d}");
        }
    }

    /// A product kernel for `[_, 7] · [7, 3]` on NdArray that marks its products (+1000), so the
    /// test sees which path ran; other tests running meanwhile never use that shape.
    fn marking_kernel(call: &mut dyn Any) {
        type P = burn::tensor::ops::FloatTensor<NdArray>;
        let Some(call) = call.downcast_mut::<ProductCall<P>>() else { return };
        let Some((lhs, rhs)) = call.operands.take() else { return };
        let shape = burn::tensor::TensorMetadata::shape(&rhs);
        if shape.num_dims() != 2 || shape.dims::<2>() != [7, 3] {
            call.operands = Some((lhs, rhs));
            return;
        }
        let lhs = Tensor::<NdArray, 2>::from_primitive(TensorPrimitive::Float(lhs));
        let rhs = Tensor::<NdArray, 2>::from_primitive(TensorPrimitive::Float(rhs));
        call.product = Some((lhs.matmul(rhs) + 1000.0).into_primitive().tensor());
    }

    #[test]
    fn projections_go_through_the_installed_product_kernel_and_others_fall_back() {
        use burn::nn::LinearConfig;
        let device = Default::default();
        let taken = LinearConfig::new(7, 3).init::<NdArray>(&device);
        let left = LinearConfig::new(7, 4).init::<NdArray>(&device);
        let x = Tensor::<NdArray, 3>::random([2, 5, 7], burn::tensor::Distribution::Default, &device);
        let max_diff = |a: Tensor<NdArray, 3>, b: Tensor<NdArray, 3>| (a - b).abs().max().into_scalar();
        set_product_kernel(Some(marking_kernel));
        let (marked, fallback) = (linear(&taken, x.clone()), linear(&left, x.clone()));
        let rank_two = linear(&taken, x.clone().reshape([10, 7]));
        set_product_kernel(None);
        let unmarked = linear(&taken, x.clone());
        // The kernel's product is used, with the bias added after it (in rank 3 and in rank 2).
        assert!(max_diff(marked.clone() - 1000.0, taken.forward(x.clone())) < 1e-4);
        assert!(max_diff(rank_two.reshape([2, 5, 3]), marked) < 1e-4);
        // A product the kernel leaves, and every product once it is removed, is Burn's.
        assert!(max_diff(fallback, left.forward(x.clone())) < 1e-5);
        assert!(max_diff(unmarked, taken.forward(x)) < 1e-5);
    }

    #[test]
    fn activations_by_name() {
        for name in Activation::NAMES {
            assert!(Activation::from_hf(name).is_some(), "{name}");
        }
        assert_eq!(Activation::from_hf("gelu_pytorch_tanh"), Some(Activation::GeluTanh));
        assert_eq!(Activation::from_hf("mish"), None);
    }
}
