//! The pruning options of every command that prunes (`prune`, `finetune`): one clap struct,
//! flattened into each, so that a scheme, an amount, a scope and N:M are spelt the same way
//! everywhere. Each command says which schemes it takes and what it defaults to
//! ([`PruneSelection::resolve`]); a scheme it cannot run is one `error:` line saying which
//! command can.

use anyhow::{Result, bail};
use prunelab_prune::{Scheme, ScopeKind};

/// How weights are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemeArg {
    /// No pruning
    None,
    /// Global magnitude over the scope (torch's global_unstructured + L1Unstructured)
    GlobalL1,
    /// Magnitude within each tensor (torch's l1_unstructured per module)
    LayerL1,
    /// Keep N of every M weights along the input dimension (see --nm)
    Nm,
    /// Uniformly random over the scope (a baseline; see --seed)
    Random,
    /// Wanda: |w| times the norm of its input feature over --calibration training examples,
    /// compared within each output unit (finetune only: it needs training data)
    Wanda,
    /// Remove whole attention heads and MLP neurons (the same fraction in every layer, ranked by
    /// L2 norm) and compact the matrices; see --targets (prune only)
    Structured,
}

/// Which parameters may be pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScopeArg {
    /// Attention and MLP weight matrices of every layer (Linear and GPT-2's Conv1D)
    Default,
    /// What the study pruned: every nn.Linear weight (for GPT-2, only the score head)
    Seed,
}

/// The `--help` heading of every pruning option, in every command.
pub const HEADING: &str = "Pruning";

/// `--scheme`, `--amount`, `--scope` and `--nm`.
#[derive(Debug, Clone, clap::Args)]
pub struct PruneSelection {
    /// Pruning scheme [default: global-l1 for prune, none for finetune]
    #[arg(long, value_enum, help_heading = HEADING)]
    pub scheme: Option<SchemeArg>,
    /// Fraction of the scope to prune, in [0, 1); not used by nm [default: 0.5 for prune, 0 for
    /// finetune]
    #[arg(long, allow_negative_numbers = true, help_heading = HEADING)]
    pub amount: Option<f64>,
    /// Base scope
    #[arg(long, value_enum, default_value_t = ScopeArg::Default, help_heading = HEADING)]
    pub scope: ScopeArg,
    /// N and M of N:M: keep N of every M weights along the input dimension
    #[arg(long, num_args = 2, value_names = ["N", "M"], default_values_t = [2, 4], help_heading = HEADING)]
    pub nm: Vec<usize>,
}

/// What a command does with [`PruneSelection`]: its defaults and the schemes it runs.
pub struct CommandPruning {
    pub command: &'static str,
    pub scheme: SchemeArg,
    pub amount: f64,
    /// Schemes this command cannot run, each with the command that can.
    pub elsewhere: &'static [(SchemeArg, &'static str)],
}

/// The selection with the command's defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolved {
    pub scheme: SchemeArg,
    pub amount: f64,
    pub scope: ScopeArg,
    pub n: usize,
    pub m: usize,
}

impl PruneSelection {
    /// Fills in `command`'s defaults, and refuses a scheme it cannot run.
    pub fn resolve(&self, command: &CommandPruning) -> Result<Resolved> {
        let scheme = self.scheme.unwrap_or(command.scheme);
        if let Some((_, instead)) = command.elsewhere.iter().find(|(s, _)| *s == scheme) {
            bail!("{} --scheme {}: {instead}", command.command, crate::common::value_name(&scheme));
        }
        // clap gives exactly two values; the default is [2, 4].
        let (n, m) = match self.nm.as_slice() {
            [n, m] => (*n, *m),
            _ => (2, 4),
        };
        Ok(Resolved { scheme, amount: self.amount.unwrap_or(command.amount), scope: self.scope, n, m })
    }
}

impl Resolved {
    /// The mask-computing scheme (magnitude, random or N:M); `None` for the schemes computed
    /// elsewhere (`none`, `wanda`, `structured`).
    pub fn mask_scheme(&self) -> Option<Scheme> {
        match self.scheme {
            SchemeArg::None | SchemeArg::Wanda | SchemeArg::Structured => None,
            SchemeArg::GlobalL1 => Some(Scheme::GlobalL1),
            SchemeArg::LayerL1 => Some(Scheme::LayerL1),
            SchemeArg::Nm => Some(Scheme::NM { n: self.n, m: self.m }),
            SchemeArg::Random => Some(Scheme::Random),
        }
    }

    pub fn scope_kind(&self) -> ScopeKind {
        match self.scope {
            ScopeArg::Default => ScopeKind::Default,
            ScopeArg::Seed => ScopeKind::Seed,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        selection: PruneSelection,
    }

    const PRUNE: CommandPruning = CommandPruning {
        command: "prune",
        scheme: SchemeArg::GlobalL1,
        amount: 0.5,
        elsewhere: &[(SchemeArg::Wanda, "Wanda needs training data: use finetune --scheme wanda")],
    };

    fn resolve(args: &[&str]) -> Result<Resolved> {
        Cli::try_parse_from(std::iter::once("cli").chain(args.iter().copied())).unwrap().selection.resolve(&PRUNE)
    }

    #[test]
    fn the_command_fills_in_its_defaults_and_nm_is_one_flag() {
        let r = resolve(&[]).unwrap();
        assert_eq!((r.scheme, r.amount, r.scope, r.n, r.m), (SchemeArg::GlobalL1, 0.5, ScopeArg::Default, 2, 4));
        let r = resolve(&["--scheme", "nm", "--nm", "1", "8", "--scope", "seed"]).unwrap();
        assert_eq!(r.mask_scheme(), Some(Scheme::NM { n: 1, m: 8 }));
        assert_eq!(r.scope_kind(), ScopeKind::Seed);
        assert_eq!(resolve(&["--amount", "0.9"]).unwrap().amount, 0.9);
    }

    #[test]
    fn a_scheme_the_command_cannot_run_names_the_one_that_can() {
        let err = resolve(&["--scheme", "wanda"]).unwrap_err().to_string();
        assert_eq!(err, "prune --scheme wanda: Wanda needs training data: use finetune --scheme wanda");
    }
}
