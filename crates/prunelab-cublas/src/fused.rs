//! Softmax over the last axis, GELU and dropout (`prunelab_models::layers::fused`'s `FusedOp`s:
//! the attention probabilities, the feed-forward's activation, every dropout in training) on CUDA
//! as kernels of our own (`softmax.cu`, `elementwise.cu`): one launch forward and one backward each.
//!
//! Burn's softmax is a max and a sum reduction with element-wise kernels between them, and its
//! autodiff as many again (on an H100, MiniLM's evaluation spent 0.34 ms a batch in the reduction
//! pair alone against 0.21 ms for all of torch's softmax: `bench/NOTES.md`). Its GELU is five ops
//! forward and sixteen backward, each planned by Burn on the host, and its exact GELU's backward
//! is the tanh approximation's derivative; here each form has its exact derivative. Its dropout is
//! a Bernoulli draw (a kernel of its own), two products forward and two backward; here the mask is
//! drawn inside the kernel by the layers' rule (`fused::dropout_keeps`, the CPU kernels' too) from
//! a seed of the layers' seed stream (`fused::dropout_seed`, which the trainer seeds), and the
//! backward pass draws it again.
//!
//! - [`FusedKernels`]: forward and backward on a backend: CUDA, and with the `fusion` feature
//!   custom operations of Burn's fusion stream.
//! - On `Autodiff<B>` each is one tracked operation (softmax keeps its output, GELU its input,
//!   dropout its seed). The attention's softmax (`layers::scores`) takes its scores' scale and
//!   mask and, in training, its output's dropout inside the same kernel ([`SCORES_VARIABLE`],
//!   [`ATTENTION_DROPOUT_VARIABLE`]): one launch each way where the dropout took one more.
//! - [`install_fused`] checks them against Burn's ops (and the dropout against the rule, element
//!   by element) on the device, then registers the kernel with
//!   `prunelab_models::layers::fused::set_fused_kernel_for`. [`FUSED_VARIABLE`]`=softmax` keeps
//!   GELU and dropout Burn's (for comparisons).

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Device, Distribution, TensorMetadata, activation};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::{CheckpointStrategy, NoCheckpointing};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_cubecl::cubecl::cuda::CudaRuntime;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, FloatElement, IntElement};
use prunelab_models::layers::fused::{self, DropoutMask, FusedCall, FusedOp, Kinds, set_fused_kernel_for, softmax};
use prunelab_models::layers::scores::{
    ScoresCall, mask_fits, masked_softmax, masked_softmax_dropout, set_scores_kernel,
};

use crate::cublas::{self, CublasError};
use crate::kernels::{self, Arg, Launch, args};

type Cuda = burn::backend::Cuda<f32, i32>;

/// Set to `softmax`, GELU and dropout stay Burn's ops on CUDA (`all`, the default: all three
/// through these kernels).
pub const FUSED_VARIABLE: &str = "PRUNELAB_CUDA_FUSED";

/// Rows per block of the softmax (`SOFTMAX_WARPS` in `softmax.cu`: a warp a row).
const ROWS_PER_BLOCK: usize = 8;
/// Threads per block of the element-wise kernels.
const THREADS: u32 = 256;

/// Softmax's, GELU's and dropout's kernels on a backend, on f32 inputs (softmax along the last
/// axis of `[rows, cols]`; the others element by element).
pub trait FusedKernels: Backend {
    /// `softmax(x)` along each row.
    fn softmax_forward(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `softmax(x · scale + mask)` along the last axis of the attention's scores `x`
    /// (`[batch, heads, queries, keys]`; `mask` as `scores::mask_fits` takes it).
    fn masked_softmax_forward(x: FloatTensor<Self>, mask: FloatTensor<Self>, scale: f32) -> FloatTensor<Self>;

    /// The input's gradient, times `scale`, from the output's gradient `g` and the output `y`
    /// (of a softmax: scale 1; of a masked one: its scale).
    fn softmax_backward(g: FloatTensor<Self>, y: FloatTensor<Self>, scale: f32) -> FloatTensor<Self>;

    /// [`Self::masked_softmax_forward`]'s output `y` (for the backward pass) and `y` after
    /// `dropout` (the attention's probabilities in training), in one launch.
    fn masked_softmax_dropout_forward(
        x: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        scale: f32,
        dropout: DropoutMask,
    ) -> [FloatTensor<Self>; 2];

    /// The scores' gradient, times `scale`, from the gradient `g` of the dropped output and the
    /// softmax's output `y`: the dropout's backward and the softmax's in one launch.
    fn softmax_dropout_backward(
        g: FloatTensor<Self>,
        y: FloatTensor<Self>,
        scale: f32,
        dropout: DropoutMask,
    ) -> FloatTensor<Self>;

    /// GELU of `x`, exact or (`approximate`) with the tanh approximation.
    fn gelu_output(x: FloatTensor<Self>, approximate: bool) -> FloatTensor<Self>;

    /// The input's gradient from the output's gradient `g` and the input `x`.
    fn gelu_input_grad(g: FloatTensor<Self>, x: FloatTensor<Self>, approximate: bool) -> FloatTensor<Self>;

    /// `x` with the elements `mask` drops set to 0 and the others scaled (also the backward pass,
    /// on the output's gradient).
    fn dropout(x: FloatTensor<Self>, mask: DropoutMask) -> FloatTensor<Self>;
}

impl<F: FloatElement, I: IntElement, BT: BoolElement> FusedKernels for CubeBackend<CudaRuntime, F, I, BT> {
    fn softmax_forward(x: CubeTensor<CudaRuntime>) -> CubeTensor<CudaRuntime> {
        let x = cublas::contiguous(x);
        let y = like(&x);
        launch_rows("softmax_forward", [&x, &y], 1, []);
        y
    }

