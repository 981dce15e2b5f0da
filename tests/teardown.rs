//! The soundness rules of the running-VM layer (issue 9): one teardown path, callbacks
//! that hold what they use and survive a panicking waker, stop reasons whatever the
//! callback order, and the cancellation contract of every future.
//!
//! Each scenario that could crash runs in a child process ([`common::isolated`]), so
//! a segfault or an abort is a failing test with its output, never a dead suite. The
//! simulator aborts when the client releases its last reference to a virtual machine
//! inside one of the framework's callbacks, and when a callback reads the VM off its
//! queue, so an inline teardown fails loudly even without valgrind.
#![cfg(arcbox_vz_sim)]

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use arcbox_vz::{
    NATNetworkDeviceAttachment, StopReason, VZError, VirtioNetworkDeviceConfiguration,
    VirtualMachine, VirtualMachineState as S, VmEvent,
};
use common::{TempDir, block_on, isolated, macos, sim, since, stop_checked, vm_config};

const CHILD_TIMEOUT: Duration = Duration::from_secs(30);

fn build(dir: &TempDir) -> VirtualMachine {
    let mut config = vm_config(dir);
    config.set_network_devices(vec![VirtioNetworkDeviceConfiguration::new(
        NATNetworkDeviceAttachment::new(),
    )]);
    config.build().unwrap()
}

/// A waker that owns something (the last handle to a virtual machine, or a future
/// that owns it) and drops it when woken; optionally it panics after that.
struct DropOnWake<T> {
    slot: Mutex<Option<T>>,
    woken: AtomicBool,
    panic: bool,
}

impl<T: Send + 'static> DropOnWake<T> {
    fn new(value: T, panic: bool) -> Arc<Self> {
        Arc::new(Self {
            slot: Mutex::new(Some(value)),
            woken: AtomicBool::new(false),
            panic,
        })
    }

    fn waker(self: &Arc<Self>) -> Waker {
        Waker::from(Arc::clone(self))
    }

    /// Waits until a wake-up has dropped the value.
    fn wait(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.woken.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "never woken");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl<T: Send + 'static> Wake for DropOnWake<T> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let value = self.slot.lock().unwrap().take();
        drop(value); // the last handle goes away here, inside the callback
        self.woken.store(true, Ordering::SeqCst);
        if self.panic {
            panic!("a user waker panics (as the test wants)");
        }
    }
}

/// Waits for the simulator to have released everything (the scenario checks it too).
fn settle() {
    std::thread::sleep(Duration::from_millis(100));
}

fn running(dir: &TempDir) -> VirtualMachine {
    let vm = build(dir);
    block_on(vm.start()).unwrap();
    vm
}

// ---------------------------------------------------------------- item 1

#[test]
fn stop_wait_then_drop_listener_device_and_vm_in_a_loop() {
    isolated(
        "stop_wait_then_drop_listener_device_and_vm_in_a_loop",
        CHILD_TIMEOUT,
        || {
            sim::scenario(|| {
                let dir = TempDir::new("item1");
                for _ in 0..40 {
                    let vm = running(&dir);
                    let device = vm.socket_devices().remove(0);
                    let listener = device.listen(7000).unwrap();
                    // HostStopped (GuestStopped before macOS 12)
                    block_on(stop_checked(&vm));
                    drop(listener);
                    drop(device);
                    drop(vm);
                }
                settle();
            });
        },
    )
    .assert_succeeded();
}

// ---------------------------------------------------------------- items 2, 4 and rule 1

/// Polls `events()` with a waker that owns the last handle, then makes `trigger`
/// happen: the first event wakes the waker inside the callback that delivers it.
/// Before `min_macos`, the release that calls the delegate method, nothing is told:
/// no event, no wake-up, and the last handle is dropped here instead.
fn last_handle_dropped_by_an_event(
    name: &str,
    delegate_first: bool,
    panic: bool,
    (trigger, min_macos): (fn(), &str),
) {
    isolated(name, CHILD_TIMEOUT, || {
        sim::scenario(|| {
            sim::set_callback_order(1, delegate_first, false);
            let dir = TempDir::new("event-waker");
            let vm = running(&dir);
            let mut events = vm.events();
            let waker = DropOnWake::new(vm, panic);
            assert!(
                events
                    .poll_next(&mut Context::from_waker(&waker.waker()))
                    .is_pending()
            );
            trigger();
            if !macos(min_macos) {
                settle();
                assert!(
                    !waker.woken.load(Ordering::SeqCst),
                    "woken before {min_macos}"
                );
                assert_eq!(events.try_next(), None);
                drop(waker.slot.lock().unwrap().take());
                while block_on(events.next()).is_some() {}
                return;
            }
            waker.wait();
            settle();
            // The stream saw the event, then ends: the virtual machine is gone.
            assert!(events.try_next().is_some());
            while block_on(events.next()).is_some() {}
        });
        println!("survived");
    })
    .assert_succeeded();
}

