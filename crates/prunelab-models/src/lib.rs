//! Pretrained transformers as Burn modules, loaded from Hugging Face checkpoints, computing what
//! Hugging Face transformers computes.
//!
//! - [`bert`] (`model_type: bert`, MiniLM included), [`roberta`] (`model_type: roberta`),
//!   [`gpt2`] (`model_type: gpt2`), [`deberta`] (`model_type: deberta`), [`deberta_v2`]
//!   (`model_type: deberta-v2`, DeBERTa-v3 included), [`longformer`] (`model_type: longformer`)
//!   and [`led`] (`model_type: led`): Config + Module + init + forward, generic over the backend,
//!   each with a sequence-classification head with transformers' semantics, one folder each.
//! - [`registry`]: the traits each architecture implements, and the macro that turns the list
//!   below into [`ModelConfig`], [`Classifier`] and every dispatch on the architecture.
//! - [`layers`]: what the architectures share (activations, masks, products, and in
//!   [`layers::blocks`] the post-LayerNorm output, feed-forward, RoBERTa embeddings and head).
//! - [`config`]: `config.json` read directly (transformers' field names and defaults).
//! - [`checkpoint`]: `model.safetensors`, sharded safetensors, `model.fp16.safetensors` and
//!   `pytorch_model.bin`, any float dtype.
//! - [`load`]: one loader for every architecture, driven by a per-architecture key map
//!   ([`load::HfNaming`]); mismatches are reported key by key.
//! - [`source`]: a model directory or a Hub id (through `prunelab-hub`'s cache).
//! - [`info`]: parameter counts by kind and layer.
//! - [`observe`]: per-feature norms of every projection's inputs (what Wanda scores weights with).
//!
//! Parity with transformers is tested against references the committed script
//! `scripts/make_fixtures.py` computed with PyTorch (`tests/parity.rs`).
//!
//! ```no_run
//! use burn::backend::NdArray;
//! use prunelab_models::{ModelSource, load_classifier};
//! let files = ModelSource::parse("path/to/all-MiniLM-L6-v2", "main")?.resolve(&prunelab_hub::Hub::from_env())?;
//! let loaded = load_classifier::<NdArray>(&files, 2, &Default::default())?;
//! println!("{} newly initialised", loaded.report.newly_initialized.len());
//! # Ok::<(), prunelab_models::Error>(())
//! ```
#![warn(missing_docs)]

pub mod checkpoint;
pub mod config;
mod error;
pub mod info;
pub mod layers;
pub mod load;
pub mod observe;
pub mod registry;
pub mod source;

use burn::prelude::*;

pub use checkpoint::{Checkpoint, WeightsFormat};
pub use error::{Error, KeyProblem, Result};
pub use load::{HfModule, HfNaming, LoadReport};
pub use registry::{Architecture, ClassifierModel};
pub use source::{ModelFiles, ModelSource};

// The architectures: one line each (`Variant(folder, "model_type", Config, Classifier)`). The
// Classifier enum's variants keep this order, which epoch checkpoints depend on: add at the end.
registry::architectures! {
    /// `model_type: bert` (`BertForSequenceClassification`; MiniLM checkpoints included).
    Bert(bert, "bert", BertConfig, BertForSequenceClassification),
    /// `model_type: gpt2` (`GPT2ForSequenceClassification`).
    Gpt2(gpt2, "gpt2", Gpt2Config, Gpt2ForSequenceClassification),
    /// `model_type: longformer` (`LongformerForSequenceClassification`).
    Longformer(longformer, "longformer", LongformerConfig, LongformerForSequenceClassification),
    /// `model_type: led` (`LEDForSequenceClassification` of transformers 4).
    Led(led, "led", LedConfig, LedForSequenceClassification),
    /// `model_type: deberta` (`DebertaForSequenceClassification`).
    Deberta(deberta, "deberta", DebertaConfig, DebertaForSequenceClassification),
    /// `model_type: deberta-v2` (`DebertaV2ForSequenceClassification`; DeBERTa-v3 included).
    DebertaV2(deberta_v2, "deberta-v2", DebertaV2Config, DebertaV2ForSequenceClassification),
    /// `model_type: roberta` (`RobertaForSequenceClassification`).
    Roberta(roberta, "roberta", RobertaConfig, RobertaForSequenceClassification),
}

/// A padded batch of token ids.
///
/// # Shapes
/// - every tensor `[batch, seq]`
#[derive(Debug, Clone)]
pub struct ModelInput<B: Backend> {
    /// Token ids.
    pub input_ids: Tensor<B, 2, Int>,
    /// 1 on tokens, 0 on padding.
    pub attention_mask: Tensor<B, 2, Int>,
    /// Segment ids, for models that use them.
    pub token_type_ids: Option<Tensor<B, 2, Int>>,
}

