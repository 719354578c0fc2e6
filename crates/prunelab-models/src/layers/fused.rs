//! Element-wise operations a backend may run as single kernels of its own: softmax over the last
//! axis, GELU (exact and tanh-approximated) and dropout.
//!
//! Burn 0.21 composes them from small ops — softmax from max, subtract, exp, sum and divide;
//! GELU's gradient from a tanh, a cube and half a dozen products; dropout from a Bernoulli
//! tensor drawn element by element and two products — each op a pass over memory into a fresh
//! buffer, and on the CPU backend each on one core. A [`FusedKernel`], installed by the binary for
//! one concrete backend (`prunelab-gemm`'s CPU kernels), takes such an operation whole, forward
//! and backward, as it takes the projections' products ([`super::ProductKernel`]).
//!
//! Without a kernel, or for an operation it leaves, each function is Burn's op exactly.
//!
//! Dropout kernels draw their masks by one rule ([`dropout_keeps`]), so that a seed gives the same
//! mask on every backend. A kernel that cannot read Burn's generator without waiting for the device
//! (CUDA's) takes its seeds from [`dropout_seed`], a stream the trainer seeds with [`seed`] wherever
//! it seeds Burn's.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use burn::nn::Dropout;
use burn::prelude::*;
use burn::tensor::{TensorPrimitive, activation};

/// An operation handed to a [`FusedKernel`], on a `[rows, cols]` float primitive of the backend
/// (the input's leading axes flattened; the operation acts along `cols`).
#[derive(Debug)]
pub enum FusedOp<P> {
    /// `softmax(input)` along each row.
    Softmax(P),
    /// GELU, exact (`x·Φ(x)`, with erf) or with transformers' tanh approximation.
    Gelu {
        /// The input.
        input: P,
        /// The tanh approximation (`gelu_new`) instead of erf.
        approximate: bool,
    },
    /// Inverted dropout in training: each element kept with probability `1 − prob` and scaled by
    /// `1 / (1 − prob)`, else 0. The kernel draws its masks from the backend's seeded generator,
    /// so that a run stays a function of its seed.
    Dropout {
        /// The input.
        input: P,
        /// The probability of zeroing an element, in `(0, 1)`.
        prob: f64,
    },
}

impl<P> FusedOp<P> {
    /// The operation's input.
    pub fn input(&self) -> &P {
        match self {
            Self::Softmax(input) | Self::Gelu { input, .. } | Self::Dropout { input, .. } => input,
        }
    }

    /// The same operation on `f(input)`.
    pub fn map<Q>(self, f: impl FnOnce(P) -> Q) -> FusedOp<Q> {
        match self {
            Self::Softmax(input) => FusedOp::Softmax(f(input)),
            Self::Gelu { input, approximate } => FusedOp::Gelu { input: f(input), approximate },
            Self::Dropout { input, prob } => FusedOp::Dropout { input: f(input), prob },
        }
    }

    fn into_input(self) -> P {
        match self {
            Self::Softmax(input) | Self::Gelu { input, .. } | Self::Dropout { input, .. } => input,
        }
    }
}

/// A [`FusedOp`] on its way to a kernel: the kernel takes `op` when it handles it (dtype, shape,
/// operation) and leaves the result in `output`; otherwise it leaves `op` for Burn's ops.
#[derive(Debug)]
pub struct FusedCall<P> {
    /// The operation, until a kernel takes it.
    pub op: Option<FusedOp<P>>,
    /// Its result, `[rows, cols]`, with gradients when the primitive is an autodiff one.
    pub output: Option<P>,
}

/// A kernel for [`FusedOp`]s, receiving a [`FusedCall`] of one backend's float primitive behind
/// `dyn Any`.
pub type FusedKernel = super::hook::Kernel;

static FUSED_KERNEL: super::hook::Hook = super::hook::Hook::new();

/// Which operations the installed kernel is handed ([`Kinds`] bits).
static FUSED_KINDS: AtomicU8 = AtomicU8::new(Kinds::ALL.0);

/// A set of [`FusedOp`] kinds: those a kernel takes. The others never reach it (nor the flattening
/// to `[rows, cols]` a kernel's call needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kinds(u8);

impl Kinds {
    /// Softmax only.
    pub const SOFTMAX: Self = Self(1);
    /// GELU only (both forms).
    pub const GELU: Self = Self(2);
    /// Dropout only.
    pub const DROPOUT: Self = Self(4);
    /// Every kind.
    pub const ALL: Self = Self(7);

    fn has(self, kind: Self) -> bool {
        self.0 & kind.0 == kind.0
    }
}

/// Install (or with `None` remove) the kernel the functions of this module try first, for every
/// kind of operation.
pub fn set_fused_kernel(kernel: Option<FusedKernel>) {
    set_fused_kernel_for(kernel, Kinds::ALL);
}

