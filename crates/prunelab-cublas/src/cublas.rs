//! One `cublasGemmEx` on CubeCL's memory (a projection's product, [`gemm`]) or one
//! `cublasGemmBatchedEx` (the attention's batches of products, [`gemm_batched`]), and what every
//! operation of this crate queued on CubeCL's stream shares: the handle, CubeCL's stream and the
//! first error of a queued call.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{LazyLock, Mutex};

use burn::tensor::{DType, StreamId};
use burn_cubecl::cubecl::Runtime;
use burn_cubecl::cubecl::cuda::{CudaDevice, CudaRuntime};
use burn_cubecl::cubecl::device::Device as _;
use burn_cubecl::cubecl::device_handle::DeviceHandle;
use burn_cubecl::cubecl::future::block_on;
use burn_cubecl::cubecl::server::{Binding, ComputeServer as _};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use cudarc::cublas::{result as blas, sys as blas_sys};
use cudarc::driver::{result as driver, sys as driver_sys};

use crate::addresses::{AddressLists, ListKey, Place};
use crate::kernels::{self, Arg};
use crate::layout::{Batch, GemmArgs, Layout, extent};

/// The arithmetic of cuBLAS's f32 products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arithmetic {
    /// TF32 tensor cores (`CUBLAS_COMPUTE_32F_FAST_TF32`): what Burn's own CUDA matmul does, and
    /// torch's `allow_tf32 = True`.
    Tf32,
    /// Strict f32 (`CUBLAS_COMPUTE_32F`): torch's default.
    F32,
    /// bf16 tensor cores, as `torch.autocast(bfloat16)` multiplies: a kernel of this crate
    /// rounds both f32 operands to bf16 (one launch, `bf16.cu`) and cuBLAS multiplies those with
    /// f32 accumulation into an f32 output (`CUBLAS_COMPUTE_32F` on `CUDA_R_16BF` operands).
    /// Only on CubeCL's stream ([`Order::Stream`]). (`CUBLAS_COMPUTE_32F_FAST_16BF` on the f32
    /// operands, which needs no rounding kernel, was tried first: on an H100 cuBLAS 13 ran its TF32
    /// kernels for it, bit for bit.)
    Bf16,
}

impl Arithmetic {
    /// cuBLAS's compute type.
    fn compute_type(self) -> blas_sys::cublasComputeType_t {
        match self {
            Arithmetic::Tf32 => blas_sys::cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32,
            Arithmetic::F32 | Arithmetic::Bf16 => blas_sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
        }
    }

    /// The type of the operands cuBLAS reads.
    fn operand_type(self) -> blas_sys::cudaDataType {
        match self {
            Arithmetic::Tf32 | Arithmetic::F32 => blas_sys::cudaDataType::CUDA_R_32F,
            Arithmetic::Bf16 => blas_sys::cudaDataType::CUDA_R_16BF,
        }
    }
}

/// Why cuBLAS cannot serve the products.
#[derive(Debug, thiserror::Error)]
pub enum CublasError {
    /// libcublas or the driver was not found or did not initialise.
    #[error("cuBLAS is not available: {0}")]
    Unavailable(String),
    /// A setting (an environment variable) has a value it does not take.
    #[error("{0}")]
    Setting(String),
    /// The check product disagreed with Burn's.
    #[error(
        "cuBLAS's check product differs from Burn's by {error:.2e} (relative), more than \
         {tolerance:.0e}: not using it"
    )]
    Mismatch {
        /// Largest difference over the largest magnitude.
        error: f64,
        /// What the arithmetic allows.
        tolerance: f64,
    },
}

/// How cuBLAS's products are put in order with CubeCL's kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// On CubeCL's own CUDA stream (learnt through CUPTI, see `stream`): no waits on the host.
    Stream,
    /// On a stream of cuBLAS's own, with the host waiting for CubeCL's queue before each product and
    /// for the product after it.
    Host,
}

