//! Computing pruning masks.
//!
//! | scheme | what is pruned |
//! |---|---|
//! | `global-l1` | the `round(amount * n)` smallest \|w\| over the whole scope (torch's `global_unstructured(L1Unstructured)`) |
//! | `layer-l1` | the `round(amount * n_t)` smallest \|w\| of each tensor (torch's `l1_unstructured` per module) |
//! | `n:m` | in every group of M consecutive weights along the input dimension, all but the N largest \|w\| (2:4 by default) |
//! | `random` | `round(amount * n)` weights of the scope chosen uniformly at random (seeded), a baseline |
//!
//! `round` is Python's (halves to even), so counts equal torch's. Burn stores every weight matrix
//! `[in, out]` (`nn.Linear` weights are transposed on load, GPT-2's `Conv1D` already are), so
//! "along the input dimension" is along dim 0 for every architecture.

use prunelab_models::HfModule;
use prunelab_stats::{NamedTensor, Role};

use crate::error::{Error, Result};
use crate::scope::Scope;

/// A pruning scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "scheme")]
pub enum Scheme {
    /// Global magnitude over the scope.
    GlobalL1,
    /// Magnitude within each tensor.
    LayerL1,
    /// Semi-structured N:M along the input dimension.
    NM {
        /// Weights kept per group.
        n: usize,
        /// Group size.
        m: usize,
    },
    /// Uniformly random over the scope.
    Random,
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scheme::GlobalL1 => f.write_str("global-l1"),
            Scheme::LayerL1 => f.write_str("layer-l1"),
            Scheme::NM { n, m } => write!(f, "{n}:{m}"),
            Scheme::Random => f.write_str("random"),
        }
    }
}

/// What to prune and how much.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PruneSpec {
    /// The scheme.
    #[serde(flatten)]
    pub scheme: Scheme,
    /// Fraction of the scope to prune, in `[0, 1)` (ignored by N:M, which prunes `1 - N/M`).
    pub amount: f64,
    /// Seed of the `random` scheme.
    pub seed: u64,
}

impl PruneSpec {
    /// Check the amount and the N:M parameters.
    pub fn validate(&self) -> Result<()> {
        if let Scheme::NM { n, m } = self.scheme {
            if m == 0 || n == 0 || n >= m {
                return Err(Error::NM { n, m });
            }
        } else if !(0.0..1.0).contains(&self.amount) {
            return Err(Error::Amount(self.amount));
        }
        Ok(())
    }
}

/// torch's `_compute_nparams_toprune`: `round(amount * n)` with Python's rounding (half to even).
pub fn nparams_to_prune(amount: f64, n: usize) -> usize {
    (amount * n as f64).round_ties_even() as usize
}

/// The mask of one tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Mask {
    /// Hugging Face key.
    pub key: String,
    /// Burn parameter path.
    pub path: String,
    /// PyTorch module class (decides the layout in Hugging Face files).
    pub module: HfModule,
    /// Layer index.
    pub layer: Option<usize>,
    /// Role.
    pub role: Role,
    /// Shape in Burn's layout.
    pub shape: Vec<usize>,
    /// `true` where the weight is kept, row-major in Burn's layout.
    pub keep: Vec<bool>,
}

impl Mask {
    /// The mask `keep` of tensor `t` (its names, module, layer, role and shape).
    pub fn of(t: &NamedTensor, keep: Vec<bool>) -> Mask {
        Mask {
            key: t.key.clone(),
            path: t.path.clone(),
            module: t.module,
            layer: t.layer,
            role: t.role,
            shape: t.shape.clone(),
            keep,
        }
    }

    /// Number of pruned weights.
    pub fn pruned(&self) -> usize {
        self.keep.iter().filter(|k| !**k).count()
    }

    /// The shape in Hugging Face files (`nn.Linear` weights are `[out, in]` there).
    pub fn hf_shape(&self) -> Vec<usize> {
        let mut shape = self.shape.clone();
        if self.transposed() {
            shape.reverse();
        }
        shape
    }

