//! End-to-end tests of the GLUE data path on self-written fixtures (always run), and on the
//! official GLUE files in `../shared/data/glue` (run where that folder exists, else skipped
//! with a message — it is present for prunelab's developers and CI, never for users).
#![allow(clippy::print_stderr)] // skipped tests say why on stderr

use std::path::{Path, PathBuf};

use prunelab_glue::task::{MainMetric, TaskSpec, TsvLayout};
use prunelab_glue::{GlueSource, GlueTask, Split, TextEncoder, stats, tsv};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn tokenizer() -> TextEncoder {
    TextEncoder::from_file(fixtures().join("wordlevel-tokenizer.json")).unwrap()
}

/// `../shared` beside the repository root, if present.
fn shared() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    dir.join("data/glue").is_dir().then_some(dir)
}

#[test]
fn fixture_splits_load_with_labels_and_indices() {
    let source = GlueSource::Dir(fixtures().join("glue"));
    let train = source.load(GlueTask::Cola, Split::Train).unwrap();
    assert_eq!(train.len(), 3);
    assert_eq!(train.examples[1].text_a, "Left Bill the \"movie\".");
    assert_eq!(train.label_counts(), [1, 2]);
    let dev = source.load(GlueTask::Cola, Split::Dev).unwrap();
    assert_eq!(dev.examples.last().unwrap().text_a, "Fine it is is.", "no trailing newline");
    let test = source.load(GlueTask::Sst2, Split::Test).unwrap();
    assert_eq!(test.examples.iter().map(|e| e.idx).collect::<Vec<_>>(), [0, 1]);
}

#[test]
fn encoding_adds_special_tokens_and_truncates() {
    let source = GlueSource::Dir(fixtures().join("glue"));
    let dev = source.load(GlueTask::Sst2, Split::Dev).unwrap();
    let enc = tokenizer();
    assert_eq!(enc.pad_id(), 0);
    let encoded = enc.encode(&dev.examples).unwrap();
    // [CLS] a fine film [SEP]
    assert_eq!(encoded[0].input_ids, [2, 5, 15, 6, 3]);
    assert_eq!(encoded[0].label, Some(1));
    let short = tokenizer().with_max_length(4).unwrap();
    assert_eq!(short.encode(&dev.examples).unwrap()[0].input_ids, [2, 5, 15, 3], "[SEP] kept when truncating");
    assert_eq!(short.untruncated_lengths(&dev.examples).unwrap(), [5, 5]);
}

/// A sentence-pair task is one table entry: this MRPC-shaped entry is declared here, not in
/// the crate, and goes through the same reader and tokenizer.
#[test]
fn a_pair_task_is_a_table_entry_away() {
    const PAIR: TaskSpec = TaskSpec {
        name: "pairs",
        dir: "PAIRS",
        hub_config: "pairs",
        hub_text_columns: &["sentence1", "sentence2"],
        label_values: &["0", "1"],
        class_names: &["different", "equivalent"],
        labelled: TsvLayout {
            header: Some("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"),
            columns: 5,
            text_a: 3,
            text_b: Some(4),
            label: Some(0),
            index: None,
        },
        test: TsvLayout {
            header: Some("index\t#1 ID\t#2 ID\t#1 String\t#2 String"),
            columns: 5,
            text_a: 3,
            text_b: Some(4),
            label: None,
            index: Some(0),
        },
        main_metric: MainMetric::F1,
    };
    let text = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t7\t8\ta film\tbad\n";
    let rows = tsv::parse(text.as_bytes(), Path::new("pairs.tsv"), &PAIR, Split::Train).unwrap();
    assert_eq!(rows[0].text_b.as_deref(), Some("bad"));
    let encoded = tokenizer().encode(&rows).unwrap();
    assert_eq!(encoded[0].input_ids, [2, 5, 6, 3, 8, 3]);
    assert_eq!(encoded[0].token_type_ids, [0, 0, 0, 0, 1, 1]);
}

#[test]
fn missing_tokenizer_is_named() {
    let err = TextEncoder::from_file("/nonexistent/tokenizer.json").unwrap_err();
    assert_eq!(
        err.to_string(),
        "tokenizer /nonexistent/tokenizer.json: no such file (expected a Hugging Face tokenizer.json)"
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("tokenizer.json");
    std::fs::write(&bad, "{\"model\": 3}").unwrap();
    let err = TextEncoder::from_file(&bad).unwrap_err();
    assert!(err.to_string().starts_with(&format!("tokenizer {}: ", bad.display())), "{err}");
}

#[test]
fn official_glue_counts_and_balances() {
    let Some(shared) = shared() else {
        eprintln!("skipped: ../shared/data/glue is absent (it exists for prunelab developers and CI only)");
        return;
    };
    let source = GlueSource::Dir(shared.join("data/glue"));
    let expect = [
        (GlueTask::Sst2, [67_349, 872, 1_821], [(29_780, 37_569), (428, 444)]),
        (GlueTask::Cola, [8_551, 1_043, 1_063], [(2_528, 6_023), (322, 721)]),
    ];
    for (task, rows, balances) in expect {
        for (split, n) in Split::ALL.into_iter().zip(rows) {
            let data = source.load(task, split).unwrap();
            assert_eq!(data.len(), n, "{task} {split}");
            if split == Split::Test {
                assert!(data.examples.iter().all(|e| e.label.is_none()));
                let idx: Vec<u32> = data.examples.iter().map(|e| e.idx).collect();
                assert_eq!(idx, (0..n as u32).collect::<Vec<_>>(), "{task} test index column");
            } else {
                let [neg, pos] = data.label_counts()[..] else { panic!("binary") };
                let expected = balances[split as usize];
                assert_eq!((neg, pos), expected, "{task} {split} label balance");
            }
        }
    }
}

#[test]
fn official_glue_with_the_real_gpt2_tokenizer() {
    let Some(shared) = shared() else {
        eprintln!("skipped: ../shared is absent (it exists for prunelab developers and CI only)");
        return;
    };
    let enc = TextEncoder::from_file(shared.join("data/tokenizers/gpt2/tokenizer.json")).unwrap();
    assert_eq!(enc.pad_id(), 50_256, "GPT-2 pads with <|endoftext|>");
    let dev = GlueSource::Dir(shared.join("data/glue")).load(GlueTask::Cola, Split::Dev).unwrap();
    let s = stats::split_stats(&dev, Some(&enc)).unwrap();
    let lengths = s.lengths.unwrap();
    assert_eq!(s.rows, 1_043);
    assert!(lengths.p50 > 5.0 && lengths.p50 < 15.0, "{lengths:?}");
    assert!(lengths.max < 128, "CoLA sentences are short: {lengths:?}");
    // GPT-2 adds no special tokens: "Bill left." is 3 BPE tokens.
    let bill = prunelab_glue::Example { idx: 0, text_a: "Bill left.".into(), text_b: None, label: None };
    assert_eq!(enc.encode(&[bill]).unwrap()[0].input_ids.len(), 3);
}