/// A cuBLAS handle, made in `device`'s primary `context` (the one CubeCL uses); cuBLAS handles may
/// be used from any thread, one call at a time (the mutex), with their context current. The mutex
/// is never held while waiting for CubeCL's runtime thread, which takes it to queue products.
pub(crate) struct Handle {
    blas: blas_sys::cublasHandle_t,
    pub(crate) context: driver_sys::CUcontext,
    pub(crate) device: usize,
    /// cuBLAS's own stream, for host-ordered products.
    stream: driver_sys::CUstream,
    /// CubeCL's CUDA stream for one Burn stream, once learnt: products issued from that Burn stream
    /// go there.
    shared: Option<Shared>,
}

/// CubeCL's runtime thread for one device: it owns the device's memory and launches every kernel,
/// in the order they were submitted to it.
type Runner = DeviceHandle<<CudaRuntime as Runtime>::Server>;

/// Where products issued from `burn_stream` are queued: on `stream`, by CubeCL's runtime thread.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) stream: CudaStream,
    pub(crate) burn_stream: StreamId,
    pub(crate) runner: Runner,
}

/// A CUDA stream handed to CubeCL's runtime thread.
#[derive(Clone, Copy)]
pub(crate) struct CudaStream(driver_sys::CUstream);

impl CudaStream {
    /// (A method, so that a closure captures the `Send` wrapper, not its field.)
    pub(crate) fn raw(self) -> driver_sys::CUstream {
        self.0
    }
}

// SAFETY: neither a cuBLAS handle, a CUDA context nor a stream is tied to the thread that created
// it; every use goes through `HANDLE`'s mutex, so no two threads call cuBLAS on the handle at once.
// (A stream may likewise be used from any thread: CubeCL's runtime thread queues products on it.)
#[allow(unsafe_code)]
unsafe impl Send for Handle {}
#[allow(unsafe_code)]
unsafe impl Send for CudaStream {}

pub(crate) static HANDLE: Mutex<Option<Handle>> = Mutex::new(None);

/// The first error of an operation queued on CubeCL's runtime thread, which cannot return it: the
/// next product or copy issued panics with it.
static FAILED: Mutex<Option<String>> = Mutex::new(None);

/// Panics with the error of an earlier operation queued on CubeCL's runtime thread, if one failed.
pub(crate) fn panic_if_failed() {
    if let Some(why) = FAILED.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take() {
        panic!("a CUDA operation queued on CubeCL's stream failed: {why}");
    }
}

/// Records the first error of an operation queued on CubeCL's runtime thread (see
/// [`panic_if_failed`]).
pub(crate) fn record_failure(why: String) {
    tracing::error!("a CUDA operation queued on CubeCL's stream failed: {why}");
    FAILED.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get_or_insert(why);
}

/// The arithmetic of later products, as its index in [`ARITHMETICS`].
static ARITHMETIC: AtomicU8 = AtomicU8::new(0);
const ARITHMETICS: [Arithmetic; 3] = [Arithmetic::Tf32, Arithmetic::F32, Arithmetic::Bf16];

/// Set the arithmetic of later products.
pub(crate) fn set_arithmetic(arithmetic: Arithmetic) {
    let index = ARITHMETICS.iter().position(|&a| a == arithmetic).expect("every arithmetic is listed");
    ARITHMETIC.store(index as u8, Ordering::Relaxed);
}

/// The arithmetic set by [`set_arithmetic`] (TF32 before any).
pub(crate) fn arithmetic() -> Arithmetic {
    ARITHMETICS[usize::from(ARITHMETIC.load(Ordering::Relaxed))]
}

/// Whether batched products whose `b` is a view of heads write their output's heads interleaved
/// ([`gemm_batched`]); on unless [`set_interleaving`] turned it off.
static INTERLEAVE: AtomicBool = AtomicBool::new(true);

/// Let batched products interleave their outputs' heads where `b`'s are (the default), or not.
pub(crate) fn set_interleaving(on: bool) {
    INTERLEAVE.store(on, Ordering::Relaxed);
}

