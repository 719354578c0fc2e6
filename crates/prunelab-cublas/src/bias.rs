//! Projections' biases on CUDA: added in the product's own epilogue, one `cublasLtMatmul`
//! (`CUBLASLT_EPILOGUE_BIAS`) where `cublasGemmEx` and Burn's broadcast add took two launches —
//! for the query, key and value projections, whose bias adds Burn's fusion has nothing to fuse
//! with, a launch saved each ([`gemm_bias`]) — and, in training (unless `install::BIAS_VARIABLE`
//! says otherwise), their gradients, the column sums of the output's gradient: computed by the
//! weight gradient's own product (`CUBLASLT_EPILOGUE_BGRADA`, [`weight_and_bias_grads`]), or as
//! two launches of a kernel of this crate ([`column_sums`]; Burn's `sum_dim` over the rows of a
//! `[tokens, features]` gradient ran one slow reduction, 0.4 ms on GPT-2 small's, `bench/NOTES.md`).
//!
//! cuBLASLt is asked once per shape, transposition, arithmetic, alignment and epilogue for its
//! best algorithm ([`Plan`], kept for the process). Where it has none, the product is
//! `cublasGemmEx` followed by a kernel of this crate adding the bias or summing the gradient's
//! columns (`bias.cu`): the same result in two launches. All run on CubeCL's stream only
//! (`cublas::queue`); products in TF32 or f32.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Mutex;

use burn::tensor::DType;
use burn_cubecl::cubecl::cuda::CudaRuntime;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use cudarc::cublaslt::{result as lt, sys as lt_sys};
use cudarc::driver::{result as driver, sys as driver_sys};

use crate::cublas::{self, Arithmetic, CublasError, HANDLE, Handle, Shared};
use crate::kernels::{self, Arg};
use crate::layout::GemmArgs;

/// cuBLASLt's workspace (NVIDIA recommends 32 MiB on Hopper).
const WORKSPACE_BYTES: usize = 32 << 20;

/// The cuBLASLt handle, its workspace on the device and the plans made so far.
struct Lt {
    handle: lt_sys::cublasLtHandle_t,
    workspace: driver_sys::CUdeviceptr,
    /// Per key, the plan, or `None` where cuBLASLt has no algorithm (then: gemm + `add_bias`).
    plans: HashMap<Key, Option<Plan>>,
}

// SAFETY: a cuBLASLt handle, its descriptors and a device allocation are not tied to the thread
// that made them; every use goes through `LT`'s mutex, one call at a time, with the context current.
#[allow(unsafe_code)]
unsafe impl Send for Lt {}

static LT: Mutex<Option<Lt>> = Mutex::new(None);

/// What a plan depends on: the call's dimensions and transpositions, the arithmetic, whether
/// all four buffers start on 16-byte boundaries (cuBLASLt's fast kernels need it; cuBLASLt is
/// told so, and each call checks), and what the epilogue does with the bias vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    args: GemmArgs,
    arithmetic: Arithmetic,
    aligned: bool,
    epilogue: Epilogue,
}

/// What a plan's epilogue does with its vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Epilogue {
    /// Adds it to every row of the row-major product (`CUBLASLT_EPILOGUE_BIAS`).
    Bias,
    /// Writes into it the column sums of the row-major product's second operand, the sums
    /// over the inner dimension (`CUBLASLT_EPILOGUE_BGRADA`: cuBLAS's first operand is `b`).
    ColumnSumsOfB,
}

/// One product's descriptor (with the bias epilogue; the bias's address is set per call), its
/// three matrix layouts and cuBLASLt's algorithm for them. Kept for the process.
struct Plan {
    desc: lt_sys::cublasLtMatmulDesc_t,
    first: lt_sys::cublasLtMatrixLayout_t,
    second: lt_sys::cublasLtMatrixLayout_t,
    out: lt_sys::cublasLtMatrixLayout_t,
    algo: lt_sys::cublasLtMatmulAlgo_t,
    workspace: usize,
}

