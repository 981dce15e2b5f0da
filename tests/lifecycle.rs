//! The virtual machine lifecycle in the simulator: transitions, illegal transitions,
//! stop reasons, events, cancellation, drop, and many VMs at once.
#![cfg(arcbox_vz_sim)]

mod common;

use std::time::Duration;

use arcbox_vz::{StopReason, VZError, VirtualMachine, VirtualMachineState as S, VmEvent};
use common::{TempDir, block_on, macos, sim, stop_checked, vm_config};

fn build(dir: &TempDir) -> VirtualMachine {
    vm_config(dir).build().unwrap()
}

fn invalid_state(result: Result<(), VZError>) -> (&'static str, S) {
    match result {
        Err(VZError::InvalidState { operation, state }) => (operation, state),
        other => panic!("expected InvalidState, got {other:?}"),
    }
}

/// A `stop()` refused in `state`: `InvalidState` from macOS 12, `Unsupported` before
/// (there is no force stop to refuse).
fn stop_refused(result: Result<(), VZError>, state: S) {
    if macos("12.0") {
        assert_eq!(invalid_state(result), ("stop", state));
    } else {
        common::assert_unsupported("12.0", result);
    }
}

#[test]
fn handles_and_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<VirtualMachine>();
    send_sync::<arcbox_vz::VirtioSocketDevice>();
    send_sync::<arcbox_vz::VsockListener>();
    sim::scenario(|| {
        let dir = TempDir::new("send");
        let vm = build(&dir);
        let device = vm.socket_devices().remove(0);
        let mut events = vm.events();
        send(&events);
        send(&vm.start());
        send(&vm.stop());
        send(&vm.pause());
        send(&vm.resume());
        send(&vm.wait_until_stopped());
        send(&events.next());
        send(&device.connect(1024));
        let listener = device.listen(7).unwrap();
        send(&listener.accept());
    });
}

/// The full lifecycle, as one async function every executor runs.
async fn full_lifecycle(vm: VirtualMachine) {
    assert_eq!(vm.state(), S::Stopped);
    assert!(vm.can_start() && !vm.can_pause() && !vm.can_stop() && !vm.can_request_stop());
    assert_eq!(vm.wait_until_stopped().await, StopReason::NeverStarted);

    vm.start().await.unwrap();
    assert_eq!(vm.state(), S::Running);
    assert!(vm.can_pause() && vm.can_request_stop() && !vm.can_start());
    // `canStop` is macOS 12; before, there is no force stop.
    assert_eq!(vm.can_stop(), macos("12.0"));

    vm.pause().await.unwrap();
    assert_eq!(vm.state(), S::Paused);
    assert!(vm.can_resume() && !vm.can_pause());
    assert_eq!(vm.can_stop(), macos("12.0"));

    vm.resume().await.unwrap();
    assert_eq!(vm.state(), S::Running);

    // A force stop (HostStopped); before macOS 12, a guest power-off (GuestStopped).
    stop_checked(&vm).await;
    assert_eq!(vm.state(), S::Stopped);

    vm.start().await.unwrap();
    vm.request_stop().unwrap();
    assert_eq!(vm.wait_until_stopped().await, StopReason::GuestStopped);
    assert_eq!(vm.state(), S::Stopped);
}

#[test]
fn full_lifecycle_with_a_hand_written_block_on() {
    sim::scenario(|| {
        let dir = TempDir::new("lifecycle-block-on");
        block_on(full_lifecycle(build(&dir)));
    });
}

#[test]
fn full_lifecycle_with_futures_executor() {
    sim::scenario(|| {
        let dir = TempDir::new("lifecycle-futures");
        futures_executor::block_on(full_lifecycle(build(&dir)));
    });
}

#[test]
fn full_lifecycle_with_smol() {
    sim::scenario(|| {
        let dir = TempDir::new("lifecycle-smol");
        smol::block_on(full_lifecycle(build(&dir)));
    });
}

#[test]
fn full_lifecycle_with_tokio_multi_thread_spawn() {
    sim::scenario(|| {
        let dir = TempDir::new("lifecycle-tokio");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap();
        let vm = build(&dir);
        rt.block_on(async move { tokio::spawn(full_lifecycle(vm)).await.unwrap() });
    });
}

