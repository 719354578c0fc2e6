//! The flat step: every trained parameter, its gradient, its AdamW moments, whether weight decay
//! applies to it and its held mask live at the same offset of one flat buffer each, so one
//! optimizer step is a fixed handful of whole-buffer operations — the masked gradient, its sum
//! of squares ([`super::squares`]: two reductions, or a kernel of the backend's), the clipping
//! coefficient (on the device: no host read) and one chain of element-wise AdamW arithmetic that
//! Burn's kernel fusion compiles into one kernel —
//! plus the copy of the gradients into the flat gradient buffer (autodiff hands gradients over
//! one tensor at a time: a `slice_assign` each, or one operation of an installed
//! [`super::gather`] kernel). The module's parameters are views into the flat parameter buffer
//! (segments start at multiples of [`ALIGN`] elements, so slicing copies nothing on the GPU
//! backends; on the CPU backend, whose `slice` and `reshape` copy, [`super::cpu::view`] and
//! [`super::cpu::flatten`] share the memory, and [`super::cpu::sum_of_squares`] is the norm's
//! one pass), and AdamW's state is kept and saved per parameter in Burn's own record format.
//!
//! The arithmetic is Burn's AdamW's (the same operations in the same order per element, weight
//! decay applied through a 0/1 decay vector that leaves the plain group's values untouched); only
//! the order in which the global norm's squares are summed differs from the per-tensor step.
//!
//! Invariant: the module's parameters are read into the flat buffer once (first step) and after
//! every [`FlatAdamW::reset`]; whoever changes the parameters outside a step (masks applied, a
//! gradual pruning step) calls `reset` before the next step.

use std::collections::HashMap;

use burn::module::{ModuleMapper, Param, ParamId};
use burn::optim::record::AdaptorRecord;
use burn::optim::{AdamW, GradientsParams};
use burn::optim::{AdamWState, AdaptiveMomentumState};
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::backend::AutodiffBackend;
use prunelab_models::info::{ParamFn, for_each_param};
use prunelab_models::{Classifier, HfModule};
use prunelab_prune::DeviceMasks;

use super::cpu::{flatten, view};
use super::gather::gather;
use super::squares::{ROW, sum_of_squares};
use super::{GroupRecord, ParamEntry, StepSettings};
use crate::phase::{self, Phase};

/// Segments start at multiples of this many elements (1 KiB of f32): a multiple of every
/// backend's offset alignment (CUDA's is 512 bytes), so a segment's view copies nothing.
const ALIGN: usize = 256;

/// One parameter's place in the flat buffers.
struct Segment {
    id: ParamId,
    path: String,
    shape: Vec<usize>,
    offset: usize,
    len: usize,
    decay: bool,
}

/// AdamW over flat buffers; see the module documentation.
pub(crate) struct FlatAdamW<B: AutodiffBackend> {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f64,
    state: Option<FlatState<B::InnerBackend>>,
    /// Saved per-parameter states waiting for the first step (a resumed run's).
    pending: HashMap<ParamId, AdaptorRecord<AdamW, B>>,
}

struct FlatState<B: Backend> {
    segments: Vec<Segment>,
    len: usize,
    /// Steps taken (AdamW's bias correction).
    time: usize,
    moment_1: Tensor<B, 1>,
    moment_2: Tensor<B, 1>,
    /// 1 where weight decay applies, 0 elsewhere (the plain group and the padding).
    decay: Tensor<B, 1>,
    /// The parameters (the module's are views into it) and the held masks (1 outside masked
    /// tensors); `None` until read again after [`FlatAdamW::reset`].
    params: Option<Tensor<B, 1>>,
    mask: Option<Option<Tensor<B, 1>>>,
}

