//! Inference timing of a fine-tuned model, as `result.json` reports it: latency of single
//! examples and throughput in batches of 64 (grouped by length, as [`predict`] runs them), on dev
//! examples.

use std::time::Instant;

use burn::prelude::*;
use prunelab_glue::{Encoded, GlueBatcher};
use prunelab_models::Classifier;
use prunelab_record::InferenceRecord;

use crate::error::{Error, Result};
use crate::evaluate::predict;

/// Examples timed one at a time.
const LATENCY_EXAMPLES: usize = 200;
/// The batch size of the throughput figure.
const THROUGHPUT_BATCH: usize = 64;

/// Latency at batch 1 (median and 95th percentile over the first 200 examples of `data`, after
/// 8 warm-up examples) and throughput at batch 64 over all of `data` (after one warm-up batch).
pub fn time_inference<B: Backend>(
    model: &Classifier<B>,
    data: &[Encoded],
    batcher: &GlueBatcher,
    device: &B::Device,
) -> Result<InferenceRecord> {
    if data.is_empty() {
        return Err(Error::Config { key: "dev", message: "inference timing needs at least one dev example".into() });
    }
    let sample = &data[..data.len().min(LATENCY_EXAMPLES)];
    let _ = predict(model, &sample[..sample.len().min(8)], batcher, 1, device);
    let mut latencies: Vec<f64> = sample
        .iter()
        .map(|e| {
            let t = Instant::now();
            let _ = predict(model, std::slice::from_ref(e), batcher, 1, device);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let percentile = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let _ = predict(model, &data[..data.len().min(THROUGHPUT_BATCH)], batcher, THROUGHPUT_BATCH, device);
    let t = Instant::now();
    let _ = predict(model, data, batcher, THROUGHPUT_BATCH, device);
    Ok(InferenceRecord {
        latency_ms_batch1_p50: percentile(0.5),
        latency_ms_batch1_p95: percentile(0.95),
        throughput_batch64_per_s: data.len() as f64 / t.elapsed().as_secs_f64(),
    })
}
