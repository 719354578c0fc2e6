//! CUDA work of prunelab's own on Burn's CUDA backend, queued on CubeCL's stream: cuBLAS for the
//! projections ([`install`]), the flat optimizer step's gathers as one kernel launch
//! ([`install_gathers`]) and its global norm as a kernel of its own ([`install_squares`]), and
//! LayerNorm, embedding gradients, softmax, GELU and dropout as kernels of its own
//! ([`install_norms`], [`install_embeddings`], [`install_fused`]).
//!
//! Burn 0.21 multiplies f32 matrices on CUDA with CubeCL's own kernels, in TF32 arithmetic, at
//! 49–94 TFLOP/s on an H200 where cuBLAS reaches 410 (`bench/NOTES.md`). This crate hands every
//! f32 projection product (`prunelab_models::layers::linear`: forward, and both products of its
//! backward) to cuBLAS's `cublasGemmEx`, in TF32 like Burn's, in strict f32, or in bf16 on the
//! f32 operands (mixed precision without casts; [`Arithmetic`]).
//!
//! How it fits in Burn:
//! - [`Gemm`] is `op(a) · op(b)` on a backend: cuBLAS on `CubeBackend<CudaRuntime>`, and, with the
//!   `fusion` feature, a custom operation of Burn's fusion stream on `Fusion<CubeBackend<..>>`
//!   (fusion runs it in order with the operations around it, unfused).
//! - On `Autodiff<B>` a product is its own tracked operation whose backward is two more [`Gemm`]s
//!   (`dx = g · wᵀ`, `dw = xᵀ · g`), as `torch.nn.Linear` computes them (`prunelab-gemm`'s
//!   `autodiff::product`, shared with the CPU kernel).
//! - [`install`] registers the kernel with `prunelab_models::layers::set_product_kernel` for one
//!   backend type, after loading libcublas and checking three products (`a·b`, `a·bᵀ`, `aᵀ·b`)
//!   against Burn's.
//! - A projection's bias goes into the product's epilogue ([`GemmBias`]: one `cublasLtMatmul`
//!   with `CUBLASLT_EPILOGUE_BIAS`, module `bias`), where Burn added it after the product in a
//!   launch of its own; in training its gradient, the output gradient's column sums, comes out
//!   of the weight gradient's product (`CUBLASLT_EPILOGUE_BGRADA`; `autodiff::biased_product`).
//!   [`BIAS_VARIABLE`] sums them by two launches of a kernel of this crate instead (`sums`), or
//!   keeps training's (`inference`) or every bias (`burn`) Burn's.
//!
//! The products must run in order with CubeCL's kernels. CubeCL does not expose its CUDA streams,
//! so [`install`] learns the current Burn stream's one through CUPTI (the `stream` module: the
//! stream argument of one kernel launch) and queues every product there, with no host wait
//! ([`Order::Stream`]): each product is handed to CubeCL's runtime thread like a kernel launch,
//! and that thread looks up the buffers and calls cuBLAS in its turn. Where that fails (no
//! libcupti, a profiler holding CUPTI, another Burn stream, or [`ORDER_VARIABLE`]`=host`), cuBLAS
//! runs on its own stream and each product waits on the host for CubeCL's queued work and for
//! itself ([`Order::Host`]): on an H200 that made GPT-2 small's fine-tuning step, with about 150
//! products, slower than with Burn's kernels (`bench/NOTES.md`). Either way `Arithmetic::F32` gives strict f32 projections on the GPU, which
//! Burn's TF32-staged matmul cannot do.
//!
//! The same queueing serves the flat optimizer step's gathers ([`install_gathers`]): its copy of
//! every gradient into one buffer becomes one launch of a kernel of this crate for up to 160
//! gradients (`gather.cu`; [`GATHER_VARIABLE`]`=copies`: a fill and a device-to-device copy per
//! gradient, in one submission), instead of a Burn kernel per gradient.
//!
//! And it serves kernels of prunelab's own, in CUDA C compiled at run time by NVRTC
//! (`kernels`): LayerNorm forward and backward ([`install_norms`]), one submission each where
//! Burn's decomposed norm takes about seventeen kernels, the flat optimizer step's global norm
//! ([`install_squares`]), two launches where Burn's ops take three slower kernels, and embedding
//! tables' gradients ([`install_embeddings`]): a deterministic sort-and-sum in one submission
//! where Burn's `select_add` serialises on rows many tokens share, and the attention's softmax
//! (with its scores' scale and mask inside: [`SCORES_VARIABLE`]; and in training its output's
//! dropout: [`ATTENTION_DROPOUT_VARIABLE`]), GELU and dropout ([`install_fused`]), one launch
//! forward and one backward each.
//!
//! The attention's batched products read their matrices' addresses from lists kept in an arena
//! of this crate ([`addresses`]): a product whose operands lie where an equal one's lay reads
//! that list again instead of launching a kernel to write it ([`LISTS_VARIABLE`]).
//!
//! For measurement, [`phase_marker`] finds the phase mark of the CUPTI counter
//! `bench/cupti_busy.c`, which the CLI calls between a training step's phases when asked.
//!
//! Without the `cuda` feature the crate holds only [`layout`], the mapping of a row-major product
//! onto cuBLAS's column-major call, and [`addresses`], the arena's bookkeeping, both tested on
//! the CPU.

pub mod addresses;
#[cfg(feature = "cuda")]
mod bias;
#[cfg(feature = "cuda")]
mod cublas;
#[cfg(feature = "cuda")]
mod embed;
#[cfg(feature = "cuda")]
mod fused;
#[cfg(feature = "fusion")]
mod fusion;
#[cfg(feature = "cuda")]
mod gather;
#[cfg(feature = "cuda")]
mod install;
#[cfg(feature = "cuda")]
mod kernels;
pub mod layout;
#[cfg(feature = "cuda")]
mod marks;
#[cfg(feature = "cuda")]
mod norm;
#[cfg(feature = "cuda")]
mod squares;
#[cfg(feature = "cuda")]
mod stream;

#[cfg(feature = "cuda")]
pub use cublas::{Arithmetic, CublasError, Order, address_list_counts};
#[cfg(feature = "cuda")]
pub use embed::{EmbeddingGrad, install_embeddings};
#[cfg(feature = "cuda")]
pub use fused::{ATTENTION_DROPOUT_VARIABLE, FUSED_VARIABLE, FusedKernels, SCORES_VARIABLE, install_fused};
#[cfg(feature = "cuda")]
pub use gather::{GATHER_VARIABLE, Gather, install_gathers};
#[cfg(feature = "cuda")]
pub use install::{BIAS_VARIABLE, Gemm, GemmBias, HEADS_VARIABLE, LISTS_VARIABLE, ORDER_VARIABLE, install};
#[cfg(feature = "cuda")]
pub use marks::{PHASES_VARIABLE, PhaseMarker, phase_marker};
#[cfg(feature = "cuda")]
pub use norm::{LayerNormKernels, install_norms};
#[cfg(feature = "cuda")]
pub use squares::{SumOfSquares, install_squares};
