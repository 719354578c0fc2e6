//! The flat step's element-wise AdamW arithmetic on Burn's CPU backend as one pass over the
//! buffers, split over the cores, its gradient norm as another, and views of its buffers that
//! copy nothing (feature `ndarray`).
//!
//! burn-ndarray 0.21 copies on every `reshape` and `slice`, and the flat step reshapes each
//! gradient into its buffer, squares the whole gradient into a new one for the norm, and slices
//! and reshapes every parameter back out of the flat buffer: four to five copies of all the
//! parameters per step, single-threaded, into fresh memory. [`flatten`] and [`view`] share the
//! memory instead where the layout allows, and [`sum_of_squares`] reads the gradient once.
//!
//! [`super::flat::Update::with_burn_ops`] is a dozen whole-buffer ops: on the CPU backend each is a
//! single-threaded pass into a fresh buffer (a copy first, when the input is shared), which made
//! the optimizer about 30 % of a MiniLM fine-tuning step on SST-2's short sentences
//! (`bench/NOTES.md`). Here every element goes through the same f32 operations in the same order
//! — Rust does not contract them into fused multiply-adds — so the result is the op chain's bit
//! for bit, whatever the number of threads.

use std::ops::Range;

use super::flat::{AdamWScalars, Update};
use burn::prelude::*;
use burn::tensor::TensorPrimitive;

/// `tensor` as one dimension: on Burn's CPU backend the same memory when it is in standard
/// layout, else Burn's `reshape`.
pub(crate) fn flatten<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Tensor<B, 1> {
    let len = tensor.shape().num_elements();
    let primitive = tensor.into_primitive().tensor();
    match shared_view::<B>(primitive, None, &[len]) {
        Ok(view) => Tensor::from_primitive(TensorPrimitive::Float(view)),
        Err(primitive) => Tensor::<B, D>::from_primitive(TensorPrimitive::Float(primitive)).reshape([len]),
    }
}

/// `flat[range]` as a tensor of `shape`: on Burn's CPU backend a view of the same memory, else
/// Burn's `slice` and `reshape`.
pub(crate) fn view<B: Backend, const E: usize>(
    flat: Tensor<B, 1>,
    range: Range<usize>,
    shape: [usize; E],
) -> Tensor<B, E> {
    let primitive = flat.into_primitive().tensor();
    match shared_view::<B>(primitive, Some(range.clone()), &shape) {
        Ok(view) => Tensor::from_primitive(TensorPrimitive::Float(view)),
        Err(primitive) => Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(primitive)).slice(range).reshape(shape),
    }
}

/// `primitive` (its elements `range` of a 1-D one, when given) as `shape`, sharing its memory,
/// when it is a standard-layout f32 array of Burn's CPU backend (`prunelab-gemm`'s view); else
/// the primitive back.
#[cfg(feature = "ndarray")]
fn shared_view<B: Backend>(
    primitive: B::FloatTensorPrimitive,
    range: Option<Range<usize>>,
    shape: &[usize],
) -> Result<B::FloatTensorPrimitive, B::FloatTensorPrimitive> {
    use std::any::Any;

    use burn_ndarray::NdArrayTensor;

    let mut slot = Some(primitive);
    let viewed = (&mut slot as &mut dyn Any).downcast_mut::<Option<NdArrayTensor>>().is_some_and(|cpu| {
        let viewed = prunelab_gemm::cpu::view::shared_reshape(cpu.take().expect("set above"), range, shape);
        let ok = viewed.is_ok();
        *cpu = Some(viewed.unwrap_or_else(|tensor| tensor));
        ok
    });
    let primitive = slot.expect("put back above");
    if viewed { Ok(primitive) } else { Err(primitive) }
}

/// Without the CPU backend, always Burn's ops.
#[cfg(not(feature = "ndarray"))]
fn shared_view<B: Backend>(
    primitive: B::FloatTensorPrimitive,
    _: Option<Range<usize>>,
    _: &[usize],
) -> Result<B::FloatTensorPrimitive, B::FloatTensorPrimitive> {
    Err(primitive)
}

