//! Parity with Hugging Face transformers: tiny random BERT, RoBERTa, GPT-2, DeBERTa, DeBERTa-v2,
//! Longformer and LED models and the reference outputs `scripts/make_fixtures.py` computed for
//! them with PyTorch (transformers 5.17, eager attention, f32) must be reproduced to
//! max |Δ| ≤ 1e-4 for every layer's hidden states, the pooled output and the logits. Another test
//! does the same for the real all-MiniLM-L6-v2 weights in `../shared` when present.

#![allow(clippy::print_stderr)] // skipped tests say why on stderr

mod common;

use common::{B, assert_close, fixtures, int2, read_tensors, shared};
use prunelab_hub::Hub;
use prunelab_models::{Classifier, ClassifierOutput, ModelInput, ModelSource, load_classifier};

const TOL: f32 = 1e-4;

fn load(dir: &str, num_labels: usize) -> prunelab_models::LoadedClassifier<B> {
    let files = ModelSource::Dir(fixtures().join(dir)).resolve(&Hub::new("/nonexistent", true)).unwrap();
    load_classifier::<B>(&files, num_labels, &Default::default()).unwrap()
}

/// An encoder fixture's references — the embedding output, every layer's output (padding
/// positions included: BERT and RoBERTa compute them exactly as transformers does), the pooled
/// output where it has one, the logits — reproduced from its inputs (and token types where
/// stored).
fn encoder_matches(dir: &str, layers: usize) {
    let loaded = load(dir, 2);
    assert!(loaded.report.newly_initialized.is_empty(), "{:?}", loaded.report.newly_initialized);
    let r = read_tensors(&fixtures().join(dir).join("reference.safetensors"));
    let out = loaded.model.forward_detailed(ModelInput {
        input_ids: int2(&r["input_ids"]),
        attention_mask: int2(&r["attention_mask"]),
        token_type_ids: r.get("token_type_ids").map(int2),
    });
    assert_eq!(out.hidden_states.len(), layers + 1);
    for (i, h) in out.hidden_states.iter().enumerate() {
        assert_close(&format!("{dir} hidden.{i}"), h.to_data(), &r[&format!("hidden.{i}")], None, TOL);
    }
    if let Some(pooled) = r.get("pooled") {
        assert_close(&format!("{dir} pooled"), out.pooled.expect("a pooler").to_data(), pooled, None, TOL);
    }
    assert_close(&format!("{dir} logits"), out.logits.to_data(), &r["logits"], None, TOL);
}

#[test]
fn bert_matches_transformers_layer_by_layer() {
    encoder_matches("bert-tiny", 2);
}

#[test]
fn roberta_matches_transformers_layer_by_layer() {
    encoder_matches("roberta-tiny", 2);
}

#[test]
fn gpt2_matches_transformers_with_left_and_right_padding() {
    let loaded = load("gpt2-tiny", 2);
    assert!(loaded.report.newly_initialized.is_empty());
    let r = read_tensors(&fixtures().join("gpt2-tiny/reference.safetensors"));
    for side in ["right", "left"] {
        let mask = &r[&format!("{side}.attention_mask")];
        let keep: Vec<bool> = mask.clone().convert::<i64>().to_vec::<i64>().unwrap().iter().map(|m| *m == 1).collect();
        assert!(keep.iter().any(|k| !k), "the fixture has padding");
        let out = loaded.model.forward_detailed(ModelInput {
            input_ids: int2(&r[&format!("{side}.input_ids")]),
            attention_mask: int2(mask),
            token_type_ids: None,
        });
        assert_eq!(out.hidden_states.len(), 4, "embeddings, 2 blocks, ln_f");
        // Padding positions are compared out: their values are not defined by the model (rows
        // of left padding attend to nothing; transformers' eager and SDPA paths differ there).
        for i in 0..3 {
            let name = format!("{side}.hidden.{i}");
            assert_close(&format!("gpt2 {name}"), out.hidden_states[i].to_data(), &r[&name], Some(&keep), TOL);
        }
        let name = format!("{side}.final");
        assert_close(&format!("gpt2 {name}"), out.hidden_states[3].to_data(), &r[&name], Some(&keep), TOL);
        let name = format!("{side}.logits");
        assert_close(&format!("gpt2 {name}"), out.logits.to_data(), &r[&name], None, TOL);
    }
}

