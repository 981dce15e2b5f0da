//! Idle costs nothing: a running virtual machine that nobody uses causes no work in
//! this crate. No timers, no polling: over a second of idle, not one work item with
//! one of the crate's own work functions runs on any dispatch queue (the simulator's
//! libdispatch counts the items it runs, by function and by queue label), and no task
//! waiting on the crate is woken.
//!
//! The whole process is counted too: every work item on the VM's queue (the fake
//! framework's included), on every queue, and every timer (`dispatch_after_f`).
#![cfg(arcbox_vz_sim)]

mod common;

use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use arcbox_vz::{
    FileHandleSerialPortAttachment, SharedDirectory, SingleDirectoryShare, StopReason,
    VirtioConsoleDeviceSerialPortConfiguration, VirtioFileSystemDeviceConfiguration,
    VirtualMachine, VirtualMachineState, VmEvent,
};
use common::{TempDir, block_on, macos, sim, since, stop_vm, vm_config};

/// The label of every virtual machine's queue (`src/vm/handle.rs`).
const VM_QUEUE: &str = "dev.arcbox-vz.virtual-machine";

/// The count begins once no work item has run on any queue for this long after the
/// start (the callbacks of the start come a few ms apart; slower under valgrind), or
/// after [`SETTLE_AT_MOST`] in any case: a periodic poll never lets it settle.
const SETTLE: Duration = Duration::from_millis(200);
const SETTLE_AT_MOST: Duration = Duration::from_secs(2);
/// How long the count lasts.
const IDLE: Duration = Duration::from_secs(1);

/// Work items run so far with one of the crate's own work functions, on any queue.
fn crate_items() -> i64 {
    arcbox_vz::__sim_work_functions()
        .into_iter()
        .map(sim::runs_of)
        .sum()
}

/// Waits until no work item has run on any queue for [`SETTLE`], or
/// [`SETTLE_AT_MOST`] has passed.
fn settle() {
    let deadline = Instant::now() + SETTLE_AT_MOST;
    let mut last = sim::work(None);
    loop {
        thread::sleep(SETTLE);
        let now = sim::work(None);
        if now == last || Instant::now() >= deadline {
            return;
        }
        last = now;
    }
}

/// What is counted, at one moment.
#[derive(Clone, Copy, Debug)]
struct Counts {
    crate_items: i64,
    vm_queue: sim::Work,
    all_queues: sim::Work,
    wakes: usize,
    events: usize,
}

/// A waker that counts its wakes and unparks the thread that polls.
struct Counting {
    thread: thread::Thread,
    wakes: Arc<AtomicUsize>,
}

impl Wake for Counting {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// `common::block_on` on a thread of its own, with a waker that counts into `wakes`.
fn spawn_waiting<T: Send + 'static>(
    wakes: &Arc<AtomicUsize>,
    future: impl std::future::Future<Output = T> + Send + 'static,
) -> JoinHandle<T> {
    let wakes = Arc::clone(wakes);
    thread::spawn(move || {
        let waker = Waker::from(Arc::new(Counting {
            thread: thread::current(),
            wakes,
        }));
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
            thread::park();
        }
    })
}

/// A VM with the usual devices: a serial console on a socket pair (as a terminal would
/// be), a vsock device and, from macOS 12, a virtio-fs share. Returns the host's end of
/// the console too, which must stay open while it runs.
fn build(dir: &TempDir) -> (VirtualMachine, UnixStream) {
    let (guest, host) = UnixStream::pair().unwrap();
    let console = FileHandleSerialPortAttachment::new(Some(&guest), Some(&guest)).unwrap();
    let mut config = vm_config(dir);
    config.set_serial_ports(vec![VirtioConsoleDeviceSerialPortConfiguration::new(
        console,
    )]);
    let share = dir.path().join("share");
    std::fs::create_dir_all(&share).unwrap();
    let device = SharedDirectory::new(&share, false).and_then(|shared| {
        VirtioFileSystemDeviceConfiguration::new("data", SingleDirectoryShare::new(shared))
    });
    if let Some(device) = since("12.0", device) {
        config.set_directory_sharing_devices(vec![device]);
    }
    (config.build().unwrap(), host)
}