    fn masked_softmax_forward(
        x: CubeTensor<CudaRuntime>,
        mask: CubeTensor<CudaRuntime>,
        scale: f32,
    ) -> CubeTensor<CudaRuntime> {
        let (x, mask) = (cublas::contiguous(x), cublas::contiguous(mask));
        let y = like(&x);
        launch_rows("softmax_masked_forward", [&x, &mask, &y], 1, mask_scalars(&x, &mask, scale));
        y
    }

    fn softmax_backward(g: CubeTensor<CudaRuntime>, y: CubeTensor<CudaRuntime>, scale: f32) -> CubeTensor<CudaRuntime> {
        let (g, y) = (cublas::contiguous(g), cublas::contiguous(y));
        let dx = like(&y);
        launch_rows("softmax_backward", [&g, &y, &dx], 1, [Arg::F32(scale)]);
        dx
    }

    fn masked_softmax_dropout_forward(
        x: CubeTensor<CudaRuntime>,
        mask: CubeTensor<CudaRuntime>,
        scale: f32,
        dropout: DropoutMask,
    ) -> [CubeTensor<CudaRuntime>; 2] {
        let (x, mask) = (cublas::contiguous(x), cublas::contiguous(mask));
        let (y, dropped) = (like(&x), like(&x));
        let scalars = mask_scalars(&x, &mask, scale).into_iter().chain(dropout_scalars(dropout));
        launch_rows("softmax_masked_dropout_forward", [&x, &mask, &y, &dropped], 2, scalars);
        [y, dropped]
    }

    fn softmax_dropout_backward(
        g: CubeTensor<CudaRuntime>,
        y: CubeTensor<CudaRuntime>,
        scale: f32,
        dropout: DropoutMask,
    ) -> CubeTensor<CudaRuntime> {
        let (g, y) = (cublas::contiguous(g), cublas::contiguous(y));
        let dx = like(&y);
        let scalars = std::iter::once(Arg::F32(scale)).chain(dropout_scalars(dropout));
        launch_rows("softmax_dropout_backward", [&g, &y, &dx], 1, scalars);
        dx
    }

    fn gelu_output(x: CubeTensor<CudaRuntime>, approximate: bool) -> CubeTensor<CudaRuntime> {
        let x = cublas::contiguous(x);
        let y = like(&x);
        launch_elements("gelu_forward", [&x, &y], 1, [Arg::I32(approximate.into())]);
        y
    }

    fn gelu_input_grad(
        g: CubeTensor<CudaRuntime>,
        x: CubeTensor<CudaRuntime>,
        approximate: bool,
    ) -> CubeTensor<CudaRuntime> {
        let (g, x) = (cublas::contiguous(g), cublas::contiguous(x));
        let dx = like(&x);
        launch_elements("gelu_backward", [&g, &x, &dx], 1, [Arg::I32(approximate.into())]);
        dx
    }

