//! Gradual magnitude pruning (Zhu & Gupta 2017, "To prune, or not to prune"): during fine-tuning
//! the sparsity rises from s_i to s_f along s_t = s_f + (s_i − s_f)(1 − (t − t₀)/(t₁ − t₀))³,
//! masks recomputed from the current weights every `every` optimizer steps between t₀ and t₁
//! (and at t₁, so the run ends at exactly s_f), and held in between.

use prunelab_prune::{MaskSet, PruneSpec, Scheme, Scope, compute_masks};
use prunelab_record::{GradualSchedule, PruneEvent};
use prunelab_stats::NamedTensor;

use crate::error::{Error, Result};

/// A gradual schedule and the masks it computes.
#[derive(Debug, Clone)]
pub struct GradualPruning<'a> {
    /// Which weights are pruned.
    pub scope: &'a Scope,
    /// How masks are computed from the weights: global or layer-wise magnitude, or random (a
    /// baseline; its scores are fixed by the seed, so its masks are nested too).
    pub scheme: Scheme,
    /// The seed of the random scheme.
    pub seed: u64,
    /// s_f, the sparsity of the scope from t₁ on.
    pub amount: f64,
    /// s_i, the sparsity at t₀.
    pub initial_amount: f64,
    /// t₀, as a fraction of the run's optimizer steps.
    pub start: f64,
    /// t₁, as a fraction of the run's optimizer steps.
    pub end: f64,
    /// Optimizer steps between mask updates.
    pub every: usize,
}

