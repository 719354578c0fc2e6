//! Which vector instructions the CPU kernels use: the widest this CPU has, or fewer where
//! [`ISA_VARIABLE`] says so — so that one machine shows what a CPU without AVX-512 (most
//! laptops) gets, side by side with torch limited the same way (`MKL_ENABLE_INSTRUCTIONS=AVX2`).
//!
//! Every level computes the same sums in the same order (the products' fused multiply-adds in `k`
//! order, the fused passes' arithmetic element by element), so the results do not depend on it.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// The variable that caps the kernels' instructions: `avx512`, `avx2` (AVX2 and FMA) or
/// `baseline` (x86-64's SSE2); unset, the widest the CPU has.
pub const ISA_VARIABLE: &str = "PRUNELAB_CPU_ISA";

/// A level of vector instructions, narrowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// What every x86-64 CPU has (SSE2): the compiler's 4-lane loops, matrixmultiply's products.
    Baseline,
    /// AVX2 with FMA: 8 lanes.
    Avx2,
    /// AVX-512 (F, BW, DQ, VL): 16 lanes.
    Avx512,
}

impl Isa {
    /// The name [`ISA_VARIABLE`] takes and logs give.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Baseline => "baseline",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// [`ISA_VARIABLE`] set to something other than a level's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{ISA_VARIABLE}={0:?}: expected avx512, avx2 or baseline")]
pub struct IsaError(String);

impl FromStr for Isa {
    type Err = IsaError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Isa::Baseline, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .find(|isa| isa.name() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| IsaError(s.to_owned()))
    }
}

/// The widest level this CPU has.
pub fn detected() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx512vl") {
            return Isa::Avx512;
        }
        if has!("avx2") && has!("fma") {
            return Isa::Avx2;
        }
    }
    Isa::Baseline
}

/// [`ISA_VARIABLE`]'s level, `None` when unset (read each call: [`isa`] keeps the outcome).
pub fn setting() -> Result<Option<Isa>, IsaError> {
    std::env::var(ISA_VARIABLE).ok().map(|value| value.parse()).transpose()
}

/// The level the kernels use: [`detected`], capped by [`ISA_VARIABLE`] (read once per process;
/// a value it does not name is ignored here — the binary reports it through [`setting`] before
/// any kernel runs).
pub fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        let cap = setting().ok().flatten().unwrap_or(Isa::Avx512);
        detected().min(cap)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_by_name_and_order_narrowest_first() {
        for isa in [Isa::Baseline, Isa::Avx2, Isa::Avx512] {
            assert_eq!(isa.name().parse(), Ok(isa));
        }
        assert_eq!(" AVX2 ".parse(), Ok(Isa::Avx2));
        let error = "sse4".parse::<Isa>().unwrap_err().to_string();
        assert_eq!(error, "PRUNELAB_CPU_ISA=\"sse4\": expected avx512, avx2 or baseline");
        assert!(Isa::Baseline < Isa::Avx2 && Isa::Avx2 < Isa::Avx512);
        assert!(isa() <= detected());
    }
}
