//! Weight statistics of any model: "what fraction of the weights are >> 0, overall and by layer?"
//!
//! [`weights`] walks a model through Burn's module visitor, naming each parameter with the
//! architecture's Hugging Face key map ([`prunelab_models::HfNaming`]); it never imports a
//! concrete model type. [`TensorStats`] summarises one tensor; [`GroupStats`] merges them by
//! layer and [`Role`] (attention q/k/v/out, MLP in/out, embeddings, norms, biases, head).
//!
//! ```no_run
//! # fn demo<B: burn::prelude::Backend>(model: &prunelab_models::Classifier<B>) {
//! let tensors = prunelab_stats::weights(model, model.naming().as_ref());
//! let stats: Vec<_> = tensors.iter().map(|t| prunelab_stats::TensorStats::of(t, 10)).collect();
//! let layers = prunelab_stats::group_by_layer(&stats);
//! # }
//! ```
#![warn(missing_docs)]

mod role;
mod summary;

pub use role::Role;
pub use summary::{GroupStats, HISTOGRAM_EDGES, THRESHOLDS, TensorStats, group_by_layer, group_by_layer_and_role};

use burn::module::{Module, Param};
use burn::prelude::*;
use prunelab_models::info::{ParamFn, for_each_param, stack_layers};
use prunelab_models::{HfModule, HfNaming};

/// One parameter tensor's values with its names.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// The Burn parameter path.
    pub path: String,
    /// The Hugging Face checkpoint key.
    pub key: String,
    /// The PyTorch module class owning it in transformers.
    pub module: HfModule,
    /// Layer index, for parameters inside a layer or block, counted across stacks (an
    /// encoder-decoder's decoder layers follow its encoder layers; see
    /// [`prunelab_models::info::stack_layers`]).
    pub layer: Option<usize>,
    /// What it is for.
    pub role: Role,
    /// Shape in Burn's layout (`Linear` weights `[in, out]`).
    pub shape: Vec<usize>,
    /// Values, row-major in Burn's layout.
    pub values: Vec<f32>,
}

/// Every float parameter of `model` with its values (copied to the host), in module order.
pub fn weights<B: Backend, M: Module<B>>(model: &M, naming: &dyn HfNaming) -> Vec<NamedTensor> {
    struct Collect<'a>(&'a dyn HfNaming, Vec<NamedTensor>);
    impl<B: Backend> ParamFn<B> for Collect<'_> {
        fn param<const D: usize>(&mut self, path: &str, owner: HfModule, param: &Param<Tensor<B, D>>) {
            let hf = self.0.hf_param(path, owner);
            let tensor = param.val();
            let shape = tensor.dims().to_vec();
            // Flatten first: burn-ndarray copies a shared multi-dimensional array element by
            // element (36 ns each; 1.4 s for GPT-2's embedding matrix), a 1-D one 10x faster.
            let flat = tensor.reshape([shape.iter().product::<usize>()]);
            let values = flat.into_data().convert::<f32>().into_vec::<f32>().unwrap_or_default();
            let role = Role::of(&hf.key, hf.module);
            self.1.push(NamedTensor {
                path: path.to_owned(),
                key: hf.key,
                module: hf.module,
                layer: None,
                role,
                shape,
                values,
            });
        }
    }
    let mut collect = Collect(naming, Vec::new());
    for_each_param(model, &mut collect);
    let mut tensors = collect.1;
    let layers = stack_layers(tensors.iter().map(|t| t.key.as_str()));
    for (tensor, layer) in tensors.iter_mut().zip(layers) {
        tensor.layer = layer;
    }
    tensors
}
