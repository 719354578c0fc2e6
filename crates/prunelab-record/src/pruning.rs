//! How a run was pruned: the scheme, scope and amount, one-shot before training or gradually
//! during it, with or without a teacher.

use std::path::PathBuf;

use crate::train::MaskMode;

/// The `pruning` part of a run record.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PruningRecord {
    /// `none`, `global-l1`, `layer-l1`, `nm`, `random` or `wanda` (older files: `globall1`,
    /// `layerl1`).
    pub scheme: String,
    /// The fraction of the scope pruned at the end (0 for `none`).
    #[serde(default)]
    pub amount: f64,
    /// `default` or `seed`.
    #[serde(default)]
    pub scope: String,
    /// Masks read from this file instead of computed.
    #[serde(default)]
    pub masks_from: Option<PathBuf>,
    /// Masks held through training, or released as the study did.
    #[serde(default = "hold")]
    pub mask_mode: MaskMode,
    /// N and M of `nm` (absent for the other schemes and in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nm: Option<[usize; 2]>,
    /// Training examples whose activations scored the weights (`wanda`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<usize>,
    /// When the masks were computed; absent means [`Schedule::OneShot`] (older files too).
    #[serde(default, skip_serializing_if = "Schedule::is_one_shot")]
    pub schedule: Schedule,
}

fn hold() -> MaskMode {
    MaskMode::Hold
}

impl PruningRecord {
    /// Whether the run is the dense baseline (no pruning, no mask file).
    pub fn is_dense(&self) -> bool {
        self.scheme == "none" && self.masks_from.is_none()
    }
}

/// When masks are computed.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Schedule {
    /// Once, before fine-tuning (the study's method).
    #[default]
    OneShot,
    /// Along Zhu & Gupta's cubic schedule during fine-tuning.
    Gradual(GradualSchedule),
}

impl Schedule {
    /// Whether this is [`Schedule::OneShot`].
    pub fn is_one_shot(&self) -> bool {
        matches!(self, Schedule::OneShot)
    }

    /// `oneshot` or `gradual`.
    pub fn name(&self) -> &'static str {
        match self {
            Schedule::OneShot => "oneshot",
            Schedule::Gradual(_) => "gradual",
        }
    }
}

/// Gradual magnitude pruning (Zhu & Gupta 2017): the sparsity at step t in [t₀, t₁] is
/// s_t = s_f + (s_i − s_f)(1 − (t − t₀)/(t₁ − t₀))³, masks recomputed every `every` steps.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GradualSchedule {
    /// s_i, the sparsity at the first pruning step.
    pub initial_amount: f64,
    /// t₀ as a fraction of the optimizer steps.
    pub start: f64,
    /// t₁ as a fraction of the optimizer steps (the final sparsity from then on).
    pub end: f64,
    /// Optimizer steps between mask updates.
    pub every: usize,
    /// Every mask update, in order (filled in by the run).
    #[serde(default)]
    pub events: Vec<PruneEvent>,
}

/// One mask update of a gradual schedule.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PruneEvent {
    /// Optimizer steps taken before the update.
    pub step: usize,
    /// The schedule's sparsity for this step.
    pub target: f64,
    /// Zeros in the scope after the update, measured on the weights.
    pub zeros: usize,
    /// Weights in the scope.
    pub params: usize,
}

impl PruneEvent {
    /// The sparsity reached, measured on the weights.
    pub fn reached(&self) -> f64 {
        if self.params == 0 { 0.0 } else { self.zeros as f64 / self.params as f64 }
    }
}

/// Knowledge distillation from a teacher: the loss is (1 − α)·CE + α·T²·KL(teacher ‖ student)
/// on temperature-T softmaxes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Distillation {
    /// The teacher model as given (directory or Hub id).
    pub teacher: String,
    /// α, the weight of the distillation term.
    pub alpha: f64,
    /// T, the softmax temperature.
    pub temperature: f64,
    /// Seconds spent in the teacher's forward passes (filled in by the run).
    #[serde(default)]
    pub teacher_seconds: Option<f64>,
    /// The teacher's parameters (its memory cost is 4 bytes each in f32).
    #[serde(default)]
    pub teacher_params: Option<usize>,
}