impl<B: AutodiffBackend> FlatAdamW<B> {
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: f64) -> Self {
        Self { beta_1, beta_2, epsilon, weight_decay, state: None, pending: HashMap::new() }
    }

    /// The parameters or the masks changed outside the optimizer: read them again at the next
    /// step.
    pub fn reset(&mut self) {
        if let Some(state) = &mut self.state {
            state.params = None;
            state.mask = None;
        }
    }

    /// One update of every parameter with a gradient.
    pub fn step(
        &mut self,
        model: Classifier<B>,
        mut grads: GradientsParams,
        entries: &[ParamEntry],
        settings: &StepSettings<'_, B::InnerBackend>,
        device: &B::Device,
    ) -> Classifier<B> {
        if self.state.is_none() {
            let state = self.lay_out(entries, &grads, device);
            self.state = Some(state);
        }
        let (beta_1, beta_2, epsilon, weight_decay) = (self.beta_1, self.beta_2, self.epsilon, self.weight_decay);
        let state = self.state.as_mut().expect("laid out above");
        if state.params.is_none() {
            state.params = Some(state.gather_params(&model, device));
        }
        if state.mask.is_none() {
            state.mask = Some(settings.masks.map(|m| state.gather_mask(m, device)));
        }
        let mask = state.mask.clone().flatten();
        phase::enter(Phase::Gather);
        let grad = state.gather_grads(&mut grads, device);
        // The norm is that of the masked gradients (pruned weights have none), as torch's
        // pruning hooks give them.
        let grad = match &mask {
            Some(m) => grad * m.clone(),
            None => grad,
        };
        phase::enter(Phase::Norm);
        let sum_sq = sum_of_squares(grad.clone());
        let clip = (sum_sq.sqrt().add_scalar(1e-6).recip() * settings.max_norm).clamp_max(1.0);

        phase::enter(Phase::Update);
        state.time += 1;
        let scalars = AdamWScalars::new(beta_1, beta_2, epsilon, weight_decay, settings.lr, state.time);
        // The moments move into the update, so that the CPU step may write them where they are
        // (a buffer someone else holds would be copied first); until the new ones come back, the
        // decay buffer's handle holds their place (a clone shares it: no copy, no launch).
        let update = Update {
            grad,
            clip,
            moment_1: std::mem::replace(&mut state.moment_1, state.decay.clone()),
            moment_2: std::mem::replace(&mut state.moment_2, state.decay.clone()),
            params: state.params.take().expect("read above"),
            decay: state.decay.clone(),
            mask,
        };
        let (params, moment_1, moment_2) = match super::cpu::update(update, &scalars) {
            Ok(updated) => updated,
            Err(update) => update.with_burn_ops(&scalars),
        };
        state.moment_1 = moment_1;
        state.moment_2 = moment_2;
        state.params = Some(params.clone());
        phase::enter(Phase::Scatter);
        model.map(&mut Scatter { segments: state.index(), params })
    }

    /// Places every parameter that has a gradient (in `entries`' order) and builds the moments
    /// from the pending saved states, or zeros.
    fn lay_out(
        &mut self,
        entries: &[ParamEntry],
        grads: &GradientsParams,
        device: &B::Device,
    ) -> FlatState<B::InnerBackend> {
        let mut segments = Vec::new();
        let mut offset = 0;
        for e in entries.iter().filter(|e| has_grad::<B>(grads, e)) {
            let len = e.shape.iter().product::<usize>();
            segments.push(Segment {
                id: e.id,
                path: e.path.clone(),
                shape: e.shape.clone(),
                offset,
                len,
                decay: e.decay,
            });
            offset += len.div_ceil(ALIGN) * ALIGN;
        }
        let len = offset.div_ceil(ROW).max(1) * ROW;
        let mut decay = vec![0f32; len];
        for s in segments.iter().filter(|s| s.decay) {
            decay[s.offset..s.offset + s.len].fill(1.0);
        }
        let mut state = FlatState {
            time: 0,
            moment_1: Tensor::zeros([len], device),
            moment_2: Tensor::zeros([len], device),
            decay: Tensor::from_data(TensorData::new(decay, [len]), device),
            params: None,
            mask: None,
            segments,
            len,
        };
        let mut times = Vec::new();
        for i in 0..state.segments.len() {
            let Some(record) = self.pending.remove(&state.segments[i].id) else { continue };
            let (time, m1, m2) = moments::<B>(record, state.segments[i].shape.len(), device);
            times.push(time);
            let range = state.segments[i].offset..state.segments[i].offset + state.segments[i].len;
            state.moment_1 = state.moment_1.slice_assign([range.clone()], m1);
            state.moment_2 = state.moment_2.slice_assign([range], m2);
        }
        state.time = times.iter().copied().max().unwrap_or(0);
        if times.iter().any(|t| *t != state.time) || (!times.is_empty() && times.len() != state.segments.len()) {
            tracing::warn!("saved optimizer states disagree on the step count; the flat step uses the largest");
        }
        tracing::debug!(tensors = state.segments.len(), len, time = state.time, "flat optimizer laid out");
        state
    }

    /// The state of the decayed (`true`) or the plain group, per parameter, as Burn's AdamW
    /// saves it.
    pub fn group_record(&self, entries: &[ParamEntry], decayed: bool) -> GroupRecord<B> {
        let group: std::collections::HashSet<ParamId> =
            entries.iter().filter(|e| e.decay == decayed).map(|e| e.id).collect();
        let mut record: GroupRecord<B> =
            self.pending.iter().filter(|(id, _)| group.contains(id)).map(|(id, r)| (*id, r.clone())).collect();
        let Some(state) = &self.state else { return record };
        for s in state.segments.iter().filter(|s| group.contains(&s.id)) {
            let part = |t: &Tensor<B::InnerBackend, 1>| t.clone().slice(s.offset..s.offset + s.len);
            let saved = saved_state::<B>(state.time, part(&state.moment_1), part(&state.moment_2), &s.shape);
            record.insert(s.id, saved);
        }
        record
    }

    /// Add a group's saved state (used from the next step's layout on).
    pub fn load_group_record(&mut self, record: GroupRecord<B>) {
        self.pending.extend(record);
        if self.state.is_some() {
            tracing::warn!("optimizer state loaded after the first step is ignored");
        }
    }
}