    fn dropout(x: CubeTensor<CudaRuntime>, mask: DropoutMask) -> CubeTensor<CudaRuntime> {
        let x = cublas::contiguous(x);
        let y = like(&x);
        launch_elements("dropout", [&x, &y], 2, dropout_scalars(mask));
        y
    }
}

/// The masked softmax's arguments after the rows and columns: the rows a batch has, the
/// queries, how far the mask's rows move a batch and a query (0 where the mask has one), and the
/// scale (`softmax_masked_forward` in `softmax.cu`).
fn mask_scalars(x: &CubeTensor<CudaRuntime>, mask: &CubeTensor<CudaRuntime>, scale: f32) -> [Arg; 5] {
    let ([_, heads, queries, _], [mask_batches, _, mask_queries, _]) =
        (x.meta.shape().dims::<4>(), mask.meta.shape().dims::<4>());
    let mask_batch = if mask_batches == 1 { 0 } else { mask_queries };
    let mask_query = usize::from(mask_queries != 1);
    let int = |v: usize| Arg::I32(i32::try_from(v).expect("checked by the kernel hook"));
    [int(heads * queries), int(queries), int(mask_batch), int(mask_query), Arg::F32(scale)]
}

/// A dropout mask as the kernels take it: seed, threshold (an unsigned int), scale.
fn dropout_scalars(mask: DropoutMask) -> [Arg; 3] {
    [Arg::U64(mask.seed), Arg::I32(mask.threshold as i32), Arg::F32(mask.scale)]
}

/// A new contiguous f32 tensor of `x`'s shape on its device.
fn like(x: &CubeTensor<CudaRuntime>) -> CubeTensor<CudaRuntime> {
    empty_device_contiguous_dtype(x.client.clone(), x.device.clone(), x.meta.shape().clone(), DType::F32)
}

/// `kernel` over the rows of `tensors` (inputs, then `outputs` outputs; rows along the last axis
/// of the first, `cols` wide), taking the inputs, the rows and columns, `scalars` and the outputs.
fn launch_rows<const N: usize>(
    kernel: &'static str,
    tensors: [&CubeTensor<CudaRuntime>; N],
    outputs: usize,
    scalars: impl IntoIterator<Item = Arg>,
) {
    let shape = tensors[0].meta.shape();
    let cols = shape[shape.num_dims() - 1];
    let rows = shape.num_elements() / cols;
    let [rows_, cols_] = [rows, cols].map(|v| Arg::I32(i32::try_from(v).expect("checked by the kernel hook")));
    let mut arguments = args(&(0..N - outputs).collect::<Vec<_>>(), [rows_, cols_].into_iter().chain(scalars));
    arguments.extend((N - outputs..N).map(Arg::Buffer));
    let grid = (rows.div_ceil(ROWS_PER_BLOCK) as u32, 1, 1);
    submit(tensors, Launch { kernel, grid, block: (32 * ROWS_PER_BLOCK as u32, 1, 1), args: arguments });
}

/// `kernel` over the elements of `tensors` (inputs, then the output; all of one shape), taking
/// the inputs, the element count, `scalars` and the output, one thread per `per_thread` elements.
fn launch_elements<const N: usize>(
    kernel: &'static str,
    tensors: [&CubeTensor<CudaRuntime>; N],
    per_thread: usize,
    scalars: impl IntoIterator<Item = Arg>,
) {
    let n = tensors[0].meta.shape().num_elements();
    let count = Arg::I32(i32::try_from(n).expect("checked by the kernel hook"));
    let mut arguments = args(&(0..N - 1).collect::<Vec<_>>(), std::iter::once(count).chain(scalars));
    arguments.push(Arg::Buffer(N - 1));
    let grid = (n.div_ceil(per_thread).div_ceil(THREADS as usize) as u32, 1, 1);
    submit(tensors, Launch { kernel, grid, block: (THREADS, 1, 1), args: arguments });
}

/// `launch` on CubeCL's stream, with `tensors` (contiguous) as its buffers.
fn submit<const N: usize>(tensors: [&CubeTensor<CudaRuntime>; N], launch: Launch) {
    let bytes = |t: &CubeTensor<CudaRuntime>| t.meta.shape().num_elements() * std::mem::size_of::<f32>();
    let buffers = tensors.map(|t| (t.handle.clone().binding(), bytes(t))).to_vec();
    kernels::submit(tensors[0].device.index, buffers, vec![launch]);
}

#[cfg(feature = "fusion")]
impl<B: burn_fusion::FusionBackend + FusedKernels> FusedKernels for burn_fusion::Fusion<B> {
    fn softmax_forward(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let shape = x.shape.clone();
        let [y] =
            crate::fusion::register::<B, 1, 1>("prunelab_softmax_forward", [x], [shape], |[x]| [B::softmax_forward(x)]);
        y
    }

    fn masked_softmax_forward(x: FloatTensor<Self>, mask: FloatTensor<Self>, scale: f32) -> FloatTensor<Self> {
        let shape = x.shape.clone();
        let [y] = crate::fusion::register::<B, 2, 1>(
            "prunelab_masked_softmax_forward",
            [x, mask],
            [shape],
            move |[x, mask]| [B::masked_softmax_forward(x, mask, scale)],
        );
        y
    }

    fn softmax_backward(g: FloatTensor<Self>, y: FloatTensor<Self>, scale: f32) -> FloatTensor<Self> {
        let shape = y.shape.clone();
        let [dx] = crate::fusion::register::<B, 2, 1>("prunelab_softmax_backward", [g, y], [shape], move |[g, y]| {
            [B::softmax_backward(g, y, scale)]
        });
        dx
    }

    fn masked_softmax_dropout_forward(
        x: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        scale: f32,
        dropout: DropoutMask,
    ) -> [FloatTensor<Self>; 2] {
        let shapes = [x.shape.clone(), x.shape.clone()];
        crate::fusion::register::<B, 2, 2>(
            "prunelab_masked_softmax_dropout_forward",
            [x, mask],
            shapes,
            move |[x, mask]| B::masked_softmax_dropout_forward(x, mask, scale, dropout),
        )
    }

    fn softmax_dropout_backward(
        g: FloatTensor<Self>,
        y: FloatTensor<Self>,
        scale: f32,
        dropout: DropoutMask,
    ) -> FloatTensor<Self> {
        let shape = y.shape.clone();
        let [dx] =
            crate::fusion::register::<B, 2, 1>("prunelab_softmax_dropout_backward", [g, y], [shape], move |[g, y]| {
                [B::softmax_dropout_backward(g, y, scale, dropout)]
            });
        dx
    }

    fn gelu_output(x: FloatTensor<Self>, approximate: bool) -> FloatTensor<Self> {
        let shape = x.shape.clone();
        let id = if approximate { "prunelab_gelu_tanh_forward" } else { "prunelab_gelu_forward" };
        let [y] = crate::fusion::register::<B, 1, 1>(id, [x], [shape], move |[x]| [B::gelu_output(x, approximate)]);
        y
    }

