//! Checkpoint formats and bad checkpoints: every format loads the same weights; every mismatch
//! is reported by key with both shapes; nothing panics.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{B, fixtures, params};
use half::f16;
use prunelab_hub::Hub;
use prunelab_models::{Error, KeyProblem, LoadedClassifier, ModelSource, WeightsFormat, load_classifier};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

fn load_dir(dir: &Path, num_labels: usize) -> prunelab_models::Result<LoadedClassifier<B>> {
    let files = ModelSource::Dir(dir.to_path_buf()).resolve(&Hub::new("/nonexistent", true))?;
    load_classifier::<B>(&files, num_labels, &Default::default())
}

fn load(name: &str) -> LoadedClassifier<B> {
    load_dir(&fixtures().join(name), 2).unwrap()
}

#[test]
fn sharded_and_pytorch_bin_load_the_same_weights() {
    let reference = params(&load("bert-tiny").model);
    for (dir, format) in
        [("bert-tiny-sharded", WeightsFormat::ShardedSafetensors), ("bert-tiny-bin", WeightsFormat::PytorchBin)]
    {
        let loaded = load(dir);
        assert_eq!(loaded.report.format, format);
        assert_eq!(params(&loaded.model), reference, "{dir}");
    }
    assert_eq!(load("bert-tiny-sharded").report.files.len(), 4, "index + 3 shards");
}

#[test]
fn fp16_variant_loads_rounded_weights() {
    let reference = params(&load("bert-tiny").model);
    let loaded = load("bert-tiny-fp16");
    assert_eq!((loaded.report.format, loaded.report.dtype.as_str()), (WeightsFormat::Fp16Safetensors, "f16"));
    for (path, values) in params(&loaded.model) {
        let rounded: Vec<f32> = reference[&path].iter().map(|v| f16::from_f32(*v).to_f32()).collect();
        assert_eq!(values, rounded, "{path}");
    }
}

#[test]
fn base_model_checkpoint_gets_a_new_head_reported() {
    let loaded = load("bert-tiny-base");
    assert_eq!(loaded.report.newly_initialized, ["classifier.weight", "classifier.bias"]);
    let full = params(&load("bert-tiny").model);
    let base = params(&loaded.model);
    for (path, values) in &base {
        if !path.contains("classifier") {
            assert_eq!(values, &full[path], "{path}");
        }
    }
    let bias = base.iter().find(|(k, _)| k.ends_with("classifier.bias")).map(|(_, v)| v).unwrap();
    assert!(bias.iter().all(|b| *b == 0.0), "bias zero-initialised as transformers does");
}

#[test]
fn hub_layout_gpt2_ignores_buffers_and_initialises_score() {
    let loaded = load("gpt2-tiny-hub");
    assert_eq!(loaded.report.newly_initialized, ["score.weight"]);
    assert_eq!(loaded.report.ignored, ["h.0.attn.bias", "h.1.attn.bias"]);
    let full = params(&load("gpt2-tiny").model);
    for (path, values) in params(&loaded.model) {
        if !path.contains("score") {
            assert_eq!(values, full[&path], "{path}");
        }
    }
}

/// An LED generation checkpoint (`LEDForConditionalGeneration`: `lm_head`, `final_logits_bias`, no
/// classification head) loads the same encoder-decoder and gets a new head, reported.
#[test]
fn led_generation_checkpoint_gets_a_new_head_reported() {
    let loaded = load("led-tiny-lm");
    assert_eq!(
        loaded.report.newly_initialized,
        [
            "classification_head.dense.weight",
            "classification_head.dense.bias",
            "classification_head.out_proj.weight",
            "classification_head.out_proj.bias"
        ]
    );
    assert!(loaded.report.ignored.iter().any(|k| k == "final_logits_bias"), "{:?}", loaded.report.ignored);
    let full = params(&load("led-tiny").model);
    for (path, values) in params(&loaded.model) {
        if !path.contains("classification_head") {
            assert_eq!(values, full[&path], "{path}");
        }
    }
}

