//! Determinism of fine-tuning on the CPU backend. In its own test binary on purpose:
//! burn-ndarray's random generator is process-wide, so dropout in tests running in parallel
//! threads would interleave with this test's draws.

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, NdArray};
use prunelab_glue::{Encoded, GlueBatcher, GlueTask, PaddingSide};
use prunelab_hub::Hub;
use prunelab_models::{Classifier, ModelSource, load_classifier};
use prunelab_train::{Silent, TrainConfig, fine_tune};

type B = Autodiff<NdArray>;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../prunelab-models/tests/fixtures")
}

/// A separable task: the token after [CLS] is 7 (label 1) or 8 (label 0); the rest is noise.
fn data(n: usize, seed: u64) -> Vec<Encoded> {
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

fn batcher() -> GlueBatcher {
    GlueBatcher { pad_id: 0, padding_side: PaddingSide::Right, token_types: true }
}

fn pretrained(name: &str) -> Classifier<B> {
    let files = ModelSource::Dir(fixtures().join(name)).resolve(&Hub::new("/nonexistent", true)).unwrap();
    load_classifier::<B>(&files, 2, &Default::default()).unwrap().model
}

fn quick(lr: f64, epochs: usize) -> TrainConfig {
    TrainConfig {
        learning_rate: lr,
        num_train_epochs: epochs,
        per_device_train_batch_size: 16,
        warmup_ratio: 0.1,
        ..TrainConfig::default()
    }
}

#[test]
fn the_cpu_backend_is_deterministic_for_a_seed() {
    let (train, dev) = (data(64, 7), data(16, 8));
    let run = || {
        let o = fine_tune(
            pretrained("bert-tiny"),
            &train,
            &dev,
            GlueTask::Sst2,
            &batcher(),
            &quick(1e-3, 2),
            None,
            &Default::default(),
            &mut Silent,
        )
        .unwrap();
        o.epochs.iter().map(|e| (e.train_loss, e.eval.accuracy)).collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}
