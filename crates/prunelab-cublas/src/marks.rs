//! Phase marks for the CUPTI counter `bench/cupti_busy.c`: with [`PHASES_VARIABLE`] set, the
//! `cupti_busy_phase` function of the library CUDA loaded through `CUDA_INJECTION64_PATH`, which
//! counts the kernels, copies and fills of each phase of a training step
//! (`prunelab_train::phase`). Measurement only: nothing calls it unless asked.

use std::ffi::{CStr, c_char};

use crate::cublas::CublasError;

/// The variable that asks for phase marks (any non-empty value).
pub const PHASES_VARIABLE: &str = "PRUNELAB_PHASES";

/// The exported mark of `bench/cupti_busy.c`.
type MarkFn = unsafe extern "C" fn(*const c_char);

/// `cupti_busy_phase`, found in the injected library (which stays loaded for the process).
#[derive(Debug, Clone, Copy)]
pub struct PhaseMarker(MarkFn);

impl PhaseMarker {
    /// Tell the counter that phase `name` begins; the caller has waited for the device.
    pub fn mark(self, name: &CStr) {
        // SAFETY: `self.0` is `cupti_busy_phase(const char *)` of a library that is never
        // unloaded (see `phase_marker`), and `name` is a NUL-terminated string alive for the call.
        #[allow(unsafe_code)]
        unsafe {
            (self.0)(name.as_ptr())
        }
    }
}

/// The marker when [`PHASES_VARIABLE`] asks for one; an error when it does and the injected
/// library (`CUDA_INJECTION64_PATH`) is missing or has no `cupti_busy_phase`.
pub fn phase_marker() -> Result<Option<PhaseMarker>, CublasError> {
    if std::env::var_os(PHASES_VARIABLE).is_none_or(|v| v.is_empty()) {
        return Ok(None);
    }
    let setting = |why: String| CublasError::Setting(format!("{PHASES_VARIABLE} is set, but {why}"));
    let path = std::env::var_os("CUDA_INJECTION64_PATH")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| setting("CUDA_INJECTION64_PATH is not: it names bench/cupti_busy.c's library".into()))?;
    // SAFETY: CUDA has already loaded this library as its injection (so opening it again runs no
    // initialiser), and the symbol's type is the one bench/cupti_busy.c declares.
    #[allow(unsafe_code)]
    let mark = unsafe {
        let library = libloading::Library::new(&path)
            .map_err(|error| setting(format!("{} does not load: {error}", path.display())))?;
        let mark = *library
            .get::<MarkFn>(c"cupti_busy_phase")
            .map_err(|error| setting(format!("{} has no cupti_busy_phase: {error}", path.display())))?;
        // The function must outlive this handle: the library is never closed.
        std::mem::forget(library);
        mark
    };
    Ok(Some(PhaseMarker(mark)))
}
