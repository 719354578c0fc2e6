//! The projections' products on Burn's CPU backend (`ndarray`), over every core and still
//! deterministic.
//!
//! Burn 0.21's `ndarray` backend multiplies a 2-D product on one thread (it parallelises over
//! batch matrices only, and the projections are one `[tokens, d_in]` matrix each), and its
//! optional threads (rayon, threaded matrixmultiply) make two runs of one seed differ in their
//! last digits (`bench/NOTES.md`). Here the output's rows are split into one block per thread and
//! each block is computed by the single-threaded kernel Burn calls (ndarray's `general_mat_mul`,
//! i.e. matrixmultiply) or, on CPUs with AVX-512 or AVX2 and FMA ([`isa`]), by the `product`
//! module's blocked loops around the `avx512` or `avx2` micro-kernel, which compute the same sums
//! in the same order with wider tiles: every output element is the sum
//! Burn's product makes, so the result equals Burn's bit for bit, whatever the number of threads.
//!
//! [`fused`] does the same for softmax, GELU and dropout, and [`norm`] for LayerNorm, which Burn
//! runs as chains of single-threaded ops, [`scores`] the attention scores' scale and mask,
//! [`view`] reshapes without the copy burn-ndarray makes of each, and [`gather`] copies many
//! tensors into one buffer; [`pool`] keeps the threads
//! they all run on.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod fused;
pub mod gather;
pub mod isa;
mod math;
pub mod norm;
pub mod pool;
#[cfg(target_arch = "x86_64")]
mod product;
pub mod scores;
pub mod view;

use std::any::Any;
use std::mem::MaybeUninit;
use std::num::NonZeroUsize;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::ops::FloatTensor;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_ndarray::NdArrayTensor;
use ndarray::{
    Array1, Array2, ArrayD, ArrayView1, ArrayView2, ArrayViewD, ArrayViewMut2, Axis, Ix1, Ix2, IxDyn, ShapeBuilder,
    linalg::general_mat_mul,
};
use prunelab_models::layers::{Activation, ProductCall, set_product_kernel};

use crate::autodiff::BiasedKernels;
use crate::{take_biased_if_f32_matrices, take_if_f32_of_rank};

/// The variable that sets the number of threads (default: the cores this process may use).
pub const THREADS_VARIABLE: &str = "PRUNELAB_CPU_THREADS";

/// Products smaller than this (multiply-adds) stay on one thread: a thread costs more.
const PARALLEL_MIN_WORK: usize = 1 << 20;
/// Element-wise passes (the fused operations, LayerNorm) over fewer elements stay on one thread.
const PARALLEL_MIN_ELEMENTS: usize = 1 << 15;
/// Columns of a product's output are split over threads in multiples of this (the AVX-512
/// kernel's panel width, twice the AVX2 kernel's).
const COLUMN_BLOCK: usize = 32;

/// Route every f32 projection product of prunelab's models on `NdArray` (and `Autodiff<NdArray>`)
/// through [`gemm`]; returns the number of threads it uses.
pub fn install() -> usize {
    set_product_kernel(Some(kernel));
    let threads = threads();
    tracing::info!(threads, kernel = kernel_name(), isa = %isa::isa(), "projection products over the CPU's cores");
    threads
}

/// Threads per product: [`THREADS_VARIABLE`], else the available parallelism; read once per
/// process (it is asked for on every product, and the available parallelism reads cgroup files).
pub fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::env::var(THREADS_VARIABLE)
            .ok()
            .and_then(|v| v.parse::<NonZeroUsize>().ok())
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get)
    })
}

fn kernel(call: &mut dyn Any) {
    if let Some(call) = call.downcast_mut::<ProductCall<FloatTensor<Autodiff<NdArray>>>>() {
        if !take_biased_if_f32_matrices(call, |a, b, bias| {
            crate::autodiff::biased_product::<NdArray, NoCheckpointing>(a, b, bias, biased_kernels())
        }) {
            take_if_f32_of_rank(call, 2..=4, |a, b, transposed| {
                crate::autodiff::product::<NdArray, NoCheckpointing>(a, b, transposed, primitive_gemm)
            });
        }
    } else if let Some(call) = call.downcast_mut::<ProductCall<FloatTensor<NdArray>>>() {
        // Projections (2-D, with their bias, and their GELU when one follows) and the attention's
        // batches of matrices (rank 3 or 4).
        let act = call.activation.and_then(Act::of_layers);
        if take_biased_if_f32_matrices(call, |a, b, bias| primitive_activated_gemm(a, b, bias, act)) {
            call.activation = call.activation.filter(|_| act.is_none());
        } else {
            take_if_f32_of_rank(call, 2..=4, |a, b, transposed| primitive_gemm(a, false, b, transposed));
        }
    }
}

