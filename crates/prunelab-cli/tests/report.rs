//! `prunelab report` on a small directory of result files.

mod common;

use std::path::Path;

use common::{prunelab, text};
use serde_json::{Value, json};

fn run_file(scheme: &str, amount: f64, seed: u64, accuracy: f64) -> Value {
    let sparsity = |zeros: u64| {
        json!({"scope": "default", "scope_total": {"zeros": zeros, "params": 800}, "all_total": {"zeros": zeros, "params": 1000},
               "layers": [{"layer": 0, "all": {"zeros": zeros, "params": 1000}, "scope": {"zeros": zeros, "params": 800}}]})
    };
    let zeros = (amount * 800.0) as u64;
    json!({
        "status": "finished", "model": "gpt2", "revision": "main", "task": "sst2",
        "pruning": {"scheme": scheme, "amount": amount, "scope": "default", "masks_from": null, "mask_mode": "hold"},
        "backend": "ndarray", "device": "Cpu", "precision": "f32", "prunelab_commit": "0123456789ab", "burn_version": "0.21.0",
        "hyperparameters": {"seed": seed, "learning_rate": 2e-5},
        "epochs": [{"epoch": 1, "train_loss": 0.5, "steps": 10, "train_seconds": 2.0, "samples_per_second": 50.0,
                    "tokens_per_second": 900.0, "eval_seconds": 0.5,
                    "eval": {"main": "accuracy", "main_value": accuracy, "accuracy": accuracy, "mcc": 0.5, "f1": 0.8,
                             "collapsed": false, "examples": 100}}],
        "best_epoch": 1,
        "metrics": {"main_metric": "accuracy", "main": accuracy, "accuracy": accuracy, "mcc": 0.5, "f1": 0.8, "collapsed": false},
        "sparsity_before": sparsity(zeros),
        "sparsity_after": sparsity(zeros),
        "inference": {"latency_ms_batch1_p50": 3.0, "latency_ms_batch1_p95": 4.0, "throughput_batch64_per_s": 500.0}
    })
}

fn write(path: &Path, value: &Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

fn runs(dir: &Path) {
    for seed in [1, 2] {
        write(&dir.join(format!("runs/gpt2/sst2/dense/0/seed-{seed}/result.json")), &run_file("none", 0.0, seed, 0.9));
        let path = format!("runs/gpt2/sst2/global-l1-default-hold/0.5/seed-{seed}/result.json");
        write(&dir.join(path), &run_file("global-l1", 0.5, seed, 0.85 + 0.01 * seed as f64));
    }
    let failed = json!({"status": "failed", "reason": "disk full", "model": "gpt2", "task": "sst2",
                        "pruning": {"scheme": "global-l1", "amount": 0.9, "scope": "default", "mask_mode": "hold"}});
    write(&dir.join("runs/gpt2/sst2/global-l1-default-hold/0.9/seed-1/result.json"), &failed);
    write(&dir.join("skipped.json"), &json!([{"model": "led", "task": "sst2", "reason": "not implemented"}]));
}

#[test]
fn report_writes_everything_and_prints_the_table() {
    let dir = tempfile::tempdir().unwrap();
    runs(dir.path());
    let out = prunelab(&["report", dir.path().to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let report = dir.path().join("report");
    assert!(
        stdout.contains("5 runs (4 finished, 1 failed or unfinished), 0 weight statistics, 1 skipped cells"),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("wrote {}", report.join("REPORT.md").display())), "{stdout}");
    assert!(
        stdout.contains("| gpt2 | sst2 | dense | 0 | accuracy | 0.9000 ± 0.0000 | 2 | 0% | 50.0 | 500.0 |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| gpt2 | sst2 | global-l1/default/hold | 0.5 | accuracy | 0.8650 ± 0.0071 | 2 | 40.00% |"),
        "{stdout}"
    );
    let md = std::fs::read_to_string(report.join("REPORT.md")).unwrap();
    assert!(
        md.contains("| gpt2 | sst2 | global-l1/default/hold | accuracy | 0.9000 ± 0.0000 | none of those tested |"),
        "{md}"
    );
    assert!(md.contains("disk full") && md.contains("not implemented"));
    assert_eq!(std::fs::read_to_string(report.join("results.csv")).unwrap().lines().count(), 1 + 5);
    let png = std::fs::read(report.join("plots/metric-gpt2-sst2.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");

    // --out elsewhere; the same content.
    let elsewhere = dir.path().join("elsewhere");
    let out = prunelab(&["report", dir.path().to_str().unwrap(), "--out", elsewhere.to_str().unwrap(), "-q"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(std::fs::read(elsewhere.join("REPORT.md")).unwrap(), md.as_bytes());
}

#[test]
fn a_malformed_result_file_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    runs(dir.path());
    let bad = dir.path().join("runs/gpt2/sst2/dense/0/seed-3/result.json");
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    std::fs::write(&bad, r#"{"status": "finished", "model": ["gpt2"], "task": "sst2"}"#).unwrap();
    let out = prunelab(&["report", dir.path().to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    let expected = format!("{}: invalid type: sequence, expected a string at line 1 column 32", bad.display());
    assert!(stderr.contains(&expected), "{stderr}");
    assert_eq!(stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{stderr}");
}
