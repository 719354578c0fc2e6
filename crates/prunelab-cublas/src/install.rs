//! [`Gemm`] on the CUDA backend, and [`install`]: the product kernel prunelab's models call.

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Device, Distribution, TensorPrimitive};
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_cubecl::cubecl::cuda::CudaRuntime;
use burn_cubecl::{BoolElement, CubeBackend, FloatElement, IntElement};
use prunelab_gemm::autodiff::{BiasedKernels, WeightBiasGradsFn};
use prunelab_gemm::{take_biased_if_f32_matrices, take_if_f32_of_rank};
use prunelab_models::layers::{ProductCall, set_product_kernel};

use crate::cublas::{self, Arithmetic, CublasError, Order};

/// The backend prunelab's cuda builds run on: plain, or fused with the `fusion` feature.
type Cuda = burn::backend::Cuda<f32, i32>;

/// `op(a) · op(b)` of two f32 tensors, `op` transposing when its flag is set: two matrices, or two
/// batches of matrices (rank 3 or 4, equal batch axes) multiplied matrix by matrix.
pub trait Gemm: Backend {
    /// The product, a new `[batch axes.., rows of op(a), cols of op(b)]` tensor.
    fn gemm(a: FloatTensor<Self>, transpose_a: bool, b: FloatTensor<Self>, transpose_b: bool) -> FloatTensor<Self>;
}

impl<F: FloatElement, I: IntElement, BT: BoolElement> Gemm for CubeBackend<CudaRuntime, F, I, BT> {
    fn gemm(a: FloatTensor<Self>, transpose_a: bool, b: FloatTensor<Self>, transpose_b: bool) -> FloatTensor<Self> {
        match a.meta.shape().num_dims() {
            2 => cublas::gemm(a, transpose_a, b, transpose_b),
            _ => cublas::gemm_batched(a, transpose_a, b, transpose_b),
        }
    }
}

