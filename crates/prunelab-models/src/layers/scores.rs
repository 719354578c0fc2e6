//! The attention's scores before their softmax, `scores · scale + mask`, as one operation a
//! backend may run its own way.
//!
//! burn-ndarray runs the product by the scale and the broadcast add of the mask as two passes on
//! one core, each into a fresh buffer: about 5 % of an evaluation on two cores, all of it while
//! the other core waits (`bench/NOTES.md`). A [`ScoresKernel`], installed by the binary for one
//! concrete backend (`prunelab-gemm`'s CPU kernels), takes both in one pass over the cores.
//!
//! [`masked_softmax`] hands the kernel the softmax along the keys too: one pass where the two take
//! two (CUDA's kernel, `prunelab-cublas`, takes it: a launch less a layer, each way). A kernel that
//! leaves it (the CPU's) gets the scale and mask alone, the softmax going to [`super::fused`].
//! [`masked_softmax_dropout`] asks for the attention-probability dropout of training as well (a
//! kernel that takes it draws the mask by [`super::fused::dropout_keeps`] from the next seed of
//! [`super::fused::dropout_seed`], as [`super::fused::dropout`] would).
//!
//! Without a kernel, or for a call it leaves, [`scale_and_mask`] is Burn's `scores * scale + mask`
//! exactly, [`masked_softmax`] that followed by [`super::fused::softmax`], and
//! [`masked_softmax_dropout`] [`masked_softmax`] followed by [`super::fused::dropout`].

use burn::nn::Dropout;
use burn::prelude::*;
use burn::tensor::TensorPrimitive;

/// The operation on its way to a kernel: the kernel takes `args` when it handles them (dtype,
/// shapes, a mask without gradients) and leaves the result (with gradients for `scores`, for an
/// autodiff primitive) in `output`; otherwise it leaves `args` for Burn's ops.
#[derive(Debug)]
pub struct ScoresCall<P> {
    /// The scores `[batch, heads, queries, keys]` and the mask, broadcastable to them, until a
    /// kernel takes them.
    pub args: Option<(P, P)>,
    /// The factor of the scores.
    pub scale: f64,
    /// Whether the call asks for the softmax along the keys of the sum too (a kernel that does
    /// not take softmaxes leaves such calls).
    pub softmax: bool,
    /// The probability of a dropout of the softmax's output the call asks for too (training,
    /// with `softmax`; a kernel that does not take it leaves such calls). A kernel that takes it
    /// draws the mask's seed from `fused::dropout_seed` then, and only then.
    pub dropout: Option<f64>,
    /// `scores · scale + mask` (or its softmax, or that after dropout, when asked), when a kernel
    /// took the arguments.
    pub output: Option<P>,
}

/// Whether `mask` broadcasts onto `scores` as the attention's masks do, the shapes a kernel
/// takes: scores `[batch, heads, queries, keys]`, none empty, and a mask
/// `[batch or 1, 1, queries or 1, keys]` (a padding mask, a causal one, or one the batch shares).
pub fn mask_fits(scores: &[usize], mask: &[usize]) -> bool {
    match (scores, mask) {
        ([batch, heads, queries, keys], [mask_batch, 1, mask_queries, mask_keys]) => {
            [batch, heads, queries, keys].iter().all(|&&d| d > 0)
                && (mask_batch == batch || *mask_batch == 1)
                && (mask_queries == queries || *mask_queries == 1)
                && mask_keys == keys
        }
        _ => false,
    }
}

/// A kernel for [`ScoresCall`]s of one backend's float primitive, behind `dyn Any`.
pub type ScoresKernel = super::hook::Kernel;

static SCORES_KERNEL: super::hook::Hook = super::hook::Hook::new();

/// Install (or with `None` remove) the kernel [`scale_and_mask`] tries first.
pub fn set_scores_kernel(kernel: Option<ScoresKernel>) {
    SCORES_KERNEL.set(kernel);
}

/// `scores * scale + mask`: through the installed kernel when it takes them, else Burn's.
pub fn scale_and_mask<B: Backend>(scores: Tensor<B, 4>, scale: f64, mask: Tensor<B, 4>) -> Tensor<B, 4> {
    through_kernel(scores, scale, mask, false, None).unwrap_or_else(|(scores, mask)| scores * scale + mask)
}

