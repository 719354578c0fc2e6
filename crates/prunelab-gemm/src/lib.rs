//! The projections' matrix products (`prunelab_models::layers::linear`'s `x · W`) as one
//! operation of their own, for kernels Burn does not have.
//!
//! - [`autodiff::product`]: on `Autodiff<B>`, a product is one tracked operation whose forward
//!   and backward are products of a given kernel ([`autodiff::GemmFn`], `op(a) · op(b)`:
//!   `y = x · w`, `dx = g · wᵀ`, `dw = xᵀ · g`, as `torch.nn.Linear` computes them).
//!   `prunelab-cublas` (cuBLAS on CUDA) and [`cpu`] build on it.
//! - [`cpu`] (feature `ndarray`): the product on Burn's CPU backend, its output rows split over
//!   the cores, each part by the same single-threaded kernel Burn uses — so the result is Burn's,
//!   bit for bit, whatever the number of threads (Burn 0.21's own threads are not deterministic).
//!   [`cpu::install`] registers it with `prunelab_models::layers::set_product_kernel`.
#![warn(missing_docs)]

pub mod autodiff;
#[cfg(feature = "ndarray")]
pub mod cpu;