/// Load libcublas and create the handle for `device` (once per process).
pub(crate) fn open(device: usize) -> Result<(), CublasError> {
    let mut handle = HANDLE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(handle) = handle.as_ref() {
        return match handle.device == device {
            true => Ok(()),
            false => Err(CublasError::Unavailable(format!("cuBLAS is set up for device {} already", handle.device))),
        };
    }
    // SAFETY: both only ask the dynamic loader for a library under its usual names.
    #[allow(unsafe_code)]
    let (driver_present, blas_present) = unsafe { (driver_sys::is_culib_present(), blas_sys::is_culib_present()) };
    if !driver_present {
        return Err(CublasError::Unavailable("the dynamic loader finds no libcuda.so (no NVIDIA driver?)".to_string()));
    }
    if !blas_present {
        return Err(CublasError::Unavailable(
            "the dynamic loader finds no libcublas.so (it ships with the CUDA toolkit: put its lib64 on \
             LD_LIBRARY_PATH, e.g. /usr/local/cuda/lib64)"
                .to_string(),
        ));
    }
    let context = primary_context(device)?;
    let blas = blas::create_handle().map_err(|error| CublasError::Unavailable(format!("cublasCreate: {error:?}")))?;
    let stream = driver::stream::create(driver::stream::StreamKind::NonBlocking)
        .map_err(|error| CublasError::Unavailable(format!("cuStreamCreate: {error:?}")))?;
    // SAFETY: `blas` and `stream` were just created in the current context.
    #[allow(unsafe_code)]
    unsafe { blas::set_stream(blas, stream.cast()) }
        .map_err(|error| CublasError::Unavailable(format!("cublasSetStream: {error:?}")))?;
    *handle = Some(Handle { blas, context, device, stream, shared: None });
    Ok(())
}

/// Queue later products issued from the current Burn stream on `stream`, CubeCL's CUDA stream for
/// it on `device` (see `stream::learn`).
pub(crate) fn share_stream(stream: driver_sys::CUstream, device: &CudaDevice) {
    // The runtime thread CubeCL's own client for `device` sends its work to (it exists: a kernel ran).
    let runner = Runner::new(device.to_id());
    let mut handle = HANDLE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let handle = handle.as_mut().expect("prunelab-cublas: share_stream before open");
    handle.shared = Some(Shared { stream: CudaStream(stream), burn_stream: StreamId::current(), runner });
}

/// How the products issued from the current Burn stream are ordered.
pub(crate) fn order() -> Order {
    match shared_here() {
        Some(_) => Order::Stream,
        None => Order::Host,
    }
}

/// Where products issued from the current Burn stream go, when its CUDA stream was learnt
/// ([`share_stream`]).
pub(crate) fn shared_here() -> Option<Shared> {
    let handle = HANDLE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    handle.as_ref()?.shared.clone().filter(|shared| shared.burn_stream == StreamId::current())
}

