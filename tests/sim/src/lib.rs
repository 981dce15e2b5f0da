//! Test equipment for arcbox-vz on Linux: links the simulator (fake
//! Virtualization.framework classes over GCC's libobjc and GNUstep Foundation,
//! compiler-rt blocks, a pthread serial-queue libdispatch) into the test binary, and
//! exposes its counters and control hooks.
//!
//! Nothing here is part of arcbox-vz's API. Every test binary that uses arcbox-vz
//! needs `use arcbox_vz_sim as _;` (or any use of this crate) so the simulator links.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

pub mod child;

use std::ffi::c_int;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

pub mod arm64;
pub mod availability;

pub mod raw {
    //! The simulator's C entry points.
    use std::ffi::{c_char, c_int, c_long, c_void};

    unsafe extern "C" {
        pub fn sim_macos() -> c_int;
        pub fn sim_live_objects() -> c_long;
        pub fn sim_live_blocks() -> c_long;
        pub fn sim_dispatch_quiesce(timeout_ms: c_long) -> c_long;
        pub fn sim_dispatch_live_queues() -> c_long;
        pub fn sim_dispatch_work(label: *const c_char, items: *mut c_long, timers: *mut c_long);
        pub fn sim_dispatch_runs_of(function: extern "C" fn(*mut c_void)) -> c_long;

        pub fn sim_call_block1_on_thread(
            block: *mut c_void,
            a: *mut c_void,
            times: c_int,
            copies: c_int,
        );
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

        pub fn sim_guest_set_echo_ports(ports: *const u32, n: usize);
        pub fn sim_guest_fail_next_start(code: c_long);
        pub fn sim_guest_set_shutdown_delay_ms(ms: std::ffi::c_uint);
        pub fn sim_guest_crash(code: c_long) -> c_long;
        pub fn sim_guest_connect(port: u32) -> c_int;
        pub fn sim_network_disconnect(index: std::ffi::c_uint) -> c_long;
        pub fn sim_guest_power_off() -> c_long;
        pub fn sim_vms_released_while_running() -> c_long;
        pub fn sim_running_vms() -> c_long;
        pub fn sim_dispatch_hold(on: c_int);
        pub fn sim_seed() -> u64;
        pub fn sim_message_after_free(class_name: *const c_char, selector: *const c_char);
        pub fn sim_schedule_reset();
        pub fn sim_set_callback_order(delay_ms: c_int, delegate_first: c_int, kvo_off_queue: c_int);
        pub fn sim_console_port_set_open(
            device: std::ffi::c_uint,
            port: std::ffi::c_uint,
            open: c_int,
        ) -> c_long;
        pub fn sim_nbd_fail_next(code: c_long);
        pub fn sim_gui_close_window();
        pub static mut _dispatch_main_q: u8;
        pub fn dispatch_async_f(
            queue: *mut c_void,
            context: *mut c_void,
            work: unsafe extern "C" fn(*mut c_void),
        );
        pub fn sim_gui_window(rect: *mut f64, flags: *mut c_int, title: *mut c_char, len: usize);
    }
}

/// The macOS release the simulator plays, as `(major, minor)`: `ARCBOX_VZ_SIM_MACOS`
/// (for example `11.0`), read once; by default the newest release (26.0). Classes,
/// members and enum values introduced later are missing, as on that release.
pub fn macos() -> (u32, u32) {
    // SAFETY: reads a value computed once under pthread_once.
    let v = unsafe { raw::sim_macos() } as u32;
    (v / 100, v % 100)
}

/// Whether the simulated macOS is `min` (such as `"13.0"`) or later.
///
/// # Panics
///
/// When `min` is not `major.minor`.
pub fn macos_at_least(min: &str) -> bool {
    let (major, minor) = min
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
        .unwrap_or_else(|| panic!("{min:?}: expected major.minor"));
    macos() >= (major, minor)
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

/// Work items the dispatch shim has run since the process started (counted as they
/// start, so a timer counts when it fires).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// Every work item: async, sync and timers.
    pub items: i64,
    /// Of those, the timers (`dispatch_after_f`).
    pub timers: i64,
}

impl std::ops::Sub for Work {
    type Output = Work;
    fn sub(self, earlier: Work) -> Work {
        Work {
            items: self.items - earlier.items,
            timers: self.timers - earlier.timers,
        }
    }
}

/// The work run so far on the queues labelled `label` (every queue, the main queue
/// included, when `None`).
///
/// # Panics
///
/// When `label` contains a NUL byte.
pub fn work(label: Option<&str>) -> Work {
    let label = label.map(|l| std::ffi::CString::new(l).expect("a label without NUL"));
    let (mut items, mut timers) = (0, 0);
    // SAFETY: the label is NUL-terminated or NULL; the shim writes the two counts.
    unsafe {
        raw::sim_dispatch_work(
            label.as_ref().map_or(std::ptr::null(), |l| l.as_ptr()),
            &raw mut items,
            &raw mut timers,
        )
    };
    Work { items, timers }
}