/// The global-attention cases of the Longformer and LED fixtures: `default` (no mask passed:
/// the model's default), `first` (the first token) and `several` (0–3 global tokens per row, one
/// on padding).
const GLOBAL_CASES: [&str; 3] = ["default", "first", "several"];

/// Longformer with windows [4, 6] over 22-token rows (padded internally to 24), right padding,
/// and each global-attention case. Padding positions are compared too: transformers defines
/// them (zero attention output), and so does prunelab.
#[test]
fn longformer_matches_transformers_with_windows_globals_and_padding() {
    let loaded = load("longformer-tiny", 2);
    assert!(loaded.report.newly_initialized.is_empty(), "{:?}", loaded.report.newly_initialized);
    let Classifier::Longformer(model) = &loaded.model else { panic!("a Longformer") };
    let r = read_tensors(&fixtures().join("longformer-tiny/reference.safetensors"));
    assert_eq!(r["input_ids"].shape.to_vec(), [3, 22]);
    for case in GLOBAL_CASES {
        let (ids, mask) = (int2(&r["input_ids"]), int2(&r["attention_mask"]));
        let out: ClassifierOutput<B> = match r.get(&format!("{case}.global_attention_mask")) {
            Some(global) => model.forward_with_global(ids, mask, None, Some(int2(global))),
            None => {
                loaded.model.forward_detailed(ModelInput { input_ids: ids, attention_mask: mask, token_type_ids: None })
            }
        };
        assert_eq!(out.hidden_states.len(), 3, "embeddings and 2 layers");
        for (i, h) in out.hidden_states.iter().enumerate() {
            let name = format!("{case}.hidden.{i}");
            assert_close(&format!("longformer {name}"), h.to_data(), &r[&name], None, TOL);
        }
        let name = format!("{case}.logits");
        assert_close(&format!("longformer {name}"), out.logits.to_data(), &r[&name], None, TOL);
    }
}

/// LED (window 4, 2 encoder + 2 decoder layers) on the same kind of batch: encoder states,
/// decoder states (decoder inputs shifted right) and the logits at the last eos token.
#[test]
fn led_matches_transformers_with_windows_globals_and_padding() {
    let loaded = load("led-tiny", 2);
    assert!(loaded.report.newly_initialized.is_empty(), "{:?}", loaded.report.newly_initialized);
    let Classifier::Led(model) = &loaded.model else { panic!("an LED") };
    let r = read_tensors(&fixtures().join("led-tiny/reference.safetensors"));
    let shifted = prunelab_models::led::shift_tokens_right(int2(&r["input_ids"]), 1, 2);
    assert_eq!(shifted.to_data(), r["decoder_input_ids"].clone().convert::<i64>(), "shift_tokens_right");
    for case in GLOBAL_CASES {
        let (ids, mask) = (int2(&r["input_ids"]), int2(&r["attention_mask"]));
        let out: ClassifierOutput<B> = match r.get(&format!("{case}.global_attention_mask")) {
            Some(global) => model.forward_with_global(ids, mask, Some(int2(global))),
            None => {
                loaded.model.forward_detailed(ModelInput { input_ids: ids, attention_mask: mask, token_type_ids: None })
            }
        };
        assert_eq!(out.hidden_states.len(), 6, "encoder embeddings + 2 layers, decoder embeddings + 2 layers");
        for (i, h) in out.hidden_states.iter().enumerate() {
            let name =
                if i < 3 { format!("{case}.encoder.hidden.{i}") } else { format!("{case}.decoder.hidden.{}", i - 3) };
            assert_close(&format!("led {name}"), h.to_data(), &r[&name], None, TOL);
        }
        let name = format!("{case}.logits");
        assert_close(&format!("led {name}"), out.logits.to_data(), &r[&name], None, TOL);
    }
}

