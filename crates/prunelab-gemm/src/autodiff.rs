//! A projection product as its own tracked operation of Burn's autodiff, whose forward and both
//! gradients are products of a [`GemmFn`].

use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn_autodiff::NodeId;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::CheckpointStrategy;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind, binary};

/// `op(a) · op(b)` of two 2-D f32 tensors of a backend, `op` transposing when its flag is set:
/// a new `[rows of op(a), cols of op(b)]` tensor.
pub type GemmFn<B> = fn(FloatTensor<B>, bool, FloatTensor<B>, bool) -> FloatTensor<B>;

/// `lhs · rhs` on `Autodiff<B>`: forward and both gradients through `gemm`, the gradients as
/// `torch.nn.Linear` computes them (`d lhs = g · rhsᵀ`, `d rhs = lhsᵀ · g`), each operand saved
/// only when the other one's gradient needs it.
pub fn product<B: Backend, C: CheckpointStrategy>(
    lhs: FloatTensor<Autodiff<B, C>>,
    rhs: FloatTensor<Autodiff<B, C>>,
    gemm: GemmFn<B>,
) -> FloatTensor<Autodiff<B, C>> {
    #[derive(Debug)]
    struct Product<B: Backend> {
        gemm: GemmFn<B>,
    }

    impl<B: Backend> Backward<B, 2> for Product<B> {
        type State = (Option<NodeId>, Option<NodeId>);

        fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
            let (lhs, rhs) = ops.state;
            let lhs = lhs.map(|id| checkpointer.retrieve_node_output::<FloatTensor<B>>(id));
            let rhs = rhs.map(|id| checkpointer.retrieve_node_output::<FloatTensor<B>>(id));
            let gemm = self.gemm;
            binary::<B, _, _>(
                ops.parents,
                ops.node,
                grads,
                |grad| gemm(grad, false, rhs.expect("rhs saved when lhs is tracked"), true),
                |grad| gemm(lhs.expect("lhs saved when rhs is tracked"), true, grad, false),
            );
        }
    }

    let lhs_tracked = lhs.is_tracked();
    let rhs_tracked = rhs.is_tracked();
    match (Product { gemm }).prepare::<C>([lhs.node.clone(), rhs.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let lhs_state = rhs_tracked.then(|| prep.checkpoint(&lhs));
            let rhs_state = lhs_tracked.then(|| prep.checkpoint(&rhs));
            prep.finish((lhs_state, rhs_state), gemm(lhs.primitive, false, rhs.primitive, false))
        }
        OpsKind::UnTracked(prep) => prep.finish(gemm(lhs.primitive, false, rhs.primitive, false)),
    }
}
