//! The Burn backend, chosen at build time by cargo feature: `cuda` > `wgpu` > `ndarray`.

use std::sync::atomic::{AtomicBool, Ordering};

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

/// Whether this build has a GPU backend (its GPU options are shown in `--help`).
pub const GPU: bool = cfg!(any(feature = "cuda", feature = "wgpu"));

/// The build's optional features, for `--version`: Burn's kernel features and cuBLAS.
pub const BUILD_FEATURES: &str = match (GPU, cfg!(feature = "cublas")) {
    (false, _) => "no GPU",
    (true, false) => KERNELS,
    (true, true) => match KERNELS.as_bytes() {
        b"plain" => "plain, cublas",
        b"fusion" => "fusion, cublas",
        b"autotune" => "autotune, cublas",
        _ => "fusion+autotune, cublas",
    },
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
    /// Matrix products in bf16; weights, LayerNorm, softmax, loss and optimizer in f32. With cuBLAS
    /// on Burn's CUDA stream (`--gemm auto` or `cublas` on a cublas build) one kernel of
    /// prunelab's own rounds both operands and cuBLAS multiplies them in bf16; otherwise Burn
    /// casts around each product.
    Bf16,
}

/// Sets the process-wide precision; bf16 needs a backend with bf16 kernels (cuda). Until
/// [`set_gemm`] hands the products to cuBLAS in bf16, bf16 means Burn's casts around each product.
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

/// Whether `--precision bf16` was asked for (whichever way the products then run).
fn bf16_asked() -> bool {
    prunelab_models::layers::matmul_dtype() == Some(burn::tensor::FloatDType::BF16)
        || CUBLAS_BF16.load(Ordering::Relaxed)
}

/// Whether cuBLAS multiplies in bf16 (`--precision bf16` with cuBLAS installed): the models then
/// hand f32 tensors to the product kernel, which rounds them, and cast nothing themselves.
static CUBLAS_BF16: AtomicBool = AtomicBool::new(false);

/// The precision set by [`set_precision`], for result files: "f32" or "bf16-mixed" (which
/// implementation: [`gemm_name`]).
pub fn precision_name() -> &'static str {
    match prunelab_models::layers::matmul_dtype() {
        _ if bf16_asked() => "bf16-mixed",
        Some(_) => "mixed",
        None => "f32",
    }
}

/// What multiplies the projections' f32 matrices (`--gemm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Gemm {
    /// cuBLAS in TF32 on Burn's CUDA stream where it can run there (a build with --features
    /// cublas, libcublas and libcupti found), else Burn's kernels; never cuBLAS ordered by the host
    Auto,
    /// Burn's own matmul kernels (on cuda: CubeCL's, in TF32 arithmetic)
    Burn,
    /// cuBLAS in TF32 arithmetic, like Burn's cuda matmul and torch's allow_tf32 (needs a build
    /// with --features cublas)
    Cublas,
    /// cuBLAS in strict f32 arithmetic, torch's default (needs --features cublas)
    CublasF32,
    /// The CPU backend's products over every core (what `auto` picks there; not an option)
    #[value(skip)]
    #[cfg_attr(any(feature = "cuda", feature = "wgpu"), allow(dead_code))]
    CpuThreads,
}

/// The `--gemm` in effect (set once, by [`set_gemm`]), and whether cuBLAS's products wait on the
/// host (when prunelab-cublas could not put them on CubeCL's stream).
static GEMM: std::sync::OnceLock<(Gemm, bool)> = std::sync::OnceLock::new();