/// [`gemm`] (2-D) or [`batched_gemm`] on the backend's primitives (a [`crate::autodiff::GemmFn`]:
/// the flags transpose each matrix of a batch).
pub fn primitive_gemm(a: NdArrayTensor, transpose_a: bool, b: NdArrayTensor, transpose_b: bool) -> NdArrayTensor {
    let (a, b) = (array(a), array(b));
    if a.ndim() > 2 {
        return NdArrayTensor::from(
            batched_gemm(a.view(), transpose_a, b.view(), transpose_b, threads()).into_shared(),
        );
    }
    let (a, b) = (two_d(a.view()), two_d(b.view()));
    let a = if transpose_a { a.reversed_axes() } else { a };
    let b = if transpose_b { b.reversed_axes() } else { b };
    NdArrayTensor::from(gemm(a, b, threads()).into_dyn().into_shared())
}

/// A batch of products `op(a[i]) · op(b[i])` over the leading axes (equal in both), each by the
/// single-threaded kernel Burn calls and on the operands' own strides — Burn's batched matmul
/// first copies non-contiguous operands (the attention's heads and transposed keys) — the
/// batch split over `threads` threads. Bit for bit Burn's batched product.
#[allow(unsafe_code)]
pub fn batched_gemm(
    a: ArrayViewD<'_, f32>,
    transpose_a: bool,
    b: ArrayViewD<'_, f32>,
    transpose_b: bool,
    threads: usize,
) -> ArrayD<f32> {
    if let Some(out) = interleaved_product(&a, transpose_a, &b, transpose_b, threads) {
        return out;
    }
    let mut out_shape = a.shape()[..a.ndim() - 2].to_vec();
    let (lhs, rhs) = (batch_matrices(a, transpose_a), batch_matrices(b, transpose_b));
    let (m, n) = (lhs[0].nrows(), rhs[0].ncols());
    out_shape.extend([m, n]);
    let mut out = ArrayD::<f32>::uninit(out_shape);
    let threads = if m * n * lhs[0].ncols() * lhs.len() < PARALLEL_MIN_WORK { 1 } else { threads };
    let slice = out.as_slice_mut().expect("a new array is contiguous");
    in_blocks(slice, m * n, lhs.len().div_ceil(threads.clamp(1, lhs.len())), |first, out| {
        for (i, out) in out.chunks_mut(m * n).enumerate() {
            let out = ArrayViewMut2::from_shape((m, n), out).expect("one matrix of the batch");
            block_product(&lhs[first + i], &rhs[first + i], Epilogue::default(), out);
        }
    });
    // SAFETY: the blocks cover the output, and `block_product` writes every element of its block.
    unsafe { out.assume_init() }
}

/// A batched product whose `b` is a view of heads lying side by side in each row (`[batch, heads,
/// seq, head_dim]` viewed from `[batch, seq, .. heads · head_dim ..]`, as `layers::split_heads`
/// makes it of a projection, GPT-2's fused one included, or of a gradient): the attention's
/// `probs · v`, and in training the query's, key's and value's gradients. The output is laid out
/// the same way — `[batch, heads, rows, n]` over memory ordered `[batch, rows, heads, n]` — so
/// that merging the heads back is a view, where a standard output made it a copy
/// (`bench/NOTES.md`; CUDA's batched products do the same). `None` for other operands. Each matrix
/// of the batch is the same product as [`batched_gemm`]'s.
#[allow(unsafe_code)]
fn interleaved_product(
    a: &ArrayViewD<'_, f32>,
    transpose_a: bool,
    b: &ArrayViewD<'_, f32>,
    transpose_b: bool,
    threads: usize,
) -> Option<ArrayD<f32>> {
    let shape = b.shape();
    if a.ndim() != 4 || a.shape()[..2] != shape[..2] || !crate::heads_interleaved(shape, b.strides(), transpose_b) {
        return None;
    }
    let [batch, heads, k, n] = [shape[0], shape[1], shape[2], shape[3]];
    if batch == 0 {
        return None;
    }
    let (lhs, rhs) = (batch_matrices(a.view(), transpose_a), batch_matrices(b.view(), false));
    let m = lhs[0].nrows();
    let mut out = ndarray::Array4::<f32>::uninit((batch, m, heads, n));
    let threads = if m * n * k * lhs.len() < PARALLEL_MIN_WORK { 1 } else { threads.clamp(1, batch) };
    let items = batch.div_ceil(threads);
    pool::split(out.axis_chunks_iter_mut(Axis(0), items).enumerate(), |(chunk, mut items_out)| {
        for (item, mut item_out) in items_out.outer_iter_mut().enumerate() {
            for h in 0..heads {
                let i = (chunk * items + item) * heads + h;
                block_product(&lhs[i], &rhs[i], Epilogue::default(), item_out.slice_mut(ndarray::s![.., h, ..]));
            }
        }
    });
    // SAFETY: every (item, head) matrix of the output was written by `block_product`, which
    // writes every element of its block.
    let out = unsafe { out.assume_init() };
    Some(out.permuted_axes([0, 2, 1, 3]).into_dyn())
}

/// `a · b`, its rows split over `threads` threads (bit for bit the single-threaded product).
pub fn gemm(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>, threads: usize) -> Array2<f32> {
    biased_gemm(a, b, None, threads)
}

