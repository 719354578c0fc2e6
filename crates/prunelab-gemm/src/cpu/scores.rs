//! The attention scores' scale and mask (`layers::scores`) on Burn's CPU backend: `scores ·
//! scale + mask` in one pass over the cores, into a buffer no thread zeroes first, where
//! burn-ndarray runs two passes on one core. The same arithmetic per element (the product
//! rounded to f32, then the sum), so the same bits as Burn's ops. On `Autodiff<NdArray>` the
//! operation is tracked for the scores (their gradient is the output's times the scale, as
//! Burn's); a mask that needs a gradient of its own is left to Burn's ops.

use std::any::Any;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, TensorMetadata};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn_ndarray::NdArrayTensor;
use ndarray::{ArcArray, IxDyn};
use prunelab_models::layers::scores::{ScoresCall, mask_fits, set_scores_kernel};

use super::{standard, write_rows};

/// Route the attention scores' scale and mask of prunelab's models on `NdArray` (and
/// `Autodiff<NdArray>`) through this module.
pub fn install() {
    set_scores_kernel(Some(kernel));
}

/// Takes calls for the scale and mask alone; those asking for the softmax too are left (the
/// layers then hand this kernel the scale and mask, and `cpu::fused` the softmax).
fn kernel(call: &mut dyn Any) {
    if let Some(call) = call.downcast_mut::<ScoresCall<FloatTensor<Autodiff<NdArray>>>>() {
        if call.softmax {
            return;
        }
        let Some((scores, mask)) = call.args.take() else { return };
        if mask.node.requirement.is_none() && fits(&scores.primitive, &mask.primitive) {
            call.output = Some(tracked(scores, mask.primitive, call.scale));
        } else {
            call.args = Some((scores, mask));
        }
    } else if let Some(call) = call.downcast_mut::<ScoresCall<NdArrayTensor>>() {
        if call.softmax {
            return;
        }
        let Some((scores, mask)) = call.args.take() else { return };
        if fits(&scores, &mask) {
            call.output = Some(forward(scores, mask, call.scale));
        } else {
            call.args = Some((scores, mask));
        }
    }
}

/// Whether the kernel takes these: both f32, shapes as `scores::mask_fits` says.
fn fits(scores: &NdArrayTensor, mask: &NdArrayTensor) -> bool {
    scores.dtype() == DType::F32 && mask.dtype() == DType::F32 && mask_fits(&scores.shape(), &mask.shape())
}