/// Route the projections' products as `gemm` says, once per process and from the thread that runs
/// the model; fails with the reason when cuBLAS is asked for and this build has no `cublas`
/// feature, or libcublas cannot be loaded or disagrees with Burn's matmul on a check product.
pub fn set_gemm(gemm: Gemm) -> anyhow::Result<()> {
    // `auto` installs what it picks itself (never host-ordered).
    let (gemm, host_ordered) = match gemm {
        Gemm::Auto => (auto_gemm()?, false),
        Gemm::Burn | Gemm::CpuThreads => (Gemm::Burn, false),
        #[cfg(feature = "cublas")]
        Gemm::Cublas | Gemm::CublasF32 => {
            let arithmetic = match (gemm, bf16_asked()) {
                (Gemm::CublasF32, true) => {
                    anyhow::bail!("--gemm cublas-f32 and --precision bf16 ask for two arithmetics: drop one")
                }
                (Gemm::CublasF32, false) => prunelab_cublas::Arithmetic::F32,
                (_, bf16) => cublas_arithmetic(bf16),
            };
            let order = prunelab_cublas::install(&device(), arithmetic)?;
            products_in_cublas(arithmetic);
            (gemm, order == prunelab_cublas::Order::Host)
        }
        #[cfg(not(feature = "cublas"))]
        Gemm::Cublas | Gemm::CublasF32 => return check_gemm(gemm),
    };
    if GEMM.set((gemm, host_ordered)).is_err() {
        anyhow::bail!("--gemm is set once per process");
    }
    Ok(())
}

/// Log, at `info`, what the process's kernels did that no record keeps: how many of cuBLAS's
/// batched products wrote their address lists and how many read one again
/// (`prunelab_cublas::addresses`).
pub fn log_kernel_use() {
    #[cfg(feature = "cublas")]
    {
        let (written, reused) = prunelab_cublas::address_list_counts();
        if written + reused > 0 {
            tracing::info!(written, reused, "the batched products' address lists");
        }
    }
}

/// cuBLAS's arithmetic for `--gemm auto` and `cublas`: TF32, or bf16 under `--precision bf16`.
#[cfg(feature = "cublas")]
fn cublas_arithmetic(bf16: bool) -> prunelab_cublas::Arithmetic {
    if bf16 { prunelab_cublas::Arithmetic::Bf16 } else { prunelab_cublas::Arithmetic::Tf32 }
}

/// After cuBLAS is installed in `arithmetic`: in bf16 the models stop casting (the product
/// kernel rounds the operands), and result files say so.
#[cfg(feature = "cublas")]
fn products_in_cublas(arithmetic: prunelab_cublas::Arithmetic) {
    if arithmetic == prunelab_cublas::Arithmetic::Bf16 {
        prunelab_models::layers::set_matmul_dtype(None);
        CUBLAS_BF16.store(true, Ordering::Relaxed);
    }
}

/// Whether this build can do what `gemm` asks (checked for every command, also those that
/// start no device): cuBLAS needs the `cublas` feature; on the CPU build, `PRUNELAB_CPU_ISA`
/// must name a level of instructions.
pub fn check_gemm(gemm: Gemm) -> anyhow::Result<()> {
    #[cfg(not(any(feature = "cuda", feature = "wgpu")))]
    prunelab_gemm::cpu::isa::setting()?;
    if !cfg!(feature = "cublas") && matches!(gemm, Gemm::Cublas | Gemm::CublasF32) {
        anyhow::bail!(
            "--gemm {} needs a build with --features cublas (cuda); this prunelab is built with {NAME} \
             (use --gemm auto or burn)",
            gemm_label(gemm, false)
        );
    }
    Ok(())
}

/// What `--gemm auto` picks, installed: cuBLAS in TF32 when it runs on Burn's CUDA stream (its
/// products then make GPT-2 small's evaluation 1.6× faster on an H200 and fine-tuning as fast,
/// `bench/NOTES.md`), else Burn's kernels, saying why at `info` level. A setting cuBLAS does not
/// take (`PRUNELAB_CUBLAS_ORDER`) is an error all the same.
#[cfg(feature = "cublas")]
fn auto_gemm() -> anyhow::Result<Gemm> {
    let arithmetic = cublas_arithmetic(bf16_asked());
    Ok(match prunelab_cublas::install(&device(), arithmetic) {
        Ok(prunelab_cublas::Order::Stream) => {
            products_in_cublas(arithmetic);
            Gemm::Cublas
        }
        Ok(prunelab_cublas::Order::Host) => {
            // Host-ordered products are slower than Burn's kernels in fine-tuning: take them out.
            prunelab_models::layers::set_product_kernel(None);
            tracing::info!("--gemm auto: Burn's kernels (cuBLAS's products would wait on the host)");
            Gemm::Burn
        }
        Err(error @ prunelab_cublas::CublasError::Setting(_)) => return Err(error.into()),
        Err(error) => {
            tracing::info!("--gemm auto: Burn's kernels ({error})");
            Gemm::Burn
        }
    })
}

