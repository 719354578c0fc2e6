//! `prunelab finetune` end to end on the tiny fixtures.

mod common;

use std::path::Path;
use std::process::Output;

use common::prunelab;

fn path(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel).display().to_string()
}

fn run(out: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    run_model("bert-tiny", out, extra)
}

fn run_model(model: &str, out: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
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
    let result = serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    (output, result)
}

#[test]
fn a_pruned_run_writes_its_result_with_sparsity_held() {
    let dir = tempfile::tempdir().unwrap();
    let (out, r) = run(dir.path(), &["--scheme", "global-l1", "--amount", "0.5", "--lr", "1e-3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(r["status"], "finished");
    assert_eq!(r["epochs"].as_array().unwrap().len(), 2);
    assert_eq!(r["hyperparameters"]["learning_rate"], 1e-3);
    assert_eq!(r["hyperparameters"]["weight_decay"], 0.01);
    assert_eq!(r["pruning"]["mask_mode"], "hold");
    assert_eq!(r["sparsity_after"]["scope_total"], r["sparsity_before"]["scope_total"]);
    assert_eq!(r["sparsity_after"]["scope_total"]["zeros"], 6464, "round(0.5 * 12928)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("sparsity after fine-tuning: 50.00% of the scope (6464 of 12928 weights are zero)"),
        "{stdout}"
    );
    for key in ["latency_ms_batch1_p50", "latency_ms_batch1_p95", "throughput_batch64_per_s"] {
        assert!(r["inference"][key].as_f64().unwrap() > 0.0, "{key}");
    }
    assert_eq!(r["backend"], "ndarray");
    // The CPU backend multiplies f32 operands in f32 (the GPU backends may not: the probe says).
    assert_eq!(r["matmul_arithmetic"]["arithmetic"], "f32", "{}", r["matmul_arithmetic"]);
    assert_eq!(r["gemm"], "burn");
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
    let best = r["best_epoch"].as_u64().unwrap() as usize - 1;
    let accuracy = r["epochs"][best]["eval"]["accuracy"].as_f64().unwrap();
    assert!(line.contains(&format!("accuracy {accuracy:.4}")), "{line} vs {accuracy}");
    assert!(dir.path().join("masks.safetensors").is_file());
}

#[test]
fn a_diverging_run_is_recorded_as_failed_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (out, r) = run(dir.path(), &["--lr", "1e30"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(r["status"], "failed");
    assert!(r["reason"].as_str().unwrap().contains("diverged"), "{r}");
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
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("result.json")).unwrap()).unwrap();
    assert_eq!(r["status"], "failed");
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.starts_with("out of memory: ") && reason.contains("at step 3"), "{reason}");
    assert_eq!(r["hyperparameters"]["num_train_epochs"], 2, "what was known before the fault is kept: {r}");
    let evaluated = r["epochs_evaluated"].as_array().expect("the first epoch's evaluation is kept");
    assert_eq!(evaluated.len(), 1, "{r}");
    assert_eq!(evaluated[0]["epoch"], 1);
    assert!(evaluated[0]["eval"]["accuracy"].is_number(), "{r}");

    // The first epoch's checkpoint is kept: run again, the run resumes after it, ends as an
    // uninterrupted run does, and removes the checkpoint.
    assert!(dir.path().join("checkpoint/epoch-1/state.json").is_file());
    let again = command(dir.path()).output().unwrap();
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let resumed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("result.json")).unwrap()).unwrap();
    assert_eq!(resumed["status"], "finished");
    assert_eq!(resumed["resumed_after_epoch"], 1, "{resumed}");
    assert!(!dir.path().join("checkpoint").exists(), "a finished run removes its checkpoint");
    let whole = tempfile::tempdir().unwrap();
    let uninterrupted = command(whole.path()).output().unwrap();
    assert!(uninterrupted.status.success());
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(whole.path().join("result.json")).unwrap()).unwrap();
    assert!(reference.get("resumed_after_epoch").is_none());
    let epochs = |r: &serde_json::Value| -> Vec<(serde_json::Value, serde_json::Value)> {
        r["epochs"].as_array().unwrap().iter().map(|e| (e["train_loss"].clone(), e["eval"].clone())).collect()
    };
    assert_eq!(epochs(&resumed), epochs(&reference), "the resumed run's epochs are the uninterrupted run's");
    assert_eq!(resumed["metrics"], reference["metrics"]);
    assert_eq!(resumed["sparsity_after"], reference["sparsity_after"]);
}

/// A checkpoint without a head gets a new one from the seeded generator: two processes with the
/// same seed give the same run (the grid driver compares resumed runs with uninterrupted ones).
#[test]
fn two_processes_with_one_seed_give_the_same_run() {
    let losses = |r: &serde_json::Value| -> Vec<f64> {
        r["epochs"].as_array().unwrap().iter().map(|e| e["train_loss"].as_f64().unwrap()).collect()
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (out_a, ra) = run_model("bert-tiny-base", a.path(), &["--lr", "1e-3", "--no-export"]);
    let (out_b, rb) = run_model("bert-tiny-base", b.path(), &["--lr", "1e-3", "--no-export"]);
    assert!(out_a.status.success() && out_b.status.success(), "{}", String::from_utf8_lossy(&out_a.stderr));
    assert!(ra["load"]["newly_initialized"].as_array().is_some_and(|v| !v.is_empty()), "the head is new");
    assert_eq!(losses(&ra), losses(&rb));
    assert_eq!(ra["metrics"], rb["metrics"]);
    assert!(!a.path().join("model").exists(), "--no-export writes no model");
}