    fn gelu_input_grad(g: FloatTensor<Self>, x: FloatTensor<Self>, approximate: bool) -> FloatTensor<Self> {
        let shape = x.shape.clone();
        let id = if approximate { "prunelab_gelu_tanh_backward" } else { "prunelab_gelu_backward" };
        let [dx] = crate::fusion::register::<B, 2, 1>(id, [g, x], [shape], move |[g, x]| {
            [B::gelu_input_grad(g, x, approximate)]
        });
        dx
    }

    fn dropout(x: FloatTensor<Self>, mask: DropoutMask) -> FloatTensor<Self> {
        let shape = x.shape.clone();
        let [y] =
            crate::fusion::register::<B, 1, 1>("prunelab_dropout", [x], [shape], move |[x]| [B::dropout(x, mask)]);
        y
    }
}

/// What an operation's backward pass needs of its forward one.
#[derive(Debug, Clone)]
enum Saved<B: Backend> {
    /// Softmax's output, and the factor of its input's gradient (1, or a masked softmax's scale).
    Softmax(FloatTensor<B>, f32),
    /// The attention's softmax's output before its dropout, the scale, and the dropout's mask.
    SoftmaxDropout(FloatTensor<B>, f32, DropoutMask),
    /// GELU's input and form.
    Gelu(FloatTensor<B>, bool),
    /// Dropout's mask.
    Dropout(DropoutMask),
}

/// The operation on `Autodiff<B>`: the forward kernel, and a backward of the backward kernel.
fn tracked<B: FusedKernels, C: CheckpointStrategy>(
    op: FusedOp<FloatTensor<Autodiff<B, C>>>,
) -> FloatTensor<Autodiff<B, C>> {
    let prepared = prepare::<B, C>(op.input());
    let (output, saved) = forward::<B>(op.map(|x| x.primitive));
    finish(prepared, output, saved)
}

/// The attention's masked softmax on `Autodiff<B>`, and its dropout at `dropout` when given,
/// tracked for the scores (the mask has no gradient: the kernel hook takes only such masks). The
/// dropout's seed is the next of `fused::dropout_seed`, as `fused::dropout` would have drawn it.
fn tracked_scores<B: FusedKernels, C: CheckpointStrategy>(
    scores: FloatTensor<Autodiff<B, C>>,
    mask: FloatTensor<B>,
    scale: f32,
    dropout: Option<f64>,
) -> FloatTensor<Autodiff<B, C>> {
    let prepared = prepare::<B, C>(&scores);
    match dropout {
        None => {
            let y = B::masked_softmax_forward(scores.primitive, mask, scale);
            finish(prepared, y.clone(), Saved::Softmax(y, scale))
        }
        Some(prob) => {
            let dropout = DropoutMask::new(fused::dropout_seed(), prob);
            let [y, dropped] = B::masked_softmax_dropout_forward(scores.primitive, mask, scale, dropout);
            finish(prepared, dropped, Saved::SoftmaxDropout(y, scale, dropout))
        }
    }
}

/// A kernel's operation in the autodiff graph: its backward pass is the backward kernel of what
/// the forward one saved.
#[derive(Debug)]
struct Fused;

impl<B: FusedKernels> Backward<B, 1> for Fused {
    type State = Saved<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let g = grads.consume::<B>(&ops.node);
        let Some(node) = node else { return };
        let dx = match ops.state {
            Saved::Softmax(y, scale) => B::softmax_backward(g, y, scale),
            Saved::SoftmaxDropout(y, scale, mask) => B::softmax_dropout_backward(g, y, scale, mask),
            Saved::Gelu(x, approximate) => B::gelu_input_grad(g, x, approximate),
            Saved::Dropout(mask) => B::dropout(g, mask),
        };
        grads.register::<B>(node.id, dx);
    }
}

/// The operation on `input`, prepared before its forward kernel runs.
fn prepare<B: FusedKernels, C: CheckpointStrategy>(
    input: &FloatTensor<Autodiff<B, C>>,
) -> OpsKind<Fused, B, Saved<B>, C, 1> {
    Fused.prepare::<C>([input.node.clone()]).compute_bound().stateful()
}

/// `output` as the prepared operation's result, with what its backward pass needs when tracked.
fn finish<B: FusedKernels, C: CheckpointStrategy>(
    prepared: OpsKind<Fused, B, Saved<B>, C, 1>,
    output: FloatTensor<B>,
    saved: Saved<B>,
) -> FloatTensor<Autodiff<B, C>> {
    match prepared {
        OpsKind::Tracked(prep) => prep.finish(saved, output),
        OpsKind::UnTracked(prep) => prep.finish(output),
    }
}

/// The forward kernel of `op`, and what its backward pass needs.
fn forward<B: FusedKernels>(op: FusedOp<FloatTensor<B>>) -> (FloatTensor<B>, Saved<B>) {
    match op {
        FusedOp::Softmax(x) => {
            let y = B::softmax_forward(x);
            (y.clone(), Saved::Softmax(y, 1.0))
        }
        FusedOp::Gelu { input, approximate } => {
            (B::gelu_output(input.clone(), approximate), Saved::Gelu(input, approximate))
        }
        FusedOp::Dropout { input, prob } => {
            let mask = DropoutMask::new(fused::dropout_seed(), prob);
            (B::dropout(input, mask), Saved::Dropout(mask))
        }
    }
}

