//! CUDA kernels of prunelab's own (`layer_norm.cu`, `bf16.cu` for the bf16 products,
//! `batched.cu` for the batched products' matrix addresses, `squares.cu` for the optimizer's
//! global norm, `embed.cu` for embedding gradients, `softmax.cu`, `elementwise.cu` for GELU and
//! dropout, and `bias.cu` for the biases'
//! gradients and the biased products cuBLASLt has no algorithm for, `gather.cu` for the optimizer's
//! gathers),
//! compiled once at run time by NVRTC and launched on CubeCL's stream by CubeCL's runtime thread,
//! in order with Burn's kernels.
//!
//! Burn 0.21 cannot launch a kernel it did not write; CubeCL's own kernels would each go through
//! Burn's per-operation planning, whose host cost is what these kernels save (`bench/NOTES.md`).
//! So, as for cuBLAS's products, one [`submit`] hands the runtime thread a closure
//! (`cublas::queue`): it looks the buffers up and calls `cuLaunchKernel` for each [`Launch`].

use std::collections::HashMap;
use std::ffi::{CString, c_void};
use std::sync::OnceLock;

use burn_cubecl::cubecl::server::Binding;
use cudarc::driver::{result as driver, sys as driver_sys};
use cudarc::nvrtc;
use prunelab_models::layers::hook::Kernel;

use crate::cublas::{self, CublasError, HANDLE};

/// The kernels' source.
const SOURCE: &str = concat!(
    include_str!("layer_norm.cu"),
    include_str!("bf16.cu"),
    include_str!("batched.cu"),
    include_str!("squares.cu"),
    include_str!("embed.cu"),
    include_str!("elementwise.cu"),
    include_str!("softmax.cu"),
    include_str!("bias.cu"),
    include_str!("gather.cu")
);
/// The kernels in it.
const NAMES: [&str; 25] = [
    "layer_norm_forward",
    "add_layer_norm_forward",
    "layer_norm_backward_input",
    "layer_norm_backward_partial",
    "layer_norm_backward_params",
    "round_to_bf16",
    "gemm_pointers",
    "sum_squares_partial",
    "sum_squares_total",
    "embed_zero",
    "embed_sort",
    "embed_partial",
    "embed_rows",
    "softmax_forward",
    "softmax_masked_forward",
    "softmax_backward",
    "softmax_masked_dropout_forward",
    "softmax_dropout_backward",
    "dropout",
    "gelu_forward",
    "gelu_backward",
    "add_bias",
    "column_sums_partial",
    "column_sums_total",
    "gather_parts",
];

/// Threads per block of the kernels that reduce within a block (`THREADS` in `layer_norm.cu`, whose
/// `block_sum` `squares.cu` shares).
pub(crate) const BLOCK_THREADS: u32 = 256;

/// How the two-stage column sums (LayerNorm's parameter gradients in `layer_norm.cu`, a bias's in
/// `bias.cu`) split `rows`: `(chunks, rows_per_chunk)`, at most 64 chunks of about 64 rows, each
/// summed by one block in stage 1, then the chunks in order in stage 2.
pub(crate) fn row_chunks(rows: usize) -> (usize, usize) {
    let chunks = rows.div_ceil(64).clamp(1, 64);
    (chunks, rows.div_ceil(chunks))
}

/// The loaded kernels, by name.
struct Module(HashMap<&'static str, Function>);

/// A loaded kernel.
#[derive(Clone, Copy)]
struct Function(driver_sys::CUfunction);

// SAFETY: a CUfunction is a handle into a module loaded once in CubeCL's primary context and never
// unloaded; the driver allows launching it from any thread with that context current.
#[allow(unsafe_code)]
unsafe impl Send for Function {}
#[allow(unsafe_code)]
unsafe impl Sync for Function {}

static MODULE: OnceLock<Result<Module, String>> = OnceLock::new();

/// The CUDA device of prunelab's cuda builds.
type Device = burn::tensor::Device<burn::backend::Cuda<f32, i32>>;
/// A check of an installed kernel against Burn's ops on a device.
type Check = fn(&Device) -> Result<(), CublasError>;

/// Install `kernel` in a `prunelab_models` hook (through `set`) for the layers' kernels of this
/// crate, and keep it only if `check` — which runs through the hook — passes on `device`. Needs
/// CubeCL's stream (learnt here if not yet) and the kernels compiled ([`load`]); the error says
/// why not.
pub(crate) fn install_hook(
    device: &Device,
    set: fn(Option<Kernel>),
    kernel: Kernel,
    check: Check,
) -> Result<(), CublasError> {
    crate::install::require_stream(device)?;
    load()?;
    set(Some(kernel));
    check(device).inspect_err(|_| set(None))
}

/// Compile and load the kernels (once per process), in the context [`cublas::open`] made current.
pub(crate) fn load() -> Result<(), CublasError> {
    MODULE.get_or_init(compile).as_ref().map(|_| ()).map_err(|why| CublasError::Unavailable(why.clone()))
}

fn compile() -> Result<Module, String> {
    // SAFETY: only asks the dynamic loader for the library under its usual names.
    #[allow(unsafe_code)]
    if !unsafe { nvrtc::sys::is_culib_present() } {
        return Err("the dynamic loader finds no libnvrtc.so (it ships with the CUDA toolkit: put its lib64 on \
                    LD_LIBRARY_PATH)"
            .to_string());
    }
    let ptx = nvrtc::compile_ptx(SOURCE).map_err(|error| {
        format!("NVRTC compiling layer_norm.cu, bf16.cu, batched.cu, squares.cu, embed.cu, elementwise.cu, softmax.cu, bias.cu and gather.cu: {error:?}")
    })?;
    let image = CString::new(ptx.to_src()).map_err(|_| "NVRTC's PTX holds a NUL byte".to_string())?;
    let handle = HANDLE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let handle = handle.as_ref().ok_or("kernels loaded before the CUDA context was opened")?;
    // SAFETY: the context is CubeCL's primary one, alive for the process; `image` is a
    // NUL-terminated PTX text; the module is never unloaded, so its functions stay valid.
    #[allow(unsafe_code)]
    unsafe {
        driver::ctx::set_current(handle.context).map_err(|error| format!("cuCtxSetCurrent: {error:?}"))?;
        let module =
            driver::module::load_data(image.as_ptr().cast()).map_err(|error| format!("cuModuleLoadData: {error:?}"))?;
        let mut functions = HashMap::new();
        for name in NAMES {
            let c_name = CString::new(name).expect("a kernel name has no NUL");
            let function = driver::module::get_function(module, c_name)
                .map_err(|error| format!("cuModuleGetFunction({name}): {error:?}"))?;
            functions.insert(name, Function(function));
        }
        Ok(Module(functions))
    }
}

/// A kernel argument: the buffer at an index of the submission's bindings, or a scalar.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg {
    /// The device address of a binding.
    Buffer(usize),
    /// A 32-bit integer.
    I32(i32),
    /// A 32-bit float.
    F32(f32),
    /// A 64-bit unsigned integer.
    U64(u64),
}

