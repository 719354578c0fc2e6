//! `prunelab bench ...`: the measurements `cargo xtask bench` compares with PyTorch
//! (`bench/torch_bench.py` does the same work on the same model directories). Each prints one
//! JSON object on stdout.
//!
//! - `init`: a randomly initialised checkpoint of a named architecture (`gpt2-small`, `minilm`,
//!   and the study's other three: `deberta-base`, `led-base`, `longformer-base`), written as a
//!   Hugging Face directory so both tools load identical weights, and so that the study's grid
//!   can be timed where its real weights cannot be downloaded;
//! - `train`: the real fine-tuning loop (`prunelab_train::fine_tune`) on synthetic batches of
//!   fixed length: time to the first step (kernel compilation and autotuning on GPUs) and
//!   training throughput after it;
//! - `infer`: inference throughput at a batch size on synthetic batches;
//! - `prune`: wall time of global L1 mask computation over the default scope;
//! - `matmul`: square matmul TFLOP/s on the backend.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use prunelab_glue::{Encoded, GlueBatcher, GlueTask, PaddingSide};
use prunelab_models::{ModelConfig, init_classifier, load_classifier};
use prunelab_prune::{PruneSpec, Scheme, Scope, ScopeKind, compute_masks};
use prunelab_stats::weights;
use prunelab_train::{OptimizerKind, Silent, TrainConfig, TrainData, TrainOptions, fine_tune, predict};
use serde_json::json;

use crate::backend::{self, Backend, TrainBackend};

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Write a randomly initialised model of a named architecture as a Hugging Face directory
    Init(InitArgs),
    /// Fine-tuning throughput on synthetic batches (the real loop: AdamW, clipping, masks)
    Train(TrainArgs),
    /// Inference throughput on synthetic batches
    Infer(InferArgs),
    /// Time global L1 mask computation over the default scope
    Prune(PruneArgs),
    /// Square matmul throughput (TFLOP/s)
    Matmul(MatmulArgs),
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// gpt2-small (124M), minilm (all-MiniLM-L6-v2's shape, 22.7M), or the shapes of
    /// microsoft/deberta-base, allenai/led-base-16384, allenai/longformer-base-4096 and roberta-base
    #[arg(long, value_parser = ARCHS)]
    arch: String,
    /// Output directory
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Copy this tokenizer.json into the directory (fine-tuning a random checkpoint on GLUE
    /// needs one; any tokenizer whose ids fit the vocabulary will do for timing)
    #[arg(long, value_name = "FILE")]
    tokenizer: Option<PathBuf>,
}

/// The architectures `bench init` writes.
const ARCHS: [&str; 6] = ["gpt2-small", "minilm", "deberta-base", "led-base", "longformer-base", "roberta-base"];

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// A model directory or Hub id
    model: String,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long, default_value_t = 128)]
    seq_len: usize,
    /// Timed optimizer steps (after the first)
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// Global L1 sparsity of the default scope, masks held (0: dense)
    #[arg(long, default_value_t = 0.0)]
    amount: f64,
    /// The optimizer step's implementation (the same arithmetic): flat buffers, or one update
    /// per parameter tensor (the earlier step, for comparison)
    #[arg(long, value_enum, default_value_t = OptimizerArg::Flat)]
    optimizer: OptimizerArg,
}

/// `bench train --optimizer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OptimizerArg {
    /// Parameters, gradients, moments and masks in flat buffers
    Flat,
    /// One fused update per parameter tensor
    PerTensor,
}

#[derive(Debug, clap::Args)]
pub struct InferArgs {
    /// A model directory or Hub id
    model: String,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[arg(long, default_value_t = 128)]
    seq_len: usize,
    /// Timed batches (after two warm-up batches)
    #[arg(long, default_value_t = 20)]
    batches: usize,
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// A model directory or Hub id
    model: String,
    #[arg(long, default_value_t = 0.9)]
    amount: f64,
}

#[derive(Debug, clap::Args)]
pub struct MatmulArgs {
    /// Square size N (an N × N by N × N product)
    #[arg(long, default_value_t = 8192, conflicts_with = "shape")]
    n: usize,
    /// A rectangular product instead, as M,K,N ([M, K] × [K, N]), e.g. 4096,768,3072 (GPT-2
    /// small's MLP at batch 32 × 128)
    #[arg(long, value_name = "M,K,N", value_parser = parse_shape)]
    shape: Option<[usize; 3]>,
    #[arg(long, default_value_t = 10)]
    iters: usize,
}

