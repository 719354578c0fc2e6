//! Operations of prunelab's own kernels as tracked operations of Burn's autodiff, for every
//! backend that has such kernels (cuBLAS and CUDA kernels in `prunelab-cublas`, the CPU ones in
//! [`crate::cpu`]):
//! - [`product`]: a projection product, whose forward and both gradients are products of a
//!   [`GemmFn`];
//! - [`biased_product`]: a projection product with its bias added in the same pass (a
//!   [`GemmBiasFn`]), whose bias gradient is the output gradient's column sums ([`ColumnSumsFn`]),
//!   computed with the weight's gradient in one pass where the backend can ([`WeightBiasGradsFn`]);
//! - [`layer_norm`]: a LayerNorm, whose forward is a [`NormForwardFn`] and whose backward is a
//!   [`NormBackwardFn`].

use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn_autodiff::NodeId;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::CheckpointStrategy;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind, binary};
use prunelab_models::layers::norm::NormArgs;

/// `op(a) · op(b)` of two 2-D f32 tensors of a backend, `op` transposing when its flag is set:
/// a new `[rows of op(a), cols of op(b)]` tensor.
pub type GemmFn<B> = fn(FloatTensor<B>, bool, FloatTensor<B>, bool) -> FloatTensor<B>;

/// `lhs · rhs` — or with `transposed_rhs`, `lhs · rhsᵀ` — on `Autodiff<B>`: forward and both
/// gradients through `gemm`, the gradients as `torch.nn.Linear` computes them (`d lhs = g · rhsᵀ`,
/// `d rhs = lhsᵀ · g`; transposed, `d lhs = g · rhs` and `d rhs = gᵀ · lhs`, each laid out as its
/// operand is), each operand saved only when the other one's gradient needs it.
pub fn product<B: Backend, C: CheckpointStrategy>(
    lhs: FloatTensor<Autodiff<B, C>>,
    rhs: FloatTensor<Autodiff<B, C>>,
    transposed_rhs: bool,
    gemm: GemmFn<B>,
) -> FloatTensor<Autodiff<B, C>> {
    #[derive(Debug)]
    struct Product<B: Backend> {
        gemm: GemmFn<B>,
        transposed_rhs: bool,
    }

    impl<B: Backend> Backward<B, 2> for Product<B> {
        type State = (Option<NodeId>, Option<NodeId>);

        fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
            let (lhs, rhs) = ops.state;
            let lhs = lhs.map(|id| checkpointer.retrieve_node_output::<FloatTensor<B>>(id));
            let rhs = rhs.map(|id| checkpointer.retrieve_node_output::<FloatTensor<B>>(id));
            let (gemm, transposed) = (self.gemm, self.transposed_rhs);
            binary::<B, _, _>(
                ops.parents,
                ops.node,
                grads,
                |grad| gemm(grad, false, rhs.expect("rhs saved when lhs is tracked"), !transposed),
                |grad| {
                    let lhs = lhs.expect("lhs saved when rhs is tracked");
                    if transposed { gemm(grad, true, lhs, false) } else { gemm(lhs, true, grad, false) }
                },
            );
        }
    }

    let lhs_tracked = lhs.is_tracked();
    let rhs_tracked = rhs.is_tracked();
    let op = Product { gemm, transposed_rhs };
    match op.prepare::<C>([lhs.node.clone(), rhs.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let lhs_state = rhs_tracked.then(|| prep.checkpoint(&lhs));
            let rhs_state = lhs_tracked.then(|| prep.checkpoint(&rhs));
            prep.finish((lhs_state, rhs_state), gemm(lhs.primitive, false, rhs.primitive, transposed_rhs))
        }
        OpsKind::UnTracked(prep) => prep.finish(gemm(lhs.primitive, false, rhs.primitive, transposed_rhs)),
    }
}