/// Work items run so far, on any queue, whose work function is `function`.
pub fn runs_of(function: extern "C" fn(*mut std::ffi::c_void)) -> i64 {
    // SAFETY: the shim only compares the function's address.
    unsafe { raw::sim_dispatch_runs_of(function) }
}

/// While held, no dispatch queue starts a new work item: work queued meanwhile runs,
/// in order, once released. Never wait on a queue (a synchronous call) while held.
pub fn hold_queues(on: bool) {
    // SAFETY: sets a flag under the shim's lock.
    unsafe { raw::sim_dispatch_hold(c_int::from(on)) }
}

/// Pins, until the end of the scenario, what the seeded scheduler would choose for
/// every callback (for a test of one particular order):
/// - `delay_ms`: a completion handler, delegate call or state change comes as a work
///   item of its own, this much later;
/// - `delegate_first`: `guestDidStopVirtualMachine:` and
///   `virtualMachine:didStopWithError:` come before the state change, not after;
/// - `kvo_off_queue`: `state` notifications arrive on another thread.
pub fn set_callback_order(delay_ms: u32, delegate_first: bool, kvo_off_queue: bool) {
    // SAFETY: sets plain values read on VM queues.
    unsafe {
        raw::sim_set_callback_order(
            c_int::try_from(delay_ms).expect("a delay below 2^31 ms"),
            c_int::from(delegate_first),
            c_int::from(kvo_off_queue),
        )
    }
}

/// The seed of the scheduler: `ARCBOX_VZ_SIM_SEED`, or one chosen at random for this
/// process. [`scenario`] prints it when a test fails.
pub fn seed() -> u64 {
    // SAFETY: reads a value computed once under pthread_once.
    unsafe { raw::sim_seed() }
}

/// Unpins the order and restarts the scheduler's stream from the seed.
fn reset_schedule() {
    // SAFETY: sets plain values; the stream restarts under the scheduler's lock.
    unsafe {
        raw::sim_set_callback_order(-1, 0, 0);
        raw::sim_schedule_reset();
    }
}

/// Says how to replay a failing test: the seed and the release played.
fn replay_hint() -> String {
    let (major, minor) = macos();
    format!(
        "arcbox-vz-sim: replay with ARCBOX_VZ_SIM_SEED={} ARCBOX_VZ_SIM_MACOS={major}.{minor}",
        seed()
    )
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
    reset_schedule();
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let out = body();
        hold_queues(false);
        reset_schedule();
        let queues = quiesce(Duration::from_secs(10));
        assert_eq!(queues, 0, "dispatch queues still alive after the scenario");
        assert_eq!(live_blocks(), 0, "heap blocks leaked by the scenario");
        assert_eq!(
            live_objects(),
            0,
            "fake Objective-C objects leaked by the scenario"
        );
        out
    }));
    out.unwrap_or_else(|panic| {
        hold_queues(false);
        eprintln!("{}", replay_hint());
        std::panic::resume_unwind(panic)
    })
}

pub mod guest {
    //! Control hooks for the fake guest behind running fake virtual machines. Hooks
    //! that act on "the VM" act on the most recently started one still running.
    use std::os::fd::{FromRawFd, OwnedFd};

    use super::raw;

    /// The vsock ports the guest's echo service listens on (default: 1024).
    pub fn set_echo_ports(ports: &[u32]) {
        // SAFETY: the shim copies `ports`.
        unsafe { raw::sim_guest_set_echo_ports(ports.as_ptr(), ports.len()) }
    }

    /// The next start fails with this `VZErrorDomain` code.
    pub fn fail_next_start(code: i64) {
        // SAFETY: sets an atomic.
        unsafe { raw::sim_guest_fail_next_start(code) }
    }

    /// How long the guest takes to power off after `requestStop` (default 20 ms).
    pub fn set_shutdown_delay_ms(ms: u32) {
        // SAFETY: sets a plain value read on VM queues.
        unsafe { raw::sim_guest_set_shutdown_delay_ms(ms) }
    }

    /// The guest fails with `VZErrorDomain` `code` (drives `didStopWithError:`).
    /// False when no virtual machine is running.
    pub fn crash(code: i64) -> bool {
        // SAFETY: hops onto the VM's queue and waits.
        unsafe { raw::sim_guest_crash(code) >= 0 }
    }