/// A projection's bias: `a · b + bias` of a 2-D f32 `a` and `b` and a 1-D `bias` (one value per
/// column of the product, added to every row), and its gradient.
pub trait GemmBias: Backend {
    /// The product plus the bias, a new `[rows of a, cols of b]` tensor.
    fn gemm_bias(a: FloatTensor<Self>, b: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The sum of each column of a 2-D f32 `g` (the bias's gradient from the output's), `[cols]`.
    fn column_sums(g: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The weight's and the bias's gradients from the input `a` (`[rows, in]`) and the output's
    /// gradient `g` (`[rows, out]`): `[aᵀ · g, the column sums of g]`, in one launch.
    fn weight_and_bias_grads(a: FloatTensor<Self>, g: FloatTensor<Self>) -> [FloatTensor<Self>; 2];
}

impl<F: FloatElement, I: IntElement, BT: BoolElement> GemmBias for CubeBackend<CudaRuntime, F, I, BT> {
    fn gemm_bias(a: FloatTensor<Self>, b: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        crate::bias::gemm_bias(a, b, bias)
    }

    fn column_sums(g: FloatTensor<Self>) -> FloatTensor<Self> {
        crate::bias::column_sums(g)
    }

    fn weight_and_bias_grads(a: FloatTensor<Self>, g: FloatTensor<Self>) -> [FloatTensor<Self>; 2] {
        crate::bias::weight_and_bias_grads(a, g)
    }
}

/// Whether the kernel takes the attention's batches of products too (set by [`install`] where
/// CubeCL's stream is known and the arithmetic is TF32 or f32), or projections only.
static BATCHES: AtomicBool = AtomicBool::new(false);

/// Where the kernel takes projections' biases too (cuBLASLt's bias epilogue), as a [`Biases`]
/// (its index in [`BIASES`]): set by [`install`] where CubeCL's stream is known, the arithmetic
/// is TF32 or f32 and [`BIAS_VARIABLE`] allows it.
static BIAS: AtomicU8 = AtomicU8::new(0);

/// Which projections' biases go into cuBLASLt's epilogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Biases {
    /// None: Burn adds every bias after the product.
    Burn,
    /// Those of inference (`Cuda`: evaluation and the fine-tune's dev passes) only; training's
    /// stay Burn's.
    Inference,
    /// Inference's and training's (`Autodiff<Cuda>`), their gradients by `bias.cu`'s column sums
    /// (measured faster both ways than Burn's adds, `bench/NOTES.md`, 2026-12-07).
    Sums,
    /// Inference's and training's, their gradients by the weight gradient's product
    /// (cuBLASLt's bias-gradient epilogue): the default.
    Training,
}

/// The choices in declaration order: `BIASES[b as usize] == b`.
const BIASES: [Biases; 4] = [Biases::Burn, Biases::Inference, Biases::Sums, Biases::Training];
const _: () = assert!(
    matches!(BIASES[Biases::Burn as usize], Biases::Burn)
        && matches!(BIASES[Biases::Inference as usize], Biases::Inference)
        && matches!(BIASES[Biases::Sums as usize], Biases::Sums)
        && matches!(BIASES[Biases::Training as usize], Biases::Training)
);

/// The variable that chooses where projections' biases are added: unset or empty, in cuBLASLt's
/// epilogue in training and inference, their gradients by the weight gradient's product;
/// `sums`, the same with the gradients by a column-sums kernel; `inference`, in the epilogue for
/// inference only; `burn`, by Burn's add after every product (to compare them with one build).
pub const BIAS_VARIABLE: &str = "PRUNELAB_CUBLAS_BIAS";

/// The variable that, set to `contiguous`, makes the attention's batched products write
/// contiguous outputs even where their heads could lie interleaved as `b`'s do (to compare the
/// two with one build: the interleaved outputs save the copies that merge heads).
pub const HEADS_VARIABLE: &str = "PRUNELAB_CUBLAS_HEADS";

/// The variable that, set to `fresh`, makes every batched product write its list of matrix
/// addresses anew (a kernel launch each) instead of reading the list an equal product wrote
/// (`prunelab_cublas::addresses`; to compare the two with one build).
pub const LISTS_VARIABLE: &str = "PRUNELAB_CUBLAS_LISTS";

/// The variable that, set to `host`, keeps cuBLAS on its own stream, ordered by the host (to
/// compare the two orderings with one build).
pub const ORDER_VARIABLE: &str = "PRUNELAB_CUBLAS_ORDER";

/// Route every f32 projection product of prunelab's models on `burn::backend::Cuda` (and its
/// `Autodiff`) through cuBLAS in `arithmetic`, and in TF32 or f32 where CubeCL's stream is known
/// the attention's batched products too (`cublasGemmBatchedEx`) and the projections' biases
/// in cuBLASLt's epilogue ([`BIAS_VARIABLE`] says where); call it from the thread that will run
/// the model.
/// [`Arithmetic::Bf16`] needs CubeCL's stream and NVRTC (its operands are rounded by a kernel):
/// without them it is an error, not host-ordered products.
///
/// Loads libcublas, learns CubeCL's CUDA stream for the current Burn stream through CUPTI (falling
/// back to host ordering, with a warning, where CUPTI is missing or held by a profiler, or when
/// [`ORDER_VARIABLE`] is `host`), and checks `a·b`, `a·bᵀ` and `aᵀ·b` against Burn's matmul on
/// `device`; on any failure nothing is installed and the error says why. Returns how products
/// issued from this Burn stream are ordered.
pub fn install(device: &Device<Cuda>, arithmetic: Arithmetic) -> Result<Order, CublasError> {
    cublas::open(device.index)?;
    if arithmetic == Arithmetic::Bf16 {
        // bf16 products round their operands with a kernel of this crate, on CubeCL's stream.
        require_stream(device)?;
        crate::kernels::load()?;
    } else if let Err(why) = share_stream(device)? {
        tracing::warn!("cuBLAS's products are ordered by the host, which is slow (CubeCL's stream is unknown: {why})");
    }
    cublas::set_arithmetic(arithmetic);
    check(device)?;
    // Batches need CubeCL's stream and the kernel that writes their matrices' addresses.
    cublas::set_interleaving(on_unless(
        HEADS_VARIABLE,
        "contiguous",
        "outputs of the attention's products contiguous; unset, their heads interleaved where the operand's are",
    )?);
    cublas::set_list_reuse(on_unless(
        LISTS_VARIABLE,
        "fresh",
        "every batched product's address list written anew; unset, read again where an equal product wrote one",
    )?);
    let batches = arithmetic != Arithmetic::Bf16
        && cublas::order() == Order::Stream
        && crate::kernels::load()
            .and_then(|()| check_batches(device))
            .inspect_err(|why| {
                tracing::warn!("the attention's products stay Burn's: {why}");
            })
            .is_ok();
    BATCHES.store(batches, Ordering::Relaxed);
    // Biases in the product's epilogue: cuBLASLt on CubeCL's stream, with a kernel of this crate
    // where it has no algorithm.
    let wanted = biases_wanted()?;
    let bias = wanted != Biases::Burn
        && arithmetic != Arithmetic::Bf16
        && cublas::order() == Order::Stream
        && crate::kernels::load()
            .and_then(|()| crate::bias::open())
            .and_then(|()| check_bias(device, matches!(wanted, Biases::Sums | Biases::Training)))
            .inspect_err(|why| tracing::warn!("the projections' biases stay Burn's adds: {why}"))
            .is_ok();
    let biases = match (bias, wanted) {
        (false, _) => Biases::Burn,
        (true, Biases::Training) => match check_bias_gradients(device) {
            Ok(()) => Biases::Training,
            Err(why) => {
                tracing::warn!("the biases' gradients stay a column-sums kernel's: {why}");
                Biases::Sums
            }
        },
        (true, wanted) => wanted,
    };
    BIAS.store(biases as u8, Ordering::Relaxed);
    set_product_kernel(Some(kernel));
    let order = cublas::order();
    tracing::info!(
        ?arithmetic,
        ?order,
        batches,
        ?biases,
        "projection products through cuBLAS (and the attention's: batches; where biases go in cuBLASLt's epilogue: biases)"
    );
    Ok(order)
}

/// Whether a setting is on: unless `variable` is `off` (whose effect `meaning` says); any
/// other non-empty value is an error.
pub(crate) fn on_unless(variable: &str, off: &str, meaning: &str) -> Result<bool, CublasError> {
    match std::env::var(variable).as_deref() {
        Ok(value) if value == off => Ok(false),
        Ok(other) if !other.is_empty() => {
            Err(CublasError::Setting(format!("{variable}={other}: the only value it takes is `{off}` ({meaning})")))
        }
        _ => Ok(true),
    }
}

/// Which biases [`BIAS_VARIABLE`] sends to cuBLASLt.
fn biases_wanted() -> Result<Biases, CublasError> {
    match std::env::var(BIAS_VARIABLE).as_deref() {
        Ok("burn") => Ok(Biases::Burn),
        Ok("inference") => Ok(Biases::Inference),
        Ok("sums") => Ok(Biases::Sums),
        Ok("training") => Ok(Biases::Training),
        Ok(other) if !other.is_empty() => Err(CublasError::Setting(format!(
            "{BIAS_VARIABLE}={other}: it takes `training` (biases in cuBLASLt's epilogue in training and \
             inference, their gradients too: the default), `sums` (the same, the gradients by a \
             column-sums kernel), `inference` (in inference only) or `burn` (nowhere)"
        ))),
        _ => Ok(Biases::Training),
    }
}

/// Learn CubeCL's CUDA stream for the current Burn stream (once), unless [`ORDER_VARIABLE`] says
/// `host`: the inner `Err` says why it is not known.
pub(crate) fn share_stream(device: &Device<Cuda>) -> Result<Result<(), String>, CublasError> {
    match std::env::var(ORDER_VARIABLE).as_deref() {
        Ok("host") => return Ok(Err(format!("{ORDER_VARIABLE}=host"))),
        Ok(other) if !other.is_empty() => {
            return Err(CublasError::Setting(format!("{ORDER_VARIABLE}={other}: the only value it takes is `host`")));
        }
        _ => {}
    }
    if cublas::order() == Order::Stream {
        return Ok(Ok(()));
    }
    Ok(crate::stream::learn(|| launch_one_kernel(device)).map(|stream| cublas::share_stream(stream, device)))
}

/// Open CUDA for `device` and learn CubeCL's stream ([`share_stream`]), which the copies and
/// kernels of this crate need: without it, the error says why.
pub(crate) fn require_stream(device: &Device<Cuda>) -> Result<(), CublasError> {
    cublas::open(device.index)?;
    share_stream(device)?.map_err(|why| CublasError::Unavailable(format!("CubeCL's stream is unknown: {why}")))
}

/// One element-wise kernel of the current Burn stream, waited for.
fn launch_one_kernel(device: &Device<Cuda>) {
    let _ = Tensor::<Cuda, 1>::ones([4], device).add_scalar(1.0).into_data();
}

/// The kernel handed to `set_product_kernel`: takes the operands when they are 2-D f32 tensors of
/// `Cuda` or `Autodiff<Cuda>` (or batches of rank 3 or 4 with equal batch axes, when [`BATCHES`]),
/// with a projection's bias where [`BIAS`] says so, and leaves anything else to Burn.
fn kernel(call: &mut dyn Any) {
    let ranks = if BATCHES.load(Ordering::Relaxed) { 2..=4 } else { 2..=2 };
    let biases = BIASES[usize::from(BIAS.load(Ordering::Relaxed))];
    if let Some(call) = call.downcast_mut::<ProductCall<FloatTensor<Autodiff<Cuda>>>>() {
        if matches!(biases, Biases::Sums | Biases::Training)
            && take_biased_if_f32_matrices(call, |a, b, bias| {
                let kernels = BiasedKernels {
                    forward: <Cuda as GemmBias>::gemm_bias,
                    gemm: <Cuda as Gemm>::gemm,
                    sums: <Cuda as GemmBias>::column_sums,
                    weight_and_bias: (biases == Biases::Training)
                        .then_some(<Cuda as GemmBias>::weight_and_bias_grads as WeightBiasGradsFn<Cuda>),
                };
                prunelab_gemm::autodiff::biased_product::<Cuda, NoCheckpointing>(a, b, bias, kernels)
            })
        {
            return;
        }
        take_if_f32_of_rank(call, ranks, |a, b, transposed| {
            prunelab_gemm::autodiff::product::<Cuda, NoCheckpointing>(a, b, transposed, <Cuda as Gemm>::gemm)
        });
    } else if let Some(call) = call.downcast_mut::<ProductCall<FloatTensor<Cuda>>>() {
        if biases != Biases::Burn && take_biased_if_f32_matrices(call, <Cuda as GemmBias>::gemm_bias) {
            return;
        }
        take_if_f32_of_rank(call, ranks, |a, b, transposed| <Cuda as Gemm>::gemm(a, false, b, transposed));
    }
}

/// Compare cuBLAS with Burn's matmul on random operands, in the three layouts a projection uses.
fn check(device: &Device<Cuda>) -> Result<(), CublasError> {
    let normal = Distribution::Normal(0.0, 1.0);
    let a = Tensor::<Cuda, 2>::random([67, 96], normal, device);
    let b = Tensor::<Cuda, 2>::random([96, 45], normal, device);
    let g = Tensor::<Cuda, 2>::random([67, 45], normal, device);
    let ours = |x: Tensor<Cuda, 2>, tx: bool, y: Tensor<Cuda, 2>, ty: bool| {
        let (x, y) = (x.into_primitive().tensor(), y.into_primitive().tensor());
        Tensor::<Cuda, 2>::from_primitive(TensorPrimitive::Float(Cuda::gemm(x, tx, y, ty)))
    };
    compare([
        (ours(a.clone(), false, b.clone(), false), a.clone().matmul(b.clone())),
        (ours(g.clone(), false, b.clone(), true), g.clone().matmul(b.clone().transpose())),
        (ours(a.clone(), true, g.clone(), false), a.transpose().matmul(g)),
    ])
}

/// Compare biased products with Burn's matmul plus a broadcast add — a projection-like shape, one of
/// dimensions that are no multiple of anything, and an operand starting one element into its buffer
/// (no 16-byte alignment: another cuBLASLt algorithm, or the `add_bias` fallback) — and, for
/// `training`, the bias gradient's column sums with Burn's `sum_dim`.
fn check_bias(device: &Device<Cuda>, training: bool) -> Result<(), CublasError> {
    let normal = Distribution::Normal(0.0, 1.0);
    let ours = |a: Tensor<Cuda, 2>, b: Tensor<Cuda, 2>, bias: Tensor<Cuda, 1>| {
        let [a, b, bias] = [a.into_primitive().tensor(), b.into_primitive().tensor(), bias.into_primitive().tensor()];
        Tensor::<Cuda, 2>::from_primitive(TensorPrimitive::Float(Cuda::gemm_bias(a, b, bias)))
    };
    let case = |a: Tensor<Cuda, 2>, n: usize| {
        let b = Tensor::<Cuda, 2>::random([a.dims()[1], n], normal, device);
        let bias = Tensor::<Cuda, 1>::random([n], normal, device);
        (ours(a.clone(), b.clone(), bias.clone()), a.matmul(b) + bias.unsqueeze())
    };
    let offset = Tensor::<Cuda, 2>::random([67, 97], normal, device).narrow(1, 1, 96);
    compare([
        case(Tensor::random([128, 384], normal, device), 1152),
        case(Tensor::random([67, 96], normal, device), 45),
        case(offset, 45),
    ])?;
    if !training {
        return Ok(());
    }
    // The gradient's column sums, over more rows than one chunk and a ragged last one.
    let sums = |g: Tensor<Cuda, 2>| {
        let ours = Tensor::<Cuda, 1>::from_primitive(TensorPrimitive::Float(Cuda::column_sums(
            g.clone().into_primitive().tensor(),
        )));
        (ours, g.sum_dim(0).squeeze_dim::<1>(0))
    };
    compare([sums(Tensor::random([4133, 45], normal, device)), sums(Tensor::random([7, 768], normal, device))])
}

/// Compare the weight and bias gradients of one launch with Burn's `aᵀ·g` and `sum_dim`: over
/// more rows than a tile and a ragged count (GPT-2 small's batch of tokens and one of 4,133), a
/// projection-like shape, and a gradient starting one element into its buffer (no 16-byte
/// alignment: another algorithm, or the fallback of `cublasGemmEx` and a column-sums kernel).
fn check_bias_gradients(device: &Device<Cuda>) -> Result<(), CublasError> {
    let normal = Distribution::Normal(0.0, 1.0);
    let case = |a: Tensor<Cuda, 2>, g: Tensor<Cuda, 2>| {
        let [a_p, g_p] = [a.clone(), g.clone()].map(|t| t.into_primitive().tensor());
        let [weight, bias] = Cuda::weight_and_bias_grads(a_p, g_p);
        let [weight, bias] = [weight, bias].map(TensorPrimitive::Float);
        let bias = Tensor::<Cuda, 1>::from_primitive(bias).unsqueeze::<2>();
        let ours = Tensor::cat(vec![Tensor::<Cuda, 2>::from_primitive(weight), bias], 0);
        let want = Tensor::cat(vec![a.transpose().matmul(g.clone()), g.sum_dim(0)], 0);
        (ours, want)
    };
    let random = |shape: [usize; 2]| Tensor::<Cuda, 2>::random(shape, normal, device);
    let offset = random([4134, 45]).narrow(0, 1, 4133);
    compare([
        case(random([4096, 384]), random([4096, 1152])),
        case(random([4133, 96]), random([4133, 45])),
        case(random([4133, 96]), offset),
        case(random([7, 33]), random([7, 768])),
    ])
}

/// Compare batched cuBLAS products with Burn's matmul in the layouts the attention uses: its
/// forward's `q·kᵀ` and `p·v` and its backward's `g·vᵀ` and `pᵀ·g`, with `q`, `k` and `v` views
/// of one `[batch, seq, 3 · hidden]` projection as GPT-2 splits it (offsets, strided heads), and a
/// contiguous rank-3 batch.
fn check_batches(device: &Device<Cuda>) -> Result<(), CublasError> {
    let normal = Distribution::Normal(0.0, 1.0);
    let (batch, seq, heads, dim) = (3, 37, 4, 24);
    let qkv = Tensor::<Cuda, 3>::random([batch, seq, 3 * heads * dim], normal, device);
    let [q, k, v] = [0, 1, 2].map(|i| {
        let part = qkv.clone().narrow(2, i * heads * dim, heads * dim);
        part.reshape([batch, seq, heads, dim]).swap_dims(1, 2)
    });
    let p = Tensor::<Cuda, 4>::random([batch, heads, seq, seq], normal, device);
    let g = Tensor::<Cuda, 4>::random([batch, heads, seq, dim], normal, device);
    let ours = |x: Tensor<Cuda, 4>, tx: bool, y: Tensor<Cuda, 4>, ty: bool| {
        let (x, y) = (x.into_primitive().tensor(), y.into_primitive().tensor());
        Tensor::<Cuda, 4>::from_primitive(TensorPrimitive::Float(Cuda::gemm(x, tx, y, ty)))
    };
    let x3 = Tensor::<Cuda, 3>::random([5, 19, 33], normal, device);
    let y3 = Tensor::<Cuda, 3>::random([5, 33, 7], normal, device);
    let (x3p, y3p) = (x3.clone().into_primitive().tensor(), y3.clone().into_primitive().tensor());
    let three = Tensor::<Cuda, 3>::from_primitive(TensorPrimitive::Float(Cuda::gemm(x3p, false, y3p, false)));
    // A value projection of its own (BERT's), its heads merged back after `p · v` as
    // `merge_heads` does: a view of an output whose heads lie interleaved.
    let own = Tensor::<Cuda, 3>::random([batch, seq, heads * dim], normal, device);
    let own = own.reshape([batch, seq, heads, dim]).swap_dims(1, 2);
    let merge = |x: Tensor<Cuda, 4>| x.swap_dims(1, 2).reshape([batch, seq, heads * dim]);
    // The same product three times, each output freed before the next: the later ones take its
    // memory and read the address list the first wrote (`crate::addresses`), unless turned off.
    let scores = q.clone().matmul(k.clone().swap_dims(2, 3));
    for _ in 0..3 {
        compare([(ours(q.clone(), false, k.clone(), true), scores.clone())])?;
    }
    let (written, reused) = crate::cublas::address_list_counts();
    tracing::debug!(written, reused, "the checks' address lists");
    compare([
        (ours(q.clone(), false, k.clone(), true), scores),
        (ours(p.clone(), false, v.clone(), false), p.clone().matmul(v.clone())),
        (ours(g.clone(), false, v.clone(), true), g.clone().matmul(v.swap_dims(2, 3))),
        (ours(p.clone(), true, g.clone(), false), p.clone().swap_dims(2, 3).matmul(g.clone())),
        (ours(p.clone(), false, own.clone(), false), p.clone().matmul(own.clone())),
        (ours(p.clone(), false, k.clone(), false), p.clone().matmul(k.clone())),
        (ours(p.clone(), true, q.clone(), false), p.clone().swap_dims(2, 3).matmul(q)),
    ])?;
    compare([(merge(ours(p.clone(), false, own.clone(), false)), merge(p.clone().matmul(own)))])?;
    compare([(three, x3.matmul(y3))])
}

/// The largest difference of each pair over its expected values' largest magnitude, against a
/// bound that Burn's own TF32 matmul (relative error ~3e-4) meets and a wrong layout (errors of
/// order 1) does not.
fn compare<const D: usize, const N: usize>(cases: [(Tensor<Cuda, D>, Tensor<Cuda, D>); N]) -> Result<(), CublasError> {
    const TOLERANCE: f64 = 1e-2;
    for (got, want) in cases {
        if got.dims() != want.dims() {
            return Err(CublasError::Mismatch { error: f64::INFINITY, tolerance: TOLERANCE });
        }
        let scale = want.clone().abs().max().into_scalar().elem::<f64>().max(f64::MIN_POSITIVE);
        let error = (got - want).abs().max().into_scalar().elem::<f64>() / scale;
        if error.is_nan() || error > TOLERANCE {
            return Err(CublasError::Mismatch { error, tolerance: TOLERANCE });
        }
    }
    Ok(())
}