/// The sum of the squares of `grad` (a flat buffer whose length is a multiple of `row`) as a
/// one-element tensor, in one pass over the cores on Burn's CPU backend: each `row` summed in
/// eight lanes, the lanes and then the rows added in order, so the result does not depend on
/// the number of threads. `None` elsewhere (or for a buffer that is not a contiguous f32 one).
#[cfg(feature = "ndarray")]
pub(crate) fn sum_of_squares<B: Backend>(grad: &Tensor<B, 1>, row: usize) -> Option<Tensor<B, 1>> {
    use std::any::Any;

    use burn_ndarray::NdArrayTensor;

    let primitive = grad.clone().into_primitive().tensor();
    let NdArrayTensor::F32(storage) = (&primitive as &dyn Any).downcast_ref::<NdArrayTensor>()?.clone() else {
        return None;
    };
    let array = storage.into_shared();
    let values = array.as_slice()?;
    if row == 0 || !values.len().is_multiple_of(row) {
        return None;
    }
    let rows = values.len() / row;
    let mut sums = vec![0f32; rows];
    let threads = prunelab_gemm::cpu::threads().min(rows).max(1);
    let chunk = rows.div_ceil(threads);
    prunelab_gemm::cpu::pool::split(sums.chunks_mut(chunk).enumerate(), |(k, out)| {
        for (i, sum) in out.iter_mut().enumerate() {
            let start = (k * chunk + i) * row;
            let mut lanes = [0f32; 8];
            for block in values[start..start + row].chunks(8) {
                for (lane, v) in lanes.iter_mut().zip(block) {
                    *lane += v * v;
                }
            }
            *sum = lanes.iter().sum();
        }
    });
    let total: f32 = sums.iter().sum();
    Some(Tensor::from_floats([total], &grad.device()))
}

/// `parts` copied into a new `[len]` buffer that is `fill` elsewhere, over the cores on Burn's
/// CPU backend (`prunelab_gemm::cpu::gather`: every element written once, where Burn's ops fill
/// the whole buffer and then copy each part in, on one thread). The parts back elsewhere, or
/// when one is not a contiguous f32 array.
#[cfg(feature = "ndarray")]
pub(crate) fn gather<P: 'static>(parts: Vec<(P, usize)>, len: usize, fill: f32) -> Result<P, Vec<(P, usize)>> {
    use std::any::Any;

    use burn_ndarray::NdArrayTensor;

    let cpu = (&parts as &dyn Any).downcast_ref::<Vec<(NdArrayTensor, usize)>>();
    let Some(buffer) = cpu.and_then(|parts| prunelab_gemm::cpu::gather::primitive_gather(parts, len, fill)) else {
        return Err(parts);
    };
    Ok(*(Box::new(buffer) as Box<dyn Any>).downcast::<P>().expect("the parts' primitive type"))
}

/// Without the CPU backend, always Burn's ops.
#[cfg(not(feature = "ndarray"))]
pub(crate) fn gather<P>(parts: Vec<(P, usize)>, _: usize, _: f32) -> Result<P, Vec<(P, usize)>> {
    Err(parts)
}

/// Without the CPU backend, always Burn's ops.
#[cfg(not(feature = "ndarray"))]
pub(crate) fn sum_of_squares<B: Backend>(_: &Tensor<B, 1>, _: usize) -> Option<Tensor<B, 1>> {
    None
}

/// The step on `update`'s buffers when the backend is Burn's CPU one (the new parameters and
/// moments), else the buffers back.
#[cfg(feature = "ndarray")]
#[allow(clippy::type_complexity)]
pub(crate) fn update<B: Backend>(
    update: Update<B>,
    scalars: &AdamWScalars,
) -> Result<(Tensor<B, 1>, Tensor<B, 1>, Tensor<B, 1>), Update<B>> {
    use std::any::Any;

    use burn_ndarray::NdArrayTensor;

    let Update { grad, clip, moment_1, moment_2, params, decay, mask } = update;
    let buffers: Vec<B::FloatTensorPrimitive> = [grad, clip, moment_1, moment_2, params, decay]
        .into_iter()
        .chain(mask)
        .map(|t| t.into_primitive().tensor())
        .collect();
    let rebuild = |p: B::FloatTensorPrimitive| Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(p));
    // The buffers move into the step (a clone kept here would make each one shared, and the
    // step would copy it before writing), and come back untouched when it declines them.
    let mut slot = Some(buffers);
    if let Some(cpu) = (&mut slot as &mut dyn Any).downcast_mut::<Option<Vec<NdArrayTensor>>>() {
        match ndarray_step(cpu.take().expect("set above"), scalars) {
            Ok(updated) => {
                let mut out: Option<Vec<NdArrayTensor>> = Some(updated.into());
                let out = (&mut out as &mut dyn Any)
                    .downcast_mut::<Option<Vec<B::FloatTensorPrimitive>>>()
                    .and_then(Option::take)
                    .expect("the same backend's primitives");
                let Ok([params, moment_1, moment_2]) = <[_; 3]>::try_from(out) else { unreachable!("three buffers") };
                return Ok((rebuild(params), rebuild(moment_1), rebuild(moment_2)));
            }
            Err(declined) => *cpu = Some(declined),
        }
    }
    let buffers = slot.expect("put back above");
    let mut buffers = buffers.into_iter().map(rebuild);
    let mut next = || buffers.next().expect("the buffers gathered above");
    let (grad, clip, moment_1, moment_2, params, decay) = (next(), next(), next(), next(), next(), next());
    Err(Update { grad, clip, moment_1, moment_2, params, decay, mask: buffers.next() })
}

