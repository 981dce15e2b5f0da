//! Virtio console port events (macOS 13): `consoleDevice:didOpenPort:` and
//! `consoleDevice:didClosePort:` as `VmEvent::ConsolePortOpened` / `ConsolePortClosed`,
//! in the simulator. The fake guest opens every named port when it boots and closes
//! every open port when it halts; `sim::guest::console_port` opens or closes one.
#![cfg(arcbox_vz_sim)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};
use std::time::{Duration, Instant};

use arcbox_vz::{
    VirtioConsoleDeviceConfiguration, VirtioConsolePortConfiguration, VirtualMachine, VmEvent,
    VmEvents,
};
use common::{TempDir, block_on, isolated, macos, minimal_config, sim, stop_vm};

const AGENT: &str = "org.example.agent";

/// A VM with one console device: a named port at 0 (opened at boot), an unnamed one
/// at 2. Before macOS 13, a VM without console devices.
fn build(dir: &TempDir) -> VirtualMachine {
    let mut config = minimal_config(dir);
    if macos("13.0") {
        let mut named = VirtioConsolePortConfiguration::new().unwrap();
        named.set_name(AGENT).unwrap();
        let mut console = VirtioConsoleDeviceConfiguration::new().unwrap();
        console
            .set_port(0, named)
            .unwrap()
            .set_port(2, VirtioConsolePortConfiguration::new().unwrap())
            .unwrap();
        config.set_console_devices(vec![console]);
    }
    config.build().unwrap()
}

/// The next console port event, skipping the others; `None` if the stream ends or
/// nothing comes within 5 s.
fn next_port_event(events: &mut VmEvents) -> Option<VmEvent> {
    common::next_event_where(events, |e| {
        matches!(
            e,
            VmEvent::ConsolePortOpened { .. } | VmEvent::ConsolePortClosed { .. }
        )
    })
}

fn opened(port_index: u32, name: Option<&str>) -> VmEvent {
    VmEvent::ConsolePortOpened {
        device_index: 0,
        port_index,
        name: name.map(str::to_owned),
    }
}

fn closed(port_index: u32, name: Option<&str>) -> VmEvent {
    VmEvent::ConsolePortClosed {
        device_index: 0,
        port_index,
        name: name.map(str::to_owned),
    }
}

#[test]
fn ports_opened_and_closed_by_the_guest_arrive_in_order() {
    sim::scenario(|| {
        let dir = TempDir::new("console-events");
        let vm = build(&dir);
        let mut events = vm.events();
        block_on(vm.start()).unwrap();
        if !macos("13.0") {
            // No console devices: nothing to open, and nothing is told.
            assert_eq!(sim::guest::console_port(0, 0, true), None);
            stop_vm(&vm);
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(next_port_event_now(&mut events), None);
            return;
        }
        // The named port opens at boot.
        assert_eq!(next_port_event(&mut events), Some(opened(0, Some(AGENT))));
        // The unnamed one when the guest opens it, then closes it; nothing for a port
        // that is already in that state, or that does not exist.
        assert_eq!(sim::guest::console_port(0, 2, true), Some(true));
        assert_eq!(sim::guest::console_port(0, 2, true), Some(false));
        assert_eq!(sim::guest::console_port(0, 2, false), Some(true));
        assert_eq!(sim::guest::console_port(0, 1, true), None);
        assert_eq!(sim::guest::console_port(1, 0, true), None);
        assert_eq!(next_port_event(&mut events), Some(opened(2, None)));
        assert_eq!(next_port_event(&mut events), Some(closed(2, None)));
        // Halting closes the named port.
        stop_vm(&vm);
        assert_eq!(next_port_event(&mut events), Some(closed(0, Some(AGENT))));
    });
}

/// The console port events already delivered, without waiting.
fn next_port_event_now(events: &mut VmEvents) -> Option<VmEvent> {
    std::iter::from_fn(|| events.try_next()).find(|e| {
        matches!(
            e,
            VmEvent::ConsolePortOpened { .. } | VmEvent::ConsolePortClosed { .. }
        )
    })
}

#[test]
fn dropped_streams_and_events_nobody_reads_leave_nothing() {
    sim::scenario(|| {
        let dir = TempDir::new("console-dropped");
        for _ in 0..10 {
            let vm = build(&dir);
            let events = vm.events();
            let unread = vm.events();
            block_on(vm.start()).unwrap();
            drop(events);
            sim::guest::console_port(0, 2, true);
            sim::guest::console_port(0, 2, false);
            stop_vm(&vm);
            drop(vm);
            drop(unread);
        }
        // The scenario checks that every object, block and queue is gone.
        std::thread::sleep(Duration::from_millis(50));
    });
}

/// A waker that owns the last handle and drops it when woken; optionally it panics
/// after that.
struct DropOnWake {
    slot: Mutex<Option<VirtualMachine>>,
    woken: AtomicBool,
    panic: bool,
}

impl Wake for DropOnWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        drop(self.slot.lock().unwrap().take());
        self.woken.store(true, Ordering::SeqCst);
        if self.panic {
            panic!("a user waker panics (as the test wants)");
        }
    }
}

#[test]
fn a_port_event_whose_waker_drops_the_last_handle_is_safe() {
    last_handle_dropped_by_a_port_event(
        "a_port_event_whose_waker_drops_the_last_handle_is_safe",
        false,
    );
}

#[test]
fn a_panicking_waker_woken_by_a_port_event_loses_only_its_wake_up() {
    last_handle_dropped_by_a_port_event(
        "a_panicking_waker_woken_by_a_port_event_loses_only_its_wake_up",
        true,
    );
}

fn last_handle_dropped_by_a_port_event(name: &str, panic: bool) {
    isolated(name, Duration::from_secs(30), move || {
        sim::scenario(|| {
            if !macos("13.0") {
                return;
            }
            let dir = TempDir::new("console-last-handle");
            let vm = build(&dir);
            let mut events = vm.events();
            block_on(vm.start()).unwrap();
            // Let the boot-time event of port 0 pass first.
            assert_eq!(next_port_event(&mut events), Some(opened(0, Some(AGENT))));
            let waker = Arc::new(DropOnWake {
                slot: Mutex::new(Some(vm)),
                woken: AtomicBool::new(false),
                panic,
            });
            let as_waker = Waker::from(Arc::clone(&waker));
            while events
                .poll_next(&mut Context::from_waker(&as_waker))
                .is_ready()
            {}
            // The guest opens port 2: the delegate's event wakes the waker, which
            // drops the last handle inside the callback.
            assert_eq!(sim::guest::console_port(0, 2, true), Some(true));
            let deadline = Instant::now() + Duration::from_secs(10);
            while !waker.woken.load(Ordering::SeqCst) {
                assert!(Instant::now() < deadline, "never woken");
                std::thread::sleep(Duration::from_millis(2));
            }
            std::thread::sleep(Duration::from_millis(100));
            // The stream saw the event, then ends: the virtual machine is gone.
            let mut seen = Vec::new();
            while let Some(e) = block_on(events.next()) {
                seen.push(e);
            }
            assert!(seen.contains(&opened(2, None)), "{seen:?}");
        });
        println!("survived");
    })
    .assert_succeeded();
}
