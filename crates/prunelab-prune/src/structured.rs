//! Structured pruning with physical compaction: whole attention heads and whole MLP neurons are
//! removed, so the pruned model has smaller matrices and really computes less.
//!
//! In every layer the same fraction is removed (`round(amount × count)` heads and neurons, at
//! least one of each kept), ranked by L2 norm: a head's norm covers its query, key and value
//! columns and its rows of the attention output projection; a neuron's covers its column of
//! the first MLP projection and its row of the second. Works on role-tagged tensors, for fused
//! (GPT-2 `c_attn`) and separate q/k/v alike; every query, key and value projection of a layer
//! loses the same head columns (Longformer's local and global projections together). A layer
//! must have one attention block and one MLP: a decoder layer with self- and cross-attention is
//! refused with an error naming its tensors.
//!
//! Head pruning compacts exactly the q/k/v and output projections (and their `.bias`es); a layer
//! with other attention tensors that depend on the heads (DeBERTa's `q_bias`/`v_bias` and
//! relative-position projections) is refused with the tensors named, as compacting only some of
//! them would change what the model computes. Neuron pruning works on every architecture.
//!
//! Uniform per-layer counts keep the feed-forward size one number (`intermediate_size`,
//! `n_inner`), so MLP compaction exports as a standard Hugging Face config. Fewer heads cannot
//! be expressed in transformers 5 (it removed `prune_heads`); the export then records the kept
//! heads per layer as `prunelab_heads`, which prunelab loads.

use prunelab_stats::{NamedTensor, Role};

use crate::error::{Error, Result};
use crate::masks::nparams_to_prune;

/// What structured pruning removes.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StructuredSpec {
    /// Fraction of attention heads removed in each layer, in `[0, 1)`.
    pub heads: f64,
    /// Fraction of MLP neurons removed in each layer, in `[0, 1)`.
    pub neurons: f64,
}

/// What one layer keeps.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LayerPlan {
    /// Layer index.
    pub layer: usize,
    /// Heads before pruning.
    pub heads_before: usize,
    /// Indices of the kept heads, ascending.
    pub kept_heads: Vec<usize>,
    /// Neurons before pruning.
    pub neurons_before: usize,
    /// Indices of the kept neurons, ascending.
    pub kept_neurons: Vec<usize>,
}

/// The plan for every layer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StructuredPlan {
    /// Head dimension.
    pub head_dim: usize,
    /// Per layer, in order.
    pub layers: Vec<LayerPlan>,
}

impl StructuredPlan {
    /// Kept heads per layer.
    pub fn heads(&self) -> Vec<usize> {
        self.layers.iter().map(|l| l.kept_heads.len()).collect()
    }

    /// Kept neurons per layer (uniform by construction).
    pub fn neurons(&self) -> usize {
        self.layers.first().map_or(0, |l| l.kept_neurons.len())
    }
}

/// The role-tagged weight matrices of one layer.
struct LayerTensors<'a> {
    qkv: Vec<&'a NamedTensor>,
    fused: bool,
    out: &'a NamedTensor,
    mlp_in: &'a NamedTensor,
    mlp_out: &'a NamedTensor,
}

fn layer_tensors(tensors: &[NamedTensor], layer: usize) -> Result<LayerTensors<'_>> {
    let all = |role: Role| -> Vec<&NamedTensor> {
        tensors.iter().filter(|t| t.layer == Some(layer) && t.role == role && t.shape.len() == 2).collect()
    };
    let missing = |what: &str| Error::Structured { message: format!("layer {layer} has no {what} weight") };
    let one = |role: Role, what: &str| -> Result<&NamedTensor> {
        match all(role)[..] {
            [t] => Ok(t),
            [] => Err(missing(what)),
            ref several => Err(Error::Structured {
                message: format!(
                    "layer {layer} has {} {what} weights ({}): structured pruning handles layers with one attention block and one MLP",
                    several.len(),
                    several.iter().map(|t| t.key.as_str()).collect::<Vec<_>>().join(", ")
                ),
            }),
        }
    };
    let fused = all(Role::AttnQkv);
    let qkv = if fused.is_empty() {
        for role in [Role::AttnQuery, Role::AttnKey, Role::AttnValue] {
            if all(role).is_empty() {
                return Err(missing(role.name()));
            }
        }
        [Role::AttnQuery, Role::AttnKey, Role::AttnValue].into_iter().flat_map(all).collect()
    } else {
        one(Role::AttnQkv, "fused query/key/value")?;
        fused
    };
    Ok(LayerTensors {
        fused: all(Role::AttnQkv).len() == 1,
        out: one(Role::AttnOut, "attention output")?,
        mlp_in: one(Role::MlpIn, "MLP input")?,
        mlp_out: one(Role::MlpOut, "MLP output")?,
        qkv,
    })
}