/// Logits with the intermediate values parity tests compare.
#[derive(Debug, Clone)]
pub struct ClassifierOutput<B: Backend> {
    /// `[batch, num_labels]`.
    pub logits: Tensor<B, 2>,
    /// The embedding output, then each layer's output (`[batch, seq, hidden]`); decoders also
    /// append the final LayerNorm's output; encoder-decoders (LED) give the encoder's embedding
    /// and layer outputs, then the decoder's.
    pub hidden_states: Vec<Tensor<B, 3>>,
    /// The pooler's output `[batch, hidden]`, for models with a pooler.
    pub pooled: Option<Tensor<B, 2>>,
}

impl<B: Backend> Classifier<B> {
    /// Logits `[batch, num_labels]`.
    pub fn forward(&self, input: ModelInput<B>) -> Tensor<B, 2> {
        self.forward_detailed(input).logits
    }

    /// Logits with every hidden state.
    pub fn forward_detailed(&self, input: ModelInput<B>) -> ClassifierOutput<B> {
        self.model().classify(input)
    }

    /// Whether the model takes token type (segment) ids (RoBERTa-style models such as Longformer
    /// have the embedding but, as their tokenizers, use type 0 throughout).
    pub fn uses_token_types(&self) -> bool {
        self.model().uses_token_types()
    }

    /// The longest sequence the position embeddings cover.
    pub fn max_positions(&self) -> usize {
        self.model().max_positions()
    }

    /// The architecture's checkpoint naming (for statistics, pruning scopes and export).
    pub fn naming(&self) -> Box<dyn HfNaming> {
        self.model().naming()
    }

    /// Every float parameter, named as in Hugging Face checkpoints.
    pub fn param_infos(&self) -> Vec<info::ParamInfo> {
        info::param_infos(self, self.naming().as_ref())
    }
}

/// A loaded classifier with what loading found.
#[derive(Debug)]
pub struct LoadedClassifier<B: Backend> {
    /// The model.
    pub model: Classifier<B>,
    /// Its config.
    pub config: ModelConfig,
    /// Files, format, dtype, newly initialised and ignored keys.
    pub report: LoadReport,
}

/// Load a sequence classifier with `num_labels` classes from resolved model files.
///
/// `num_labels` comes from the task; the checkpoint's head must have that size (else the load
/// fails naming both shapes) or be absent (then it is initialised and reported).
pub fn load_classifier<B: Backend>(
    files: &ModelFiles,
    num_labels: usize,
    device: &B::Device,
) -> Result<LoadedClassifier<B>> {
    let config = ModelConfig::from_file(&files.config)?;
    let checkpoint = Checkpoint::open(&files.weights)?;
    load_with(files, config, checkpoint, num_labels, device)
}

/// Load a model as it is stored: the head size is the checkpoint's, else the config's declared
/// number of labels, else 2 (for `model info` and inspection, where no task says).
pub fn load_as_stored<B: Backend>(files: &ModelFiles, device: &B::Device) -> Result<LoadedClassifier<B>> {
    let config = ModelConfig::from_file(&files.config)?;
    let checkpoint = Checkpoint::open(&files.weights)?;
    let head = config.head_weight_key();
    let stored = [head.to_owned(), format!("{}{head}", config.base_prefix())]
        .iter()
        .find_map(|k| checkpoint.shape(k).map(|s| s[0]));
    let num_labels = stored.or(config.declared_num_labels()).unwrap_or(2);
    load_with(files, config, checkpoint, num_labels, device)
}

/// A classifier with freshly initialised weights (Burn's initialisers, not transformers'): for
/// benchmarks and tests that need an architecture, not a checkpoint.
pub fn init_classifier<B: Backend>(config: &ModelConfig, num_labels: usize, device: &B::Device) -> Classifier<B> {
    config.init(num_labels, device)
}

fn load_with<B: Backend>(
    files: &ModelFiles,
    config: ModelConfig,
    mut checkpoint: Checkpoint,
    num_labels: usize,
    device: &B::Device,
) -> Result<LoadedClassifier<B>> {
    if let Some(declared) = config.declared_num_labels().filter(|&n| n != num_labels) {
        tracing::warn!(
            declared,
            num_labels,
            config = %files.config.display(),
            "the config declares another number of labels; the task's is used (a stored head of the other size will not load)"
        );
    }
    let loaded = config.load(num_labels, &mut checkpoint, device);
    let head = config.head_weight_key();
    let (model, report) = loaded.map_err(|err| match (err, config.declared_num_labels()) {
        // A head of the config's size that is not the task's: say so before the shapes.
        (Error::Mismatch { path, model, problems }, Some(declared))
            if declared != num_labels
                && problems.iter().any(|p| matches!(p, KeyProblem::Shape { key, .. } if key.ends_with(head))) =>
        {
            Error::LabelCount {
                config: files.config.clone(),
                declared,
                expected: num_labels,
                source: Box::new(Error::Mismatch { path, model, problems }),
            }
        }
        (err, _) => err,
    })?;
    tracing::info!(model = %files.name, format = %report.format, dtype = %report.dtype, "loaded");
    Ok(LoadedClassifier { model, config, report })
}
