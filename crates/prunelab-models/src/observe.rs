//! Observing the inputs of every projection: while [`observe_inputs`] is on, each call of
//! [`crate::layers::linear`] (every attention and MLP projection of every architecture, and
//! the poolers and heads that go through it) adds the squares of its input, per input feature,
//! to a running sum kept for the projection's weight. Wanda (Sun et al. 2023) scores weights
//! with these norms. Off (the default), the check is one relaxed atomic load per projection.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::module::ParamId;
use burn::nn::Linear;
use burn::prelude::*;

static OBSERVING: AtomicBool = AtomicBool::new(false);
static SUMS: Mutex<Option<HashMap<ParamId, Sums>>> = Mutex::new(None);

/// Per input feature, the sum of squares over every observed token, and the tokens.
#[derive(Debug, Clone, Default)]
struct Sums {
    squares: Vec<f64>,
    tokens: usize,
}

/// Start observing (forgetting anything observed before), or stop.
pub fn observe_inputs(on: bool) {
    let mut sums = SUMS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if on {
        *sums = Some(HashMap::new());
    }
    OBSERVING.store(on, Ordering::SeqCst);
}

/// The L2 norm of each input feature over every token observed, per projection weight (its
/// parameter id), and the tokens seen: ‖X_j‖₂ of Wanda's score |W_ij|·‖X_j‖₂.
pub fn observed_input_norms() -> HashMap<ParamId, (Vec<f32>, usize)> {
    let sums = SUMS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    sums.iter()
        .flatten()
        .map(|(id, s)| (*id, (s.squares.iter().map(|v| v.sqrt() as f32).collect(), s.tokens)))
        .collect()
}

/// Adds `x`'s squares (`[..., d_in]`, every leading axis a token) to `layer`'s sums, when
/// observing.
pub(crate) fn record<B: Backend, const D: usize>(layer: &Linear<B>, x: &Tensor<B, D>) {
    if !OBSERVING.load(Ordering::Relaxed) {
        return;
    }
    let dims = x.dims();
    let d_in = dims[D - 1];
    let tokens: usize = dims[..D - 1].iter().product();
    let squares = x.clone().reshape([tokens, d_in]).square().sum_dim(0).reshape([d_in]);
    let Ok(values) = squares.into_data().convert::<f32>().to_vec::<f32>() else { return };
    let mut sums = SUMS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let entry = sums.get_or_insert_with(HashMap::new).entry(layer.weight.id).or_default();
    if entry.squares.is_empty() {
        entry.squares = vec![0.0; d_in];
    }
    for (sum, v) in entry.squares.iter_mut().zip(values) {
        *sum += f64::from(v);
    }
    entry.tokens += tokens;
}