#[test]
fn every_illegal_transition_is_a_typed_error() {
    sim::scenario(|| {
        let dir = TempDir::new("illegal");
        let vm = build(&dir);
        block_on(async {
            // Stopped
            assert_eq!(invalid_state(vm.pause().await), ("pause", S::Stopped));
            assert_eq!(invalid_state(vm.resume().await), ("resume", S::Stopped));
            stop_refused(vm.stop().await, S::Stopped);
            assert_eq!(
                invalid_state(vm.request_stop()),
                ("request a stop of", S::Stopped)
            );
            // Running
            vm.start().await.unwrap();
            assert_eq!(invalid_state(vm.start().await), ("start", S::Running));
            assert_eq!(invalid_state(vm.resume().await), ("resume", S::Running));
            // Paused
            vm.pause().await.unwrap();
            assert_eq!(invalid_state(vm.pause().await), ("pause", S::Paused));
            assert_eq!(invalid_state(vm.start().await), ("start", S::Paused));
            assert_eq!(
                invalid_state(vm.request_stop()),
                ("request a stop of", S::Paused)
            );
            let message = vm.start().await.unwrap_err().to_string();
            assert_eq!(message, "cannot start a virtual machine that is paused");
            stop_checked(&vm).await;
        });
    });
}

#[test]
fn a_transition_checked_mid_flight_sees_the_transitional_state() {
    sim::scenario(|| {
        let dir = TempDir::new("mid-flight");
        let vm = build(&dir);
        block_on(async {
            let start = vm.start();
            // Both are queued in order: the pause runs while the start is in flight.
            let pause = vm.pause();
            let (started, paused) =
                futures_executor::block_on(async { futures_join(start, pause).await });
            started.unwrap();
            assert_eq!(invalid_state(paused), ("pause", S::Starting));
            stop_checked(&vm).await;
        });
    });
}

