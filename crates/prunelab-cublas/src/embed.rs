//! Embedding lookups (`prunelab_models::layers::embed`) on CUDA with a backward of our own
//! (`embed.cu`): the table's gradient in four launches queued on CubeCL's stream in one
//! submission — zero the table, sort the ids with their token positions in one block, sum each
//! id's rows in token order in pieces, then the pieces — with a fixed order of additions, where
//! Burn's `select_add` serialises on shared rows (2.2 ms of MiniLM's 9.6 ms training step on an
//! H100: `bench/NOTES.md`).
//!
//! - [`EmbeddingGrad`]: the backward on a backend: CUDA, and with the `fusion` feature a custom
//!   operation of Burn's fusion stream.
//! - On `Autodiff<B>` the lookup is one tracked operation: Burn's select forward, and
//!   [`EmbeddingGrad`] backward. It keeps the ids, not the table, for the backward.
//! - [`install_embeddings`] checks it against Burn's lookup and gradient on the device, then
//!   registers the kernel with `prunelab_models::layers::embed::set_embed_kernel`.

use std::any::Any;

use burn::backend::Autodiff;
use burn::nn::EmbeddingConfig;
use burn::prelude::*;
use burn::tensor::ops::{FloatTensor, IntTensor};
use burn::tensor::{DType, Device, Distribution, TensorMetadata};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::{CheckpointStrategy, NoCheckpointing};
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_cubecl::cubecl::cuda::CudaRuntime;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, FloatElement, IntElement};
use prunelab_models::layers::embed::{EmbedArgs, EmbedCall, embedding, set_embed_kernel};

use crate::cublas::{self, CublasError};
use crate::kernels::{self, Arg, Launch, args};

type Cuda = burn::backend::Cuda<f32, i32>;

/// The most looked-up rows the sort takes (`EMBED_MAX_ROWS` in `embed.cu`: one block's shared
/// memory); longer lookups stay Burn's.
pub const MAX_ROWS: usize = 8192;
/// Sorted rows per piece (`EMBED_CHUNK` in `embed.cu`).
const CHUNK: usize = 32;

/// The gradient of an embedding table on a backend.
pub trait EmbeddingGrad: Backend {
    /// `[vocab, dim]`: row `v` is the sum, in token order, of the rows of `grad` (`[n, dim]`,
    /// f32) whose id (`ids`, `[n]`) is `v`; ids outside `[0, vocab)` add nothing. `n` is at most
    /// `MAX_ROWS`, and `vocab` and `n` fit in 31 bits together (`fits`).
    fn embedding_grad(grad: FloatTensor<Self>, ids: IntTensor<Self>, vocab: usize) -> FloatTensor<Self>;
}

/// Whether a lookup of `rows` ids into a table of `vocab` rows fits the kernels: the sort's
/// shared memory, and a key of id and token position in 31 bits.
pub fn fits(rows: usize, vocab: usize) -> bool {
    (1..=MAX_ROWS).contains(&rows) && vocab > 0 && bits(vocab - 1) + token_bits(rows) <= 31
}

/// The bits that hold `value`.
fn bits(value: usize) -> u32 {
    usize::BITS - value.leading_zeros()
}

/// The bits of a key that hold the token position, for `rows` tokens (at least one).
fn token_bits(rows: usize) -> u32 {
    bits(rows - 1).max(1)
}