/// On the CPU backend, `--gemm auto` spreads the projections' products over the cores
/// (prunelab-gemm's kernel: Burn's product, bit for bit, on every core).
#[cfg(all(not(feature = "cublas"), not(any(feature = "cuda", feature = "wgpu"))))]
fn auto_gemm() -> anyhow::Result<Gemm> {
    prunelab_gemm::cpu::install();
    Ok(Gemm::CpuThreads)
}

#[cfg(all(not(feature = "cublas"), any(feature = "cuda", feature = "wgpu")))]
fn auto_gemm() -> anyhow::Result<Gemm> {
    Ok(Gemm::Burn)
}

/// The `--gemm` in effect, for result files: "burn", "cublas" (TF32), "cublas-f32" (either
/// followed by ", host-ordered" when cuBLAS's products wait on the host) or "cublas-bf16"
/// (`--precision bf16`, which runs only on Burn's CUDA stream).
pub fn gemm_name() -> &'static str {
    if CUBLAS_BF16.load(Ordering::Relaxed) {
        return "cublas-bf16";
    }
    let (gemm, host_ordered) = GEMM.get().copied().unwrap_or((Gemm::Burn, false));
    gemm_label(gemm, host_ordered)
}

fn gemm_label(gemm: Gemm, host_ordered: bool) -> &'static str {
    match (gemm, host_ordered) {
        (Gemm::Auto, _) => "auto",
        (Gemm::CpuThreads, _) => "cpu-threads",
        (Gemm::Burn, _) => "burn",
        (Gemm::Cublas, false) => "cublas",
        (Gemm::Cublas, true) => "cublas, host-ordered",
        (Gemm::CublasF32, false) => "cublas-f32",
        (Gemm::CublasF32, true) => "cublas-f32, host-ordered",
    }
}

/// What runs softmax, GELU, dropout and LayerNorm, and the flat optimizer step's gathers and
/// global norm (`--fused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fused {
    /// prunelab's own kernels where this build has them (the CPU build: softmax, GELU, dropout
    /// and LayerNorm in one pass each, forward and backward, over every core, deterministic, and
    /// reshapes that share memory instead of copying; a cuda build with
    /// cublas: LayerNorm, embedding gradients and softmax as CUDA kernels of its own, and the
    /// optimizer's gradient copies and global norm, all queued on CubeCL's stream), else Burn's ops
    Auto,
    /// Burn's ops (each a chain of small kernels; on the CPU, on one core)
    Burn,
    /// Only the optimizer's gradient copies and global norm on CubeCL's stream (cuda builds with
    /// cublas; for benchmarks)
    Gathers,
    /// Only LayerNorm, embedding gradients and softmax as CUDA kernels of prunelab's own (cuda
    /// builds with cublas; for benchmarks)
    Norms,
}

/// The `--fused` in effect, as result files name it (set once, by [`set_fused`]).
static FUSED: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// Install the kernels `fused` asks for, once per process.
pub fn set_fused(fused: Fused) -> anyhow::Result<()> {
    let name = match fused {
        Fused::Auto => auto_fused(),
        Fused::Burn => "burn",
        Fused::Gathers | Fused::Norms => cuda_fused(fused == Fused::Gathers, fused == Fused::Norms)?,
    };
    FUSED.set(name).map_err(|_| anyhow::anyhow!("--fused is set once per process"))
}

