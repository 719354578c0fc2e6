//! An f32 matrix product with SIMD micro-kernels of our own (`C = A · B`), for CPUs with AVX-512
//! ([`super::avx512`]) or AVX2 and FMA ([`super::avx2`], most laptops).
//!
//! matrixmultiply, the kernel Burn's CPU backend calls, has AVX2 + FMA kernels only; on an
//! AVX-512 Xeon, torch's products are 2.1× faster (`bench/NOTES.md`). This is the textbook
//! blocked product (GotoBLAS's loop order): `B` packed in panels of [`Tile::NR`] columns for each
//! [`KC`]-deep slice of `k`, `A` read in blocks of [`Tile::MR`] rows where it lies (packed only
//! when neither axis has a unit stride, or for a last, partial block), and an `MR × NR`
//! micro-kernel keeping its accumulators in registers. Products of two slices into wide outputs
//! take the columns in blocks instead ([`blocked_by_columns`]), so that a block of the output
//! stays in cache between its two slices; a bias is added as the last slice is stored.
//!
//! Every output element is the same sum in the same order whatever the tile and the split of the
//! rows over threads: within a `KC` slice, fused multiply-adds in `k` order from 0; the slices'
//! sums added to the output in order. That is also what matrixmultiply's FMA kernel computes (its
//! `k` slices are 256 deep too, and it adds each to the output the same way), so the products are
//! Burn's bit for bit on every CPU with AVX2 and FMA — `cpu`'s tests check it on every layout,
//! with more than one slice, for both tiles.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::mem::MaybeUninit;

use ndarray::{ArrayView2, ArrayViewMut2, s};

use super::{Act, Epilogue};

/// Depth of one packed slice of `k` (a `KC × NR` panel of `B` is 16–32 KiB: L1).
const KC: usize = 256;
/// Rows of `A` packed at a time, at most (`MC × KC` is 64 KiB: L2); a whole number of tiles.
const MC: usize = 64;
/// Columns per block in [`blocked_by_columns`]: a block's panels for every slice of `k` are
/// `k × NB` values (384 KiB at k = 384: L2); a whole number of panels.
const NB: usize = 256;

/// A micro-kernel and what it needs of the CPU: an `MR × NR` tile of the output kept in
/// registers (`NR` dividing [`NB`] and `COLUMN_BLOCK`, `MR` at most [`MC`]).
pub trait Tile {
    /// Rows of the tile.
    const MR: usize;
    /// Columns of the tile (whole vector registers).
    const NR: usize;
    /// Rows of `A` per block: the most whole tiles in [`MC`].
    const MC: usize = MC / Self::MR * Self::MR;

    /// Whether this CPU has the instructions and the kernels may use them (`super::isa`).
    fn available() -> bool;

    /// The `store.rows × store.cols` tile at `c` gets — or, with `store.add`, is added — the
    /// product of an `A` block and a packed `B` panel, `kc` deep: in each lane a fused multiply-add
    /// per step of `k`, from 0, in order; then `store.bias` added when given (a partial tile by
    /// masked loads and stores: the same sums, in the same order, as a whole one).
    ///
    /// # Safety
    /// [`Tile::available`]; `a` addresses `kc` steps of `MR` readable values, `b` holds
    /// `kc · NR`, `c` `store.rows` rows of `store.cols` writable values `store.ldc` apart, and a
    /// bias `store.cols` readable values.
    unsafe fn kernel(kc: usize, a: Block, b: *const f32, c: *mut f32, store: Store);

    /// `act` on the `mr` rows of `nr` values at `at`, `ldc` apart (a tile just stored), compiled
    /// with the target features of the fused passes' loops (`fused::block_of_rows`) at this level,
    /// so that their vectorised arithmetic, and bits, are the same.
    ///
    /// # Safety
    /// [`Tile::available`]; the rows are inside an output only this thread writes, every value
    /// written.
    unsafe fn activate(act: Act, at: *mut f32, ldc: usize, mr: usize, nr: usize);