impl<F: FloatElement, I: IntElement, BT: BoolElement> EmbeddingGrad for CubeBackend<CudaRuntime, F, I, BT> {
    fn embedding_grad(
        grad: CubeTensor<CudaRuntime>,
        ids: CubeTensor<CudaRuntime>,
        vocab: usize,
    ) -> CubeTensor<CudaRuntime> {
        const WORD: usize = 4;
        let (grad, ids) = (cublas::contiguous(grad), cublas::contiguous(ids));
        let (rows, dim) = (grad.meta.shape()[0], grad.meta.shape()[1]);
        let empty = |shape: Vec<usize>| {
            empty_device_contiguous_dtype(grad.client.clone(), grad.device.clone(), shape.into(), DType::F32)
        };
        // `sorted` holds u32 keys in an f32 tensor's buffer (the kernels read its bytes as keys).
        let [out, sorted, partial] = [vec![vocab, dim], vec![rows], vec![rows, dim]].map(empty);
        let buffers = [(&grad, rows * dim), (&ids, rows), (&out, vocab * dim), (&sorted, rows), (&partial, rows * dim)]
            .map(|(t, len)| (t.handle.clone().binding(), len * WORD))
            .to_vec();
        let [n, dim_, vocab_, tbits] = [rows, dim, vocab, token_bits(rows) as usize]
            .map(|v| Arg::I32(i32::try_from(v).expect("checked by `fits`")));
        let total = i32::try_from(vocab * dim).expect("a table under 2³¹ elements, checked by the kernel hook");
        let column_tiles = dim.div_ceil(128) as u32;
        let launches = vec![
            Launch {
                kernel: "embed_zero",
                grid: ((vocab * dim).div_ceil(4 * 256).clamp(1, 4096) as u32, 1, 1),
                block: (256, 1, 1),
                args: args(&[2], [Arg::I32(total)]),
            },
            Launch {
                kernel: "embed_sort",
                grid: (1, 1, 1),
                block: (1024, 1, 1),
                args: args(&[1], [n, vocab_, tbits, Arg::Buffer(3)]),
            },
            Launch {
                kernel: "embed_partial",
                grid: (rows.div_ceil(CHUNK) as u32, column_tiles, 1),
                block: (128, 1, 1),
                args: args(&[0, 3], [n, dim_, tbits, Arg::Buffer(4)]),
            },
            Launch {
                kernel: "embed_rows",
                grid: (rows as u32, 1, 1),
                block: (128, 1, 1),
                args: args(&[4, 3], [n, dim_, tbits, Arg::Buffer(2)]),
            },
        ];
        kernels::submit(grad.device.index, buffers, launches);
        out
    }
}

#[cfg(feature = "fusion")]
impl<B: burn_fusion::FusionBackend + EmbeddingGrad> EmbeddingGrad for burn_fusion::Fusion<B> {
    fn embedding_grad(grad: FloatTensor<Self>, ids: IntTensor<Self>, vocab: usize) -> FloatTensor<Self> {
        use std::marker::PhantomData;

        use burn_fusion::FusionRuntime;
        use burn_fusion::stream::{Operation, OperationStreams};
        use burn_ir::{CustomOpIr, HandleContainer, OperationIr, OperationOutput, TensorIr};

        #[derive(Clone, Debug)]
        struct EmbedGradOp<B> {
            desc: CustomOpIr,
            vocab: usize,
            _backend: PhantomData<B>,
        }

        impl<B: burn_fusion::FusionBackend + EmbeddingGrad> Operation<B::FusionRuntime> for EmbedGradOp<B> {
            fn execute(&self, handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>) {
                let grad = handles.get_float_tensor::<B>(&self.desc.inputs[0]);
                let ids = handles.get_int_tensor::<B>(&self.desc.inputs[1]);
                handles.register_float_tensor::<B>(&self.desc.outputs[0].id, B::embedding_grad(grad, ids, self.vocab));
            }
        }

        let client = grad.client.clone();
        let streams = OperationStreams::with_inputs([&grad, &ids]);
        let dim = grad.shape[1];
        let out = TensorIr::uninit(client.create_empty_handle(), Shape::new([vocab, dim]), DType::F32);
        let desc = CustomOpIr::new("prunelab_embedding_grad", &[grad.into_ir(), ids.into_ir()], &[out]);
        let op = EmbedGradOp::<B> { desc: desc.clone(), vocab, _backend: PhantomData };
        client.register(streams, OperationIr::Custom(desc), op).output()
    }
}

/// A lookup's arguments on a backend.
type Args<B> = EmbedArgs<FloatTensor<B>, IntTensor<B>>;

/// The lookup on `Autodiff<B>`: Burn's select forward, and [`EmbeddingGrad`] backward.
fn tracked<B: EmbeddingGrad, C: CheckpointStrategy>(args: Args<Autodiff<B, C>>) -> FloatTensor<Autodiff<B, C>> {
    #[derive(Debug)]
    struct Lookup;

    impl<B: EmbeddingGrad> Backward<B, 1> for Lookup {
        /// The ids, flattened, and the table's rows.
        type State = (IntTensor<B>, usize);

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            let [node] = ops.parents;
            let g = grads.consume::<B>(&ops.node);
            let Some(node) = node else { return };
            let (ids, vocab) = ops.state;
            let shape = g.shape();
            let dim = shape[shape.num_dims() - 1];
            let g = B::float_reshape(g, Shape::new([shape.num_elements() / dim, dim]));
            grads.register::<B>(node.id, B::embedding_grad(g, ids, vocab));
        }
    }

    let EmbedArgs { weight, ids } = args;
    let vocab = weight.primitive.shape()[0];
    let rows = B::embedding(weight.primitive, ids.clone());
    match Lookup.prepare::<C>([weight.node]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let n = ids.shape().num_elements();
            prep.finish((B::int_reshape(ids, Shape::new([n])), vocab), rows)
        }
        OpsKind::UnTracked(prep) => prep.finish(rows),
    }
}

