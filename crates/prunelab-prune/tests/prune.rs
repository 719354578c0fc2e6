//! Pruning end to end on the tiny fixture models: torch parity of global L1 masks (bit for
//! bit), masks that hold, mask files, sparsity accounting and export round trips.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use prunelab_hub::Hub;
use prunelab_models::{Classifier, ModelSource, load_classifier};
use prunelab_prune::export::{export_compressed, export_hf, read_compressed};
use prunelab_prune::file::{load_masks, save_masks};
use prunelab_prune::{DeviceMasks, PruneSpec, Scheme, Scope, ScopeKind, compute_masks, sparsity};
use prunelab_stats::{NamedTensor, weights};
use safetensors::SafeTensors;

type B = NdArray;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../prunelab-models/tests/fixtures")
}

fn model(name: &str) -> Classifier<B> {
    let files = ModelSource::Dir(fixtures().join(name)).resolve(&Hub::new("/nonexistent", true)).unwrap();
    load_classifier::<B>(&files, 2, &Default::default()).unwrap().model
}

fn tensors(model: &Classifier<B>) -> Vec<NamedTensor> {
    let t = weights(model, model.naming().as_ref());
    assert!(t.len() > 10, "the visitor saw the parameters");
    t
}

fn global(amount: f64) -> PruneSpec {
    PruneSpec { scheme: Scheme::GlobalL1, amount, seed: 0 }
}

fn torch_masks(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensors().into_iter().map(|(k, v)| (k, v.data().to_vec())).collect()
}

#[test]
fn global_l1_masks_equal_torch_bit_for_bit() {
    for name in
        ["bert-tiny", "gpt2-tiny", "deberta-tiny", "deberta-v2-tiny", "longformer-tiny", "led-tiny", "roberta-tiny"]
    {
        let t = tensors(&model(name));
        for (scope, kind) in [("seed", ScopeKind::Seed), ("default", ScopeKind::Default)] {
            for percent in [10, 50, 90] {
                let set = compute_masks(&t, &Scope::new(kind), &global(percent as f64 / 100.0)).unwrap();
                let theirs = torch_masks(&fixtures().join(format!("{name}/masks-{scope}-{percent}.safetensors")));
                let ours: BTreeMap<String, Vec<u8>> =
                    set.masks.iter().map(|m| (m.key.clone(), m.to_hf_bytes())).collect();
                assert_eq!(
                    ours.keys().collect::<Vec<_>>(),
                    theirs.keys().collect::<Vec<_>>(),
                    "{name} {scope}: same tensors"
                );
                for (key, mask) in &ours {
                    assert!(mask == &theirs[key], "{name} {scope} {percent}%: mask of {key} differs from torch's");
                }
            }
        }
    }
}

#[test]
fn the_seed_scope_prunes_only_gpt2s_head() {
    let t = tensors(&model("gpt2-tiny"));
    let set = compute_masks(&t, &Scope::new(ScopeKind::Seed), &global(0.9)).unwrap();
    assert_eq!(set.masks.iter().map(|m| m.key.as_str()).collect::<Vec<_>>(), ["score.weight"]);
    let all: usize = t.iter().map(|t| t.values.len()).sum();
    assert!(set.len_weights() * 400 < all, "the study pruned {} of {all} weights", set.len_weights());
}

#[test]
fn applied_masks_give_the_exact_sparsity_and_hold() {
    let m = model("bert-tiny");
    let t = tensors(&m);
    let scope = Scope::new(ScopeKind::Default);
    let set = compute_masks(&t, &scope, &global(0.9)).unwrap();
    let device_masks = DeviceMasks::<B>::new(&set, &Default::default());
    let pruned = device_masks.apply(m);
    let after = tensors(&pruned);
    let report = sparsity(&after, &scope);
    assert_eq!(report.scope_total.zeros, set.pruned());
    assert_eq!(report.scope_total.zeros, prunelab_prune::nparams_to_prune(0.9, report.scope_total.params));
    assert!(report.all_total.fraction() < report.scope_total.fraction(), "of all parameters is less than of the scope");
    assert_eq!(report.layers.iter().map(|l| l.scope.params).sum::<usize>(), report.scope_total.params);
    // Kept weights are untouched.
    for (before, now) in t.iter().zip(&after) {
        for (b, a) in before.values.iter().zip(&now.values) {
            assert!(*a == 0.0 || a == b, "{}", before.key);
        }
    }
    // Re-applying is idempotent.
    let again = tensors(&device_masks.apply(pruned));
    assert_eq!(again, after);
}