/// Load libcublasLt, create its handle and workspace in CubeCL's context (once per process); the
/// context must have been opened (`cublas::open`).
pub(crate) fn open() -> Result<(), CublasError> {
    let mut slot = LT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if slot.is_some() {
        return Ok(());
    }
    let unavailable = |what: &str| CublasError::Unavailable(format!("cuBLASLt: {what}"));
    // SAFETY: only asks the dynamic loader for the library under its usual names.
    #[allow(unsafe_code)]
    if !unsafe { lt_sys::is_culib_present() } {
        return Err(unavailable("the dynamic loader finds no libcublasLt.so (it ships with cuBLAS)"));
    }
    let context = HANDLE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .as_ref()
        .map(|handle| handle.context)
        .ok_or_else(|| unavailable("opened before cuBLAS"))?;
    // SAFETY: the context is CubeCL's primary one, retained for the process; the workspace is a
    // plain device allocation in it, kept for the process (the handle lives in a static).
    #[allow(unsafe_code)]
    let workspace = unsafe {
        driver::ctx::set_current(context).map_err(|error| unavailable(&format!("cuCtxSetCurrent: {error:?}")))?;
        driver::malloc_sync(WORKSPACE_BYTES).map_err(|error| unavailable(&format!("cuMemAlloc: {error:?}")))?
    };
    let handle = lt::create_handle().map_err(|error| unavailable(&format!("cublasLtCreate: {error:?}")))?;
    *slot = Some(Lt { handle, workspace, plans: HashMap::new() });
    Ok(())
}

/// `a · b + bias` of a 2-D f32 `a` (`[m, k]`), `b` (`[k, n]`) and a 1-D `bias` (`[n]`) on one
/// CUDA device: a new contiguous `[m, n]` tensor, queued on CubeCL's stream ([`open`] first).
///
/// # Panics
/// When CubeCL's stream is unknown (the kernel takes biases only when it is known), the shapes
/// disagree, or an earlier operation queued on the stream failed.
pub(crate) fn gemm_bias(
    a: CubeTensor<CudaRuntime>,
    b: CubeTensor<CudaRuntime>,
    bias: CubeTensor<CudaRuntime>,
) -> CubeTensor<CudaRuntime> {
    cublas::panic_if_failed();
    let shared = cublas::shared_here().expect("biased products run only on CubeCL's stream (install checks it)");
    let (a, layout_a) = cublas::readable_matrices(a, false);
    let (b, layout_b) = cublas::readable_matrices(b, false);
    let args = GemmArgs::new(layout_a, layout_b).expect("gemm_bias: the inner dimensions differ");
    assert_eq!(bias.meta.shape().num_elements(), args.n, "gemm_bias: one bias value per column");
    let bias = cublas::contiguous(bias);
    let (client, device) = (a.client.clone(), a.device.clone());
    let out = empty_device_contiguous_dtype(client, device.clone(), [args.m, args.n].into(), DType::F32);
    if args.m == 0 || args.n == 0 {
        return out;
    }
    queue_product(shared, [&a, &b, &out, &bias], args, Epilogue::Bias);
    out
}

/// A projection's weight and bias gradients from its 2-D f32 input `a` (`[rows, in]`) and its
/// output's gradient `g` (`[rows, out]`): `[aᵀ · g, the column sums of g]`, new contiguous
/// `[in, out]` and `[out]` tensors, in one launch where cuBLASLt has an algorithm with the
/// bias-gradient epilogue for the shape ([`open`] first).
///
/// # Panics
/// When CubeCL's stream is unknown, the shapes disagree, or an earlier operation queued on the
/// stream failed.
pub(crate) fn weight_and_bias_grads(
    a: CubeTensor<CudaRuntime>,
    g: CubeTensor<CudaRuntime>,
) -> [CubeTensor<CudaRuntime>; 2] {
    cublas::panic_if_failed();
    let shared = cublas::shared_here().expect("bias gradients run only on CubeCL's stream (install checks it)");
    let (a, layout_a) = cublas::readable_matrices(a, true);
    // Row-major, as the fallback's column sums read it.
    let (g, layout_g) = cublas::readable_matrices(cublas::contiguous(g), false);
    let args = GemmArgs::new(layout_a, layout_g).expect("weight_and_bias_grads: the rows differ");
    let (client, device) = (a.client.clone(), a.device.clone());
    let empty =
        |shape: Vec<usize>| empty_device_contiguous_dtype(client.clone(), device.clone(), shape.into(), DType::F32);
    let (weight, bias) = (empty(vec![args.m, args.n]), empty(vec![args.n]));
    if args.m == 0 || args.n == 0 {
        return [weight, bias];
    }
    queue_product(shared, [&a, &g, &weight, &bias], args, Epilogue::ColumnSumsOfB);
    [weight, bias]
}

