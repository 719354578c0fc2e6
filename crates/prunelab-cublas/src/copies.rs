//! The flat optimizer step's gather (`prunelab_train::gather`) on CUDA: one fill and one
//! device-to-device copy per part, queued on CubeCL's stream by its runtime thread in one
//! submission, where Burn's ops launch one `slice_assign` kernel per part (149 per step for GPT-2
//! small, each with its host-side planning and launch).
//!
//! Like the products (`cublas::gemm`), the copies are handed to CubeCL's runtime thread without a
//! wait, so they run after the kernels that wrote the parts and before any kernel submitted later;
//! they are only installed when CubeCL's stream is known ([`install_copies`]).

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

type Cuda = burn::backend::Cuda<f32, i32>;

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
    let spans: Vec<(usize, usize)> = parts.iter().map(|(t, offset)| (*offset, t.meta.shape().num_elements())).collect();
    assert!(spans.iter().all(|(offset, n)| offset + n <= len), "a gathered part ends past the buffer");
    let buffers = std::iter::once((&out, len))
        .chain(parts.iter().zip(&spans).map(|((t, _), (_, n))| (t, *n)))
        .map(|(t, n)| (t.handle.clone().binding(), n * F32))
        .collect();
    cublas::queue_here(device.index, buffers, "a gather", move |_, stream, pointers| {
        // SAFETY: every pointer is a live CubeCL allocation of at least the bytes addressed (`queue`
        // checked the sizes, and the parts end within the buffer), and `stream` is CubeCL's, which
        // orders these copies with the kernels that wrote the parts and those that will read the
        // buffer or reuse the parts' memory.
        #[allow(unsafe_code)]
        unsafe {
            driver_sys::cuMemsetD32Async(pointers[0], fill.to_bits(), len, stream)
                .result()
                .map_err(|error| format!("cuMemsetD32Async: {error:?}"))?;
            for (&src, &(offset, n)) in pointers[1..].iter().zip(&spans) {
                driver::memcpy_dtod_async(pointers[0] + (offset * F32) as u64, src, n * F32, stream)
                    .map_err(|error| format!("cuMemcpyDtoDAsync: {error:?}"))?;
            }
        }
        Ok(())
    });
    out
}

/// Hand the flat optimizer step's gathers on `burn::backend::Cuda` (plain or fused) to this
/// module, after checking one against Burn's `slice_assign`s on `device`. Needs CubeCL's stream
/// for the current Burn stream (learnt here if `install` has not): without it, or when the check
/// differs, nothing is installed and the error says why.
pub fn install_copies(device: &Device<Cuda>) -> Result<(), CublasError> {
    require_stream(device)?;
    check(device)?;
    set_gather_kernel(Some(kernel));
    tracing::info!("the flat optimizer step's gathers as copies on CubeCL's stream");
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

/// Gather three parts with gaps (one made by a transposed reshape), with both fills, and compare with
/// Burn's `slice_assign`s bit for bit.
fn check(device: &Device<Cuda>) -> Result<(), CublasError> {
    let normal = Distribution::Normal(0.0, 1.0);
    let a = Tensor::<Cuda, 1>::random([1000], normal, device);
    let b = Tensor::<Cuda, 2>::random([37, 3], normal, device).transpose().reshape([111]);
    let c = Tensor::<Cuda, 1>::random([5], normal, device);
    let parts = [(a, 0), (b, 1024), (c, 1280)];
    for fill in [0.0, 1.0] {
        let primitives = parts.iter().map(|(t, o)| (t.clone().into_primitive().tensor(), *o)).collect();
        let ours =
            Tensor::<Cuda, 1>::from_primitive(TensorPrimitive::Float(<Cuda as Gather>::gather(primitives, 1536, fill)));
        let burn = parts.iter().fold(Tensor::<Cuda, 1>::full([1536], fill, device), |flat, (t, o)| {
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