/// Compile the kernels and hand softmaxes (and, unless [`FUSED_VARIABLE`]`=softmax`, GELUs and
/// dropouts) on `burn::backend::Cuda` (plain or fused, and its `Autodiff`) to them, after
/// checking them against Burn's ops on `device`. Needs CubeCL's stream (learnt here if not yet)
/// and libnvrtc; without either, or when a check differs, nothing is installed and the error says
/// why.
pub fn install_fused(device: &Device<Cuda>) -> Result<(), CublasError> {
    let kinds = kinds()?;
    let set: fn(Option<prunelab_models::layers::hook::Kernel>) = if kinds == Kinds::SOFTMAX {
        |kernel| set_fused_kernel_for(kernel, Kinds::SOFTMAX)
    } else {
        |kernel| set_fused_kernel_for(kernel, Kinds::ALL)
    };
    kernels::install_hook(device, set, kernel, check)?;
    let what = if kinds == Kinds::SOFTMAX { "softmax" } else { "softmax, GELU and dropout" };
    tracing::info!("{what} as prunelab CUDA kernels on CubeCL's stream");
    if scores_inside()? {
        DROPOUT_INSIDE.store(kinds == Kinds::ALL && dropout_inside()?, Ordering::Relaxed);
        let mut installed = kernels::install_hook(device, set_scores_kernel, scores_kernel, check_scores);
        if let Err(why) = &installed
            && DROPOUT_INSIDE.swap(false, Ordering::Relaxed)
        {
            tracing::warn!("the attention's dropout stays a kernel of its own after its softmax: {why}");
            installed = kernels::install_hook(device, set_scores_kernel, scores_kernel, check_scores);
        }
        match installed {
            Ok(()) if DROPOUT_INSIDE.load(Ordering::Relaxed) => {
                tracing::info!("the attention's scale, mask and training's dropout inside its softmax kernel")
            }
            Ok(()) => tracing::info!("the attention's scale and mask inside its softmax kernel"),
            Err(why) => tracing::warn!("the attention's scale and mask stay Burn's ops before its softmax: {why}"),
        }
    }
    Ok(())
}

/// Set to `apart`, the attention's dropout in training stays a kernel of its own after the
/// softmax's; unset, the softmax's kernel drops its output itself (`softmax_masked_dropout_forward`,
/// and one backward kernel for both), when the scores go to it and dropout to these kernels.
pub const ATTENTION_DROPOUT_VARIABLE: &str = "PRUNELAB_CUDA_ATTENTION_DROPOUT";

/// Whether the scores kernel takes calls asking for the dropout too (decided at installation).
static DROPOUT_INSIDE: AtomicBool = AtomicBool::new(false);

/// Whether [`ATTENTION_DROPOUT_VARIABLE`] lets the softmax kernel drop its output.
fn dropout_inside() -> Result<bool, CublasError> {
    crate::install::on_unless(
        ATTENTION_DROPOUT_VARIABLE,
        "apart",
        "the attention's dropout as a kernel of its own after the softmax; unset, inside its kernel",
    )
}

/// Set to `apart`, the attention's scores are scaled and masked by Burn's ops before the softmax
/// kernel; unset, inside it (`softmax_masked_forward`: to compare the two with one build).
pub const SCORES_VARIABLE: &str = "PRUNELAB_CUDA_SCORES";

/// Whether [`SCORES_VARIABLE`] lets the softmax kernel scale and mask the scores.
fn scores_inside() -> Result<bool, CublasError> {
    crate::install::on_unless(
        SCORES_VARIABLE,
        "apart",
        "the scale and mask as Burn's ops before the softmax; unset, inside its kernel",
    )
}

/// The kernel handed to `set_scores_kernel`: takes the calls asking for the softmax too, of f32
/// scores of `Cuda` and `Autodiff<Cuda>` with fewer than 2³¹ elements, with a mask that
/// `scores::mask_fits` takes (and, under autodiff, that needs no gradient); those asking for the
/// dropout too under autodiff alone, where [`DROPOUT_INSIDE`].
fn scores_kernel(call: &mut dyn Any) {
    if let Some(call) = call.downcast_mut::<ScoresCall<FloatTensor<Autodiff<Cuda>>>>() {
        let scale = call.scale as f32;
        take_scores_if_fits(
            call,
            |mask| mask.node.requirement.is_none(),
            |scores, mask, dropout| tracked_scores::<Cuda, NoCheckpointing>(scores, mask.primitive, scale, dropout),
        );
    } else if let Some(call) = call.downcast_mut::<ScoresCall<FloatTensor<Cuda>>>() {
        // The layers ask for a dropout under autodiff alone: a call asking for one here is left.
        if call.dropout.is_none() {
            let scale = call.scale as f32;
            take_scores_if_fits(call, |_| true, |scores, mask, _| Cuda::masked_softmax_forward(scores, mask, scale));
        }
    }
}

