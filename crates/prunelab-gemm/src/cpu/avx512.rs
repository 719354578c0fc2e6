//! The AVX-512 micro-kernel of [`super::product`]: an 8 × 32 tile of the output in 16 of the
//! 32 registers (two 16-lane halves a row), 2 loads of `B`, 8 broadcasts of `A` and 16 fused
//! multiply-adds per step of `k` (checked in the disassembly: no spills); partial tiles by
//! masked loads and stores, transposed `B` packed by 16-lane gathers.
#![allow(unsafe_code)]

use std::arch::x86_64::{
    __m512, __mmask16, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_loadu_si512, _mm512_mask_i32gather_ps,
    _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
};

use super::Act;
use super::isa::{Isa, isa};
use super::product::{Block, Store, Tile};

/// Rows of the tile.
const MR: usize = 8;
/// Columns of the tile: two 16-lane registers.
const NR: usize = 32;

/// The tile for CPUs with AVX-512 (F, BW, DQ and VL).
pub struct Avx512;

impl Tile for Avx512 {
    const MR: usize = MR;
    const NR: usize = NR;

    fn available() -> bool {
        isa() >= Isa::Avx512
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

/// `kc` rows of `nr ≤ NR` elements, element (p, jj) at `at + p·row + jj·column`, into `dst`
/// as rows of `NR` (zeros after `nr`).
///
/// # Safety
/// AVX-512F present; every element addressed is readable; `jj · column` fits an `i32` for
/// `jj < NR` when multiplied by 4 (the gather's byte offsets); `dst` holds `kc · NR` elements.
#[target_feature(enable = "avx512f")]
unsafe fn gather_rows(at: *const f32, row: isize, column: isize, kc: usize, nr: usize, dst: &mut [f32]) {
    let lanes: [i32; 16] = std::array::from_fn(|jj| jj as i32 * column as i32);
    let mask = |count: usize| -> __mmask16 { ((1u32 << count.min(16)) - 1) as __mmask16 };
    let (low_mask, high_mask) = (mask(nr), mask(nr.saturating_sub(16)));
    // SAFETY: `lanes` is 64 readable bytes; a masked-off lane reads nothing; the rest is the
    // caller's contract.
    unsafe {
        let offsets = _mm512_loadu_si512(lanes.as_ptr().cast());
        let zero = _mm512_setzero_ps();
        for p in 0..kc {
            let first = at.offset(p as isize * row);
            let low = _mm512_mask_i32gather_ps::<4>(zero, low_mask, offsets, first);
            let high = _mm512_mask_i32gather_ps::<4>(zero, high_mask, offsets, first.wrapping_offset(16 * column));
            _mm512_storeu_ps(dst.as_mut_ptr().add(p * NR), low);
            _mm512_storeu_ps(dst.as_mut_ptr().add(p * NR + 16), high);
        }
    }
}

/// The load and store masks of a tile's two 16-lane halves for its first `cols` columns.
fn masks(cols: usize) -> (__mmask16, __mmask16) {
    let lanes = |n: usize| if n >= 16 { 0xFFFF } else { (1u16 << n) - 1 };
    (lanes(cols), lanes(cols.saturating_sub(16)))
}

/// The `store.rows × store.cols` tile at `c` gets — or, with `store.add`, is added — the
/// product of an `A` block and a packed `B` panel, `kc` deep, and then `store.bias` when given
/// (a partial tile by masked loads and stores: the same sums, in the same order, as a whole one).
///
/// # Safety
/// AVX-512F present; `a` addresses `kc` steps of MR readable values, `b` holds `kc · NR`, `c`
/// `store.rows` rows of `store.cols` writable values `store.ldc` apart, and a bias `store.cols`
/// readable values.
#[target_feature(enable = "avx512f")]
unsafe fn kernel(kc: usize, a: Block, b: *const f32, c: *mut f32, store: Store) {
    let mut acc: [__m512; 2 * MR] = [_mm512_setzero_ps(); 2 * MR];
    for p in 0..kc {
        // SAFETY: within the block and the panel (the caller's contract).
        unsafe {
            let b0 = _mm512_loadu_ps(b.add(p * NR));
            let b1 = _mm512_loadu_ps(b.add(p * NR + 16));
            let a_p = a.at.add(p * a.col);
            for r in 0..MR {
                let a_r = _mm512_set1_ps(*a_p.add(r * a.row));
                acc[2 * r] = _mm512_fmadd_ps(a_r, b0, acc[2 * r]);
                acc[2 * r + 1] = _mm512_fmadd_ps(a_r, b1, acc[2 * r + 1]);
            }
        }
    }
    let (lo_mask, hi_mask) = masks(store.cols);
    // SAFETY: `store.cols` values (the caller's contract); masked-off lanes are not read, and
    // the second half's address is only formed (`wrapping_add`), not read, past them.
    let bias = store.bias.map(|bias| unsafe {
        (_mm512_maskz_loadu_ps(lo_mask, bias), _mm512_maskz_loadu_ps(hi_mask, bias.wrapping_add(16)))
    });
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
                lo = _mm512_add_ps(_mm512_maskz_loadu_ps(lo_mask, row), lo);
                hi = _mm512_add_ps(_mm512_maskz_loadu_ps(hi_mask, row.wrapping_add(16)), hi);
            }
            if let Some((bias_lo, bias_hi)) = bias {
                lo = _mm512_add_ps(lo, bias_lo);
                hi = _mm512_add_ps(hi, bias_hi);
            }
            _mm512_mask_storeu_ps(row, lo_mask, lo);
            _mm512_mask_storeu_ps(row.wrapping_add(16), hi_mask, hi);
        }
    }
}

/// `act` on the `mr` rows of `nr` values at `at`, `ldc` apart (a tile just stored), compiled with
/// the target features of the fused passes' loops (`fused::block_of_rows`), so that their
/// vectorised arithmetic, and bits, are the same.
///
/// # Safety
/// AVX-512 present; the rows are inside an output only this thread writes, every value written.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
unsafe fn activate(act: Act, at: *mut f32, ldc: usize, mr: usize, nr: usize) {
    for r in 0..mr {
        // SAFETY: row `r` of the tile (the caller's contract).
        let row = unsafe { std::slice::from_raw_parts_mut(at.add(r * ldc), nr) };
        act.on(row);
    }
}