/// `softmax(scores * scale + mask)` along the keys (the last axis): through the installed kernel
/// when it takes the whole, else [`scale_and_mask`] followed by [`super::fused::softmax`].
pub fn masked_softmax<B: Backend>(scores: Tensor<B, 4>, scale: f64, mask: Tensor<B, 4>) -> Tensor<B, 4> {
    through_kernel(scores, scale, mask, true, None)
        .unwrap_or_else(|(scores, mask)| super::fused::softmax(scale_and_mask(scores, scale, mask), 3))
}

/// `dropout.forward(masked_softmax(scores, scale, mask))`, the attention's probabilities in
/// training: through the installed kernel when it takes the whole, else [`masked_softmax`]
/// followed by [`super::fused::dropout`] (which is the identity outside training and at
/// probability 0, where no kernel is asked for the dropout).
pub fn masked_softmax_dropout<B: Backend>(
    scores: Tensor<B, 4>,
    scale: f64,
    mask: Tensor<B, 4>,
    dropout: &Dropout,
) -> Tensor<B, 4> {
    if !super::fused::drops::<B>(dropout, &scores.device()) {
        return masked_softmax(scores, scale, mask);
    }
    through_kernel(scores, scale, mask, true, Some(dropout.prob))
        .unwrap_or_else(|(scores, mask)| super::fused::dropout(dropout, masked_softmax(scores, scale, mask)))
}

/// The call through the installed kernel: its output, or the arguments back where there is no
/// kernel or it left them.
fn through_kernel<B: Backend>(
    scores: Tensor<B, 4>,
    scale: f64,
    mask: Tensor<B, 4>,
    softmax: bool,
    dropout: Option<f64>,
) -> Result<Tensor<B, 4>, (Tensor<B, 4>, Tensor<B, 4>)> {
    let Some(kernel) = SCORES_KERNEL.get() else { return Err((scores, mask)) };
    let (TensorPrimitive::Float(scores), TensorPrimitive::Float(mask)) =
        (scores.into_primitive(), mask.into_primitive())
    else {
        unreachable!("the attention's scores and masks are float tensors, never quantized ones, in prunelab")
    };
    let mut call = ScoresCall { args: Some((scores, mask)), scale, softmax, dropout, output: None };
    kernel(&mut call);
    let rebuild = |p: B::FloatTensorPrimitive| Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(p));
    match (call.output, call.args) {
        (Some(out), _) => Ok(rebuild(out)),
        (None, Some((scores, mask))) => Err((rebuild(scores), rebuild(mask))),
        (None, None) => unreachable!("a scores kernel took the arguments and returned nothing"),
    }
}

#[cfg(test)]
mod tests {
    use std::any::Any;

    use burn::backend::NdArray;
    use burn::tensor::{Distribution, activation};

    use super::*;

    type A = burn::backend::Autodiff<NdArray>;

    /// A scores kernel on NdArray and its autodiff that takes only calls asking for the softmax,
    /// of 13 keys, and returns 1000 everywhere (or the dropout's probability, for a call asking
    /// for the dropout too), so the test sees which path ran; other tests running meanwhile never
    /// use that width.
    fn marking_kernel(call: &mut dyn Any) {
        if let Some(call) = call.downcast_mut::<ScoresCall<burn::tensor::ops::FloatTensor<NdArray>>>() {
            mark::<NdArray>(call);
        } else if let Some(call) = call.downcast_mut::<ScoresCall<burn::tensor::ops::FloatTensor<A>>>() {
            mark::<A>(call);
        }
    }