/// Why whole heads of `layer` cannot be removed, if they cannot: attention tensors (or biases)
/// besides the q/k/v and output projections and their `.bias`es.
fn head_pruning_problem(tensors: &[NamedTensor], layer: usize, t: &LayerTensors<'_>) -> Option<String> {
    let known: Vec<&str> = t.qkv.iter().chain([&t.out, &t.mlp_in, &t.mlp_out]).map(|x| x.key.as_str()).collect();
    let is_known = |key: &str| {
        known.contains(&key)
            || key
                .strip_suffix(".bias")
                .is_some_and(|stem| known.iter().any(|k| k.strip_suffix(".weight") == Some(stem)))
    };
    let others: Vec<&str> = tensors
        .iter()
        .filter(|x| x.layer == Some(layer))
        .filter(|x| {
            matches!(
                x.role,
                Role::AttnQuery | Role::AttnKey | Role::AttnValue | Role::AttnQkv | Role::AttnOut | Role::Bias
            )
        })
        .map(|x| x.key.as_str())
        .filter(|key| !is_known(key))
        .collect();
    (!others.is_empty()).then(|| {
        format!(
            "layer {layer}: removing heads would also have to compact {}, which structured pruning does not do (prune neurons only: --targets neurons)",
            others.join(", ")
        )
    })
}

/// `(rows, cols)`; a vector (bias) is one row.
fn dims(t: &NamedTensor) -> (usize, usize) {
    match t.shape[..] {
        [rows, cols] => (rows, cols),
        _ => (1, t.values.len()),
    }
}

fn column_sq(t: &NamedTensor, col: usize) -> f64 {
    let (rows, cols) = dims(t);
    (0..rows).map(|r| f64::from(t.values[r * cols + col]).powi(2)).sum()
}

fn row_sq(t: &NamedTensor, row: usize) -> f64 {
    let (_, cols) = dims(t);
    t.values[row * cols..(row + 1) * cols].iter().map(|v| f64::from(*v).powi(2)).sum()
}

/// The columns of the q/k/v matrices that belong to `head` (`width` = heads × head_dim).
fn head_columns(head: usize, head_dim: usize, width: usize, fused: bool) -> Vec<usize> {
    let parts = if fused { 3 } else { 1 };
    (0..parts).flat_map(|p| (0..head_dim).map(move |d| p * width + head * head_dim + d)).collect()
}

/// Indices of the `count - round(amount × count)` largest scores (at least one), ascending.
fn keep_largest(scores: &[f64], amount: f64) -> Vec<usize> {
    let drop = nparams_to_prune(amount, scores.len()).min(scores.len().saturating_sub(1));
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b)));
    let mut kept = order[..scores.len() - drop].to_vec();
    kept.sort_unstable();
    kept
}

/// Rank heads and neurons of every layer and decide what to keep.
pub fn plan(
    tensors: &[NamedTensor],
    heads_per_layer: &[usize],
    head_dim: usize,
    spec: &StructuredSpec,
) -> Result<StructuredPlan> {
    for amount in [spec.heads, spec.neurons] {
        if !(0.0..1.0).contains(&amount) {
            return Err(Error::Amount(amount));
        }
    }
    let mut layers = Vec::new();
    for (layer, &heads) in heads_per_layer.iter().enumerate() {
        let t = layer_tensors(tensors, layer)?;
        if spec.heads > 0.0
            && let Some(message) = head_pruning_problem(tensors, layer, &t)
        {
            return Err(Error::Structured { message });
        }
        let width = heads * head_dim;
        let head_scores: Vec<f64> = (0..heads)
            .map(|h| {
                let cols = head_columns(h, head_dim, width, t.fused);
                let qkv: f64 = t.qkv.iter().map(|m| cols.iter().map(|&c| column_sq(m, c)).sum::<f64>()).sum();
                let out: f64 = (h * head_dim..(h + 1) * head_dim).map(|r| row_sq(t.out, r)).sum();
                (qkv + out).sqrt()
            })
            .collect();
        let neurons = dims(t.mlp_in).1;
        let neuron_scores: Vec<f64> =
            (0..neurons).map(|j| (column_sq(t.mlp_in, j) + row_sq(t.mlp_out, j)).sqrt()).collect();
        layers.push(LayerPlan {
            layer,
            heads_before: heads,
            kept_heads: keep_largest(&head_scores, spec.heads),
            neurons_before: neurons,
            kept_neurons: keep_largest(&neuron_scores, spec.neurons),
        });
    }
    Ok(StructuredPlan { head_dim, layers })
}

