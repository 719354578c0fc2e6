//! A process-wide slot for a kernel of a backend's own that an operation tries before Burn's ops:
//! the products' ([`super::set_product_kernel`]), the fused element-wise operations'
//! ([`super::fused`]), LayerNorm's ([`super::norm`]), the reshapes' ([`super::view`]), the
//! attention scores' scale and mask ([`super::scores`]) and the
//! flat optimizer step's gathers (`prunelab_train::gather`).
//!
//! A kernel is installed by the binary for one concrete backend, and receives a call (a struct of
//! that backend's float primitives, which the kernel downcasts) behind `dyn Any`: it takes what
//! it handles and leaves the rest for Burn.

use std::any::Any;
use std::sync::RwLock;

/// A kernel: receives one call behind `dyn Any`.
pub type Kernel = fn(&mut dyn Any);

/// The slot; see the module documentation.
#[derive(Debug)]
pub struct Hook(RwLock<Option<Kernel>>);

impl Hook {
    /// An empty slot (usable in a `static`).
    pub const fn new() -> Self {
        Self(RwLock::new(None))
    }

    /// Install (or with `None` remove) the kernel.
    pub fn set(&self, kernel: Option<Kernel>) {
        *self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = kernel;
    }

    /// The installed kernel, if any.
    pub fn get(&self) -> Option<Kernel> {
        *self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for Hook {
    fn default() -> Self {
        Self::new()
    }
}
