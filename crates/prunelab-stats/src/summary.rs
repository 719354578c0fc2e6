//! Summaries of weight values: per tensor, and merged per group (layer, role).

use std::collections::BTreeMap;

use crate::{NamedTensor, Role};

/// The |w| thresholds whose exceedance fractions are reported.
pub const THRESHOLDS: [f32; 4] = [1e-3, 1e-2, 1e-1, 1.0];

/// Edges of the log-scale |w| histogram: bin 0 holds exact zeros, bin `i` (1..) holds
/// `HISTOGRAM_EDGES[i-1] <= |w| < HISTOGRAM_EDGES[i]`, the last bin everything above.
pub const HISTOGRAM_EDGES: [f32; 10] = [0.0, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0];

/// Statistics of one tensor.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TensorStats {
    /// Hugging Face key.
    pub key: String,
    /// Layer index.
    pub layer: Option<usize>,
    /// Role.
    pub role: Role,
    /// Shape (Burn layout).
    pub shape: Vec<usize>,
    /// Number of values.
    pub count: usize,
    /// Exact zeros.
    pub zeros: usize,
    /// Values with |w| > each of [`THRESHOLDS`].
    pub above: [usize; 4],
    /// Sum of |w|.
    pub l1: f64,
    /// Square root of the sum of w².
    pub l2: f64,
    /// Mean of w.
    pub mean: f64,
    /// Population standard deviation of w.
    pub std: f64,
    /// Smallest w.
    pub min: f32,
    /// Largest w.
    pub max: f32,
    /// The largest |w|, descending.
    pub top_abs: Vec<f32>,
    /// Counts per log-scale |w| bin (see [`HISTOGRAM_EDGES`]); `len = HISTOGRAM_EDGES.len() + 1`.
    pub histogram: Vec<usize>,
}

impl TensorStats {
    /// Summarise a tensor, keeping the `top_k` largest |w|.
    pub fn of(t: &NamedTensor, top_k: usize) -> Self {
        let (mut zeros, mut above, mut l1, mut sum, mut sq) = (0usize, [0usize; 4], 0f64, 0f64, 0f64);
        let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
        let mut histogram = vec![0usize; HISTOGRAM_EDGES.len() + 1];
        for &w in &t.values {
            let a = w.abs();
            zeros += usize::from(w == 0.0);
            for (n, th) in above.iter_mut().zip(THRESHOLDS) {
                *n += usize::from(a > th);
            }
            l1 += f64::from(a);
            sum += f64::from(w);
            sq += f64::from(w) * f64::from(w);
            min = min.min(w);
            max = max.max(w);
            histogram[bin(a)] += 1;
        }
        let count = t.values.len();
        let mean = sum / count.max(1) as f64;
        let var = (sq / count.max(1) as f64 - mean * mean).max(0.0);
        let mut top_abs: Vec<f32> = t.values.iter().map(|w| w.abs()).collect();
        let k = top_k.min(top_abs.len());
        if k > 0 {
            top_abs.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
        }
        top_abs.truncate(k);
        top_abs.sort_by(|a, b| b.total_cmp(a));
        Self {
            key: t.key.clone(),
            layer: t.layer,
            role: t.role,
            shape: t.shape.clone(),
            count,
            zeros,
            above,
            l1,
            l2: sq.sqrt(),
            mean,
            std: var.sqrt(),
            min: if count == 0 { 0.0 } else { min },
            max: if count == 0 { 0.0 } else { max },
            top_abs,
            histogram,
        }
    }

    /// Fraction of exact zeros.
    pub fn zero_fraction(&self) -> f64 {
        self.zeros as f64 / self.count.max(1) as f64
    }

    /// Fraction of |w| above each of [`THRESHOLDS`].
    pub fn above_fractions(&self) -> [f64; 4] {
        self.above.map(|n| n as f64 / self.count.max(1) as f64)
    }
}

fn bin(a: f32) -> usize {
    if a == 0.0 {
        return 0;
    }
    HISTOGRAM_EDGES.iter().skip(1).position(|edge| a < *edge).map_or(HISTOGRAM_EDGES.len(), |i| i + 1)
}

/// Statistics merged over several tensors (a layer, or a role within a layer).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GroupStats {
    /// Layer index (`None` for parameters outside layers).
    pub layer: Option<usize>,
    /// Role, when grouped by role too.
    pub role: Option<Role>,
    /// Tensors merged.
    pub tensors: usize,
    /// Values.
    pub count: usize,
    /// Exact zeros.
    pub zeros: usize,
    /// Values with |w| above each of [`THRESHOLDS`].
    pub above: [usize; 4],
    /// Sum of |w|.
    pub l1: f64,
    /// Square root of the sum of w².
    pub l2: f64,
    /// Largest |w|.
    pub max_abs: f32,
    /// Histogram counts, as [`TensorStats::histogram`].
    pub histogram: Vec<usize>,
}