    fn mark<B: Backend>(call: &mut ScoresCall<B::FloatTensorPrimitive>) {
        let Some((scores, mask)) = call.args.take() else { return };
        let scores = Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(scores));
        if !call.softmax || scores.dims()[3] != 13 {
            call.args = Some((scores.into_primitive().tensor(), mask));
            return;
        }
        let mark = call.dropout.unwrap_or(1000.0);
        call.output = Some((scores.zeros_like() + mark).into_primitive().tensor());
    }

    #[test]
    fn masked_softmax_goes_to_a_kernel_that_takes_it_and_else_is_the_scaled_masked_softmax() {
        let device = Default::default();
        let scale = 0.125;
        let tensors = |keys: usize| {
            let scores = Tensor::<NdArray, 4>::random([2, 3, 5, keys], Distribution::Normal(0.0, 1.0), &device);
            let mask = Tensor::<NdArray, 4>::random([2, 1, 1, keys], Distribution::Uniform(-9.0, 0.0), &device);
            (scores, mask)
        };
        let max_diff = |a: Tensor<NdArray, 4>, b: Tensor<NdArray, 4>| (a - b).abs().max().into_scalar();
        let ((taken, taken_mask), (left, left_mask)) = (tensors(13), tensors(11));
        let dropout = burn::nn::DropoutConfig::new(0.25).init();
        let autodiff = |x: &Tensor<NdArray, 4>| Tensor::<A, 4>::from_inner(x.clone());
        set_scores_kernel(Some(marking_kernel));
        let marked = masked_softmax(taken.clone(), scale, taken_mask.clone());
        let summed = scale_and_mask(taken.clone(), scale, taken_mask.clone());
        let fallback = masked_softmax(left.clone(), scale, left_mask.clone());
        // The dropout goes to the kernel in training (autodiff) alone, and at a probability above 0.
        let dropped = masked_softmax_dropout(autodiff(&taken), scale, autodiff(&taken_mask), &dropout);
        let evaluated = masked_softmax_dropout(taken.clone(), scale, taken_mask.clone(), &dropout);
        let zero = burn::nn::DropoutConfig::new(0.0).init();
        let kept = masked_softmax_dropout(autodiff(&taken), scale, autodiff(&taken_mask), &zero);
        let dropped_left = masked_softmax_dropout(autodiff(&left), scale, autodiff(&left_mask), &dropout);
        set_scores_kernel(None);
        assert_eq!(dropped.into_data().to_vec::<f32>().unwrap(), vec![0.25; 2 * 3 * 5 * 13]);
        assert_eq!(evaluated.into_data().to_vec::<f32>().unwrap(), vec![1000.0; 2 * 3 * 5 * 13]);
        assert_eq!(kept.into_data().to_vec::<f32>().unwrap(), vec![1000.0; 2 * 3 * 5 * 13]);
        // What the kernel leaves is the softmax, then the dropout: each element 0 or the
        // softmax's / 0.75 (no kernel drops it here: Burn's dropout, at 0.25).
        let softmax =
            activation::softmax(left.clone() * scale + left_mask.clone(), 3).into_data().to_vec::<f32>().unwrap();
        let dropped_left = dropped_left.into_data().to_vec::<f32>().unwrap();
        let zeros = dropped_left.iter().filter(|&&v| v == 0.0).count();
        assert!((33..=132).contains(&zeros), "{zeros} of 330 dropped at 0.25");
        for (d, p) in dropped_left.iter().zip(&softmax) {
            assert!(*d == 0.0 || (d - p / 0.75).abs() <= 1e-6 * (p / 0.75), "{d} against {p} / 0.75");
        }
        let plain = masked_softmax(taken.clone(), scale, taken_mask.clone());
        assert_eq!(marked.into_data().to_vec::<f32>().unwrap(), vec![1000.0; 2 * 3 * 5 * 13]);
        // What the kernel leaves, and everything without one, is Burn's.
        assert_eq!(max_diff(summed, taken.clone() * scale + taken_mask.clone()), 0.0);
        assert!(max_diff(fallback, activation::softmax(left * scale + left_mask, 3)) < 1e-6);
        assert!(max_diff(plain, activation::softmax(taken * scale + taken_mask, 3)) < 1e-6);
    }

    #[test]
    fn masks_fit_as_the_attention_broadcasts_them() {
        let scores = [2, 12, 7, 9];
        for mask in [[2, 1, 1, 9], [2, 1, 7, 9], [1, 1, 7, 9], [1, 1, 1, 9]] {
            assert!(mask_fits(&scores, &mask), "{mask:?}");
        }
        for mask in [[3, 1, 1, 9], [2, 12, 7, 9], [2, 1, 6, 9], [2, 1, 1, 8]] {
            assert!(!mask_fits(&scores, &mask), "{mask:?}");
        }
        assert!(!mask_fits(&[2, 12, 0, 9], &[2, 1, 1, 9]), "empty scores");
        assert!(!mask_fits(&[2, 12, 9], &[2, 1, 9]), "rank 3");
    }
}
