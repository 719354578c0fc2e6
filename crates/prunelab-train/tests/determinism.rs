//! Determinism of fine-tuning on the CPU backend. In its own test binary on purpose:
//! burn-ndarray's random generator is process-wide, so dropout in tests running in parallel
//! threads would interleave with this test's draws.

mod common;

use common::{batcher, data, pretrained, quick};
use prunelab_glue::GlueTask;
use prunelab_train::{Silent, TrainData, TrainOptions, fine_tune};

#[test]
fn the_cpu_backend_is_deterministic_for_a_seed() {
    let (train, dev) = (data(64, 7), data(16, 8));
    let run = || {
        let o = fine_tune(
            pretrained("bert-tiny"),
            &TrainData { train: &train, dev: &dev, task: GlueTask::Sst2, batcher: &batcher() },
            &TrainOptions { config: quick(1e-3, 2), masks: None, ..Default::default() },
            &Default::default(),
            &mut Silent,
        )
        .unwrap();
        o.epochs.iter().map(|e| (e.train_loss, e.eval.accuracy)).collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}