/// On the CPU backend, prunelab-gemm's fused softmax, GELU, dropout and LayerNorm, the attention
/// scores' scale and mask in one pass, and its reshapes that share memory instead of copying.
#[cfg(not(any(feature = "cuda", feature = "wgpu")))]
fn auto_fused() -> &'static str {
    prunelab_gemm::cpu::fused::install();
    prunelab_gemm::cpu::norm::install();
    prunelab_gemm::cpu::scores::install();
    prunelab_gemm::cpu::view::install();
    "cpu-threads"
}

/// On cuda with cublas, the layers' kernels (LayerNorm, embeddings, softmax, GELU, dropout) and the optimizer's
/// (each group where it installs; a warning says why not, and Burn's ops stay).
#[cfg(feature = "cublas")]
fn auto_fused() -> &'static str {
    cuda_fused(true, true).expect("cuda_fused only fails where asked for one part that did not install")
}

/// The other GPU builds have no fused kernels of their own: Burn's ops.
#[cfg(all(any(feature = "cuda", feature = "wgpu"), not(feature = "cublas")))]
fn auto_fused() -> &'static str {
    "burn"
}

/// Install the optimizer's gathers and norm and/or the layers' kernels (LayerNorm, embedding
/// gradients, softmax, GELU, dropout) on cuda with cublas; the name of what was installed whole. Asked for one
/// part alone, failing to install any of it is an error; asked for both, a warning.
#[cfg(feature = "cublas")]
fn cuda_fused(gathers: bool, norms: bool) -> anyhow::Result<&'static str> {
    let alone = gathers != norms;
    type Install = fn(&burn::tensor::Device<Backend>) -> Result<(), prunelab_cublas::CublasError>;
    let install = |wanted: bool, what: &str, f: Install| {
        if !wanted {
            return Ok(false);
        }
        match f(&device()) {
            Ok(()) => Ok(true),
            Err(why) if alone => Err(anyhow::anyhow!("--fused: {what}: {why}")),
            Err(why) => {
                tracing::warn!("{what} stay Burn's ops: {why}");
                Ok(false)
            }
        }
    };
    let optimizer: Install = |device| {
        prunelab_cublas::install_gathers(device)?;
        prunelab_cublas::install_squares(device)
    };
    let gathers = install(gathers, "the optimizer's gathers and norm", optimizer)?;
    // The layers' kernels, each on its own: one that fails its check leaves the others installed.
    let layers: [(&str, Install); 3] = [
        ("LayerNorms", prunelab_cublas::install_norms),
        ("embedding gradients", prunelab_cublas::install_embeddings),
        ("softmaxes, GELUs and dropouts", prunelab_cublas::install_fused),
    ];
    let mut all_layers = norms;
    for (what, kernels) in layers {
        all_layers &= install(norms, what, kernels)?;
    }
    let norms = all_layers;
    Ok(match (gathers, norms) {
        (true, true) => "cuda-stream",
        (true, false) => "cuda-stream gathers",
        (false, true) => "cuda-stream norms",
        (false, false) => "burn",
    })
}

/// Without cublas there are no CUDA kernels of prunelab's own.
#[cfg(not(feature = "cublas"))]
fn cuda_fused(_: bool, _: bool) -> anyhow::Result<&'static str> {
    anyhow::bail!(
        "--fused gathers and --fused norms need a build with --features cublas (cuda); this prunelab is built with {NAME}"
    )
}

/// The `--fused` in effect, for result files: "cpu-threads", "cuda-stream" (or "cuda-stream
/// gathers" / "cuda-stream norms": only those) or "burn".
pub fn fused_name() -> &'static str {
    FUSED.get().copied().unwrap_or("burn")
}

/// With `PRUNELAB_PHASES` set, under the CUPTI counter `bench/cupti_busy.c` (cuda builds with
/// cublas): at each phase of a training step, wait for the device and tell the counter, so that
/// it counts launches per phase. Waiting changes the timing and splits Burn's fusion at the
/// marks: for counting only.
#[cfg(feature = "cublas")]
pub fn set_phase_marks() -> anyhow::Result<()> {
    let Some(marker) = prunelab_cublas::phase_marker()? else { return Ok(()) };
    let probe = Box::new(move |phase: prunelab_train::phase::Phase| {
        <Backend as burn::tensor::backend::Backend>::sync(&device()).expect("waiting for the device at a phase mark");
        marker.mark(phase.name());
    });
    if prunelab_train::phase::set_probe(probe).is_err() {
        anyhow::bail!("phase marks are set once per process");
    }
    tracing::info!("phase marks for the CUPTI counter: the device is waited for at each phase of a step");
    Ok(())
}