/// Install (or with `None` remove) the kernel the functions of this module try first, for the
/// operations of `kinds`; the others run as Burn's ops.
pub fn set_fused_kernel_for(kernel: Option<FusedKernel>, kinds: Kinds) {
    FUSED_KINDS.store(kinds.0, Ordering::Relaxed);
    FUSED_KERNEL.set(kernel);
}

/// The installed kernel, when it takes operations of `kind`.
fn kernel_for(kind: Kinds) -> Option<FusedKernel> {
    FUSED_KERNEL.get().filter(|_| Kinds(FUSED_KINDS.load(Ordering::Relaxed)).has(kind))
}

/// Whether a fused kernel is installed (for result files).
pub fn fused_kernel_installed() -> bool {
    FUSED_KERNEL.get().is_some()
}

/// `softmax(x, dim)`; through the installed kernel when `dim` is the last axis.
pub fn softmax<B: Backend, const D: usize>(x: Tensor<B, D>, dim: usize) -> Tensor<B, D> {
    if dim + 1 != D {
        return activation::softmax(x, dim);
    }
    fused(x, Kinds::SOFTMAX, FusedOp::Softmax, |x| activation::softmax(x, D - 1))
}

/// Exact GELU (`gelu`), through the installed kernel when there is one.
pub fn gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    fused(x, Kinds::GELU, |input| FusedOp::Gelu { input, approximate: false }, activation::gelu)
}

/// GELU's tanh approximation (`gelu_new`), through the installed kernel when there is one.
pub fn gelu_tanh<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    fused(x, Kinds::GELU, |input| FusedOp::Gelu { input, approximate: true }, activation::gelu_approximate)
}

/// `dropout.forward(x)`: the identity outside training (no autodiff) or at probability 0, else
/// through the installed kernel when there is one.
pub fn dropout<B: Backend, const D: usize>(dropout: &Dropout, x: Tensor<B, D>) -> Tensor<B, D> {
    if !drops::<B>(dropout, &x.device()) {
        return x;
    }
    let prob = dropout.prob;
    fused(x, Kinds::DROPOUT, |input| FusedOp::Dropout { input, prob }, |x| dropout.forward(x))
}

/// Whether `dropout` changes anything on `device`: in training (autodiff) at a probability above
/// 0, as Burn's `Dropout::forward` decides.
pub(super) fn drops<B: Backend>(dropout: &Dropout, device: &B::Device) -> bool {
    B::ad_enabled(device) && dropout.prob != 0.0
}

/// The dropout seed stream: the seed it was last given and how many seeds were drawn since.
static SEEDS: Mutex<(u64, u64)> = Mutex::new((0, 0));

/// Restart the stream of [`dropout_seed`] from `seed` (the trainer calls it where it calls Burn's
/// `Backend::seed`, with the same seed).
pub fn seed(seed: u64) {
    *SEEDS.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = (seed, 0);
}

/// The next seed of the stream [`seed`] started (from 0 when never seeded): for dropout kernels
/// that draw their masks from a seed chosen on the host.
pub fn dropout_seed() -> u64 {
    let mut seeds = SEEDS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let (seed, drawn) = *seeds;
    seeds.1 = drawn + 1;
    mask_hash(mask_hash(seed, u64::MAX), drawn)
}

/// A 64-bit hash of `index` under `seed` (SplitMix64's finaliser of `seed + index·φ`): the
/// counter-based generator of the dropout masks.
#[inline(always)]
pub fn mask_hash(seed: u64, index: u64) -> u64 {
    let mut z = seed.wrapping_add(index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One dropout call's mask: its seed, the keep threshold of 2²⁴ ([`dropout_keeps`]) and the
/// scale of kept elements — what a forward kernel draws by and its backward draws again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DropoutMask {
    /// The seed of [`dropout_keeps`].
    pub seed: u64,
    /// Elements whose draw is below this (of 2²⁴) are kept.
    pub threshold: u32,
    /// The factor of kept elements, `1 / (1 − prob)`.
    pub scale: f32,
}

impl DropoutMask {
    /// The mask of dropout at `prob` under `seed`.
    pub fn new(seed: u64, prob: f64) -> Self {
        let keep = 1.0 - prob;
        Self { seed, threshold: (keep * (1u64 << 24) as f64).round() as u32, scale: (1.0 / keep) as f32 }
    }

    /// Whether element `index` (row-major) is kept.
    #[inline(always)]
    pub fn keeps(&self, index: u64) -> bool {
        dropout_keeps(self.seed, index, self.threshold)
    }

    /// Element `index`, `x`, after dropout: `x · scale` where kept, else 0.
    #[inline(always)]
    pub fn apply(&self, index: u64, x: f32) -> f32 {
        if self.keeps(index) { x * self.scale } else { 0.0 }
    }
}

/// Whether dropout under `seed` keeps element `index` (row-major) at `threshold`: the 24 high
/// bits of the element's 32-bit half of `mask_hash(seed, index / 2)` (the low half for even
/// indices) are below it. Every dropout kernel of prunelab draws by this rule; an element's draw
/// depends on nothing else, so any split of the elements over threads draws the same mask.
#[inline(always)]
pub fn dropout_keeps(seed: u64, index: u64, threshold: u32) -> bool {
    ((mask_hash(seed, index >> 1) >> (32 * (index & 1))) as u32 >> 8) < threshold
}

/// `op` of `x` (flattened to `[rows, last axis]`) through the installed kernel when it takes
/// `kind`, or `burn(x)`.
fn fused<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    kind: Kinds,
    op: impl FnOnce(B::FloatTensorPrimitive) -> FusedOp<B::FloatTensorPrimitive>,
    burn: impl FnOnce(Tensor<B, D>) -> Tensor<B, D>,
) -> Tensor<B, D> {
    let Some(kernel) = kernel_for(kind) else { return burn(x) };
    let dims = x.dims();
    let cols = dims[D - 1];
    let rows = dims[..D - 1].iter().product::<usize>();
    let input = match super::view::reshape(x, [rows, cols]).into_primitive() {
        TensorPrimitive::Float(input) => input,
        quantized => return burn(Tensor::<B, 2>::from_primitive(quantized).reshape(dims)),
    };
    let mut call = FusedCall { op: Some(op(input)), output: None };
    kernel(&mut call);
    match (call.output, call.op) {
        (Some(out), _) => super::view::reshape(Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(out)), dims),
        (None, Some(op)) => burn(Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(op.into_input())).reshape(dims)),
        (None, None) => unreachable!("a fused kernel took the operation and returned nothing"),
    }
}

