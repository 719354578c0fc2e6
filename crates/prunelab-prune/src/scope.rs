//! Which parameters a pruning touches.
//!
//! | scope | parameters |
//! |---|---|
//! | `default` | every attention and MLP weight matrix of every layer (`nn.Linear` and GPT-2's `Conv1D`); embeddings, norms, biases and the head excluded |
//! | `seed` | what the study pruned: the weight of every module that is an `nn.Linear` in transformers' implementation — for GPT-2 only the `score` head, since its attention and MLP are `Conv1D`; for DeBERTa also `embed_proj`, the relative-position projections and the pooler, but not `q_bias`/`v_bias` or DeBERTa-v2's `nn.Conv1d` |
//!
//! `include` patterns add parameters, `exclude` patterns remove them (after `include`). Patterns
//! match Hugging Face keys; `*` matches any run of characters (dots included).

use prunelab_models::HfModule;
use prunelab_stats::{NamedTensor, Role};

/// The base selection of a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopeKind {
    /// Attention and MLP weight matrices of every layer.
    Default,
    /// Every `nn.Linear` weight, as the study did.
    Seed,
}

/// A scope: a base selection adjusted by patterns.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Scope {
    /// Base selection.
    pub kind: ScopeKind,
    /// Keys matching any of these are added.
    #[serde(default)]
    pub include: Vec<String>,
    /// Keys matching any of these are removed.
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl Default for Scope {
    fn default() -> Self {
        Self { kind: ScopeKind::Default, include: Vec::new(), exclude: Vec::new() }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            ScopeKind::Default => "default",
            ScopeKind::Seed => "seed",
        };
        write!(f, "{kind}")?;
        for p in &self.include {
            write!(f, " +{p}")?;
        }
        for p in &self.exclude {
            write!(f, " -{p}")?;
        }
        Ok(())
    }
}

impl Scope {
    /// A base scope without patterns.
    pub fn new(kind: ScopeKind) -> Self {
        Self { kind, ..Self::default() }
    }

    /// Whether the scope contains the parameter stored under `key`.
    pub fn contains(&self, key: &str, module: HfModule, role: Role) -> bool {
        let base = match self.kind {
            ScopeKind::Default => role.is_layer_matrix(),
            ScopeKind::Seed => module == HfModule::Linear && key.ends_with(".weight"),
        };
        let included = base || self.include.iter().any(|p| glob(p, key));
        included && !self.exclude.iter().any(|p| glob(p, key))
    }

    /// The tensors of `tensors` inside the scope.
    pub fn select<'a>(&self, tensors: &'a [NamedTensor]) -> Vec<&'a NamedTensor> {
        tensors.iter().filter(|t| self.contains(&t.key, t.module, t.role)).collect()
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*.attention.*", "bert.encoder.layer.0.attention.self.query.weight"));
        assert!(glob("bert.encoder.layer.1*", "bert.encoder.layer.11.output.dense.weight"));
        assert!(glob("*c_attn.weight", "transformer.h.0.attn.c_attn.weight"));
        assert!(!glob("*c_attn.weight", "transformer.h.0.attn.c_attn.bias"));
        assert!(glob("score.weight", "score.weight"));
        assert!(!glob("a*b*c", "abx"));
        assert!(glob("a*b*c", "a_b_c"));
        assert!(!glob("ab*ba", "aba"), "prefix and suffix must not overlap");
    }

    #[test]
    fn seed_scope_is_linear_weights_only() {
        let seed = Scope::new(ScopeKind::Seed);
        assert!(seed.contains("score.weight", HfModule::Linear, Role::Head));
        assert!(!seed.contains("transformer.h.0.attn.c_attn.weight", HfModule::Conv1D, Role::AttnQkv));
        assert!(seed.contains("bert.pooler.dense.weight", HfModule::Linear, Role::Head));
        assert!(!seed.contains("bert.pooler.dense.bias", HfModule::Linear, Role::Head));
        let default = Scope::new(ScopeKind::Default);
        assert!(default.contains("transformer.h.0.attn.c_attn.weight", HfModule::Conv1D, Role::AttnQkv));
        assert!(!default.contains("score.weight", HfModule::Linear, Role::Head));
        let mut custom = Scope::new(ScopeKind::Default);
        custom.exclude.push("*.attn.*".into());
        custom.include.push("score.weight".into());
        assert!(!custom.contains("transformer.h.0.attn.c_attn.weight", HfModule::Conv1D, Role::AttnQkv));
        assert!(custom.contains("score.weight", HfModule::Linear, Role::Head));
        assert_eq!(custom.to_string(), "default +score.weight -*.attn.*");
    }

    #[test]
    fn deberta_scopes() {
        let (seed, default) = (Scope::new(ScopeKind::Seed), Scope::new(ScopeKind::Default));
        let key = |k: &str| format!("deberta.encoder.layer.0.attention.self.{k}");
        let pos_proj = (key("pos_proj.weight"), HfModule::Linear, Role::of(&key("pos_proj.weight"), HfModule::Linear));
        assert!(
            seed.contains(&pos_proj.0, pos_proj.1, pos_proj.2) && default.contains(&pos_proj.0, pos_proj.1, pos_proj.2)
        );
        let q_bias = key("q_bias");
        let role = Role::of(&q_bias, HfModule::Parameter);
        assert!(
            !seed.contains(&q_bias, HfModule::Parameter, role) && !default.contains(&q_bias, HfModule::Parameter, role)
        );
        let conv = "deberta.encoder.conv.conv.weight";
        let role = Role::of(conv, HfModule::Convolution);
        assert!(
            !seed.contains(conv, HfModule::Convolution, role) && !default.contains(conv, HfModule::Convolution, role)
        );
        let embed_proj = "deberta.embeddings.embed_proj.weight";
        let role = Role::of(embed_proj, HfModule::Linear);
        assert!(
            seed.contains(embed_proj, HfModule::Linear, role) && !default.contains(embed_proj, HfModule::Linear, role)
        );
    }
}