/// Takes `call` (through `run`, with the dropout it asks for) when it asks for the softmax, its
/// tensors fit the kernels and its mask is `constant`; and, when it asks for a dropout, only where
/// [`DROPOUT_INSIDE`].
fn take_scores_if_fits<P: TensorMetadata>(
    call: &mut ScoresCall<P>,
    constant: impl Fn(&P) -> bool,
    run: impl FnOnce(P, P, Option<f64>) -> P,
) {
    let fits = |scores: &P, mask: &P| {
        let count = scores.shape().num_elements();
        scores.dtype() == DType::F32
            && mask.dtype() == DType::F32
            && count <= i32::MAX as usize
            && mask_fits(&scores.shape(), &mask.shape())
            && constant(mask)
    };
    let dropout_taken = call.dropout.is_none() || DROPOUT_INSIDE.load(Ordering::Relaxed);
    if call.softmax && dropout_taken && call.args.as_ref().is_some_and(|(scores, mask)| fits(scores, mask)) {
        let (scores, mask) = call.args.take().expect("checked above");
        call.output = Some(run(scores, mask, call.dropout));
    }
}

/// The kinds [`FUSED_VARIABLE`] asks for.
fn kinds() -> Result<Kinds, CublasError> {
    match std::env::var(FUSED_VARIABLE).as_deref() {
        Err(_) | Ok("all") => Ok(Kinds::ALL),
        Ok("softmax") => Ok(Kinds::SOFTMAX),
        Ok(other) => Err(CublasError::Unavailable(format!(
            "{FUSED_VARIABLE}={other}: it takes `all` (softmax, GELU and dropout, the default) or `softmax`"
        ))),
    }
}

/// The kernel handed to `set_fused_kernel_for`: takes the operations on non-empty 2-D f32 inputs
/// of `Cuda` and `Autodiff<Cuda>` with fewer than 2³¹ elements.
fn kernel(call: &mut dyn Any) {
    if let Some(call) = call.downcast_mut::<FusedCall<FloatTensor<Autodiff<Cuda>>>>() {
        take_if_fits(call, tracked::<Cuda, NoCheckpointing>);
    } else if let Some(call) = call.downcast_mut::<FusedCall<FloatTensor<Cuda>>>() {
        take_if_fits(call, |op| forward::<Cuda>(op).0);
    }
}

fn take_if_fits<P: TensorMetadata>(call: &mut FusedCall<P>, run: impl FnOnce(FusedOp<P>) -> P) {
    let fits = |x: &P| {
        let shape = x.shape();
        shape.num_dims() == 2
            && shape.num_elements() > 0
            && shape.num_elements() <= i32::MAX as usize
            && x.dtype() == DType::F32
    };
    if call.op.as_ref().is_some_and(|op| fits(op.input())) {
        let op = call.op.take().expect("checked above");
        call.output = Some(run(op));
    }
}

/// Relative error above which a check fails.
const TOLERANCE: f64 = 1e-5;

/// The installed kernels against Burn's ops through the hook, outputs and gradients within 1e-5
/// of the largest magnitude: softmaxes of random scores of a few widths (a quarter of the columns
/// masked as the attention masks them, `f32::MIN` added, and one row masked whole) and, when
/// installed, GELUs (both forms; the gradients against the exact derivatives in f64, as Burn's
/// exact GELU has the approximation's) and dropout (its mask element by element against the
/// layers' rule, both passes).
fn check(device: &Device<Cuda>) -> Result<(), CublasError> {
    for (rows, cols) in [(67, 128), (5, 1000), (130, 37)] {
        check_softmax(device, rows, cols)?;
    }
    if kinds()? == Kinds::ALL {
        for approximate in [false, true] {
            check_gelu(device, approximate)?;
        }
        check_dropout(device)?;
    }
    Ok(())
}

type A = Autodiff<Cuda>;

/// `op` of `x` through the hook and its input's gradient under `upstream`.
fn through_hook(x: &Tensor<A, 2>, upstream: &Tensor<A, 2>, op: impl Fn(Tensor<A, 2>) -> Tensor<A, 2>) -> [Vec<f32>; 2] {
    let x = x.clone().detach().require_grad();
    let y = op(x.clone());
    let grads = (y.clone() * upstream.clone()).sum().backward();
    [y.inner().into_data(), x.grad(&grads).expect("a gradient").into_data()]
        .map(|data| data.to_vec::<f32>().unwrap_or_default())
}

/// The largest difference between `ours` and `reference`, relative to `reference`'s largest
/// magnitude; an error naming `what` when above [`TOLERANCE`] (or when either is empty or NaN).
fn compare(what: &str, ours: &[f32], reference: &[f64]) -> Result<(), CublasError> {
    let scale = reference.iter().fold(0f64, |m, v| m.max(v.abs())).max(f64::from(f32::MIN_POSITIVE));
    let error = ours.iter().zip(reference).fold(0f64, |m, (p, q)| m.max((f64::from(*p) - q).abs())) / scale;
    if ours.len() != reference.len() || ours.is_empty() || error.is_nan() || error > TOLERANCE {
        return Err(CublasError::Unavailable(format!(
            "the {what} differs from the reference by {error:.2e} (relative), more than {TOLERANCE:.0e}"
        )));
    }
    Ok(())
}

