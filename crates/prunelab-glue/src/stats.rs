//! Split statistics for `prunelab data stats`: rows, label balance, token lengths.

use crate::error::Result;
use crate::example::GlueSplit;
use crate::tokenize::TextEncoder;

/// Statistics of one split.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SplitStats {
    /// The split's name (`train`, `dev`, `test`).
    pub split: String,
    /// Where it was read from.
    pub source: String,
    /// Number of examples.
    pub rows: usize,
    /// `(class name, count)` per class; empty for unlabelled splits.
    pub labels: Vec<(String, usize)>,
    /// Token-length statistics, when a tokenizer was given.
    pub lengths: Option<LengthStats>,
}

/// Token lengths of a split (special tokens included, before truncation).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LengthStats {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Longest example.
    pub max: usize,
    /// Mean.
    pub mean: f64,
    /// The truncation length in force.
    pub max_length: usize,
    /// Examples longer than `max_length` (they will be truncated).
    pub truncated: usize,
}

/// Compute the statistics of `split`, with token lengths when `encoder` is given.
pub fn split_stats(split: &GlueSplit, encoder: Option<&TextEncoder>) -> Result<SplitStats> {
    let spec = split.task.spec();
    let counts = split.label_counts();
    let labelled = split.examples.iter().any(|e| e.label.is_some());
    let labels = if labelled {
        spec.class_names.iter().zip(counts).map(|(name, n)| (name.to_string(), n)).collect()
    } else {
        Vec::new()
    };
    let lengths = match encoder {
        Some(encoder) => {
            let lengths = encoder.untruncated_lengths(&split.examples)?;
            Some(length_stats(&lengths, encoder.max_length()))
        }
        None => None,
    };
    Ok(SplitStats {
        split: split.split.to_string(),
        source: split.source.display().to_string(),
        rows: split.len(),
        labels,
        lengths,
    })
}

/// Length statistics of `lengths` (must not be empty) against a truncation length.
pub fn length_stats(lengths: &[usize], max_length: usize) -> LengthStats {
    let mut sorted = lengths.to_vec();
    sorted.sort_unstable();
    LengthStats {
        p50: percentile(&sorted, 0.50),
        p95: percentile(&sorted, 0.95),
        max: sorted.last().copied().unwrap_or(0),
        mean: sorted.iter().sum::<usize>() as f64 / sorted.len().max(1) as f64,
        max_length,
        truncated: sorted.iter().filter(|&&l| l > max_length).count(),
    }
}

/// The `q` quantile of sorted values, interpolated linearly as numpy's default does.
fn percentile(sorted: &[usize], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => {
            let pos = q * (n - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            let frac = pos - lo as f64;
            sorted[lo] as f64 + (sorted[hi] as f64 - sorted[lo] as f64) * frac
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_numpy() {
        // numpy.percentile([1, 2, 3, 4], [50, 95]) = [2.5, 3.85]
        let s = length_stats(&[4, 1, 3, 2], 3);
        assert_eq!(s.p50, 2.5);
        assert!((s.p95 - 3.85).abs() < 1e-12);
        assert_eq!(s.max, 4);
        assert_eq!(s.mean, 2.5);
        assert_eq!(s.truncated, 1);
        assert_eq!(length_stats(&[7], 128).p95, 7.0);
    }
}