#[test]
fn longformer_and_led_parameters_group_by_kind_and_layer() {
    use prunelab_models::info::{ParamCounts, ParamKind};
    let infos = load("longformer-tiny").model.param_infos();
    let global =
        infos.iter().find(|p| p.key == "longformer.encoder.layer.1.attention.self.value_global.weight").unwrap();
    assert_eq!((global.shape.as_slice(), global.layer, global.kind), (&[32, 32][..], Some(1), ParamKind::Attention));
    let counts = ParamCounts::of(&infos);
    // Six projections (local and global q/k/v) and the output, each 32*32 + 32.
    assert_eq!(counts.by_layer[&0][&ParamKind::Attention], 7 * (32 * 32 + 32));
    assert_eq!(counts.by_kind[&ParamKind::Head], 32 * 32 + 32 + 32 * 2 + 2);
    let infos = load("led-tiny").model.param_infos();
    let counts = ParamCounts::of(&infos);
    // The shared token embeddings once, encoder and decoder positions.
    assert_eq!(counts.by_kind[&ParamKind::Embeddings], 99 * 32 + 2 * 32 * 32);
    assert_eq!(counts.by_kind[&ParamKind::Head], 32 * 32 + 32 + 32 * 2 + 2);
}

/// A copy of `bert-tiny` whose weights are rewritten by `edit` (name -> (dtype, shape, bytes)).
fn edited_bert(edit: impl FnOnce(&mut BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures().join("bert-tiny/config.json"), dir.path().join("config.json")).unwrap();
    let bytes = std::fs::read(fixtures().join("bert-tiny/model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)> =
        st.tensors().into_iter().map(|(n, v)| (n, (v.dtype(), v.shape().to_vec(), v.data().to_vec()))).collect();
    edit(&mut tensors);
    let views: Vec<(String, TensorView)> =
        tensors.iter().map(|(n, (d, s, b))| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
    std::fs::write(dir.path().join("model.safetensors"), safetensors::serialize(views, None).unwrap()).unwrap();
    dir
}

fn problems(err: Error) -> Vec<KeyProblem> {
    match err {
        Error::Mismatch { problems, .. } => problems,
        other => panic!("expected a mismatch, got {other}"),
    }
}

#[test]
fn missing_unexpected_and_misshapen_tensors_are_all_listed() {
    let dir = edited_bert(|t| {
        t.remove("bert.encoder.layer.1.output.dense.bias");
        let extra = t["bert.pooler.dense.bias"].clone();
        t.insert("bert.encoder.layer.9.extra.weight".into(), extra);
        let (dtype, _, bytes) = t["bert.embeddings.token_type_embeddings.weight"].clone();
        t.insert("bert.embeddings.token_type_embeddings.weight".into(), (dtype, vec![1, 64], bytes));
    });
    let err = load_dir(dir.path(), 2).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("does not fit the bert model"), "{text}");
    assert_eq!(
        problems(err),
        [
            KeyProblem::Shape {
                key: "bert.embeddings.token_type_embeddings.weight".into(),
                found: vec![1, 64],
                expected: vec![2, 32]
            },
            KeyProblem::Missing { key: "bert.encoder.layer.1.output.dense.bias".into(), shape: vec![32] },
            KeyProblem::Unexpected { key: "bert.encoder.layer.9.extra.weight".into(), shape: vec![32] },
        ]
    );
}

#[test]
fn a_head_of_another_size_is_a_shape_error() {
    let err = load_dir(&fixtures().join("bert-tiny"), 3).unwrap_err();
    assert_eq!(
        problems(err),
        [
            KeyProblem::Shape { key: "classifier.weight".into(), found: vec![2, 32], expected: vec![3, 32] },
            KeyProblem::Shape { key: "classifier.bias".into(), found: vec![2], expected: vec![3] },
        ]
    );
}

#[test]
fn integer_weights_are_rejected_by_name() {
    let dir = edited_bert(|t| {
        let (_, shape, bytes) = t["bert.pooler.dense.bias"].clone();
        t.insert("bert.pooler.dense.bias".into(), (Dtype::I32, shape, bytes));
    });
    let err = load_dir(dir.path(), 2).unwrap_err();
    assert!(err.to_string().ends_with("tensor bert.pooler.dense.bias has dtype I32, expected a float type"), "{err}");
}

#[test]
fn truncated_safetensors_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures().join("bert-tiny/config.json"), dir.path().join("config.json")).unwrap();
    let bytes = std::fs::read(fixtures().join("bert-tiny/model.safetensors")).unwrap();
    for cut in [4, 100, bytes.len() - 10] {
        std::fs::write(dir.path().join("model.safetensors"), &bytes[..cut]).unwrap();
        let err = load_dir(dir.path(), 2).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("model.safetensors: invalid safetensors file"), "cut {cut}: {text}");
    }
}

