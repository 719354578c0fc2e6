//! One `cublasGemmEx` on CubeCL's memory: the only code here that calls into CUDA.

use std::ffi::c_void;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::{DType, StreamId};
use burn_cubecl::cubecl::cuda::CudaRuntime;
use burn_cubecl::cubecl::future::block_on;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use cudarc::cublas::{result as blas, sys as blas_sys};
use cudarc::driver::{result as driver, sys as driver_sys};

use crate::layout::{GemmArgs, Layout};

/// The arithmetic of cuBLAS's f32 products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arithmetic {
    /// TF32 tensor cores (`CUBLAS_COMPUTE_32F_FAST_TF32`): what Burn's own CUDA matmul does, and
    /// torch's `allow_tf32 = True`.
    Tf32,
    /// Strict f32 (`CUBLAS_COMPUTE_32F`): torch's default.
    F32,
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
/// be used from any thread, one call at a time (the mutex), with their context current.
struct Handle {
    blas: blas_sys::cublasHandle_t,
    context: driver_sys::CUcontext,
    device: usize,
    /// cuBLAS's own stream, for host-ordered products.
    stream: driver_sys::CUstream,
    /// CubeCL's CUDA stream for one Burn stream, once learnt: products issued from that Burn stream
    /// go there.
    shared: Option<(driver_sys::CUstream, StreamId)>,
}

// SAFETY: neither a cuBLAS handle, a CUDA context nor a stream is tied to the thread that created
// it; every use goes through `HANDLE`'s mutex, so no two threads call cuBLAS on the handle at once.
#[allow(unsafe_code)]
unsafe impl Send for Handle {}

static HANDLE: Mutex<Option<Handle>> = Mutex::new(None);

static STRICT_F32: AtomicBool = AtomicBool::new(false);