/// The operation on `Autodiff<NdArray>`: the forward pass, and a backward one for the scores
/// when they are tracked.
fn tracked(scores: FloatTensor<Autodiff<NdArray>>, mask: NdArrayTensor, scale: f64) -> FloatTensor<Autodiff<NdArray>> {
    #[derive(Debug)]
    struct Scores;

    impl Backward<NdArray, 1> for Scores {
        type State = f64;

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            let scale = ops.state;
            unary::<NdArray, _>(ops.parents, ops.node, grads, |grad| scaled(grad, scale));
        }
    }

    let node = scores.node.clone();
    let output = forward(scores.primitive, mask, scale);
    match Scores.prepare::<NoCheckpointing>([node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(scale, output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

/// `scores · scale + mask`, the mask's row for each row of the scores picked by its batch and
/// query (or row 0 where the mask has one), over the cores.
fn forward(scores: NdArrayTensor, mask: NdArrayTensor, scale: f64) -> NdArrayTensor {
    let (scores, mask) = (array(scores), array(mask));
    let dims = scores.shape().to_vec();
    let (heads, queries, keys) = (dims[1], dims[2], dims[3]);
    let (mask_batches, mask_rows) = (mask.shape()[0], mask.shape()[2]);
    let (x, m) = (standard(&scores), standard(&mask));
    // As Burn's `scores * scale`: the scale as the tensor's element type.
    let scale = scale as f32;
    let out = map_rows(&x, keys, |row, out| {
        let (batch, query) = (row / (heads * queries), row % queries);
        let at = (if mask_batches == 1 { 0 } else { batch }) * mask_rows + if mask_rows == 1 { 0 } else { query };
        let (x, m) = (&x[row * keys..][..keys], &m[at * keys..][..keys]);
        for ((o, x), m) in out.iter_mut().zip(x).zip(m) {
            o.write(x * scale + m);
        }
    });
    NdArrayTensor::from(ArcArray::from_shape_vec(IxDyn(&dims), out).expect("the scores' elements"))
}

/// The scores' gradient: the output's times the scale (Burn's `mul_scalar` backward).
fn scaled(grad: NdArrayTensor, scale: f64) -> NdArrayTensor {
    let grad = array(grad);
    let dims = grad.shape().to_vec();
    let g = standard(&grad);
    let scale = scale as f32;
    let cols = dims.last().copied().unwrap_or(1).max(1);
    let out = map_rows(&g, cols, |row, out| {
        for (o, g) in out.iter_mut().zip(&g[row * cols..][..cols]) {
            o.write(g * scale);
        }
    });
    NdArrayTensor::from(ArcArray::from_shape_vec(IxDyn(&dims), out).expect("the gradient's elements"))
}

/// A new buffer of `x.len()` elements, `row(index, out)` writing every element of each
/// `cols`-wide row, the rows split over the threads.
fn map_rows(x: &[f32], cols: usize, row: impl Fn(usize, &mut [std::mem::MaybeUninit<f32>]) + Sync) -> Vec<f32> {
    write_rows(x.len() / cols, cols, |first_row, block| {
        for (r, out) in block.chunks_mut(cols).enumerate() {
            row(first_row + r, out);
        }
    })
}

/// An f32 primitive as an ndarray array (shared, not copied).
fn array(tensor: NdArrayTensor) -> ArcArray<f32, IxDyn> {
    match tensor {
        NdArrayTensor::F32(storage) => storage.into_shared(),
        _ => unreachable!("the kernel takes f32 operands only"),
    }
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;
    use burn::tensor::{Distribution, TensorPrimitive};
    use prunelab_models::layers::scores::scale_and_mask;

    use super::*;

    fn bits<B: Backend>(t: Tensor<B, 4>) -> Vec<u32> {
        t.into_data().to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()
    }

    /// Through the kernel, `scores · scale + mask` is Burn's bit for bit — a padding mask
    /// (`[batch, 1, 1, keys]`), a causal one (`[batch, 1, queries, keys]`) and one shared by the
    /// batch, on rows enough to split over threads — and so is the scores' gradient; a mask that
    /// needs a gradient goes to Burn's ops, which give it one.
    #[test]
    fn scores_are_burns_bit_for_bit_with_gradients() {
        let device = Default::default();
        let normal = Distribution::Normal(0.0, 1.0);
        let scale = 1.0 / 8f64.sqrt();
        for mask_dims in [[3, 1, 1, 40], [3, 1, 33, 40], [1, 1, 33, 40]] {
            let scores = Tensor::<NdArray, 4>::random([3, 12, 33, 40], normal, &device);
            let mask = Tensor::<NdArray, 4>::random(mask_dims, normal, &device);
            let burn = scores.clone() * scale + mask.clone();
            let mut call = ScoresCall {
                args: Some((scores.clone().into_primitive().tensor(), mask.clone().into_primitive().tensor())),
                scale,
                softmax: false,
                dropout: None,
                output: None,
            };
            kernel(&mut call);
            let ours = Tensor::<NdArray, 4>::from_primitive(TensorPrimitive::Float(call.output.expect("taken")));
            assert_eq!(bits(ours), bits(burn), "mask {mask_dims:?}");

            type A = Autodiff<NdArray>;
            let upstream = Tensor::<A, 4>::random([3, 12, 33, 40], normal, &device);
            let grad_of = |through_kernel: bool| {
                let x = Tensor::<A, 4>::from_inner(scores.clone()).require_grad();
                let m = Tensor::<A, 4>::from_inner(mask.clone());
                let y = if through_kernel {
                    install();
                    let y = scale_and_mask(x.clone(), scale, m);
                    set_scores_kernel(None);
                    y
                } else {
                    x.clone() * scale + m
                };
                let out = bits(y.clone().inner());
                let grads = (y * upstream.clone()).sum().backward();
                (out, bits(x.grad(&grads).unwrap()))
            };
            assert_eq!(grad_of(true), grad_of(false), "autodiff, mask {mask_dims:?}");
        }
        let scores = Tensor::<Autodiff<NdArray>, 4>::random([2, 2, 3, 4], normal, &device);
        let mask = Tensor::<Autodiff<NdArray>, 4>::random([2, 1, 1, 4], normal, &device).require_grad();
        let mut call = ScoresCall {
            args: Some((scores.clone().into_primitive().tensor(), mask.into_primitive().tensor())),
            scale,
            softmax: false,
            dropout: None,
            output: None,
        };
        kernel(&mut call);
        assert!(call.output.is_none() && call.args.is_some(), "a mask with a gradient is left to Burn");
        let mask = Tensor::<Autodiff<NdArray>, 4>::random([2, 1, 1, 4], normal, &device);
        let mut call = ScoresCall {
            args: Some((scores.into_primitive().tensor(), mask.into_primitive().tensor())),
            scale,
            softmax: true,
            dropout: None,
            output: None,
        };
        kernel(&mut call);
        assert!(call.output.is_none() && call.args.is_some(), "a call asking for the softmax too is left");
    }
}