impl GroupStats {
    fn new(layer: Option<usize>, role: Option<Role>) -> Self {
        Self {
            layer,
            role,
            tensors: 0,
            count: 0,
            zeros: 0,
            above: [0; 4],
            l1: 0.0,
            l2: 0.0,
            max_abs: 0.0,
            histogram: vec![0; HISTOGRAM_EDGES.len() + 1],
        }
    }

    fn add(&mut self, t: &TensorStats) {
        self.tensors += 1;
        self.count += t.count;
        self.zeros += t.zeros;
        for (a, b) in self.above.iter_mut().zip(t.above) {
            *a += b;
        }
        self.l1 += t.l1;
        self.l2 = (self.l2 * self.l2 + t.l2 * t.l2).sqrt();
        self.max_abs = self.max_abs.max(t.top_abs.first().copied().unwrap_or(t.max.abs().max(t.min.abs())));
        for (a, b) in self.histogram.iter_mut().zip(&t.histogram) {
            *a += b;
        }
    }

    /// Fraction of exact zeros.
    pub fn zero_fraction(&self) -> f64 {
        self.zeros as f64 / self.count.max(1) as f64
    }

    /// Fraction of |w| above each of [`THRESHOLDS`].
    pub fn above_fractions(&self) -> [f64; 4] {
        self.above.map(|n| n as f64 / self.count.max(1) as f64)
    }
}

/// Merge per layer (parameters outside layers form the `None` group, listed first).
pub fn group_by_layer(stats: &[TensorStats]) -> Vec<GroupStats> {
    let mut groups: BTreeMap<Option<usize>, GroupStats> = BTreeMap::new();
    for t in stats {
        groups.entry(t.layer).or_insert_with(|| GroupStats::new(t.layer, None)).add(t);
    }
    groups.into_values().collect()
}

/// Merge per layer and role.
pub fn group_by_layer_and_role(stats: &[TensorStats]) -> Vec<GroupStats> {
    let mut groups: BTreeMap<(Option<usize>, Role), GroupStats> = BTreeMap::new();
    for t in stats {
        groups.entry((t.layer, t.role)).or_insert_with(|| GroupStats::new(t.layer, Some(t.role))).add(t);
    }
    groups.into_values().collect()
}

#[cfg(test)]
mod tests {
    use prunelab_models::HfModule;

    use super::*;

    fn tensor(values: Vec<f32>) -> NamedTensor {
        NamedTensor {
            path: "p".into(),
            key: "transformer.h.0.mlp.c_fc.weight".into(),
            module: HfModule::Conv1D,
            layer: Some(0),
            role: Role::MlpIn,
            shape: vec![values.len()],
            values,
        }
    }

    #[test]
    fn hand_computed_tensor_stats() {
        let s = TensorStats::of(&tensor(vec![0.0, -2.0, 0.5, 0.005, 0.0005, 0.0]), 3);
        assert_eq!((s.count, s.zeros), (6, 2));
        assert_eq!(s.above, [3, 2, 2, 1], "> 1e-3: 2, .5, .005; > 1e-2: 2, .5; > 1e-1: 2, .5; > 1: 2");
        assert!((s.l1 - 2.5055).abs() < 1e-6);
        assert!((s.l2 - (4.0f64 + 0.25 + 0.000025 + 0.00000025).sqrt()).abs() < 1e-6);
        assert!((s.mean - (-1.4945 / 6.0)).abs() < 1e-6);
        assert_eq!((s.min, s.max), (-2.0, 0.5));
        assert_eq!(s.top_abs, [2.0, 0.5, 0.005]);
        // zeros | [1e-4, 1e-3) | [1e-3, 1e-2) | [1e-1, 1) | >= 1
        assert_eq!(s.histogram, [2, 0, 0, 0, 0, 0, 1, 1, 0, 1, 1]);
        assert_eq!(s.histogram.iter().sum::<usize>(), 6);
    }

    #[test]
    fn std_is_the_population_std() {
        let s = TensorStats::of(&tensor(vec![1.0, 3.0]), 1);
        assert!((s.std - 1.0).abs() < 1e-12);
        assert!((s.mean - 2.0).abs() < 1e-12);
    }

    #[test]
    fn groups_add_up() {
        let a = TensorStats::of(&tensor(vec![0.0, 3.0]), 1);
        let mut t = tensor(vec![4.0]);
        t.role = Role::MlpOut;
        let b = TensorStats::of(&t, 1);
        let layers = group_by_layer(&[a.clone(), b.clone()]);
        assert_eq!(layers.len(), 1);
        assert_eq!((layers[0].count, layers[0].zeros, layers[0].tensors), (3, 1, 2));
        assert!((layers[0].l2 - 5.0).abs() < 1e-9);
        assert_eq!(layers[0].max_abs, 4.0);
        assert_eq!(group_by_layer_and_role(&[a, b]).len(), 2);
    }
}