fn widen(values: &[f32]) -> Vec<f64> {
    values.iter().map(|&v| f64::from(v)).collect()
}

fn check_softmax(device: &Device<Cuda>, rows: usize, cols: usize) -> Result<(), CublasError> {
    let normal = Distribution::Normal(0.0, 3.0);
    let mask = Tensor::<A, 2>::random([rows, cols], Distribution::Uniform(0.0, 1.0), device).lower_elem(0.25).float()
        * f32::MIN;
    let mask = mask.slice_assign([0..1, 0..cols], Tensor::full([1, cols], f32::MIN, device));
    let x = Tensor::<A, 2>::random([rows, cols], normal, device) + mask;
    let upstream = Tensor::<A, 2>::random([rows, cols], normal, device);
    let [y, dx] = through_hook(&x, &upstream, |x| softmax(x, 1));
    let [burn_y, burn_dx] = through_hook(&x, &upstream, |x| activation::softmax(x, 1));
    compare(&format!("softmax kernel's output ([{rows}, {cols}])"), &y, &widen(&burn_y))?;
    compare(&format!("softmax kernel's gradient ([{rows}, {cols}])"), &dx, &widen(&burn_dx))
}

/// The attention's masked softmax through the hook against Burn's `softmax(scores · scale +
/// mask)`, output and the scores' gradient, for a padding mask, a causal one and one the batch
/// shares (transformers' `f32::MIN` where masked, a batch whose keys are all masked but one).
fn check_scores(device: &Device<Cuda>) -> Result<(), CublasError> {
    let (batch, heads, queries, keys) = (3, 4, 37, 37);
    let normal = Distribution::Normal(0.0, 3.0);
    let scale = 1.0 / 8f64.sqrt();
    for mask_dims in [[batch, 1, 1, keys], [batch, 1, queries, keys], [1, 1, queries, keys]] {
        let masked = Tensor::<A, 4>::random(mask_dims, Distribution::Uniform(0.0, 1.0), device).lower_elem(0.25);
        let mask = masked.float() * f32::MIN;
        let mask = mask.slice_assign(
            [0..1, 0..1, 0..mask_dims[2], 1..keys],
            Tensor::full([1, 1, mask_dims[2], keys - 1], f32::MIN, device),
        );
        let scores = Tensor::<A, 4>::random([batch, heads, queries, keys], normal, device);
        let upstream = Tensor::<A, 4>::random([batch, heads, queries, keys], normal, device);
        let run = |ours: bool| -> [Vec<f32>; 2] {
            let x = scores.clone().detach().require_grad();
            let y = match ours {
                true => masked_softmax(x.clone(), scale, mask.clone()),
                false => activation::softmax(x.clone() * scale + mask.clone(), 3),
            };
            let grads = (y.clone() * upstream.clone()).sum().backward();
            [y.inner().into_data(), x.grad(&grads).expect("a gradient").into_data()]
                .map(|data| data.to_vec::<f32>().unwrap_or_default())
        };
        let ([y, dx], [burn_y, burn_dx]) = (run(true), run(false));
        compare(&format!("masked softmax kernel's output (mask {mask_dims:?})"), &y, &widen(&burn_y))?;
        compare(&format!("masked softmax kernel's gradient (mask {mask_dims:?})"), &dx, &widen(&burn_dx))?;
    }
    if DROPOUT_INSIDE.load(Ordering::Relaxed) {
        check_scores_dropout(device)?;
    }
    Ok(())
}

/// The masked softmax with its dropout at 0.1 through the hook, under a seed stream set for the
/// check (and restarted from 0 after it), against Burn's `softmax(scores · scale + mask)` dropped
/// by the layers' rule, and the scores' gradient against Burn's under the upstream gradient
/// dropped by the same rule; an odd number of keys, so that a row starts mid-pair.
fn check_scores_dropout(device: &Device<Cuda>) -> Result<(), CublasError> {
    let (batch, heads, queries, keys, prob) = (3, 4, 37, 37, 0.1);
    let normal = Distribution::Normal(0.0, 3.0);
    let scale = 1.0 / 8f64.sqrt();
    let dims = [batch, heads, queries, keys];
    let mask = Tensor::<A, 4>::random([batch, 1, 1, keys], Distribution::Uniform(0.0, 1.0), device).lower_elem(0.25);
    let mask = mask.float() * f32::MIN;
    let scores = Tensor::<A, 4>::random(dims, normal, device);
    let upstream = Tensor::<A, 4>::random(dims, normal, device);
    let dropout = burn::nn::DropoutConfig::new(prob).init();
    fused::seed(0x5eed);
    let rule = DropoutMask::new(fused::dropout_seed(), prob);
    fused::seed(0x5eed);
    let x = scores.clone().detach().require_grad();
    let y = masked_softmax_dropout(x.clone(), scale, mask.clone(), &dropout);
    fused::seed(0);
    let grads = (y.clone() * upstream.clone()).sum().backward();
    let [y, dx] = [y.inner().into_data(), x.grad(&grads).expect("a gradient").into_data()]
        .map(|data| data.to_vec::<f32>().unwrap_or_default());
    let dropped =
        |values: Vec<f32>| -> Vec<f32> { values.iter().enumerate().map(|(i, &v)| rule.apply(i as u64, v)).collect() };
    let upstream = dropped(upstream.into_data().to_vec::<f32>().unwrap_or_default());
    let upstream = Tensor::<A, 4>::from_data(TensorData::new(upstream, dims), device);
    let x = scores.detach().require_grad();
    let burn_y = activation::softmax(x.clone() * scale + mask, 3);
    let grads = (burn_y.clone() * upstream).sum().backward();
    let burn_y = dropped(burn_y.inner().into_data().to_vec::<f32>().unwrap_or_default());
    let burn_dx = x.grad(&grads).expect("a gradient").into_data().to_vec::<f32>().unwrap_or_default();
    compare("masked softmax and dropout kernel's output (against the layers' rule)", &y, &widen(&burn_y))?;
    compare("masked softmax and dropout kernel's gradient (against the layers' rule)", &dx, &widen(&burn_dx))
}