/// The references tell sliding-window attention from full attention: with windows widened to
/// the whole (padded) sequence, the same weights miss them by far more than the tolerance.
#[test]
fn a_full_attention_shortcut_fails_the_references() {
    let mut lf = load("longformer-tiny", 2).model;
    let r = read_tensors(&fixtures().join("longformer-tiny/reference.safetensors"));
    let Classifier::Longformer(m) = &mut lf else { panic!("a Longformer") };
    for layer in &mut m.longformer.encoder.layer {
        layer.attention.self_attn.one_sided_window = 12;
    }
    let global = Some(int2(&r["several.global_attention_mask"]));
    let out = m.forward_with_global(int2(&r["input_ids"]), int2(&r["attention_mask"]), None, global);
    assert!(max_diff(out.hidden_states[1].to_data(), &r["several.hidden.1"]) > 0.05);

    let mut led = load("led-tiny", 2).model;
    let r = read_tensors(&fixtures().join("led-tiny/reference.safetensors"));
    let Classifier::Led(m) = &mut led else { panic!("an LED") };
    for layer in &mut m.led.encoder.layers {
        layer.self_attn.longformer_self_attn.one_sided_window = 12;
    }
    let out = m.forward_with_global(int2(&r["input_ids"]), int2(&r["attention_mask"]), None);
    assert!(max_diff(out.hidden_states[1].to_data(), &r["default.encoder.hidden.1"]) > 0.05);
}

fn max_diff(a: burn::tensor::TensorData, b: &burn::tensor::TensorData) -> f32 {
    let a = a.convert::<f32>().to_vec::<f32>().unwrap();
    let b = b.clone().convert::<f32>().to_vec::<f32>().unwrap();
    a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The real all-MiniLM-L6-v2 (fp16 file in `../shared`, upcast to f32), tokenized with its own
/// `tokenizer.json` through prunelab-glue: token ids and all 7 hidden states must match.
#[test]
fn real_minilm_matches_transformers() {
    let Some(shared) =
        shared().map(|s| s.join("models/all-MiniLM-L6-v2")).filter(|d| d.join("model.fp16.safetensors").is_file())
    else {
        eprintln!(
            "skipped: ../shared/models/all-MiniLM-L6-v2 is absent (it exists for prunelab developers and CI only)"
        );
        return;
    };
    let r = read_tensors(&fixtures().join("minilm-reference.safetensors"));
    let sentences: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("minilm-reference.json")).unwrap()).unwrap();
    let examples: Vec<prunelab_glue::Example> = sentences["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, s)| prunelab_glue::Example {
            idx: i as u32,
            text_a: s.as_str().unwrap().into(),
            text_b: None,
            label: None,
        })
        .collect();
    let encoder = prunelab_glue::TextEncoder::from_file(shared.join("tokenizer.json")).unwrap();
    let encoded = encoder.encode(&examples).unwrap();
    let batcher =
        prunelab_glue::GlueBatcher { pad_id: encoder.pad_id(), padding_side: Default::default(), token_types: true };
    let batch: prunelab_glue::GlueBatch<B> =
        burn::data::dataloader::batcher::Batcher::batch(&batcher, encoded, &Default::default());
    assert_eq!(
        batch.input_ids.to_data(),
        r["input_ids"].clone().convert::<i64>(),
        "token ids equal the tokenizers library's"
    );

    let files = ModelSource::Dir(shared).resolve(&Hub::new("/nonexistent", true)).unwrap();
    let loaded = load_classifier::<B>(&files, 2, &Default::default()).unwrap();
    assert_eq!(loaded.report.dtype, "f16");
    assert_eq!(loaded.report.newly_initialized, ["classifier.weight", "classifier.bias"]);
    let out = loaded.model.forward_detailed(ModelInput {
        input_ids: batch.input_ids,
        attention_mask: batch.attention_mask,
        token_type_ids: batch.token_type_ids,
    });
    assert_eq!(out.hidden_states.len(), 7);
    for (i, h) in out.hidden_states.iter().enumerate() {
        assert_close(&format!("minilm hidden.{i}"), h.to_data(), &r[&format!("hidden.{i}")], None, TOL);
    }
}