/// Queue `args`'s product of the first two `tensors` into the third, with `epilogue` on the
/// fourth (the vector), on CubeCL's stream.
fn queue_product(shared: Shared, tensors: [&CubeTensor<CudaRuntime>; 4], args: GemmArgs, epilogue: Epilogue) {
    let arithmetic = cublas::arithmetic();
    assert!(arithmetic != Arithmetic::Bf16, "cuBLASLt's epilogues run in TF32 or f32 (install checks it)");
    let device = tensors[0].device.index;
    let buffers = tensors.map(|tensor| (tensor.handle.clone().binding(), 0)).to_vec();
    cublas::queue(shared, device, buffers, "a cuBLASLt product", move |handle, stream, pointers| {
        let pointers = [pointers[0], pointers[1], pointers[2], pointers[3]];
        call(handle, stream, &args, pointers, arithmetic, epilogue)
    });
}

/// The sum of each column of a 2-D f32 `g` (`[rows, cols]`): a new `[cols]` tensor, as two launches
/// of `bias.cu`'s kernels in one submission — each chunk of rows summed per column, then the
/// chunks in order (deterministic).
///
/// # Panics
/// When CubeCL's stream is unknown or an earlier operation queued on it failed.
pub(crate) fn column_sums(g: CubeTensor<CudaRuntime>) -> CubeTensor<CudaRuntime> {
    let g = cublas::contiguous(g);
    let (rows, cols) = (g.meta.shape()[0], g.meta.shape()[1]);
    let empty =
        |shape: Vec<usize>| empty_device_contiguous_dtype(g.client.clone(), g.device.clone(), shape.into(), DType::F32);
    let (chunks, _) = kernels::row_chunks(rows);
    let (sums, partial) = (empty(vec![cols]), empty(vec![chunks * cols]));
    if cols == 0 {
        return sums;
    }
    let int = |v: usize| Arg::I32(i32::try_from(v).expect("a bias gradient of fewer than 2^31 rows and columns"));
    let partial_sums =
        partial_sums([0, 2], rows, cols, chunks).expect("a bias gradient of fewer than 2^31 rows and columns");
    let launches = vec![
        partial_sums,
        kernels::Launch {
            kernel: "column_sums_total",
            grid: (cols.div_ceil(256) as u32, 1, 1),
            block: (256, 1, 1),
            args: kernels::args(&[2, 1], [int(cols), int(chunks)]),
        },
    ];
    let buffers = [&g, &sums, &partial].map(|t| (t.handle.clone().binding(), 0)).to_vec();
    kernels::submit(g.device.index, buffers, launches);
    sums
}

/// Queue `args`'s product of `a` and `b` into `out` with `epilogue` on `bias` (`pointers`, in that
/// order) on `stream`, through the plan for its key (made on first use), or `cublasGemmEx` and a
/// kernel of `bias.cu` (`add_bias`, or `column_sums_partial` as one chunk).
fn call(
    handle: &Handle,
    stream: driver_sys::CUstream,
    args: &GemmArgs,
    pointers: [u64; 4],
    arithmetic: Arithmetic,
    epilogue: Epilogue,
) -> Result<(), String> {
    let [a, b, out, bias] = pointers;
    let key = Key { args: *args, arithmetic, aligned: pointers.iter().all(|p| p % 16 == 0), epilogue };
    let mut slot = LT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let state = slot.as_mut().ok_or("cuBLASLt is not open")?;
    if !state.plans.contains_key(&key) {
        let plan = Plan::new(state.handle, key)?;
        match plan.is_some() {
            true => tracing::debug!(?key, "cuBLASLt plan"),
            false => tracing::info!(?key, "cuBLASLt has no algorithm with this epilogue: cublasGemmEx and a kernel"),
        }
        state.plans.insert(key, plan);
    }
    match &state.plans[&key] {
        Some(plan) => plan.run(state.handle, state.workspace, stream, [a, b, out, bias]),
        None => {
            cublas::call(handle, stream, args, [a, b, out], arithmetic)?;
            match epilogue {
                Epilogue::Bias => add_bias(stream, out, bias, args),
                Epilogue::ColumnSumsOfB => sum_columns(stream, b, bias, args),
            }
        }
    }
}

