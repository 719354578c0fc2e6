//! The `prunelab model info` command, run as a user runs it.

mod common;

use std::path::Path;

use common::{fixture, prunelab};

#[test]
fn info_of_a_gpt2_checkpoint_in_the_hub_layout() {
    let out = prunelab(&["model", "info", &fixture("gpt2-tiny-hub")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("model_type  gpt2"), "{text}");
    assert!(text.contains("head        newly initialised: score.weight (64 parameters"), "{text}");
    assert!(text.contains("ignored     h.0.attn.bias, h.1.attn.bias"), "{text}");
    assert!(text.contains("parameters  30,752 (30.8k)"), "{text}");
    let layers: Vec<&str> = text.lines().skip_while(|l| !l.starts_with("layer")).skip(1).collect();
    assert_eq!(layers.len(), 2, "{text}");
    assert!(layers[1].split_whitespace().eq(["1", "4,224", "8,352", "128", "12,704"]), "{text}");
}

#[test]
fn info_of_deberta_checkpoints() {
    let out = prunelab(&["model", "info", &fixture("deberta-v2-tiny")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("model_type  deberta-v2"), "{text}");
    assert!(text.contains("position_buckets 8"), "{text}");
    assert!(text.contains("head        loaded from the checkpoint"), "{text}");
    assert_eq!(text.lines().skip_while(|l| !l.starts_with("layer")).skip(1).count(), 2, "{text}");

    let out = prunelab(&["model", "info", &fixture("deberta-tiny-base")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("model_type  deberta"), "{text}");
    assert!(
        text.contains("newly initialised: pooler.dense.weight, pooler.dense.bias, classifier.weight, classifier.bias"),
        "{text}"
    );
}

#[test]
fn info_json_lists_every_tensor() {
    let out = prunelab(&["model", "info", &fixture("bert-tiny"), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["model_type"], "bert");
    assert_eq!(v["load"]["newly_initialized"].as_array().unwrap().len(), 0, "bert-tiny has its head");
    let tensors = v["tensors"].as_array().unwrap();
    assert!(
        tensors
            .iter()
            .any(|t| t["key"] == "bert.encoder.layer.1.attention.self.query.weight" && t["module"] == "linear")
    );
}

#[test]
fn unknown_model_type_and_missing_dirs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"model_type": "t5"}"#).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), b"").unwrap();
    let out = prunelab(&["model", "info", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "model_type \"t5\" is not supported (supported: bert, gpt2, longformer, led, deberta, deberta-v2, roberta)"
        ),
        "{err}"
    );

    let out = prunelab(&["model", "info", "./no/such/dir"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such model directory"));

    let out = prunelab(&["model", "info", "gpt2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not in the Hugging Face cache"), "offline Hub miss");
}

#[test]
fn real_minilm_info() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/models/all-MiniLM-L6-v2");
    if !dir.is_dir() {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipped: ../shared/models/all-MiniLM-L6-v2 is absent (developers and CI only)");
        }
        return;
    }
    let out = prunelab(&["model", "info", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("parameters  22,713,986 (22.7M)"), "{text}");
    assert!(text.contains("model.fp16.safetensors (45.4MB, fp16 safetensors, f16)"), "{text}");
    assert_eq!(text.lines().skip_while(|l| !l.starts_with("layer")).skip(1).count(), 6, "{text}");
}
