//! How a row-major product `op(a) · op(b)` maps onto cuBLAS's column-major `gemm`, and where each
//! matrix of a batch of them starts ([`Batch`]): arithmetic on shapes and strides only, so that it
//! is tested on the CPU (the tests emulate cuBLAS's indexing).

/// A 2-D operand as stored: a row-major `rows × cols` matrix with `ld` elements from one row to
/// the next, used as it is or transposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Rows of the stored matrix.
    pub rows: usize,
    /// Columns of the stored matrix.
    pub cols: usize,
    /// Elements from one stored row to the next (at least `cols`).
    pub ld: usize,
    /// Whether the product uses the stored matrix transposed.
    pub transposed: bool,
}

impl Layout {
    /// The layout of a tensor of `shape` with `strides` (in elements), used transposed when
    /// `transposed`; `None` when cuBLAS cannot read it without a copy (broadcast or overlapping
    /// strides, or neither axis contiguous).
    ///
    /// A tensor whose first axis is the contiguous one is the transpose of a row-major matrix (a
    /// Burn `transpose()` view): it is read as that matrix, with the transpose flag flipped.
    pub fn of(shape: [usize; 2], strides: [usize; 2], transposed: bool) -> Option<Self> {
        let [rows, cols] = shape;
        if strides[1] == 1 && (rows == 1 || strides[0] >= cols) {
            return Some(Self { rows, cols, ld: strides[0].max(cols).max(1), transposed });
        }
        if strides[0] == 1 && (cols == 1 || strides[1] >= rows) {
            return Some(Self { rows: cols, cols: rows, ld: strides[1].max(rows).max(1), transposed: !transposed });
        }
        None
    }

    /// The operand's dimensions in the product, `op(stored)`: `(rows, cols)`.
    pub fn dims(&self) -> (usize, usize) {
        if self.transposed { (self.cols, self.rows) } else { (self.rows, self.cols) }
    }
}

/// The arguments of one `cublasGemmEx` computing row-major `C[m, n] = op(a) · op(b)`.
///
/// A row-major `r × c` matrix with leading dimension `ld` is, read column-major, the `c × r`
/// matrix with the same `ld`. So row-major `C = op(a)·op(b)` is column-major `Cᵀ = op(b)ᵀ·op(a)ᵀ`:
/// cuBLAS gets `b` as its first operand and `a` as its second, each with its own transpose flag,
/// and dimensions `(n, m, k)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GemmArgs {
    /// Rows of the row-major product.
    pub m: usize,
    /// Columns of the row-major product.
    pub n: usize,
    /// The inner dimension.
    pub k: usize,
    /// cuBLAS's `transa`, for its first operand (`b`).
    pub transpose_first: bool,
    /// cuBLAS's `transb`, for its second operand (`a`).
    pub transpose_second: bool,
    /// cuBLAS's `m`: rows of its column-major result (`n`).
    pub m_cm: usize,
    /// cuBLAS's `n`: columns of its column-major result (`m`).
    pub n_cm: usize,
    /// cuBLAS's `lda`: `b`'s leading dimension.
    pub ld_first: usize,
    /// cuBLAS's `ldb`: `a`'s leading dimension.
    pub ld_second: usize,
    /// cuBLAS's `ldc`: the product's (contiguous) leading dimension, `n`.
    pub ldc: usize,
}

impl GemmArgs {
    /// The call for `op(a) · op(b)`; `None` when the inner dimensions differ.
    pub fn new(a: Layout, b: Layout) -> Option<Self> {
        let (m, k) = a.dims();
        let (k_b, n) = b.dims();
        (k == k_b).then_some(Self {
            m,
            n,
            k,
            transpose_first: b.transposed,
            transpose_second: a.transposed,
            m_cm: n,
            n_cm: m,
            ld_first: b.ld,
            ld_second: a.ld,
            ldc: n.max(1),
        })
    }
}

/// Where the matrices of a batch start: a tensor of rank 3 or 4 is a batch of matrices over its
/// leading axes, and matrix `i` (in row-major order of those axes) starts
/// `(i / inner) · outer_stride + (i % inner) · inner_stride` elements after the tensor's first.
///
/// Any strides are allowed (the attention's heads are views whose batch axes cannot be merged into
/// one stride, which is why the products take one pointer per matrix, not cuBLAS's strided batches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// Matrices in the batch.
    pub count: usize,
    /// The length of the last batch axis.
    pub inner: usize,
    /// Elements between consecutive indices of the first batch axis (0 for rank 3).
    pub outer_stride: usize,
    /// Elements between consecutive indices of the last batch axis.
    pub inner_stride: usize,
}

