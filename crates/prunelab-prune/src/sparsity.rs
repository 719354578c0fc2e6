//! Sparsity accounting, measured on the weights themselves: per layer and overall, as a fraction
//! of the pruning scope and of all parameters (two numbers users routinely confuse).

use std::collections::BTreeMap;

use prunelab_stats::NamedTensor;

use crate::scope::Scope;

/// Zeros among some parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Count {
    /// Parameters.
    pub params: usize,
    /// Of which exactly zero.
    pub zeros: usize,
}

impl Count {
    /// `zeros / params` (0 when empty).
    pub fn fraction(&self) -> f64 {
        if self.params == 0 { 0.0 } else { self.zeros as f64 / self.params as f64 }
    }

    fn add(&mut self, params: usize, zeros: usize) {
        self.params += params;
        self.zeros += zeros;
    }
}

/// One row of the report: a layer, or the parameters outside layers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerSparsity {
    /// Layer index (`None`: embeddings, final norm, head).
    pub layer: Option<usize>,
    /// Zeros among the layer's parameters in the scope.
    pub scope: Count,
    /// Zeros among all the layer's parameters.
    pub all: Count,
}

/// Sparsity of a model relative to a scope.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SparsityReport {
    /// The scope, as text.
    pub scope: String,
    /// Per layer.
    pub layers: Vec<LayerSparsity>,
    /// Zeros in the scope.
    pub scope_total: Count,
    /// Zeros among all parameters.
    pub all_total: Count,
}

/// Count exact zeros of `tensors`, in and out of `scope`.
pub fn sparsity(tensors: &[NamedTensor], scope: &Scope) -> SparsityReport {
    let mut layers: BTreeMap<Option<usize>, LayerSparsity> = BTreeMap::new();
    let (mut scope_total, mut all_total) = (Count::default(), Count::default());
    for t in tensors {
        let zeros = t.values.iter().filter(|w| **w == 0.0).count();
        let row = layers.entry(t.layer).or_insert_with(|| LayerSparsity {
            layer: t.layer,
            scope: Count::default(),
            all: Count::default(),
        });
        row.all.add(t.values.len(), zeros);
        all_total.add(t.values.len(), zeros);
        if scope.contains(&t.key, t.module, t.role) {
            row.scope.add(t.values.len(), zeros);
            scope_total.add(t.values.len(), zeros);
        }
    }
    SparsityReport { scope: scope.to_string(), layers: layers.into_values().collect(), scope_total, all_total }
}
