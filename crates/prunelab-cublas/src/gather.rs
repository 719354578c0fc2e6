//! The flat optimizer step's gather (`prunelab_train::gather`) on CUDA: one launch of a kernel of
//! this crate (`gather.cu`) for up to 160 parts — GPT-2 small's 149 gradients in one — where
//! Burn's ops launch one `slice_assign` kernel per part, each with its host-side planning and
//! launch. [`GATHER_VARIABLE`]`=copies` keeps the way before it: one fill and one device-to-device
//! copy per part, in one submission.
//!
//! Like the products (`cublas::gemm`), the launches are handed to CubeCL's runtime thread without
//! a wait, so they run after the kernels that wrote the parts and before any kernel submitted
//! later; they are only installed when CubeCL's stream is known ([`install_gathers`]). Either way
//! the buffer holds the parts' bits: a copy does no arithmetic.

use std::any::Any;

use burn::prelude::*;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Device, Distribution, TensorPrimitive};
use burn_cubecl::cubecl::cuda::CudaRuntime;
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, FloatElement, IntElement};
use cudarc::driver::{result as driver, sys as driver_sys};
use prunelab_train::gather::{GatherCall, set_gather_kernel};

use crate::cublas::{self, CublasError};
use crate::install::require_stream;
use crate::kernels::{self, BLOCK_THREADS};

type Cuda = burn::backend::Cuda<f32, i32>;

/// The environment variable that picks how gathers run on CUDA: `kernel` (the default, one
/// launch per 160 parts) or `copies` (a fill and a device copy per part).
pub const GATHER_VARIABLE: &str = "PRUNELAB_GATHER";

/// Parts one launch of `gather_parts` takes (`GATHER_PARTS` in gather.cu).
const TABLE_PARTS: usize = 160;
/// Elements one block of `gather_parts` writes (`GATHER_TILE`).
const TILE: usize = BLOCK_THREADS as usize * 8;

/// `gather_parts`' table parameter, laid out as gather.cu's `GatherTable`.
#[repr(C)]
struct Table {
    src: [u64; TABLE_PARTS],
    start: [u64; TABLE_PARTS + 1],
    len: [u64; TABLE_PARTS],
}

/// One span of the buffer: from `start`, `len` elements of part `part` (an index of the
/// submission's parts), then the fill up to the next span.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Span {
    part: Option<usize>,
    start: usize,
    len: usize,
}

/// The spans that tile `[0, len)` for parts at `(offset, elements)`: the parts in offset order,
/// after an empty span at 0 when the first part starts later (or there is none).
fn spans(parts: &[(usize, usize)]) -> Vec<Span> {
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&i| parts[i].0);
    let leading = order.first().is_none_or(|&i| parts[i].0 > 0);
    let empty = leading.then_some(Span { part: None, start: 0, len: 0 });
    empty
        .into_iter()
        .chain(order.into_iter().map(|i| Span { part: Some(i), start: parts[i].0, len: parts[i].1 }))
        .collect()
}

/// How the gathers run on CUDA ([`GATHER_VARIABLE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Kernel,
    Copies,
}

fn way() -> Result<Way, CublasError> {
    match std::env::var(GATHER_VARIABLE).as_deref() {
        Err(_) | Ok("kernel") => Ok(Way::Kernel),
        Ok("copies") => Ok(Way::Copies),
        Ok(other) => Err(CublasError::Unavailable(format!(
            "{GATHER_VARIABLE}={other}: it takes `kernel` (one launch per 160 parts, the default) or `copies` \
             (a device copy per part)"
        ))),
    }
}

static WAY: std::sync::OnceLock<Way> = std::sync::OnceLock::new();

/// `parts` (1-D f32 tensors and their offsets) copied into a new `[len]` buffer that is `fill`
/// elsewhere, on one backend.
pub trait Gather: Backend {
    /// The buffer; `parts` is not empty and its tensors are f32.
    fn gather(parts: Vec<(FloatTensor<Self>, usize)>, len: usize, fill: f32) -> FloatTensor<Self>;
}

impl<F: FloatElement, I: IntElement, BT: BoolElement> Gather for CubeBackend<CudaRuntime, F, I, BT> {
    fn gather(parts: Vec<(FloatTensor<Self>, usize)>, len: usize, fill: f32) -> FloatTensor<Self> {
        gather(parts, len, fill)
    }
}