/// AdamW's scalars for one step, in the f32 (and f64 → f32) arithmetic Burn's AdamW uses.
pub(crate) struct AdamWScalars {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
    /// `1 − β₁ᵗ` and `1 − β₂ᵗ`: the bias corrections' divisors.
    pub correction_1: f32,
    pub correction_2: f32,
    pub lr: f32,
    /// `(1 − lr·wd) − 1`, when weight decay applies at all.
    pub decay_minus_one: Option<f32>,
}

impl AdamWScalars {
    fn new(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: f64, lr: f64, time: usize) -> Self {
        let time = time as i32;
        let decay_rate = lr * weight_decay;
        Self {
            beta_1,
            beta_2,
            epsilon,
            correction_1: 1f32 - beta_1.powi(time),
            correction_2: 1f32 - beta_2.powi(time),
            lr: lr as f32,
            // `p * (1 - lr·wd)` where decay applies and `p * 1` elsewhere: with c = (1 - lr·wd)
            // in f32, `decay * (c - 1) + 1` is exactly c or 1 (c - 1 is exact for c in [0.5, 1]).
            decay_minus_one: (decay_rate != 0.0).then_some((1.0 - decay_rate) as f32 - 1.0),
        }
    }
}

/// The flat buffers one step's element-wise arithmetic reads: the masked gradient, the clipping
/// coefficient (one element), both moments, the parameters, the 0/1 decay vector and the mask.
pub(crate) struct Update<B: Backend> {
    pub grad: Tensor<B, 1>,
    pub clip: Tensor<B, 1>,
    pub moment_1: Tensor<B, 1>,
    pub moment_2: Tensor<B, 1>,
    pub params: Tensor<B, 1>,
    pub decay: Tensor<B, 1>,
    pub mask: Option<Tensor<B, 1>>,
}