#[test]
fn missing_shard_is_named() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures().join("bert-tiny-sharded")).unwrap() {
        let path = entry.unwrap().path();
        if !path.ends_with("model-00002-of-00003.safetensors") {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let err = load_dir(dir.path(), 2).unwrap_err();
    assert!(matches!(err, Error::MissingShard { .. }), "{err}");
    assert!(err.to_string().contains("model-00002-of-00003.safetensors"), "{err}");
}

#[test]
fn a_head_for_another_number_of_labels_names_both_counts() {
    let dir = edited_bert(|t| {
        t.insert("classifier.weight".into(), (Dtype::F32, vec![3, 32], vec![0; 3 * 32 * 4]));
        t.insert("classifier.bias".into(), (Dtype::F32, vec![3], vec![0; 3 * 4]));
    });
    let config = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    std::fs::write(dir.path().join("config.json"), config.replacen('{', r#"{"num_labels": 3,"#, 1)).unwrap();
    assert_eq!(load_dir(dir.path(), 3).unwrap().report.newly_initialized.len(), 0, "its own size loads");
    let err = load_dir(dir.path(), 2).unwrap_err();
    assert!(
        err.to_string().ends_with("config.json: the model is a 3-label classifier (id2label/num_labels) but the task has 2 labels; start from a checkpoint without this head, or one fine-tuned on this task"),
        "{err}"
    );
    let Error::LabelCount { source, .. } = err else { panic!() };
    assert_eq!(
        problems(*source)[0],
        KeyProblem::Shape { key: "classifier.weight".into(), found: vec![3, 32], expected: vec![2, 32] }
    );
}

#[test]
fn shards_outside_the_model_directory_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures().join("bert-tiny/config.json"), dir.path().join("config.json")).unwrap();
    for shard in ["../model.safetensors", "/etc/passwd", "", "a/../../b.safetensors"] {
        let index = serde_json::json!({"weight_map": {"bert.pooler.dense.bias": shard}});
        std::fs::write(dir.path().join("model.safetensors.index.json"), index.to_string()).unwrap();
        let err = load_dir(dir.path(), 2).unwrap_err();
        assert!(matches!(err, Error::ShardPath { .. }), "{shard}: {err}");
        assert!(
            err.to_string().contains(&format!(
                "weight_map[\"bert.pooler.dense.bias\"]: shard {shard:?} is not a file inside the model directory"
            )),
            "{err}"
        );
    }
}

#[test]
fn directory_without_weights_or_config() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_dir(dir.path(), 2).unwrap_err();
    assert!(err.to_string().contains("config.json"), "{err}");
    std::fs::copy(fixtures().join("bert-tiny/config.json"), dir.path().join("config.json")).unwrap();
    let err = load_dir(dir.path(), 2).unwrap_err();
    assert!(err.to_string().starts_with("no weights in"), "{err}");
    assert!(err.to_string().contains("model.safetensors, model.safetensors.index.json"), "{err}");
}

#[test]
fn unsupported_model_type_lists_supported_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"model_type": "llama"}"#).unwrap();
    std::fs::copy(fixtures().join("bert-tiny/model.safetensors"), dir.path().join("model.safetensors")).unwrap();
    let err = load_dir(dir.path(), 2).unwrap_err();
    assert!(
        err.to_string().ends_with(
            "model_type \"llama\" is not supported (supported: bert, gpt2, longformer, led, deberta, deberta-v2, roberta)"
        ),
        "{err}"
    );
}