#[cfg(test)]
mod tests {
    use std::any::Any;
    use std::sync::atomic::AtomicUsize;

    use burn::backend::NdArray;

    use super::*;

    /// Calls of each kind [`counting_kernel`] was handed for inputs 13 wide (other tests running
    /// meanwhile never use that width): softmax, GELU, dropout.
    static HANDED: [AtomicUsize; 3] = [AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0)];

    /// Counts what it is handed and takes nothing (Burn's ops run).
    fn counting_kernel(call: &mut dyn Any) {
        let Some(call) = call.downcast_mut::<FusedCall<burn::tensor::ops::FloatTensor<NdArray>>>() else { return };
        let Some(op) = &call.op else { return };
        if burn::tensor::TensorMetadata::shape(op.input())[1] != 13 {
            return;
        }
        let kind = match op {
            FusedOp::Softmax(_) => 0,
            FusedOp::Gelu { .. } => 1,
            FusedOp::Dropout { .. } => 2,
        };
        HANDED[kind].fetch_add(1, Ordering::Relaxed);
    }

    #[test]
    fn the_dropout_seed_stream_restarts_from_its_seed() {
        // The only test of this crate that draws from the stream (tests run in parallel).
        seed(5);
        let first: Vec<u64> = (0..3).map(|_| dropout_seed()).collect();
        seed(5);
        let again: Vec<u64> = (0..3).map(|_| dropout_seed()).collect();
        seed(6);
        let other = dropout_seed();
        assert_eq!(first, again);
        assert!(first[0] != first[1] && first[1] != first[2] && other != first[0]);
    }

    #[test]
    fn the_dropout_rule_keeps_about_its_share() {
        let mask = DropoutMask::new(7, 0.1);
        assert_eq!((mask.threshold, mask.scale), (15_099_494, 1.0 / 0.9));
        let kept = (0..100_000u64).filter(|&i| mask.keeps(i)).count();
        assert!((89_500..90_500).contains(&kept), "kept {kept} of 100000 at 0.9");
        let (kept, dropped) = ((0..).find(|&i| mask.keeps(i)).unwrap(), (0..).find(|&i| !mask.keeps(i)).unwrap());
        assert_eq!((mask.apply(kept, 2.0), mask.apply(dropped, 2.0)), (2.0 * mask.scale, 0.0));
        // The two halves of one hash are two draws.
        let pairs = (0..10_000u64).filter(|&i| mask.keeps(2 * i) != mask.keeps(2 * i + 1));
        assert!((1_600..2_000).contains(&pairs.count()));
    }

    #[test]
    fn a_kernel_installed_for_some_kinds_is_handed_only_those() {
        let x = Tensor::<NdArray, 3>::random([2, 3, 13], burn::tensor::Distribution::Default, &Default::default());
        set_fused_kernel_for(Some(counting_kernel), Kinds::SOFTMAX);
        let (soft, gelu_out) = (softmax(x.clone(), 2), gelu(x.clone()));
        set_fused_kernel(None);
        let handed: Vec<usize> = HANDED.iter().map(|n| n.load(Ordering::Relaxed)).collect();
        assert_eq!(handed, [1, 0, 0]);
        // Left by the kernel, both are Burn's ops.
        assert_eq!((soft - activation::softmax(x.clone(), 2)).abs().max().into_scalar(), 0.0);
        assert_eq!((gelu_out - activation::gelu(x)).abs().max().into_scalar(), 0.0);
    }
}
