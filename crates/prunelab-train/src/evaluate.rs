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

/// `(example idx, predicted class)` for every example, in `data`'s order.
///
/// The examples run longest first, in batches of `batch_size` (see [`by_length`]), and their
/// classes come back in `data`'s order: a batch pads to its longest example, so batches of
/// similar lengths pad far less than batches in the split's order (SST-2's dev set at batch 64:
/// 23,512 padded tokens instead of 44,448; its attention scores a third). With right padding
/// (every prunelab command's) an example's logits do not depend on its batch beyond the last bits
/// (padding is masked out and positions start at 0), so the predictions are those of the split's
/// order; with left padding, GPT-2's positions would shift with the batch's longest example, as
/// in transformers.
pub fn predict<B: Backend>(
    model: &Classifier<B>,
    data: &[Encoded],
    batcher: &GlueBatcher,
    batch_size: usize,
    device: &B::Device,
) -> Vec<(u32, u32)> {
    let order = by_length(data);
    let mut classes = vec![0; data.len()];
    let mut pending = Vec::with_capacity(BATCHES_PER_READ);
    for positions in order.chunks(batch_size.max(1)) {
        let batch: GlueBatch<B> = batcher.batch(positions.iter().map(|&i| data[i].clone()).collect(), device);
        let logits = model.forward(ModelInput {
            input_ids: batch.input_ids,
            attention_mask: batch.attention_mask,
            token_type_ids: batch.token_type_ids,
        });
        let [rows, _] = logits.dims();
        pending.push((positions, logits.argmax(1).reshape([rows])));
        if pending.len() == BATCHES_PER_READ {
            read(&mut pending, &mut classes);
        }
    }
    read(&mut pending, &mut classes);
    data.iter().zip(classes).map(|(example, class)| (example.idx, class)).collect()
}

/// Positions in `data`, longest example first (ties in `data`'s order), so that the first batch
/// is the largest and a device too small for the split fails at once, as transformers'
/// length-grouped sampler orders its first batch.
fn by_length(data: &[Encoded]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..data.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(data[i].input_ids.len()));
    order
}

/// Store the pending batches' classes at their examples' positions in `classes`, with one read.
fn read<B: Backend>(pending: &mut Vec<(&[usize], Tensor<B, 1, Int>)>, classes: &mut [u32]) {
    if pending.is_empty() {
        return;
    }
    let (positions, predicted): (Vec<_>, Vec<_>) = pending.drain(..).unzip();
    let predicted = Tensor::cat(predicted, 0).into_data().convert::<i64>().into_vec::<i64>().unwrap_or_default();
    for (&position, class) in positions.into_iter().flatten().zip(predicted) {
        classes[position] = class as u32;
    }
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

    /// Across several reads (more batches than [`BATCHES_PER_READ`], the last one short) of
    /// batches grouped by length, every example's class is the one it gets alone (a batch of one,
    /// no padding), in `data`'s order.
    #[test]
    fn predictions_grouped_by_length_match_each_example_alone_in_order() {
        let model = tiny_model().valid();
        let batcher = GlueBatcher { pad_id: 0, padding_side: PaddingSide::Right, token_types: true };
        let data: Vec<Encoded> = (0..41u32)
            .map(|i| {
                let ids: Vec<u32> =
                    [2].into_iter().chain((0..1 + i % 9).map(|t| 5 + (i * 37 + t * 11) % 94)).chain([3]).collect();
                Encoded { idx: 100 + i, token_type_ids: vec![0; ids.len()], input_ids: ids, label: Some(i % 2) }
            })
            .collect();
        let device = Default::default();
        let grouped = predict::<NdArray>(&model, &data, &batcher, 2, &device);
        let alone: Vec<(u32, u32)> = data
            .iter()
            .map(|example| {
                let batch: GlueBatch<NdArray> = batcher.batch(vec![example.clone()], &device);
                let logits = model.forward(ModelInput {
                    input_ids: batch.input_ids,
                    attention_mask: batch.attention_mask,
                    token_type_ids: batch.token_type_ids,
                });
                (example.idx, logits.argmax(1).into_data().convert::<i64>().into_vec::<i64>().unwrap()[0] as u32)
            })
            .collect();
        assert_eq!(grouped.len(), 41);
        assert_eq!(grouped, alone);
        assert_eq!(grouped.iter().map(|(i, _)| *i).collect::<Vec<_>>(), (100..141).collect::<Vec<_>>());
    }

    /// Classes read back in one go land at their examples' positions (the tiny model predicts one
    /// class for every example, so the test above cannot see a misplaced class: this one can).
    #[test]
    fn classes_read_at_once_land_at_their_positions() {
        let device = Default::default();
        let classes = |values: [i64; 2]| Tensor::<NdArray, 1, Int>::from_ints(values, &device);
        let (first, second) = ([3, 0], [2, 1]);
        let mut pending = vec![(&first[..], classes([7, 8])), (&second[..], classes([9, 4]))];
        let mut out = [0; 4];
        read(&mut pending, &mut out);
        assert_eq!(out, [8, 4, 9, 7]);
        assert!(pending.is_empty());
    }

    /// Longest first; equal lengths keep their order.
    #[test]
    fn examples_run_longest_first_ties_in_order() {
        let example =
            |idx: u32, len: usize| Encoded { idx, input_ids: vec![1; len], token_type_ids: vec![0; len], label: None };
        let data = [example(0, 3), example(1, 5), example(2, 3), example(3, 7), example(4, 5)];
        assert_eq!(by_length(&data), [3, 1, 4, 0, 2]);
    }
}