/// GELU against the f64 formulas: forward against Burn's too.
fn check_gelu(device: &Device<Cuda>, approximate: bool) -> Result<(), CublasError> {
    let normal = Distribution::Normal(0.0, 3.0);
    let x = Tensor::<A, 2>::random([67, 129], normal, device);
    let upstream = Tensor::<A, 2>::random([67, 129], normal, device);
    let ours = |x| if approximate { fused::gelu_tanh(x) } else { fused::gelu(x) };
    let burn = |x| if approximate { activation::gelu_approximate(x) } else { activation::gelu(x) };
    let [y, dx] = through_hook(&x, &upstream, ours);
    let [burn_y, _] = through_hook(&x, &upstream, burn);
    let (inputs, upstream) = (x.into_data().to_vec::<f32>(), upstream.into_data().to_vec::<f32>());
    let (inputs, upstream) = (inputs.unwrap_or_default(), upstream.unwrap_or_default());
    let (exact, derivative): (Vec<f64>, Vec<f64>) = inputs
        .iter()
        .zip(&upstream)
        .map(|(&v, &g)| {
            let (value, slope) = gelu64(f64::from(v), approximate);
            (value, slope * f64::from(g))
        })
        .unzip();
    let form = if approximate { "tanh GELU" } else { "GELU" };
    compare(&format!("{form} kernel's output (against Burn's)"), &y, &widen(&burn_y))?;
    compare(&format!("{form} kernel's output (against f64)"), &y, &exact)?;
    compare(&format!("{form} kernel's gradient (against f64)"), &dx, &derivative)
}

/// GELU of `x` and its derivative in f64, exact or with the tanh approximation.
fn gelu64(x: f64, approximate: bool) -> (f64, f64) {
    let k = (2.0 / std::f64::consts::PI).sqrt();
    if approximate {
        let t = (k * (x + 0.044715 * x.powi(3))).tanh();
        (0.5 * x * (1.0 + t), 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * x * x))
    } else {
        let cdf = 0.5 * (1.0 + prunelab_gemm::reference::erf64(x / std::f64::consts::SQRT_2));
        (x * cdf, cdf + x * (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt())
    }
}

/// Dropout at 0.1 on an odd number of elements, through the hook under a seed stream set for the
/// check (and restarted from 0 after it): every element is `x · scale` where the layers' rule
/// keeps it and 0 elsewhere, and the gradient is `upstream · scale` on the same elements.
fn check_dropout(device: &Device<Cuda>) -> Result<(), CublasError> {
    let (rows, cols, prob) = (67, 129, 0.1);
    let normal = Distribution::Normal(0.0, 3.0);
    let x = Tensor::<A, 2>::random([rows, cols], normal, device);
    let upstream = Tensor::<A, 2>::random([rows, cols], normal, device);
    let dropout = burn::nn::DropoutConfig::new(prob).init();
    fused::seed(0x5eed);
    let seed = fused::dropout_seed();
    fused::seed(0x5eed);
    let [y, dx] = through_hook(&x, &upstream, |x| fused::dropout(&dropout, x));
    fused::seed(0);
    let mask = DropoutMask::new(seed, prob);
    let (inputs, upstream) = (x.into_data().to_vec::<f32>(), upstream.into_data().to_vec::<f32>());
    let (inputs, upstream) = (inputs.unwrap_or_default(), upstream.unwrap_or_default());
    let keeps = |i: usize| mask.keeps(i as u64);
    let expected = |values: &[f32]| -> Vec<f64> {
        values.iter().enumerate().map(|(i, &v)| f64::from(mask.apply(i as u64, v))).collect()
    };
    compare("dropout kernel's output (against the layers' rule)", &y, &expected(&inputs))?;
    compare("dropout kernel's gradient (against the layers' rule)", &dx, &expected(&upstream))?;
    let kept = (0..rows * cols).filter(|&i| keeps(i)).count() as f64 / (rows * cols) as f64;
    if !(0.85..0.95).contains(&kept) {
        return Err(CublasError::Unavailable(format!("the dropout rule kept {kept:.3} of the elements at 0.9")));
    }
    Ok(())
}