/// Hand `run` to CubeCL's runtime thread like a kernel launch, without waiting: in its turn
/// there it looks up `buffers` (each with the bytes it must hold at least), makes CubeCL's context
/// current and calls `run` with the handle, CubeCL's stream and the buffers' device addresses, so
/// that what `run` queues on the stream comes after the kernels submitted before it and before
/// those submitted after. The bindings keep the buffers allocated until then; after that CubeCL
/// reuses their memory only for work queued later on the same stream. An error is recorded for
/// [`panic_if_failed`], as `what`.
pub(crate) fn queue(
    shared: Shared,
    device: usize,
    buffers: Vec<(Binding, usize)>,
    what: &'static str,
    run: impl FnOnce(&Handle, driver_sys::CUstream, &[u64]) -> Result<(), String> + Send + 'static,
) {
    let Shared { stream, burn_stream, runner } = shared;
    runner.submit(move |server| {
        let queued = buffers
            .into_iter()
            .map(|(binding, bytes)| server.get_resource(binding, burn_stream).map(|r| (r, bytes)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| format!("CubeCL's memory of a buffer: {error:?}"))
            .and_then(|resources| {
                let mut pointers = Vec::with_capacity(resources.len());
                for (resource, bytes) in &resources {
                    let r = resource.resource();
                    if (r.size as usize) < *bytes {
                        return Err(format!("a buffer of {} bytes where {bytes} are needed", r.size));
                    }
                    pointers.push(r.ptr);
                }
                let handle = HANDLE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let handle = handle.as_ref().ok_or("the CUDA handle is gone")?;
                if handle.device != device {
                    return Err(format!("set up for device {}, not {device}", handle.device));
                }
                // SAFETY: the context is CubeCL's primary one, retained for the process.
                #[allow(unsafe_code)]
                unsafe { driver::ctx::set_current(handle.context) }
                    .map_err(|error| format!("making CubeCL's CUDA context current: {error:?}"))?;
                run(handle, stream.raw(), &pointers)
            });
        if let Err(why) = queued {
            record_failure(format!("{what}: {why}"));
        }
    });
}

/// [`queue`] on the current Burn stream's CUDA stream, after panicking with an earlier queued
/// operation's error, if one failed.
///
/// # Panics
/// Also when that stream is unknown: the copies and kernels that call this are installed only
/// when it is known.
pub(crate) fn queue_here(
    device: usize,
    buffers: Vec<(Binding, usize)>,
    what: &'static str,
    run: impl FnOnce(&Handle, driver_sys::CUstream, &[u64]) -> Result<(), String> + Send + 'static,
) {
    panic_if_failed();
    let shared = shared_here().expect("installed only where CubeCL's stream is known");
    queue(shared, device, buffers, what, run);
}

/// `tensor`, copied into a contiguous one when it is not.
pub(crate) fn contiguous(tensor: CubeTensor<CudaRuntime>) -> CubeTensor<CudaRuntime> {
    if tensor.is_contiguous() { tensor } else { into_contiguous(tensor) }
}

/// Retain `device`'s primary context (the one CubeCL uses) and make it current on this thread.
fn primary_context(device: usize) -> Result<driver_sys::CUcontext, CublasError> {
    let unavailable = |what: &str, error: driver::DriverError| CublasError::Unavailable(format!("{what}: {error:?}"));
    driver::init().map_err(|e| unavailable("cuInit", e))?;
    let ordinal = i32::try_from(device).map_err(|_| CublasError::Unavailable(format!("device index {device}")))?;
    let device = driver::device::get(ordinal).map_err(|e| unavailable("cuDeviceGet", e))?;
    // SAFETY: `device` is a valid CUDA device; retaining its primary context and making it current
    // is what CubeCL does for the same device, so both work in one context. The context stays
    // retained for the process (the handle lives in a static).
    #[allow(unsafe_code)]
    unsafe {
        let context = driver::primary_ctx::retain(device).map_err(|e| unavailable("cuDevicePrimaryCtxRetain", e))?;
        driver::ctx::set_current(context).map_err(|e| unavailable("cuCtxSetCurrent", e))?;
        Ok(context)
    }
}

/// `op(a) · op(b)` of two 2-D f32 tensors on one CUDA device, where `op` transposes when its flag
/// is set; the result is a new contiguous `[rows of op(a), cols of op(b)]` tensor.
///
/// When CubeCL's CUDA stream for the current Burn stream is known ([`share_stream`]), the product
/// is handed to CubeCL's runtime thread like a kernel launch, without waiting: in its turn there
/// it looks up the three buffers and queues the product on that stream, after the kernels that
/// wrote `a` and `b` and before any kernel submitted later. (Looking the buffers up from this
/// thread instead waits for the runtime thread to catch up, three times per product: that made the
/// fused build's fine-tuning step 1.6× slower, `bench/NOTES.md`.) Otherwise cuBLAS runs on its own
/// stream and the product is ordered by the host: it waits for CubeCL's queue to empty (every
/// kernel writing `a` or `b` among it), then for the product. Those waits cost more than cuBLAS
/// saves on a fine-tuning step.
///
/// # Panics
/// When the inner dimensions differ, or cuBLAS or CUDA report an error (after [`open`] succeeded,
/// that is a device fault; Burn's own kernels panic likewise). A product queued on the runtime
/// thread reports its error there (logged), and the next product issued panics with it.
pub(crate) fn gemm(
    a: CubeTensor<CudaRuntime>,
    transpose_a: bool,
    b: CubeTensor<CudaRuntime>,
    transpose_b: bool,
) -> CubeTensor<CudaRuntime> {
    panic_if_failed();
    let (a, layout_a) = readable_matrices(a, transpose_a);
    let (b, layout_b) = readable_matrices(b, transpose_b);
    let args = GemmArgs::new(layout_a, layout_b).expect("gemm: the inner dimensions differ");
    let client = a.client.clone();
    let device = a.device.clone();
    let out = empty_device_contiguous_dtype(client.clone(), device.clone(), [args.m, args.n].into(), DType::F32);
    if args.m == 0 || args.n == 0 {
        return out;
    }
    let arithmetic = arithmetic();
    match shared_here() {
        Some(shared) if arithmetic == Arithmetic::Bf16 && args.k > 0 => {
            queue_bf16(shared, [(&a, layout_a), (&b, layout_b)], &out, args);
        }
        Some(shared) => {
            let buffers = [&a, &b, &out].map(|tensor| (tensor.handle.clone().binding(), 0)).to_vec();
            queue(shared, device.index, buffers, "a cuBLAS product", move |handle, stream, pointers| {
                call(handle, stream, &args, [pointers[0], pointers[1], pointers[2]], arithmetic)
            });
        }
        None => {
            assert!(arithmetic != Arithmetic::Bf16, "bf16 products run only on CubeCL's stream (install checks it)");
            // Every kernel queued so far (those writing a and b, and the allocation of `out`) finishes.
            block_on(client.sync()).expect("CubeCL's queue before a cuBLAS product");
            let pointers = [&a, &b, &out].map(|tensor| {
                client
                    .get_resource(tensor.handle.clone())
                    .expect("the device memory of a product operand")
                    .resource()
                    .ptr
            });
            let handle = HANDLE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let handle = handle.as_ref().expect("prunelab-cublas used before install()");
            assert_eq!(handle.device, device.index, "cuBLAS is set up for another device");
            call(handle, handle.stream, &args, pointers, arithmetic).expect("a cuBLAS product");
            // SAFETY: `handle.stream` is cuBLAS's own stream, alive for the process.
            #[allow(unsafe_code)]
            unsafe { driver::stream::synchronize(handle.stream) }.expect("cuBLAS's stream");
        }
    }
    out
}

/// Queue a bf16 product on CubeCL's stream: both operands rounded into bf16 buffers of their own
/// (one launch), then cuBLAS on those. Each bf16 buffer holds its operand's stored extent, so the
/// product reads it with the operand's own layout.
fn queue_bf16(
    shared: Shared,
    [(a, layout_a), (b, layout_b)]: [(&CubeTensor<CudaRuntime>, Layout); 2],
    out: &CubeTensor<CudaRuntime>,
    args: GemmArgs,
) {
    let extent = |l: Layout| (l.rows - 1) * l.ld + l.cols;
    let (extent_a, extent_b) = (extent(layout_a), extent(layout_b));
    let half = |n: usize| empty_device_contiguous_dtype(a.client.clone(), a.device.clone(), [n].into(), DType::BF16);
    let (a16, b16) = (half(extent_a), half(extent_b));
    let buffers =
        [(a, 4 * extent_a), (b, 4 * extent_b), (out, 4 * args.m * args.n), (&a16, 2 * extent_a), (&b16, 2 * extent_b)]
            .map(|(tensor, bytes)| (tensor.handle.clone().binding(), bytes))
            .to_vec();
    let to_int = |v: usize| i32::try_from(v).expect("bf16 operands of fewer than 2^31 elements together");
    to_int(extent_a + extent_b); // the kernel indexes both with one int
    let threads = 256;
    let blocks = (extent_a + extent_b).div_ceil(threads).clamp(1, 4096) as u32;
    let round = kernels::Launch {
        kernel: "round_to_bf16",
        grid: (blocks, 1, 1),
        block: (threads as u32, 1, 1),
        args: kernels::args(&[0, 3], [Arg::I32(to_int(extent_a))])
            .into_iter()
            .chain(kernels::args(&[1, 4], [Arg::I32(to_int(extent_b))]))
            .collect(),
    };
    queue(shared, a.device.index, buffers, "a bf16 product", move |handle, stream, pointers| {
        kernels::launch_all(stream, pointers, std::slice::from_ref(&round))?;
        call(handle, stream, &args, [pointers[3], pointers[4], pointers[2]], Arithmetic::Bf16)
    });
    // `a16` and `b16` drop here: CubeCL reuses their memory only for work queued after this.
}

/// `tensor` (a matrix, or a batch of them of rank 3 or 4; f32) with a [`Layout`] cuBLAS can read
/// each matrix with (its last two axes), the whole tensor copied only when those strides are
/// neither row-major nor those of a transposed row-major matrix. Batch axes may have any strides.
pub(crate) fn readable_matrices(
    tensor: CubeTensor<CudaRuntime>,
    transposed: bool,
) -> (CubeTensor<CudaRuntime>, Layout) {
    let rank = tensor.meta.shape().num_dims();
    let (shape, strides) = (tensor.meta.shape().clone(), tensor.meta.strides().clone());
    let (rows, cols) = (shape[rank - 2], shape[rank - 1]);
    match Layout::of([rows, cols], [strides[rank - 2], strides[rank - 1]], transposed) {
        Some(layout) => (tensor, layout),
        None => {
            let tensor = into_contiguous(tensor);
            (tensor, Layout::of([rows, cols], [cols, 1], transposed).expect("a contiguous matrix"))
        }
    }
}

/// `op(a[i]) · op(b[i])` for every matrix `i` of two batches of matrices (rank 3 or 4, equal batch
/// axes), `op` transposing when its flag is set: a new `[batch axes.., rows, cols]` tensor,
/// contiguous — or, where `b` is a view of heads lying side by side (`prunelab_gemm::heads_interleaved`,
/// unless [`set_interleaving`] turned it off), with its heads interleaved the same way, so that
/// merging them back is a view.
///
/// One submission to CubeCL's runtime thread, queued on CubeCL's stream like [`gemm`]: one
/// `cublasGemmBatchedEx` multiplies them all, reading every operand where it lies — where Burn's
/// matmul first copies the heads into contiguous tensors — and each matrix's address from a list
/// (the batch axes of the attention's head views cannot be merged into one stride): one written
/// for an equal product before where there is one (`crate::addresses`; unless
/// [`set_list_reuse`] turned that off), else written first by a kernel (`batched.cu`).
///
/// # Panics
/// When CubeCL's stream is unknown (the kernel takes batches only when it is known), the batch
/// axes or inner dimensions differ, a stride or offset exceeds 2³¹ elements, or an earlier
/// operation queued on the stream failed.
pub(crate) fn gemm_batched(
    a: CubeTensor<CudaRuntime>,
    transpose_a: bool,
    b: CubeTensor<CudaRuntime>,
    transpose_b: bool,
) -> CubeTensor<CudaRuntime> {
    panic_if_failed();
    let shared = shared_here().expect("batched products run only on CubeCL's stream (install checks it)");
    let (a, layout_a) = readable_matrices(a, transpose_a);
    let (b, layout_b) = readable_matrices(b, transpose_b);
    let args = GemmArgs::new(layout_a, layout_b).expect("gemm: the inner dimensions differ");
    let rank = a.meta.shape().num_dims();
    let batch_axes = a.meta.shape()[..rank - 2].to_vec();
    assert_eq!(batch_axes, b.meta.shape()[..rank - 2], "gemm: the batch axes differ");
    let (client, device) = (a.client.clone(), a.device.clone());
    let strides: Vec<isize> = b.meta.strides().iter().map(|&s| s as isize).collect();
    let interleave = INTERLEAVE.load(Ordering::Relaxed)
        && prunelab_gemm::heads_interleaved(b.meta.shape(), &strides, layout_b.transposed);
    let (out, args) = match interleave {
        false => {
            let shape: Vec<usize> = batch_axes.iter().copied().chain([args.m, args.n]).collect();
            (empty_device_contiguous_dtype(client.clone(), device.clone(), shape.into(), DType::F32), args)
        }
        true => {
            // `[batch, rows, heads, n]` in memory, seen as `[batch, heads, rows, n]`.
            let (batch, heads) = (batch_axes[0], batch_axes[1]);
            let shape = [batch, args.m, heads, args.n];
            let mut out = empty_device_contiguous_dtype(client.clone(), device.clone(), shape.into(), DType::F32);
            out.meta.swap(1, 2);
            (out, GemmArgs { ldc: heads * args.n, ..args })
        }
    };
    let count: usize = batch_axes.iter().product();
    if count == 0 || args.m == 0 || args.n == 0 {
        return out;
    }
    let batch = |t: &CubeTensor<CudaRuntime>| {
        Batch::of(t.meta.shape(), t.meta.strides()).expect("gemm_batched takes tensors of rank 3 or 4")
    };
    let [batch_a, batch_b, batch_c] = [&a, &b, &out].map(batch);
    let bytes = |t: &CubeTensor<CudaRuntime>| 4 * extent(t.meta.shape(), t.meta.strides());
    let buffers = [(&a, bytes(&a)), (&b, bytes(&b)), (&out, bytes(&out))]
        .map(|(tensor, bytes)| (tensor.handle.clone().binding(), bytes))
        .to_vec();
    let strides = [
        batch_a.outer_stride,
        batch_a.inner_stride,
        batch_b.outer_stride,
        batch_b.inner_stride,
        batch_c.outer_stride,
        batch_c.inner_stride,
    ];
    for v in [count, batch_a.inner].iter().chain(&strides) {
        assert!(i32::try_from(*v).is_ok(), "a batched product's strides below 2^31 elements, not {v}");
    }
    let (inner, arithmetic, reuse) = (batch_a.inner, arithmetic(), REUSE_LISTS.load(Ordering::Relaxed));
    queue(shared, device.index, buffers, "a batched cuBLAS product", move |handle, stream, pointers| {
        let key = ListKey { operands: [pointers[0], pointers[1], pointers[2]], count, inner, strides };
        let list = match LISTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).place(key, reuse, allocate)? {
            Place::Written(list) => list,
            Place::Empty(list) => {
                kernels::launch_all(stream, pointers, std::slice::from_ref(&list_kernel(&key, list)))?;
                list
            }
        };
        call_batched(handle, stream, &args, list, count, arithmetic)
    });
    out
}