/// A trigger and the first release whose framework tells the delegate about it.
type Trigger = (fn(), &'static str);

const POWER_OFF: Trigger = (|| assert!(sim::guest::power_off()), "11.0");

const CRASH: Trigger = (|| assert!(sim::guest::crash(7)), "11.0");

/// `virtualMachine:networkDevice:attachmentWasDisconnectedWithError:` is macOS 12.
const DISCONNECT: Trigger = (|| assert!(sim::guest::disconnect_network(0)), "12.0");

#[test]
fn last_handle_dropped_in_a_waker_woken_by_the_state_notification() {
    last_handle_dropped_by_an_event(
        "last_handle_dropped_in_a_waker_woken_by_the_state_notification",
        false,
        false,
        POWER_OFF,
    );
}

#[test]
fn last_handle_dropped_in_a_waker_woken_by_guest_did_stop() {
    last_handle_dropped_by_an_event(
        "last_handle_dropped_in_a_waker_woken_by_guest_did_stop",
        true,
        false,
        POWER_OFF,
    );
}

#[test]
fn last_handle_dropped_in_a_waker_woken_by_did_stop_with_error() {
    last_handle_dropped_by_an_event(
        "last_handle_dropped_in_a_waker_woken_by_did_stop_with_error",
        true,
        false,
        CRASH,
    );
}

#[test]
fn last_handle_dropped_in_a_waker_woken_by_a_network_disconnection() {
    last_handle_dropped_by_an_event(
        "last_handle_dropped_in_a_waker_woken_by_a_network_disconnection",
        false,
        false,
        DISCONNECT,
    );
}

#[test]
fn a_panicking_waker_in_each_delegate_callback_loses_only_its_wake_up() {
    for (name, delegate_first, trigger) in [
        ("state", false, POWER_OFF),
        ("guest-stop", true, POWER_OFF),
        ("error", true, CRASH),
        ("network", false, DISCONNECT),
    ] {
        eprintln!("case {name}");
        last_handle_dropped_by_an_event(
            "a_panicking_waker_in_each_delegate_callback_loses_only_its_wake_up",
            delegate_first,
            true,
            trigger,
        );
    }
}

/// A waker owning the listener, its device and the last VM handle, woken by the
/// listener delegate (`listener:shouldAcceptNewConnection:fromSocketDevice:`).
fn last_handle_dropped_by_an_accept(name: &str, panic: bool) {
    isolated(name, CHILD_TIMEOUT, || {
        sim::scenario(|| {
            let dir = TempDir::new("accept-waker");
            let vm = running(&dir);
            let device = vm.socket_devices().remove(0);
            let listener = device.listen(7001).unwrap();
            let waker = DropOnWake::new((vm, device), panic);
            let cx_waker = waker.waker();
            assert!(
                listener
                    .poll_accept(&mut Context::from_waker(&cx_waker))
                    .is_pending()
            );
            // The guest connects; the delegate wakes the waker, which drops the VM.
            let guest_end = sim::guest::connect(7001).expect("the listener accepts");
            waker.wait();
            let stream = listener.poll_accept(&mut Context::from_waker(Waker::noop()));
            assert!(matches!(stream, Poll::Ready(Some(_))));
            drop((stream, guest_end));
            drop(listener); // now the last handle: teardown after the listener's removal
            settle();
        });
        println!("survived");
    })
    .assert_succeeded();
}

#[test]
fn last_handle_dropped_in_a_waker_woken_by_the_listener_delegate() {
    last_handle_dropped_by_an_accept(
        "last_handle_dropped_in_a_waker_woken_by_the_listener_delegate",
        false,
    );
}

#[test]
fn a_panicking_waker_woken_by_the_listener_delegate() {
    last_handle_dropped_by_an_accept("a_panicking_waker_woken_by_the_listener_delegate", true);
}

type BoxedOp = Pin<Box<dyn Future<Output = Result<(), VZError>> + Send>>;

/// A lifecycle future that owns the last handle, held by its own waker: the
/// completion handler wakes it, which drops the future and so the virtual machine,
/// inside the completion.
fn last_handle_dropped_in_a_completion(name: &str, panic: bool) {
    isolated(name, CHILD_TIMEOUT, || {
        sim::scenario(|| {
            let dir = TempDir::new("completion-waker");
            let vm = running(&dir);
            let op: BoxedOp = Box::pin(async move { vm.pause().await });
            let waker = DropOnWake::new(op, panic);
            let cx_waker = waker.waker();
            {
                let mut slot = waker.slot.lock().unwrap();
                let poll = slot
                    .as_mut()
                    .unwrap()
                    .as_mut()
                    .poll(&mut Context::from_waker(&cx_waker));
                assert!(poll.is_pending());
            }
            waker.wait();
            settle();
        });
        println!("survived");
    })
    .assert_succeeded();
}

#[test]
fn last_handle_dropped_in_a_waker_woken_by_a_completion_handler() {
    last_handle_dropped_in_a_completion(
        "last_handle_dropped_in_a_waker_woken_by_a_completion_handler",
        false,
    );
}

#[test]
fn a_panicking_waker_woken_by_a_completion_handler() {
    last_handle_dropped_in_a_completion("a_panicking_waker_woken_by_a_completion_handler", true);
}

#[test]
fn a_waiter_whose_waker_drops_the_last_handle_when_the_vm_stops() {
    isolated(
        "a_waiter_whose_waker_drops_the_last_handle_when_the_vm_stops",
        CHILD_TIMEOUT,
        || {
            sim::scenario(|| {
                let dir = TempDir::new("wait-waker");
                let vm = running(&dir);
                let clone = vm.clone();
                let wait: Pin<Box<dyn Future<Output = StopReason> + Send>> =
                    Box::pin(async move { clone.wait_until_stopped().await });
                let waker = DropOnWake::new(wait, false);
                let cx_waker = waker.waker();
                assert!(
                    waker
                        .slot
                        .lock()
                        .unwrap()
                        .as_mut()
                        .unwrap()
                        .as_mut()
                        .poll(&mut Context::from_waker(&cx_waker))
                        .is_pending()
                );
                std::thread::sleep(Duration::from_millis(20)); // armed on the queue
                vm.request_stop().unwrap();
                drop(vm); // the waiting future holds the last handle now
                waker.wait();
                settle();
            });
        },
    )
    .assert_succeeded();
}

// ---------------------------------------------------------------- item 3 and rule 1

#[test]
fn dropping_a_running_vm_force_stops_and_releases_it_outside_the_completion() {
    isolated(
        "dropping_a_running_vm_force_stops_and_releases_it_outside_the_completion",
        CHILD_TIMEOUT,
        || {
            sim::scenario(|| {
                let dir = TempDir::new("drop-running");
                for _ in 0..10 {
                    let vm = running(&dir);
                    let mut events = vm.events();
                    drop(vm);
                    // The stream ends once the teardown has released everything.
                    while block_on(events.next()).is_some() {}
                }
                settle();
                // macOS 11 has no force stop: there each is released running.
                let released = if macos("12.0") { 0 } else { 10 };
                assert_eq!(sim::guest::released_while_running(), released);
            });
        },
    )
    .assert_succeeded();
}

#[test]
fn last_handle_dropped_on_another_thread_while_work_is_queued() {
    isolated(
        "last_handle_dropped_on_another_thread_while_work_is_queued",
        CHILD_TIMEOUT,
        || {
            sim::scenario(|| {
                let dir = TempDir::new("queued");
                let vm = running(&dir);
                let device = vm.socket_devices().remove(0);
                let listener = device.listen(7002).unwrap();
                let mut events = vm.events();
                sim::hold_queues(true);
                // Work lined up behind the held queue: a listener removal, a connect
                // that is then cancelled, a stop waiter, the device's release.
                listener.close();
                let mut connect = Box::pin(device.connect(1024));
                let noop = &mut Context::from_waker(Waker::noop());
                assert!(connect.as_mut().poll(noop).is_pending());
                drop(connect);
                let vm2 = vm.clone();
                let handle = std::thread::spawn(move || {
                    drop(listener);
                    drop(device);
                    drop(vm2);
                });
                handle.join().unwrap();
                drop(vm); // the last handle, while everything is still queued
                sim::hold_queues(false);
                while block_on(events.next()).is_some() {}
                settle();
            });
        },
    )
    .assert_succeeded();
}

// ---------------------------------------------------------------- late calls

#[test]
fn late_calls_after_the_teardown_get_errors_not_crashes() {
    sim::scenario(|| {
        let dir = TempDir::new("late");
        let vm = running(&dir);
        let device = vm.socket_devices().remove(0);
        let mut stream = block_on(device.connect(1024)).unwrap();
        let mut events = vm.events();
        // Before the teardown, on a stopped virtual machine: typed errors.
        block_on(stop_checked(&vm));
        assert!(matches!(
            block_on(device.connect(1024)),
            Err(VZError::InvalidState {
                state: S::Stopped,
                ..
            })
        ));
        assert!(matches!(
            block_on(vm.pause()),
            Err(VZError::InvalidState { .. })
        ));
        assert!(vm.request_stop().is_err());
        drop(device);
        drop(vm);
        // After it: the stream is a plain socket whose peer is gone, the events end.
        while block_on(events.next()).is_some() {}
        use std::io::{Read, Write};
        let mut buf = [0u8; 8];
        assert_eq!(stream.read(&mut buf).unwrap(), 0, "end-of-file");
        let mut failed = false;
        for _ in 0..100 {
            if stream.write_all(b"hello").is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "writing to a stream whose guest is gone fails");
        // And the ended event stream stays ended.
        assert_eq!(block_on(events.next()), None);
    });
}

// ---------------------------------------------------------------- item 7

/// `wait_until_stopped` polled between the state notification and the delegate call
/// (or the completion) must wait for the reason, in either order.
#[test]
fn the_stop_reason_is_right_whatever_the_callback_order() {
    for delegate_first in [false, true] {
        sim::scenario(|| {
            sim::set_callback_order(60, delegate_first, false);
            let dir = TempDir::new("order");
            let vm = build(&dir);
            let mut events = vm.events();
            for stop in 0..3 {
                block_on(vm.start()).unwrap();
                match stop {
                    0 => vm.request_stop().unwrap(),
                    1 if macos("12.0") => {
                        // Only the future is awaited below; its completion is late.
                        let vm = vm.clone();
                        std::thread::spawn(move || block_on(vm.stop()).unwrap());
                    }
                    1 => {
                        // No force stop before macOS 12: the guest powers off.
                        assert_eq!(since("12.0", block_on(vm.stop())), None);
                        vm.request_stop().unwrap();
                    }
                    _ => assert!(sim::guest::crash(9)),
                }
                // Wait for the first sign of the stop, then ask why.
                loop {
                    match block_on(events.next()).unwrap() {
                        VmEvent::StateChanged(S::Stopped | S::Error)
                        | VmEvent::GuestStopped
                        | VmEvent::StoppedWithError(_) => break,
                        _ => {}
                    }
                }
                let reason = block_on(vm.wait_until_stopped());
                match (stop, &reason) {
                    (0, StopReason::GuestStopped) => {}
                    (1, StopReason::HostStopped) if macos("12.0") => {}
                    (1, StopReason::GuestStopped) if !macos("12.0") => {}
                    (2, StopReason::Error(e)) => assert_eq!(e.code, 9),
                    _ => panic!("stop {stop}, delegate_first={delegate_first}: got {reason:?}"),
                }
                // Resolved only once stopped: a new start works at once.
                assert!(
                    matches!(vm.state(), S::Stopped | S::Error),
                    "{:?}",
                    vm.state()
                );
                while events.try_next().is_some() {}
            }
        });
    }
}

// ---------------------------------------------------------------- item 9

#[test]
fn state_notifications_from_another_thread_are_handled() {
    isolated(
        "state_notifications_from_another_thread_are_handled",
        CHILD_TIMEOUT,
        || {
            sim::scenario(|| {
                sim::set_callback_order(0, false, true);
                let dir = TempDir::new("kvo-thread");
                let vm = build(&dir);
                let mut events = vm.events();
                block_on(vm.start()).unwrap();
                vm.request_stop().unwrap();
                assert_eq!(block_on(vm.wait_until_stopped()), StopReason::GuestStopped);
                assert_eq!(events.try_next(), Some(VmEvent::StateChanged(S::Starting)));
            });
        },
    )
    .assert_succeeded();
}

// ---------------------------------------------------------------- item 22

/// Polls `future` once while every queue is held, drops it, then lets the queue go.
fn poll_while_held_then_drop<F: Future>(future: F) {
    sim::hold_queues(true);
    let mut future = Box::pin(future);
    let _ = future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()));
    drop(future);
    sim::hold_queues(false);
}