    /// The guest connects to host vsock `port`: the guest's end of the connection, or
    /// `None` when nothing listens or the listener refused.
    pub fn connect(port: u32) -> Option<OwnedFd> {
        // SAFETY: hops onto the VM's queue and waits; a non-negative result is a new
        // descriptor that we own.
        let fd = unsafe { raw::sim_guest_connect(port) };
        // SAFETY: see above.
        (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Network device `index` loses its attachment. False when no VM is running.
    pub fn disconnect_network(index: u32) -> bool {
        // SAFETY: hops onto the VM's queue and waits.
        unsafe { raw::sim_network_disconnect(index) >= 0 }
    }

    /// The guest opens (`open`) or closes port `port` of virtio console device
    /// `device` (macOS 13); the device's delegate hears of it later, on the VM queue.
    /// `None` when no VM runs or it has no such port; else whether the port's state
    /// changed (an event is on its way). The guest also opens every named port when
    /// it boots, and closes every open port when it halts.
    pub fn console_port(device: u32, port: u32, open: bool) -> Option<bool> {
        // SAFETY: hops onto the VM's queue and waits.
        let result = unsafe { raw::sim_console_port_set_open(device, port, open.into()) };
        (result >= 0).then_some(result == 1)
    }

    /// The guest powers itself off. False when no VM is running.
    pub fn power_off() -> bool {
        // SAFETY: hops onto the VM's queue and waits.
        unsafe { raw::sim_guest_power_off() >= 0 }
    }

    /// Fake virtual machines released while still running (should stay 0).
    pub fn released_while_running() -> i64 {
        // SAFETY: reads an atomic.
        unsafe { raw::sim_vms_released_while_running() }
    }

    /// Fake virtual machines running now.
    pub fn running_vms() -> i64 {
        // SAFETY: reads a counter under a lock.
        unsafe { raw::sim_running_vms() }
    }
}

pub mod storage {
    //! Control hooks for the fake storage attachments.
    use super::raw;

    /// The next NBD client to connect (at a virtual machine's start) reports
    /// `attachment:didEncounterError:` with this `VZErrorDomain` code instead of
    /// `attachmentWasConnected:`.
    pub fn fail_next_nbd(code: i64) {
        // SAFETY: sets an atomic.
        unsafe { raw::sim_nbd_fail_next(code) }
    }
}

pub mod gui {
    //! The fake AppKit window (csrc/appkit.m).
    use super::raw;

    /// What the last fake window was given.
    #[derive(Clone, Debug, PartialEq)]
    pub struct Window {
        /// The content rect: x, y, width, height.
        pub rect: [f64; 4],
        /// Whether its view showed a virtual machine when it became the content view.
        pub has_vm: bool,
        /// The view's `capturesSystemKeys` then.
        pub captures_system_keys: bool,
        /// The view's `automaticallyReconfiguresDisplay` then (false where hidden).
        pub reconfigures_display: bool,
        /// Whether the window is on screen.
        pub shown: bool,
        /// Whether the application was last activated from inside its loop (after
        /// it finished launching).
        pub activated_in_loop: bool,
        /// Its title.
        pub title: String,
    }

    /// The user clicks the close button of the visible window (delivered through the
    /// main queue, so while the application loop runs).
    pub fn close_window() {
        // SAFETY: enqueues a work item on the fake main queue.
        unsafe { raw::sim_gui_close_window() }
    }

    /// Runs `work` on the main queue: on the main thread, inside the application
    /// loop (the fake main queue runs only there), after the work queued before it.
    /// Work queued while no loop runs waits for the next one: queue it only where a
    /// window will open.
    pub fn on_main_queue(work: impl FnOnce() + Send + 'static) {
        unsafe extern "C" fn trampoline(context: *mut std::ffi::c_void) {
            // SAFETY: `context` is the box leaked below, run exactly once.
            let work = unsafe { Box::from_raw(context.cast::<Box<dyn FnOnce() + Send>>()) };
            // A panic must not unwind into C: report it and abort, as a test failure.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).is_err() {
                eprintln!("arcbox-vz-sim: main-queue work panicked");
                std::process::abort();
            }
        }
        let work: Box<Box<dyn FnOnce() + Send>> = Box::new(Box::new(work));
        // SAFETY: the main queue is a static of the shim; the trampoline takes the
        // leaked box back.
        unsafe {
            raw::dispatch_async_f(
                (&raw mut raw::_dispatch_main_q).cast(),
                Box::into_raw(work).cast(),
                trampoline,
            );
        }
    }

    /// The last window made.
    pub fn window() -> Window {
        let (mut rect, mut flags, mut title) = ([0f64; 4], [0i32; 5], [0u8; 256]);
        // SAFETY: the buffers have the sizes the shim writes (4 doubles, 5 ints, and
        // `title.len()` bytes, NUL-terminated).
        unsafe {
            raw::sim_gui_window(
                rect.as_mut_ptr(),
                flags.as_mut_ptr(),
                title.as_mut_ptr().cast(),
                title.len(),
            )
        };
        let end = title.iter().position(|&b| b == 0).unwrap_or(title.len());
        Window {
            rect,
            has_vm: flags[0] != 0,
            captures_system_keys: flags[1] != 0,
            reconfigures_display: flags[2] != 0,
            shown: flags[3] != 0,
            activated_in_loop: flags[4] != 0,
            title: String::from_utf8_lossy(&title[..end]).into_owned(),
        }
    }
}