/// Without the CPU backend, always Burn's ops.
#[cfg(not(feature = "ndarray"))]
#[allow(clippy::type_complexity)]
pub(crate) fn update<B: Backend>(
    update: Update<B>,
    _: &AdamWScalars,
) -> Result<(Tensor<B, 1>, Tensor<B, 1>, Tensor<B, 1>), Update<B>> {
    Err(update)
}

/// The step on NdArray's f32 buffers `[grad, clip, m₁, m₂, params, decay, mask?]`: the new
/// `[params, m₁, m₂]`, or the buffers back, untouched, when one is not a contiguous f32 one
/// (then Burn's ops run).
///
/// Written where they are: the new parameters over the gradient (each element read before it is
/// written) and the moments over themselves, so no 91 MB buffer (MiniLM) is allocated and zeroed
/// for them each step. A buffer shared with another tensor is copied first (ndarray's copy on
/// write), so the result does not depend on who else holds one; the parameters are not written
/// over, since the model's parameters are views of them.
#[cfg(feature = "ndarray")]
fn ndarray_step(
    buffers: Vec<burn_ndarray::NdArrayTensor>,
    s: &AdamWScalars,
) -> Result<[burn_ndarray::NdArrayTensor; 3], Vec<burn_ndarray::NdArrayTensor>> {
    use burn_ndarray::NdArrayTensor;
    use ndarray::ArcArray;

    let contiguous =
        |t: &NdArrayTensor| matches!(t, NdArrayTensor::F32(storage) if storage.view().is_standard_layout());
    if !(6..=7).contains(&buffers.len()) || !buffers.iter().all(contiguous) {
        return Err(buffers);
    }
    let mut arrays: Vec<ArcArray<f32, ndarray::IxDyn>> = buffers
        .into_iter()
        .map(|t| match t {
            NdArrayTensor::F32(storage) => storage.into_shared(),
            _ => unreachable!("f32, checked above"),
        })
        .collect();
    let mask = if arrays.len() == 7 { arrays.pop() } else { None };
    let Ok([mut grad, clip, mut m1, mut m2, params, decay]) = <[_; 6]>::try_from(arrays) else {
        unreachable!("six buffers, checked above")
    };
    fn slice(a: &ArcArray<f32, ndarray::IxDyn>) -> &[f32] {
        a.as_slice().expect("standard layout, checked above")
    }
    fn writable(a: &mut ArcArray<f32, ndarray::IxDyn>) -> &mut [f32] {
        a.as_slice_mut().expect("standard layout, checked above")
    }
    let (clip, params, decay, mask) = (slice(&clip)[0], slice(&params), slice(&decay), mask.as_ref().map(slice));
    let len = grad.len();
    let (g_out, m1_out, m2_out) = (writable(&mut grad), writable(&mut m1), writable(&mut m2));
    // As many threads as the products (`PRUNELAB_CPU_THREADS`, else the cores), fewer for short buffers.
    let threads = prunelab_gemm::cpu::threads().min(len.div_ceil(1 << 16)).max(1);
    let chunk = len.div_ceil(threads);
    let run = |start: usize, g_out: &mut [f32], m1_out: &mut [f32], m2_out: &mut [f32]| {
        let range = start..start + g_out.len();
        let (params, decay) = (&params[range.clone()], &decay[range.clone()]);
        let mask = mask.map(|mask| &mask[range]);
        let moments = g_out.iter_mut().zip(m1_out.iter_mut()).zip(m2_out.iter_mut());
        let elements = moments.zip(params).map(|(((g, m1), m2), p)| (g, m1, m2, *p));
        // One loop per case, so that none branches per element: each is vectorised (the loop
        // with its branches inside ran one element at a time, `bench/NOTES.md`).
        match (s.decay_minus_one, mask) {
            (None, None) => elements.for_each(|(g, m1, m2, p)| *g = adamw(g, m1, m2, p, clip, s)),
            (None, Some(mask)) => {
                elements.zip(mask).for_each(|((g, m1, m2, p), mask)| *g = adamw(g, m1, m2, p, clip, s) * mask)
            }
            (Some(c_minus_one), None) => elements.zip(decay).for_each(|((g, m1, m2, p), decay)| {
                *g = adamw(g, m1, m2, p * (decay * c_minus_one + 1.0), clip, s);
            }),
            (Some(c_minus_one), Some(mask)) => {
                elements.zip(decay).zip(mask).for_each(|(((g, m1, m2, p), decay), mask)| {
                    *g = adamw(g, m1, m2, p * (decay * c_minus_one + 1.0), clip, s) * mask;
                })
            }
        }
    };
    let parts = g_out.chunks_mut(chunk).zip(m1_out.chunks_mut(chunk)).zip(m2_out.chunks_mut(chunk));
    prunelab_gemm::cpu::pool::split(parts.enumerate(), |(k, ((p, a), b))| run(k * chunk, p, a, b));
    Ok([NdArrayTensor::from(grad), NdArrayTensor::from(m1), NdArrayTensor::from(m2)])
}