/// `Arg::Buffer` for each of `buffers`, then `scalars`: a launch's arguments in order.
pub(crate) fn args(buffers: &[usize], scalars: impl IntoIterator<Item = Arg>) -> Vec<Arg> {
    buffers.iter().map(|&i| Arg::Buffer(i)).chain(scalars).collect()
}

/// One kernel launch.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub kernel: &'static str,
    pub grid: (u32, u32, u32),
    pub block: (u32, u32, u32),
    pub args: Vec<Arg>,
}

/// Queue `launches` on CubeCL's stream, in order, from CubeCL's runtime thread, without waiting
/// (`cublas::queue`). `buffers` are the buffers the launches read and write, each with the bytes it
/// must hold at least; a launch's [`Arg::Buffer`] indexes them.
///
/// # Panics
/// When CubeCL's stream is unknown (these kernels are installed only when it is known) or an
/// earlier operation queued on it failed.
pub(crate) fn submit(device: usize, buffers: Vec<(Binding, usize)>, launches: Vec<Launch>) {
    cublas::queue_here(device, buffers, "a kernel", move |_, stream, pointers| launch_all(stream, pointers, &launches));
}

/// `cuLaunchKernel` for each launch, with `pointers` for its buffer arguments (the context is
/// current: `cublas::queue`).
pub(crate) fn launch_all(stream: driver_sys::CUstream, pointers: &[u64], launches: &[Launch]) -> Result<(), String> {
    for launch in launches {
        // Each argument's value, 8 bytes wide; the driver reads each at its parameter's size.
        let mut values: Vec<u64> = Vec::with_capacity(launch.args.len());
        for arg in &launch.args {
            values.push(match *arg {
                Arg::Buffer(i) => *pointers.get(i).ok_or("a kernel argument names no buffer")?,
                Arg::I32(v) => u64::from(v as u32),
                Arg::F32(v) => u64::from(v.to_bits()),
                Arg::U64(v) => v,
            });
        }
        let mut params: Vec<*mut c_void> = values.iter_mut().map(|v| (v as *mut u64).cast::<c_void>()).collect();
        // SAFETY: every buffer argument is a live allocation of at least the bytes the launch
        // addresses (`queue` checked the sizes its caller gave); each parameter points at a value
        // at least as wide as the kernel's parameter, little-endian (ints and floats in the low 4
        // bytes).
        #[allow(unsafe_code)]
        unsafe {
            launch_raw(stream, launch.kernel, launch.grid, launch.block, &mut params)?;
        }
    }
    Ok(())
}

/// `cuLaunchKernel` of `kernel` with `params`, a pointer to each parameter's value (the context
/// is current: `cublas::queue`).
///
/// # Safety
/// Each of `params` points at a value laid out as the kernel's parameter at its place, and every
/// device address among them is a live allocation of at least the bytes the launch addresses.
/// `stream` is CubeCL's, which orders the launch with the kernels writing its inputs and those
/// reading its outputs.
#[allow(unsafe_code)]
pub(crate) unsafe fn launch_raw(
    stream: driver_sys::CUstream,
    kernel: &str,
    grid: (u32, u32, u32),
    block: (u32, u32, u32),
    params: &mut [*mut c_void],
) -> Result<(), String> {
    let module = MODULE.get().and_then(|m| m.as_ref().ok()).ok_or("the kernels are not loaded")?;
    let function = module.0.get(kernel).ok_or_else(|| format!("no kernel {kernel}"))?;
    // SAFETY: the function was loaded in CubeCL's context, current here; the parameters and the
    // stream are the caller's to vouch for.
    unsafe { driver::launch_kernel(function.0, grid, block, 0, stream, params) }
        .map_err(|error| format!("cuLaunchKernel({kernel}): {error:?}"))
}