/// `a · b + bias` of a 2-D f32 `a`, `b` and a 1-D `bias` (one value per column of the product),
/// the bias added to every row: a new `[rows of a, cols of b]` tensor.
pub type GemmBiasFn<B> = fn(FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>;

/// The sum of each column of a 2-D f32 tensor: a new 1-D tensor (a bias's gradient).
pub type ColumnSumsFn<B> = fn(FloatTensor<B>) -> FloatTensor<B>;

/// A projection's weight and bias gradients from its input `a` (`[rows, in]`) and its output's
/// gradient `g` (`[rows, out]`): `[aᵀ · g, the column sums of g]`, in one pass of the backend.
pub type WeightBiasGradsFn<B> = fn(FloatTensor<B>, FloatTensor<B>) -> [FloatTensor<B>; 2];

/// The kernels of a [`biased_product`].
#[derive(Debug, Clone)]
pub struct BiasedKernels<B: Backend> {
    /// The forward, the bias added in the product's pass.
    pub forward: GemmBiasFn<B>,
    /// The operands' gradients (and the weight's, without `weight_and_bias`).
    pub gemm: GemmFn<B>,
    /// The bias's gradient (without `weight_and_bias`, or when the weight is not tracked).
    pub sums: ColumnSumsFn<B>,
    /// The weight's and the bias's gradients in one pass, where the backend has one; used
    /// when both are tracked.
    pub weight_and_bias: Option<WeightBiasGradsFn<B>>,
}

/// `lhs · rhs + bias` on `Autodiff<B>`: the forward through `kernels.forward`, the operands'
/// gradients as [`product`]'s and the bias's as the column sums of the output's gradient, as
/// `torch.nn.Linear` computes them — the weight's and the bias's in one pass where the backend
/// has `kernels.weight_and_bias`.
pub fn biased_product<B: Backend, C: CheckpointStrategy>(
    lhs: FloatTensor<Autodiff<B, C>>,
    rhs: FloatTensor<Autodiff<B, C>>,
    bias: FloatTensor<Autodiff<B, C>>,
    kernels: BiasedKernels<B>,
) -> FloatTensor<Autodiff<B, C>> {
    #[derive(Debug)]
    struct BiasedProduct<B: Backend> {
        kernels: BiasedKernels<B>,
    }

    impl<B: Backend> Backward<B, 3> for BiasedProduct<B> {
        type State = (Option<NodeId>, Option<NodeId>);

        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
            let (lhs, rhs) = ops.state;
            let lhs = lhs.map(|id| checkpointer.retrieve_node_output::<FloatTensor<B>>(id));
            let rhs = rhs.map(|id| checkpointer.retrieve_node_output::<FloatTensor<B>>(id));
            let [node_lhs, node_rhs, node_bias] = ops.parents;
            let BiasedKernels { gemm, sums, weight_and_bias, .. } = self.kernels;
            let g = grads.consume::<B>(&ops.node);
            if let Some(node) = node_lhs {
                let rhs = rhs.expect("rhs saved when lhs is tracked");
                grads.register::<B>(node.id, gemm(g.clone(), false, rhs, true));
            }
            let lhs = || lhs.expect("lhs saved when rhs is tracked");
            match (node_rhs, node_bias, weight_and_bias) {
                (Some(weight), Some(bias), Some(both)) => {
                    let [d_weight, d_bias] = both(lhs(), g);
                    grads.register::<B>(weight.id, d_weight);
                    grads.register::<B>(bias.id, d_bias);
                }
                (weight, bias, _) => {
                    if let Some(node) = bias {
                        grads.register::<B>(node.id, sums(g.clone()));
                    }
                    if let Some(node) = weight {
                        grads.register::<B>(node.id, gemm(lhs(), true, g, false));
                    }
                }
            }
        }
    }

    let (lhs_tracked, rhs_tracked) = (lhs.is_tracked(), rhs.is_tracked());
    let forward = kernels.forward;
    let nodes = [lhs.node.clone(), rhs.node.clone(), bias.node.clone()];
    match (BiasedProduct { kernels }).prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let lhs_state = rhs_tracked.then(|| prep.checkpoint(&lhs));
            let rhs_state = lhs_tracked.then(|| prep.checkpoint(&rhs));
            prep.finish((lhs_state, rhs_state), forward(lhs.primitive, rhs.primitive, bias.primitive))
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(lhs.primitive, rhs.primitive, bias.primitive)),
    }
}

