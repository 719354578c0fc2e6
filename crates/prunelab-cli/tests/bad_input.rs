//! Wrong input, run as a user runs it: every case exits 1 with one `error:` line (or block) that
//! names the file and what is wrong in it, and never panics. Each test here is a row of
//! docs/BAD_INPUT.md; keep the two in step.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{fixture, prunelab, text};
use serde_json::{Value, json};

/// Tensors of a safetensors file: name → (dtype, shape, little-endian bytes).
type Tensors = BTreeMap<String, (String, Vec<usize>, Vec<u8>)>;

/// Read a safetensors file by hand (its metadata dropped): the test edits what a library would
/// refuse to write.
fn read_tensors(path: &Path) -> Tensors {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    header
        .into_iter()
        .filter(|(k, _)| k != "__metadata__")
        .map(|(k, v)| {
            let offset = |i: usize| v["data_offsets"][i].as_u64().unwrap() as usize;
            let shape = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
            (k, (v["dtype"].as_str().unwrap().to_owned(), shape, data[offset(0)..offset(1)].to_vec()))
        })
        .collect()
}

fn write_tensors(path: &Path, tensors: &Tensors) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, (dtype, shape, bytes)) in tensors {
        let offsets = [data.len(), data.len() + bytes.len()];
        header.insert(name.clone(), json!({"dtype": dtype, "shape": shape, "data_offsets": offsets}));
        data.extend_from_slice(bytes);
    }
    let mut head = serde_json::to_vec(&header).unwrap();
    head.resize(head.len().next_multiple_of(8), b' ');
    let mut out = (head.len() as u64).to_le_bytes().to_vec();
    out.extend(head);
    out.extend(data);
    std::fs::write(path, out).unwrap();
}

/// A copy of the `bert-tiny` fixture with its weights edited.
fn edited_bert(edit: impl FnOnce(&mut Tensors)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = PathBuf::from(fixture("bert-tiny"));
    std::fs::copy(src.join("config.json"), dir.path().join("config.json")).unwrap();
    let mut tensors = read_tensors(&src.join("model.safetensors"));
    edit(&mut tensors);
    write_tensors(&dir.path().join("model.safetensors"), &tensors);
    dir
}

/// A GLUE directory with the SST-2 fixture files, `dev.tsv` replaced by `dev`.
fn sst2_with_dev(dev: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let glue = Path::new(env!("CARGO_MANIFEST_DIR")).join("../prunelab-glue/tests/fixtures/glue/SST-2");
    std::fs::create_dir(dir.path().join("SST-2")).unwrap();
    for split in ["train", "dev", "test"] {
        std::fs::copy(glue.join(format!("{split}.tsv")), dir.path().join(format!("SST-2/{split}.tsv"))).unwrap();
    }
    std::fs::write(dir.path().join("SST-2/dev.tsv"), dev).unwrap();
    dir
}

/// Exit code 1, `error: ` first, every expected piece in the message, no panic; the message.
fn assert_error(out: &Output, pieces: &[&str]) -> String {
    let (_, stderr) = text(out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let message = stderr.lines().skip_while(|l| !l.starts_with("error: ")).collect::<Vec<_>>().join("\n");
    assert!(!message.is_empty(), "no `error:` line: {stderr}");
    for piece in pieces {
        assert!(message.contains(piece), "{piece:?} not in: {message}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    message
}

fn model_info(dir: &Path) -> Output {
    prunelab(&["model", "info", dir.to_str().unwrap()])
}

fn data_stats(dir: &Path) -> Output {
    prunelab(&["data", "stats", "--task", "sst2", "--data-dir", dir.to_str().unwrap()])
}

#[test]
fn truncated_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let src = PathBuf::from(fixture("bert-tiny"));
    std::fs::copy(src.join("config.json"), dir.path().join("config.json")).unwrap();
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), &bytes[..bytes.len() - 10]).unwrap();
    assert_error(
        &model_info(dir.path()),
        &[&format!(
            "model.safetensors: invalid safetensors file: incomplete metadata, file not fully covered (the file has {} bytes; truncated?)",
            bytes.len() - 10
        )],
    );
    // Cut inside the header.
    std::fs::write(dir.path().join("model.safetensors"), &bytes[..100]).unwrap();
    assert_error(
        &model_info(dir.path()),
        &["model.safetensors: invalid safetensors file: invalid header length (the file has 100 bytes; truncated?)"],
    );
}