fn select_columns(t: &NamedTensor, cols: &[usize]) -> NamedTensor {
    let (rows, n) = dims(t);
    let mut values = Vec::with_capacity(rows * cols.len());
    for r in 0..rows {
        values.extend(cols.iter().map(|&c| t.values[r * n + c]));
    }
    let shape = if t.shape.len() == 1 { vec![cols.len()] } else { vec![rows, cols.len()] };
    NamedTensor { shape, values, ..t.clone() }
}

fn select_rows(t: &NamedTensor, rows: &[usize]) -> NamedTensor {
    let (_, cols) = dims(t);
    let values = rows.iter().flat_map(|&r| t.values[r * cols..(r + 1) * cols].iter().copied()).collect();
    NamedTensor { shape: vec![rows.len(), cols], values, ..t.clone() }
}

/// Which slices of a tensor survive compaction.
enum Select {
    Columns(Vec<usize>),
    Rows(Vec<usize>),
}

/// Apply `plan`: the tensors of the compacted model (others unchanged), in the same order.
pub fn compact(tensors: &[NamedTensor], plan: &StructuredPlan) -> Result<Vec<NamedTensor>> {
    let mut out: Vec<NamedTensor> = tensors.to_vec();
    for lp in &plan.layers {
        let t = layer_tensors(tensors, lp.layer)?;
        let width = lp.heads_before * plan.head_dim;
        let head_cols: Vec<usize> = if t.fused {
            (0..3)
                .flat_map(|p| {
                    lp.kept_heads
                        .iter()
                        .flat_map(move |&h| (0..plan.head_dim).map(move |d| p * width + h * plan.head_dim + d))
                })
                .collect()
        } else {
            lp.kept_heads.iter().flat_map(|&h| (0..plan.head_dim).map(move |d| h * plan.head_dim + d)).collect()
        };
        let head_rows: Vec<usize> =
            lp.kept_heads.iter().flat_map(|&h| (0..plan.head_dim).map(move |d| h * plan.head_dim + d)).collect();
        let bias_of = |w: &NamedTensor| w.key.strip_suffix(".weight").map(|stem| format!("{stem}.bias"));
        let mut edits: Vec<(String, Select)> = Vec::new();
        for m in &t.qkv {
            edits.push((m.key.clone(), Select::Columns(head_cols.clone())));
            edits.extend(bias_of(m).map(|b| (b, Select::Columns(head_cols.clone()))));
        }
        edits.push((t.out.key.clone(), Select::Rows(head_rows)));
        edits.push((t.mlp_in.key.clone(), Select::Columns(lp.kept_neurons.clone())));
        edits.extend(bias_of(t.mlp_in).map(|b| (b, Select::Columns(lp.kept_neurons.clone()))));
        edits.push((t.mlp_out.key.clone(), Select::Rows(lp.kept_neurons.clone())));
        for (key, select) in edits {
            if let Some(slot) = out.iter_mut().find(|x| x.key == key) {
                *slot = match &select {
                    Select::Columns(cols) => select_columns(slot, cols),
                    Select::Rows(rows) => select_rows(slot, rows),
                };
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_largest_and_at_least_one() {
        assert_eq!(keep_largest(&[0.1, 3.0, 2.0, 0.5], 0.5), [1, 2]);
        assert_eq!(keep_largest(&[0.1, 3.0], 0.9), [1], "round(1.8) = 2, but one is kept");
        assert_eq!(keep_largest(&[1.0, 1.0, 1.0], 0.0), [0, 1, 2]);
    }

    #[test]
    fn fused_head_columns_cover_q_k_and_v() {
        assert_eq!(head_columns(1, 2, 4, true), [2, 3, 6, 7, 10, 11]);
        assert_eq!(head_columns(0, 2, 4, false), [0, 1]);
    }
}