/// The address lists of batched products ([`crate::addresses`]), on CubeCL's runtime thread.
static LISTS: LazyLock<Mutex<AddressLists>> = LazyLock::new(Mutex::default);

/// Whether batched products read an equal key's address list again ([`set_list_reuse`]).
static REUSE_LISTS: AtomicBool = AtomicBool::new(true);

/// Let batched products read their address lists again where an equal product wrote one (the
/// default), or write each anew.
pub(crate) fn set_list_reuse(on: bool) {
    REUSE_LISTS.store(on, Ordering::Relaxed);
}

/// The batched products' address lists written so far, and those read again (for the log).
pub fn address_list_counts() -> (u64, u64) {
    let lists = LISTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    (lists.written, lists.reused)
}

/// `bytes` of device memory for an arena of address lists (CubeCL's context is current: `queue`).
fn allocate(bytes: usize) -> Result<u64, String> {
    // SAFETY: a plain allocation in the current context; it is never freed (see `addresses`).
    #[allow(unsafe_code)]
    unsafe { driver::malloc_sync(bytes) }
        .map_err(|error| format!("cuMemAlloc of {bytes} bytes for address lists: {error:?}"))
}

/// The launch of `gemm_pointers` writing `key`'s list at `list` (its operands are buffers 0–2;
/// `gemm_batched` checked that every count and stride fits an `i32`).
fn list_kernel(key: &ListKey, list: u64) -> kernels::Launch {
    let int = |v: usize| Arg::I32(i32::try_from(v).expect("checked by gemm_batched"));
    let scalars = [key.count, key.inner].into_iter().chain(key.strides).map(int);
    let threads = 128;
    kernels::Launch {
        kernel: "gemm_pointers",
        grid: (key.count.div_ceil(threads) as u32, 1, 1),
        block: (threads as u32, 1, 1),
        args: kernels::args(&[0, 1, 2], scalars).into_iter().chain([Arg::U64(list)]).collect(),
    }
}