    /// `kc` rows of `nr ≤ NR` elements, element (p, jj) at `at + p·row + jj·column`, into `dst`
    /// as rows of `NR` (zeros after `nr`), by the vector unit's gathers.
    ///
    /// # Safety
    /// [`Tile::available`]; every element addressed is readable; `jj · column` fits an `i32` for
    /// `jj < NR` when multiplied by 4 (the gather's byte offsets); `dst` holds `kc · NR` elements.
    unsafe fn gather_rows(at: *const f32, row: isize, column: isize, kc: usize, nr: usize, dst: &mut [f32]);
}

/// `out = a · b`, plus `end.bias[j]` added to every element of column `j` when given (after the
/// product's last slice, as a pass of its own would add it: the same bits) and then through
/// `end.act` (on each tile as it is stored: the same bits as a pass of its own), `out` the `m × n`
/// output — its rows any distance apart, each row's elements adjacent (a block of columns of a
/// wider matrix, say) — which need not be initialised: every element is written (and only read
/// back after that, to add a later slice of `k`). Call only where [`Tile::available`] is true.
pub fn gemm<T: Tile>(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    end: Epilogue<'_>,
    mut out: ArrayViewMut2<'_, MaybeUninit<f32>>,
) {
    assert!(T::available(), "a micro-kernel on a CPU without its instructions");
    let bias = end.bias;
    let (m, k) = a.dim();
    let n = b.ncols();
    assert_eq!((b.nrows(), out.dim()), (k, (m, n)), "operand shapes");
    assert!(bias.is_none_or(|bias| bias.len() == n), "a bias of one value per column");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // An empty sum is 0, and `0 + bias` is what the bias pass made of it (−0 becomes +0).
        for mut row in out.rows_mut() {
            row.iter_mut().enumerate().for_each(|(j, o)| {
                let sum = bias.map_or(0.0, |bias| 0.0 + bias[j]);
                _ = o.write(end.act.map_or(sum, |act| act.of(sum)));
            });
        }
        return;
    }
    let (row_stride, column_stride) = (out.strides()[0], out.strides()[1]);
    assert!(column_stride == 1 || n == 1, "an output whose rows' elements are adjacent");
    let ldc = if m == 1 { n } else { usize::try_from(row_stride).expect("an output's rows in order") };
    assert!(ldc >= n, "an output whose rows do not overlap");
    let panels = n.div_ceil(T::NR);
    let depth = KC.min(k);
    let by_columns = by_columns(m, k, n);
    let b_len = if by_columns { k * NB } else { depth * T::NR * panels };
    SCRATCH.with_borrow_mut(|(b_store, a_store)| {
        let b_pack = aligned(at_least(b_store, b_len + 16));
        let a_pack = aligned(at_least(a_store, depth * T::MC.min(m).next_multiple_of(T::MR) + 16));
        let out = Out { at: out.as_mut_ptr().cast(), ldc };
        // SAFETY: `out` is `m × n` with rows `ldc ≥ n` apart and adjacent elements (checked
        // above), exclusively borrowed for the call.
        unsafe {
            if by_columns {
                blocked_by_columns::<T>(a, b, end, out, b_pack, a_pack);
            } else {
                blocked::<T>(a, b, end, out, b_pack, a_pack);
            }
        }
    });
}

/// Whether an `m × k × n` product takes [`blocked_by_columns`]'s order: two slices of `k` into
/// more than one block of columns and of rows (the MLP's first product and its input's gradient
/// through the second, 1.10–1.18× faster; six slices were not, `bench/NOTES.md`).
fn by_columns(m: usize, k: usize, n: usize) -> bool {
    k > KC && k <= 2 * KC && n > NB && m > MC
}

/// The output of [`blocked`]: element (i, j) at `at + i·ldc + j`.
#[derive(Clone, Copy)]
struct Out {
    at: *mut f32,
    ldc: usize,
}

