//! Loading Hugging Face checkpoints into Burn modules, for every architecture at once.
//!
//! prunelab's modules mirror transformers' module tree, so a Burn parameter path such as
//! `bert.encoder.layer.0.attention.self_attn.query.weight` names its checkpoint key up to a few
//! renames. Each architecture supplies those renames as an [`HfNaming`]; this module walks the
//! freshly initialised (still lazy, so nothing is computed) model with a [`ModuleMapper`], takes
//! every tensor from the [`Checkpoint`], transposes `nn.Linear` weights (`[out, in]` in PyTorch,
//! `[in, out]` in Burn) and leaves everything else as it is (GPT-2's `Conv1D` weights are already
//! `[in, out]`; `nn.Conv1d` weights have the same layout in both).
//!
//! Every missing tensor, shape mismatch and unexpected tensor is collected, and the load fails
//! with all of them listed. Keys may carry the base-model prefix (`bert.`, `deberta.`,
//! `transformer.`) or not, as base-model checkpoints don't; legacy `LayerNorm.gamma`/`beta` names
//! are accepted.
//! Parameters a checkpoint may lack (classification heads) are initialised as transformers
//! initialises them and reported.

use burn::module::{ModuleMapper, Param};
use burn::prelude::*;
use burn::tensor::Distribution;

use crate::checkpoint::{Checkpoint, WeightsFormat};
use crate::error::{Error, KeyProblem, Result};
use crate::info::PathTracker;

/// The PyTorch module class that owns a parameter in transformers' implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HfModule {
    /// `torch.nn.Linear`: weight stored `[out, in]`.
    Linear,
    /// transformers' `Conv1D` (GPT-2): weight stored `[in, out]`.
    Conv1D,
    /// `torch.nn.Embedding`.
    Embedding,
    /// `torch.nn.LayerNorm` (or DeBERTa's `DebertaLayerNorm`, the same arithmetic).
    LayerNorm,
    /// `torch.nn.Conv1d` (DeBERTa-v2's encoder convolution): weight `[out, in / groups,
    /// kernel]`, which is Burn's layout too.
    Convolution,
    /// A bare `nn.Parameter` of a custom module (DeBERTa's `q_bias`, `v_bias`).
    Parameter,
}

impl HfModule {
    /// The PyTorch class that corresponds to the Burn module owning a parameter, from the
    /// container type Burn's visitors report (`Struct:Linear`, `Struct:LayerNorm`, ...); a
    /// parameter held directly by a model's own module is a bare [`HfModule::Parameter`].
    /// Architectures whose checkpoint uses another class for the same arithmetic (GPT-2's
    /// `Conv1D` for a Burn `Linear`) say so in [`HfNaming::module`].
    pub fn of_burn_container(container_type: &str) -> Self {
        match container_type.strip_prefix("Struct:") {
            Some("Linear") => Self::Linear,
            Some("LayerNorm") => Self::LayerNorm,
            Some("Embedding") => Self::Embedding,
            Some("Conv1d") => Self::Convolution,
            _ => Self::Parameter,
        }
    }
}

/// How a parameter absent from the checkpoint is initialised (transformers' `_init_weights`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// Normal with mean 0 and this standard deviation (`initializer_range`).
    Normal(f64),
    /// Zeros (biases).
    Zeros,
}

impl Init {
    /// transformers' rule for `nn.Linear` heads: biases zero, weights normal with `std`.
    pub fn normal_or_zero_bias(key: &str, std: f64) -> Self {
        if key.ends_with(".bias") { Self::Zeros } else { Self::Normal(std) }
    }
}

/// Where a Burn parameter lives in a Hugging Face checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct HfParam {
    /// The full key, with the base-model prefix (`bert.embeddings.word_embeddings.weight`).
    pub key: String,
    /// The owning module class.
    pub module: HfModule,
    /// `Some` for parameters a checkpoint may lack (heads), with their initialisation.
    pub init_if_missing: Option<Init>,
}