/// `a · b`, plus `bias` (one value per column) added to every row when given, by the thread
/// that computed the element, after its product (the bits of `(a · b)[i, j] + bias[j]`; the
/// SIMD kernels add it as they store the product's last slice, where a pass of its own read
/// the block back from memory: `bench/NOTES.md`).
///
/// The output is split over the threads by rows or by columns, whichever copies less: each
/// thread packs every column of `b` it multiplies (and reads `a`'s rows where they lie), so
/// splitting the rows packs all of `b` once per thread and splitting the columns reads all of
/// `a` once per thread — by columns where `b` has at least twice as many columns as `a` has rows
/// (the first MLP weight's gradient `xᵀ·g`, and short batches' products; at equal counts the
/// columns measured slower, `bench/NOTES.md`), with the SIMD kernels (the `product` module's
/// packing; matrixmultiply's products always split their rows). Either way each element is the
/// same sum, so the bits do not depend on the split.
#[allow(unsafe_code)]
pub fn biased_gemm(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    bias: Option<ArrayView1<'_, f32>>,
    threads: usize,
) -> Array2<f32> {
    activated_gemm(a, b, bias, None, threads)
}

/// [`biased_gemm`], then `act` on every element (bias included) by the thread that computed it,
/// as it stores it: the bits of the activation's pass after the product (`fused`'s), without
/// reading the product back from memory.
#[allow(unsafe_code)]
pub fn activated_gemm(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    bias: Option<ArrayView1<'_, f32>>,
    act: Option<Act>,
    threads: usize,
) -> Array2<f32> {
    let (m, n) = (a.nrows(), b.ncols());
    if let Some(bias) = &bias {
        assert_eq!(bias.len(), n, "a bias of one value per column");
    }
    // As a slice, so that the additions below vectorise (an ndarray view's iterator did not).
    let bias = bias.map(|bias| bias.to_vec());
    // Not zeroed first: the products write every element (zeroing every product's output cost
    // about 5 % of a CPU fine-tuning step, `bench/NOTES.md`).
    let mut out = Array2::<f32>::uninit((m, n));
    let threads = if m * n * a.ncols() < PARALLEL_MIN_WORK { 1 } else { threads };
    // The column split is measured and tested with the SIMD kernels only (which are also the ones
    // whose packing it saves).
    let by_columns = threads > 1 && n >= 2 * m && n >= 2 * COLUMN_BLOCK && own_kernel();
    let (axis, len) = if by_columns {
        // Blocks of whole 32-column panels (the AVX-512 kernel's, two of AVX2's), the last one shorter.
        (Axis(1), n.div_ceil(threads.min(n / COLUMN_BLOCK)).next_multiple_of(COLUMN_BLOCK))
    } else {
        // Blocks of whole 8-row panels (matrixmultiply's), the last one shorter.
        (Axis(0), m.div_ceil(threads.clamp(1, m.max(1))).next_multiple_of(8))
    };
    if !out.is_empty() {
        pool::split(out.axis_chunks_iter_mut(axis, len).enumerate(), |(i, mut block)| {
            let (rows, columns) = if by_columns {
                (0..m, i * len..i * len + block.ncols())
            } else {
                (i * len..i * len + block.nrows(), 0..n)
            };
            let end = Epilogue { bias: bias.as_deref().map(|bias| &bias[columns.clone()]), act };
            block_product(&a.slice(ndarray::s![rows, ..]), &b.slice(ndarray::s![.., columns]), end, block.view_mut());
        });
    }
    // SAFETY: the blocks cover the output (none when it is empty), and `block_product` writes
    // every element of its block.
    unsafe { out.assume_init() }
}

/// The sum of each column of `g` (a bias's gradient), the columns split over `threads` threads:
/// each column is summed by one thread, row after row from the first, so the bits do not
/// depend on the number of threads.
pub fn column_sums(g: ArrayView2<'_, f32>, threads: usize) -> Array1<f32> {
    let (m, n) = g.dim();
    let mut out = Array1::<f32>::zeros(n);
    let threads = if m * n < PARALLEL_MIN_WORK { 1 } else { threads.clamp(1, n.max(1)) };
    // Whole 16-column groups per thread (a vector register's lanes).
    let columns = n.div_ceil(threads).div_ceil(16) * 16;
    let slice = out.as_slice_mut().expect("a new array is contiguous");
    in_blocks(slice, 1, columns, |first, sums| {
        for row in g.rows() {
            let row = row.slice_move(ndarray::s![first..first + sums.len()]);
            match row.as_slice() {
                Some(row) => sums.iter_mut().zip(row).for_each(|(s, v)| *s += v),
                None => sums.iter_mut().zip(row).for_each(|(s, v)| *s += v),
            }
        }
    });
    out
}

/// A projection's product with its bias in training, on the CPU's kernels: the weight's and the
/// bias's gradients as a product and the column sums (no pass computes both).
fn biased_kernels() -> BiasedKernels<NdArray> {
    BiasedKernels {
        forward: primitive_biased_gemm,
        gemm: primitive_gemm,
        sums: primitive_column_sums,
        weight_and_bias: None,
    }
}

/// [`biased_gemm`] on the backend's primitives (a [`crate::autodiff::GemmBiasFn`]).
pub fn primitive_biased_gemm(a: NdArrayTensor, b: NdArrayTensor, bias: NdArrayTensor) -> NdArrayTensor {
    primitive_activated_gemm(a, b, bias, None)
}

