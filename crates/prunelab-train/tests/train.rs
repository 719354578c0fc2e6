//! The fine-tuning loop on the CPU backend with tiny models.

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, NdArray};
use prunelab_glue::{Encoded, GlueBatcher, GlueTask, PaddingSide};
use prunelab_hub::Hub;
use prunelab_models::{Classifier, ModelConfig, ModelSource, load_classifier};
use prunelab_prune::{PruneSpec, Scheme, Scope, ScopeKind, compute_masks, sparsity};
use prunelab_stats::weights;
use prunelab_train::{Error, MaskMode, Silent, TrainConfig, fine_tune};

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

fn fresh_bert() -> Classifier<B> {
    let ModelConfig::Bert(config) = ModelConfig::from_file(&fixtures().join("bert-tiny/config.json")).unwrap() else {
        panic!("bert config")
    };
    Classifier::Bert(config.init_classifier::<B>(2, &Default::default()))
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
fn a_tiny_model_learns_a_separable_task() {
    let (train, dev) = (data(800, 1), data(200, 2));
    let outcome = fine_tune(
        fresh_bert(),
        &train,
        &dev,
        GlueTask::Sst2,
        &batcher(),
        &quick(1e-3, 4),
        None,
        &Default::default(),
        &mut Silent,
    )
    .unwrap();
    let last = outcome.epochs.last().unwrap();
    assert!(last.eval.accuracy >= 0.95, "dev accuracy {} after {} steps", last.eval.accuracy, 4 * 50);
    assert!(outcome.epochs[0].train_loss > last.train_loss, "loss falls");
    assert_eq!(outcome.epochs.iter().map(|e| e.steps).sum::<usize>(), 200);
    assert!(outcome.first_step_seconds > 0.0);
}

#[test]
fn held_masks_keep_exactly_their_zeros_and_released_ones_regrow() {
    let (train, dev) = (data(96, 3), data(32, 4));
    for (mode, name) in [(MaskMode::Hold, "gpt2-tiny"), (MaskMode::Release, "gpt2-tiny"), (MaskMode::Hold, "bert-tiny")]
    {
        let model = pretrained(name);
        let scope = Scope::new(ScopeKind::Default);
        let tensors = weights(&model, model.naming().as_ref());
        let masks =
            compute_masks(&tensors, &scope, &PruneSpec { scheme: Scheme::GlobalL1, amount: 0.5, seed: 0 }).unwrap();
        let batcher = GlueBatcher { pad_id: if name == "gpt2-tiny" { 98 } else { 0 }, ..batcher() };
        let outcome = fine_tune(
            model,
            &train,
            &dev,
            GlueTask::Sst2,
            &batcher,
            &quick(1e-3, 1),
            Some((&masks, mode)),
            &Default::default(),
            &mut Silent,
        )
        .unwrap();
        let trained = &outcome.best_model;
        let after = weights(trained, trained.naming().as_ref());
        let report = sparsity(&after, &scope);
        match mode {
            MaskMode::Hold => {
                assert_eq!(report.scope_total.zeros, masks.pruned(), "{name}: exactly the pruned weights are zero");
                for mask in &masks.masks {
                    let t = after.iter().find(|t| t.key == mask.key).unwrap();
                    assert!(t.values.iter().zip(&mask.keep).all(|(v, k)| *k || *v == 0.0), "{}", mask.key);
                }
            }
            MaskMode::Release => {
                assert!(
                    report.scope_total.zeros < masks.pruned() / 10,
                    "{name}: pruned weights regrow: {:?}",
                    report.scope_total
                )
            }
        }
    }
}

#[test]
fn divergence_is_an_error_not_a_result() {
    let (train, dev) = (data(64, 5), data(16, 6));
    let err = fine_tune(
        fresh_bert(),
        &train,
        &dev,
        GlueTask::Sst2,
        &batcher(),
        &quick(1e30, 1),
        None,
        &Default::default(),
        &mut Silent,
    )
    .err()
    .expect("lr 1e30 diverges");
    assert!(matches!(err, Error::NonFinite { .. }), "{err}");
    assert!(err.to_string().contains("diverged"), "{err}");
}

#[test]
fn bad_settings_are_rejected() {
    let (train, dev) = (data(8, 9), data(4, 10));
    for config in [
        TrainConfig { learning_rate: -1.0, ..TrainConfig::default() },
        TrainConfig { per_device_train_batch_size: 0, ..TrainConfig::default() },
        TrainConfig { warmup_ratio: 1.5, ..TrainConfig::default() },
    ] {
        let err = fine_tune(
            fresh_bert(),
            &train,
            &dev,
            GlueTask::Sst2,
            &batcher(),
            &config,
            None,
            &Default::default(),
            &mut Silent,
        )
        .err()
        .unwrap();
        assert!(err.to_string().starts_with("invalid training setting"), "{err}");
    }
}
