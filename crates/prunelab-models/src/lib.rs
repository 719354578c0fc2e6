//! Pretrained transformers as Burn modules, loaded from Hugging Face checkpoints, computing what
//! Hugging Face transformers computes.
//!
//! - [`bert`] (`model_type: bert`, MiniLM included), [`gpt2`] (`model_type: gpt2`), [`deberta`]
//!   (`model_type: deberta`), [`deberta_v2`] (`model_type: deberta-v2`, DeBERTa-v3 included),
//!   [`longformer`] (`model_type: longformer`) and [`led`] (`model_type: led`): Config + Module +
//!   init + forward, generic over the backend, each with a sequence-classification head with
//!   transformers' semantics.
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

pub mod bert;
pub mod checkpoint;
pub mod config;
pub mod deberta;
pub mod deberta_v2;
mod error;
pub mod gpt2;
pub mod info;
pub mod layers;
pub mod led;
pub mod load;
pub mod longformer;
pub mod observe;
pub mod source;

use burn::prelude::*;

pub use checkpoint::{Checkpoint, WeightsFormat};
pub use config::{ModelConfig, SUPPORTED_MODEL_TYPES};
pub use error::{Error, KeyProblem, Result};
pub use load::{HfModule, HfNaming, LoadReport};
pub use source::{ModelFiles, ModelSource};

use bert::{BertForSequenceClassification, BertNaming};
use deberta::{DebertaForSequenceClassification, DebertaNaming};
use deberta_v2::{DebertaV2ForSequenceClassification, DebertaV2Naming};
use gpt2::{Gpt2ForSequenceClassification, Gpt2Naming};
use led::{LedForSequenceClassification, LedNaming};
use longformer::{LongformerForSequenceClassification, LongformerNaming};

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

/// A sequence classifier of any supported architecture.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // one per process; boxing would change Burn module paths
pub enum Classifier<B: Backend> {
    /// `BertForSequenceClassification`.
    Bert(BertForSequenceClassification<B>),
    /// `GPT2ForSequenceClassification`.
    Gpt2(Gpt2ForSequenceClassification<B>),
    /// `LongformerForSequenceClassification`.
    Longformer(LongformerForSequenceClassification<B>),
    /// `LEDForSequenceClassification` (transformers 4).
    Led(LedForSequenceClassification<B>),
    /// `DebertaForSequenceClassification`.
    Deberta(DebertaForSequenceClassification<B>),
    /// `DebertaV2ForSequenceClassification`.
    DebertaV2(DebertaV2ForSequenceClassification<B>),
}

impl<B: Backend> Classifier<B> {
    /// Logits `[batch, num_labels]`.
    pub fn forward(&self, input: ModelInput<B>) -> Tensor<B, 2> {
        self.forward_detailed(input).logits
    }

    /// Logits with every hidden state.
    pub fn forward_detailed(&self, input: ModelInput<B>) -> ClassifierOutput<B> {
        match self {
            Classifier::Bert(m) => m.forward_detailed(input.input_ids, input.attention_mask, input.token_type_ids),
            Classifier::Gpt2(m) => m.forward_detailed(input.input_ids, input.attention_mask),
            Classifier::Longformer(m) => {
                m.forward_detailed(input.input_ids, input.attention_mask, input.token_type_ids)
            }
            Classifier::Led(m) => m.forward_detailed(input.input_ids, input.attention_mask),
            Classifier::Deberta(m) => m.forward_detailed(input.input_ids, input.attention_mask, input.token_type_ids),
            Classifier::DebertaV2(m) => m.forward_detailed(input.input_ids, input.attention_mask, input.token_type_ids),
        }
    }

    /// Whether the model takes token type (segment) ids (RoBERTa-style models such as Longformer
    /// have the embedding but, as their tokenizers, use type 0 throughout).
    pub fn uses_token_types(&self) -> bool {
        match self {
            Classifier::Bert(_) => true,
            Classifier::Gpt2(_) | Classifier::Longformer(_) | Classifier::Led(_) => false,
            Classifier::Deberta(m) => m.deberta.embeddings.token_type_embeddings.is_some(),
            Classifier::DebertaV2(m) => m.deberta.embeddings.token_type_embeddings.is_some(),
        }
    }

