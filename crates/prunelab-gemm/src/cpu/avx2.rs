//! The AVX2 + FMA micro-kernel of [`super::product`], for CPUs without AVX-512 (most laptops):
//! a 6 × 16 tile of the output in 12 of the 16 registers (two 8-lane halves a row), 2 loads of
//! `B`, 6 broadcasts of `A` and 12 fused multiply-adds per step of `k` — the tile BLIS uses on
//! Haswell and later, where matrixmultiply's 8 × 8 tile does 8 multiply-adds per step with 3 loads
//! and 3 permutes, and packs both operands. Partial tiles by `vmaskmovps` loads and stores;
//! transposed `B` packed by 8-lane gathers. The sums are the AVX-512 kernel's and
//! matrixmultiply's: each lane a chain of fused multiply-adds in `k` order from 0.
#![allow(unsafe_code)]

use std::arch::x86_64::{
    __m256, __m256i, _mm256_add_ps, _mm256_castsi256_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_loadu_si256,
    _mm256_mask_i32gather_ps, _mm256_maskload_ps, _mm256_maskstore_ps, _mm256_set1_ps, _mm256_setzero_ps,
    _mm256_storeu_ps,
};

use super::Act;
use super::isa::{Isa, isa};
use super::product::{Block, Store, Tile};

/// Rows of the tile.
const MR: usize = 6;
/// Columns of the tile: two 8-lane registers.
const NR: usize = 16;

/// The tile for CPUs with AVX2 and FMA.
pub struct Avx2;

impl Tile for Avx2 {
    const MR: usize = MR;
    const NR: usize = NR;

    fn available() -> bool {
        isa() >= Isa::Avx2
    }

    unsafe fn kernel(kc: usize, a: Block, b: *const f32, c: *mut f32, store: Store) {
        // SAFETY: the trait's contract, which includes `available()`.
        unsafe { kernel(kc, a, b, c, store) }
    }

    unsafe fn activate(act: Act, at: *mut f32, ldc: usize, mr: usize, nr: usize) {
        // SAFETY: as above.
        unsafe { activate(act, at, ldc, mr, nr) }
    }

    unsafe fn gather_rows(at: *const f32, row: isize, column: isize, kc: usize, nr: usize, dst: &mut [f32]) {
        // SAFETY: as above.
        unsafe { gather_rows(at, row, column, kc, nr, dst) }
    }
}

/// The lanes of an 8-lane half whose column is below `cols` (−1: on, 0: off), for the first
/// half and the second, as `vmaskmovps` and masked gathers take them.
#[target_feature(enable = "avx2")]
fn masks(cols: usize) -> (__m256i, __m256i) {
    let lanes = |offset: usize| -> [i32; 8] { std::array::from_fn(|i| if offset + i < cols { -1 } else { 0 }) };
    let (low, high) = (lanes(0), lanes(8));
    // SAFETY: each array is 32 readable bytes, and `loadu` needs no alignment.
    unsafe { (_mm256_loadu_si256(low.as_ptr().cast()), _mm256_loadu_si256(high.as_ptr().cast())) }
}

