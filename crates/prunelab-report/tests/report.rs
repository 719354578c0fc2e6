//! The report end to end on a synthetic grid: 2 models × 2 tasks × (dense, global-l1 at 0.5 and
//! 0.9) × 2 seeds, plus a `--scope seed` arm, a `release` arm, a failed run, a skipped cell and
//! weight statistics.

use std::path::Path;

use prunelab_report::{Report, generate};
use serde_json::{Value, json};

/// One run's settings and outcome.
struct Spec<'a> {
    model: &'a str,
    task: &'a str,
    scheme: &'a str,
    scope: &'a str,
    mask_mode: &'a str,
    amount: f64,
    seed: u64,
    main: f64,
    /// (scope zeros, scope params, all zeros, all params) before and after fine-tuning.
    before: (u64, u64, u64, u64),
    after: (u64, u64, u64, u64),
}

fn sparsity((sz, sp, az, ap): (u64, u64, u64, u64), scope: &str) -> Value {
    // Two layers share the scope; the non-layer parameters (embeddings, head) hold the rest.
    let half = |x: u64| x / 2;
    json!({
        "scope": scope,
        "scope_total": {"zeros": sz, "params": sp},
        "all_total": {"zeros": az, "params": ap},
        "layers": [
            {"layer": null, "all": {"zeros": az - sz, "params": ap - sp}, "scope": {"zeros": 0, "params": 0}},
            {"layer": 0, "all": {"zeros": half(sz), "params": half(sp)}, "scope": {"zeros": half(sz), "params": half(sp)}},
            {"layer": 1, "all": {"zeros": sz - half(sz), "params": sp - half(sp)}, "scope": {"zeros": sz - half(sz), "params": sp - half(sp)}}
        ]
    })
}

fn result(s: &Spec<'_>) -> Value {
    let metric = if s.task == "cola" { "mcc" } else { "accuracy" };
    let (accuracy, mcc) = if s.task == "cola" { (0.7, s.main) } else { (s.main, 0.1) };
    let main = if s.task == "cola" { "matthews" } else { "accuracy" };
    let eval = |value: f64| {
        json!({"accuracy": accuracy, "mcc": mcc, "f1": 0.5, "main": main, "main_value": value,
               "collapsed": value == 0.0, "examples": 100})
    };
    let mut r = json!({
        "status": "finished",
        "model": s.model,
        "revision": "main",
        "task": s.task,
        "pruning": {"scheme": s.scheme, "amount": s.amount, "scope": s.scope, "masks_from": null, "mask_mode": s.mask_mode},
        "backend": "cuda",
        "hardware": {"gpu": "NVIDIA H200", "gpu_count": 1, "cpu": "Test CPU", "threads": 16},
        "device": "Cuda(0)",
        "precision": "f32",
        "prunelab_commit": "abc123def456",
        "burn_version": "0.21.0",
        "started_unix": 1_700_000_000u64,
        "hyperparameters": {"learning_rate": 2e-5, "weight_decay": 0.01, "num_train_epochs": 2, "seed": s.seed,
                            "per_device_train_batch_size": 32},
        "max_length": 128,
        "data": {"train": 1000, "dev": 100, "train_source": "t.tsv", "dev_source": "d.tsv"},
        "epochs": [
            {"epoch": 1, "train_loss": 0.5, "train_seconds": 10.0, "samples_per_second": 100.0, "tokens_per_second": 3000.0,
             "steps": 32, "eval_seconds": 1.0, "eval": eval(s.main - 0.01)},
            {"epoch": 2, "train_loss": 0.4, "train_seconds": 12.0, "samples_per_second": 80.0, "tokens_per_second": 2000.0,
             "steps": 32, "eval_seconds": 1.0, "eval": eval(s.main)}
        ],
        "best_epoch": 2,
        "first_step_seconds": 1.5,
        "metrics": {"main_metric": metric, "main": s.main, "accuracy": accuracy, "mcc": mcc, "f1": 0.5,
                    "collapsed": s.main == 0.0},
        "sparsity_after": sparsity(s.after, s.scope),
        "inference": {"latency_ms_batch1_p50": 5.0 + s.seed as f64, "latency_ms_batch1_p95": 9.0,
                      "throughput_batch64_per_s": 1000.0 + 10.0 * s.seed as f64}
    });
    if s.scheme != "none" {
        r["sparsity_before"] = sparsity(s.before, s.scope);
    }
    r
}