#[test]
fn a_running_vm_that_nobody_uses_causes_no_work() {
    sim::scenario(|| {
        let dir = TempDir::new("idle");
        let (vm, console) = build(&dir);
        let wakes = Arc::new(AtomicUsize::new(0));
        let events_seen = Arc::new(AtomicUsize::new(0));

        // An event stream with a pending next() on a thread, until the VM stops.
        let mut events = vm.events();
        let seen = Arc::clone(&events_seen);
        let events_thread = spawn_waiting(&wakes, async move {
            let mut all = Vec::new();
            while let Some(event) = events.next().await {
                seen.fetch_add(1, Ordering::SeqCst);
                let stopped = event == VmEvent::StateChanged(VirtualMachineState::Stopped);
                all.push(event);
                if stopped {
                    break;
                }
            }
            all
        });

        block_on(vm.start()).unwrap();
        assert_eq!(vm.state(), VirtualMachineState::Running);

        // A pending wait_until_stopped(), and a vsock listener with a pending accept.
        let stopped_thread = spawn_waiting(&wakes, {
            let vm = vm.clone();
            async move { vm.wait_until_stopped().await }
        });
        let listener = Arc::new(vm.socket_devices()[0].listen(5000).unwrap());
        let accept_thread = spawn_waiting(&wakes, {
            let listener = Arc::clone(&listener);
            async move { listener.accept().await.is_none() }
        });

        settle();
        let count = || Counts {
            crate_items: crate_items(),
            vm_queue: sim::work(Some(VM_QUEUE)),
            all_queues: sim::work(None),
            wakes: wakes.load(Ordering::SeqCst),
            events: events_seen.load(Ordering::SeqCst),
        };
        let before = count();
        thread::sleep(IDLE);
        let after = count();
        let vm_queue = after.vm_queue - before.vm_queue;
        let all_queues = after.all_queues - before.all_queues;
        println!(
            "macOS {:?}, seed {}: over {IDLE:?} of idle: crate work items {}; \
             VM queue: {} items, {} timers; all queues: {} items, {} timers; \
             wakes of waiting tasks {}; events {}",
            sim::macos(),
            sim::seed(),
            after.crate_items - before.crate_items,
            vm_queue.items,
            vm_queue.timers,
            all_queues.items,
            all_queues.timers,
            after.wakes - before.wakes,
            after.events - before.events,
        );
        assert_eq!(
            after.crate_items - before.crate_items,
            0,
            "the crate ran work items while the VM was idle"
        );
        assert_eq!(after.wakes, before.wakes, "a waiting task was woken");
        assert_eq!(after.events, before.events, "an event came while idle");
        assert_eq!(
            (all_queues.items, all_queues.timers),
            (0, 0),
            "work ran on a dispatch queue while the VM was idle (the fake framework's \
             included)"
        );
        // The counters count: the start and the calls above ran items of both.
        assert!(before.crate_items > 0, "the crate's work items are counted");
        assert!(before.vm_queue.items > before.crate_items, "{before:?}");

        // Then a clean stop: every waiter wakes up with the right answer.
        listener.close();
        assert!(accept_thread.join().unwrap(), "accept ends once closed");
        stop_vm(&vm);
        let reason = stopped_thread.join().unwrap();
        let expected = if macos("12.0") {
            StopReason::HostStopped
        } else {
            StopReason::GuestStopped
        };
        assert_eq!(reason, expected);
        // The stream ends once the VM is gone: the stop came through it.
        drop(listener);
        drop(vm);
        let events = events_thread.join().unwrap();
        assert!(
            events.contains(&VmEvent::StateChanged(VirtualMachineState::Stopped)),
            "{events:?}"
        );
        drop(console);
    });
}
