//! Calibration for activation-aware pruning (Wanda): training examples through the model,
//! forward only, with every projection's inputs observed ([`prunelab_models::observe`]).

use std::collections::HashMap;

use burn::data::dataloader::batcher::Batcher;
use burn::module::{Param, ParamId};
use burn::prelude::*;
use prunelab_glue::{Encoded, GlueBatch, GlueBatcher};
use prunelab_models::info::{ParamFn, for_each_param};
use prunelab_models::observe::{observe_inputs, observed_input_norms};
use prunelab_models::{Classifier, HfModule, ModelInput};

/// ‖X_j‖₂ of every projection's input feature j over the tokens of `examples`, by the Burn path
/// of the projection's weight. Examples go one at a time (no padding tokens) through the model
/// as given: pass an inference model (`model.valid()`) so that no dropout is drawn.
pub fn input_norms<B: Backend>(
    model: &Classifier<B>,
    examples: &[Encoded],
    batcher: &GlueBatcher,
    device: &B::Device,
) -> HashMap<String, Vec<f32>> {
    observe_inputs(true);
    for example in examples {
        let batch: GlueBatch<B> = batcher.batch(vec![example.clone()], device);
        let _ = model.forward(ModelInput {
            input_ids: batch.input_ids,
            attention_mask: batch.attention_mask,
            token_type_ids: batch.token_type_ids,
        });
    }
    observe_inputs(false);
    let by_id = observed_input_norms();
    struct Paths(HashMap<ParamId, String>);
    impl<B: Backend> ParamFn<B> for Paths {
        fn param<const D: usize>(&mut self, path: &str, _: HfModule, param: &Param<Tensor<B, D>>) {
            self.0.insert(param.id, path.to_owned());
        }
    }
    let mut paths = Paths(HashMap::new());
    for_each_param(model, &mut paths);
    let norms: HashMap<String, Vec<f32>> =
        by_id.into_iter().filter_map(|(id, (norms, _))| Some((paths.0.remove(&id)?, norms))).collect();
    tracing::debug!(examples = examples.len(), projections = norms.len(), "calibrated input norms");
    norms
}
