//! Predictions and scores on a split.

use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;
use prunelab_glue::{Confusion, Encoded, GlueBatch, GlueBatcher, GlueTask, Scores};
use prunelab_models::{Classifier, ModelInput};

use crate::error::{Error, Result};

/// The outcome of one evaluation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Evaluation {
    /// Metrics.
    pub scores: Scores,
    /// Wall time of the evaluation, in seconds.
    pub seconds: f64,
}

/// Batches whose predicted classes stay on the device before one read brings them back.
///
/// Reading after every batch leaves a GPU idle while the host reads and builds the next batch
/// (the read waits for everything queued before it); with several batches queued between reads,
/// the host builds the next batches while the GPU computes. transformers' `Trainer` likewise keeps
/// predictions on the device (until `eval_accumulation_steps`). The predictions are the same.
const BATCHES_PER_READ: usize = 8;

/// `(example idx, predicted class)` for every example, in order.
pub fn predict<B: Backend>(
    model: &Classifier<B>,
    data: &[Encoded],
    batcher: &GlueBatcher,
    batch_size: usize,
    device: &B::Device,
) -> Vec<(u32, u32)> {
    let mut out = Vec::with_capacity(data.len());
    let mut pending = Vec::with_capacity(BATCHES_PER_READ);
    for chunk in data.chunks(batch_size.max(1)) {
        let batch: GlueBatch<B> = batcher.batch(chunk.to_vec(), device);
        let logits = model.forward(ModelInput {
            input_ids: batch.input_ids,
            attention_mask: batch.attention_mask,
            token_type_ids: batch.token_type_ids,
        });
        let [rows, _] = logits.dims();
        pending.push((batch.idx, logits.argmax(1).reshape([rows])));
        if pending.len() == BATCHES_PER_READ {
            read(&mut pending, &mut out);
        }
    }
    read(&mut pending, &mut out);
    out
}

/// Append the pending batches' `(example idx, class)` pairs to `out`, in order, with one read.
fn read<B: Backend>(pending: &mut Vec<(Vec<u32>, Tensor<B, 1, Int>)>, out: &mut Vec<(u32, u32)>) {
    if pending.is_empty() {
        return;
    }
    let (idx, classes): (Vec<_>, Vec<_>) = pending.drain(..).unzip();
    let classes = Tensor::cat(classes, 0).into_data().convert::<i64>().into_vec::<i64>().unwrap_or_default();
    out.extend(idx.into_iter().flatten().zip(classes).map(|(i, c)| (i, c as u32)));
}

/// Scores of `model` on labelled `data`.
pub fn evaluate<B: Backend>(
    model: &Classifier<B>,
    data: &[Encoded],
    task: GlueTask,
    batcher: &GlueBatcher,
    batch_size: usize,
    device: &B::Device,
) -> Result<Evaluation> {
    let truth: Vec<u32> = data.iter().map(|e| e.label.ok_or(Error::Unlabelled("evaluation"))).collect::<Result<_>>()?;
    let started = std::time::Instant::now();
    let predictions = predict(model, data, batcher, batch_size, device);
    let seconds = started.elapsed().as_secs_f64();
    let confusion =
        Confusion::from_pairs(task.spec().num_labels(), truth.into_iter().zip(predictions.iter().map(|(_, p)| *p)));
    Ok(Evaluation { scores: confusion.scores(task.spec().main_metric), seconds })
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::module::AutodiffModule;
    use prunelab_glue::PaddingSide;

    use super::*;
    use crate::optim::testing::tiny_model;

    /// Across several reads (more batches than [`BATCHES_PER_READ`], the last one short), every
    /// example's class is the one its own batch predicts when read at once, in order.
    #[test]
    fn predictions_read_in_groups_match_each_batch_read_alone() {
        let model = tiny_model().valid();
        let batcher = GlueBatcher { pad_id: 0, padding_side: PaddingSide::Right, token_types: true };
        let data: Vec<Encoded> = (0..41u32)
            .map(|i| {
                let ids: Vec<u32> =
                    [2].into_iter().chain((0..1 + i % 5).map(|t| 5 + (i * 7 + t * 3) % 20)).chain([3]).collect();
                Encoded { idx: 100 + i, token_type_ids: vec![0; ids.len()], input_ids: ids, label: Some(i % 2) }
            })
            .collect();
        let device = Default::default();
        let grouped = predict::<NdArray>(&model, &data, &batcher, 2, &device);
        let alone: Vec<(u32, u32)> = data
            .chunks(2)
            .flat_map(|chunk| {
                let batch: GlueBatch<NdArray> = batcher.batch(chunk.to_vec(), &device);
                let logits = model.forward(ModelInput {
                    input_ids: batch.input_ids,
                    attention_mask: batch.attention_mask,
                    token_type_ids: batch.token_type_ids,
                });
                let classes = logits.argmax(1).into_data().convert::<i64>().into_vec::<i64>().unwrap();
                batch.idx.into_iter().zip(classes.into_iter().map(|c| c as u32)).collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(grouped.len(), 41);
        assert_eq!(grouped, alone);
        assert_eq!(grouped.iter().map(|(i, _)| *i).collect::<Vec<_>>(), (100..141).collect::<Vec<_>>());
    }
}