/// The column sums of the row-major `[k, n]` `b` written to `sums` by `bias.cu`'s first kernel,
/// all rows as one chunk (no buffer of partial sums; slower than [`column_sums`]' two launches
/// over many rows, and only where cuBLASLt has no algorithm).
fn sum_columns(stream: driver_sys::CUstream, b: u64, sums: u64, args: &GemmArgs) -> Result<(), String> {
    let launch = partial_sums([0, 1], args.k, args.n, 1)?;
    kernels::launch_all(stream, &[b, sums], std::slice::from_ref(&launch))
}

/// `column_sums_partial`'s launch over a `rows × cols` gradient in `chunks` chunks of rows, from
/// buffer `buffers[0]` into `buffers[1]` (`[chunks, cols]`: with one chunk, the sums themselves).
fn partial_sums(buffers: [usize; 2], rows: usize, cols: usize, chunks: usize) -> Result<kernels::Launch, String> {
    let int = |v: usize| i32::try_from(v).map_err(|_| format!("a bias gradient dimension above 2^31: {v}"));
    Ok(kernels::Launch {
        kernel: "column_sums_partial",
        grid: (cols.div_ceil(32) as u32, chunks as u32, 1),
        block: (32, 8, 1),
        args: kernels::args(
            &buffers,
            [Arg::I32(int(rows)?), Arg::I32(int(cols)?), Arg::I32(int(rows.div_ceil(chunks))?)],
        ),
    })
}

/// The bias added to each row of `out` by `bias.cu`'s kernel.
fn add_bias(stream: driver_sys::CUstream, out: u64, bias: u64, args: &GemmArgs) -> Result<(), String> {
    let int = |v: usize| i32::try_from(v).map_err(|_| format!("a biased product dimension above 2^31: {v}"));
    let (rows, cols) = (int(args.m)?, int(args.n)?);
    let threads = 256;
    let blocks = (args.m * args.n).div_ceil(threads).clamp(1, 4096) as u32;
    let launch = kernels::Launch {
        kernel: "add_bias",
        grid: (blocks, 1, 1),
        block: (threads as u32, 1, 1),
        args: kernels::args(&[0, 1], [Arg::I32(rows), Arg::I32(cols)]),
    };
    kernels::launch_all(stream, &[out, bias], std::slice::from_ref(&launch))
}

impl Plan {
    /// The plan for `key`, or `None` when cuBLASLt has no algorithm for it.
    fn new(handle: lt_sys::cublasLtHandle_t, key: Key) -> Result<Option<Self>, String> {
        let Key { args, arithmetic, aligned, epilogue } = key;
        let failed = |what: &'static str| move |error: lt::CublasError| format!("{what}: {error:?}");
        let compute = match arithmetic {
            Arithmetic::Tf32 => lt_sys::cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32,
            Arithmetic::F32 => lt_sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
            Arithmetic::Bf16 => return Err("biased products run in TF32 or f32".to_string()),
        };
        let f32 = lt_sys::cudaDataType::CUDA_R_32F;
        let desc = lt::create_matmul_desc(compute, f32).map_err(failed("cublasLtMatmulDescCreate"))?;
        // cuBLASLt's A is cuBLAS's first operand (`b`), its B the second (`a`): see `GemmArgs`.
        // Each layout is the stored matrix, before its transposition.
        let stored = |transposed: bool, rows: usize, cols: usize, ld: usize| {
            let (rows, cols) = if transposed { (cols, rows) } else { (rows, cols) };
            lt::create_matrix_layout(f32, rows as u64, cols as u64, ld as i64)
                .map_err(failed("cublasLtMatrixLayoutCreate"))
        };
        let first = stored(args.transpose_first, args.m_cm, args.k, args.ld_first)?;
        let second = stored(args.transpose_second, args.k, args.n_cm, args.ld_second)?;
        let out = stored(false, args.m_cm, args.n_cm, args.ldc)?;
        let operation = |t: bool| match t {
            true => cudarc::cublas::sys::cublasOperation_t::CUBLAS_OP_T,
            false => cudarc::cublas::sys::cublasOperation_t::CUBLAS_OP_N,
        };
        let epilogue = match epilogue {
            Epilogue::Bias => lt_sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_BIAS,
            Epilogue::ColumnSumsOfB => lt_sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_BGRADA,
        };
        let alignment: u32 = if aligned { 16 } else { 4 };
        let workspace = WORKSPACE_BYTES as u64;
        // SAFETY: each attribute is written from a value of the type cuBLASLt documents for it
        // (operations and the epilogue are 32-bit enums, alignments u32, the workspace u64), with
        // its size; the descriptors were just created.
        #[allow(unsafe_code)]
        unsafe {
            use lt_sys::cublasLtMatmulDescAttributes_t as D;
            use lt_sys::cublasLtMatmulPreferenceAttributes_t as P;
            let set = |attr: D, value: *const c_void, size: usize| {
                lt::set_matmul_desc_attribute(desc, attr, value, size).map_err(failed("cublasLtMatmulDescSetAttribute"))
            };
            let (ta, tb) = (operation(args.transpose_first), operation(args.transpose_second));
            set(D::CUBLASLT_MATMUL_DESC_TRANSA, address(&ta), size_of_val(&ta))?;
            set(D::CUBLASLT_MATMUL_DESC_TRANSB, address(&tb), size_of_val(&tb))?;
            set(D::CUBLASLT_MATMUL_DESC_EPILOGUE, address(&epilogue), size_of_val(&epilogue))?;
            let preference = lt::create_matmul_pref().map_err(failed("cublasLtMatmulPreferenceCreate"))?;
            let prefer = |attr: P, value: *const c_void, size: usize| {
                lt::set_matmul_pref_attribute(preference, attr, value, size)
                    .map_err(failed("cublasLtMatmulPreferenceSetAttribute"))
            };
            prefer(P::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, address(&workspace), size_of_val(&workspace))?;
            for attr in [
                P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
            ] {
                prefer(attr, address(&alignment), size_of_val(&alignment))?;
            }
            let found = lt::get_matmul_algo_heuristic(handle, desc, first, second, out, out, preference);
            lt::destroy_matmul_pref(preference).map_err(failed("cublasLtMatmulPreferenceDestroy"))?;
            match found {
                Ok(result) => {
                    Ok(Some(Plan { desc, first, second, out, algo: result.algo, workspace: result.workspaceSize }))
                }
                Err(_) => {
                    for layout in [first, second, out] {
                        lt::destroy_matrix_layout(layout).map_err(failed("cublasLtMatrixLayoutDestroy"))?;
                    }
                    lt::destroy_matmul_desc(desc).map_err(failed("cublasLtMatmulDescDestroy"))?;
                    Ok(None)
                }
            }
        }
    }