/// One parameter's AdamW update, in the op chain's order: its moments from the gradient `g`
/// (times the clipping factor) written over `m1` and `m2`, and the new value of the (decayed)
/// parameter `p` returned.
#[cfg(feature = "ndarray")]
#[inline(always)]
fn adamw(g: &f32, m1: &mut f32, m2: &mut f32, p: f32, clip: f32, s: &AdamWScalars) -> f32 {
    let g = g * clip;
    *m1 = *m1 * s.beta_1 + g * (1.0 - s.beta_1);
    *m2 = *m2 * s.beta_2 + (g * g) * (1.0 - s.beta_2);
    let delta = (*m1 / s.correction_1) / ((*m2 / s.correction_2).sqrt() + s.epsilon);
    p - delta * s.lr
}

#[cfg(all(test, feature = "ndarray"))]
mod tests {
    use burn::backend::NdArray;
    use burn::tensor::Distribution;

    use super::*;

    /// Bit for bit the op chain, with and without weight decay and a mask, on a buffer long
    /// enough to be split over threads.
    #[test]
    fn the_threaded_pass_is_the_op_chain_bit_for_bit() {
        type N = NdArray;
        let device = Default::default();
        let len = 300_001;
        let _turn = crate::optim::testing::RNG.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        N::seed(&device, 3);
        let random = |scale: f32| Tensor::<N, 1>::random([len], Distribution::Normal(0.0, 1.0), &device) * scale;
        let mask = Tensor::<N, 1>::random([len], Distribution::Bernoulli(0.7), &device);
        let decay = Tensor::<N, 1>::random([len], Distribution::Bernoulli(0.5), &device);
        let (grad, m1, m2, params) = (random(1e-2), random(1e-3), random(1e-4).abs(), random(0.05));
        let clip = Tensor::<N, 1>::from_floats([0.37], &device);
        // Every case of the pass's loops: decay or not, mask or not.
        for (weight_decay, mask) in [(0.01, Some(mask.clone())), (0.0, None), (0.01, None), (0.0, Some(mask))] {
            let scalars = AdamWScalars {
                beta_1: 0.9,
                beta_2: 0.999,
                epsilon: 1e-8,
                correction_1: 1f32 - 0.9f32.powi(7),
                correction_2: 1f32 - 0.999f32.powi(7),
                lr: 3e-5,
                decay_minus_one: (weight_decay != 0.0).then_some((1.0 - 3e-5 * weight_decay) as f32 - 1.0),
            };
            let update = || Update {
                grad: grad.clone(),
                clip: clip.clone(),
                moment_1: m1.clone(),
                moment_2: m2.clone(),
                params: params.clone(),
                decay: decay.clone(),
                mask: mask.clone(),
            };
            let bits =
                |t: &Tensor<N, 1>| t.to_data().to_vec::<f32>().unwrap().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let before = [bits(&grad), bits(&m1), bits(&m2)];
            // Shared buffers (the tensors above hold them too): copied before they are written.
            let Ok(shared) = super::update(update(), &scalars) else { panic!("the CPU backend takes the step") };
            assert_eq!([bits(&grad), bits(&m1), bits(&m2)], before, "a shared buffer was written over");
            // Buffers no one else holds: written where they are, the parameters over the gradient.
            // (× 1 makes a new array in memory of its own; `from_data` would borrow the data's bytes.)
            let own = |t: &Tensor<N, 1>| t.clone().mul_scalar(1.0);
            let (own_grad, own_m1) = (own(&grad), own(&m1));
            let (grad_at, m1_at) = (address(&own_grad), address(&own_m1));
            let unique = Update { grad: own_grad, moment_1: own_m1, moment_2: own(&m2), ..update() };
            let Ok(in_place) = super::update(unique, &scalars) else { panic!("the CPU backend takes the step") };
            assert_eq!((address(&in_place.0), address(&in_place.1)), (grad_at, m1_at), "written where they were");
            let theirs = update().with_burn_ops(&scalars);
            for ours in [shared, in_place] {
                for (name, a, b) in
                    [("params", &ours.0, &theirs.0), ("moment 1", &ours.1, &theirs.1), ("moment 2", &ours.2, &theirs.2)]
                {
                    assert_eq!(bits(a), bits(b), "{name}, weight decay {weight_decay}");
                }
            }
        }
    }

