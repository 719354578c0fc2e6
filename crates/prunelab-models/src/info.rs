//! Parameter counts grouped by kind and by layer, for any model, from Burn parameter paths.

use std::collections::BTreeMap;

use burn::module::{ModuleVisitor, Param};
use burn::prelude::*;

use crate::load::{HfModule, HfNaming};

/// What a parameter is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamKind {
    /// Token, position, segment and relative-position embeddings, and their projection
    /// (DeBERTa's `embed_proj`).
    Embeddings,
    /// Attention projections (q, k, v, output, relative positions), weights and biases, and
    /// other token mixing (DeBERTa-v2's encoder convolution).
    Attention,
    /// Feed-forward (MLP) projections, weights and biases.
    Mlp,
    /// LayerNorm scales and shifts.
    Norms,
    /// Pooler and classification head.
    Head,
}

impl ParamKind {
    /// All kinds, in report order.
    pub const ALL: [ParamKind; 5] = [Self::Embeddings, Self::Attention, Self::Mlp, Self::Norms, Self::Head];

    /// Name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Embeddings => "embeddings",
            Self::Attention => "attention",
            Self::Mlp => "mlp",
            Self::Norms => "norms",
            Self::Head => "head",
        }
    }
}

/// One parameter tensor of a model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ParamInfo {
    /// The Hugging Face key.
    pub key: String,
    /// The owning PyTorch module class.
    pub module: HfModule,
    /// Kind.
    pub kind: ParamKind,
    /// Layer index, for parameters inside a layer/block, counted across stacks (see
    /// [`stack_layers`]).
    pub layer: Option<usize>,
    /// Shape (Burn layout).
    pub shape: Vec<usize>,
}

impl ParamInfo {
    /// Number of values.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The dotted path of the parameter being visited or mapped, from Burn's `enter_module` /
/// `exit_module` calls (Burn 0.21 calls neither `visit_float_with_path` nor passes paths to
/// mappers). Segments of enum variants (`Classifier::Bert` adds `Bert`) are left out, so paths
/// read like the concrete model's. It also knows the Burn module that owns the current parameter
/// (the innermost container), which says what the parameter is ([`HfModule::of_burn_container`]).
#[derive(Debug, Default, Clone)]
pub struct PathTracker {
    /// One frame per entered module: its path segment (none for enum variants) and its class.
    stack: Vec<(Option<String>, HfModule)>,
}

impl PathTracker {
    /// Call from `enter_module`.
    pub fn enter(&mut self, name: &str, container_type: &str) {
        let segment = (!container_type.starts_with("Enum:")).then(|| name.to_owned());
        self.stack.push((segment, HfModule::of_burn_container(container_type)));
    }

    /// The class of the module that owns the parameter being visited.
    pub fn owner(&self) -> HfModule {
        self.stack.last().map_or(HfModule::Parameter, |(_, owner)| *owner)
    }

    /// Call from `exit_module`.
    pub fn exit(&mut self) {
        self.stack.pop();
    }

    /// The current path, e.g. `bert.encoder.layer.0.attention.self_attn.query.weight`.
    pub fn path(&self) -> String {
        self.stack.iter().filter_map(|(segment, _)| segment.as_deref()).collect::<Vec<_>>().join(".")
    }
}

/// Something done with every float parameter of a model, given its Burn path and the class of
/// the module that owns it.
pub trait ParamFn<B: Backend> {
    /// Called once per float parameter, in module order.
    fn param<const D: usize>(&mut self, path: &str, owner: HfModule, param: &Param<Tensor<B, D>>);
}

/// Call `f` with every float parameter of `model` and its path (see [`PathTracker`]).
pub fn for_each_param<B: Backend, M: Module<B>, F: ParamFn<B>>(model: &M, f: &mut F) {
    struct Walk<'a, F> {
        path: PathTracker,
        f: &'a mut F,
    }
    impl<B: Backend, F: ParamFn<B>> ModuleVisitor<B> for Walk<'_, F> {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.path.enter(name, container_type);
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.exit();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.f.param(&self.path.path(), self.path.owner(), param);
        }
    }
    model.visit(&mut Walk { path: PathTracker::default(), f });
}

/// Every float parameter of `model`, in module order, named as in Hugging Face checkpoints.
pub fn param_infos<B: Backend, M: Module<B>>(model: &M, naming: &dyn HfNaming) -> Vec<ParamInfo> {
    struct Collect<'a>(&'a dyn HfNaming, Vec<ParamInfo>);
    impl<B: Backend> ParamFn<B> for Collect<'_> {
        fn param<const D: usize>(&mut self, path: &str, owner: HfModule, param: &Param<Tensor<B, D>>) {
            let hf = self.0.hf_param(path, owner);
            let (kind, layer) = classify(&hf.key, hf.module);
            self.1.push(ParamInfo { key: hf.key, module: hf.module, kind, layer, shape: param.lazy_shape().to_vec() });
        }
    }
    let mut collect = Collect(naming, Vec::new());
    for_each_param(model, &mut collect);
    let mut infos = collect.1;
    let layers = stack_layers(infos.iter().map(|p| p.key.as_str()));
    for (info, layer) in infos.iter_mut().zip(layers) {
        info.layer = layer;
    }
    infos
}

/// The stack (`bert.encoder.layer`, `led.decoder.layers`) and index of a key inside a layer.
fn stack_and_index(key: &str) -> Option<(&str, usize)> {
    let mut start = 0;
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        if matches!(part, "layer" | "h" | "layers")
            && let Some(index) = parts.peek().and_then(|n| n.parse().ok())
        {
            return Some((&key[..start + part.len()], index));
        }
        start += part.len() + 1;
    }
    None
}

