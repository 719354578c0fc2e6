//! Sparsity accounting, measured on the weights themselves: per layer and overall, as a fraction
//! of the pruning scope and of all parameters (two numbers users routinely confuse).

use std::collections::BTreeMap;

use prunelab_stats::NamedTensor;

use crate::scope::Scope;

pub use prunelab_record::{Count, LayerSparsity, SparsityReport};

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