fn write(path: &Path, value: &Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

fn model_slug(model: &str) -> &str {
    model.rsplit('/').next().unwrap()
}

fn add(dir: &Path, s: Spec<'_>) {
    let arm = if s.scheme == "none" { "dense".to_owned() } else { format!("{}-{}-{}", s.scheme, s.scope, s.mask_mode) };
    let path = format!("runs/{}/{}/{arm}/{}/seed-{}/result.json", model_slug(s.model), s.task, s.amount, s.seed);
    write(&dir.join(path), &result(&s));
}

/// GPT-2-like sizes: 1000 parameters, 800 in the default scope, 10 in the `seed` scope (the head).
const NONE: (u64, u64, u64, u64) = (0, 800, 0, 1000);

fn grid(dir: &Path) {
    let pruned = |amount: f64| {
        let z = (amount * 800.0) as u64;
        (z, 800, z, 1000)
    };
    // (model, task, dense scores, 0.5 scores, 0.9 scores) per seed 1 and 2.
    type Scores = [f64; 2];
    let table: [(&str, &str, Scores, Scores, Scores); 4] = [
        ("gpt2", "sst2", [0.92, 0.90], [0.905, 0.90], [0.80, 0.82]),
        ("gpt2", "cola", [0.40, 0.44], [0.30, 0.32], [0.0, 0.0]),
        ("../models/all-MiniLM-L6-v2", "sst2", [0.88, 0.88], [0.885, 0.875], [0.875, 0.871]),
        ("../models/all-MiniLM-L6-v2", "cola", [0.30, 0.34], [0.31, 0.29], [0.2, 0.1]),
    ];
    for (model, task, dense, half, most) in table {
        for (i, seed) in [1u64, 2].into_iter().enumerate() {
            let base = Spec {
                model,
                task,
                scheme: "none",
                scope: "default",
                mask_mode: "hold",
                amount: 0.0,
                seed,
                main: dense[i],
                before: NONE,
                after: NONE,
            };
            add(dir, Spec { ..base });
            // The older spelling `globall1` for one model: it must read as `global-l1`.
            let scheme = if model == "gpt2" { "global-l1" } else { "globall1" };
            add(dir, Spec { scheme, amount: 0.5, main: half[i], before: pruned(0.5), after: pruned(0.5), ..base });
            if (model, task, seed) == ("../models/all-MiniLM-L6-v2", "cola", 2) {
                continue; // this one fails, below
            }
            add(dir, Spec { scheme, amount: 0.9, main: most[i], before: pruned(0.9), after: pruned(0.9), ..base });
        }
    }
    for seed in [1u64, 2] {
        let base = Spec {
            model: "gpt2",
            task: "sst2",
            scheme: "global-l1",
            scope: "seed",
            mask_mode: "hold",
            amount: 0.5,
            seed,
            main: 0.915,
            before: (5, 10, 5, 1000),
            after: (5, 10, 5, 1000),
        };
        // The study's scope: only the head's 10 weights are in it.
        add(dir, Spec { ..base });
        // The study's prune.remove: pruned weights grow back during fine-tuning.
        add(dir, Spec { scope: "default", mask_mode: "release", main: 0.91, before: pruned(0.5), after: NONE, ..base });
    }
    let failed = json!({
        "status": "failed",
        "reason": "CUDA out of memory while allocating 2 GiB",
        "model": "../models/all-MiniLM-L6-v2",
        "revision": "main",
        "task": "cola",
        "pruning": {"scheme": "global-l1", "amount": 0.9, "scope": "default", "masks_from": null, "mask_mode": "hold"},
        "backend": "cuda"
    });
    write(&dir.join("runs/all-MiniLM-L6-v2/cola/global-l1-default-hold/0.9/seed-2/result.json"), &failed);
    write(
        &dir.join("skipped.json"),
        &json!([{"model": "allenai/led-base-16384", "task": "cola", "reason": "LED is not implemented yet"}]),
    );
    write(&dir.join("grid.json"), &json!({"preset": "smoke", "seeds": [1, 2], "amounts": [0.5, 0.9]}));
    let layer = |layer: Value, count: u64, above: [u64; 4]| {
        json!({"layer": layer, "role": null, "count": count, "zeros": 1, "above": above, "l1": 1.0, "l2": 1.0, "max_abs": 2.5,
               "histogram": [], "tensors": 3})
    };
    let stats = json!({
        "model": "gpt2",
        "thresholds": [0.0010000000474974513, 0.009999999776482582, 0.10000000149011612, 1.0],
        "histogram_edges": [],
        "tensors": [],
        "layers": [layer(Value::Null, 200, [190, 150, 20, 1]), layer(json!(0), 400, [390, 300, 40, 0]),
                   layer(json!(1), 400, [380, 280, 60, 2])],
        "layers_by_role": []
    });
    write(&dir.join("inspect/gpt2/stats.json"), &stats);
}

fn report() -> (tempfile::TempDir, Report) {
    let dir = tempfile::tempdir().unwrap();
    grid(dir.path());
    let report = generate(dir.path(), &dir.path().join("report")).unwrap();
    (dir, report)
}

fn csv_rows(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = reader.records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect();
    (header, rows)
}

#[test]
fn the_csv_has_one_row_per_run_with_the_recorded_values() {
    let (_dir, report) = report();
    let (header, rows) = csv_rows(&report.csv);
    assert_eq!(header, prunelab_report::COLUMNS);
    // 4 model × task × 2 seeds × 3 arms, less the failed one, plus it, plus 2 × 2 extra arms.
    assert_eq!(rows.len(), 4 * 2 * 3 + 4);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let find = |model: &str, task: &str, arm: &str, amount: &str, seed: &str| {
        rows.iter()
            .find(|r| {
                r[col("model")] == model
                    && r[col("task")] == task
                    && r[col("arm")] == arm
                    && r[col("amount")] == amount
                    && r[col("seed")] == seed
            })
            .unwrap_or_else(|| panic!("no row {model} {task} {arm} {amount} {seed}"))
    };
    let row = find("gpt2", "sst2", "global-l1/default/hold", "0.5", "1");
    assert_eq!(row[col("main_metric")], "accuracy");
    assert_eq!(row[col("main")], "0.905");
    assert_eq!(row[col("scope_sparsity_after")], "0.5");
    assert_eq!(row[col("all_sparsity_after")], "0.4");
    assert_eq!(row[col("train_seconds_total")], "22");
    assert_eq!(row[col("train_samples_per_s_mean")], "90");
    assert_eq!(row[col("train_tokens_per_s_mean")], "2500");
    assert_eq!(row[col("first_step_seconds")], "1.5");
    assert_eq!(row[col("latency_ms_batch1_p50")], "6");
    assert_eq!(row[col("throughput_batch64_per_s")], "1010");
    assert_eq!(row[col("best_epoch")], "2");
    assert_eq!(row[col("backend")], "cuda");
    assert_eq!(row[col("prunelab_commit")], "abc123def456");
    assert_eq!(row[col("path")], "runs/gpt2/sst2/global-l1-default-hold/0.5/seed-1/result.json");
    // A directory model is named by its last component; the old scheme spelling is normalised.
    let row = find("all-MiniLM-L6-v2", "cola", "global-l1/default/hold", "0.5", "2");
    assert_eq!(row[col("scheme")], "global-l1");
    assert_eq!(row[col("model_source")], "../models/all-MiniLM-L6-v2");
    assert_eq!(row[col("main_metric")], "mcc");
    // The failed run is a row too, its seed taken from its directory.
    let row = find("all-MiniLM-L6-v2", "cola", "global-l1/default/hold", "0.9", "2");
    assert_eq!(row[col("status")], "failed");
    assert_eq!(row[col("reason")], "CUDA out of memory while allocating 2 GiB");
    assert_eq!(row[col("main")], "");
    // Rows are sorted: dense first within a model × task.
    assert_eq!(rows[0][col("model")], "all-MiniLM-L6-v2");
    assert_eq!(rows[0][col("arm")], "dense");
}

#[test]
fn the_table_aggregates_over_seeds() {
    let (_dir, report) = report();
    let table = &report.markdown_table;
    assert!(
        table.contains("| gpt2 | sst2 | dense | 0 | accuracy | 0.9100 ± 0.0141 | 2 | 0% | 90.0 | 1015.0 |"),
        "{table}"
    );
    assert!(
        table.contains("| gpt2 | sst2 | global-l1/default/hold | 0.9 | accuracy | 0.8100 ± 0.0141 | 2 | 72.00% |"),
        "{table}"
    );
    // One seed of MiniLM × CoLA × 0.9 failed: n = 1, no std.
    assert!(table.contains("| all-MiniLM-L6-v2 | cola | global-l1/default/hold | 0.9 | mcc | 0.2000 | 1 |"), "{table}");
    assert!(
        table.contains("| gpt2 | cola | global-l1/default/hold | 0.9 | mcc | 0.0000 ± 0.0000 (2 collapsed) | 2 |"),
        "{table}"
    );
    assert_eq!(std::fs::read_to_string(&report.table).unwrap(), *table);
    let cell = report.cells.iter().find(|c| c.model == "gpt2" && c.task == "sst2" && c.is_dense()).unwrap();
    let main = cell.main.unwrap();
    assert!((main.mean - 0.91).abs() < 1e-12);
    assert!((main.std.unwrap() - 0.02f64.sqrt() / 10.0).abs() < 1e-12);
    assert_eq!(cell.seeds, [1, 2]);
}

#[test]
fn findings_are_computed_from_the_runs() {
    let (_dir, report) = report();
    let largest = |model: &str, task: &str| {
        let p = report
            .findings
            .prunable
            .iter()
            .find(|p| p.model == model && p.task == task && p.arm.label() == "global-l1/default/hold");
        p.unwrap().largest_within
    };
    assert_eq!(largest("gpt2", "sst2"), Some(0.5), "0.9025 is within 1 point of 0.91, 0.81 is not");
    assert_eq!(largest("all-MiniLM-L6-v2", "sst2"), Some(0.9), "0.873 is within 1 point of 0.88");
    assert_eq!(largest("gpt2", "cola"), None, "0.31 and 0 are far below 0.42");
    let md = std::fs::read_to_string(&report.report).unwrap();
    assert!(
        md.contains(
            "| gpt2 | sst2 | global-l1/default/hold | accuracy | 0.9100 ± 0.0141 | 0.5 | 0.9025 ± 0.0035 | 40.00% | \
             0.5: 0.9025 ± 0.0035 (-0.7), 0.9: 0.8100 ± 0.0141 (-10.0) |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| gpt2 | cola | global-l1/default/hold | mcc | 0.4200 ± 0.0283 | none of those tested |"),
        "{md}"
    );

    // Flaw 1: the seed scope zeroes 0.5% of all parameters where the default scope zeroes 40%.
    let pair = &report.findings.scope[0];
    assert!(pair.exact);
    assert_eq!(pair.flawed.arm.label(), "global-l1/seed/hold");
    assert!((pair.flawed.all_after.unwrap().mean - 0.005).abs() < 1e-12);
    assert!((pair.corrected.as_ref().unwrap().all_after.unwrap().mean - 0.4).abs() < 1e-12);
    assert!(
        md.contains("| gpt2 | sst2 | 0.5 | global-l1/seed/hold | 0.50% | 0.9150 ± 0.0000 | global-l1/default/hold | 40.00% | 0.9025 ± 0.0035 | +0.0125 |"),
        "{md}"
    );
    // Flaw 2: released masks let the pruned weights regrow; held ones stay at 50%.
    assert!(
        md.contains("| gpt2 | sst2 | 0.5 | global-l1/default/release | 50.00% → 0% | 0.9100 ± 0.0000 | global-l1/default/hold | 50.00% → 50.00% | 0.9025 ± 0.0035 | +0.0075 |"),
        "{md}"
    );
    // The fixed note on the study's labels, and the set-up from the files.
    assert!(md.contains("GPT-2 as \"Encoder-Only\" and DeBERTa as \"Decoder-Only\""));
    assert!(md.contains("longformer-base-4096"));
    assert!(md.contains("# prunelab report: smoke"));
    assert!(md.contains("| grid: `amounts` | 0.5, 0.9 |"), "{md}");
    assert!(md.contains("| backend | cuda (28 runs) |"), "{md}");
    assert!(md.contains("| prunelab commit | abc123def456 (27 runs), not recorded (1 run) |"), "{md}");
}

#[test]
fn the_set_up_names_the_hardware() {
    let (_dir, report) = report();
    let md = std::fs::read_to_string(&report.report).unwrap();
    assert!(md.contains("| hardware | NVIDIA H200 (×1); Test CPU, 16 threads ("), "{md}");
}

#[test]
fn failures_and_skips_are_listed_with_their_reasons() {
    let (_dir, report) = report();
    let md = std::fs::read_to_string(&report.report).unwrap();
    assert!(md.contains(
        "| all-MiniLM-L6-v2 | cola | global-l1/default/hold | 0.9 | 2 | failed | CUDA out of memory while allocating 2 GiB | `runs/all-MiniLM-L6-v2/cola/global-l1-default-hold/0.9/seed-2/result.json` |"
    ), "{md}");
    assert!(md.contains("| allenai/led-base-16384 | cola | LED is not implemented yet | `skipped.json` |"), "{md}");
}

#[test]
fn plots_are_written_as_png_and_svg_and_linked() {
    let (dir, report) = report();
    let md = std::fs::read_to_string(&report.report).unwrap();
    let out = dir.path().join("report");
    let kinds: Vec<_> = report.plots.iter().map(|p| p.png.as_str()).collect();
    for expected in [
        "plots/metric-gpt2-sst2.png",
        "plots/speed-all-MiniLM-L6-v2-cola.png",
        "plots/weights-gpt2.png",
        "plots/layers-gpt2-sst2-global-l1-default-release.png",
    ] {
        assert!(kinds.contains(&expected), "{expected} not in {kinds:?}");
    }
    // 4 × (metric, speed, layers of 1 arm) + 2 extra arms' layers + weights.
    assert_eq!(report.plots.len(), 4 * 3 + 2 + 1);
    for plot in &report.plots {
        let png = std::fs::read(out.join(&plot.png)).unwrap();
        assert!(png.len() > 1000, "{}", plot.png);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{}", plot.png);
        let svg = std::fs::read_to_string(out.join(&plot.svg)).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{}", plot.svg);
        assert!(svg.contains("<text"), "{} has no text", plot.svg);
        assert!(md.contains(&format!("]({})", plot.png)) && md.contains(&format!("]({})", plot.svg)));
    }
}

#[test]
fn the_output_is_deterministic_and_not_read_back() {
    let (dir, first) = report();
    // The report directory lies inside the input: generating again must not read it.
    let again = generate(dir.path(), &dir.path().join("report")).unwrap();
    assert_eq!(again.inputs.runs.len(), first.inputs.runs.len());
    let other = dir.path().join("elsewhere");
    let second = generate(dir.path(), &other).unwrap();
    for file in ["REPORT.md", "results.csv", "table.md", "plots/metric-gpt2-sst2.png", "plots/weights-gpt2.svg"] {
        let a = std::fs::read(dir.path().join("report").join(file)).unwrap();
        let b = std::fs::read(other.join(file)).unwrap();
        assert!(a == b, "{file} differs between two runs");
    }
    assert_eq!(second.inputs.runs.len(), first.inputs.runs.len());
    // The output directory may be the input directory itself.
    let same = generate(dir.path(), dir.path()).unwrap();
    assert_eq!(same.inputs.runs.len(), first.inputs.runs.len());
    // REPORT.md says where its input directory is, seen from the report's folder.
    let says = |out: &std::path::Path| std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    assert!(says(dir.path()).contains("(`.` from this file's folder)"), "{}", says(dir.path()));
    assert!(says(&other).contains("(`..` from this file's folder)"));
    let nested = dir.path().join("a").join("b");
    generate(dir.path(), &nested).unwrap();
    assert!(says(&nested).contains("(`../..` from this file's folder)"));
}

#[test]
fn missing_runs_make_findings_say_not_enough_data() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec {
        model: "gpt2",
        task: "sst2",
        scheme: "global-l1",
        scope: "default",
        mask_mode: "hold",
        amount: 0.5,
        seed: 1,
        main: 0.9,
        before: (400, 800, 400, 1000),
        after: (400, 800, 400, 1000),
    };
    add(dir.path(), spec);
    let report = generate(dir.path(), &dir.path().join("out")).unwrap();
    let md = std::fs::read_to_string(&report.report).unwrap();
    assert!(
        md.contains(
            "| gpt2 | sst2 | global-l1/default/hold | accuracy | not enough data (no dense run) | not enough data |"
        ),
        "{md}"
    );
    assert!(md.contains("Not enough data: no finished run with `--scope seed`."), "{md}");
    assert!(md.contains("Not enough data: no finished run with `mask_mode: release`."), "{md}");
    assert!(md.contains("Not enough data: no `stats.json` files."), "{md}");
    assert!(md.contains("Skipped cells: none."), "{md}");
}