impl GradualPruning<'_> {
    /// Checks the ranges: 0 ≤ s_i ≤ s_f < 1, 0 ≤ t₀ ≤ t₁ ≤ 1, `every` ≥ 1, and a scheme that
    /// prunes a fraction (N:M prunes a fixed pattern, not a rising amount).
    pub fn validate(&self) -> Result<()> {
        let bad = |key, message: &str| Err(Error::Config { key, message: message.into() });
        if matches!(self.scheme, Scheme::NM { .. }) {
            return bad(
                "scheme",
                "a gradual schedule needs a scheme that prunes a fraction (global-l1, layer-l1, random)",
            );
        }
        if !(0.0..1.0).contains(&self.amount) {
            return bad("amount", "must be in [0, 1)");
        }
        if !(0.0..=self.amount).contains(&self.initial_amount) {
            return bad("initial_amount", "must be in [0, amount]");
        }
        if !(0.0..=1.0).contains(&self.start) || !(self.start..=1.0).contains(&self.end) {
            return bad("prune_start/prune_end", "need 0 <= start <= end <= 1 (fractions of the optimizer steps)");
        }
        if self.every == 0 {
            return bad("prune_every", "must be at least 1");
        }
        Ok(())
    }

    /// t₀ and t₁ in optimizer steps of a run of `total` steps (t₁ < `total`, so the final
    /// sparsity is always reached).
    fn window(&self, total: usize) -> (usize, usize) {
        let last = total.saturating_sub(1);
        let at = |fraction: f64| ((fraction * total as f64).round() as usize).min(last);
        (at(self.start), at(self.end))
    }

    /// s_t at optimizer step `step` (counted from 0) of a run of `total` steps.
    pub fn sparsity_at(&self, step: usize, total: usize) -> f64 {
        let (t0, t1) = self.window(total);
        if step < t0 {
            return 0.0;
        }
        if step >= t1 {
            return self.amount;
        }
        if step == t0 {
            return self.initial_amount;
        }
        let progress = (step - t0) as f64 / (t1 - t0) as f64;
        self.amount + (self.initial_amount - self.amount) * (1.0 - progress).powi(3)
    }

    /// Whether the final sparsity is in place after `steps` optimizer steps (only such models
    /// can be the run's best: an earlier one would be less sparse than asked).
    pub fn reached(&self, steps: usize, total: usize) -> bool {
        steps > self.window(total).1
    }

    /// The sparsity to prune to before step `step`, when masks are recomputed then: at t₀, every
    /// `every` steps after it, and at t₁.
    pub fn target(&self, step: usize, total: usize) -> Option<f64> {
        let (t0, t1) = self.window(total);
        let update = step == t1 || (step >= t0 && step < t1 && (step - t0).is_multiple_of(self.every));
        update.then(|| self.sparsity_at(step, total))
    }

    /// Masks of the scope at `target` sparsity, computed from `weights` (the current ones, in
    /// which earlier pruned weights are zero), and the event to record.
    pub fn masks(&self, weights: &[NamedTensor], target: f64, step: usize) -> Result<(MaskSet, PruneEvent)> {
        let spec = PruneSpec { scheme: self.scheme, amount: target, seed: self.seed };
        let masks = compute_masks(weights, self.scope, &spec)?;
        // Zeros after the masks are applied, counted on the weights: the pruned ones, and kept
        // weights that happen to be zero.
        let mut zeros = 0;
        for m in &masks.masks {
            let values = &weights.iter().find(|t| t.path == m.path).expect("a mask of a weight").values;
            zeros += m.keep.iter().zip(values).filter(|(keep, v)| !**keep || **v == 0.0).count();
        }
        let event = PruneEvent { step, target, zeros, params: masks.len_weights() };
        Ok((masks, event))
    }

    /// The schedule as result files record it (events are added as the run goes).
    pub fn record(&self) -> GradualSchedule {
        GradualSchedule {
            initial_amount: self.initial_amount,
            start: self.start,
            end: self.end,
            every: self.every,
            events: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prunelab_prune::ScopeKind;

    fn schedule(scope: &Scope) -> GradualPruning<'_> {
        GradualPruning {
            scope,
            scheme: Scheme::GlobalL1,
            seed: 0,
            amount: 0.9,
            initial_amount: 0.0,
            start: 0.1,
            end: 0.6,
            every: 10,
        }
    }

    #[test]
    fn the_cubic_schedule_of_zhu_and_gupta() {
        let scope = Scope::new(ScopeKind::Default);
        let g = schedule(&scope);
        // 100 steps: t0 = 10, t1 = 60.
        assert_eq!(g.sparsity_at(0, 100), 0.0);
        assert_eq!(g.sparsity_at(10, 100), 0.0);
        assert!((g.sparsity_at(35, 100) - (0.9 - 0.9 * 0.125)).abs() < 1e-12, "half-way: s_f (1 - 1/8)");
        assert_eq!(g.sparsity_at(60, 100), 0.9);
        assert_eq!(g.sparsity_at(99, 100), 0.9);
        let updates: Vec<usize> = (0..100).filter(|&t| g.target(t, 100).is_some()).collect();
        assert_eq!(updates, [10, 20, 30, 40, 50, 60]);
        let targets: Vec<f64> = updates.iter().map(|&t| g.target(t, 100).unwrap()).collect();
        assert!(targets.windows(2).all(|w| w[0] < w[1]), "rising: {targets:?}");
        // An end that is not on the grid of `every` still gets its update.
        let odd = GradualPruning { every: 7, ..schedule(&scope) };
        let updates: Vec<usize> = (0..100).filter(|&t| odd.target(t, 100).is_some()).collect();
        assert_eq!(updates, [10, 17, 24, 31, 38, 45, 52, 59, 60]);
        // Start and end at once: one update, straight to s_f.
        let once = GradualPruning { start: 0.0, end: 0.0, ..schedule(&scope) };
        assert_eq!((0..5).filter_map(|t| once.target(t, 5)).collect::<Vec<_>>(), [0.9]);
    }

    #[test]
    fn bad_schedules_are_refused() {
        let scope = Scope::new(ScopeKind::Default);
        for bad in [
            GradualPruning { initial_amount: 0.95, ..schedule(&scope) },
            GradualPruning { start: 0.7, ..schedule(&scope) },
            GradualPruning { every: 0, ..schedule(&scope) },
            GradualPruning { scheme: Scheme::NM { n: 2, m: 4 }, ..schedule(&scope) },
            GradualPruning { amount: 1.0, ..schedule(&scope) },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert!(schedule(&scope).validate().is_ok());
    }
}