/// Polls `future` once, waits for `sign` in `events` (the operation has begun), then
/// drops it.
fn poll_until_begun_then_drop<F: Future>(events: &mut arcbox_vz::VmEvents, sign: S, future: F) {
    let mut future = Box::pin(future);
    let _ = future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()));
    while block_on(events.next()) != Some(VmEvent::StateChanged(sign)) {}
    drop(future);
}

fn eventually(vm: &VirtualMachine, state: S) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while vm.state() != state {
        assert!(Instant::now() < deadline, "stuck in {:?}", vm.state());
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_lifecycle_future_dropped_before_the_queue_reaches_it_cancels_the_operation() {
    sim::scenario(|| {
        let dir = TempDir::new("cancel-before");
        let vm = build(&dir);
        for _ in 0..20 {
            poll_while_held_then_drop(vm.start());
            settle_queue(&vm);
            assert_eq!(vm.state(), S::Stopped, "a cancelled start was sent");
        }
        block_on(vm.start()).unwrap();
        poll_while_held_then_drop(vm.pause());
        settle_queue(&vm);
        assert_eq!(vm.state(), S::Running, "a cancelled pause was sent");
        block_on(vm.pause()).unwrap();
        poll_while_held_then_drop(vm.resume());
        settle_queue(&vm);
        assert_eq!(vm.state(), S::Paused, "a cancelled resume was sent");
        poll_while_held_then_drop(vm.stop());
        settle_queue(&vm);
        assert_eq!(vm.state(), S::Paused, "a cancelled stop was sent");
        block_on(stop_checked(&vm));
    });
}

/// Lets the work the queue has, including callbacks a few milliseconds out, run.
fn settle_queue(vm: &VirtualMachine) {
    std::thread::sleep(Duration::from_millis(30));
    let _ = vm.state();
}

#[test]
fn a_lifecycle_future_dropped_after_the_operation_began_lets_it_complete() {
    sim::scenario(|| {
        let dir = TempDir::new("cancel-after");
        let vm = build(&dir);
        let mut events = vm.events();
        poll_until_begun_then_drop(&mut events, S::Starting, vm.start());
        eventually(&vm, S::Running);
        poll_until_begun_then_drop(&mut events, S::Pausing, vm.pause());
        eventually(&vm, S::Paused);
        poll_until_begun_then_drop(&mut events, S::Resuming, vm.resume());
        eventually(&vm, S::Running);
        if macos("12.0") {
            poll_until_begun_then_drop(&mut events, S::Stopping, vm.stop());
        } else {
            // Neither a force stop nor `Stopping` before macOS 12: the guest powers off.
            assert_eq!(since("12.0", block_on(vm.stop())), None);
            vm.request_stop().unwrap();
        }
        eventually(&vm, S::Stopped);
    });
}

#[test]
fn a_connect_dropped_before_or_after_it_began_leaks_nothing() {
    sim::scenario(|| {
        let dir = TempDir::new("cancel-connect");
        let vm = running(&dir);
        let device = vm.socket_devices().remove(0);
        let fds = common::open_fds();
        for _ in 0..50 {
            poll_while_held_then_drop(device.connect(1024));
            let mut connect = Box::pin(device.connect(1024));
            let _ = connect
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()));
            settle_queue(&vm); // the connection arrives after the future is gone
            drop(connect);
        }
        settle();
        assert!(
            common::open_fds() <= fds + 2,
            "late connections were not closed"
        );
        block_on(stop_checked(&vm));
    });
}

#[test]
fn a_dropped_accept_takes_nothing() {
    sim::scenario(|| {
        let dir = TempDir::new("cancel-accept");
        let vm = running(&dir);
        let device = vm.socket_devices().remove(0);
        let listener = device.listen(7003).unwrap();
        let mut accept = Box::pin(listener.accept());
        assert!(
            accept
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
                .is_pending()
        );
        drop(accept);
        let _guest = sim::guest::connect(7003).expect("accepted by the delegate");
        // The connection waits for the next accept.
        assert!(block_on(listener.accept()).is_some());
        drop(listener);
        block_on(stop_checked(&vm));
    });
}