#[test]
fn mask_files_round_trip_and_refuse_other_models() {
    let t = tensors(&model("gpt2-tiny"));
    let set = compute_masks(&t, &Scope::new(ScopeKind::Default), &global(0.5)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("masks.safetensors");
    save_masks(&set, &path, &HashMap::from([("scheme".into(), "global-l1".into())])).unwrap();
    assert_eq!(load_masks(&path, &t).unwrap(), set);

    let other = tensors(&model("bert-tiny"));
    let err = load_masks(&path, &other).unwrap_err();
    assert!(
        err.to_string()
            .contains("the masks do not fit this model: it has a mask for transformer.h.0.attn.c_attn.weight"),
        "{err}"
    );

    std::fs::write(&path, b"not a mask file").unwrap();
    assert!(load_masks(&path, &t).is_err());
    // torch's own mask files are valid safetensors but carry no prunelab metadata.
    let err = load_masks(&fixtures().join("gpt2-tiny/masks-default-50.safetensors"), &t).unwrap_err();
    assert!(err.to_string().contains("not a prunelab mask file"), "{err}");
}

#[test]
fn hf_export_reloads_to_the_same_pruned_model() {
    let m = model("gpt2-tiny");
    let t = tensors(&m);
    let set = compute_masks(&t, &Scope::new(ScopeKind::Default), &global(0.5)).unwrap();
    let pruned = tensors(&DeviceMasks::<B>::new(&set, &Default::default()).apply(m));
    let dir = tempfile::tempdir().unwrap();
    let written = export_hf(&pruned, &fixtures().join("gpt2-tiny/config.json"), 2, &[], dir.path()).unwrap();
    assert_eq!(written.len(), 2);
    let reloaded = tensors(&model_from(dir.path()));
    assert_eq!(reloaded, pruned);
}

fn model_from(dir: &Path) -> Classifier<B> {
    let files = ModelSource::Dir(dir.into()).resolve(&Hub::new("/nonexistent", true)).unwrap();
    load_classifier::<B>(&files, 2, &Default::default()).unwrap().model
}

#[test]
fn compressed_export_round_trips_and_is_smaller() {
    let m = model("bert-tiny");
    let t = tensors(&m);
    let set = compute_masks(&t, &Scope::new(ScopeKind::Default), &global(0.9)).unwrap();
    let pruned = tensors(&DeviceMasks::<B>::new(&set, &Default::default()).apply(m));
    let dir = tempfile::tempdir().unwrap();
    let dense = export_hf(&pruned, &fixtures().join("bert-tiny/config.json"), 2, &[], dir.path()).unwrap();
    let packed = export_compressed(&pruned, &set, &dir.path().join("model.pruned.safetensors")).unwrap();
    assert!(packed.bytes * 10 < dense[1].bytes * 7, "compressed {} vs dense {}", packed.bytes, dense[1].bytes);
    let restored = read_compressed(&packed.path).unwrap();
    let dense_file = std::fs::read(&dense[1].path).unwrap();
    let st = SafeTensors::deserialize(&dense_file).unwrap();
    assert_eq!(restored.len(), st.len());
    for (key, (shape, values)) in restored {
        let view = st.tensor(&key).unwrap();
        assert_eq!(view.shape(), shape.as_slice(), "{key}");
        let expected: Vec<f32> =
            view.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(values, expected, "{key}");
    }
}

/// Found while fuzzing (`fuzz/`, target `compressed_checkpoint`, whose structured mode reaches it
/// in a few thousand runs): a shape in the metadata whose product overflows panicked (debug
/// builds) or wrapped (release) instead of being refused.
#[test]
fn compressed_checkpoint_with_an_impossible_shape_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.pruned.safetensors");
    for shape in ["[4294967296, 4294967296]", "[1000000, 1000000]"] {
        let meta = HashMap::from([
            ("format".to_owned(), prunelab_prune::export::COMPRESSED_FORMAT.to_owned()),
            ("shapes".to_owned(), format!(r#"{{"w": {shape}}}"#)),
        ]);
        let views: Vec<(String, safetensors::tensor::TensorView)> = Vec::new();
        std::fs::write(&path, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
        let err = read_compressed(&path).unwrap_err().to_string();
        assert!(err.contains("model.pruned.safetensors: invalid file: metadata shapes: w has shape"), "{err}");
    }
}

/// A compacted model (heads and neurons physically removed) computes what the dense model
/// computes with the same heads' and neurons' output rows zeroed — and has fewer parameters.
#[test]
fn structured_compaction_equals_zeroing_the_same_structures() {
    use burn::tensor::{Int, Tensor};
    use prunelab_models::{ModelConfig, ModelInput};
    use prunelab_prune::structured::{StructuredSpec, compact, plan};
    use prunelab_prune::{Mask, MaskSet};
    use prunelab_stats::Role;

    for (name, ids, pad) in [
        ("bert-tiny", [[2i64, 5, 6, 7, 8, 9, 3], [2, 10, 11, 3, 0, 0, 0]], 0),
        ("gpt2-tiny", [[7i64, 5, 6, 7, 8, 9, 3], [12, 10, 11, 3, 98, 98, 98]], 98),
        ("longformer-tiny", [[0i64, 5, 6, 7, 8, 9, 2], [0, 10, 11, 2, 1, 1, 1]], 1),
        ("roberta-tiny", [[0i64, 5, 6, 7, 8, 9, 2], [0, 10, 11, 2, 1, 1, 1]], 1),
        // DeBERTa-v3-like: shared relative keys, so heads compact with q/k/v.
        ("deberta-v2-tiny", [[1i64, 5, 6, 7, 8, 9, 2], [1, 10, 11, 2, 0, 0, 0]], 0),
    ] {
        let dense = model(name);
        let t = tensors(&dense);
        let config = ModelConfig::from_file(&fixtures().join(name).join("config.json")).unwrap();
        let spec = StructuredSpec { heads: 0.5, neurons: 0.5 };
        let p = plan(&t, &config.heads_per_layer(), config.head_dim(), &spec).unwrap();
        assert!(p.layers.iter().all(|l| l.kept_heads.len() == 2), "{name}: 2 of 4 heads kept");
        let compacted = compact(&t, &p).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let overrides = [
            ("prunelab_heads", serde_json::json!(p.heads())),
            (config.inner_size_key(), serde_json::json!(p.neurons())),
        ];
        export_hf(&compacted, &fixtures().join(name).join("config.json"), 2, &overrides, dir.path()).unwrap();
        let small = model_from(dir.path());
        let count = |m: &Classifier<B>| burn::module::Module::<B>::num_params(m);
        assert!(count(&small) < count(&dense), "{name}: {} vs {}", count(&small), count(&dense));

        // The same structures zeroed in the dense model: output-projection rows of dropped
        // heads, second-MLP rows of dropped neurons.
        let mut masks = Vec::new();
        for lp in &p.layers {
            for (role, kept_rows) in [
                (
                    Role::AttnOut,
                    lp.kept_heads.iter().flat_map(|h| h * p.head_dim..(h + 1) * p.head_dim).collect::<Vec<_>>(),
                ),
                (Role::MlpOut, lp.kept_neurons.clone()),
            ] {
                let x = t.iter().find(|x| x.layer == Some(lp.layer) && x.role == role).unwrap();
                let cols = x.shape[1];
                let keep = (0..x.values.len()).map(|i| kept_rows.contains(&(i / cols))).collect();
                masks.push(Mask {
                    key: x.key.clone(),
                    path: x.path.clone(),
                    module: x.module,
                    layer: x.layer,
                    role,
                    shape: x.shape.clone(),
                    keep,
                });
            }
        }
        let zeroed = DeviceMasks::<B>::new(&MaskSet { masks }, &Default::default()).apply(dense);

        let device = Default::default();
        let input = || ModelInput::<B> {
            input_ids: Tensor::<B, 2, Int>::from_data(ids, &device),
            attention_mask: Tensor::<B, 2, Int>::from_data(
                ids.map(|r| r.map(|v| i64::from(v != pad || r[0] == v))),
                &device,
            ),
            token_type_ids: None,
        };
        let a = small.forward(input()).into_data().to_vec::<f32>().unwrap();
        let b = zeroed.forward(input()).into_data().to_vec::<f32>().unwrap();
        let max = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(max < 1e-5, "{name}: compacted vs zeroed logits differ by {max}");
    }
}

/// The seed scope is every `nn.Linear` weight: for Longformer and LED that is every attention and
/// MLP matrix (global projections and cross-attention included) plus the head.
#[test]
fn the_seed_scope_of_longformer_and_led_is_every_linear_weight() {
    for (name, expected) in [("longformer-tiny", 2 * 9 + 2), ("led-tiny", 2 * 9 + 2 * 10 + 2)] {
        let t = tensors(&model(name));
        let set = compute_masks(&t, &Scope::new(ScopeKind::Seed), &global(0.5)).unwrap();
        assert_eq!(set.masks.len(), expected, "{name}");
        let default = compute_masks(&t, &Scope::new(ScopeKind::Default), &global(0.5)).unwrap();
        assert_eq!(default.masks.len(), expected - 2, "{name}: the default scope leaves out the head");
    }
}

/// Layers with two attention blocks (LED's decoder) cannot lose heads uniformly: an error names
/// the tensors instead of a wrong compaction.
#[test]
fn structured_pruning_refuses_decoder_layers_by_name() {
    use prunelab_models::ModelConfig;
    use prunelab_prune::structured::{StructuredSpec, plan};
    let t = tensors(&model("led-tiny"));
    let config = ModelConfig::from_file(&fixtures().join("led-tiny/config.json")).unwrap();
    let err = plan(&t, &config.heads_per_layer(), config.head_dim(), &StructuredSpec { heads: 0.5, neurons: 0.5 })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "layer 2 has 2 attention output weights (led.decoder.layers.0.self_attn.out_proj.weight, led.decoder.layers.0.encoder_attn.out_proj.weight)"
        ),
        "{err}"
    );
}

/// DeBERTa's heads cannot be removed by compacting q/k/v and the output projection alone
/// (`q_bias`/`v_bias` and the relative projections depend on them): refused, naming them;
/// its MLP neurons can.
#[test]
fn structured_pruning_of_deberta_heads_is_refused_neurons_work() {
    use prunelab_models::ModelConfig;
    use prunelab_prune::structured::{StructuredSpec, plan};
    let t = tensors(&model("deberta-tiny"));
    let config = ModelConfig::from_file(&fixtures().join("deberta-tiny/config.json")).unwrap();
    let heads = StructuredSpec { heads: 0.5, neurons: 0.0 };
    let err = plan(&t, &config.heads_per_layer(), config.head_dim(), &heads).unwrap_err().to_string();
    assert!(err.contains("deberta.encoder.layer.0.attention.self.q_bias"), "{err}");
    assert!(err.contains("pos_proj.weight"), "{err}");
    let neurons = StructuredSpec { heads: 0.0, neurons: 0.5 };
    let p = plan(&t, &config.heads_per_layer(), config.head_dim(), &neurons).unwrap();
    assert!(p.layers.iter().all(|l| l.kept_heads.len() == 4 && l.kept_neurons.len() == 19), "round(18.5) = 18 dropped");
}
