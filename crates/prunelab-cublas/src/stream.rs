//! Which CUDA stream CubeCL queues the current Burn stream's kernels on, learnt through CUPTI.
//!
//! CubeCL 0.10 keeps its CUDA streams private, so cuBLAS cannot be handed the stream that orders
//! Burn's kernels. CUPTI's callback API reports the arguments of every driver call, among them
//! the stream of each `cuLaunchKernel`: subscribing while one tiny kernel of the current Burn
//! stream (`StreamId`) is launched names its CUDA stream, after which the subscription ends and
//! costs nothing more. A product queued there runs after the kernels that wrote its operands and
//! before any kernel CubeCL queues later (those that read it, or reuse its operands' memory),
//! with no wait on the host.

use std::ffi::c_void;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use cudarc::cupti::{result as cupti, sys as cupti_sys};
use cudarc::driver::sys as driver_sys;

use cupti_sys::CUpti_driver_api_trace_cbid_enum as DriverCall;

/// The driver calls that launch a kernel the way CubeCL does (`_ptsz`: with per-thread default
/// streams); both take `cuLaunchKernel_params`.
const LAUNCH_CALLS: [DriverCall; 2] =
    [DriverCall::CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, DriverCall::CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel_ptsz];

/// While subscribed: the stream of the first kernel launch seen, how many launches were seen, and
/// how many of them went to another stream.
static LAUNCHED_ON: AtomicPtr<c_void> = AtomicPtr::new(null_mut());
static LAUNCHES: AtomicUsize = AtomicUsize::new(0);
static ELSEWHERE: AtomicUsize = AtomicUsize::new(0);

/// CUPTI's callback: records the stream of each `cuLaunchKernel` as it is entered.
#[allow(unsafe_code)]
unsafe extern "C" fn on_driver_call(
    _userdata: *mut c_void,
    domain: cupti_sys::CUpti_CallbackDomain,
    cbid: cupti_sys::CUpti_CallbackId,
    data: *const c_void,
) {
    if domain != cupti_sys::CUpti_CallbackDomain::CUPTI_CB_DOMAIN_DRIVER_API
        || !LAUNCH_CALLS.iter().any(|&call| call as cupti_sys::CUpti_CallbackId == cbid)
        || data.is_null()
    {
        return;
    }
    // SAFETY: for the driver domain CUPTI passes a `CUpti_CallbackData`, whose `functionParams`
    // point to the called function's parameter struct: `cuLaunchKernel_params` for both
    // `LAUNCH_CALLS` (the `_ptsz` variant's struct has the same layout). Both live for the
    // duration of the callback. (Two launches at once could leave the first stream unset when the
    // second compares with it: that counts as another stream, and `learn` refuses.)
    unsafe {
        let data = &*data.cast::<cupti_sys::CUpti_CallbackData>();
        if data.callbackSite != cupti_sys::CUpti_ApiCallbackSite::CUPTI_API_ENTER || data.functionParams.is_null() {
            return;
        }
        let stream = (*data.functionParams.cast::<cupti_sys::cuLaunchKernel_params>()).hStream.cast::<c_void>();
        if LAUNCHES.fetch_add(1, Ordering::SeqCst) == 0 {
            LAUNCHED_ON.store(stream, Ordering::SeqCst);
        } else if LAUNCHED_ON.load(Ordering::SeqCst) != stream {
            ELSEWHERE.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The CUDA stream that `launch` (which must launch at least one kernel of the current Burn stream
/// and wait for it) launches its kernels on; `Err` says why it could not be learnt, or that they
/// went to several streams.
pub(crate) fn learn(launch: impl FnOnce()) -> Result<driver_sys::CUstream, String> {
    // SAFETY: only asks the dynamic loader for the library under its usual names.
    #[allow(unsafe_code)]
    if !unsafe { cupti_sys::is_culib_present() } {
        return Err("the dynamic loader finds no libcupti.so (it ships with the CUDA toolkit, in lib64 \
                    or extras/CUPTI/lib64: put that on LD_LIBRARY_PATH)"
            .to_string());
    }
    let failed = |what: &str, error: cupti::CuptiError| format!("{what}: {:?}", error.0);
    let mut subscriber: cupti_sys::CUpti_SubscriberHandle = null_mut();
    // SAFETY: `subscriber` is a valid out-pointer; `on_driver_call` has CUPTI's callback signature
    // and only reads what CUPTI passes it. Fails (and changes nothing) when another tool, such as a
    // profiler, holds CUPTI.
    #[allow(unsafe_code)]
    unsafe { cupti::subscribe(&mut subscriber, Some(on_driver_call), null_mut()) }
        .map_err(|error| failed("cuptiSubscribe (is a profiler attached?)", error))?;
    LAUNCHED_ON.store(null_mut(), Ordering::SeqCst);
    LAUNCHES.store(0, Ordering::SeqCst);
    ELSEWHERE.store(0, Ordering::SeqCst);
    let domain = cupti_sys::CUpti_CallbackDomain::CUPTI_CB_DOMAIN_DRIVER_API;
    let mut enabled = Ok(());
    for call in LAUNCH_CALLS {
        // SAFETY: `subscriber` was just created.
        #[allow(unsafe_code)]
        let result = unsafe { cupti::enable_callback(1, subscriber, domain, call as cupti_sys::CUpti_CallbackId) };
        enabled = enabled.and(result.map_err(|error| failed("cuptiEnableCallback", error)));
    }
    if enabled.is_ok() {
        launch();
    }
    // SAFETY: `subscriber` was created above and is unsubscribed once; no callback runs after.
    #[allow(unsafe_code)]
    let unsubscribed = unsafe { cupti::unsubscribe(subscriber) }.map_err(|error| failed("cuptiUnsubscribe", error));
    enabled?;
    unsubscribed?;
    let stream = LAUNCHED_ON.load(Ordering::SeqCst);
    match LAUNCHES.load(Ordering::SeqCst) {
        0 => Err("CUPTI saw no kernel launch".to_string()),
        launches if ELSEWHERE.load(Ordering::SeqCst) > 0 => {
            Err(format!("{launches} kernel launches went to several streams"))
        }
        _ if stream.is_null() => Err("CubeCL launched on the default stream".to_string()),
        launches => {
            tracing::debug!(launches, ?stream, "CubeCL's stream learnt through CUPTI");
            Ok(stream.cast())
        }
    }
}
