//! Helpers shared by the training tests: tiny models and a separable task.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, NdArray};
use prunelab_glue::{Encoded, GlueBatcher, PaddingSide};
use prunelab_hub::Hub;
use prunelab_models::{Classifier, ModelConfig, ModelSource, load_classifier};
use prunelab_train::TrainConfig;

pub type B = Autodiff<NdArray>;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../prunelab-models/tests/fixtures")
}

/// A separable task: the token after [CLS] is 7 (label 1) or 8 (label 0); the rest is noise.
pub fn data(n: usize, seed: u64) -> Vec<Encoded> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    (0..n)
        .map(|i| {
            let label = next() % 2;
            let len = 4 + (next() % 6) as usize;
            let mut ids = vec![2, if label == 1 { 7 } else { 8 }];
            ids.extend((0..len).map(|_| 10 + next() % 80));
            ids.push(3);
            Encoded { idx: i as u32, token_type_ids: vec![0; ids.len()], input_ids: ids, label: Some(label) }
        })
        .collect()
}

/// [`data`] in RoBERTa's framing, `<s>` (0) ... `</s>` (2), as Longformer and LED read it (LED
/// classifies the decoder state at the last `</s>`).
pub fn roberta_data(n: usize, seed: u64) -> Vec<Encoded> {
    let mut rows = data(n, seed);
    for row in &mut rows {
        let last = row.input_ids.len() - 1;
        row.input_ids[0] = 0;
        row.input_ids[last] = 2;
    }
    rows
}

pub fn batcher() -> GlueBatcher {
    GlueBatcher { pad_id: 0, padding_side: PaddingSide::Right, token_types: true }
}

pub fn fresh_bert() -> Classifier<B> {
    let ModelConfig::Bert(config) = ModelConfig::from_file(&fixtures().join("bert-tiny/config.json")).unwrap() else {
        panic!("bert config")
    };
    Classifier::Bert(config.init_classifier::<B>(2, &Default::default()))
}

pub fn pretrained(name: &str) -> Classifier<B> {
    let files = ModelSource::Dir(fixtures().join(name)).resolve(&Hub::new("/nonexistent", true)).unwrap();
    load_classifier::<B>(&files, 2, &Default::default()).unwrap().model
}

pub fn quick(lr: f64, epochs: usize) -> TrainConfig {
    TrainConfig {
        learning_rate: lr,
        num_train_epochs: epochs,
        per_device_train_batch_size: 16,
        warmup_ratio: 0.1,
        ..TrainConfig::default()
    }
}