    /// The first element's address of a CPU tensor's memory.
    fn address<const D: usize>(t: &Tensor<NdArray, D>) -> usize {
        match t.clone().into_primitive().tensor() {
            burn_ndarray::NdArrayTensor::F32(storage) => storage.into_shared().as_ptr() as usize,
            _ => panic!("an f32 tensor"),
        }
    }

    /// `view` and `flatten` give Burn's `slice` + `reshape` and `reshape`, in the same memory
    /// where the layout allows; a transposed tensor is flattened in its logical order.
    #[test]
    fn views_are_burns_slices_and_reshapes_without_a_copy() {
        let device = Default::default();
        let flat = Tensor::<NdArray, 1>::random([24], Distribution::Default, &device);
        let viewed = view(flat.clone(), 6..18, [3, 4]);
        assert_eq!(viewed.to_data(), flat.clone().slice(6..18).reshape([3, 4]).to_data());
        assert_eq!(address(&viewed), address(&flat) + 6 * 4, "a view of the same memory");
        let matrix = Tensor::<NdArray, 2>::random([5, 7], Distribution::Default, &device);
        let flattened = flatten(matrix.clone());
        assert_eq!(flattened.to_data(), matrix.clone().reshape([35]).to_data());
        assert_eq!(address(&flattened), address(&matrix));
        let transposed = matrix.transpose();
        assert_eq!(flatten(transposed.clone()).to_data(), transposed.reshape([35]).to_data());
    }

    /// The threaded norm is the sum of squares (against f64, and Burn's reductions) and reads
    /// nothing past the buffer's rows.
    #[test]
    fn the_sum_of_squares_is_the_norm_squared() {
        let device = Default::default();
        let (row, rows) = (4096, 37);
        let grad = Tensor::<NdArray, 1>::random([row * rows], Distribution::Normal(0.0, 1e-3), &device);
        let ours = sum_of_squares(&grad, row).expect("the CPU backend").into_scalar() as f64;
        let values = grad.to_data().to_vec::<f32>().unwrap();
        let exact: f64 = values.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        let burn = grad.clone().square().sum().into_scalar() as f64;
        assert!((ours - exact).abs() <= 1e-6 * exact, "{ours} against {exact}");
        // Burn's single f32 reduction over 151,552 elements is itself off by about 2e-6.
        assert!((ours - burn).abs() <= 1e-5 * exact, "{ours} against Burn's {burn}");
        assert!(sum_of_squares(&grad.slice(0..row * rows - 1), row).is_none(), "not whole rows");
    }
}
