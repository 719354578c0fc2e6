//! The fine-tuning loop on the CPU backend with tiny models.

mod common;

use common::{batcher, data, fresh_bert, pretrained, quick, roberta_data};
use prunelab_glue::{GlueBatcher, GlueTask};
use prunelab_prune::{PruneSpec, Scheme, Scope, ScopeKind, compute_masks, sparsity};
use prunelab_stats::weights;
use prunelab_train::{Error, GradualPruning, MaskMode, Silent, TrainConfig, TrainData, TrainOptions, fine_tune};

#[test]
fn a_tiny_model_learns_a_separable_task() {
    let (train, dev) = (data(800, 1), data(200, 2));
    let outcome = fine_tune(
        fresh_bert(),
        &TrainData { train: &train, dev: &dev, task: GlueTask::Sst2, batcher: &batcher() },
        &TrainOptions { config: quick(1e-3, 4), masks: None, ..Default::default() },
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

/// Longformer (first token global, windows [4, 6]), LED (last eos through the decoder) and
/// RoBERTa learn the task from their tiny random checkpoints: gradients flow through the chunked
/// window, the global tokens and the decoder.
#[test]
fn longformer_led_and_roberta_learn_a_separable_task() {
    let (train, dev) = (roberta_data(400, 11), roberta_data(100, 12));
    for name in ["longformer-tiny", "led-tiny", "roberta-tiny"] {
        let model = pretrained(name);
        let batcher = GlueBatcher { pad_id: 1, token_types: model.uses_token_types(), ..batcher() };
        let outcome = fine_tune(
            model,
            &TrainData { train: &train, dev: &dev, task: GlueTask::Sst2, batcher: &batcher },
            &TrainOptions { config: quick(1e-3, 3), masks: None, ..Default::default() },
            &Default::default(),
            &mut Silent,
        )
        .unwrap();
        let last = outcome.epochs.last().unwrap();
        assert!(last.eval.accuracy >= 0.95, "{name}: dev accuracy {}", last.eval.accuracy);
    }
}

#[test]
fn held_masks_keep_exactly_their_zeros_and_released_ones_regrow() {
    let (train, dev) = (data(96, 3), data(32, 4));
    for (mode, name) in [
        (MaskMode::Hold, "gpt2-tiny"),
        (MaskMode::Release, "gpt2-tiny"),
        (MaskMode::Hold, "bert-tiny"),
        (MaskMode::Hold, "longformer-tiny"),
        (MaskMode::Hold, "led-tiny"),
    ] {
        let model = pretrained(name);
        let scope = Scope::new(ScopeKind::Default);
        let tensors = weights(&model, model.naming().as_ref());
        let masks =
            compute_masks(&tensors, &scope, &PruneSpec { scheme: Scheme::GlobalL1, amount: 0.5, seed: 0 }).unwrap();
        let pad_id = match name {
            "gpt2-tiny" => 98,
            "longformer-tiny" | "led-tiny" => 1,
            _ => 0,
        };
        let batcher = GlueBatcher { pad_id, token_types: model.uses_token_types(), ..batcher() };
        let outcome = fine_tune(
            model,
            &TrainData { train: &train, dev: &dev, task: GlueTask::Sst2, batcher: &batcher },
            &TrainOptions { config: quick(1e-3, 1), masks: Some((&masks, mode)), ..Default::default() },
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

/// DeBERTa fine-tunes with masks held exactly: v1 in the study's `seed` scope (its fused
/// `in_proj`, relative projections, `embed_proj`, pooler and classifier), v2 in the default scope
/// plus its encoder convolution, a 3-d weight.
#[test]
fn deberta_fine_tunes_with_masks_held() {
    let (train, dev) = (data(64, 7), data(16, 8));
    let with_conv = Scope { include: vec!["*.conv.conv.weight".into()], ..Scope::new(ScopeKind::Default) };
    for (name, scope) in [("deberta-tiny", Scope::new(ScopeKind::Seed)), ("deberta-v2-tiny", with_conv)] {
        let model = pretrained(name);
        let tensors = weights(&model, model.naming().as_ref());
        let masks =
            compute_masks(&tensors, &scope, &PruneSpec { scheme: Scheme::GlobalL1, amount: 0.5, seed: 0 }).unwrap();
        assert!(masks.masks.iter().any(|m| m.shape.len() == 3) == (name == "deberta-v2-tiny"), "{name}");
        let outcome = fine_tune(
            model,
            &TrainData { train: &train, dev: &dev, task: GlueTask::Sst2, batcher: &batcher() },
            &TrainOptions { config: quick(1e-3, 1), masks: Some((&masks, MaskMode::Hold)), ..Default::default() },
            &Default::default(),
            &mut Silent,
        )
        .unwrap();
        let after = weights(&outcome.best_model, outcome.best_model.naming().as_ref());
        assert_eq!(sparsity(&after, &scope).scope_total.zeros, masks.pruned(), "{name}: exactly the pruned weights");
        let moved = |key: &str| {
            let find =
                |ts: &[prunelab_stats::NamedTensor]| ts.iter().find(|t| t.key.ends_with(key)).map(|t| t.values.clone());
            find(&tensors) != find(&after)
        };
        assert!(moved("attention.self.q_bias") || moved("attention.self.query_proj.bias"), "{name}: trained");
    }
}

#[test]
fn divergence_is_an_error_not_a_result() {
    let (train, dev) = (data(64, 5), data(16, 6));
    let err = fine_tune(
        fresh_bert(),
        &TrainData { train: &train, dev: &dev, task: GlueTask::Sst2, batcher: &batcher() },
        &TrainOptions { config: quick(1e30, 1), masks: None, ..Default::default() },
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
            &TrainData { train: &train, dev: &dev, task: GlueTask::Sst2, batcher: &batcher() },
            &TrainOptions { config, masks: None, ..Default::default() },
            &Default::default(),
            &mut Silent,
        )
        .err()
        .unwrap();
        assert!(err.to_string().starts_with("invalid training setting"), "{err}");
    }
}

/// A gradual schedule (global L1 up to 80 % by the middle of training, an update every 2 steps)
/// ends with exactly round(0.8 · n) zeros in the scope, measured on the weights of the model it
/// returns, and records every update with its rising target.
#[test]
fn gradual_pruning_ends_at_exactly_its_amount() {
    let (train, dev) = (data(96, 13), data(32, 14));
    let scope = Scope::new(ScopeKind::Default);
    let model = pretrained("bert-tiny");
    let gradual = GradualPruning {
        scope: &scope,
        scheme: Scheme::GlobalL1,
        seed: 0,
        amount: 0.8,
        initial_amount: 0.0,
        start: 0.0,
        end: 0.5,
        every: 2,
    };
    let outcome = fine_tune(
        model,
        &TrainData { train: &train, dev: &dev, task: GlueTask::Sst2, batcher: &batcher() },
        &TrainOptions { config: quick(1e-3, 2), gradual: Some(gradual), ..Default::default() },
        &Default::default(),
        &mut Silent,
    )
    .unwrap();
    // 96 examples in batches of 16, 2 epochs: 12 steps; updates at 0, 2, 4 and t1 = 6.
    let steps: Vec<usize> = outcome.prune_events.iter().map(|e| e.step).collect();
    assert_eq!(steps, [0, 2, 4, 6]);
    let targets: Vec<f64> = outcome.prune_events.iter().map(|e| e.target).collect();
    assert!(targets.windows(2).all(|w| w[0] < w[1]) && targets[3] == 0.8, "{targets:?}");
    let after = weights(&outcome.best_model, outcome.best_model.naming().as_ref());
    let report = sparsity(&after, &scope);
    let expected = prunelab_prune::nparams_to_prune(0.8, report.scope_total.params);
    assert_eq!(report.scope_total.zeros, expected, "exactly round(0.8 n) zeros");
    assert_eq!(outcome.prune_events[3].zeros, expected);
    let masks = outcome.final_masks.expect("the final masks");
    assert_eq!(masks.pruned(), expected);
}

/// A probe installed with `phase::set_probe` sees every step's phases in order: forward and
/// backward, then the flat optimizer step's gather, norm, update and scatter, then the rest.
#[test]
fn a_probe_sees_each_steps_phases_in_order() {
    use prunelab_train::phase::{self, Phase};
    use std::sync::Mutex;
    static SEEN: Mutex<Vec<Phase>> = Mutex::new(Vec::new());
    // Only this test's thread: the other tests of this binary run the loop concurrently.
    let this = std::thread::current().id();
    let probe = Box::new(move |p: Phase| {
        if std::thread::current().id() == this {
            SEEN.lock().unwrap().push(p);
        }
    });
    assert!(phase::set_probe(probe).is_ok(), "the only probe of this test binary");
    let (train, dev) = (data(48, 5), data(16, 6));
    let outcome = fine_tune(
        fresh_bert(),
        &TrainData { train: &train, dev: &dev, task: GlueTask::Sst2, batcher: &batcher() },
        &TrainOptions { config: quick(1e-3, 1), masks: None, ..Default::default() },
        &Default::default(),
        &mut Silent,
    )
    .unwrap();
    let steps = outcome.epochs.iter().map(|e| e.steps).sum::<usize>();
    assert_eq!(steps, 3, "48 examples in batches of 16");
    use Phase::*;
    let step = [Forward, Backward, Update, Gather, Norm, Update, Scatter, Other];
    assert_eq!(*SEEN.lock().unwrap(), step.repeat(steps));
}
