//! `prunelab inspect` and `prunelab prune`, run as a user runs them.

mod common;

use common::{fixture, prunelab, text};

#[test]
fn inspect_prints_layers_and_writes_csv_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = prunelab(&["inspect", &fixture("bert-tiny"), "--out", dir.path().to_str().unwrap(), "--top-k", "3"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.split_whitespace().next().is_some_and(|w| ["0", "1", "other", "all"].contains(&w)))
        .collect();
    assert_eq!(rows.len(), 4, "{stdout}");
    let csv = std::fs::read_to_string(dir.path().join("stats.csv")).unwrap();
    assert!(csv.starts_with("key,layer,role,shape,count,zero_fraction"), "{csv}");
    assert!(
        csv.lines().any(|l| l.starts_with("bert.encoder.layer.1.attention.self.query.weight,1,attn_q,32;32,1024,")),
        "{csv}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("stats.json")).unwrap()).unwrap();
    assert_eq!(json["tensors"][0]["top_abs"].as_array().unwrap().len(), 3);
    assert_eq!(json["layers"].as_array().unwrap().len(), 3);
}

#[test]
fn prune_reports_exact_sparsity_and_exports_a_loadable_model() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("run");
    let out = prunelab(&[
        "prune",
        &fixture("gpt2-tiny"),
        "--scheme",
        "global-l1",
        "--amount",
        "0.9",
        "--out",
        out_dir.to_str().unwrap(),
        "--compressed",
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    // default scope of gpt2-tiny: per block 32*96 + 32*32 + 32*128 + 128*32 = 12288; 2 blocks.
    assert!(stdout.contains("sparsity: 90.0% of the scope (22,118 of 24,576 weights are zero)"), "{stdout}");
    assert!(stdout.contains("compressed:"), "{stdout}");
    for file in [
        "masks.safetensors",
        "sparsity.json",
        "model/config.json",
        "model/model.safetensors",
        "model.pruned.safetensors",
    ] {
        assert!(out_dir.join(file).is_file(), "{file}");
    }
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("model/config.json")).unwrap()).unwrap();
    assert_eq!(config["id2label"].as_object().unwrap().len(), 2, "the head's size");
    assert_eq!(config["model_type"], "gpt2");
    // The exported model is a valid checkpoint: inspect it and find the zeros.
    let out = prunelab(&["inspect", out_dir.join("model").to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    // Layer rows include biases and norms, so a 90 % prune of the matrices shows as ~89.8 %.
    let zero_pct = |row: &str| -> f64 {
        let line = stdout.lines().find(|l| l.split_whitespace().next() == Some(row)).unwrap();
        line.split_whitespace().nth(2).unwrap().trim_end_matches('%').parse().unwrap()
    };
    assert!(zero_pct("0") > 85.0 && zero_pct("1") > 85.0, "{stdout}");

    // The saved masks re-apply to the original model, and refuse another one.
    let masks = out_dir.join("masks.safetensors");
    let again = prunelab(&["prune", &fixture("gpt2-tiny"), "--masks", masks.to_str().unwrap()]);
    assert!(text(&again).0.contains("sparsity: 90.0% of the scope"), "{}", text(&again).1);
    let other = prunelab(&["prune", &fixture("bert-tiny"), "--masks", masks.to_str().unwrap()]);
    assert_eq!(other.status.code(), Some(1));
    assert!(text(&other).1.contains("the masks do not fit this model"), "{}", text(&other).1);
}

/// LED's seed scope is every nn.Linear (encoder, decoder, head); its decoder layers are layers 2
/// and 3, after the encoder's; structured pruning refuses its two-attention decoder layers.
#[test]
fn seed_scope_on_led_prunes_every_linear_and_structured_is_refused() {
    let out = prunelab(&["prune", &fixture("led-tiny"), "--scope", "seed", "--amount", "0.5"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    // Per encoder layer 7 × 32*32 + 2 × 32*37, per decoder layer 8 × 32*32 + 2 × 32*37, head 32*32 + 32*2.
    assert!(stdout.contains("sparsity: 50.0% of the scope (20,640 of 41,280 weights are zero)"), "{stdout}");
    let layers: Vec<&str> = stdout.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(["0", "1", "2", "3"].iter().all(|l| layers.contains(l)) && !layers.contains(&"4"), "{stdout}");
    let out = prunelab(&["prune", &fixture("led-tiny"), "--scheme", "structured", "--amount", "0.5"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("layer 2 has 2 attention output weights"), "{}", text(&out).1);
}

#[test]
fn seed_scope_on_gpt2_prunes_only_the_head() {
    let out = prunelab(&["prune", &fixture("gpt2-tiny"), "--scope", "seed", "--amount", "0.5"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    // The random fixture's biases are initialised to zero (as transformers does), and zeros are
    // measured, not inferred from masks: 32 pruned + 736 zero biases = 768 of 30,752.
    assert!(
        stdout.contains("sparsity: 50.0% of the scope (32 of 64 weights are zero), 2.50% of all 30,752 parameters"),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.split_whitespace().eq(["0", "0", "0.0%", "12,704", "2.8%"])),
        "blocks untouched: {stdout}"
    );
}

#[test]
fn bad_prune_arguments_are_clear_errors() {
    let cases: [(&[&str], &str); 5] = [
        (&["--amount", "1.0"], "amount 1 is outside [0, 1)"),
        (
            &["--scheme", "wanda"],
            "prune --scheme wanda: Wanda scores weights by activations on training data: use finetune",
        ),
        (&["--amount", "-0.1"], "amount -0.1 is outside [0, 1)"),
        (&["--scheme", "nm", "--nm", "4", "4"], "needs 0 < N < M"),
        (&["--exclude", "*"], "matches no parameter of this model"),
    ];
    for (args, message) in cases {
        let mut all = vec!["prune", "PLACEHOLDER"];
        all.extend_from_slice(args);
        let model = fixture("gpt2-tiny");
        all[1] = &model;
        let out = prunelab(&all);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(text(&out).1.contains(message), "{args:?}: {}", text(&out).1);
    }
    let out = prunelab(&["prune", &fixture("gpt2-tiny"), "--out", "/proc/prunelab-cannot-write"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).1.contains("cannot create the output directory /proc/prunelab-cannot-write"),
        "{}",
        text(&out).1
    );
}

#[test]
fn structured_pruning_compacts_and_the_result_loads() {
    let dir = tempfile::tempdir().unwrap();
    let out = prunelab(&[
        "prune",
        &fixture("bert-tiny"),
        "--scheme",
        "structured",
        "--amount",
        "0.5",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.lines().any(|l| l.split_whitespace().eq(["1", "2/4", "19/37"])), "{stdout}");
    let info = prunelab(&["model", "info", dir.path().join("model").to_str().unwrap()]);
    let (stdout, stderr) = text(&info);
    assert!(info.status.success(), "{stderr}");
    assert!(stdout.contains("intermediate_size 19"), "{stdout}");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("model/config.json")).unwrap()).unwrap();
    assert_eq!(config["prunelab_heads"], serde_json::json!([2, 2]));
}