#[cfg(feature = "fusion")]
impl<B: burn_fusion::FusionBackend + Gather> Gather for burn_fusion::Fusion<B> {
    fn gather(parts: Vec<(FloatTensor<Self>, usize)>, len: usize, fill: f32) -> FloatTensor<Self> {
        use std::marker::PhantomData;

        use burn_fusion::FusionRuntime;
        use burn_fusion::stream::{Operation, OperationStreams};
        use burn_ir::{CustomOpIr, HandleContainer, OperationIr, OperationOutput, TensorIr};

        #[derive(Clone, Debug)]
        struct GatherOp<B> {
            desc: CustomOpIr,
            offsets: Vec<usize>,
            len: usize,
            fill: f32,
            _backend: PhantomData<B>,
        }

        impl<B: burn_fusion::FusionBackend + Gather> Operation<B::FusionRuntime> for GatherOp<B> {
            fn execute(&self, handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>) {
                let parts = self.desc.inputs.iter().zip(&self.offsets);
                let parts = parts.map(|(ir, offset)| (handles.get_float_tensor::<B>(ir), *offset)).collect();
                let out = B::gather(parts, self.len, self.fill);
                handles.register_float_tensor::<B>(&self.desc.outputs[0].id, out);
            }
        }

        let client = parts[0].0.client.clone();
        let streams = OperationStreams::with_inputs(parts.iter().map(|(t, _)| t));
        let out = TensorIr::uninit(client.create_empty_handle(), Shape::new([len]), DType::F32);
        let offsets = parts.iter().map(|(_, offset)| *offset).collect();
        let inputs: Vec<TensorIr> = parts.into_iter().map(|(t, _)| t.into_ir()).collect();
        // The fill is not part of the operation's description: one id per fill, so that no cached
        // plan mixes the gradients' gather (zeros) up with the masks' (ones).
        let id = if fill == 0.0 { "prunelab_gather_zeros" } else { "prunelab_gather_ones" };
        let desc = CustomOpIr::new(id, &inputs, &[out]);
        let op = GatherOp::<B> { desc: desc.clone(), offsets, len, fill, _backend: PhantomData };
        client.register(streams, OperationIr::Custom(desc), op).output()
    }
}

/// The copy on CUDA; see the module documentation.
///
/// # Panics
/// When CubeCL's stream is not known (the kernel is only installed when it is), or an earlier
/// operation queued on it failed.
fn gather(parts: Vec<(CubeTensor<CudaRuntime>, usize)>, len: usize, fill: f32) -> CubeTensor<CudaRuntime> {
    const F32: usize = std::mem::size_of::<f32>();
    let client = parts[0].0.client.clone();
    let device = parts[0].0.device.clone();
    let out = empty_device_contiguous_dtype(client, device.clone(), [len].into(), DType::F32);
    let parts: Vec<_> = parts.into_iter().map(|(t, offset)| (cublas::contiguous(t), offset)).collect();
    let extents: Vec<(usize, usize)> =
        parts.iter().map(|(t, offset)| (*offset, t.meta.shape().num_elements())).collect();
    assert!(extents.iter().all(|(offset, n)| offset + n <= len), "a gathered part ends past the buffer");
    let buffers = std::iter::once((&out, len))
        .chain(parts.iter().zip(&extents).map(|((t, _), (_, n))| (t, *n)))
        .map(|(t, n)| (t.handle.clone().binding(), n * F32))
        .collect();
    // Before `install_gathers` has chosen (and loaded the kernels), the copies, which need nothing.
    match WAY.get().copied().unwrap_or(Way::Copies) {
        Way::Kernel => {
            let spans = spans(&extents);
            cublas::queue_here(device.index, buffers, "a gather", move |_, stream, pointers| {
                launch_gathers(stream, pointers, &spans, len, fill)
            });
        }
        Way::Copies => cublas::queue_here(device.index, buffers, "a gather", move |_, stream, pointers| {
            // SAFETY: every pointer is a live CubeCL allocation of at least the bytes addressed
            // (`queue` checked the sizes, and the parts end within the buffer), and `stream` is
            // CubeCL's, which orders these copies with the kernels that wrote the parts and those
            // that will read the buffer or reuse the parts' memory.
            #[allow(unsafe_code)]
            unsafe {
                driver_sys::cuMemsetD32Async(pointers[0], fill.to_bits(), len, stream)
                    .result()
                    .map_err(|error| format!("cuMemsetD32Async: {error:?}"))?;
                for (&src, &(offset, n)) in pointers[1..].iter().zip(&extents) {
                    driver::memcpy_dtod_async(pointers[0] + (offset * F32) as u64, src, n * F32, stream)
                        .map_err(|error| format!("cuMemcpyDtoDAsync: {error:?}"))?;
                }
            }
            Ok(())
        }),
    }
    out
}