impl HfParam {
    /// Whether the checkpoint stores this parameter transposed relative to Burn.
    pub fn transposed(&self) -> bool {
        self.module == HfModule::Linear && self.key.ends_with(".weight")
    }
}

/// The renames of the BERT family (BERT, RoBERTa, Longformer, DeBERTa): transformers calls the
/// self-attention `self` (a Rust keyword) and its LayerNorms `LayerNorm`.
pub const BERT_RENAMES: &[(&str, &str)] = &[(".self_attn.", ".self."), ("layer_norm.", "LayerNorm.")];

/// An architecture's naming: Burn parameter path → checkpoint key, module class and
/// initialisation, plus what to ignore. The key is computed from data: Burn's LayerNorm
/// parameter names (`gamma`, `beta`) become PyTorch's (`weight`, `bias`), then
/// [`HfNaming::renames`] apply in order.
pub trait HfNaming {
    /// The architecture's name in messages (`bert`, `gpt2`).
    fn model_name(&self) -> &'static str;
    /// The base-model prefix that base-model checkpoints leave out (`bert.`).
    fn base_prefix(&self) -> &'static str;
    /// The checkpoint key of the classification head's (output) weight, without the prefix.
    fn head_weight_key(&self) -> &'static str;
    /// Fragments of Burn paths and what the checkpoint calls them, applied in order.
    fn renames(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
    /// The checkpoint's class for a parameter whose Burn owner corresponds to `owner`
    /// ([`HfModule::of_burn_container`]); by default the same.
    fn module(&self, _key: &str, owner: HfModule) -> HfModule {
        owner
    }
    /// The initialisation of a parameter a checkpoint may lack (heads), `None` for the others.
    fn init_if_missing(&self, key: &str) -> Option<Init>;
    /// Checkpoint keys that are expected and deliberately unused (buffers, pretraining heads).
    fn ignored(&self, key: &str) -> bool;

    /// The checkpoint entry of the Burn parameter at `burn_path`, owned by a Burn module that
    /// corresponds to `owner`.
    fn hf_param(&self, burn_path: &str, owner: HfModule) -> HfParam {
        let mut key = match (owner, burn_path.rsplit_once('.')) {
            (HfModule::LayerNorm, Some((module, "gamma"))) => format!("{module}.weight"),
            (HfModule::LayerNorm, Some((module, "beta"))) => format!("{module}.bias"),
            _ => burn_path.to_owned(),
        };
        for (from, to) in self.renames() {
            key = key.replace(from, to);
        }
        let module = self.module(&key, owner);
        let init_if_missing = self.init_if_missing(&key);
        HfParam { key, module, init_if_missing }
    }
}

/// What a load did besides loading.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LoadReport {
    /// The weight files read, with sizes in bytes.
    pub files: Vec<(std::path::PathBuf, u64)>,
    /// The storage format.
    pub format: WeightsFormat,
    /// The checkpoint's float dtype (`f32`, `f16`, ...); weights are computed in f32.
    pub dtype: String,
    /// Keys the checkpoint lacked that were initialised as transformers does (heads).
    pub newly_initialized: Vec<String>,
    /// Keys present in the checkpoint and deliberately not used.
    pub ignored: Vec<String>,
}