#[test]
fn tensor_with_the_wrong_shape() {
    let dir = edited_bert(|t| t.get_mut("bert.embeddings.token_type_embeddings.weight").unwrap().1 = vec![1, 64]);
    assert_error(
        &model_info(dir.path()),
        &[
            "model.safetensors does not fit the bert model:",
            "tensor bert.embeddings.token_type_embeddings.weight has shape [1, 64] in the checkpoint, the model needs [2, 32]",
        ],
    );
}

#[test]
fn tensor_with_the_wrong_dtype() {
    let dir = edited_bert(|t| t.get_mut("bert.pooler.dense.bias").unwrap().0 = "I32".into());
    assert_error(
        &model_info(dir.path()),
        &["model.safetensors: tensor bert.pooler.dense.bias has dtype I32, expected a float type"],
    );
}

#[test]
fn missing_shard() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture("bert-tiny-sharded")).unwrap() {
        let path = entry.unwrap().path();
        if !path.ends_with("model-00002-of-00003.safetensors") {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    assert_error(
        &model_info(dir.path()),
        &["model.safetensors.index.json: shard ", "model-00002-of-00003.safetensors (holding ", " tensors) is missing"],
    );
}

#[test]
fn shard_outside_the_model_directory() {
    let dir = tempfile::tempdir().unwrap();
    let src = PathBuf::from(fixture("bert-tiny-sharded"));
    std::fs::copy(src.join("config.json"), dir.path().join("config.json")).unwrap();
    let index = json!({"weight_map": {"bert.pooler.dense.bias": "../model-00001-of-00003.safetensors"}});
    std::fs::write(dir.path().join("model.safetensors.index.json"), index.to_string()).unwrap();
    assert_error(
        &model_info(dir.path()),
        &[
            "model.safetensors.index.json: weight_map[\"bert.pooler.dense.bias\"]: shard \"../model-00001-of-00003.safetensors\"",
        ],
    );
}

#[test]
fn config_heads_do_not_divide_the_hidden_size() {
    let dir = tempfile::tempdir().unwrap();
    let src = PathBuf::from(fixture("bert-tiny"));
    let mut config: Value = serde_json::from_slice(&std::fs::read(src.join("config.json")).unwrap()).unwrap();
    config["num_attention_heads"] = json!(5);
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    std::fs::copy(src.join("model.safetensors"), dir.path().join("model.safetensors")).unwrap();
    assert_error(
        &model_info(dir.path()),
        &["config.json: key \"num_attention_heads\": 5 heads do not divide the hidden size 32"],
    );
}

#[test]
fn config_with_absurd_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let src = PathBuf::from(fixture("bert-tiny"));
    std::fs::write(dir.path().join("config.json"), r#"{"model_type": "bert", "num_hidden_layers": 100000000000000}"#)
        .unwrap();
    std::fs::copy(src.join("model.safetensors"), dir.path().join("model.safetensors")).unwrap();
    assert_error(
        &model_info(dir.path()),
        &["config.json: key \"num_hidden_layers\": 100000000000000 layers are more than prunelab accepts (4096)"],
    );
}

#[test]
fn num_labels_that_does_not_match_the_task() {
    // A 3-class model (config and stored head agree) evaluated on SST-2, which has 2 classes.
    let dir = edited_bert(|t| {
        t.insert("classifier.weight".into(), ("F32".into(), vec![3, 32], vec![0; 3 * 32 * 4]));
        t.insert("classifier.bias".into(), ("F32".into(), vec![3], vec![0; 3 * 4]));
    });
    let config_path = dir.path().join("config.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["num_labels"] = json!(3);
    std::fs::write(&config_path, config.to_string()).unwrap();
    let glue = Path::new(env!("CARGO_MANIFEST_DIR")).join("../prunelab-glue/tests/fixtures");
    let out = prunelab(&[
        "evaluate",
        dir.path().to_str().unwrap(),
        "--task",
        "sst2",
        "--data-dir",
        glue.join("glue").to_str().unwrap(),
        "--tokenizer",
        glue.join("wordlevel-tokenizer.json").to_str().unwrap(),
    ]);
    assert_error(
        &out,
        &[
            "config.json: the model is a 3-label classifier (id2label/num_labels) but the task has 2 labels",
            "tensor classifier.weight has shape [3, 32] in the checkpoint, the model needs [2, 32]",
        ],
    );
}

#[test]
fn tsv_row_with_a_stray_tab() {
    let dir = sst2_with_dev("sentence\tlabel\ngood \t1\nbad\tfilm \t0\n");
    assert_error(&data_stats(dir.path()), &["SST-2/dev.tsv:3: expected 2 tab-separated columns, found 3"]);
}

#[test]
fn tsv_text_that_is_not_utf8() {
    let dir = sst2_with_dev("");
    std::fs::write(dir.path().join("SST-2/dev.tsv"), b"sentence\tlabel\nbad \xff\t0\n").unwrap();
    assert_error(&data_stats(dir.path()), &["SST-2/dev.tsv:2: column 1 is not valid UTF-8"]);
}

#[test]
fn empty_split() {
    let dir = sst2_with_dev("sentence\tlabel\n");
    assert_error(&data_stats(dir.path()), &["SST-2/dev.tsv: the dev split of sst2 has no rows"]);
}

#[test]
fn a_model_file_given_as_masks() {
    let out =
        prunelab(&["prune", &fixture("bert-tiny"), "--masks", &format!("{}/model.safetensors", fixture("bert-tiny"))]);
    assert_error(
        &out,
        &["model.safetensors: invalid file: not a prunelab mask file (no metadata format = prunelab-masks-v1)"],
    );
}

/// bf16 mixed precision on a backend without bf16 kernels: refused before any work.
#[test]
#[cfg(not(any(feature = "cuda", feature = "wgpu")))]
fn bf16_on_a_backend_without_it() {
    let out = prunelab(&["--precision", "bf16", "model", "info", &fixture("bert-tiny")]);
    assert_error(&out, &["--precision bf16 needs the cuda backend; this prunelab is built with ndarray"]);
}

/// cuBLAS products in a build without the `cublas` feature: refused before any work, naming the
/// feature and the alternative.
#[test]
#[cfg(not(feature = "cublas"))]
fn cublas_products_without_the_feature() {
    for gemm in ["cublas", "cublas-f32"] {
        let out = prunelab(&["--gemm", gemm, "model", "info", &fixture("bert-tiny")]);
        assert_error(
            &out,
            &[&format!("--gemm {gemm} needs a build with --features cublas (cuda)"), "(use --gemm auto or burn)"],
        );
    }
}

/// No network: a Hub id that is not in the cache while the Hub cannot be reached (here an endpoint
/// on a closed loopback port) is one error saying how to go on without the network.
#[test]
fn an_unreachable_hub_says_how_to_work_offline() {
    let cache = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_prunelab"))
        .args(["model", "info", "org/not-cached"])
        .env_remove("RUST_LOG")
        .env_remove("HF_HUB_OFFLINE")
        .env("HF_HOME", cache.path())
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_error(
        &out,
        &[
            "cannot reach the Hugging Face Hub for config.json",
            "run once with network",
            "a model directory instead of a Hub id",
        ],
    );
}