/// cuBLAS's integer arguments of `args`: `[m, n, k, ld_first, ld_second, ldc]`.
fn dimensions(args: &GemmArgs) -> Result<[i32; 6], String> {
    let to_int = |v: usize| i32::try_from(v).map_err(|_| format!("a product dimension above 2^31: {v}"));
    Ok([
        to_int(args.m_cm)?,
        to_int(args.n_cm)?,
        to_int(args.k)?,
        to_int(args.ld_first)?,
        to_int(args.ld_second)?,
        to_int(args.ldc)?,
    ])
}

fn operation(transposed: bool) -> blas_sys::cublasOperation_t {
    if transposed { blas_sys::cublasOperation_t::CUBLAS_OP_T } else { blas_sys::cublasOperation_t::CUBLAS_OP_N }
}

/// Queue `args`'s products of `count` matrices on `stream`: `addresses` holds the device
/// addresses of a's matrices, then b's, then the outputs' (`gemm_pointers`, queued before).
fn call_batched(
    handle: &Handle,
    stream: driver_sys::CUstream,
    args: &GemmArgs,
    addresses: u64,
    count: usize,
    arithmetic: Arithmetic,
) -> Result<(), String> {
    let [m, n, k, ld_first, ld_second, ldc] = dimensions(args)?;
    let count_int = i32::try_from(count).map_err(|_| format!("a batch of {count} products"))?;
    let (alpha, beta) = (1.0f32, 0.0f32);
    let list = |index: u64| (addresses + index * 8 * count as u64) as *const *const c_void;
    // SAFETY: `addresses` is a live CubeCL allocation of 3 · count device addresses, each the start
    // of a matrix inside a live allocation of the extent these dimensions address (the caller
    // checked every operand's extent), written by the kernel queued before on the same `stream`,
    // which orders the products after it and after the kernels writing the operands.
    #[allow(unsafe_code)]
    unsafe {
        blas::set_stream(handle.blas, stream.cast()).map_err(|error| format!("cublasSetStream: {error:?}"))?;
        // `args` puts b first: see `GemmArgs`.
        blas_sys::cublasGemmBatchedEx(
            handle.blas,
            operation(args.transpose_first),
            operation(args.transpose_second),
            m,
            n,
            k,
            (&alpha as *const f32).cast::<c_void>(),
            list(1),
            arithmetic.operand_type(),
            ld_first,
            list(0),
            arithmetic.operand_type(),
            ld_second,
            (&beta as *const f32).cast::<c_void>(),
            list(2) as *const *mut c_void,
            blas_sys::cudaDataType::CUDA_R_32F,
            ldc,
            count_int,
            arithmetic.compute_type(),
            blas_sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
        )
        .result()
        .map_err(|error| format!("cublasGemmBatchedEx: {error:?}"))
    }
}