    fn transposed(&self) -> bool {
        self.module == HfModule::Linear && self.shape.len() == 2
    }

    /// The mask as 0/1 bytes in the Hugging Face layout (what torch's `weight_mask` holds).
    pub fn to_hf_bytes(&self) -> Vec<u8> {
        let bytes: Vec<u8> = self.keep.iter().map(|k| u8::from(*k)).collect();
        if self.transposed() { transpose(&bytes, self.shape[0], self.shape[1]) } else { bytes }
    }

    /// The mask from 0/1 values in the Hugging Face layout.
    pub fn keep_from_hf(values: &[u8], burn_shape: &[usize], module: HfModule) -> Vec<bool> {
        let values = if module == HfModule::Linear && burn_shape.len() == 2 {
            transpose(values, burn_shape[1], burn_shape[0])
        } else {
            values.to_vec()
        };
        values.iter().map(|v| *v != 0).collect()
    }
}

/// Transpose a row-major `[rows, cols]` matrix.
pub fn transpose<T: Copy>(values: &[T], rows: usize, cols: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(values.len());
    for c in 0..cols {
        for r in 0..rows {
            out.push(values[r * cols + c]);
        }
    }
    out
}

/// Masks for every tensor of a scope.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MaskSet {
    /// One mask per pruned tensor, in module order.
    pub masks: Vec<Mask>,
}

impl MaskSet {
    /// Total weights under masks.
    pub fn len_weights(&self) -> usize {
        self.masks.iter().map(|m| m.keep.len()).sum()
    }

    /// Total pruned weights.
    pub fn pruned(&self) -> usize {
        self.masks.iter().map(Mask::pruned).sum()
    }

    /// The mask of a Burn parameter path.
    pub fn by_path(&self, path: &str) -> Option<&Mask> {
        self.masks.iter().find(|m| m.path == path)
    }
}

/// Compute the masks of `spec` over the tensors of `scope`.
pub fn compute_masks(tensors: &[NamedTensor], scope: &Scope, spec: &PruneSpec) -> Result<MaskSet> {
    spec.validate()?;
    let selected = scope.select(tensors);
    if selected.is_empty() {
        return Err(Error::EmptyScope { scope: scope.to_string() });
    }
    let keeps: Vec<Vec<bool>> = match spec.scheme {
        Scheme::GlobalL1 => {
            let scores: Vec<Vec<f32>> = selected.iter().map(|t| t.values.iter().map(|w| w.abs()).collect()).collect();
            prune_smallest_globally(scores, spec.amount)
        }
        Scheme::Random => {
            let mut offset = 0u64;
            let scores: Vec<Vec<f32>> = selected
                .iter()
                .map(|t| {
                    let s = (0..t.values.len() as u64).map(|i| uniform(spec.seed, offset + i)).collect();
                    offset += t.values.len() as u64;
                    s
                })
                .collect();
            prune_smallest_globally(scores, spec.amount)
        }
        Scheme::LayerL1 => selected
            .iter()
            .map(|t| {
                let scores = vec![t.values.iter().map(|w| w.abs()).collect()];
                prune_smallest_globally(scores, spec.amount).pop().unwrap_or_default()
            })
            .collect(),
        Scheme::NM { n, m } => selected.iter().map(|t| n_of_m(t, n, m)).collect::<Result<_>>()?,
    };
    let masks = selected.iter().zip(keeps).map(|(t, keep)| Mask::of(t, keep)).collect();
    Ok(MaskSet { masks })
}