/// [`activated_gemm`] on the backend's primitives.
fn primitive_activated_gemm(
    a: NdArrayTensor,
    b: NdArrayTensor,
    bias: NdArrayTensor,
    act: Option<Act>,
) -> NdArrayTensor {
    let (a, b, bias) = (array(a), array(b), array(bias));
    let bias = bias.view().into_dimensionality::<Ix1>().expect("a 1-D bias");
    let out = activated_gemm(two_d(a.view()), two_d(b.view()), Some(bias), act, threads());
    NdArrayTensor::from(out.into_dyn().into_shared())
}

/// [`column_sums`] on the backend's primitives (a [`crate::autodiff::ColumnSumsFn`]).
pub fn primitive_column_sums(g: NdArrayTensor) -> NdArrayTensor {
    let g = array(g);
    NdArrayTensor::from(column_sums(two_d(g.view()), threads()).into_dyn().into_shared())
}

/// `out` cut into blocks of `block` units of `unit` elements (the last one shorter), and
/// `run(index of the block's first unit, the block)` for each, over [`pool`]'s threads (this
/// thread's alone when there is one block). `unit` > 0.
pub(crate) fn in_blocks<T: Send>(out: &mut [T], unit: usize, block: usize, run: impl Fn(usize, &mut [T]) + Sync) {
    let len = block.max(1) * unit;
    if len >= out.len() {
        return run(0, out);
    }
    pool::split(out.chunks_mut(len).enumerate(), |(i, part)| run(i * block.max(1), part));
}

/// A new buffer of `rows × cols` elements, written by `write(first row, block)` for blocks of
/// whole rows, one block per thread (one block under [`PARALLEL_MIN_ELEMENTS`] elements).
/// `write` must write every element of its block.
pub(crate) fn write_rows(rows: usize, cols: usize, write: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync) -> Vec<f32> {
    let mut out = uninit(rows * cols);
    let threads = if out.len() < PARALLEL_MIN_ELEMENTS { 1 } else { threads().clamp(1, rows.max(1)) };
    in_blocks(&mut out, cols.max(1), rows.div_ceil(threads), write);
    // SAFETY: the blocks cover the buffer, and `write` writes every element of each (the
    // caller's contract).
    #[allow(unsafe_code)]
    unsafe {
        assume_init(out)
    }
}

/// An array's elements in standard (row-major) order: borrowed when it is laid out so already.
pub(crate) fn standard<D: ndarray::Dimension>(a: &ndarray::ArcArray<f32, D>) -> std::borrow::Cow<'_, [f32]> {
    match a.as_slice() {
        Some(slice) => std::borrow::Cow::Borrowed(slice),
        None => std::borrow::Cow::Owned(a.iter().copied().collect()),
    }
}

/// A buffer of `len` elements, none initialised.
pub(crate) fn uninit(len: usize) -> Vec<MaybeUninit<f32>> {
    let mut buffer = Vec::with_capacity(len);
    buffer.resize_with(len, MaybeUninit::uninit);
    buffer
}

/// The buffer as initialised values.
///
/// # Safety
/// Every element was written.
#[allow(unsafe_code)]
pub(crate) unsafe fn assume_init(buffer: Vec<MaybeUninit<f32>>) -> Vec<f32> {
    let mut buffer = std::mem::ManuallyDrop::new(buffer);
    // SAFETY: `MaybeUninit<f32>` has `f32`'s layout, the allocation is handed over whole (pointer,
    // length, capacity), and the caller vouches that every element is initialised.
    unsafe { Vec::from_raw_parts(buffer.as_mut_ptr().cast::<f32>(), buffer.len(), buffer.capacity()) }
}

/// `out = a · b` (plus `end.bias`, one value per column, added to each element after its
/// product, then through `end.act`) on one thread (`out` the row-major output, not necessarily
/// initialised; every element is written): the SIMD kernel of the CPU's level (`isa`: the
/// bias added and the activation applied as it stores the last slice of `k`), else
/// matrixmultiply (Burn's kernel) on zeros, then the bias, then the activation.
#[allow(unsafe_code)]
fn block_product(
    a: &ArrayView2<'_, f32>,
    b: &ArrayView2<'_, f32>,
    end: Epilogue<'_>,
    mut out: ArrayViewMut2<'_, MaybeUninit<f32>>,
) {
    #[cfg(target_arch = "x86_64")]
    match isa::isa() {
        isa::Isa::Avx512 => return product::gemm::<avx512::Avx512>(a.view(), b.view(), end, out),
        isa::Isa::Avx2 => return product::gemm::<avx2::Avx2>(a.view(), b.view(), end, out),
        isa::Isa::Baseline => {}
    }
    let bias = end.bias;
    out.fill(MaybeUninit::new(0.0));
    let (dim, strides) = (out.raw_dim(), out.strides().to_vec());
    let strides = Ix2(strides[0] as usize, strides[1] as usize);
    // SAFETY: every element was initialised on the line above, `MaybeUninit<f32>` has `f32`'s
    // layout, and the view has `out`'s shape and (non-negative: blocks of a new array) strides,
    // borrowing it for the product.
    let mut out = unsafe { ArrayViewMut2::from_shape_ptr(dim.strides(strides), out.as_mut_ptr().cast::<f32>()) };
    general_mat_mul(1.0, a, b, 0.0, &mut out);
    if let Some(bias) = bias {
        for mut row in out.rows_mut() {
            row.iter_mut().zip(bias).for_each(|(o, b)| *o += b);
        }
    }
    if let Some(act) = end.act {
        for mut row in out.rows_mut() {
            act.on(row.as_slice_mut().expect("an output row's elements are adjacent"));
        }
    }
}