#[test]
fn parameter_infos_group_by_kind_and_layer() {
    use prunelab_models::info::{ParamCounts, ParamKind};
    let loaded = load("gpt2-tiny");
    let infos = loaded.model.param_infos();
    assert_eq!(infos[0].key, "transformer.wte.weight");
    let c_attn = infos.iter().find(|p| p.key == "transformer.h.1.attn.c_attn.weight").unwrap();
    assert_eq!((c_attn.shape.as_slice(), c_attn.layer), (&[32, 96][..], Some(1)));
    let counts = ParamCounts::of(&infos);
    // wte 99*32 + wpe 64*32; per block: attn 32*96+96 + 32*32+32, mlp 32*128+128 + 128*32+32,
    // norms 4*32; ln_f 2*32; score 32*2.
    assert_eq!(counts.by_kind[&ParamKind::Embeddings], 99 * 32 + 64 * 32);
    assert_eq!(counts.by_layer[&0][&ParamKind::Attention], 32 * 96 + 96 + 32 * 32 + 32);
    assert_eq!(counts.by_layer[&1][&ParamKind::Mlp], 32 * 128 + 128 + 128 * 32 + 32);
    assert_eq!(counts.by_kind[&ParamKind::Norms], 2 * 4 * 32 + 2 * 32);
    assert_eq!(counts.by_kind[&ParamKind::Head], 64);
    assert_eq!(counts.total, burn::module::Module::<B>::num_params(&loaded.model));
}

/// transformers' `model.train()` / `model.eval()`: dropout (hidden, attention and classifier)
/// acts only when training. In Burn that is an autodiff backend; `valid()` gives the
/// inference module.
#[test]
fn dropout_acts_in_training_only() {
    use burn::backend::Autodiff;
    use burn::module::AutodiffModule;
    use prunelab_models::ModelInput;
    type Train = Autodiff<B>;
    let files = ModelSource::Dir(fixtures().join("bert-tiny")).resolve(&Hub::new("/nonexistent", true)).unwrap();
    let model = load_classifier::<Train>(&files, 2, &Default::default()).unwrap().model;
    let input = || ModelInput::<Train> {
        input_ids: burn::tensor::Tensor::from_data([[2, 5, 6, 7, 3]], &Default::default()),
        attention_mask: burn::tensor::Tensor::ones([1, 5], &Default::default()),
        token_type_ids: None,
    };
    let a = model.forward(input()).into_data();
    let b = model.forward(input()).into_data();
    assert_ne!(a, b, "dropout makes training forwards differ");
    let eval = model.valid();
    let to_inner = |i: ModelInput<Train>| ModelInput::<B> {
        input_ids: i.input_ids.inner(),
        attention_mask: i.attention_mask.inner(),
        token_type_ids: None,
    };
    let x = eval.forward(to_inner(input())).into_data();
    let y = eval.forward(to_inner(input())).into_data();
    assert_eq!(x, y, "evaluation is deterministic");
}

/// Hub ids resolve through the standard Hugging Face cache (here laid out by the test, offline),
/// sharded checkpoints included.
#[test]
fn hub_ids_resolve_through_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    for (id, dir) in [("org/bert-tiny", "bert-tiny"), ("org/sharded", "bert-tiny-sharded")] {
        let repo = cache.path().join(format!("models--{}", id.replace('/', "--")));
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/v1"), "abc123").unwrap();
        let snapshot = repo.join("snapshots/abc123");
        std::fs::create_dir_all(&snapshot).unwrap();
        for entry in std::fs::read_dir(fixtures().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, snapshot.join(path.file_name().unwrap())).unwrap();
        }
    }
    let hub = Hub::new(cache.path(), true);
    let reference = params(&load("bert-tiny").model);
    for id in ["org/bert-tiny", "org/sharded"] {
        let files = ModelSource::parse(id, "v1").unwrap().resolve(&hub).unwrap();
        assert_eq!(files.name, id);
        let loaded = load_classifier::<B>(&files, 2, &Default::default()).unwrap();
        assert_eq!(params(&loaded.model), reference, "{id}");
    }
    let err = ModelSource::parse("org/bert-tiny", "main").unwrap().resolve(&hub).unwrap_err();
    assert!(
        err.to_string().contains("config.json of model:org/bert-tiny@main is not in the Hugging Face cache"),
        "{err}"
    );
}

