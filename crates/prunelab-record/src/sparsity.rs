//! Sparsity measured on the weights (counted by `prunelab-prune`): per layer and overall, as a
//! fraction of the pruning scope and of all parameters.

/// Zeros among some parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
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

    /// Count `params` more parameters, `zeros` of them zero.
    pub fn add(&mut self, params: usize, zeros: usize) {
        self.params += params;
        self.zeros += zeros;
    }
}

/// One row of the report: a layer, or the parameters outside layers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerSparsity {
    /// Layer index (`None`: embeddings, final norm, head).
    #[serde(default)]
    pub layer: Option<usize>,
    /// Zeros among the layer's parameters in the scope.
    #[serde(default)]
    pub scope: Count,
    /// Zeros among all the layer's parameters.
    #[serde(default)]
    pub all: Count,
}

/// Sparsity of a model relative to a scope.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
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