/// An activation a projection's product may end with (`ProductCall::activation`, outside
/// training): GELU, exact or with the tanh approximation, by the fused passes' functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// `math::gelu`.
    Gelu,
    /// `math::gelu_tanh`.
    GeluTanh,
}

impl Act {
    /// The layers' activation, when it is one of these.
    pub fn of_layers(act: Activation) -> Option<Self> {
        match act {
            Activation::Gelu => Some(Self::Gelu),
            Activation::GeluTanh => Some(Self::GeluTanh),
            _ => None,
        }
    }

    /// The activation of `x`.
    #[inline(always)]
    fn of(self, x: f32) -> f32 {
        match self {
            Self::Gelu => math::gelu(x),
            Self::GeluTanh => math::gelu_tanh(x),
        }
    }

    /// Every value of `values` through the activation, in place (one loop per function, so
    /// that each is inlined and vectorised).
    #[inline(always)]
    fn on(self, values: &mut [f32]) {
        match self {
            Self::Gelu => values.iter_mut().for_each(|v| *v = math::gelu(*v)),
            Self::GeluTanh => values.iter_mut().for_each(|v| *v = math::gelu_tanh(*v)),
        }
    }
}

/// What a product ends with, element by element, after its last sum: a bias (one value per
/// column), then an activation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// The bias, one value per column of the block.
    pub bias: Option<&'a [f32]>,
    /// The activation.
    pub act: Option<Act>,
}

/// Which kernel multiplies the blocks: `avx512`, `avx2` or `matrixmultiply` (logged by
/// [`install`]).
pub fn kernel_name() -> &'static str {
    if own_kernel() { isa::isa().name() } else { "matrixmultiply" }
}

/// Whether the blocks are multiplied by a micro-kernel of ours (`product`: this CPU has AVX2 and
/// FMA, or AVX-512).
fn own_kernel() -> bool {
    cfg!(target_arch = "x86_64") && isa::isa() >= isa::Isa::Avx2
}

