//! The `prunelab data stats` command, run as a user runs it.
#![allow(clippy::print_stderr)] // skipped tests say why on stderr

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

fn prunelab(args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prunelab"));
    cmd.args(args).env_remove("RUST_LOG").env("HF_HUB_OFFLINE", "1");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn glue_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../prunelab-glue/tests/fixtures")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn stats_of_a_glue_directory_with_a_tokenizer() {
    let glue = glue_fixtures().join("glue");
    let tok = glue_fixtures().join("wordlevel-tokenizer.json");
    let out = prunelab(
        &[
            "data",
            "stats",
            "--task",
            "sst2",
            "--data-dir",
            glue.to_str().unwrap(),
            "--tokenizer",
            tok.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("SST-2 (sst2), main metric: accuracy"), "{text}");
    assert!(lines[1].contains("negative") && lines[1].contains("tok p95") && lines[1].contains(">128"), "{text}");
    let train: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(train[..6], ["train", "3", "1", "(33.3%)", "2", "(66.7%)"], "{text}");
    assert!(lines[4].starts_with("test") && lines[4].contains('-'), "{text}");
}

#[test]
fn json_output_parses() {
    let glue = glue_fixtures().join("glue");
    let out = prunelab(&["data", "stats", "--task", "cola", "--data-dir", glue.to_str().unwrap(), "--json"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["main_metric"], "matthews");
    assert_eq!(v["splits"][0]["rows"], 3);
    assert_eq!(v["splits"][2]["split"], "test");
}

#[test]
fn missing_data_dir_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = prunelab(&["data", "stats", "--task", "cola", "--data-dir", dir.path().to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("GLUE cola data not found under"), "{err}");
    assert!(err.contains("CoLA/train.tsv") && err.contains("CoLA/test.tsv"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_row_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("SST-2")).unwrap();
    for split in ["train", "dev", "test"] {
        std::fs::copy(
            glue_fixtures().join(format!("glue/SST-2/{split}.tsv")),
            dir.path().join(format!("SST-2/{split}.tsv")),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("SST-2/dev.tsv"), "sentence\tlabel\ngood \t1\nhmm \t5\n").unwrap();
    let out = prunelab(&["data", "stats", "--task", "sst2", "--data-dir", dir.path().to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("SST-2/dev.tsv:3: label \"5\" is not one of 0, 1"), "{err}");
}

#[test]
fn hub_source_reads_the_offline_cache() {
    use arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
    let cache = tempfile::tempdir().unwrap();
    let repo = cache.path().join("datasets--nyu-mll--glue");
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "feed").unwrap();
    for (split, n) in [("train", 4), ("validation", 2), ("test", 3)] {
        let path = repo.join(format!("snapshots/feed/sst2/{split}-00000-of-00001.parquet"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let labels: Vec<i64> = (0..n).map(|i| if split == "test" { -1 } else { i % 2 }).collect();
        let batch = RecordBatch::try_from_iter([
            ("sentence", Arc::new(StringArray::from(vec!["a good film "; n as usize])) as ArrayRef),
            ("label", Arc::new(Int64Array::from(labels))),
            ("idx", Arc::new(Int32Array::from_iter_values(0..n as i32))),
        ])
        .unwrap();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }
    let out = prunelab(&["data", "stats", "--task", "sst2", "--hub"], &[("HF_HUB_CACHE", cache.path())]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<String> = stdout(&out)
        .lines()
        .skip(2)
        .take(3)
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(rows, ["train 4", "dev 2", "test 3"]);

    // CoLA is not cached: offline mode says so instead of reaching for the network.
    let out = prunelab(&["data", "stats", "--task", "cola", "--hub"], &[("HF_HUB_CACHE", cache.path())]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is not in the Hugging Face cache"), "{}", stderr(&out));
}

#[test]
fn official_cola_counts() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if !shared.join("data/glue").is_dir() {
        eprintln!("skipped: ../shared/data/glue is absent (it exists for prunelab developers and CI only)");
        return;
    }
    let glue = shared.join("data/glue");
    let tok = shared.join("data/tokenizers/gpt2/tokenizer.json");
    let out = prunelab(
        &[
            "data",
            "stats",
            "--task",
            "cola",
            "--data-dir",
            glue.to_str().unwrap(),
            "--tokenizer",
            tok.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for (split, rows) in [("train", "8,551"), ("dev", "1,043"), ("test", "1,063")] {
        assert!(text.lines().any(|l| l.split_whitespace().take(2).eq([split, rows])), "{split} {rows}:\n{text}");
    }
}