/// Polls two futures to completion concurrently (first polled first).
async fn futures_join<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none() {
            if let std::task::Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let std::task::Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            std::task::Poll::Ready((ra.take().unwrap(), rb.take().unwrap()))
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

#[test]
fn a_stop_reason_for_each_kind_of_stop() {
    sim::scenario(|| {
        let dir = TempDir::new("reasons");
        let vm = build(&dir);
        block_on(async {
            assert_eq!(vm.wait_until_stopped().await, StopReason::NeverStarted);

            vm.start().await.unwrap();
            stop_checked(&vm).await; // HostStopped (GuestStopped before macOS 12)

            vm.start().await.unwrap();
            vm.request_stop().unwrap();
            assert_eq!(vm.wait_until_stopped().await, StopReason::GuestStopped);

            vm.start().await.unwrap();
            assert!(sim::guest::power_off());
            assert_eq!(vm.wait_until_stopped().await, StopReason::GuestStopped);

            vm.start().await.unwrap();
            let waiter = vm.clone();
            let waiting = std::thread::spawn(move || block_on(waiter.wait_until_stopped()));
            std::thread::sleep(Duration::from_millis(20));
            assert!(sim::guest::crash(1));
            match waiting.join().unwrap() {
                StopReason::Error(e) => {
                    assert!(e.is_vz(1), "{e:?}");
                    assert_eq!(
                        e.failure_reason.as_deref(),
                        Some("The guest failed (injected by the simulator).")
                    );
                }
                other => panic!("expected Error, got {other:?}"),
            }
            assert_eq!(vm.state(), S::Error);

            // The error state can start again; a start that fails says so.
            sim::guest::fail_next_start(1);
            match vm.start().await {
                Err(VZError::Framework(e)) => {
                    assert_eq!(e.description, "The virtual machine failed to start.")
                }
                other => panic!("expected a framework error, got {other:?}"),
            }
            assert!(
                matches!(vm.wait_until_stopped().await, StopReason::StartFailed(e) if e.is_vz(1))
            );
        });
    });
}

#[test]
fn events_follow_the_state_machine_and_the_delegate() {
    sim::scenario(|| {
        let dir = TempDir::new("events");
        let vm = build(&dir);
        let mut events = vm.events();
        block_on(async {
            vm.start().await.unwrap();
            vm.pause().await.unwrap();
            vm.resume().await.unwrap();
            vm.request_stop().unwrap();
            vm.wait_until_stopped().await;
        });
        let mut seen = Vec::new();
        while let Some(event) = events.try_next() {
            seen.push(event);
        }
        // Apple does not order the delegate call against the state notification.
        let n = seen.len();
        if n >= 2 && seen[n - 2] == VmEvent::GuestStopped {
            seen.swap(n - 2, n - 1);
        }
        assert_eq!(
            seen,
            [
                VmEvent::StateChanged(S::Starting),
                VmEvent::StateChanged(S::Running),
                VmEvent::StateChanged(S::Pausing),
                VmEvent::StateChanged(S::Paused),
                VmEvent::StateChanged(S::Resuming),
                VmEvent::StateChanged(S::Running),
                VmEvent::StateChanged(S::Stopped),
                VmEvent::GuestStopped,
            ]
        );
        // The stream ends once the virtual machine is gone.
        drop(vm);
        assert_eq!(block_on(events.next()), None);
    });
}

/// Polls a future once and keeps it alive until the VM queue has run what it queued
/// (a `state()` hop is queued behind it), then drops it. Returns the state seen then.
/// A fast operation (a vsock connect) may already be complete at the first poll; its
/// output is dropped with it, which must release what it holds just the same.
fn poll_once_then_drop<F: std::future::Future>(vm: &VirtualMachine, future: F) -> S {
    let mut future = Box::pin(future);
    let waker = std::task::Waker::noop();
    let first = future
        .as_mut()
        .poll(&mut std::task::Context::from_waker(waker));
    let state = vm.state();
    drop(first);
    drop(future);
    state
}

#[test]
fn dropped_futures_are_harmless() {
    sim::scenario(|| {
        let dir = TempDir::new("cancel");
        let vm = build(&dir);
        // Dropped before its first poll: nothing happens.
        drop(vm.start());
        assert_eq!(vm.state(), S::Stopped);
        // Polled once and dropped at once: if the queue had not reached it yet it is
        // cancelled; if it had, the start goes on without us. Either is clean.
        let mut events = vm.events();
        {
            let mut start = Box::pin(vm.start());
            let waker = std::task::Waker::noop();
            assert!(
                start
                    .as_mut()
                    .poll(&mut std::task::Context::from_waker(waker))
                    .is_pending()
            );
        }
        match vm.state() {
            S::Stopped => {}
            S::Starting | S::Running => {
                block_on(async {
                    while vm.state() != S::Running {
                        events.next().await;
                    }
                });
                block_on(stop_checked(&vm));
            }
            other => panic!("unexpected state {other}"),
        }
        // Dropped while the framework works on it: it finishes without us, no leak.
        let mut events = vm.events();
        assert_eq!(poll_once_then_drop(&vm, vm.start()), S::Starting);
        block_on(async { while events.next().await != Some(VmEvent::StateChanged(S::Running)) {} });
        if macos("12.0") {
            assert_eq!(poll_once_then_drop(&vm, vm.stop()), S::Stopping);
            assert_eq!(block_on(vm.wait_until_stopped()), StopReason::HostStopped);
        } else {
            // No force stop: the dropped stop changed nothing; the guest powers off.
            assert_eq!(poll_once_then_drop(&vm, vm.stop()), S::Running);
            vm.request_stop().unwrap();
            assert_eq!(block_on(vm.wait_until_stopped()), StopReason::GuestStopped);
        }
        // A connect whose future is dropped mid-flight: the late connection is closed.
        block_on(vm.start()).unwrap();
        let device = vm.socket_devices().remove(0);
        poll_once_then_drop(&vm, device.connect(1024));
        block_on(stop_checked(&vm));
    });
}

#[test]
fn dropping_a_running_vm_stops_it_on_its_queue() {
    sim::scenario(|| {
        let dir = TempDir::new("drop-running");
        let before = sim::guest::released_while_running();
        for pause in [false, true] {
            let vm = build(&dir);
            block_on(vm.start()).unwrap();
            if pause {
                block_on(vm.pause()).unwrap();
            }
            drop(vm);
        }
        // Dropped in the middle of starting: stopped once it is running.
        let vm = build(&dir);
        assert_eq!(poll_once_then_drop(&vm, vm.start()), S::Starting);
        drop(vm);
        // sim::scenario checks that every object and queue is gone afterwards.
        assert_eq!(sim::quiesce(Duration::from_secs(5)), 0);
        // macOS 11 has no force stop: there all three are released running (the
        // starting one once it runs), which ends them.
        let released = if macos("12.0") { 0 } else { 3 };
        assert_eq!(
            sim::guest::released_while_running() - before,
            released,
            "released while running"
        );
        assert_eq!(sim::guest::running_vms(), 0);
    });
}

#[test]
fn sixty_four_vms_on_eight_threads_without_cross_talk() {
    sim::scenario(|| {
        let dir = TempDir::new("many");
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let vms: Vec<VirtualMachine> = (0..8).map(|_| build(&dir)).collect();
                std::thread::spawn(move || {
                    block_on(async {
                        for (i, vm) in vms.iter().enumerate() {
                            vm.start().await.unwrap();
                            // Odd VMs pause, even ones stay running: states must not mix.
                            if (t + i) % 2 == 1 {
                                vm.pause().await.unwrap();
                            }
                        }
                        for (i, vm) in vms.iter().enumerate() {
                            let expected = if (t + i) % 2 == 1 {
                                S::Paused
                            } else {
                                S::Running
                            };
                            assert_eq!(vm.state(), expected);
                        }
                        for vm in &vms {
                            stop_checked(vm).await; // HostStopped (GuestStopped before macOS 12)
                        }
                    });
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    });
}
