//! Test equipment for arcbox-vz on Linux: links the simulator (fake
//! Virtualization.framework classes over GCC's libobjc and GNUstep Foundation,
//! compiler-rt blocks, a pthread serial-queue libdispatch) into the test binary, and
//! exposes its counters and control hooks.
//!
//! Nothing here is part of arcbox-vz's API. Every test binary that uses arcbox-vz
//! needs `use arcbox_vz_sim as _;` (or any use of this crate) so the simulator links.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

pub mod raw {
    //! The simulator's C entry points.
    use std::ffi::{c_char, c_int, c_long, c_void};

    unsafe extern "C" {
        pub fn sim_live_objects() -> c_long;
        pub fn sim_live_blocks() -> c_long;
        pub fn sim_dispatch_quiesce(timeout_ms: c_long) -> c_long;
        pub fn sim_dispatch_live_queues() -> c_long;

        pub fn sim_call_block1_on_thread(block: *mut c_void, a: *mut c_void, times: c_int, copies: c_int);
        pub fn sim_call_block2_on_thread(
            block: *mut c_void,
            a: *mut c_void,
            b: *mut c_void,
            times: c_int,
            copies: c_int,
        );
        pub fn sim_block_signature(block: *const c_void) -> *const c_char;
        pub fn sim_block_descriptor_size(block: *const c_void) -> std::ffi::c_ulong;
        pub fn sim_make_adder_block(total: *mut c_long, addend: c_long) -> *mut c_void;
    }
}

/// Live fake Objective-C objects (+1 in `allocWithZone:`, -1 in `dealloc`).
pub fn live_objects() -> i64 {
    // SAFETY: reads an atomic counter.
    unsafe { raw::sim_live_objects() }
}

/// Live heap blocks (every `_Block_copy` of a stack block until its last release).
pub fn live_blocks() -> i64 {
    // SAFETY: reads a counter under a lock.
    unsafe { raw::sim_live_blocks() }
}

/// Waits up to `timeout` for every dispatch queue thread to finish, joins them, and
/// returns how many are still alive.
pub fn quiesce(timeout: Duration) -> i64 {
    // SAFETY: waits on the shim's own lock and joins threads that have finished.
    unsafe { raw::sim_dispatch_quiesce(timeout.as_millis() as i64) }
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs one simulator scenario alone, then checks that it cleaned up after itself:
/// every dispatch queue drained and its thread exited, and no fake object or heap
/// block is left alive. Tests in one binary share these counters, so scenarios run one
/// at a time.
///
/// # Panics
///
/// When the scenario panics, or leaves objects, blocks or queues behind.
pub fn scenario<R>(body: impl FnOnce() -> R) -> R {
    let _serial: MutexGuard<'_, ()> = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let (objects, blocks) = (live_objects(), live_blocks());
    assert_eq!((objects, blocks), (0, 0), "a previous scenario leaked");
    let out = body();
    let queues = quiesce(Duration::from_secs(10));
    assert_eq!(queues, 0, "dispatch queues still alive after the scenario");
    assert_eq!(live_blocks(), 0, "heap blocks leaked by the scenario");
    assert_eq!(live_objects(), 0, "fake Objective-C objects leaked by the scenario");
    out
}