/// [`Tile::kernel`] for this tile.
///
/// # Safety
/// AVX2 and FMA present; `a` addresses `kc` steps of MR readable values, `b` holds `kc · NR`, `c`
/// `store.rows` rows of `store.cols` writable values `store.ldc` apart, and a bias `store.cols`
/// readable values.
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel(kc: usize, a: Block, b: *const f32, c: *mut f32, store: Store) {
    let mut acc: [__m256; 2 * MR] = [_mm256_setzero_ps(); 2 * MR];
    for p in 0..kc {
        // SAFETY: within the block and the panel (the caller's contract).
        unsafe {
            let b0 = _mm256_loadu_ps(b.add(p * NR));
            let b1 = _mm256_loadu_ps(b.add(p * NR + 8));
            let a_p = a.at.add(p * a.col);
            for r in 0..MR {
                let a_r = _mm256_set1_ps(*a_p.add(r * a.row));
                acc[2 * r] = _mm256_fmadd_ps(a_r, b0, acc[2 * r]);
                acc[2 * r + 1] = _mm256_fmadd_ps(a_r, b1, acc[2 * r + 1]);
            }
        }
    }
    let (lo_mask, hi_mask) = masks(store.cols);
    // SAFETY: `store.cols` values (the caller's contract); masked-off lanes are not read (and
    // fault on nothing), and the second half's address is only formed, not read, past them.
    let bias = store
        .bias
        .map(|bias| unsafe { (_mm256_maskload_ps(bias, lo_mask), _mm256_maskload_ps(bias.wrapping_add(8), hi_mask)) });
    for r in 0..MR {
        if r == store.rows {
            break;
        }
        // SAFETY: row `r` of the tile, its first `store.cols` values (the caller's contract);
        // masked-off lanes are neither read nor written.
        unsafe {
            let row = c.add(r * store.ldc);
            let (mut lo, mut hi) = (acc[2 * r], acc[2 * r + 1]);
            if store.add {
                lo = _mm256_add_ps(_mm256_maskload_ps(row, lo_mask), lo);
                hi = _mm256_add_ps(_mm256_maskload_ps(row.wrapping_add(8), hi_mask), hi);
            }
            if let Some((bias_lo, bias_hi)) = bias {
                lo = _mm256_add_ps(lo, bias_lo);
                hi = _mm256_add_ps(hi, bias_hi);
            }
            _mm256_maskstore_ps(row, lo_mask, lo);
            _mm256_maskstore_ps(row.wrapping_add(8), hi_mask, hi);
        }
    }
}

/// [`Tile::activate`] for this tile, compiled as `fused::block_of_rows`' AVX2 copy is.
///
/// # Safety
/// AVX2 and FMA present; the rows are inside an output only this thread writes, every value
/// written.
#[target_feature(enable = "avx2,fma")]
unsafe fn activate(act: Act, at: *mut f32, ldc: usize, mr: usize, nr: usize) {
    for r in 0..mr {
        // SAFETY: row `r` of the tile (the caller's contract).
        let row = unsafe { std::slice::from_raw_parts_mut(at.add(r * ldc), nr) };
        act.on(row);
    }
}

/// [`Tile::gather_rows`] for this tile: each row as two 8-lane gathers, masked to the block's
/// columns.
///
/// # Safety
/// AVX2 present; every element addressed is readable; `jj · column` fits an `i32` for `jj < NR`
/// when multiplied by 4; `dst` holds `kc · NR` elements.
#[target_feature(enable = "avx2,fma")]
unsafe fn gather_rows(at: *const f32, row: isize, column: isize, kc: usize, nr: usize, dst: &mut [f32]) {
    let lanes: [i32; 8] = std::array::from_fn(|jj| jj as i32 * column as i32);
    let (low_mask, high_mask) = masks(nr);
    // SAFETY: `lanes` is 32 readable bytes; a masked-off lane reads nothing; the rest is the
    // caller's contract.
    unsafe {
        let offsets = _mm256_loadu_si256(lanes.as_ptr().cast());
        let zero = _mm256_setzero_ps();
        let (low_mask, high_mask) = (_mm256_castsi256_ps(low_mask), _mm256_castsi256_ps(high_mask));
        for p in 0..kc {
            let first = at.offset(p as isize * row);
            let low = _mm256_mask_i32gather_ps::<4>(zero, first, offsets, low_mask);
            let high = _mm256_mask_i32gather_ps::<4>(zero, first.wrapping_offset(8 * column), offsets, high_mask);
            _mm256_storeu_ps(dst.as_mut_ptr().add(p * NR), low);
            _mm256_storeu_ps(dst.as_mut_ptr().add(p * NR + 8), high);
        }
    }
}