impl Batch {
    /// The batch of a tensor of `shape` and `strides` (in elements); `None` unless it has rank 3 or 4.
    pub fn of(shape: &[usize], strides: &[usize]) -> Option<Self> {
        match (shape, strides) {
            ([inner, _, _], [inner_stride, _, _]) => {
                Some(Self { count: *inner, inner: *inner, outer_stride: 0, inner_stride: *inner_stride })
            }
            ([outer, inner, _, _], [outer_stride, inner_stride, _, _]) => Some(Self {
                count: outer * inner,
                inner: *inner,
                outer_stride: *outer_stride,
                inner_stride: *inner_stride,
            }),
            _ => None,
        }
    }

    /// Where matrix `i` starts, in elements after the tensor's first.
    pub fn offset(&self, i: usize) -> usize {
        (i / self.inner) * self.outer_stride + (i % self.inner) * self.inner_stride
    }
}

/// The elements a non-empty tensor of `shape` and `strides` spans from its first one to its last,
/// both included: what its buffer must hold from the tensor's start.
pub fn extent(shape: &[usize], strides: &[usize]) -> usize {
    1 + shape.iter().zip(strides).map(|(&n, &s)| n.saturating_sub(1) * s).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// cuBLAS's column-major `C = op(A)·op(B)` (alpha 1, beta 0), indexed as its documentation says.
    fn column_major_gemm(args: &GemmArgs, first: &[f64], second: &[f64]) -> Vec<f64> {
        let (m, n, k) = (args.m_cm, args.n_cm, args.k);
        let op_a = |i: usize, p: usize| {
            if args.transpose_first { first[p + i * args.ld_first] } else { first[i + p * args.ld_first] }
        };
        let op_b = |p: usize, j: usize| {
            if args.transpose_second { second[j + p * args.ld_second] } else { second[p + j * args.ld_second] }
        };
        let mut c = vec![0.0; args.ldc * n];
        for j in 0..n {
            for i in 0..m {
                c[i + j * args.ldc] = (0..k).map(|p| op_a(i, p) * op_b(p, j)).sum();
            }
        }
        c
    }

    /// How a logical `[r, c]` operand `x` is handed over: its buffer, shape, strides and flag.
    #[derive(Debug, Clone, Copy)]
    enum Storage {
        /// Row-major `[r, c]` with `pad` extra elements per row.
        RowMajor { pad: usize },
        /// Row-major `[c, r]` holding `xᵀ`, with the transpose flag set.
        Flagged,
        /// A transpose view: shape `[r, c]`, strides `[1, r + pad]`.
        View { pad: usize },
        /// A transpose view of `xᵀ` with the flag set: shape `[c, r]`, strides `[1, c]`.
        FlaggedView,
    }

    fn store(x: &[Vec<f64>], storage: Storage) -> (Vec<f64>, [usize; 2], [usize; 2], bool) {
        let (r, c) = (x.len(), x[0].len());
        match storage {
            Storage::RowMajor { pad } => {
                let ld = c + pad;
                let mut buf = vec![f64::NAN; r * ld];
                (0..r).for_each(|i| (0..c).for_each(|j| buf[i * ld + j] = x[i][j]));
                (buf, [r, c], [ld, 1], false)
            }
            Storage::Flagged => {
                let mut buf = vec![0.0; r * c];
                (0..c).for_each(|i| (0..r).for_each(|j| buf[i * r + j] = x[j][i]));
                (buf, [c, r], [r, 1], true)
            }
            Storage::View { pad } => {
                let ld = r + pad;
                let mut buf = vec![f64::NAN; c * ld];
                (0..r).for_each(|i| (0..c).for_each(|j| buf[i + j * ld] = x[i][j]));
                (buf, [r, c], [1, ld], false)
            }
            Storage::FlaggedView => {
                // The view's element [i, j] is xᵀ[i, j] = x[j][i], at i + j·c.
                let mut buf = vec![0.0; r * c];
                (0..c).for_each(|i| (0..r).for_each(|j| buf[i + j * c] = x[j][i]));
                (buf, [c, r], [1, c], true)
            }
        }
    }

    fn matrix(rows: usize, cols: usize, seed: u64) -> Vec<Vec<f64>> {
        let mut state = seed;
        (0..rows)
            .map(|_| {
                (0..cols)
                    .map(|_| {
                        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        ((state >> 40) % 17) as f64 - 8.0
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_storage_of_both_operands_gives_the_row_major_product() {
        let storages = [
            Storage::RowMajor { pad: 0 },
            Storage::RowMajor { pad: 3 },
            Storage::Flagged,
            Storage::View { pad: 0 },
            Storage::View { pad: 2 },
            Storage::FlaggedView,
        ];
        for (m, k, n) in [(5, 3, 4), (1, 4, 2), (3, 1, 1), (6, 7, 1)] {
            let (a, b) = (matrix(m, k, 1), matrix(k, n, 2));
            let want: Vec<Vec<f64>> =
                (0..m).map(|i| (0..n).map(|j| (0..k).map(|p| a[i][p] * b[p][j]).sum()).collect()).collect();
            for sa in storages {
                for sb in storages {
                    let (buf_a, shape_a, strides_a, ta) = store(&a, sa);
                    let (buf_b, shape_b, strides_b, tb) = store(&b, sb);
                    let la = Layout::of(shape_a, strides_a, ta).expect("readable a");
                    let lb = Layout::of(shape_b, strides_b, tb).expect("readable b");
                    let args = GemmArgs::new(la, lb).expect("matching inner dimensions");
                    assert_eq!((args.m, args.n, args.k), (m, n, k));
                    let c = column_major_gemm(&args, &buf_b, &buf_a);
                    for i in 0..m {
                        for j in 0..n {
                            assert_eq!(c[i * args.ldc + j], want[i][j], "{m}x{k}x{n}, a {sa:?}, b {sb:?}, [{i},{j}]");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn broadcast_and_mismatched_operands_are_refused() {
        // A broadcast row (stride 0) and a broadcast column cannot be read in place.
        assert_eq!(Layout::of([4, 3], [0, 1], false), None);
        assert_eq!(Layout::of([4, 3], [1, 0], false), None);
        // Rows overlapping (leading dimension below the row length).
        assert_eq!(Layout::of([4, 3], [2, 1], false), None);
        let a = Layout::of([4, 3], [3, 1], false).unwrap();
        let b = Layout::of([4, 5], [5, 1], false).unwrap();
        assert_eq!(GemmArgs::new(a, b), None);
        assert!(GemmArgs::new(Layout { transposed: true, ..a }, b).is_some());
    }

    #[test]
    fn a_batch_of_head_views_starts_each_matrix_where_the_view_says() {
        // `[batch 2, seq 3, heads 4, dim 5]` split into heads: shape [2, 4, 3, 5], strides [60, 5, 20, 1].
        let (shape, strides) = ([2, 4, 3, 5], [60, 5, 20, 1]);
        let batch = Batch::of(&shape, &strides).unwrap();
        assert_eq!(batch.count, 8);
        for b in 0..2 {
            for h in 0..4 {
                assert_eq!(batch.offset(b * 4 + h), b * 60 + h * 5);
            }
        }
        assert_eq!(extent(&shape, &strides), 120);
        // Rank 3, and a contiguous rank 4 whose matrices follow one another.
        let three = Batch::of(&[6, 3, 5], &[15, 5, 1]).unwrap();
        assert_eq!((0..6).map(|i| three.offset(i)).collect::<Vec<_>>(), [0, 15, 30, 45, 60, 75]);
        let four = Batch::of(&[2, 3, 4, 5], &[60, 20, 5, 1]).unwrap();
        assert_eq!((0..6).map(|i| four.offset(i)).collect::<Vec<_>>(), [0, 20, 40, 60, 80, 100]);
        assert_eq!(extent(&[2, 3, 4, 5], &[60, 20, 5, 1]), 120);
        // A broadcast batch axis (stride 0) repeats its matrix.
        let broadcast = Batch::of(&[2, 3, 4, 5], &[0, 20, 5, 1]).unwrap();
        assert_eq!(broadcast.offset(4), broadcast.offset(1));
        assert_eq!(Batch::of(&[4, 5], &[5, 1]), None);
        assert_eq!(Batch::of(&[1, 2, 3, 4, 5], &[120, 60, 20, 5, 1]), None);
    }
}