/// A DeBERTa fixture: every position (padding included: transformers computes it the same way,
/// padding queries attending uniformly) of the embedding output and each layer's output, the
/// pooled output and the logits; the hook-captured states are also transformers' own
/// `hidden_states`.
fn deberta_matches(dir: &str, num_labels: usize) {
    let loaded = load(dir, num_labels);
    assert!(loaded.report.newly_initialized.is_empty(), "{:?}", loaded.report.newly_initialized);
    let r = read_tensors(&fixtures().join(format!("{dir}/reference.safetensors")));
    let mask = r["attention_mask"].clone().convert::<i64>().to_vec::<i64>().unwrap();
    assert!(mask.contains(&0) && mask.len() == 3 * 20, "{dir}: padded rows of 20 tokens");
    let out = loaded.model.forward_detailed(ModelInput {
        input_ids: int2(&r["input_ids"]),
        attention_mask: int2(&r["attention_mask"]),
        token_type_ids: Some(int2(&r["token_type_ids"])),
    });
    assert_eq!(out.hidden_states.len(), 3, "embeddings and 2 layers");
    for (i, h) in out.hidden_states.iter().enumerate() {
        let name = format!("hidden.{i}");
        assert_close(&format!("{dir} {name}"), h.to_data(), &r[&name], None, TOL);
        let theirs = &r[&format!("transformers.{name}")];
        assert_close(&format!("{dir} transformers.{name}"), h.to_data(), theirs, None, TOL);
    }
    assert_close(&format!("{dir} pooled"), out.pooled.unwrap().to_data(), &r["pooled"], None, TOL);
    assert_close(&format!("{dir} logits"), out.logits.to_data(), &r["logits"], None, TOL);
}

/// DeBERTa: token types, absolute positions and `embed_proj`; `c2p` and `p2c` over relative
/// distances clamped to 6 (the sequences have 20 tokens).
#[test]
fn deberta_matches_transformers_layer_by_layer() {
    deberta_matches("deberta-tiny", 2);
}

/// DeBERTa-v2 as DeBERTa-v3 configures it (8 log buckets over a range of 32, `share_att_key`,
/// layer-normalised relative embeddings, no absolute positions or token types) plus the
/// encoder convolution.
#[test]
fn deberta_v2_matches_transformers_layer_by_layer() {
    deberta_matches("deberta-v2-tiny", 2);
}

/// DeBERTa-v2's other paths: `pos_key_proj`/`pos_query_proj`, unbucketed distances clamped to
/// 6, token types and absolute positions, `gelu_new` and a `tanh` pooler, three labels.
#[test]
fn deberta_v2_with_own_relative_projections_matches_transformers() {
    deberta_matches("deberta-v2-tiny-plain", 3);
}

/// DeBERTa-v2's SentencePiece (Unigram) tokenizer from its `tokenizer.json`, through
/// prunelab-glue: the ids and token types transformers' `DebertaV2Tokenizer` gives single
/// sentences and pairs (whitespace runs, unknown characters and capitals included).
#[test]
fn deberta_v2_tokenizer_json_matches_transformers() {
    let dir = fixtures().join("deberta-v2-tiny");
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tokenizer-reference.json")).unwrap()).unwrap();
    let cases = reference["cases"].as_array().unwrap();
    let examples: Vec<prunelab_glue::Example> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| prunelab_glue::Example {
            idx: i as u32,
            text_a: c["text_a"].as_str().unwrap().into(),
            text_b: c["text_b"].as_str().map(Into::into),
            label: None,
        })
        .collect();
    let encoder = prunelab_glue::TextEncoder::from_file(dir.join("tokenizer.json")).unwrap();
    assert_eq!(encoder.pad_id(), 0, "[PAD]");
    let encoded = encoder.encode(&examples).unwrap();
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array().unwrap().iter().map(|x| u32::try_from(x.as_u64().unwrap()).unwrap()).collect()
    };
    for (e, c) in encoded.iter().zip(cases) {
        assert_eq!(e.input_ids, ids(&c["input_ids"]), "{}", c["text_a"]);
        assert_eq!(e.token_type_ids, ids(&c["token_type_ids"]), "{}", c["text_a"]);
    }
}
