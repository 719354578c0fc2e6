//! Panics and what they mean for a run's result.
//!
//! A panic on the thread that trains is caught and becomes the run's failure reason. A panic on
//! a thread prunelab does not own — CubeCL's device thread, when an allocation fails — does not
//! stop that thread's callers: the run goes on with garbage and fails later for another reason
//! (a NaN loss, a failed read). The first such panic is recorded here, so that the failure
//! names its cause.

use std::sync::OnceLock;

/// The first panic message of a thread other than `main`.
static ELSEWHERE: OnceLock<String> = OnceLock::new();

/// Record the first panic of any thread other than `main` (the default hook still prints every
/// panic). Called once, at start.
pub fn record_thread_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() != Some("main") {
            let _ = ELSEWHERE.set(message(info.payload()));
        }
        previous(info);
    }));
}

/// The first panic recorded on another thread, if any.
pub fn elsewhere() -> Option<&'static str> {
    ELSEWHERE.get().map(String::as_str)
}

/// A panic's message.
pub fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// Why a panic stopped a run, for its result: "out of memory: …" when the backend ran out of
/// memory, else "the backend panicked: …".
pub fn reason(message: &str) -> String {
    let lower = message.to_lowercase();
    let oom = ["out of memory", "outofmemory", "out_of_memory", "oom", "can't allocate buffer"];
    if oom.iter().any(|k| lower.contains(k)) {
        format!("out of memory: {message}")
    } else {
        format!("the backend panicked: {message}")
    }
}

/// A run's failure reason: `error`, preceded by the panic of another thread that came first
/// (whose consequence the error usually is).
pub fn failure_reason(error: &str, elsewhere: Option<&str>) -> String {
    match elsewhere {
        Some(panic) if !error.contains(panic) => {
            format!("{} (on a backend thread), and then: {error}", reason(panic))
        }
        _ => error.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The H100 call of 2026-12-06: four runs sharing the GPU, CubeCL's device thread failed to
    /// allocate and the runs then reported only a NaN loss.
    #[test]
    fn a_device_thread_allocation_failure_comes_first_in_the_reason() {
        let nan = "the loss is NaN at epoch 1, step 16";
        let panic = "called `Result::unwrap()` on an `Err` value: can't allocate buffer of size: 5313593344";
        let both = failure_reason(nan, Some(panic));
        assert!(both.starts_with("out of memory: called `Result::unwrap()`"), "{both}");
        assert!(both.ends_with(&format!("(on a backend thread), and then: {nan}")), "{both}");
        assert_eq!(failure_reason(nan, None), nan);
        assert_eq!(reason("a kernel that cannot launch"), "the backend panicked: a kernel that cannot launch");
    }
}
