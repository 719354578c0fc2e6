//! The Burn backend, chosen at build time by cargo feature: `cuda` > `wgpu` > `ndarray`.

#[cfg(feature = "cuda")]
pub type Backend = burn::backend::Cuda;

#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
pub type Backend = burn::backend::Wgpu;

#[cfg(all(feature = "ndarray", not(any(feature = "cuda", feature = "wgpu"))))]
pub type Backend = burn::backend::NdArray;

#[cfg(not(any(feature = "ndarray", feature = "wgpu", feature = "cuda")))]
compile_error!("prunelab-cli needs one backend feature: ndarray (default), wgpu or cuda");

/// The training backend: the chosen one under autodiff.
pub type TrainBackend = burn::backend::Autodiff<Backend>;

/// The backend's name, for result files.
pub const NAME: &str = if cfg!(feature = "cuda") {
    "cuda"
} else if cfg!(feature = "wgpu") {
    "wgpu"
} else {
    "ndarray"
};

/// The default device of the backend.
pub fn device() -> burn::tensor::Device<Backend> {
    Default::default()
}