/// Layer indices of `keys` (in module order) counted across stacks of layers: the `N` of
/// `layer.N`/`h.N`/`layers.N` plus the number of layers of the stacks met before the key's own.
/// One-stack models keep `N`; an encoder-decoder numbers its decoder layers after its encoder
/// layers (`led.encoder.layers.1` is 1, `led.decoder.layers.0` is `encoder_layers`), so layer
/// groups never mix the two stacks.
pub fn stack_layers<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<Option<usize>> {
    let found: Vec<Option<(&str, usize)>> = keys.into_iter().map(stack_and_index).collect();
    let mut stacks: Vec<(&str, usize)> = Vec::new(); // (stack, layers), in order of appearance
    for (stack, index) in found.iter().flatten() {
        match stacks.iter_mut().find(|(s, _)| s == stack) {
            Some((_, count)) => *count = (*count).max(index + 1),
            None => stacks.push((stack, index + 1)),
        }
    }
    found
        .iter()
        .map(|f| {
            let (stack, index) = (*f)?;
            let before: usize = stacks.iter().take_while(|(s, _)| *s != stack).map(|(_, n)| n).sum();
            Some(before + index)
        })
        .collect()
}

/// Kind and layer index of a Hugging Face key (the index within its own stack; see
/// [`stack_layers`] for numbering across stacks).
pub fn classify(key: &str, module: HfModule) -> (ParamKind, Option<usize>) {
    let parts: Vec<&str> = key.split('.').collect();
    let layer = parts
        .windows(2)
        .find(|w| matches!(w[0], "layer" | "h" | "layers") && w[1].parse::<usize>().is_ok())
        .and_then(|w| w[1].parse().ok());
    let kind = match module {
        HfModule::Embedding => ParamKind::Embeddings,
        HfModule::LayerNorm => ParamKind::Norms,
        HfModule::Convolution => ParamKind::Attention,
        _ if layer.is_none() && parts.contains(&"embeddings") => ParamKind::Embeddings,
        _ if layer.is_none() => ParamKind::Head,
        _ if parts.iter().any(|p| matches!(*p, "attention" | "attn" | "self_attn" | "encoder_attn")) => {
            ParamKind::Attention
        }
        _ => ParamKind::Mlp,
    };
    (kind, layer)
}

/// Parameter counts by kind, overall and per layer.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ParamCounts {
    /// Total float parameters.
    pub total: usize,
    /// By kind.
    pub by_kind: BTreeMap<ParamKind, usize>,
    /// By layer index, then kind.
    pub by_layer: BTreeMap<usize, BTreeMap<ParamKind, usize>>,
}

impl ParamCounts {
    /// Sum up `params`.
    pub fn of(params: &[ParamInfo]) -> Self {
        let mut counts = Self::default();
        for p in params {
            counts.total += p.numel();
            *counts.by_kind.entry(p.kind).or_default() += p.numel();
            if let Some(layer) = p.layer {
                *counts.by_layer.entry(layer).or_default().entry(p.kind).or_default() += p.numel();
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_keys() {
        use HfModule::*;
        assert_eq!(
            classify("bert.encoder.layer.3.attention.self.query.weight", Linear),
            (ParamKind::Attention, Some(3))
        );
        assert_eq!(classify("bert.encoder.layer.3.intermediate.dense.bias", Linear), (ParamKind::Mlp, Some(3)));
        assert_eq!(classify("bert.encoder.layer.3.output.LayerNorm.weight", LayerNorm), (ParamKind::Norms, Some(3)));
        assert_eq!(classify("transformer.h.11.attn.c_attn.weight", Conv1D), (ParamKind::Attention, Some(11)));
        assert_eq!(classify("transformer.h.0.mlp.c_proj.weight", Conv1D), (ParamKind::Mlp, Some(0)));
        assert_eq!(classify("transformer.wte.weight", Embedding), (ParamKind::Embeddings, None));
        assert_eq!(classify("bert.pooler.dense.weight", Linear), (ParamKind::Head, None));
        assert_eq!(classify("score.weight", Linear), (ParamKind::Head, None));
        assert_eq!(
            classify("led.decoder.layers.1.encoder_attn.k_proj.weight", Linear),
            (ParamKind::Attention, Some(1))
        );
        assert_eq!(classify("led.encoder.layers.0.fc1.weight", Linear), (ParamKind::Mlp, Some(0)));
    }

    #[test]
    fn layers_counted_across_stacks() {
        let keys = [
            "led.shared.weight",
            "led.encoder.layers.0.fc1.weight",
            "led.encoder.layers.1.fc1.weight",
            "led.decoder.layers.0.fc1.weight",
            "led.decoder.layers.1.self_attn.q_proj.weight",
            "classification_head.dense.weight",
        ];
        assert_eq!(stack_layers(keys), [None, Some(0), Some(1), Some(2), Some(3), None]);
        let keys = ["bert.encoder.layer.0.output.dense.weight", "bert.encoder.layer.11.output.dense.weight"];
        assert_eq!(stack_layers(keys), [Some(0), Some(11)]);
        assert_eq!(stack_layers(["transformer.h.3.attn.c_attn.weight", "transformer.ln_f.weight"]), [Some(3), None]);
    }

    #[test]
    fn classify_deberta_keys() {
        use HfModule::*;
        let q_bias = "deberta.encoder.layer.2.attention.self.q_bias";
        assert_eq!(classify(q_bias, Parameter), (ParamKind::Attention, Some(2)));
        assert_eq!(classify("deberta.embeddings.embed_proj.weight", Linear), (ParamKind::Embeddings, None));
        assert_eq!(classify("deberta.encoder.conv.conv.weight", Convolution), (ParamKind::Attention, None));
        assert_eq!(classify("pooler.dense.weight", Linear), (ParamKind::Head, None));
    }
}
