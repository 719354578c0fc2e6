//! Many 1-D tensors copied into one flat buffer, as one operation a backend may run its own way:
//! how the flat step ([`super::flat`]) collects its gradients (every step), its parameters and
//! its masks (after a reset).
//!
//! With Burn's ops the copy is one `slice_assign` per tensor: on the GPU backends a kernel launch
//! each (149 per step for GPT-2 small, about 44 µs of host time apiece, `bench/NOTES.md`). A
//! [`GatherKernel`], installed by the binary for one concrete backend, takes the whole copy
//! (`prunelab-cublas`: one kernel launch for up to 160 parts, queued on CubeCL's CUDA stream). On Burn's CPU
//! backend the `slice_assign`s copy in place but on one thread, after a `full` that writes the
//! whole buffer first: there the copy is `prunelab_gemm::cpu::gather`'s, every element written
//! once, over the cores (`super::cpu::gather`).
//!
//! Without a kernel, or for a call it leaves, [`gather`] is Burn's ops exactly, and either way
//! the result is the same bits: a copy does no arithmetic.

use prunelab_models::layers::hook::Hook;

use burn::prelude::*;
use burn::tensor::TensorPrimitive;

/// A copy of `parts` into a new `[len]` buffer, on its way to a kernel: each part is a 1-D
/// float primitive of the backend and the offset (in elements) where it goes; every element no
/// part covers is `fill`. Parts do not overlap and end within `len`.
///
/// The kernel takes `parts` when it handles them all (dtype, layout, device) and leaves the
/// buffer in `output`; otherwise it leaves `parts` for Burn's ops.
#[derive(Debug)]
pub struct GatherCall<P> {
    /// The parts and their offsets, until a kernel takes them.
    pub parts: Option<Vec<(P, usize)>>,
    /// The buffer's length in elements.
    pub len: usize,
    /// The value of every element outside the parts.
    pub fill: f32,
    /// The buffer, when a kernel took the parts.
    pub output: Option<P>,
}

/// A kernel for [`GatherCall`]s of one backend's float primitive, behind `dyn Any`.
pub type GatherKernel = prunelab_models::layers::hook::Kernel;

static GATHER_KERNEL: Hook = Hook::new();

/// Install (or with `None` remove) the kernel [`gather`] tries first.
pub fn set_gather_kernel(kernel: Option<GatherKernel>) {
    GATHER_KERNEL.set(kernel);
}

/// Whether a gather kernel is installed (for result files).
pub fn gather_kernel_installed() -> bool {
    GATHER_KERNEL.get().is_some()
}

/// `parts` (1-D tensors and their offsets) copied into a new `[len]` buffer that is `fill`
/// elsewhere: through the installed kernel, the CPU backend's threaded copy, or Burn's
/// `slice_assign`s.
pub(crate) fn gather<B: Backend>(
    parts: Vec<(Tensor<B, 1>, usize)>,
    len: usize,
    fill: f32,
    device: &B::Device,
) -> Tensor<B, 1> {
    debug_assert!(parts.iter().all(|(t, offset)| offset + t.dims()[0] <= len), "a part ends past the buffer");
    let kernel = GATHER_KERNEL.get();
    let primitives = parts.into_iter().map(|(t, offset)| (t.into_primitive().tensor(), offset)).collect();
    let mut call = GatherCall { parts: Some(primitives), len, fill, output: None };
    if let Some(kernel) = kernel {
        kernel(&mut call);
    }
    let rebuild = |p: B::FloatTensorPrimitive| Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(p));
    match (call.output, call.parts) {
        (Some(out), _) => rebuild(out),
        (None, Some(parts)) => match super::cpu::gather(parts, len, fill) {
            Ok(buffer) => rebuild(buffer),
            Err(parts) => parts.into_iter().fold(Tensor::full([len], fill, device), |flat, (part, offset)| {
                let part = rebuild(part);
                let end = offset + part.dims()[0];
                flat.slice_assign(offset..end, part)
            }),
        },
        (None, None) => unreachable!("a gather kernel took the parts and returned nothing"),
    }
}

#[cfg(test)]
mod tests {
    use std::any::Any;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use burn::backend::NdArray;
    use burn::tensor::ops::FloatTensor;

    use super::*;

    fn parts(device: &burn::tensor::Device<NdArray>) -> Vec<(Tensor<NdArray, 1>, usize)> {
        let part = |values: &[f32]| Tensor::<NdArray, 1>::from_floats(values, device);
        vec![(part(&[1.0, 2.0, 3.0]), 0), (part(&[4.0]), 5), (part(&[5.0, 6.0]), 8)]
    }

    const WANT: [f32; 12] = [1.0, 2.0, 3.0, 0.5, 0.5, 4.0, 0.5, 0.5, 5.0, 6.0, 0.5, 0.5];

    /// Without a kernel: the parts at their offsets, the gaps filled.
    #[test]
    fn parts_land_at_their_offsets() {
        let device = Default::default();
        let values = gather(parts(&device), 12, 0.5, &device).into_data().to_vec::<f32>().unwrap();
        assert_eq!(values, WANT);
    }

    /// Copies `host_copy` made.
    static COPIES: AtomicUsize = AtomicUsize::new(0);

    /// A kernel that copies on the host what the hook hands it (parts, offsets, length, fill).
    fn host_copy(call: &mut dyn Any) {
        let Some(call) = call.downcast_mut::<GatherCall<FloatTensor<NdArray>>>() else { return };
        let Some(parts) = call.parts.take() else { return };
        let mut out = vec![call.fill; call.len];
        for (part, offset) in parts {
            let values = Tensor::<NdArray, 1>::from_primitive(TensorPrimitive::Float(part)).into_data();
            let values = values.to_vec::<f32>().expect("f32 parts");
            out[offset..offset + values.len()].copy_from_slice(&values);
        }
        let len = call.len;
        let tensor = Tensor::<NdArray, 1>::from_data(burn::tensor::TensorData::new(out, [len]), &Default::default());
        call.output = Some(tensor.into_primitive().tensor());
        COPIES.fetch_add(1, Ordering::SeqCst);
    }

    /// With a kernel installed, `gather` hands it the whole copy and returns what it made.
    #[test]
    fn a_kernel_gets_the_whole_copy() {
        let device = Default::default();
        set_gather_kernel(Some(host_copy));
        let installed = gather_kernel_installed();
        let before = COPIES.load(Ordering::SeqCst);
        let values = gather(parts(&device), 12, 0.5, &device).into_data().to_vec::<f32>().unwrap();
        let copies = COPIES.load(Ordering::SeqCst) - before;
        set_gather_kernel(None);
        assert!(installed);
        assert!(copies >= 1, "the kernel was not called");
        assert_eq!(values, WANT);
    }
}
