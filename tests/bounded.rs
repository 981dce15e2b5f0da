//! Memory per virtual machine is bounded by what is alive (issue 9, items 11 to 13):
//! 10,000 cancelled accepts, stop waits and event streams hold nothing once dropped.
//! A counting global allocator measures the live heap of the whole process.
#![cfg(arcbox_vz_sim)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use common::{TempDir, block_on, sim, stop_checked, vm_config};

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the counter is
// only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            // ORDERING: a statistic read after the work is done; Relaxed is enough.
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) };
        // ORDERING: as in alloc.
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // ORDERING: as in alloc.
            LIVE_BYTES.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live_bytes() -> isize {
    // ORDERING: as in alloc.
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// A waker of its own (a new allocation each), as a new task would have.
struct Task;
impl Wake for Task {
    fn wake(self: Arc<Self>) {}
}

fn poll_once_and_drop<F: Future>(future: F) {
    let waker = Waker::from(Arc::new(Task));
    let mut future = Box::pin(future);
    assert!(
        future
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
}

const N: usize = 10_000;
/// Far below what one byte per cancelled waiter would leave.
const SLACK: isize = 8 * 1024;

fn measure(what: &str, mut round: impl FnMut(), settle: &dyn Fn()) {
    // Warm up (first-use caches, vectors at their working size), then count.
    for _ in 0..100 {
        round();
    }
    settle();
    let before = live_bytes();
    for _ in 0..N {
        round();
    }
    settle();
    let grown = live_bytes() - before;
    println!("{what}: {N} cancelled, live heap grew by {grown} bytes");
    assert!(
        grown < SLACK,
        "{N} cancelled {what} still hold {grown} bytes"
    );
}

#[test]
fn ten_thousand_cancelled_accepts_waits_and_event_streams_hold_nothing() {
    sim::scenario(|| {
        let dir = TempDir::new("bounded");
        let vm = vm_config(&dir).build().unwrap();
        block_on(vm.start()).unwrap();
        let device = vm.socket_devices().remove(0);
        let listener = device.listen(7100).unwrap();
        // A round trip through the VM queue: every queued check has run.
        let settle = || {
            std::thread::sleep(Duration::from_millis(20));
            let _ = vm.state();
        };

        measure("accepts", || poll_once_and_drop(listener.accept()), &settle);
        measure(
            "poll_accept wakers",
            || {
                let waker = Waker::from(Arc::new(Task));
                let _ = listener.poll_accept(&mut Context::from_waker(&waker));
            },
            &settle,
        );
        measure(
            "wait_until_stopped futures",
            || poll_once_and_drop(vm.wait_until_stopped()),
            &settle,
        );
        measure(
            "event streams",
            || {
                let mut events = vm.events();
                let waker = Waker::from(Arc::new(Task));
                assert!(
                    events
                        .poll_next(&mut Context::from_waker(&waker))
                        .is_pending()
                );
            },
            &settle,
        );

        drop(listener);
        block_on(stop_checked(&vm)); // a force stop; before macOS 12, a guest power-off
    });
}