fn parse_shape(text: &str) -> Result<[usize; 3], String> {
    let dims: Vec<usize> = text
        .split(',')
        .map(|d| d.trim().parse::<usize>().ok().filter(|&d| d > 0))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("{text:?}: expected three positive integers M,K,N"))?;
    dims.try_into().map_err(|_| format!("{text:?}: expected three positive integers M,K,N"))
}

impl BenchCommand {
    pub fn run(self) -> Result<()> {
        let out = match self {
            BenchCommand::Init(a) => a.run()?,
            BenchCommand::Train(a) => a.run()?,
            BenchCommand::Infer(a) => a.run()?,
            BenchCommand::Prune(a) => a.run()?,
            BenchCommand::Matmul(a) => a.run()?,
        };
        #[allow(clippy::print_stdout)]
        {
            println!("{out}");
        }
        Ok(())
    }
}

fn base_record(kind: &str) -> serde_json::Value {
    json!({"tool": "prunelab", "bench": kind, "backend": backend::NAME, "kernels": backend::KERNELS, "device": format!("{:?}", backend::device()), "hardware": backend::hardware(), "precision": backend::precision_name(), "gemm": backend::gemm_name(), "fused": backend::fused_name()})
}

/// The architectures `init` knows, as transformers `config.json` text.
fn arch_config(arch: &str) -> Result<serde_json::Value> {
    Ok(match arch {
        "gpt2-small" => json!({
            "model_type": "gpt2", "architectures": ["GPT2ForSequenceClassification"], "vocab_size": 50257,
            "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12, "n_inner": null,
            "activation_function": "gelu_new", "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1,
            "layer_norm_epsilon": 1e-5, "initializer_range": 0.02, "pad_token_id": 50256,
            "bos_token_id": 50256, "eos_token_id": 50256
        }),
        "minilm" => json!({
            "model_type": "bert", "architectures": ["BertForSequenceClassification"], "vocab_size": 30522,
            "hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536,
            "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": 512, "type_vocab_size": 2, "initializer_range": 0.02,
            "layer_norm_eps": 1e-12, "pad_token_id": 0
        }),
        // microsoft/deberta-base (v1): relative attention, no absolute positions in the input.
        "deberta-base" => json!({
            "model_type": "deberta", "architectures": ["DebertaForSequenceClassification"], "vocab_size": 50265,
            "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
            "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": 512, "type_vocab_size": 0, "initializer_range": 0.02,
            "layer_norm_eps": 1e-7, "relative_attention": true, "max_relative_positions": -1,
            "pos_att_type": ["c2p", "p2c"], "position_biased_input": false, "pad_token_id": 0
        }),
        // allenai/led-base-16384: 6 + 6 layers, 1,024-token attention windows.
        "led-base" => json!({
            "model_type": "led", "architectures": ["LEDForSequenceClassification"], "vocab_size": 50265,
            "d_model": 768, "encoder_layers": 6, "decoder_layers": 6, "encoder_attention_heads": 12,
            "decoder_attention_heads": 12, "encoder_ffn_dim": 3072, "decoder_ffn_dim": 3072,
            "activation_function": "gelu", "max_encoder_position_embeddings": 16384,
            "max_decoder_position_embeddings": 1024, "attention_window": [1024, 1024, 1024, 1024, 1024, 1024],
            "dropout": 0.1, "attention_dropout": 0.0, "activation_dropout": 0.0, "classifier_dropout": 0.0,
            "init_std": 0.02, "is_encoder_decoder": true, "pad_token_id": 1, "bos_token_id": 0,
            "eos_token_id": 2, "decoder_start_token_id": 2, "tie_word_embeddings": true
        }),
        // allenai/longformer-base-4096: 512-token attention windows.
        "longformer-base" => json!({
            "model_type": "longformer", "architectures": ["LongformerForSequenceClassification"],
            "vocab_size": 50265, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
            "intermediate_size": 3072, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 4098, "type_vocab_size": 1,
            "initializer_range": 0.02, "layer_norm_eps": 1e-5, "attention_window": [512, 512, 512, 512, 512, 512, 512, 512, 512, 512, 512, 512],
            "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "sep_token_id": 2
        }),
        // roberta-base: 514 positions, the first two never a token's (padding id 1).
        "roberta-base" => json!({
            "model_type": "roberta", "architectures": ["RobertaForSequenceClassification"], "vocab_size": 50265,
            "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
            "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": 514, "type_vocab_size": 1, "initializer_range": 0.02,
            "layer_norm_eps": 1e-5, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2
        }),
        other => bail!("unknown architecture {other}"),
    })
}