impl<B: Backend> Update<B> {
    /// The step as a chain of Burn's whole-buffer ops (one fused kernel under Burn's fusion):
    /// the new parameters and moments. Per element, in this order:
    /// `g = grad·clip`, `m₁ = m₁·β₁ + g·(1−β₁)`, `m₂ = m₂·β₂ + (g·g)·(1−β₂)`,
    /// `Δ = (m₁ / c₁) / (√(m₂ / c₂) + ε)`, `p = p·(decay·(c−1) + 1)`, `p = p − Δ·lr`, `p = p·mask`.
    pub fn with_burn_ops(self, s: &AdamWScalars) -> (Tensor<B, 1>, Tensor<B, 1>, Tensor<B, 1>) {
        let grad = self.grad * self.clip;
        let moment_1 = self.moment_1.mul_scalar(s.beta_1).add(grad.clone().mul_scalar(1.0 - s.beta_1));
        let moment_2 = self.moment_2.mul_scalar(s.beta_2).add(grad.square().mul_scalar(1.0 - s.beta_2));
        let corrected_1 = moment_1.clone().div_scalar(s.correction_1);
        let corrected_2 = moment_2.clone().div_scalar(s.correction_2);
        let delta = corrected_1.div(corrected_2.sqrt().add_scalar(s.epsilon));
        let params = match s.decay_minus_one {
            Some(c_minus_one) => self.params * self.decay.mul_scalar(c_minus_one).add_scalar(1.0),
            None => self.params,
        };
        let params = params - delta.mul_scalar(s.lr);
        let params = match self.mask {
            Some(m) => params * m,
            None => params,
        };
        (params, moment_1, moment_2)
    }
}

fn has_grad<B: AutodiffBackend>(grads: &GradientsParams, e: &ParamEntry) -> bool {
    match e.shape.len() {
        1 => grads.get::<B::InnerBackend, 1>(e.id).is_some(),
        2 => grads.get::<B::InnerBackend, 2>(e.id).is_some(),
        3 => grads.get::<B::InnerBackend, 3>(e.id).is_some(),
        4 => grads.get::<B::InnerBackend, 4>(e.id).is_some(),
        _ => false,
    }
}

impl<B: Backend> FlatState<B> {
    fn index(&self) -> HashMap<ParamId, &Segment> {
        self.segments.iter().map(|s| (s.id, s)).collect()
    }

    /// The gradients, in place (zeros in the padding and where a parameter has no gradient).
    fn gather_grads(&self, grads: &mut GradientsParams, device: &B::Device) -> Tensor<B, 1> {
        let mut parts = Vec::with_capacity(self.segments.len());
        for s in &self.segments {
            let grad = match s.shape.len() {
                1 => grads.remove::<B, 1>(s.id),
                2 => grads.remove::<B, 2>(s.id).map(flatten),
                3 => grads.remove::<B, 3>(s.id).map(flatten),
                4 => grads.remove::<B, 4>(s.id).map(flatten),
                _ => None,
            };
            parts.extend(grad.map(|g| (g, s.offset)));
        }
        let missing = self.segments.len() - parts.len();
        if missing > 0 {
            tracing::warn!(missing, "parameters without a gradient this step get a zero one");
        }
        gather(parts, self.len, 0.0, device)
    }

    /// The module's parameters, in place.
    fn gather_params<AB: AutodiffBackend<InnerBackend = B>>(
        &self,
        model: &Classifier<AB>,
        device: &B::Device,
    ) -> Tensor<B, 1> {
        struct Collect<B: Backend>(HashMap<ParamId, Tensor<B, 1>>);
        impl<AB: AutodiffBackend> ParamFn<AB> for Collect<AB::InnerBackend> {
            fn param<const D: usize>(&mut self, _: &str, _: HfModule, param: &Param<Tensor<AB, D>>) {
                self.0.insert(param.id, flatten(param.val().inner()));
            }
        }
        let mut collect = Collect::<B>(HashMap::new());
        for_each_param(model, &mut collect);
        let parts = self.segments.iter().filter_map(|s| collect.0.remove(&s.id).map(|value| (value, s.offset)));
        gather(parts.collect(), self.len, 0.0, device)
    }