/// LayerNorm's forward on `[rows, cols]` f32 inputs, a [`NormForwardFn`]'s result.
#[derive(Debug)]
pub struct NormForward<P> {
    /// The norm.
    pub output: P,
    /// Each row's mean (`[rows]`).
    pub mean: P,
    /// Each row's `1 / √(var + ε)` (`[rows]`).
    pub rstd: P,
    /// With a residual and asked to save: `input + residual`, what the backward reads.
    pub sum: Option<P>,
}

/// LayerNorm's forward of `(x, residual, gamma, beta, epsilon, save)`: the norm of `x`, or of
/// `x + residual` where there is a residual, and with `save` (the backward will run) the sum too.
pub type NormForwardFn<B> = fn(
    FloatTensor<B>,
    Option<FloatTensor<B>>,
    FloatTensor<B>,
    FloatTensor<B>,
    f32,
    bool,
) -> NormForward<FloatTensor<B>>;

/// LayerNorm's backward: `[d x, d gamma, d beta]` of `(g, x, gamma, mean, rstd)`, `g` the output's
/// gradient and the others what the forward read or saved (`x` the sum, with a residual).
pub type NormBackwardFn<B> =
    fn(FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) -> [FloatTensor<B>; 3];

/// A LayerNorm on `Autodiff<B>` — of the input plus a residual where there is one: `forward`,
/// and a backward of `backward` for the input (and the residual, whose gradient is the same),
/// the scale and the shift.
pub fn layer_norm<B: Backend, C: CheckpointStrategy>(
    args: NormArgs<FloatTensor<Autodiff<B, C>>>,
    forward: NormForwardFn<B>,
    backward: NormBackwardFn<B>,
) -> FloatTensor<Autodiff<B, C>> {
    let NormArgs { input, residual, gamma, beta, epsilon } = args;
    let run = |save: bool| {
        let residual = residual.as_ref().map(|r| r.primitive.clone());
        forward(
            input.primitive.clone(),
            residual,
            gamma.primitive.clone(),
            beta.primitive.clone(),
            epsilon as f32,
            save,
        )
    };
    let norm = Norm { backward };
    match &residual {
        None => tracked_norm::<B, C, 3>(norm, [&input, &gamma, &beta], run),
        Some(residual) => tracked_norm::<B, C, 4>(norm, [&input, residual, &gamma, &beta], run),
    }
}

/// What the norm's backward reads: its input (the sum, with a residual), the scale, and each
/// row's mean and rstd.
#[derive(Debug, Clone)]
struct NormSaved<B: Backend> {
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    mean: FloatTensor<B>,
    rstd: FloatTensor<B>,
}

/// The norm's tracked operation, of `N` parents: the `N − 2` summed inputs, the scale, the shift.
#[derive(Debug)]
struct Norm<B: Backend> {
    backward: NormBackwardFn<B>,
}

impl<B: Backend, const N: usize> Backward<B, N> for Norm<B> {
    type State = NormSaved<B>;

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = grads.consume::<B>(&ops.node);
        let NormSaved { x, gamma, mean, rstd } = ops.state;
        let [dx, dgamma, dbeta] = (self.backward)(g, x, gamma, mean, rstd);
        let (inputs, parameters) = ops.parents.split_at(N - 2);
        for node in inputs.iter().flatten() {
            grads.register::<B>(node.id, dx.clone());
        }
        for (node, grad) in parameters.iter().zip([dgamma, dbeta]) {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

/// [`Norm`] on `parents` (the summed inputs, the scale, the shift), running the forward
/// (`run(save)`) once it knows whether a backward will read what it saves; without a sum, the
/// backward reads the first parent.
fn tracked_norm<B: Backend, C: CheckpointStrategy, const N: usize>(
    norm: Norm<B>,
    parents: [&FloatTensor<Autodiff<B, C>>; N],
    run: impl FnOnce(bool) -> NormForward<FloatTensor<B>>,
) -> FloatTensor<Autodiff<B, C>> {
    let (x, gamma) = (parents[0].primitive.clone(), parents[N - 2].primitive.clone());
    match norm.prepare::<C>(parents.map(|p| p.node.clone())).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let NormForward { output, mean, rstd, sum } = run(true);
            prep.finish(NormSaved { x: sum.unwrap_or(x), gamma, mean, rstd }, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(run(false).output),
    }
}