/// Phase marks need the CUPTI counter's cuda build (`--features cublas`).
#[cfg(not(feature = "cublas"))]
pub fn set_phase_marks() -> anyhow::Result<()> {
    if std::env::var_os("PRUNELAB_PHASES").is_some_and(|v| !v.is_empty()) {
        anyhow::bail!(
            "PRUNELAB_PHASES needs a build with --features cublas (cuda); this prunelab is built with {NAME}"
        );
    }
    Ok(())
}

/// The shape [`matmul_arithmetic`] probes: [512, 768] × [768, 768], a GPT-2/BERT-base-sized product.
pub const PROBE_SHAPE: [usize; 3] = [512, 768, 768];

/// Which arithmetic the projections' products of f32 operands run in (Burn's matmul, or cuBLAS
/// under `--gemm cublas*`), measured (for result files):
/// the relative error of a product of zero-mean operands of
/// [`PROBE_SHAPE`]. Burn 0.21's `cuda` matmuls stage f32 operands in TF32 on GPUs that have it.
pub fn matmul_arithmetic() -> prunelab_record::MatmulArithmetic {
    let [m, k, n] = PROBE_SHAPE;
    let device = device();
    let normal = burn::tensor::Distribution::Normal(0.0, 1.0);
    let a = burn::tensor::Tensor::<Backend, 2>::random([m, k], normal, &device);
    let b = burn::tensor::Tensor::<Backend, 2>::random([k, n], normal, &device);
    let c = prunelab_models::layers::projection(a.clone(), b.clone());
    let (relative_error, arithmetic, error) = match product_error(a, b, c) {
        Ok(e) => (Some(e), Some(arithmetic_name(e).to_owned()), None),
        Err(err) => (None, None, Some(err.to_string())),
    };
    prunelab_record::MatmulArithmetic { shape: PROBE_SHAPE, relative_error, arithmetic, error }
}

/// `c = a·b` as the backend computed it: the relative error of its first 16 rows against an f64
/// product on the host.
pub fn product_error(
    a: burn::tensor::Tensor<Backend, 2>,
    b: burn::tensor::Tensor<Backend, 2>,
    c: burn::tensor::Tensor<Backend, 2>,
) -> anyhow::Result<f64> {
    let [m, k] = a.dims();
    let n = b.dims()[1];
    let rows = m.min(16);
    let host = |t: burn::tensor::Tensor<Backend, 2>| {
        t.into_data().convert::<f32>().to_vec::<f32>().map_err(|e| anyhow::anyhow!("reading a tensor back: {e:?}"))
    };
    Ok(relative_error(&host(a.slice([0..rows, 0..k]))?, &host(b)?, &host(c.slice([0..rows, 0..n]))?, [rows, k, n]))
}

/// f32 products summed in f32 land near 1e-7 against an f64 product; TF32 operands (10-bit
/// mantissas) near 3e-4; bf16 operands (7 bits, under `--precision bf16`) near 2e-3.
pub fn arithmetic_name(relative_error: f64) -> &'static str {
    if relative_error < 1e-5 {
        "f32"
    } else if relative_error < 1e-3 {
        "reduced (TF32-like)"
    } else {
        "reduced (bf16-like)"
    }
}

/// `‖c − a·b‖ / ‖a·b‖` (Frobenius), with `a·b` computed in f64; `a` is `[rows, k]`, `b` `[k, n]`.
pub fn relative_error(a: &[f32], b: &[f32], c: &[f32], [rows, k, n]: [usize; 3]) -> f64 {
    let mut exact = vec![0.0f64; n];
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    for i in 0..rows {
        exact.iter_mut().for_each(|e| *e = 0.0);
        for (p, &x) in a[i * k..(i + 1) * k].iter().enumerate() {
            let x = f64::from(x);
            for (e, &y) in exact.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                *e += x * f64::from(y);
            }
        }
        for (e, &got) in exact.iter().zip(&c[i * n..(i + 1) * n]) {
            diff += (e - f64::from(got)).powi(2);
            norm += e * e;
        }
    }
    (diff / norm).sqrt()
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