#[test]
fn a_malformed_result_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("runs/x/result.json");
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    std::fs::write(&bad, "{\"status\": \"finished\", ").unwrap();
    let err = generate(dir.path(), &dir.path().join("out")).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}: EOF while parsing", bad.display())), "{err}");

    std::fs::write(&bad, r#"{"status": "finished", "model": "gpt2", "task": 2}"#).unwrap();
    let err = generate(dir.path(), &dir.path().join("out")).unwrap_err().to_string();
    assert_eq!(err, format!("{}: invalid type: integer `2`, expected a string at line 1 column 49", bad.display()));

    std::fs::write(&bad, "{\"status\": \"finished\", \"model\": \"gpt2\", \"task\": \"sst2\",\n \"pruning\": {\"scheme\": \"nm\", \"amount\": \"half\"}}")
        .unwrap();
    let err = generate(dir.path(), &dir.path().join("out")).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}: invalid type: string \"half\", expected f64 at line 2", bad.display())),
        "{err}"
    );

    let missing = dir.path().join("nothing-here");
    let err = generate(&missing, &dir.path().join("out")).unwrap_err().to_string();
    assert!(err.contains("is not a directory"), "{err}");
}

/// Every result file the repository carries (those of earlier versions, before the record had a
/// schema, and the newer ones) reads as a run record, and the committed report's inputs make a
/// report.
#[test]
fn every_committed_result_file_reads() {
    fn walk(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.file_name().is_some_and(|n| n == "result.json") {
                found.push(path);
            }
        }
    }
    let reports = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../reports");
    let mut found = Vec::new();
    walk(&reports, &mut found);
    assert!(found.len() >= 50, "the committed grids: {}", found.len());
    for path in &found {
        let record = prunelab_record::RunRecord::read(path).unwrap_or_else(|e| panic!("{e}"));
        assert!(record.schema <= prunelab_record::SCHEMA, "{}", path.display());
    }
    let out = tempfile::tempdir().unwrap();
    let report = generate(&reports.join("minilm-h200-2026-11-29"), out.path()).unwrap();
    assert_eq!(report.inputs.runs.len(), 44, "the minilm grid's 44 cells");
}