/// `gather_parts` over `spans` (which tile `[0, len)`), [`TABLE_PARTS`] spans a launch:
/// `pointers[0]` is the buffer, `pointers[1 + i]` part `i`.
fn launch_gathers(
    stream: driver_sys::CUstream,
    pointers: &[u64],
    spans: &[Span],
    len: usize,
    fill: f32,
) -> Result<(), String> {
    let chunks: Vec<&[Span]> = spans.chunks(TABLE_PARTS).collect();
    for (c, chunk) in chunks.iter().enumerate() {
        let end = chunks.get(c + 1).map_or(len, |next| next[0].start);
        let stretch = end - chunk[0].start;
        if stretch == 0 {
            continue;
        }
        let mut table = Table { src: [0; TABLE_PARTS], start: [0; TABLE_PARTS + 1], len: [0; TABLE_PARTS] };
        for (k, span) in chunk.iter().enumerate() {
            table.src[k] =
                span.part.map_or(Ok(0), |i| pointers.get(1 + i).copied().ok_or("a gather part has no buffer"))?;
            table.start[k] = span.start as u64;
            table.len[k] = span.len as u64;
        }
        table.start[chunk.len()] = end as u64;
        let blocks = u32::try_from(stretch.div_ceil(TILE)).map_err(|_| "a gather too long for one grid")?;
        let (mut out, mut count) = (pointers[0], chunk.len() as i32);
        let mut fill = fill;
        let mut params: [*mut std::ffi::c_void; 4] = [
            (&mut out as *mut u64).cast(),
            (&mut table as *mut Table).cast(),
            (&mut count as *mut i32).cast(),
            (&mut fill as *mut f32).cast(),
        ];
        // SAFETY: the parameters are laid out as `gather_parts`' (a device address, `GatherTable`,
        // int, float); the buffer holds `len` floats and each part its `len` (`queue` checked the
        // sizes; the spans end within the buffer); `stream` is CubeCL's, which orders the launch
        // with the kernels that wrote the parts and those that read the buffer.
        #[allow(unsafe_code)]
        unsafe {
            kernels::launch_raw(stream, "gather_parts", (blocks, 1, 1), (BLOCK_THREADS, 1, 1), &mut params)?;
        }
    }
    Ok(())
}

/// Hand the flat optimizer step's gathers on `burn::backend::Cuda` (plain or fused) to this
/// module, the way [`GATHER_VARIABLE`] says, after checking them against Burn's `slice_assign`s
/// on `device`. Needs CubeCL's stream for the current Burn stream (learnt here if `install` has
/// not) and, for the kernel, libnvrtc: without either, or when the check differs, nothing is
/// installed and the error says why.
pub fn install_gathers(device: &Device<Cuda>) -> Result<(), CublasError> {
    let way = way()?;
    require_stream(device)?;
    if way == Way::Kernel {
        kernels::load()?;
    }
    let _ = WAY.set(way);
    check(device)?;
    set_gather_kernel(Some(kernel));
    let how = match way {
        Way::Kernel => "one kernel launch per 160 parts",
        Way::Copies => "a device copy per part",
    };
    tracing::info!("the flat optimizer step's gathers on CubeCL's stream: {how}");
    Ok(())
}

/// The kernel handed to `set_gather_kernel`: takes calls of `Cuda`'s float primitives (the flat
/// step gathers inner-backend tensors) whose parts are all f32 and whose fill is 0 or 1.
fn kernel(call: &mut dyn Any) {
    let Some(call) = call.downcast_mut::<GatherCall<FloatTensor<Cuda>>>() else { return };
    let takes = |parts: &Vec<(FloatTensor<Cuda>, usize)>| {
        !parts.is_empty() && parts.iter().all(|(t, _)| t.dtype == DType::F32) && (call.fill == 0.0 || call.fill == 1.0)
    };
    if call.parts.as_ref().is_some_and(takes) {
        let parts = call.parts.take().expect("checked above");
        call.output = Some(<Cuda as Gather>::gather(parts, call.len, call.fill));
    }
}

/// Gather parts with gaps, with both fills, and compare with Burn's `slice_assign`s bit for bit:
/// a gap before the first part, one part longer than a block's tile, one made by a transposed
/// reshape, and 200 small ones handed over in reverse order (two launches of the kernel).
fn check(device: &Device<Cuda>) -> Result<(), CublasError> {
    let normal = Distribution::Normal(0.0, 1.0);
    let a = Tensor::<Cuda, 1>::random([5000], normal, device);
    let b = Tensor::<Cuda, 2>::random([37, 3], normal, device).transpose().reshape([111]);
    let c = Tensor::<Cuda, 1>::random([5], normal, device);
    let mut parts = vec![(a, 64), (b, 5120), (c, 5300)];
    parts.extend((0..200).rev().map(|k| (Tensor::<Cuda, 1>::random([7], normal, device), 6000 + 8 * k)));
    let len = 7700;
    for fill in [0.0, 1.0] {
        let primitives = parts.iter().map(|(t, o)| (t.clone().into_primitive().tensor(), *o)).collect();
        let ours =
            Tensor::<Cuda, 1>::from_primitive(TensorPrimitive::Float(<Cuda as Gather>::gather(primitives, len, fill)));
        let burn = parts.iter().fold(Tensor::<Cuda, 1>::full([len], fill, device), |flat, (t, o)| {
            flat.slice_assign(*o..*o + t.dims()[0], t.clone())
        });
        let (ours, burn) = (ours.into_data().to_vec::<f32>(), burn.into_data().to_vec::<f32>());
        let same = matches!((&ours, &burn), (Ok(x), Ok(y)) if x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()));
        if !same {
            return Err(CublasError::Unavailable(format!("the gather's check copy differs from Burn's (fill {fill})")));
        }
    }
    Ok(())
}