/// Prune the `round(amount * n)` smallest scores over all tensors together. Ties at the
/// threshold are pruned in order (first tensor, first index first).
fn prune_smallest_globally(scores: Vec<Vec<f32>>, amount: f64) -> Vec<Vec<bool>> {
    let total: usize = scores.iter().map(Vec::len).sum();
    let k = nparams_to_prune(amount, total);
    if k == 0 {
        return scores.iter().map(|s| vec![true; s.len()]).collect();
    }
    let mut all: Vec<f32> = scores.iter().flatten().copied().collect();
    let (_, threshold, _) = all.select_nth_unstable_by(k - 1, f32::total_cmp);
    let threshold = *threshold;
    drop(all);
    let below = scores.iter().flatten().filter(|s| s.total_cmp(&threshold).is_lt()).count();
    let mut ties_to_prune = k - below;
    scores
        .iter()
        .map(|tensor| {
            tensor
                .iter()
                .map(|s| match s.total_cmp(&threshold) {
                    std::cmp::Ordering::Less => false,
                    std::cmp::Ordering::Equal if ties_to_prune > 0 => {
                        ties_to_prune -= 1;
                        false
                    }
                    _ => true,
                })
                .collect()
        })
        .collect()
}

/// Keep the `n` largest |w| of every `m` consecutive weights along the input dimension (dim 0
/// of Burn's `[in, out]` layout), for each output unit.
fn n_of_m(t: &NamedTensor, n: usize, m: usize) -> Result<Vec<bool>> {
    let (rows, cols) = match t.shape[..] {
        [rows, cols] => (rows, cols),
        _ => (t.values.len(), 1),
    };
    if rows % m != 0 {
        return Err(Error::NMShape { key: t.key.clone(), input: rows, m });
    }
    let mut keep = vec![false; t.values.len()];
    let mut group: Vec<usize> = Vec::with_capacity(m);
    for col in 0..cols {
        for start in (0..rows).step_by(m) {
            group.clear();
            group.extend((start..start + m).map(|r| r * cols + col));
            // Largest |w| first; among equals the lower input index first.
            group.sort_by(|a, b| t.values[*b].abs().total_cmp(&t.values[*a].abs()).then(a.cmp(b)));
            for &i in &group[..n] {
                keep[i] = true;
            }
        }
    }
    Ok(keep)
}