impl InitArgs {
    fn run(self) -> Result<serde_json::Value> {
        std::fs::create_dir_all(&self.out).with_context(|| format!("creating {}", self.out.display()))?;
        let config_path = self.out.join("config.json");
        prunelab_prune::file::write_atomic(&config_path, &serde_json::to_vec_pretty(&arch_config(&self.arch)?)?)?;
        let config = ModelConfig::from_file(&config_path)?;
        let device = backend::device();
        <Backend as burn::tensor::backend::Backend>::seed(&device, 0);
        let model = init_classifier::<Backend>(&config, 2, &device);
        let tensors = weights(&model, model.naming().as_ref());
        let params: usize = tensors.iter().map(|t| t.values.len()).sum();
        prunelab_prune::export::export_hf(&tensors, &config_path, 2, &[], &self.out)?;
        if let Some(tokenizer) = &self.tokenizer {
            let to = self.out.join("tokenizer.json");
            std::fs::copy(tokenizer, &to)
                .with_context(|| format!("--tokenizer: copying {} to {}", tokenizer.display(), to.display()))?;
        }
        let mut rec = base_record("init");
        rec["arch"] = json!(self.arch);
        rec["parameters"] = json!(params);
        rec["dir"] = json!(self.out);
        Ok(rec)
    }
}

/// `n` synthetic labelled examples of exactly `len` tokens (ids in 1000..vocab-ish, seeded).
fn synthetic(n: usize, len: usize, vocab: usize) -> Vec<Encoded> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    (0..n)
        .map(|i| Encoded {
            idx: i as u32,
            input_ids: (0..len).map(|_| (1000 + next() % (vocab - 1000)) as u32).collect(),
            token_type_ids: vec![0; len],
            label: Some((next() % 2) as u32),
        })
        .collect()
}

fn vocab_of(config: &Path) -> Result<usize> {
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?,
    )
    .with_context(|| format!("parsing {}", config.display()))?;
    v.get("vocab_size").and_then(|v| v.as_u64()).map(|v| v as usize).context("config.json has no vocab_size")
}

impl TrainArgs {
    fn run(self) -> Result<serde_json::Value> {
        let files = crate::common::model_files(&self.model, "main")?;
        let device = backend::device();
        let loaded = load_classifier::<TrainBackend>(&files, 2, &device)?;
        let vocab = vocab_of(&files.config)?;
        let train = synthetic(self.batch_size * (self.steps + 1), self.seq_len, vocab);
        let dev = synthetic(64, self.seq_len, vocab);
        let batcher =
            GlueBatcher { pad_id: 0, padding_side: PaddingSide::Right, token_types: loaded.model.uses_token_types() };
        let masks = if self.amount > 0.0 {
            let tensors = weights(&loaded.model, loaded.model.naming().as_ref());
            let spec = PruneSpec { scheme: Scheme::GlobalL1, amount: self.amount, seed: 0 };
            Some(compute_masks(&tensors, &Scope::new(ScopeKind::Default), &spec)?)
        } else {
            None
        };
        let config = TrainConfig {
            num_train_epochs: 1,
            per_device_train_batch_size: self.batch_size,
            learning_rate: 2e-5,
            ..TrainConfig::default()
        };
        let started = Instant::now();
        let data = TrainData { train: &train, dev: &dev, task: GlueTask::Sst2, batcher: &batcher };
        let options = TrainOptions {
            config,
            masks: masks.as_ref().map(|m| (m, prunelab_train::MaskMode::Hold)),
            checkpoint: None,
            optimizer: match self.optimizer {
                OptimizerArg::Flat => OptimizerKind::Flat,
                OptimizerArg::PerTensor => OptimizerKind::PerTensor,
            },
            ..TrainOptions::default()
        };
        let outcome = fine_tune(loaded.model, &data, &options, &device, &mut Silent)?;
        let epoch = &outcome.epochs[0];
        let mut rec = base_record("train");
        rec["model"] = json!(files.name);
        rec["batch_size"] = json!(self.batch_size);
        rec["seq_len"] = json!(self.seq_len);
        rec["steps"] = json!(self.steps);
        rec["amount"] = json!(self.amount);
        rec["optimizer"] = json!(crate::common::value_name(&self.optimizer));
        rec["first_step_seconds"] = json!(outcome.first_step_seconds);
        // Same data, seed and weights in every build: builds that compute the same function
        // agree on it to rounding (a check on kernel fusion and mixed precision).
        rec["train_loss"] = json!(epoch.train_loss);
        rec["samples_per_second"] = json!(epoch.samples_per_second);
        rec["step_ms"] = json!(1e3 * self.batch_size as f64 / epoch.samples_per_second);
        rec["wall_seconds"] = json!(started.elapsed().as_secs_f64());
        Ok(rec)
    }
}