    /// The held masks in place, 1 outside masked tensors.
    fn gather_mask(&self, masks: &DeviceMasks<B>, device: &B::Device) -> Tensor<B, 1> {
        let parts = self.segments.iter().filter_map(|s| masks.get::<1>(&s.path, [s.len]).map(|m| (m, s.offset)));
        gather(parts.collect(), self.len, 1.0, device)
    }
}

/// A saved per-parameter state's step count and moments, flattened.
fn moments<B: AutodiffBackend>(
    record: AdaptorRecord<AdamW, B>,
    rank: usize,
    device: &B::Device,
) -> (usize, Tensor<B::InnerBackend, 1>, Tensor<B::InnerBackend, 1>) {
    fn flat<B: Backend, const D: usize>(
        state: AdamWState<B, D>,
        device: &B::Device,
    ) -> (usize, Tensor<B, 1>, Tensor<B, 1>) {
        let m = state.momentum;
        let len = m.moment_1.shape().num_elements();
        (m.time, m.moment_1.to_device(device).reshape([len]), m.moment_2.to_device(device).reshape([len]))
    }
    match rank {
        1 => flat(record.into_state::<1>(), device),
        2 => flat(record.into_state::<2>(), device),
        3 => flat(record.into_state::<3>(), device),
        _ => flat(record.into_state::<4>(), device),
    }
}

/// Burn's AdamW record of one parameter of `shape` from its flat moments.
fn saved_state<B: AutodiffBackend>(
    time: usize,
    moment_1: Tensor<B::InnerBackend, 1>,
    moment_2: Tensor<B::InnerBackend, 1>,
    shape: &[usize],
) -> AdaptorRecord<AdamW, B> {
    fn state<B: Backend, const D: usize>(
        time: usize,
        m1: Tensor<B, 1>,
        m2: Tensor<B, 1>,
        shape: &[usize],
    ) -> AdamWState<B, D> {
        let shape: [usize; D] = shape.try_into().expect("rank matches");
        AdamWState { momentum: AdaptiveMomentumState::new(time, m1.reshape(shape), m2.reshape(shape)) }
    }
    match shape.len() {
        1 => AdaptorRecord::from_state::<1>(state(time, moment_1, moment_2, shape)),
        2 => AdaptorRecord::from_state::<2>(state(time, moment_1, moment_2, shape)),
        3 => AdaptorRecord::from_state::<3>(state(time, moment_1, moment_2, shape)),
        _ => AdaptorRecord::from_state::<4>(state(time, moment_1, moment_2, shape)),
    }
}

/// Replaces every laid-out parameter by its view into the new flat parameters (same id).
struct Scatter<'a, B: Backend> {
    segments: HashMap<ParamId, &'a Segment>,
    params: Tensor<B, 1>,
}

