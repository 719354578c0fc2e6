//! Epoch checkpoints: a run interrupted in its second epoch and started again resumes after its
//! first and ends bit for bit as an uninterrupted run (epoch records, best epoch, best model).
//! One test in its own binary on purpose: burn-ndarray's random generator is process-wide, so
//! dropout in tests running in parallel threads would interleave with this test's draws.

mod common;

use common::{batcher, data, pretrained, quick};
use prunelab_glue::GlueTask;
use prunelab_prune::{MaskSet, PruneSpec, Scheme, Scope, ScopeKind, compute_masks};
use prunelab_stats::weights;
use prunelab_train::{
    Checkpointing, GradualPruning, MaskMode, Reporter, Silent, TrainData, TrainOptions, TrainOutcome, fine_tune,
};

type B = burn::backend::Autodiff<burn::backend::NdArray>;

/// Panics (as a killed or crashed run stops) when the run reaches optimizer step `at`.
struct StopAt {
    at: usize,
}

impl Reporter for StopAt {
    fn on_step(&mut self, step: usize, _loss: Option<f32>, _lr: f64) {
        if step == self.at {
            panic!("stopped at step {step}");
        }
    }
}

fn epochs_of(outcome: &TrainOutcome<B>) -> Vec<(usize, f64, usize, prunelab_glue::Scores)> {
    outcome.epochs.iter().map(|e| (e.epoch, e.train_loss, e.steps, e.eval)).collect()
}

fn values(outcome: &TrainOutcome<B>) -> Vec<Vec<f32>> {
    let model = &outcome.best_model;
    weights(model, model.naming().as_ref()).into_iter().map(|t| t.values).collect()
}

#[test]
fn an_interrupted_run_resumes_after_its_last_epoch_and_ends_as_an_uninterrupted_one() {
    let (train, dev) = (data(64, 7), data(16, 8));
    let model = pretrained("bert-tiny");
    let tensors = weights(&model, model.naming().as_ref());
    let spec = PruneSpec { scheme: Scheme::GlobalL1, amount: 0.5, seed: 0 };
    let masks: MaskSet = compute_masks(&tensors, &Scope::new(ScopeKind::Default), &spec).unwrap();
    let config = quick(1e-3, 3);
    let root = tempfile::tempdir().unwrap();
    let scope = Scope::new(ScopeKind::Default);
    // 12 steps; updates before steps 0, 2, 4 and 6: the checkpoint after epoch 1 (4 steps) holds
    // the masks of step 2 and no best model yet (not at the final sparsity), and the stop at
    // step 6 falls after the update at step 4.
    let gradual = GradualPruning {
        scope: &scope,
        scheme: Scheme::GlobalL1,
        seed: 0,
        amount: 0.8,
        initial_amount: 0.1,
        start: 0.0,
        end: 0.5,
        every: 2,
    };
    // Both mask modes: held masks are re-applied every step; released ones must not be applied
    // again on resume (their weights have regrown). And a gradual schedule, whose masks change
    // during the run.
    for (mode, gradual) in [(MaskMode::Release, None), (MaskMode::Hold, None), (MaskMode::Hold, Some(gradual))] {
        let name = if gradual.is_some() { "gradual" } else { mode.name() };
        let run = |dir: Option<&std::path::Path>, reporter: &mut dyn Reporter, fingerprint: &str| {
            let checkpoint = dir.map(|dir| Checkpointing { dir, fingerprint });
            let data = TrainData { train: &train, dev: &dev, task: GlueTask::Sst2, batcher: &batcher() };
            let options = TrainOptions {
                config: config.clone(),
                masks: gradual.is_none().then_some((&masks, mode)),
                gradual: gradual.clone(),
                checkpoint,
                ..Default::default()
            };
            fine_tune(pretrained("bert-tiny"), &data, &options, &Default::default(), reporter)
        };
        // Without a checkpoint directory: the loop of `fine_tune`.
        let plain = run(None, &mut Silent, "").unwrap();
        let reference_dir = root.path().join(format!("{name}-reference"));
        let reference = run(Some(&reference_dir), &mut Silent, "settings").unwrap();
        assert_eq!(epochs_of(&reference), epochs_of(&plain), "checkpointing changes nothing");
        assert_eq!(values(&reference), values(&plain));

        // 64 examples in batches of 16: 4 steps an epoch. Stop in the middle of epoch 2.
        let dir = root.path().join(name);
        let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run(Some(&dir), &mut StopAt { at: 6 }, "settings")
        }));
        assert!(stopped.is_err(), "the run stopped");
        let saved: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(saved, ["epoch-1"], "only the first epoch was saved");

        // Another run with other settings refuses the checkpoint and names it.
        let err = run(Some(&dir), &mut Silent, "other settings").err().expect("refused");
        let message = err.to_string();
        assert!(message.contains("epoch-1") && message.contains("other settings"), "{message}");

        let resumed = run(Some(&dir), &mut StopAt { at: 3 }, "settings").expect("resumes after step 4");
        assert_eq!(resumed.resumed_after_epoch, Some(1));
        assert_eq!(reference.resumed_after_epoch, None);
        assert_eq!(epochs_of(&resumed), epochs_of(&reference), "{name}: the same epochs");
        assert_eq!(resumed.best_epoch, reference.best_epoch);
        assert_eq!(values(&resumed), values(&reference), "{name}: the same best model, bit for bit");
        let saved: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(saved, ["epoch-3"], "older checkpoints are removed");

        // A finished run's checkpoint resumes to the same outcome without training.
        let again = run(Some(&dir), &mut StopAt { at: 1 }, "settings").expect("nothing left to train");
        assert_eq!(epochs_of(&again), epochs_of(&reference));
        assert_eq!(values(&again), values(&reference));
    }
}
