//! Where a training step is — forward, backward, and the optimizer's parts — for profilers that
//! count GPU work per phase (issue 22's launches per phase: `bench/cupti_busy.c`).
//!
//! The loop calls [`enter`] as each phase begins. Without a probe (the default) that is one
//! atomic load; the binary installs one with [`set_probe`] only when asked to measure, because a
//! useful probe waits for the device at every mark (so that each phase's work is complete, and
//! counted, before the next one's starts), which costs time and splits Burn's fusion at the marks.

use std::ffi::CStr;
use std::sync::OnceLock;

/// A phase of one optimizer step. The flat optimizer step marks its four parts; the per-tensor
/// one marks [`Phase::Update`] for the whole step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The batch to the device, the model's forward pass and the loss.
    Forward,
    /// The backward pass and the accumulation of the gradients.
    Backward,
    /// The flat step's copy of every gradient into one buffer.
    Gather,
    /// The global gradient norm and the clipping coefficient (on the device).
    Norm,
    /// AdamW, the gradient masks and the re-masking.
    Update,
    /// The updated parameters back into the model's tensors.
    Scatter,
    /// After the step: the loss read-back, logging, evaluation.
    Other,
}

impl Phase {
    /// The phase's name, as profilers record it.
    pub fn name(self) -> &'static CStr {
        match self {
            Phase::Forward => c"forward",
            Phase::Backward => c"backward",
            Phase::Gather => c"gather",
            Phase::Norm => c"norm",
            Phase::Update => c"update",
            Phase::Scatter => c"scatter",
            Phase::Other => c"other",
        }
    }
}

/// What runs at each mark.
pub type Probe = Box<dyn Fn(Phase) + Send + Sync>;

static PROBE: OnceLock<Probe> = OnceLock::new();

/// Install the probe every later [`enter`] calls, once per process; a second one is handed back.
pub fn set_probe(probe: Probe) -> Result<(), Probe> {
    PROBE.set(probe)
}

/// `phase` begins.
pub fn enter(phase: Phase) {
    if let Some(probe) = PROBE.get() {
        probe(phase);
    }
}
