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

/// Which of Burn's optional GPU kernel features this build has, for result files: "fusion",
/// "autotune", both joined by '+', or "plain".
pub const KERNELS: &str = match (cfg!(feature = "fusion"), cfg!(feature = "autotune")) {
    (true, true) => "fusion+autotune",
    (true, false) => "fusion",
    (false, true) => "autotune",
    (false, false) => "plain",
};

/// The precision of matrix products (see [`prunelab_models::layers::set_matmul_dtype`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Precision {
    /// Everything in f32.
    F32,
    /// Matrix products in bf16; weights, LayerNorm, softmax, loss and optimizer in f32.
    Bf16,
}

/// Sets the process-wide precision; bf16 needs a backend with bf16 kernels (cuda).
pub fn set_precision(precision: Precision) -> anyhow::Result<()> {
    match precision {
        Precision::F32 => prunelab_models::layers::set_matmul_dtype(None),
        Precision::Bf16 => {
            if NAME != "cuda" {
                anyhow::bail!(
                    "--precision bf16 needs the cuda backend; this prunelab is built with {NAME} (build with --features \
                     cuda, or use --precision f32)"
                );
            }
            prunelab_models::layers::set_matmul_dtype(Some(burn::tensor::FloatDType::BF16));
        }
    }
    Ok(())
}

/// The precision set by [`set_precision`], for result files: "f32" or "bf16-mixed".
pub fn precision_name() -> &'static str {
    match prunelab_models::layers::matmul_dtype() {
        Some(burn::tensor::FloatDType::BF16) => "bf16-mixed",
        Some(_) => "mixed",
        None => "f32",
    }
}

/// The default device of the backend.
pub fn device() -> burn::tensor::Device<Backend> {
    Default::default()
}

/// Points CubeCL's kernel compilation cache and autotune cache at one directory, so a second run
/// (or a fresh machine given the directory) skips kernel compilation and autotuning. Called once,
/// first thing in `main`; a no-op on the CPU backend.
///
/// The directory is `dir`, else `$PRUNELAB_KERNEL_CACHE`, else `<user cache dir>/prunelab/kernels`.
/// A `cubecl.toml` the user keeps in the working directory (or above) still supplies every other
/// setting.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
pub fn configure_kernel_cache(dir: Option<std::path::PathBuf>) {
    use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig, cache::CacheConfig};
    let dir = dir
        .or_else(|| std::env::var_os("PRUNELAB_KERNEL_CACHE").filter(|v| !v.is_empty()).map(Into::into))
        .or_else(|| user_cache_dir().map(|d| d.join("prunelab").join("kernels")));
    let Some(dir) = dir else {
        tracing::warn!("no cache directory found (set PRUNELAB_KERNEL_CACHE): kernels are compiled afresh each run");
        return;
    };
    let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
    config.compilation.cache = Some(CacheConfig::File(dir.join("compilation")));
    config.autotune.cache = CacheConfig::File(dir.join("autotune"));
    tracing::debug!(dir = %dir.display(), "kernel cache");
    CubeClRuntimeConfig::set(config);
}

/// The CPU backend compiles nothing: nothing to cache.
#[cfg(not(any(feature = "cuda", feature = "wgpu")))]
pub fn configure_kernel_cache(_dir: Option<std::path::PathBuf>) {}

#[cfg(any(feature = "cuda", feature = "wgpu"))]
fn user_cache_dir() -> Option<std::path::PathBuf> {
    let from = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
    from("XDG_CACHE_HOME").or_else(|| from("HOME").map(|h| h.join(".cache")))
}