/// The matrices of a batch (its last two axes) in row-major order of the batch axes, as views,
/// each transposed when `transpose` is set.
fn batch_matrices(x: ArrayViewD<'_, f32>, transpose: bool) -> Vec<ArrayView2<'_, f32>> {
    let mut views = vec![x];
    while views[0].ndim() > 2 {
        views = views
            .into_iter()
            .flat_map(|v| (0..v.len_of(Axis(0))).map(move |i| v.clone().index_axis_move(Axis(0), i)))
            .collect();
    }
    views.into_iter().map(|v| if transpose { two_d(v).reversed_axes() } else { two_d(v) }).collect()
}

/// An f32 primitive as an ndarray array (shared, not copied).
fn array(tensor: NdArrayTensor) -> ndarray::ArcArray<f32, IxDyn> {
    match tensor {
        NdArrayTensor::F32(storage) => storage.into_shared(),
        _ => unreachable!("the kernel takes f32 operands only"),
    }
}

fn two_d(view: ArrayViewD<'_, f32>) -> ArrayView2<'_, f32> {
    view.into_dimensionality::<Ix2>().expect("a matrix of the batch")
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::*;
    use burn::tensor::{Distribution, TensorPrimitive};

    type B = NdArray;

    /// Burn's random generator is process-wide: tests that seed it and draw take turns.
    pub(super) static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn random(shape: [usize; 2], seed: u64) -> Tensor<B, 2> {
        let _turn = RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        B::seed(&Default::default(), seed);
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
    }

    fn ours(a: Tensor<B, 2>, ta: bool, b: Tensor<B, 2>, tb: bool) -> Vec<f32> {
        let (a, b) = (a.into_primitive().tensor(), b.into_primitive().tensor());
        let out = Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(primitive_gemm(a, ta, b, tb)));
        out.into_data().to_vec::<f32>().unwrap()
    }

    /// The three layouts of a projection (`x·W`, `g·Wᵀ`, `xᵀ·g`), large enough to be split over
    /// threads — by rows, and (the last two cases: more columns than rows) by columns — equal
    /// Burn's matmul bit for bit, with 1, 2 and 3 threads, and with a bias, Burn's `x·W + b`.
    #[test]
    fn threaded_products_are_burns_bit_for_bit() {
        let (x, w, g) = (random([301, 96], 1), random([96, 77], 2), random([301, 77], 3));
        let (wide_w, wide_g) = (random([96, 400], 11), random([301, 200], 12));
        let cases = [
            (x.clone(), false, w.clone(), false, x.clone().matmul(w.clone())),
            (g.clone(), false, w.clone(), true, g.clone().matmul(w.clone().transpose())),
            (x.clone(), true, g.clone(), false, x.clone().transpose().matmul(g.clone())),
            (x.clone(), false, wide_w.clone(), false, x.clone().matmul(wide_w)),
            (x.clone(), true, wide_g.clone(), false, x.clone().transpose().matmul(wide_g)),
        ];
        for (i, (a, ta, b, tb, want)) in cases.into_iter().enumerate() {
            let want = want.into_data().to_vec::<f32>().unwrap();
            let (a, b) = (a.into_data(), b.into_data());
            let view = |d: &burn::tensor::TensorData, t: bool| {
                let shape = [d.shape[0], d.shape[1]];
                let m = Array2::from_shape_vec(shape, d.to_vec::<f32>().unwrap()).unwrap();
                if t { m.reversed_axes() } else { m }
            };
            let n = want.len() / view(&a, ta).nrows();
            let bias = Array1::from_iter((0..n).map(|j| j as f32 * 0.37 - 3.0));
            let want_biased = want.chunks(n).flat_map(|row| row.iter().zip(&bias).map(|(v, b)| v + b));
            let want_biased: Vec<f32> = want_biased.collect();
            for threads in [1, 2, 3] {
                let got = gemm(view(&a, ta).view(), view(&b, tb).view(), threads);
                assert!(got.iter().copied().eq(want.iter().copied()), "case {i}, {threads} threads");
                let got = biased_gemm(view(&a, ta).view(), view(&b, tb).view(), Some(bias.view()), threads);
                assert!(got.iter().copied().eq(want_biased.iter().copied()), "case {i} with a bias, {threads} threads");
            }
            let through_burn = ours(
                Tensor::from_data(a.clone(), &Default::default()),
                ta,
                Tensor::from_data(b.clone(), &Default::default()),
                tb,
            );
            assert_eq!(through_burn, want, "case {i} through the backend primitive");
        }
    }

    /// On `Autodiff<NdArray>` the kernel's gradients are Burn's.
    #[test]
    fn gradients_through_the_kernel_are_burns() {
        type A = Autodiff<NdArray>;
        let device = Default::default();
        let x = Tensor::<A, 2>::from_data(random([70, 40], 4).into_data(), &device).require_grad();
        let w = Tensor::<A, 2>::from_data(random([40, 30], 5).into_data(), &device).require_grad();
        let reference = x.clone().matmul(w.clone());
        let grads = (reference.clone() * reference).sum().backward();
        let (gx, gw) = (x.grad(&grads).unwrap(), w.grad(&grads).unwrap());
        let (lhs, rhs) = (x.clone().into_primitive().tensor(), w.clone().into_primitive().tensor());
        let product = crate::autodiff::product::<NdArray, NoCheckpointing>(lhs, rhs, false, primitive_gemm);
        let out = Tensor::<A, 2>::from_primitive(TensorPrimitive::Float(product));
        let grads = (out.clone() * out).sum().backward();
        assert_eq!(x.grad(&grads).unwrap().into_data(), gx.into_data());
        assert_eq!(w.grad(&grads).unwrap().into_data(), gw.into_data());
    }

    /// A projection's product with its bias: the forward equals Burn's `x·W + b` bit for bit; the
    /// gradients of `x` and `W` are Burn's bit for bit, the bias's within rounding of Burn's (it
    /// sums the rows in another order).
    #[test]
    fn biased_products_are_burns_linear() {
        type A = Autodiff<NdArray>;
        let device = Default::default();
        let x = Tensor::<A, 2>::from_data(random([300, 40], 6).into_data(), &device).require_grad();
        let w = Tensor::<A, 2>::from_data(random([40, 70], 7).into_data(), &device).require_grad();
        let b =
            Tensor::<A, 2>::from_data(random([1, 70], 8).into_data(), &device).reshape([70]).detach().require_grad();
        let upstream = Tensor::<A, 2>::from_data(random([300, 70], 9).into_data(), &device);
        let reference = x.clone().matmul(w.clone()) + b.clone().unsqueeze::<2>();
        let grads = (reference.clone() * upstream.clone()).sum().backward();
        let want = [x.grad(&grads).unwrap(), w.grad(&grads).unwrap()].map(|g| g.into_data());
        let want_bias = b.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
        let [lhs, rhs] = [x.clone(), w.clone()].map(|t| t.into_primitive().tensor());
        let bias = b.clone().into_primitive().tensor();
        let out = crate::autodiff::biased_product::<NdArray, NoCheckpointing>(lhs, rhs, bias, biased_kernels());
        let out = Tensor::<A, 2>::from_primitive(TensorPrimitive::Float(out));
        assert_eq!(out.clone().inner().into_data(), reference.inner().into_data());
        let grads = (out * upstream).sum().backward();
        assert_eq!([x.grad(&grads).unwrap(), w.grad(&grads).unwrap()].map(|g| g.into_data()), want);
        let got_bias = b.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
        for (got, want) in got_bias.iter().zip(&want_bias) {
            assert!((got - want).abs() <= 1e-4 * want.abs().max(1.0), "bias gradient {got} against Burn's {want}");
        }
    }

    /// `layers::linear_act` outside training, with the kernel installed, hands the GELU to the
    /// product (the bits of `activated_gemm`: the product, bias and GELU pass, tested in
    /// `fused`); a ReLU it leaves runs after the product, as `Activation::forward`.
    #[test]
    fn a_projections_gelu_outside_training_goes_to_the_kernel() {
        use burn::nn::LinearConfig;
        use prunelab_models::layers::linear_act;
        install();
        let device = Default::default();
        let linear = {
            // Burn's generator draws the weights: not between another test's seed and its draws.
            let _turn = RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            LinearConfig::new(40, 70).init::<NdArray>(&device)
        };
        let x = random([2 * 150, 40], 10).reshape([2, 150, 40]);
        let got = linear_act(&linear, x.clone(), Activation::Gelu).into_data().to_vec::<f32>().unwrap();
        let (w, b) = (linear.weight.val().into_data(), linear.bias.as_ref().unwrap().val().into_data());
        let x2 = x.clone().reshape([300, 40]).into_data();
        let view = |d: &burn::tensor::TensorData, shape: (usize, usize)| {
            Array2::from_shape_vec(shape, d.to_vec::<f32>().unwrap()).unwrap()
        };
        let (x2, w) = (view(&x2, (300, 40)), view(&w, (40, 70)));
        let bias = ndarray::Array1::from(b.to_vec::<f32>().unwrap());
        let want = activated_gemm(x2.view(), w.view(), Some(bias.view()), Some(Act::Gelu), threads());
        assert!(got.iter().zip(want.iter()).all(|(g, w)| g.to_bits() == w.to_bits()));
        let relu = linear_act(&linear, x.clone(), Activation::Relu);
        let after = prunelab_models::layers::linear(&linear, x).clamp_min(0.0);
        assert_eq!(relu.into_data(), after.into_data());
    }

    /// Column sums have the same bits on 1, 2, 3 and 7 threads, and are each column's sum.
    #[test]
    fn column_sums_do_not_depend_on_the_threads() {
        let g = random([1500, 1000], 10).into_data().to_vec::<f32>().unwrap();
        let g = Array2::from_shape_vec((1500, 1000), g).unwrap();
        let one = column_sums(g.view(), 1);
        for threads in [2, 3, 7] {
            assert_eq!(column_sums(g.view(), threads), one, "{threads} threads");
        }
        let column_3: f32 = g.column(3).iter().fold(0.0, |s, v| s + v);
        assert_eq!(one[3], column_3);
        // A transposed view (rows not contiguous) sums the same.
        let t = g.t().to_owned();
        assert_eq!(column_sums(t.t(), 2), one);
    }

    /// Attention's products — heads split by a swap of axes (not contiguous), keys transposed —
    /// equal Burn's batched matmul bit for bit, forward and both gradients, with 1–3 threads.
    #[test]
    fn batched_products_on_strided_operands_are_burns_bit_for_bit() {
        type A = Autodiff<NdArray>;
        let device = Default::default();
        let leaf = |seed| {
            let x = random([2 * 9, 3 * 8], seed).reshape([2, 9, 3, 8]);
            Tensor::<A, 4>::from_data(x.into_data(), &device).require_grad()
        };
        let (q_leaf, k_leaf) = (leaf(6), leaf(7));
        let (q, k) = (q_leaf.clone().swap_dims(1, 2), k_leaf.clone().swap_dims(1, 2));
        let reference = q.clone().matmul(k.clone().swap_dims(2, 3));
        let upstream = Tensor::<A, 4>::from_data(random([2 * 3 * 9, 9], 8).reshape([2, 3, 9, 9]).into_data(), &device);
        let grads = (reference.clone() * upstream.clone()).sum().backward();
        let want =
            (reference.into_data(), q_leaf.grad(&grads).unwrap().into_data(), k_leaf.grad(&grads).unwrap().into_data());

        // A fresh graph from the leaves (the first backward pass consumed the first one).
        let (q, k) = (q_leaf.clone().swap_dims(1, 2), k_leaf.clone().swap_dims(1, 2));
        let (lhs, rhs) = (q.clone().into_primitive().tensor(), k.clone().swap_dims(2, 3).into_primitive().tensor());
        let out = Tensor::<A, 4>::from_primitive(TensorPrimitive::Float(crate::autodiff::product::<
            NdArray,
            NoCheckpointing,
        >(lhs, rhs, false, primitive_gemm)));
        let grads = (out.clone() * upstream.clone()).sum().backward();
        assert_eq!(out.into_data(), want.0, "product");
        assert_eq!(q_leaf.grad(&grads).unwrap().into_data(), want.1, "query gradient");
        assert_eq!(k_leaf.grad(&grads).unwrap().into_data(), want.2, "key gradient");

        // Handed `k` itself (`layers::matmul_transposed`): the same bits, the key's gradient as
        // `gᵀ · q`, its heads interleaved as `q`'s are.
        let (q, k) = (q_leaf.clone().swap_dims(1, 2), k_leaf.clone().swap_dims(1, 2));
        let (lhs, rhs) = (q.clone().into_primitive().tensor(), k.clone().into_primitive().tensor());
        let out = Tensor::<A, 4>::from_primitive(TensorPrimitive::Float(crate::autodiff::product::<
            NdArray,
            NoCheckpointing,
        >(lhs, rhs, true, primitive_gemm)));
        let grads = (out.clone() * upstream).sum().backward();
        assert_eq!(out.into_data(), want.0, "product, rhs transposed");
        assert_eq!(q_leaf.grad(&grads).unwrap().into_data(), want.1, "query gradient, rhs transposed");
        assert_eq!(k_leaf.grad(&grads).unwrap().into_data(), want.2, "key gradient, rhs transposed");

        let (qv, kv) = (q.inner().into_data(), k.inner().into_data());
        let plain = |d: TensorData| Tensor::<B, 4>::from_data(d, &device);
        let burns = plain(qv.clone()).matmul(plain(kv.clone()).swap_dims(2, 3)).into_data().to_vec::<f32>().unwrap();
        let (qa, ka) = (array(plain(qv).into_primitive().tensor()), array(plain(kv).into_primitive().tensor()));
        for threads in [1, 2, 3] {
            let got = batched_gemm(qa.view(), false, ka.view(), true, threads);
            assert!(got.iter().copied().eq(burns.iter().copied()), "{threads} threads");
        }
    }

    /// `probs · v` with `v`'s heads interleaved (split by a swap of axes): Burn's batched matmul
    /// bit for bit, forward and both gradients, on 1–3 threads; the output's heads lie
    /// interleaved too, so that merging them back is standard layout (a view, no copy).
    #[test]
    fn products_into_interleaved_heads_are_burns_and_merge_without_a_copy() {
        type A = Autodiff<NdArray>;
        let device = Default::default();
        let (batch, seq, heads, dim) = (3, 9, 4, 8);
        let v_leaf = Tensor::<A, 4>::from_data(
            random([batch * seq, heads * dim], 9).reshape([batch, seq, heads, dim]).into_data(),
            &device,
        )
        .require_grad();
        let p_leaf = Tensor::<A, 4>::from_data(
            random([batch * heads * seq, seq], 10).reshape([batch, heads, seq, seq]).into_data(),
            &device,
        )
        .require_grad();
        let upstream = Tensor::<A, 4>::from_data(
            random([batch * heads * seq, dim], 11).reshape([batch, heads, seq, dim]).into_data(),
            &device,
        );
        let reference = p_leaf.clone().matmul(v_leaf.clone().swap_dims(1, 2));
        let grads = (reference.clone() * upstream.clone()).sum().backward();
        let want =
            (reference.into_data(), p_leaf.grad(&grads).unwrap().into_data(), v_leaf.grad(&grads).unwrap().into_data());

        let (lhs, rhs) =
            (p_leaf.clone().into_primitive().tensor(), v_leaf.clone().swap_dims(1, 2).into_primitive().tensor());
        let out = Tensor::<A, 4>::from_primitive(TensorPrimitive::Float(crate::autodiff::product::<
            NdArray,
            NoCheckpointing,
        >(lhs, rhs, false, primitive_gemm)));
        let grads = (out.clone() * upstream).sum().backward();
        assert_eq!(out.into_data(), want.0, "product");
        assert_eq!(p_leaf.grad(&grads).unwrap().into_data(), want.1, "probabilities' gradient");
        assert_eq!(v_leaf.grad(&grads).unwrap().into_data(), want.2, "values' gradient");

        let (pa, va) =
            (array(p_leaf.inner().into_primitive().tensor()), array(v_leaf.inner().into_primitive().tensor()));
        let va = va.view().permuted_axes(IxDyn(&[0, 2, 1, 3]));
        // GPT-2's values: the last third of each row of a fused `[batch, seq, 3 · heads · dim]`.
        let rows = va.view().permuted_axes(IxDyn(&[0, 2, 1, 3]));
        let mut fused = ndarray::ArrayD::<f32>::zeros(IxDyn(&[batch, seq, 3 * heads, dim]));
        fused.slice_axis_mut(Axis(2), ndarray::Slice::from(2 * heads..3 * heads)).assign(&rows);
        let gpt2 = fused.slice_axis(Axis(2), ndarray::Slice::from(2 * heads..3 * heads));
        let gpt2 = gpt2.permuted_axes(IxDyn(&[0, 2, 1, 3]));
        assert_eq!(gpt2.strides(), [(seq * 3 * heads * dim) as isize, dim as isize, (3 * heads * dim) as isize, 1]);
        for (case, values) in [("own projection", va.clone()), ("GPT-2's fused projection", gpt2.clone())] {
            for threads in [1, 2, 3] {
                let got = batched_gemm(pa.view(), false, values.clone(), false, threads);
                assert!(got.iter().copied().eq(want.0.iter::<f32>()), "{case}, {threads} threads");
                let merged = got.view().permuted_axes(IxDyn(&[0, 2, 1, 3]));
                assert!(merged.is_standard_layout(), "{case}: heads merged back without a copy ({threads} threads)");
            }
        }
    }
}