impl<AB: AutodiffBackend> ModuleMapper<AB> for Scatter<'_, AB::InnerBackend> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<AB, D>>) -> Param<Tensor<AB, D>> {
        let Some(s) = self.segments.get(&param.id) else { return param };
        let (id, tensor, mapper) = param.consume();
        let shape: [usize; D] = s.shape.as_slice().try_into().expect("a parameter keeps its rank");
        let view = view(self.params.clone(), s.offset..s.offset + s.len, shape);
        let mut updated = Tensor::from_inner(view);
        if tensor.is_require_grad() {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::{B, grads_on_batch, tiny_model};
    use crate::optim::{OptimizerKind, TrainerOptimizer, param_entries};
    use burn::backend::NdArray;
    use prunelab_prune::{MaskSet, PruneSpec, Scheme, Scope, ScopeKind, compute_masks};
    use prunelab_record::TrainConfig;
    use prunelab_stats::weights;

    fn masks(model: &Classifier<B>) -> MaskSet {
        let spec = PruneSpec { scheme: Scheme::GlobalL1, amount: 0.5, seed: 0 };
        compute_masks(&weights(model, model.naming().as_ref()), &Scope::new(ScopeKind::Default), &spec).unwrap()
    }

    /// `steps` steps of `optim` from `model`, clipping at 0.5 (active on these gradients) with
    /// the masks held.
    fn train(optim: &mut TrainerOptimizer<B>, mut model: Classifier<B>, masks: &MaskSet, lrs: &[f64]) -> Classifier<B> {
        let device = Default::default();
        let held = DeviceMasks::<NdArray>::new(masks, &device);
        let entries = param_entries(&model, model.naming().as_ref());
        for &lr in lrs {
            let grads = grads_on_batch(&model);
            let settings = StepSettings { lr, max_norm: 0.5, masks: Some(&held) };
            model = optim.step(model, grads, &entries, &settings, &device);
        }
        model
    }

    /// Per tensor: the largest difference is at most 1e-6 of the largest value.
    fn assert_close(a: &Classifier<B>, b: &Classifier<B>) {
        let (a, b) = (weights(a, a.naming().as_ref()), weights(b, b.naming().as_ref()));
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            let diff = x.values.iter().zip(&y.values).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max);
            let scale = y.values.iter().map(|v| v.abs()).fold(0.0, f32::max);
            assert!(diff <= 1e-6 * scale, "{}: differs by {diff} (largest value {scale})", x.path);
        }
    }

    fn optimizer(kind: OptimizerKind) -> TrainerOptimizer<B> {
        TrainerOptimizer::new(kind, &TrainConfig { weight_decay: 0.01, ..TrainConfig::default() })
    }

    #[test]
    fn the_flat_step_equals_the_per_tensor_step() {
        let device = Default::default();
        let model = tiny_model();
        let masks = masks(&model);
        let start = DeviceMasks::<B>::new(&masks, &device).apply(model);
        let lrs = [1e-3, 5e-4, 2e-4];
        let flat = train(&mut optimizer(OptimizerKind::Flat), start.clone(), &masks, &lrs);
        let reference = train(&mut optimizer(OptimizerKind::PerTensor), start, &masks, &lrs);
        assert_close(&flat, &reference);
        let after = weights(&flat, flat.naming().as_ref());
        for m in &masks.masks {
            let t = after.iter().find(|t| t.path == m.path).expect("a masked parameter");
            assert!(m.keep.iter().zip(&t.values).all(|(keep, v)| *keep || *v == 0.0), "{} regrew", m.path);
        }
    }

    /// A checkpoint of the per-tensor step (the format every earlier version saved) resumes in
    /// the flat step, and the flat step's own records load back into a fresh one.
    #[test]
    fn saved_states_move_between_the_two_steps() {
        let device = Default::default();
        let model = tiny_model();
        let masks = masks(&model);
        let start = DeviceMasks::<B>::new(&masks, &device).apply(model);
        let entries = param_entries(&start, start.naming().as_ref());
        let mut per_tensor = optimizer(OptimizerKind::PerTensor);
        let after_one = train(&mut per_tensor, start.clone(), &masks, &[1e-3]);
        let reference = train(&mut per_tensor, after_one.clone(), &masks, &[5e-4, 2e-4]);

        let mut resumed = optimizer(OptimizerKind::Flat);
        for decayed in [true, false] {
            resumed.load_group_record(per_tensor_record(&start, &masks, decayed));
        }
        let after_two = train(&mut resumed, after_one, &masks, &[5e-4]);
        let mut again = optimizer(OptimizerKind::Flat);
        for decayed in [true, false] {
            let record = resumed.group_record(&entries, decayed);
            assert!(!record.is_empty());
            again.load_group_record(record);
        }
        let flat = train(&mut again, after_two, &masks, &[2e-4]);
        assert_close(&flat, &reference);
    }

    /// The per-tensor step's state after its first step from `start`.
    fn per_tensor_record(start: &Classifier<B>, masks: &MaskSet, decayed: bool) -> GroupRecord<B> {
        let mut optim = optimizer(OptimizerKind::PerTensor);
        let _ = train(&mut optim, start.clone(), masks, &[1e-3]);
        optim.group_record(&param_entries(start, start.naming().as_ref()), decayed)
    }
}
