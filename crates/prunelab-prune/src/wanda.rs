//! Wanda (Sun et al. 2023, "A Simple and Effective Pruning Approach for Large Language Models"):
//! each weight is scored |W_ij|·‖X_j‖₂, its magnitude times the L2 norm of its input feature
//! over calibration tokens, and within each output unit the `int(amount · d_in)` lowest scores
//! are pruned (the reference code's count, truncated; ties: the lower input index first). The
//! norms come from the activations of real inputs (`prunelab-models`' `observe`), so a weight
//! on a large-activation feature survives where magnitude alone would prune it.

use std::collections::HashMap;

use prunelab_stats::NamedTensor;

use crate::error::{Error, Result};
use crate::masks::{Mask, MaskSet};
use crate::scope::Scope;

/// Wanda's masks of the tensors of `scope` at `amount`, with `input_norms` per Burn parameter
/// path (‖X_j‖₂ for each input feature j). Every selected tensor must be a `[in, out]` matrix
/// with norms of length `in`.
pub fn compute_wanda_masks(
    tensors: &[NamedTensor],
    scope: &Scope,
    amount: f64,
    input_norms: &HashMap<String, Vec<f32>>,
) -> Result<MaskSet> {
    if !(0.0..1.0).contains(&amount) {
        return Err(Error::Amount(amount));
    }
    let selected = scope.select(tensors);
    if selected.is_empty() {
        return Err(Error::EmptyScope { scope: scope.to_string() });
    }
    let unobserved: Vec<&str> =
        selected.iter().filter(|t| !input_norms.contains_key(&t.path)).map(|t| t.key.as_str()).collect();
    if !unobserved.is_empty() {
        return Err(Error::Wanda {
            message: format!(
                "no activations were observed for {} (their inputs do not go through the projections prunelab observes); leave them out with --exclude",
                unobserved.join(", ")
            ),
        });
    }
    let masks = selected
        .iter()
        .map(|t| Ok(Mask::of(t, keep_per_output(t, &input_norms[&t.path], amount)?)))
        .collect::<Result<_>>()?;
    Ok(MaskSet { masks })
}

/// The kept weights of one `[in, out]` matrix (row-major, Burn's layout): per output column,
/// all but the `int(amount · in)` lowest scores.
fn keep_per_output(t: &NamedTensor, norms: &[f32], amount: f64) -> Result<Vec<bool>> {
    let [rows, cols] = t.shape[..] else {
        return Err(Error::Wanda {
            message: format!("{} is not a matrix (shape {:?}); leave it out with --exclude", t.key, t.shape),
        });
    };
    if norms.len() != rows {
        return Err(Error::Wanda {
            message: format!("{}: {} input norms for an input dimension of {rows}", t.key, norms.len()),
        });
    }
    let prune = (amount * rows as f64) as usize;
    let mut keep = vec![true; t.values.len()];
    let mut order: Vec<usize> = Vec::with_capacity(rows);
    for col in 0..cols {
        let score = |r: usize| t.values[r * cols + col].abs() * norms[r];
        order.clear();
        order.extend(0..rows);
        order.sort_by(|&a, &b| score(a).total_cmp(&score(b)).then(a.cmp(&b)));
        for &r in &order[..prune] {
            keep[r * cols + col] = false;
        }
    }
    Ok(keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::ScopeKind;
    use prunelab_models::HfModule;
    use prunelab_stats::Role;

    #[test]
    fn activations_decide_what_magnitude_alone_would_not() {
        // [in = 3, out = 2]: column 0 holds 1.0, 0.5, 0.2; column 1 holds 0.1, 0.3, 2.0.
        let t = NamedTensor {
            path: "w".into(),
            key: "w".into(),
            module: HfModule::Conv1D,
            layer: Some(0),
            role: Role::MlpIn,
            shape: vec![3, 2],
            values: vec![1.0, 0.1, 0.5, 0.3, 0.2, 2.0],
        };
        // Feature 2 is large, feature 0 small: scores col 0 = 0.01, 0.5, 2.0; col 1 = 0.001, 0.3, 20.
        let norms = HashMap::from([("w".to_owned(), vec![0.01, 1.0, 10.0])]);
        let scope = Scope::new(ScopeKind::Default);
        let masks = compute_wanda_masks(std::slice::from_ref(&t), &scope, 0.5, &norms).unwrap();
        // int(0.5 · 3) = 1 per column: the lowest score, feature 0, although 1.0 is column 0's
        // largest magnitude.
        assert_eq!(masks.masks[0].keep, [false, false, true, true, true, true]);
        let masks = compute_wanda_masks(std::slice::from_ref(&t), &scope, 0.7, &norms).unwrap();
        assert_eq!(masks.masks[0].keep, [false, false, false, false, true, true], "int(2.1) = 2 per column");
        let err = compute_wanda_masks(&[t], &scope, 0.5, &HashMap::new()).unwrap_err().to_string();
        assert!(err.contains("no activations were observed for w"), "{err}");
    }
}
