//! Knowledge distillation on the CPU backend. In its own test binary on purpose: it compares runs
//! bit for bit, and burn-ndarray's random generator is process-wide, so dropout in tests running
//! in parallel threads would interleave with this test's draws.

mod common;

use common::{batcher, data, pretrained, quick};
use prunelab_glue::GlueTask;
use prunelab_train::{Distillation, Silent, TrainData, TrainOptions, fine_tune};

/// With α = 0 the teacher changes nothing (bit for bit); with α = 1 and no use of the labels,
/// a student learns the task from a trained teacher's logits alone.
#[test]
fn distillation_mixes_a_teachers_logits_into_the_loss() {
    let (train, dev) = (data(400, 15), data(100, 16));
    let train_with = |distillation: Option<Distillation<'_, burn::backend::NdArray>>, epochs| {
        fine_tune(
            pretrained("bert-tiny"),
            &TrainData { train: &train, dev: &dev, task: GlueTask::Sst2, batcher: &batcher() },
            &TrainOptions { config: quick(1e-3, epochs), distillation, ..Default::default() },
            &Default::default(),
            &mut Silent,
        )
        .unwrap()
    };
    let trained = train_with(None, 6);
    let teacher = trained.best_model;
    let plain = train_with(None, 1);
    let zero = train_with(Some(Distillation { teacher: &teacher, alpha: 0.0, temperature: 2.0 }), 1);
    assert_eq!(plain.epochs[0].train_loss, zero.epochs[0].train_loss);
    assert_eq!(plain.epochs[0].eval, zero.epochs[0].eval);
    assert!(zero.teacher_seconds.is_some() && plain.teacher_seconds.is_none());

    // Labels scrambled: only the teacher knows the task.
    let scrambled: Vec<_> = train
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, mut e)| {
            e.label = Some((i % 2) as u32);
            e
        })
        .collect();
    let student = fine_tune(
        pretrained("bert-tiny"),
        &TrainData { train: &scrambled, dev: &dev, task: GlueTask::Sst2, batcher: &batcher() },
        &TrainOptions {
            config: quick(1e-3, 4),
            distillation: Some(Distillation { teacher: &teacher, alpha: 1.0, temperature: 1.0 }),
            ..Default::default()
        },
        &Default::default(),
        &mut Silent,
    )
    .unwrap();
    let accuracy = student.epochs.last().unwrap().eval.accuracy;
    assert!(accuracy >= 0.9, "the student learns from the teacher alone: dev accuracy {accuracy}");
}