/// The machine, for result files and bench records: the GPU the run uses as the driver names it
/// (`nvidia-smi`, on GPU builds; `CUDA_VISIBLE_DEVICES` is honoured), the CPU model and the
/// threads the process may use.
pub fn hardware() -> prunelab_record::Hardware {
    let (gpu, gpu_count) = if GPU { nvidia_gpus() } else { (None, 0) };
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|text| {
        text.lines().find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, v)| v.trim().to_owned()))
    });
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    prunelab_record::Hardware { gpu, gpu_count, cpu, threads }
}

/// The first visible NVIDIA GPU's name and how many are visible, from `nvidia-smi` (none when
/// it is missing or fails).
fn nvidia_gpus() -> (Option<String>, usize) {
    let Ok(out) =
        std::process::Command::new("nvidia-smi").args(["--query-gpu=index,name", "--format=csv,noheader"]).output()
    else {
        return (None, 0);
    };
    let listed: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(',').map(|(i, n)| (i.trim().to_owned(), n.trim().to_owned())))
        .collect();
    let visible: Vec<&(String, String)> = match std::env::var("CUDA_VISIBLE_DEVICES") {
        Ok(list) if !list.trim().is_empty() => {
            list.split(',').filter_map(|d| listed.iter().find(|(i, _)| i == d.trim())).collect()
        }
        _ => listed.iter().collect(),
    };
    (visible.first().map(|(_, name)| name.clone()), visible.len())
}

/// Starts the backend's device, so that a GPU build run where its GPU stack is missing stops
/// with one error line that names what is missing and what to do, instead of the backend's
/// panics (cudarc's "Unable to dynamically load", CubeCL's "No possible adapter", then a
/// `RecvError` from its runtime thread). A no-op on the CPU backend.
pub fn start() -> anyhow::Result<()> {
    if !GPU {
        return Ok(());
    }
    static PANICS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let previous = std::panic::take_hook();
    // Every thread's panic message (the runtime thread's first) is kept, and none is printed.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        PANICS.lock().unwrap_or_else(|p| p.into_inner()).push(message);
    }));
    let probe = std::panic::catch_unwind(|| {
        burn::tensor::Tensor::<Backend, 1>::from_floats([1.0], &device()).into_data();
    });
    std::panic::set_hook(previous);
    if probe.is_ok() {
        return Ok(());
    }
    let messages = std::mem::take(&mut *PANICS.lock().unwrap_or_else(|p| p.into_inner()));
    anyhow::bail!("{}", start_failure(&messages))
}

/// What a failed start means, from the panic messages the backend left.
fn start_failure(messages: &[String]) -> String {
    let all = messages.join("; ");
    let cpu = "or use a CPU build (`cargo build --release -p prunelab-cli`, the default features)";
    if all.contains("nvrtc") || all.contains("NVRTC") {
        format!(
            "the cuda backend could not load NVRTC, CUDA's run-time compiler: install the CUDA toolkit and set \
             CUDA_PATH (e.g. CUDA_PATH=/usr/local/cuda), {cpu} ({all})"
        )
    } else if all.contains("dynamically load") || all.contains("libcuda") {
        format!(
            "the cuda backend found no NVIDIA driver (libcuda.so could not be loaded): run it on a machine with an \
             NVIDIA GPU and its driver, {cpu}"
        )
    } else if all.contains("adapter") {
        format!(
            "the wgpu backend found no GPU adapter (Vulkan, Metal or DX12): install the GPU's Vulkan driver and \
             loader (libvulkan1 on Debian), {cpu}"
        )
    } else {
        format!("the {NAME} backend could not start ({all}): check the GPU driver, {cpu}")
    }
}