/// A uniform score in `[0, 1)` for element `i` under `seed` (SplitMix64's finaliser), so random
/// masks are the same on every machine and version.
fn uniform(seed: u64, i: u64) -> f32 {
    let mut z = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(i).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 40) as f32 / (1u64 << 24) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::ScopeKind;

    fn tensor(key: &str, shape: Vec<usize>, values: Vec<f32>) -> NamedTensor {
        NamedTensor {
            path: key.into(),
            key: key.into(),
            module: HfModule::Conv1D,
            layer: Some(0),
            role: Role::MlpIn,
            shape,
            values,
        }
    }

    fn spec(scheme: Scheme, amount: f64) -> PruneSpec {
        PruneSpec { scheme, amount, seed: 7 }
    }

    #[test]
    fn counts_round_like_python() {
        assert_eq!(nparams_to_prune(0.5, 5), 2, "round(2.5) == 2");
        assert_eq!(nparams_to_prune(0.5, 7), 4, "round(3.5) == 4");
        assert_eq!(nparams_to_prune(0.1, 25), 2, "round(2.5) == 2");
        assert_eq!(nparams_to_prune(0.9, 10), 9);
        assert_eq!(nparams_to_prune(0.0, 10), 0);
    }

    #[test]
    fn global_prunes_the_smallest_across_tensors() {
        let t = vec![tensor("a", vec![2, 2], vec![0.1, -5.0, 0.3, 0.2]), tensor("b", vec![2, 1], vec![-0.05, 4.0])];
        let set = compute_masks(&t, &Scope::new(ScopeKind::Default), &spec(Scheme::GlobalL1, 0.5)).unwrap();
        assert_eq!(set.masks[0].keep, [false, true, true, false]);
        assert_eq!(set.masks[1].keep, [false, true]);
        assert_eq!(set.pruned(), 3);
        let layer = compute_masks(&t, &Scope::new(ScopeKind::Default), &spec(Scheme::LayerL1, 0.5)).unwrap();
        assert_eq!(layer.masks[0].keep, [false, true, true, false]);
        assert_eq!(layer.masks[1].keep, [false, true], "round(0.5 * 2) = 1 of b: -0.05");
    }

    #[test]
    fn ties_are_pruned_in_order_to_the_exact_count() {
        let t = vec![tensor("a", vec![4], vec![1.0, 1.0, 1.0, 1.0])];
        let set = compute_masks(&t, &Scope::new(ScopeKind::Default), &spec(Scheme::GlobalL1, 0.5)).unwrap();
        assert_eq!(set.masks[0].keep, [false, false, true, true]);
    }

    #[test]
    fn two_of_four_along_the_input_dimension() {
        // [in = 4, out = 2]: column 0 = 1, -4, 3, 2; column 1 = 0.5, 0.1, -0.2, 0.3
        let t = vec![tensor("a", vec![4, 2], vec![1.0, 0.5, -4.0, 0.1, 3.0, -0.2, 2.0, 0.3])];
        let set = compute_masks(&t, &Scope::new(ScopeKind::Default), &spec(Scheme::NM { n: 2, m: 4 }, 0.0)).unwrap();
        assert_eq!(set.masks[0].keep, [false, true, true, false, true, false, false, true]);
        let bad = vec![tensor("odd", vec![6, 2], vec![1.0; 12])];
        let err =
            compute_masks(&bad, &Scope::new(ScopeKind::Default), &spec(Scheme::NM { n: 2, m: 4 }, 0.0)).unwrap_err();
        assert!(err.to_string().contains("input dimension of odd (6) to be a multiple of 4"), "{err}");
    }

    #[test]
    fn random_is_seeded_and_exact() {
        let t = vec![tensor("a", vec![1000], (0..1000).map(|i| i as f32).collect())];
        let scope = Scope::new(ScopeKind::Default);
        let a = compute_masks(&t, &scope, &spec(Scheme::Random, 0.3)).unwrap();
        assert_eq!(a.pruned(), 300);
        assert_eq!(a, compute_masks(&t, &scope, &spec(Scheme::Random, 0.3)).unwrap());
        let other = PruneSpec { seed: 8, ..spec(Scheme::Random, 0.3) };
        assert_ne!(a, compute_masks(&t, &scope, &other).unwrap());
        // Random, not magnitude: some of the 300 smallest survive.
        assert!(a.masks[0].keep[..300].iter().any(|k| *k));
    }

    #[test]
    fn bad_specs_are_rejected() {
        for amount in [1.0, -0.1, 1.5, f64::NAN] {
            let err = spec(Scheme::GlobalL1, amount).validate().unwrap_err();
            assert!(err.to_string().contains("is outside [0, 1)"), "{err}");
        }
        for (n, m) in [(4, 4), (5, 4), (0, 4), (1, 0)] {
            assert!(spec(Scheme::NM { n, m }, 0.0).validate().is_err(), "{n}:{m}");
        }
        let t = vec![tensor("a", vec![1], vec![1.0])];
        let mut scope = Scope::new(ScopeKind::Default);
        scope.exclude.push("*".into());
        let err = compute_masks(&t, &scope, &spec(Scheme::GlobalL1, 0.5)).unwrap_err();
        assert_eq!(err.to_string(), "the pruning scope default -* matches no parameter of this model");
    }

    #[test]
    fn hf_layout_round_trip() {
        let mask = Mask {
            key: "k".into(),
            path: "p".into(),
            module: HfModule::Linear,
            layer: None,
            role: Role::Head,
            shape: vec![2, 3],
            keep: vec![true, false, true, false, false, true],
        };
        assert_eq!(mask.hf_shape(), [3, 2]);
        let hf = mask.to_hf_bytes();
        assert_eq!(hf, [1, 0, 0, 0, 1, 1]);
        assert_eq!(Mask::keep_from_hf(&hf, &mask.shape, HfModule::Linear), mask.keep);
    }
}
