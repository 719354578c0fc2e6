//! A model's weight statistics, from the `stats.json` of `prunelab inspect --out`: what the
//! study asked "by layer" (what fraction of |w| is above each threshold).

use crate::error::Result;
use crate::json::Node;

/// One layer's (or the non-layer parameters') statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerWeights {
    /// Layer index (`None`: embeddings, final norm, head).
    pub layer: Option<u64>,
    /// Parameters.
    pub count: u64,
    /// Exactly zero.
    pub zeros: u64,
    /// Parameters with |w| above each of [`WeightStats::thresholds`].
    pub above: Vec<u64>,
    /// Largest |w|.
    pub max_abs: Option<f64>,
}

impl LayerWeights {
    /// The fraction of the layer's parameters above threshold `i`.
    pub fn above_fraction(&self, i: usize) -> Option<f64> {
        let above = *self.above.get(i)?;
        (self.count > 0).then(|| above as f64 / self.count as f64)
    }
}

/// One `stats.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightStats {
    /// The file, relative to the report's input directory.
    pub path: String,
    /// The model as given to `prunelab inspect`.
    pub model: String,
    /// |w| thresholds.
    pub thresholds: Vec<f64>,
    /// Per layer, as in the file (non-layer parameters first).
    pub layers: Vec<LayerWeights>,
}

impl WeightStats {
    pub(crate) fn read(relative: String, root: Node<'_>) -> Result<WeightStats> {
        let model = root.required_str("model")?.to_owned();
        let thresholds = root.array("thresholds", |t| t.as_f64())?.unwrap_or_default();
        let layer = |n: Node<'_>| -> Result<LayerWeights> {
            let above = n.array("above", |a| a.as_u64())?.unwrap_or_default();
            if above.len() != thresholds.len() {
                let message = format!("{} counts for {} thresholds", above.len(), thresholds.len());
                return Err(n.error(Some("above"), message));
            }
            Ok(LayerWeights {
                layer: n.u64("layer")?,
                count: n.u64("count")?.unwrap_or(0),
                zeros: n.u64("zeros")?.unwrap_or(0),
                above,
                max_abs: n.f64("max_abs")?,
            })
        };
        let layers =
            root.array("layers", layer)?.ok_or_else(|| root.error(Some("layers"), "missing (an array is required)"))?;
        Ok(WeightStats { path: relative, model, thresholds, layers })
    }

    /// The model's short name (see [`crate::model_name`]).
    pub fn model_name(&self) -> String {
        crate::results::model_name(&self.model)
    }
}