/// A DeBERTa base-model checkpoint (`DebertaModel`: keys without `deberta.`, no pooler or
/// classifier) loads with the pooler and classifier initialised and reported.
#[test]
fn deberta_base_checkpoint_gets_pooler_and_classifier() {
    let loaded = load("deberta-tiny-base");
    assert_eq!(
        loaded.report.newly_initialized,
        ["pooler.dense.weight", "pooler.dense.bias", "classifier.weight", "classifier.bias"]
    );
    let full = params(&load("deberta-tiny").model);
    for (path, values) in params(&loaded.model) {
        if !path.starts_with("pooler.") && !path.starts_with("classifier.") {
            assert_eq!(values, full[&path], "{path}");
        }
    }
}

/// DeBERTa's parameters by kind: `q_bias`/`v_bias` (bare parameters) and the relative
/// projections are attention, `embed_proj` belongs to the embeddings, the relative embeddings
/// are embeddings; DeBERTa-v2's encoder convolution is token mixing (attention kind, no layer).
#[test]
fn deberta_parameter_infos() {
    use prunelab_models::HfModule;
    use prunelab_models::info::{ParamCounts, ParamKind};
    let loaded = load("deberta-tiny");
    let infos = loaded.model.param_infos();
    let find = |key: &str| infos.iter().find(|p| p.key == key).unwrap_or_else(|| panic!("{key}"));
    let q_bias = find("deberta.encoder.layer.1.attention.self.q_bias");
    assert_eq!((q_bias.module, q_bias.kind, q_bias.layer), (HfModule::Parameter, ParamKind::Attention, Some(1)));
    let in_proj = find("deberta.encoder.layer.0.attention.self.in_proj.weight");
    assert_eq!((in_proj.shape.as_slice(), in_proj.kind), (&[32, 96][..], ParamKind::Attention));
    assert_eq!(find("deberta.encoder.layer.0.attention.self.pos_q_proj.bias").kind, ParamKind::Attention);
    assert_eq!(find("deberta.embeddings.embed_proj.weight").kind, ParamKind::Embeddings);
    assert_eq!(find("deberta.encoder.rel_embeddings.weight").shape, [12, 32]);
    assert_eq!(find("pooler.dense.weight").kind, ParamKind::Head);
    let counts = ParamCounts::of(&infos);
    assert_eq!(counts.total, burn::module::Module::<B>::num_params(&loaded.model));
    // embeddings: word 99x24, position 64x24, token type 2x24, embed_proj 24x32, relative 12x32.
    assert_eq!(counts.by_kind[&ParamKind::Embeddings], (99 + 64 + 2) * 24 + 24 * 32 + 12 * 32);

    let loaded = load("deberta-v2-tiny");
    let infos = loaded.model.param_infos();
    let find = |key: &str| infos.iter().find(|p| p.key == key).unwrap_or_else(|| panic!("{key}"));
    let conv = find("deberta.encoder.conv.conv.weight");
    assert_eq!((conv.module, conv.kind, conv.layer), (HfModule::Convolution, ParamKind::Attention, None));
    assert_eq!(conv.shape, [32, 32, 3]);
    assert_eq!(find("deberta.encoder.LayerNorm.weight").kind, ParamKind::Norms);
    assert_eq!(find("deberta.encoder.rel_embeddings.weight").shape, [16, 32], "2 x 8 buckets");
    assert!(infos.iter().all(|p| !p.key.contains("position_embeddings") && !p.key.contains("pos_key_proj")));
    assert_eq!(ParamCounts::of(&infos).total, burn::module::Module::<B>::num_params(&loaded.model));
}