impl InferArgs {
    fn run(self) -> Result<serde_json::Value> {
        let files = crate::common::model_files(&self.model, "main")?;
        let device = backend::device();
        let loaded = load_classifier::<Backend>(&files, 2, &device)?;
        let vocab = vocab_of(&files.config)?;
        let data = synthetic(self.batch_size * self.batches, self.seq_len, vocab);
        let batcher =
            GlueBatcher { pad_id: 0, padding_side: PaddingSide::Right, token_types: loaded.model.uses_token_types() };
        let warm = Instant::now();
        let _ =
            predict(&loaded.model, &data[..self.batch_size * 2.min(self.batches)], &batcher, self.batch_size, &device);
        let warm_seconds = warm.elapsed().as_secs_f64();
        let t = Instant::now();
        let _ = predict(&loaded.model, &data, &batcher, self.batch_size, &device);
        let seconds = t.elapsed().as_secs_f64();
        let params: usize = loaded.model.param_infos().iter().map(|p| p.numel()).sum();
        let mut rec = base_record("infer");
        rec["model"] = json!(files.name);
        rec["parameters"] = json!(params);
        rec["batch_size"] = json!(self.batch_size);
        rec["seq_len"] = json!(self.seq_len);
        rec["warmup_seconds"] = json!(warm_seconds);
        rec["samples_per_second"] = json!(data.len() as f64 / seconds);
        Ok(rec)
    }
}

impl PruneArgs {
    fn run(self) -> Result<serde_json::Value> {
        let files = crate::common::model_files(&self.model, "main")?;
        let device = backend::device();
        let loaded = load_classifier::<Backend>(&files, 2, &device)?;
        let t = Instant::now();
        let tensors = weights(&loaded.model, loaded.model.naming().as_ref());
        let read = t.elapsed().as_secs_f64();
        let scope = Scope::new(ScopeKind::Default);
        let t = Instant::now();
        let masks =
            compute_masks(&tensors, &scope, &PruneSpec { scheme: Scheme::GlobalL1, amount: self.amount, seed: 0 })?;
        let compute = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let pruned = prunelab_prune::DeviceMasks::<Backend>::new(&masks, &device).apply(loaded.model);
        let _ = weights(&pruned, pruned.naming().as_ref());
        let apply = t.elapsed().as_secs_f64();
        let scope_params: usize = scope.select(&tensors).iter().map(|t| t.values.len()).sum();
        let mut rec = base_record("prune");
        rec["model"] = json!(files.name);
        rec["amount"] = json!(self.amount);
        rec["scope_params"] = json!(scope_params);
        rec["read_seconds"] = json!(read);
        rec["masks_seconds"] = json!(compute);
        rec["apply_seconds"] = json!(apply);
        rec["total_seconds"] = json!(read + compute + apply);
        Ok(rec)
    }
}