/// Load `checkpoint` into `model` (freshly initialised from its config).
pub fn load_module<B: Backend, M: Module<B>>(
    model: M,
    checkpoint: &mut Checkpoint,
    naming: &dyn HfNaming,
    device: &B::Device,
) -> Result<(M, LoadReport)> {
    let mut mapper = LoadMapper {
        naming,
        checkpoint,
        path: PathTracker::default(),
        device: device.clone(),
        state: State::default(),
    };
    let model = model.map(&mut mapper);
    let LoadMapper { checkpoint, state, .. } = mapper;
    if let Some(err) = state.error {
        return Err(err);
    }
    let mut problems = state.problems;
    let mut ignored = Vec::new();
    for key in checkpoint.untaken() {
        if naming.ignored(&key) {
            ignored.push(key);
        } else {
            let shape = checkpoint.shape(&key).unwrap_or_default().to_vec();
            problems.push(KeyProblem::Unexpected { key, shape });
        }
    }
    let path = checkpoint.files.first().map(|(p, _)| p.clone()).unwrap_or_default();
    if !problems.is_empty() {
        return Err(Error::Mismatch { path, model: naming.model_name(), problems });
    }
    for key in &state.newly_initialized {
        tracing::warn!(key, "not in the checkpoint: newly initialised (train it before use)");
    }
    let report = LoadReport {
        files: checkpoint.files.clone(),
        format: checkpoint.format,
        dtype: checkpoint.float_dtype(),
        newly_initialized: state.newly_initialized,
        ignored,
    };
    Ok((model, report))
}

#[derive(Default)]
struct State {
    problems: Vec<KeyProblem>,
    newly_initialized: Vec<String>,
    error: Option<Error>,
}

struct LoadMapper<'a, B: Backend> {
    naming: &'a dyn HfNaming,
    checkpoint: &'a mut Checkpoint,
    path: PathTracker,
    device: B::Device,
    state: State,
}

impl<B: Backend> LoadMapper<'_, B> {
    /// The key under which the checkpoint stores `hf`: as is, without the base prefix, or
    /// with the legacy LayerNorm names.
    fn resolve(&self, hf: &HfParam) -> Option<String> {
        let key = &hf.key;
        let mut candidates = vec![key.to_owned()];
        if let Some(stripped) = key.strip_prefix(self.naming.base_prefix()) {
            candidates.push(stripped.to_owned());
        }
        if hf.module == HfModule::LayerNorm {
            for c in candidates.clone() {
                if let Some(stem) = c.strip_suffix(".weight") {
                    candidates.push(format!("{stem}.gamma"));
                } else if let Some(stem) = c.strip_suffix(".bias") {
                    candidates.push(format!("{stem}.beta"));
                }
            }
        }
        candidates.into_iter().find(|c| self.checkpoint.contains(c))
    }
}

impl<B: Backend> ModuleMapper<B> for LoadMapper<'_, B> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        if self.state.error.is_some() {
            return param;
        }
        let hf = self.naming.hf_param(&self.path.path(), self.path.owner());
        let burn_shape: Vec<usize> = param.lazy_shape().to_vec();
        let mut hf_shape = burn_shape.clone();
        if hf.transposed() {
            hf_shape.reverse();
        }
        let id = param.id;
        let Some(found_key) = self.resolve(&hf) else {
            return match hf.init_if_missing {
                Some(init) => {
                    let shape = Shape::from(burn_shape);
                    let tensor = match init {
                        Init::Normal(std) => Tensor::random(shape, Distribution::Normal(0.0, std), &self.device),
                        Init::Zeros => Tensor::zeros(shape, &self.device),
                    };
                    self.state.newly_initialized.push(hf.key);
                    param.transform_for_load(tensor, id)
                }
                None => {
                    self.state.problems.push(KeyProblem::Missing { key: hf.key, shape: hf_shape });
                    param
                }
            };
        };
        let found_shape = self.checkpoint.shape(&found_key).unwrap_or_default().to_vec();
        if found_shape != hf_shape {
            self.checkpoint.mark_seen(&found_key);
            self.state.problems.push(KeyProblem::Shape { key: found_key, found: found_shape, expected: hf_shape });
            return param;
        }
        match self.checkpoint.take(&found_key) {
            Ok(Some(data)) => {
                let tensor = Tensor::<B, D>::from_data(data, &self.device);
                let tensor = if hf.transposed() { tensor.transpose() } else { tensor };
                param.transform_for_load(tensor, id)
            }
            Ok(None) => param,
            Err(err) => {
                self.state.error = Some(err);
                param
            }
        }
    }
}