/// Compile the kernels and hand embedding lookups on `burn::backend::Cuda` (plain or fused, and
/// its `Autodiff`) to them, after checking them against Burn's lookup and gradient on `device`.
/// Needs CubeCL's stream (learnt here if not yet) and libnvrtc; without either, or when the check
/// differs, nothing is installed and the error says why.
pub fn install_embeddings(device: &Device<Cuda>) -> Result<(), CublasError> {
    kernels::install_hook(device, set_embed_kernel, kernel, check)?;
    tracing::info!("embedding gradients as prunelab CUDA kernels on CubeCL's stream");
    Ok(())
}

/// The kernel handed to `set_embed_kernel`: takes lookups on `Autodiff<Cuda>` of f32 tables under
/// 2³¹ elements whose ids [`fits`]; plain `Cuda` lookups have no backward and stay Burn's.
fn kernel(call: &mut dyn Any) {
    type A = Autodiff<Cuda>;
    let Some(call) = call.downcast_mut::<EmbedCall<FloatTensor<A>, IntTensor<A>>>() else { return };
    let Some(args) = call.args.take() else { return };
    let table = args.weight.primitive.shape();
    let fit = table.num_dims() == 2
        && args.weight.primitive.dtype() == DType::F32
        && table.num_elements() <= i32::MAX as usize
        && args.ids.shape().num_dims() == 2
        && fits(args.ids.shape().num_elements(), table[0]);
    if fit {
        call.output = Some(tracked::<Cuda, NoCheckpointing>(args));
    } else {
        call.args = Some(args);
    }
}

/// The installed lookup against Burn's on random tables and ids — a few ids shared by many
/// tokens (like token types), many distinct ones (like words), and a single row —
/// comparing the rows bit for bit and the table's gradient within 1e-5 of its largest magnitude.
fn check(device: &Device<Cuda>) -> Result<(), CublasError> {
    type A = Autodiff<Cuda>;
    const TOLERANCE: f64 = 1e-5;
    for (vocab, dim, batch, seq, distinct) in [(2, 384, 32, 128, 2), (1000, 100, 8, 100, 1000), (50, 7, 1, 1, 50)] {
        let table = EmbeddingConfig::new(vocab, dim).init::<A>(device);
        let ids = Tensor::<A, 2, Int>::random([batch, seq], Distribution::Uniform(0.0, distinct as f64), device);
        let upstream = Tensor::<A, 3>::random([batch, seq, dim], Distribution::Normal(0.0, 1.0), device);
        let run = |ours: bool| {
            let rows = if ours { embedding(&table, ids.clone()) } else { table.forward(ids.clone()) };
            let grads = (rows.clone() * upstream.clone()).sum().backward();
            (rows.inner().into_data(), table.weight.grad(&grads).expect("a gradient").into_data())
        };
        let ((rows, grad), (burn_rows, burn_grad)) = (run(true), run(false));
        let (grad, burn_grad) =
            (grad.to_vec::<f32>().unwrap_or_default(), burn_grad.to_vec::<f32>().unwrap_or_default());
        let scale = burn_grad.iter().fold(0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE) as f64;
        let error = grad.iter().zip(&burn_grad).fold(0f32, |m, (p, q)| m.max((p - q).abs())) as f64 / scale;
        let problem = if rows != burn_rows {
            Some("rows".to_string())
        } else if grad.len() != burn_grad.len() || grad.is_empty() || error.is_nan() || error > TOLERANCE {
            Some(format!("gradient differs by {error:.2e} (relative), more than {TOLERANCE:.0e}"))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(CublasError::Unavailable(format!(
                "the embedding kernels' {problem} differ from Burn's ([{vocab}, {dim}] table, [{batch}, {seq}] ids)"
            )));
        }
    }
    Ok(())
}