    /// The longest sequence the position embeddings cover.
    pub fn max_positions(&self) -> usize {
        match self {
            Classifier::Bert(m) => m.bert.embeddings.position_embeddings.weight.lazy_shape().as_slice()[0],
            Classifier::Gpt2(m) => m.transformer.wpe.weight.lazy_shape().as_slice()[0],
            Classifier::Longformer(m) => m.max_positions(),
            Classifier::Led(m) => m.max_positions(),
            Classifier::Deberta(m) => m.deberta.embeddings.max_positions(),
            Classifier::DebertaV2(m) => m.deberta.embeddings.max_positions(),
        }
    }

    /// The architecture's checkpoint naming (for statistics, pruning scopes and export).
    pub fn naming(&self) -> Box<dyn HfNaming> {
        // The initializer range only matters when loading.
        match self {
            Classifier::Bert(_) => Box::new(BertNaming { initializer_range: 0.02 }),
            Classifier::Gpt2(_) => Box::new(Gpt2Naming { initializer_range: 0.02 }),
            Classifier::Longformer(_) => Box::new(LongformerNaming { initializer_range: 0.02 }),
            Classifier::Led(_) => Box::new(LedNaming { init_std: 0.02 }),
            Classifier::Deberta(_) => Box::new(DebertaNaming { initializer_range: 0.02 }),
            Classifier::DebertaV2(_) => Box::new(DebertaV2Naming { initializer_range: 0.02 }),
        }
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
    match config {
        ModelConfig::Bert(c) => Classifier::Bert(c.init_classifier(num_labels, device)),
        ModelConfig::Gpt2(c) => Classifier::Gpt2(c.init_classifier(num_labels, device)),
        ModelConfig::Longformer(c) => Classifier::Longformer(c.init_classifier(num_labels, device)),
        ModelConfig::Led(c) => Classifier::Led(c.init_classifier(num_labels, device)),
        ModelConfig::Deberta(c) => Classifier::Deberta(c.init_classifier(num_labels, device)),
        ModelConfig::DebertaV2(c) => Classifier::DebertaV2(c.init_classifier(num_labels, device)),
    }
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
    let loaded = match &config {
        ModelConfig::Bert(c) => {
            let naming = BertNaming { initializer_range: c.initializer_range };
            load::load_module(c.init_classifier(num_labels, device), &mut checkpoint, &naming, device)
                .map(|(m, r)| (Classifier::Bert(m), r))
        }
        ModelConfig::Gpt2(c) => {
            let naming = Gpt2Naming { initializer_range: c.initializer_range };
            load::load_module(c.init_classifier(num_labels, device), &mut checkpoint, &naming, device)
                .map(|(m, r)| (Classifier::Gpt2(m), r))
        }
        ModelConfig::Longformer(c) => {
            let naming = LongformerNaming { initializer_range: c.initializer_range };
            load::load_module(c.init_classifier(num_labels, device), &mut checkpoint, &naming, device)
                .map(|(m, r)| (Classifier::Longformer(m), r))
        }
        ModelConfig::Led(c) => {
            let naming = LedNaming { init_std: c.init_std };
            load::load_module(c.init_classifier(num_labels, device), &mut checkpoint, &naming, device)
                .map(|(m, r)| (Classifier::Led(m), r))
        }
        ModelConfig::Deberta(c) => {
            let naming = DebertaNaming { initializer_range: c.initializer_range };
            load::load_module(c.init_classifier(num_labels, device), &mut checkpoint, &naming, device)
                .map(|(m, r)| (Classifier::Deberta(m), r))
        }
        ModelConfig::DebertaV2(c) => {
            let naming = DebertaV2Naming { initializer_range: c.initializer_range };
            load::load_module(c.init_classifier(num_labels, device), &mut checkpoint, &naming, device)
                .map(|(m, r)| (Classifier::DebertaV2(m), r))
        }
    };
    let (model, report) = loaded.map_err(|err| match (err, config.declared_num_labels()) {
        // A head of the config's size that is not the task's: say so before the shapes.
        (Error::Mismatch { path, model, problems }, Some(declared))
            if declared != num_labels
                && problems
                    .iter()
                    .any(|p| matches!(p, KeyProblem::Shape { key, .. } if key.ends_with(config.head_weight_key()))) =>
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