impl MatmulArgs {
    fn run(self) -> Result<serde_json::Value> {
        let device = backend::device();
        let [m, k, n] = self.shape.unwrap_or([self.n; 3]);
        // Zero-mean inputs: with them the products' rounding shows in the relative error (with
        // all-positive inputs the sums hide it).
        let normal = burn::tensor::Distribution::Normal(0.0, 1.0);
        let a = Tensor::<Backend, 2>::random([m, k], normal, &device);
        let b = Tensor::<Backend, 2>::random([k, n], normal, &device);
        for _ in 0..3 {
            let _ = prunelab_models::layers::projection(a.clone(), b.clone()).slice([0..1, 0..1]).into_data();
        }
        let t = Instant::now();
        let mut last = None;
        for _ in 0..self.iters {
            last = Some(prunelab_models::layers::projection(a.clone(), b.clone()));
        }
        let c = last.context("--iters must be at least 1")?;
        let _ = c.clone().slice([0..1, 0..1]).into_data();
        let seconds = t.elapsed().as_secs_f64() / self.iters as f64;
        // Which arithmetic ran: the first rows against an f64 product on the host.
        let error = backend::product_error(a, b, c)?;
        let mut rec = base_record("matmul");
        rec["n"] = if m == k && k == n { json!(m) } else { serde_json::Value::Null };
        rec["shape"] = json!([m, k, n]);
        rec["tflops"] = json!(2.0 * (m * k * n) as f64 / seconds / 1e12);
        rec["relative_error"] = json!(error);
        rec["arithmetic"] = json!(backend::arithmetic_name(error));
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic zero-mean values in [-1, 1).
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn product(a: &[f32], b: &[f32], [rows, k, n]: [usize; 3], round: impl Fn(f32) -> f32) -> Vec<f32> {
        let mut c = vec![0.0f32; rows * n];
        for i in 0..rows {
            for p in 0..k {
                for j in 0..n {
                    c[i * n + j] += round(a[i * k + p]) * round(b[p * n + j]);
                }
            }
        }
        c
    }

    #[test]
    fn the_error_check_tells_f32_tf32_and_bf16_arithmetic_apart() {
        let shape = [4, 2048, 64];
        let (a, b) = (values(4 * 2048, 1), values(2048 * 64, 2));
        let f32_error = backend::relative_error(&a, &b, &product(&a, &b, shape, |x| x), shape);
        // TF32 keeps 10 of f32's 23 mantissa bits (rounded to nearest here).
        let tf32 = |x: f32| f32::from_bits((x.to_bits() + (1 << 12)) & !((1 << 13) - 1));
        let tf32_error = backend::relative_error(&a, &b, &product(&a, &b, shape, tf32), shape);
        // bf16 keeps 7.
        let bf16 = |x: f32| f32::from_bits((x.to_bits() + (1 << 15)) & !((1 << 16) - 1));
        let bf16_error = backend::relative_error(&a, &b, &product(&a, &b, shape, bf16), shape);
        assert!(f32_error < 1e-6, "f32: {f32_error}");
        assert!(tf32_error > 1e-4, "tf32: {tf32_error}");
        assert!(bf16_error > 1e-3, "bf16: {bf16_error}");
        let names = [f32_error, tf32_error, bf16_error].map(backend::arithmetic_name);
        assert_eq!(names, ["f32", "reduced (TF32-like)", "reduced (bf16-like)"]);
    }

    #[test]
    fn every_init_architecture_is_a_supported_config_of_its_published_size() {
        // Parameter counts of the Hub checkpoints (millions): gpt2, all-MiniLM-L6-v2,
        // microsoft/deberta-base, allenai/led-base-16384, allenai/longformer-base-4096, roberta-base.
        let published = [
            ("gpt2-small", 124.4),
            ("minilm", 22.7),
            ("deberta-base", 139.2),
            ("led-base", 161.8),
            ("longformer-base", 148.7),
            ("roberta-base", 124.6),
        ];
        for (arch, millions) in published {
            assert!(ARCHS.contains(&arch));
            let text = arch_config(arch).unwrap().to_string();
            let config = ModelConfig::from_json(&text, Path::new(arch)).unwrap_or_else(|e| panic!("{arch}: {e}"));
            // The estimate counts every layer's projections generously (4 hidden² for attention
            // even where GPT-2 fuses them, LED's and Longformer's extra ones): 2-23 % above the
            // published counts; a wrong width or depth would be far outside.
            let ratio = config.approx_parameters() as f64 / 1e6 / millions;
            assert!((1.0..1.25).contains(&ratio), "{arch}: {ratio:.3} × the published {millions}M");
        }
        assert_eq!(published.len(), ARCHS.len());
    }

    #[test]
    fn shapes_are_three_positive_integers() {
        assert_eq!(parse_shape("4096,768,3072"), Ok([4096, 768, 3072]));
        assert!(parse_shape("4096,768").is_err());
        assert!(parse_shape("4096,0,3072").is_err());
        assert!(parse_shape("a,b,c").unwrap_err().contains("a,b,c"));
    }
}
