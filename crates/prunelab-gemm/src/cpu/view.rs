//! Reshapes on Burn's CPU backend that share the tensor's memory (`layers::view`): burn-ndarray
//! 0.21 copies on every `reshape`. On `Autodiff<NdArray>` the reshape is its own tracked
//! operation whose backward reshapes the gradient back, without a copy either where the layout
//! allows.

use std::any::Any;
use std::ops::Range;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::Shape;
use burn::tensor::ops::{FloatTensor, FloatTensorOps};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn_ndarray::NdArrayTensor;
use prunelab_models::layers::view::{ReshapeCall, set_reshape_kernel};

/// Route the reshapes of prunelab's models on `NdArray` (and `Autodiff<NdArray>`) through
/// [`shared_reshape`].
pub fn install() {
    set_reshape_kernel(Some(kernel));
}

fn kernel(call: &mut dyn Any) {
    if let Some(call) = call.downcast_mut::<ReshapeCall<FloatTensor<Autodiff<NdArray>>>>() {
        let shape = Shape::from(call.shape.clone());
        call.output = call.input.take().map(|input| tracked(input, shape));
    } else if let Some(call) = call.downcast_mut::<ReshapeCall<NdArrayTensor>>() {
        let shape = Shape::from(call.shape.clone());
        call.output = call.input.take().map(|input| reshape(input, shape));
    }
}

/// `tensor` (its elements `range` of a 1-D one, when given) as `shape`, sharing its memory, when
/// it is a standard-layout f32 array; else the tensor back, untouched.
///
/// # Panics
/// When `shape` (or `range`) does not fit the tensor.
pub fn shared_reshape(
    tensor: NdArrayTensor,
    range: Option<Range<usize>>,
    shape: &[usize],
) -> Result<NdArrayTensor, NdArrayTensor> {
    let NdArrayTensor::F32(storage) = tensor else { return Err(tensor) };
    let mut array = storage.into_shared();
    if !array.is_standard_layout() {
        return Err(NdArrayTensor::from(array));
    }
    if let Some(range) = range {
        array.slice_axis_inplace(ndarray::Axis(0), ndarray::Slice::from(range));
    }
    match array.into_shape_with_order(ndarray::IxDyn(shape)) {
        Ok(array) => Ok(NdArrayTensor::from(array)),
        Err(error) => panic!("a view of {shape:?} that does not fit its tensor: {error}"),
    }
}

/// `tensor` as `shape`: a view where the layout allows, else Burn's copying reshape.
fn reshape(tensor: NdArrayTensor, shape: Shape) -> NdArrayTensor {
    let dims = shape.clone();
    shared_reshape(tensor, None, &dims)
        .unwrap_or_else(|tensor| <NdArray as FloatTensorOps<NdArray>>::float_reshape(tensor, shape))
}

/// The reshape as a tracked operation: the gradient goes back to the input's shape.
fn tracked(input: FloatTensor<Autodiff<NdArray>>, shape: Shape) -> FloatTensor<Autodiff<NdArray>> {
    #[derive(Debug)]
    struct View;

    impl Backward<NdArray, 1> for View {
        type State = Shape;

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            let input_shape = ops.state;
            unary::<NdArray, _>(ops.parents, ops.node, grads, |grad| reshape(grad, input_shape));
        }
    }

    let input_shape = burn::tensor::TensorMetadata::shape(&input.primitive);
    match View.prepare::<NoCheckpointing>([input.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(input_shape, reshape(input.primitive, shape)),
        OpsKind::UnTracked(prep) => prep.finish(reshape(input.primitive, shape)),
    }
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;
    use burn::tensor::Distribution;
    use prunelab_models::layers::view::reshape;

    use super::*;

    /// The first element's address of a CPU tensor's memory.
    fn address(t: &Tensor<NdArray, 2>) -> usize {
        match t.clone().into_primitive().tensor() {
            NdArrayTensor::F32(storage) => storage.into_shared().as_ptr() as usize,
            _ => panic!("an f32 tensor"),
        }
    }

    /// Through the hook, a reshape is Burn's — values, and gradients on `Autodiff<NdArray>` —
    /// in the same memory where the layout allows; a transposed input is still reshaped in its
    /// logical order. (Installing it cannot disturb other tests: a view holds Burn's values.)
    #[test]
    fn reshapes_are_burns_without_a_copy() {
        install();
        let device = Default::default();
        let x = Tensor::<NdArray, 3>::random([2, 3, 4], Distribution::Default, &device);
        let viewed: Tensor<NdArray, 2> = reshape(x.clone(), [6, 4]);
        assert_eq!(viewed.to_data(), x.clone().reshape([6, 4]).to_data());
        let flat: Tensor<NdArray, 2> = reshape(viewed.clone(), [1, 24]);
        assert_eq!(address(&flat), address(&viewed), "a view of the same memory");
        let transposed = x.clone().swap_dims(1, 2);
        let merged: Tensor<NdArray, 2> = reshape(transposed.clone(), [8, 3]);
        assert_eq!(merged.to_data(), transposed.reshape([8, 3]).to_data());

        type A = Autodiff<NdArray>;
        let w = Tensor::<A, 2>::random([4, 5], Distribution::Default, &device);
        let grads = |through_hook: bool| {
            let x = Tensor::<A, 3>::from_data(x.to_data(), &device).require_grad();
            let x2: Tensor<A, 2> = if through_hook { reshape(x.clone(), [6, 4]) } else { x.clone().reshape([6, 4]) };
            let y: Tensor<A, 3> = if through_hook {
                reshape(x2.matmul(w.clone()), [2, 3, 5])
            } else {
                x2.matmul(w.clone()).reshape([2, 3, 5])
            };
            let g = (y.clone() * y).sum().backward();
            x.grad(&g).expect("x has a gradient").to_data()
        };
        assert_eq!(grads(true), grads(false));
    }
}