/// Load libcublas and create the handle for `device` (once per process), and set the arithmetic
/// of later products.
pub(crate) fn open(arithmetic: Arithmetic, device: usize) -> Result<(), CublasError> {
    STRICT_F32.store(arithmetic == Arithmetic::F32, Ordering::Relaxed);
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
/// it (see `stream::learn`).
pub(crate) fn share_stream(stream: driver_sys::CUstream) {
    let mut handle = HANDLE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let handle = handle.as_mut().expect("prunelab-cublas: share_stream before open");
    handle.shared = Some((stream, StreamId::current()));
}

/// How the products issued from the current Burn stream are ordered.
pub(crate) fn order() -> Order {
    let handle = HANDLE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    match handle.as_ref().and_then(Handle::shared_stream) {
        Some(_) => Order::Stream,
        None => Order::Host,
    }
}

impl Handle {
    /// CubeCL's CUDA stream for the current Burn stream, when it was learnt ([`share_stream`]).
    fn shared_stream(&self) -> Option<driver_sys::CUstream> {
        self.shared.filter(|&(_, id)| id == StreamId::current()).map(|(stream, _)| stream)
    }
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

/// `tensor` (2-D, f32) with a [`Layout`] cuBLAS can read, copied only when its strides are neither
/// row-major nor those of a transposed row-major matrix.
fn readable(tensor: CubeTensor<CudaRuntime>, transposed: bool) -> (CubeTensor<CudaRuntime>, Layout) {
    let shape = tensor.meta.shape().clone();
    let strides = tensor.meta.strides().clone();
    match Layout::of([shape[0], shape[1]], [strides[0], strides[1]], transposed) {
        Some(layout) => (tensor, layout),
        None => {
            let tensor = into_contiguous(tensor);
            let layout = Layout::of([shape[0], shape[1]], [shape[1], 1], transposed).expect("a contiguous matrix");
            (tensor, layout)
        }
    }
}

/// `op(a) · op(b)` of two 2-D f32 tensors on one CUDA device, where `op` transposes when its flag
/// is set; the result is a new contiguous `[rows of op(a), cols of op(b)]` tensor.
///
/// When CubeCL's CUDA stream for the current Burn stream is known ([`share_stream`]), the product
/// is queued there, after the kernels that wrote `a` and `b` and before whatever CubeCL queues
/// next. Otherwise cuBLAS runs on its own stream and the product is ordered by the host: it waits
/// for CubeCL's queue to empty (every kernel writing `a` or `b` among it), then for the product.
/// Those two waits cost more than cuBLAS saves on a fine-tuning step (`bench/NOTES.md`).
///
/// # Panics
/// When the inner dimensions differ, or cuBLAS or CUDA report an error (after [`open`] succeeded,
/// that is a device fault; Burn's own kernels panic likewise).
pub(crate) fn gemm(
    a: CubeTensor<CudaRuntime>,
    transpose_a: bool,
    b: CubeTensor<CudaRuntime>,
    transpose_b: bool,
) -> CubeTensor<CudaRuntime> {
    let (a, layout_a) = readable(a, transpose_a);
    let (b, layout_b) = readable(b, transpose_b);
    let args = GemmArgs::new(layout_a, layout_b).expect("gemm: the inner dimensions differ");
    let client = a.client.clone();
    let device = a.device.clone();
    let out = empty_device_contiguous_dtype(client.clone(), device.clone(), [args.m, args.n].into(), DType::F32);
    if args.m == 0 || args.n == 0 {
        return out;
    }
    let handle = HANDLE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let handle = handle.as_ref().expect("prunelab-cublas used before install()");
    assert_eq!(handle.device, device.index, "cuBLAS is set up for another device");
    let shared = handle.shared_stream();
    if shared.is_none() {
        // Every kernel queued so far (those writing a and b, and the allocation of `out`) finishes.
        block_on(client.sync()).expect("CubeCL's queue before a cuBLAS product");
    }
    // With a shared stream, CubeCL has launched every kernel writing a and b when it hands out
    // their memory (it launches as it is asked, in order), and it makes this Burn stream's CUDA
    // stream wait for any other stream that wrote them.
    let address = |tensor: &CubeTensor<CudaRuntime>| {
        client.get_resource(tensor.handle.clone()).expect("the device memory of a product operand").resource().ptr
    };
    let (ptr_a, ptr_b, ptr_c) = (address(&a), address(&b), address(&out));
    let to_int = |v: usize| i32::try_from(v).expect("a product dimension above 2^31");
    let op = |transposed: bool| {
        if transposed { blas_sys::cublasOperation_t::CUBLAS_OP_T } else { blas_sys::cublasOperation_t::CUBLAS_OP_N }
    };
    let compute = if STRICT_F32.load(Ordering::Relaxed) {
        blas_sys::cublasComputeType_t::CUBLAS_COMPUTE_32F
    } else {
        blas_sys::cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32
    };
    let (alpha, beta) = (1.0f32, 0.0f32);
    // SAFETY: the three pointers are live CubeCL allocations in `handle.context` of at least the
    // sizes these dimensions and leading dimensions address. On the shared stream the product is
    // ordered with CubeCL's kernels by the stream itself (CubeCL reuses memory only within the
    // stream it freed it on); otherwise nothing is queued on them (the sync above), and the stream
    // synchronisation below ends the product before CubeCL queues anything else, so no kernel
    // reads `out` early or reuses the operands' memory meanwhile.
    #[allow(unsafe_code)]
    unsafe {
        driver::ctx::set_current(handle.context).expect("making CubeCL's CUDA context current");
        blas::set_stream(handle.blas, shared.unwrap_or(handle.stream).cast()).expect("cublasSetStream");
        // `args` puts b first: see `GemmArgs`.
        blas::gemm_ex(
            handle.blas,
            op(args.transpose_first),
            op(args.transpose_second),
            to_int(args.m_cm),
            to_int(args.n_cm),
            to_int(args.k),
            (&alpha as *const f32).cast::<c_void>(),
            ptr_b as *const c_void,
            blas_sys::cudaDataType::CUDA_R_32F,
            to_int(args.ld_first),
            ptr_a as *const c_void,
            blas_sys::cudaDataType::CUDA_R_32F,
            to_int(args.ld_second),
            (&beta as *const f32).cast::<c_void>(),
            ptr_c as *mut c_void,
            blas_sys::cudaDataType::CUDA_R_32F,
            to_int(args.ldc),
            compute,
            blas_sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
        )
        .expect("cublasGemmEx");
        if shared.is_none() {
            driver::stream::synchronize(handle.stream).expect("cuBLAS's stream");
        }
    }
    out
}