thread_local! {
    /// Each thread's packing buffers (`B`'s panels, `A`'s blocks), kept from one product to the
    /// next: a pair of fresh zeroed 64 KiB buffers per call cost more than the product itself on
    /// the attention's per-head matrices (`bench/NOTES.md`).
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `buffer`, grown to at least `len` elements (new ones zero; the packing writes every element a
/// product reads before it reads it).
fn at_least(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    &mut buffer[..len]
}

/// [`gemm`]'s loops, with packing buffers for `kc`-deep panels of every column of `b` and for
/// `T::MC.min(m)` rows of `a` (rounded up to whole `MR`-row blocks), each from a 64-byte boundary.
/// GotoBLAS's order: each slice of `k` packed for all columns, then run over every block of
/// rows, the slices' sums meeting in `out`.
///
/// # Safety
/// `out` addresses `a.nrows() × b.ncols()` writable `f32`s (initialised or not) at its strides,
/// which nothing else reads or writes during the call; `end.bias`, when given, has `b.ncols()`
/// values.
unsafe fn blocked<T: Tile>(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    end: Epilogue<'_>,
    out: Out,
    b_pack: &mut [f32],
    a_pack: &mut [f32],
) {
    let (m, k) = a.dim();
    let mut rows = Rows::new(&a, a_pack);
    for k0 in (0..k).step_by(KC) {
        let kc = KC.min(k - k0);
        pack_b::<T>(&b, k0, kc, b_pack);
        for m0 in (0..m).step_by(T::MC) {
            // SAFETY: the caller's contract, passed on; `b_pack` holds this slice's panels.
            unsafe {
                rows.slice_of_block::<T>(m0..T::MC.min(m - m0) + m0, k0..k0 + kc, b_pack, 0..b.ncols(), end, out)
            };
        }
    }
}

/// [`gemm`]'s loops for products of few slices of `k` into a wide output: the columns in blocks
/// of [`NB`], all of a block's slices packed at once (`b_pack` holds `k × NB` values), then each
/// block of rows run through every slice before the next — so that the rows' block of the output
/// is still in cache when the next slice adds into it, where GotoBLAS's order reads it back from
/// memory once per slice.
///
/// # Safety
/// As [`blocked`]'s.
unsafe fn blocked_by_columns<T: Tile>(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    end: Epilogue<'_>,
    out: Out,
    b_pack: &mut [f32],
    a_pack: &mut [f32],
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    let mut rows = Rows::new(&a, a_pack);
    for j_block in (0..n).step_by(NB) {
        let columns = j_block..NB.min(n - j_block) + j_block;
        let width = columns.len().div_ceil(T::NR) * T::NR;
        let block = b.slice(s![.., columns.clone()]);
        for k0 in (0..k).step_by(KC) {
            pack_b::<T>(&block, k0, KC.min(k - k0), &mut b_pack[k0 * width..]);
        }
        for m0 in (0..m).step_by(T::MC) {
            for k0 in (0..k).step_by(KC) {
                let depth = k0..KC.min(k - k0) + k0;
                let panels = &b_pack[k0 * width..];
                // SAFETY: the caller's contract, passed on; `panels` holds this slice's panels of
                // the block's columns.
                unsafe {
                    rows.slice_of_block::<T>(m0..T::MC.min(m - m0) + m0, depth, panels, columns.clone(), end, out)
                };
            }
        }
    }
}

/// `A` as the loops read it, and what they need beside it: where `a` has a unit stride along one
/// axis, whole MR-row blocks are read in place (element (r, p) at `r·row + p·col`), and only a
/// last, partial block is packed (into `a_pack`): packing every block cost about a third of the
/// kernel's time on MiniLM's products (`bench/NOTES.md`).
struct Rows<'a> {
    a: &'a ArrayView2<'a, f32>,
    in_place: Option<(usize, usize)>,
    a_pack: &'a mut [f32],
}

impl<'a> Rows<'a> {
    fn new(a: &'a ArrayView2<'a, f32>, a_pack: &'a mut [f32]) -> Self {
        let strides = a.strides();
        let in_place = match (strides[0], strides[1]) {
            (row, 1) if row >= 0 => Some((row as usize, 1)),
            (1, col) if col >= 0 => Some((1, col as usize)),
            _ => None,
        };
        Self { a, in_place, a_pack }
    }

    /// The slice `depth` of `k` for the output's `rows` (at most [`Tile::MC`]) and `columns`, whose
    /// packed panels (`depth.len()` × [`Tile::NR`] each) are `panels`, one after the other: written
    /// into `out` for the first slice, added to it for the others, and `end.bias` (one value per
    /// column of the whole output) added with the last, each tile then through `end.act`.
    ///
    /// # Safety
    /// As [`blocked`]'s; `rows` and `columns` are inside the output, `panels` holds their
    /// panels, and the slices of an element run in order from the first.
    unsafe fn slice_of_block<T: Tile>(
        &mut self,
        rows: std::ops::Range<usize>,
        depth: std::ops::Range<usize>,
        panels: &[f32],
        columns: std::ops::Range<usize>,
        end: Epilogue<'_>,
        out: Out,
    ) {
        let (m0, mc, k0, kc) = (rows.start, rows.len(), depth.start, depth.len());
        let last = depth.end == self.a.ncols();
        let (bias, act) = if last { (end.bias, end.act) } else { (None, None) };
        let (mr_full, nr_full) = (T::MR, T::NR);
        let packed = self.in_place.is_none() || !mc.is_multiple_of(mr_full);
        if packed {
            pack_a(self.a, m0, mc, k0, kc, mr_full, self.a_pack);
        }
        for (panel, j0) in columns.clone().step_by(nr_full).enumerate() {
            let nr = nr_full.min(columns.end - j0);
            let b_panel = &panels[panel * kc * nr_full..][..kc * nr_full];
            for i0 in (0..mc).step_by(mr_full) {
                let mr = mr_full.min(mc - i0);
                let a = match self.in_place {
                    Some((row, col)) if !packed => {
                        // SAFETY: rows `m0 + i0 ..+ MR` and columns `k0 ..+ kc` are inside `a`
                        // (`mc` is whole blocks here), whose strides these are.
                        Block { at: unsafe { self.a.as_ptr().add((m0 + i0) * row + k0 * col) }, row, col }
                    }
                    _ => Block { at: self.a_pack[i0 * kc..][..kc * mr_full].as_ptr(), row: 1, col: mr_full },
                };
                // SAFETY: `T::available()` was checked by `gemm`; the A block holds `kc` steps of MR
                // values at its strides and the B panel `kc` steps of NR; the tile's rows
                // `m0 + i0 ..+ mr` and columns `j0 ..+ nr` are inside `out` (the caller's
                // contract), the kernel's masked stores write exactly those, and `add` reads them
                // only after the slice before wrote them; `activate` rewrites them after this
                // slice wrote them.
                unsafe {
                    let at = out.at.add((m0 + i0) * out.ldc + j0);
                    let bias = bias.map(|bias| bias[j0..j0 + nr].as_ptr());
                    let store = Store { ldc: out.ldc, rows: mr, cols: nr, add: k0 > 0, bias };
                    T::kernel(kc, a, b_panel.as_ptr(), at, store);
                    if let Some(act) = act {
                        T::activate(act, at, out.ldc, mr, nr);
                    }
                }
            }
        }
    }
}

/// `buffer` from its first 64-byte boundary on (a panel's rows are then whole cache lines, and
/// no load of the micro-kernel splits across two).
fn aligned(buffer: &mut [f32]) -> &mut [f32] {
    let skip = buffer.as_ptr().align_offset(64).min(buffer.len());
    &mut buffer[skip..]
}

/// `b[k0..k0+kc, ..]` as `NR`-column panels, each `kc × NR` row-major (one after the other),
/// zero-padded on the right. Rows with a unit stride are copied as slices; otherwise (a transposed
/// operand: the attention's `kᵀ`) each row of a panel is gathered from its columns
/// ([`pack_strided`]).
fn pack_b<T: Tile>(b: &ArrayView2<'_, f32>, k0: usize, kc: usize, pack: &mut [f32]) {
    let n = b.ncols();
    let rows_contiguous = b.ncols() <= 1 || b.strides()[1] == 1;
    for (panel, j0) in (0..n).step_by(T::NR).enumerate() {
        let nr = T::NR.min(n - j0);
        let dst = &mut pack[panel * kc * T::NR..][..kc * T::NR];
        if rows_contiguous {
            for (p, dst) in dst.chunks_exact_mut(T::NR).enumerate() {
                let row = b.row(k0 + p);
                let row = row.as_slice().expect("a row of unit stride");
                dst[..nr].copy_from_slice(&row[j0..j0 + nr]);
                dst[nr..].fill(0.0);
            }
        } else {
            pack_strided::<T>(&b.slice(s![k0..k0 + kc, j0..j0 + nr]), dst);
        }
    }
}

/// A `kc × nr` block of `B` (`nr ≤ NR`, its rows' elements not adjacent) into `dst` as `kc` rows
/// of `NR`, zero-padded on the right: each row by the tile's gathers ([`Tile::gather_rows`],
/// masked to the block's columns) where the column offsets fit the gather's 32-bit indices, else
/// element by element. Row by row, so that
/// the writes are whole cache lines and the columns' lines stay in L1 from one row to the next:
/// column by column, through a strided view each, this loop was 8 % of an evaluation
/// (`bench/NOTES.md`).
fn pack_strided<T: Tile>(block: &ArrayView2<'_, f32>, dst: &mut [f32]) {
    let (kc, nr) = block.dim();
    let (row_stride, column_stride) = (block.strides()[0], block.strides()[1]);
    if (0..=i32::MAX as isize / (4 * T::NR as isize)).contains(&column_stride) {
        // SAFETY: `gemm` checked `T::available()`; the block holds `kc` rows of `nr` elements at its
        // strides (the gathers read no lane past `nr`), each column offset `jj · column_stride`
        // (< NR · column_stride) fits the gather's `i32` byte offsets (checked above), and `dst`
        // holds `kc · NR` elements.
        unsafe { T::gather_rows(block.as_ptr(), row_stride, column_stride, kc, nr, dst) };
        return;
    }
    for (p, row) in dst.chunks_exact_mut(T::NR).enumerate() {
        for (jj, v) in row[..nr].iter_mut().enumerate() {
            *v = block[[p, jj]];
        }
        row[nr..].fill(0.0);
    }
}

/// `a[m0..m0+mc, k0..k0+kc]` as `tile`-row panels, each `kc × tile` (column of the block by
/// column), zero-padded below.
fn pack_a(a: &ArrayView2<'_, f32>, m0: usize, mc: usize, k0: usize, kc: usize, tile: usize, pack: &mut [f32]) {
    for i0 in (0..mc).step_by(tile) {
        let mr = tile.min(mc - i0);
        let dst = &mut pack[i0 * kc..][..kc * tile];
        for r in 0..tile {
            if r >= mr {
                (0..kc).for_each(|p| dst[p * tile + r] = 0.0);
                continue;
            }
            let row = a.row(m0 + i0 + r);
            match row.as_slice() {
                Some(row) => row[k0..k0 + kc].iter().enumerate().for_each(|(p, v)| dst[p * tile + r] = *v),
                None => row.iter().skip(k0).take(kc).enumerate().for_each(|(p, v)| dst[p * tile + r] = *v),
            }
        }
    }
}

/// `MR` rows of `A`, `kc` deep, where the kernel reads them: element (r, p) at
/// `at + r·row + p·col` — a packed panel (`row` 1, `col` MR), or `A` itself.
#[derive(Clone, Copy)]
pub struct Block {
    pub at: *const f32,
    pub row: usize,
    pub col: usize,
}

/// How [`Tile::kernel`] stores its tile: its first `rows` rows (at most `MR`) and `cols` columns
/// (at most `NR`), rows `ldc` apart, added to what is there (`add`), and then a bias (`cols`
/// values, one per column) added.
#[derive(Clone, Copy)]
pub struct Store {
    pub ldc: usize,
    pub rows: usize,
    pub cols: usize,
    pub add: bool,
    pub bias: Option<*const f32>,
}

#[cfg(test)]
mod tests {
    use ndarray::{Array1, Array2, ShapeBuilder};

    use super::*;
    use crate::cpu::avx2::Avx2;
    use crate::cpu::avx512::Avx512;

    /// `$check::<T>()` for each tile this CPU runs (both, on one with AVX-512).
    macro_rules! on_each_tile {
        ($check:ident) => {
            if Avx512::available() {
                $check::<Avx512>();
            }
            if Avx2::available() {
                $check::<Avx2>();
            }
        };
    }

    fn matrix(rows: usize, cols: usize, seed: u32, column_major: bool) -> Array2<f32> {
        let values =
            (0..rows * cols).map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ seed) as f32 / u32::MAX as f32 - 0.5);
        let values = values.collect();
        if column_major {
            Array2::from_shape_vec((rows, cols).f(), values).unwrap()
        } else {
            Array2::from_shape_vec((rows, cols), values).unwrap()
        }
    }

    /// Against an f64 reference, on shapes with every kind of edge (rows, columns and depth not
    /// multiples of the blocks) and on transposed (column-major) operands, each thread's packing
    /// buffers reused from one product to the next.
    #[test]
    fn products_match_an_f64_reference() {
        on_each_tile!(products_match_an_f64_reference_with);
    }

    fn products_match_an_f64_reference_with<T: Tile>() {
        let shapes = [(1, 1, 1), (9, 33, 31), (70, 300, 65), (128, 600, 96), (52, 32, 52), (3, 2, 70)];
        let layouts = [(false, false), (true, false), (false, true), (true, true)];
        for ((m, k, n), (a_column_major, b_column_major)) in shapes.into_iter().flat_map(|s| layouts.map(|l| (s, l))) {
            let (a, b) = (matrix(m, k, 1, a_column_major), matrix(k, n, 2, b_column_major));
            // NaN where nothing writes: an element the product skipped would show.
            let mut out = Array2::from_elem((m, n), MaybeUninit::new(f32::NAN));
            gemm::<T>(a.view(), b.view(), Epilogue::default(), out.view_mut());
            // SAFETY: every element was initialised (to NaN) above.
            let out = out.mapv(|v| unsafe { v.assume_init() });
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = (0..k).map(|p| a[[i, p]] as f64 * b[[p, j]] as f64).sum();
                    assert!(
                        (out[[i, j]] as f64 - want).abs() < 1e-5 * (k as f64).sqrt(),
                        "[{m}, {k}, {n}], column-major a {a_column_major} b {b_column_major}, at ({i}, {j})"
                    );
                }
            }
        }
    }

    /// Products that take the order by blocks of columns (two slices of `k`, wider than a block,
    /// a last block and panel partial, `A` in place and packed) are matrixmultiply's bit for bit,
    /// with and without a bias.
    #[test]
    fn products_by_blocks_of_columns_are_matrixmultiplys() {
        on_each_tile!(products_by_blocks_of_columns_are_matrixmultiplys_with);
    }

    fn products_by_blocks_of_columns_are_matrixmultiplys_with<T: Tile>() {
        for ((m, k, n), a_column_major) in [((100, 300, 300), false), ((67, 512, 530), true), ((130, 257, 257), false)]
        {
            assert!(by_columns(m, k, n), "[{m}, {k}, {n}] takes the order by columns");
            let (a, b) = (matrix(m, k, 7, a_column_major), matrix(k, n, 8, false));
            let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.01 - 1.0).collect();
            let mut want = Array2::<f32>::zeros((m, n));
            ndarray::linalg::general_mat_mul(1.0, &a, &b, 0.0, &mut want);
            for with_bias in [false, true] {
                let mut out = Array2::from_elem((m, n), MaybeUninit::new(f32::NAN));
                let end = Epilogue { bias: with_bias.then_some(&bias[..]), act: None };
                gemm::<T>(a.view(), b.view(), end, out.view_mut());
                // SAFETY: every element was initialised (to NaN) above.
                let out = out.mapv(|v| unsafe { v.assume_init() });
                let want = if with_bias { &want + &Array1::from(bias.clone()) } else { want.clone() };
                assert!(
                    out.iter().zip(&want).all(|(o, w)| o.to_bits() == w.to_bits()),
                    "[{m}, {k}, {n}], column-major a {a_column_major}, bias {with_bias}"
                );
            }
        }
    }

    /// Into a block of columns of a wider output (its rows farther apart than its width): the
    /// block gets the product, bit for bit the product into a matrix of its own, and the columns
    /// around it are left as they were.
    #[test]
    fn products_into_a_block_of_columns() {
        on_each_tile!(products_into_a_block_of_columns_with);
    }

    fn products_into_a_block_of_columns_with<T: Tile>() {
        let (m, k, n) = (70, 300, 65);
        let (a, b) = (matrix(m, k, 3, false), matrix(k, n, 4, false));
        let mut alone = Array2::from_elem((m, n), MaybeUninit::new(f32::NAN));
        gemm::<T>(a.view(), b.view(), Epilogue::default(), alone.view_mut());
        let mut wide = Array2::from_elem((m, n + 40), MaybeUninit::new(-1.0f32));
        gemm::<T>(a.view(), b.view(), Epilogue::default(), wide.slice_mut(s![.., 17..17 + n]));
        // SAFETY: every element was initialised above.
        let (alone, wide) = (alone.mapv(|v| unsafe { v.assume_init() }), wide.mapv(|v| unsafe { v.assume_init() }));
        assert_eq!(wide.slice(s![.., 17..17 + n]), alone);
        assert!(wide.slice(s![.., ..17]).iter().chain(wide.slice(s![.., 17 + n..])).all(|&v| v == -1.0));
    }

    /// A bias and an activation on tiles of every size (rows, columns and depth not multiples of
    /// the tile, two slices of `k`): the bits of matrixmultiply's product, then the bias, then
    /// the activation's pass.
    #[test]
    fn biased_activated_products_are_the_passes_after_the_product() {
        on_each_tile!(biased_activated_products_are_the_passes_after_the_product_with);
    }

    fn biased_activated_products_are_the_passes_after_the_product_with<T: Tile>() {
        for (m, k, n) in [(13, 300, 45), (7, 31, 17), (64, 257, 100)] {
            let (a, b) = (matrix(m, k, 11, false), matrix(k, n, 12, false));
            let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.03 - 0.7).collect();
            let mut want = Array2::<f32>::zeros((m, n));
            ndarray::linalg::general_mat_mul(1.0, &a, &b, 0.0, &mut want);
            want += &Array1::from(bias.clone());
            for act in [Act::Gelu, Act::GeluTanh] {
                let mut passes = want.clone();
                passes.rows_mut().into_iter().for_each(|mut row| act.on(row.as_slice_mut().unwrap()));
                let mut out = Array2::from_elem((m, n), MaybeUninit::new(f32::NAN));
                gemm::<T>(a.view(), b.view(), Epilogue { bias: Some(&bias), act: Some(act) }, out.view_mut());
                // SAFETY: every element was initialised (to NaN) above.
                let out = out.mapv(|v| unsafe { v.assume_init() });
                assert!(
                    out.iter().zip(&passes).all(|(o, w)| o.to_bits() == w.to_bits()),
                    "{} [{m}, {k}, {n}], {act:?}",
                    std::any::type_name::<T>()
                );
            }
        }
    }
}
