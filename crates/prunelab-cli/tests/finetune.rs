//! `prunelab finetune` end to end on the tiny fixtures.

mod common;

use std::path::Path;
use std::process::Output;

use common::prunelab;
use prunelab_record::{RunRecord, Schedule, Status};

fn path(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel).display().to_string()
}

fn run(out: &Path, extra: &[&str]) -> (Output, RunRecord) {
    run_model("bert-tiny", out, extra)
}

fn run_model(model: &str, out: &Path, extra: &[&str]) -> (Output, RunRecord) {
    let mut args = vec![
        "finetune".to_owned(),
        path(&format!("../prunelab-models/tests/fixtures/{model}")),
        "--task".into(),
        "sst2".into(),
        "--data-dir".into(),
        path("../prunelab-glue/tests/fixtures/glue"),
        "--tokenizer".into(),
        path("../prunelab-glue/tests/fixtures/wordlevel-tokenizer.json"),
        "--epochs".into(),
        "2".into(),
        "--batch-size".into(),
        "2".into(),
        "--max-length".into(),
        "32".into(),
        "--out".into(),
        out.display().to_string(),
        "-q".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = prunelab(&refs);
    (output, read(out))
}

fn read(dir: &Path) -> RunRecord {
    RunRecord::read(&dir.join("result.json")).unwrap()
}

#[test]
fn a_pruned_run_writes_its_result_with_sparsity_held() {
    let dir = tempfile::tempdir().unwrap();
    let (out, r) = run(dir.path(), &["--scheme", "global-l1", "--amount", "0.5", "--lr", "1e-3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(r.status, Status::Finished);
    assert_eq!(r.epochs.len(), 2);
    let hyper = r.hyperparameters.as_ref().unwrap();
    assert_eq!((hyper.learning_rate, hyper.weight_decay), (1e-3, 0.01));
    assert_eq!(r.pruning.mask_mode, prunelab_record::MaskMode::Hold);
    let after = r.sparsity_after.as_ref().unwrap();
    assert_eq!(after.scope_total, r.sparsity_before.as_ref().unwrap().scope_total);
    assert_eq!(after.scope_total.zeros, 6464, "round(0.5 * 12928)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("sparsity after fine-tuning: 50.00% of the scope (6464 of 12928 weights are zero)"),
        "{stdout}"
    );
    let inference = r.inference.unwrap();
    assert!(inference.latency_ms_batch1_p50 > 0.0 && inference.latency_ms_batch1_p95 > 0.0);
    assert!(inference.throughput_batch64_per_s > 0.0);
    assert_eq!(r.backend.as_deref(), Some("ndarray"));
    // The CPU backend multiplies f32 operands in f32 (the GPU backends may not: the probe says).
    let arithmetic = r.matmul_arithmetic.as_ref().unwrap();
    assert_eq!(arithmetic.arithmetic.as_deref(), Some("f32"), "{arithmetic:?}");
    assert_eq!(r.gemm.as_deref(), Some("cpu-threads"), "the CPU build spreads its products over the cores");
    let tsv = std::fs::read_to_string(dir.path().join("test_predictions.tsv")).unwrap();
    assert_eq!(tsv.lines().next(), Some("index\tprediction"));
    assert_eq!(tsv.lines().count(), 3, "header + 2 test rows");

    // The best model was exported with its tokenizer: evaluate it again, same scores.
    let model = dir.path().join("model");
    let eval = prunelab(&[
        "evaluate",
        model.to_str().unwrap(),
        "--task",
        "sst2",
        "--data-dir",
        &path("../prunelab-glue/tests/fixtures/glue"),
        "--max-length",
        "32",
    ]);
    assert!(eval.status.success(), "{}", String::from_utf8_lossy(&eval.stderr));
    let line = String::from_utf8_lossy(&eval.stdout).into_owned();
    let accuracy = r.epochs[r.best_epoch.unwrap() - 1].eval.accuracy;
    assert!(line.contains(&format!("accuracy {accuracy:.4}")), "{line} vs {accuracy}");
    assert!(dir.path().join("masks.safetensors").is_file());
}

#[test]
fn a_diverging_run_is_recorded_as_failed_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (out, r) = run(dir.path(), &["--lr", "1e30"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(r.status, Status::Failed);
    assert!(r.reason.as_deref().unwrap().contains("diverged"), "{r:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("run failed; see"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A backend that runs out of memory mid-run panics; the run still writes a result marked failed,
/// with the reason and the epochs evaluated before, and exits 1. (`PRUNELAB_FAULT=oom@STEP` is the
/// fault-injection hook; the fixture run has 2 steps per epoch (3 examples, batches of 2), so step 3 is the first of epoch 2.)
#[test]
fn running_out_of_memory_is_recorded_as_failed_keeping_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    let command = |out: &std::path::Path| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_prunelab"));
        cmd.args([
            "finetune",
            &path("../prunelab-models/tests/fixtures/bert-tiny"),
            "--task",
            "sst2",
            "--data-dir",
            &path("../prunelab-glue/tests/fixtures/glue"),
            "--tokenizer",
            &path("../prunelab-glue/tests/fixtures/wordlevel-tokenizer.json"),
            "--epochs",
            "2",
            "--batch-size",
            "2",
            "--max-length",
            "32",
            "-q",
            "--no-export",
            "--out",
        ])
        .arg(out)
        .env_remove("RUST_LOG")
        .env_remove("PRUNELAB_FAULT")
        .env("HF_HUB_OFFLINE", "1");
        cmd
    };
    let out = command(dir.path()).env("PRUNELAB_FAULT", "oom@3").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("run failed; see") && stderr.contains("out of memory"), "{stderr}");
    let r = read(dir.path());
    assert_eq!(r.status, Status::Failed);
    let reason = r.reason.as_deref().unwrap();
    assert!(reason.starts_with("out of memory: ") && reason.contains("at step 3"), "{reason}");
    assert_eq!(r.hyperparameters.as_ref().unwrap().num_train_epochs, 2, "what was known before the fault is kept");
    assert_eq!(r.epochs_evaluated.len(), 1, "the first epoch's evaluation is kept: {r:?}");
    assert_eq!(r.epochs_evaluated[0].epoch, 1);

    // The first epoch's checkpoint is kept: run again, the run resumes after it, ends as an
    // uninterrupted run does, and removes the checkpoint.
    assert!(dir.path().join("checkpoint/epoch-1/state.json").is_file());
    let again = command(dir.path()).output().unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let resumed = read(dir.path());
    assert_eq!(resumed.status, Status::Finished);
    assert_eq!(resumed.resumed_after_epoch, Some(1));
    assert!(!dir.path().join("checkpoint").exists(), "a finished run removes its checkpoint");
    let whole = tempfile::tempdir().unwrap();
    let uninterrupted = command(whole.path()).output().unwrap();
    assert!(uninterrupted.status.success());
    let reference = read(whole.path());
    assert_eq!(reference.resumed_after_epoch, None);
    let epochs = |r: &RunRecord| r.epochs.iter().map(|e| (e.train_loss, e.eval)).collect::<Vec<_>>();
    assert_eq!(epochs(&resumed), epochs(&reference), "the resumed run's epochs are the uninterrupted run's");
    assert_eq!(resumed.metrics, reference.metrics);
    assert_eq!(resumed.sparsity_after, reference.sparsity_after);
}

/// A checkpoint without a head gets a new one from the seeded generator: two processes with the
/// same seed give the same run (the grid driver compares resumed runs with uninterrupted ones).
#[test]
fn two_processes_with_one_seed_give_the_same_run() {
    let losses = |r: &RunRecord| r.epochs.iter().map(|e| e.train_loss).collect::<Vec<_>>();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (out_a, ra) = run_model("bert-tiny-base", a.path(), &["--lr", "1e-3", "--no-export"]);
    let (out_b, rb) = run_model("bert-tiny-base", b.path(), &["--lr", "1e-3", "--no-export"]);
    assert!(out_a.status.success() && out_b.status.success(), "{}", String::from_utf8_lossy(&out_a.stderr));
    assert!(!ra.load.as_ref().unwrap().newly_initialized.is_empty(), "the head is new");
    assert_eq!(losses(&ra), losses(&rb));
    assert_eq!(ra.metrics, rb.metrics);
    assert!(!a.path().join("model").exists(), "--no-export writes no model");
}

/// `--schedule gradual`: masks rise to --amount during training (4 steps; updates before steps
/// 0, 1 and 2), are held, and the record lists every update; the exported model has exactly
/// round(0.5 n) zeros in the scope.
#[test]
fn a_gradual_run_records_its_schedule_and_ends_at_its_amount() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--schedule", "gradual", "--scheme", "global-l1", "--amount", "0.5", "--initial-amount", "0.1"];
    let (out, r) =
        run(dir.path(), &[&args[..], &["--prune-end", "0.5", "--prune-every", "1", "--lr", "1e-3"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let Schedule::Gradual(schedule) = &r.pruning.schedule else { panic!("a gradual schedule: {:?}", r.pruning) };
    let steps: Vec<usize> = schedule.events.iter().map(|e| e.step).collect();
    assert_eq!(steps, [0, 1, 2]);
    assert_eq!(schedule.events[0].target, 0.1);
    assert_eq!(schedule.events[2].reached(), 0.5);
    assert!(r.sparsity_before.is_none(), "dense before training");
    assert_eq!(r.sparsity_after.unwrap().scope_total.zeros, 6464, "round(0.5 * 12928)");
    assert!(dir.path().join("masks.safetensors").is_file());

    let bad = tempfile::tempdir().unwrap();
    let (out, _) = run(bad.path(), &["--schedule", "gradual", "--scheme", "nm"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("--schedule gradual computes masks during training"), "{stderr}");
}

/// `--teacher`: a dense run's exported model distils into a pruned student; the record says
/// so. A teacher without a trained head is refused, naming the fix.
#[test]
fn a_dense_runs_export_teaches_a_pruned_student() {
    let dense = tempfile::tempdir().unwrap();
    let (out, _) = run(dense.path(), &["--lr", "1e-3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let teacher = dense.path().join("model");
    let student = tempfile::tempdir().unwrap();
    let args =
        ["--scheme", "global-l1", "--amount", "0.5", "--teacher", teacher.to_str().unwrap(), "--kd-alpha", "0.7"];
    let (out, r) = run(student.path(), &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let d = r.distillation.expect("a distillation record");
    assert_eq!((d.alpha, d.temperature), (0.7, 2.0));
    assert!(d.teacher_params.unwrap() > 0 && d.teacher_seconds.unwrap() > 0.0, "{d:?}");

    let refused = tempfile::tempdir().unwrap();
    let headless = path("../prunelab-models/tests/fixtures/bert-tiny-base");
    let (out, _) = run(refused.path(), &["--teacher", &headless]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("has no trained classification head"), "{stderr}");
}