    /// Queue the plan's product of the buffers at `[a, b, out, bias]` on `stream`.
    fn run(
        &self,
        handle: lt_sys::cublasLtHandle_t,
        workspace: driver_sys::CUdeviceptr,
        stream: driver_sys::CUstream,
        [a, b, out, bias]: [u64; 4],
    ) -> Result<(), String> {
        let (alpha, beta) = (1.0f32, 0.0f32);
        let bias_pointer = bias as *const c_void;
        // SAFETY: the four addresses are live CubeCL allocations in the current context (CubeCL's,
        // made current by `cublas::queue`) of at least the extents the plan's layouts address (the
        // caller's layouts came from the tensors), `bias` holds one f32 per row of cuBLASLt's
        // output; the workspace is this handle's own allocation of `WORKSPACE_BYTES` (the plan
        // asked for at most that); `stream` is CubeCL's, which orders the product after the
        // kernels writing its inputs and before those reading `out`. The descriptor is only used
        // under `LT`'s mutex, so setting its bias address here races with no other call.
        #[allow(unsafe_code)]
        unsafe {
            lt::set_matmul_desc_attribute(
                self.desc,
                lt_sys::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                (&bias_pointer as *const *const c_void).cast(),
                size_of::<*const c_void>(),
            )
            .map_err(|error| format!("cublasLtMatmulDescSetAttribute(bias): {error:?}"))?;
            // cuBLASLt's A is `b`, its B is `a` (see `GemmArgs`); C is D, read with beta = 0.
            lt::matmul(
                handle,
                self.desc,
                (&alpha as *const f32).cast(),
                (&beta as *const f32).cast(),
                b as *const c_void,
                self.first,
                a as *const c_void,
                self.second,
                out as *const c_void,
                self.out,
                out as *mut c_void,
                self.out,
                &self.algo,
                workspace as *mut c_void,
                self.workspace,
                stream.cast(),
            )
            .map_err(|error| format!("cublasLtMatmul: {error:?}"))
        }
    }
}

/// Where `value` lies, for cuBLASLt's attribute setters.
fn address<T>(value: &T) -> *const c_void {
    (value as *const T).cast()
}