/// Queue `args`'s product of the buffers at `pointers` (a, b, out) on `stream`.
pub(crate) fn call(
    handle: &Handle,
    stream: driver_sys::CUstream,
    args: &GemmArgs,
    pointers: [u64; 3],
    arithmetic: Arithmetic,
) -> Result<(), String> {
    let [ptr_a, ptr_b, ptr_c] = pointers;
    let (alpha, beta) = (1.0f32, 0.0f32);
    let [m, n, k, ld_first, ld_second, ldc] = dimensions(args)?;
    // SAFETY: the three pointers are live CubeCL allocations in `handle.context` of at least the
    // sizes these dimensions and leading dimensions address, and `stream` orders the product with
    // whatever else uses them: CubeCL's own stream (CubeCL reuses memory only within the stream it
    // freed it on, and queues the kernels reading `out` after this call), or cuBLAS's, with the host
    // waiting before (the caller) and after.
    #[allow(unsafe_code)]
    unsafe {
        driver::ctx::set_current(handle.context)
            .map_err(|error| format!("making CubeCL's CUDA context current: {error:?}"))?;
        blas::set_stream(handle.blas, stream.cast()).map_err(|error| format!("cublasSetStream: {error:?}"))?;
        // `args` puts b first: see `GemmArgs`.
        blas::gemm_ex(
            handle.blas,
            operation(args.transpose_first),
            operation(args.transpose_second),
            m,
            n,
            k,
            (&alpha as *const f32).cast::<c_void>(),
            ptr_b as *const c_void,
            arithmetic.operand_type(),
            ld_first,
            ptr_a as *const c_void,
            arithmetic.operand_type(),
            ld_second,
            (&beta as *const f32).cast::<c_void>(),
            ptr_c as *mut c_void,
            blas_sys::cudaDataType::CUDA_R_32F,
            ldc,
            arithmetic.compute_type(),
            blas_sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
        )
        .map_err(|error| format!("cublasGemmEx: {error:?}"))
    }
}
