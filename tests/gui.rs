//! The window onto a virtual machine (`arcbox_vz::gui`) against the simulator's fake
//! AppKit. A `harness = false` test: `main` runs on the process's main thread, which
//! AppKit (and the fake, which checks the real thread id) requires; libtest would run
//! every test on a spawned thread. Passes at every simulated release.

#[cfg(arcbox_vz_sim)]
mod common;

#[cfg(not(arcbox_vz_sim))]
fn main() {}

#[cfg(arcbox_vz_sim)]
fn main() {
    tests::run_all();
}

#[cfg(arcbox_vz_sim)]
mod tests {
    use std::time::Duration;

    use arcbox_vz::gui::{self, WindowOptions, WindowOutcome};
    use arcbox_vz::*;

    use super::common::{
        TempDir, assert_unsupported, block_on, macos, minimal_config, sim, stop_vm,
    };

    /// Runs each test on the main thread, printing libtest-like lines.
    pub(super) fn run_all() {
        let tests: [(&str, fn()); 8] = [
            (
                "off_the_main_thread_is_a_typed_error",
                off_the_main_thread_is_a_typed_error,
            ),
            ("bad_options_are_refused", bad_options_are_refused),
            ("a_stopped_vm_is_refused", a_stopped_vm_is_refused),
            (
                "the_loop_ends_when_the_guest_powers_off",
                the_loop_ends_when_the_guest_powers_off,
            ),
            (
                "a_crash_ends_the_loop_with_its_error",
                a_crash_ends_the_loop_with_its_error,
            ),
            (
                "closing_asks_the_guest_to_stop",
                closing_asks_the_guest_to_stop,
            ),
            (
                "closing_forces_a_guest_that_ignores_it",
                closing_forces_a_guest_that_ignores_it,
            ),
            (
                "a_run_inside_a_run_is_a_typed_error",
                a_run_inside_a_run_is_a_typed_error,
            ),
        ];
        println!("\nrunning {} tests", tests.len());
        for (name, test) in tests {
            sim::scenario(test);
            println!("test {name} ... ok");
        }
        println!("\ntest result: ok. {} passed", tests.len());
    }

    fn running_vm(dir: &TempDir) -> VirtualMachine {
        let vm = minimal_config(dir).build().unwrap();
        block_on(vm.start()).unwrap();
        vm
    }

    /// `run` where the view exists (macOS 12 on); below, `Unsupported` and `None`.
    fn window(vm: &VirtualMachine, options: &WindowOptions) -> Option<WindowOutcome> {
        let result = gui::run(vm, options);
        if macos("12.0") {
            Some(result.unwrap())
        } else {
            assert_unsupported("12.0", result);
            None
        }
    }

    fn off_the_main_thread_is_a_typed_error() {
        let dir = TempDir::new("gui-thread");
        let vm = running_vm(&dir);
        assert!(gui::is_main_thread(), "main runs the tests");
        let vm2 = vm.clone();
        let result = std::thread::spawn(move || {
            assert!(!gui::is_main_thread());
            gui::run(&vm2, &WindowOptions::default())
        })
        .join()
        .unwrap();
        match result {
            Err(VZError::NotMainThread { operation }) => {
                assert!(operation.contains("window"), "{operation}");
            }
            other => panic!("expected NotMainThread, got {other:?}"),
        }
        assert!(!sim::gui::window().shown, "nothing was opened");
        stop_vm(&vm);
    }

    fn bad_options_are_refused() {
        let dir = TempDir::new("gui-options");
        let vm = running_vm(&dir);
        let bad_size = WindowOptions {
            width: -1.0,
            ..WindowOptions::default()
        };
        let nul_title = WindowOptions {
            title: "a\0b".into(),
            ..WindowOptions::default()
        };
        for options in [bad_size, nul_title] {
            match gui::run(&vm, &options) {
                Err(VZError::InvalidArgument { .. }) if macos("12.0") => {}
                Err(VZError::Unsupported {
                    min_macos: "12.0", ..
                }) if !macos("12.0") => {}
                other => panic!("{options:?}: {other:?}"),
            }
        }
        let reconfigure = WindowOptions {
            automatically_reconfigures_display: true,
            ..WindowOptions::default()
        };
        if macos("12.0") && !macos("14.0") {
            assert_unsupported("14.0", gui::run(&vm, &reconfigure));
        }
        assert!(!sim::gui::window().shown);
        stop_vm(&vm);
    }

    fn a_stopped_vm_is_refused() {
        let dir = TempDir::new("gui-stopped");
        let vm = minimal_config(&dir).build().unwrap();
        match gui::run(&vm, &WindowOptions::default()) {
            Err(VZError::InvalidState {
                state: VirtualMachineState::Stopped,
                ..
            }) if macos("12.0") => {}
            Err(VZError::Unsupported {
                min_macos: "12.0", ..
            }) if !macos("12.0") => {}
            other => panic!("{other:?}"),
        }
    }

    fn the_loop_ends_when_the_guest_powers_off() {
        let dir = TempDir::new("gui-poweroff");
        let vm = running_vm(&dir);
        let options = WindowOptions {
            width: 800.0,
            height: 600.0,
            title: "guest – ünïcode".into(),
            captures_system_keys: true,
            automatically_reconfigures_display: macos("14.0"),
            ..WindowOptions::default()
        };
        let powering_off = std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            assert!(sim::guest::power_off());
        });
        let Some(outcome) = window(&vm, &options) else {
            powering_off.join().unwrap();
            return;
        };
        powering_off.join().unwrap();
        assert_eq!(outcome, WindowOutcome::VmStopped(StopReason::GuestStopped));
        let shown = sim::gui::window();
        assert_eq!(shown.rect, [0.0, 0.0, 800.0, 600.0], "NSRect by value");
        assert_eq!(shown.title, "guest – ünïcode");
        assert!(shown.has_vm && shown.captures_system_keys);
        assert!(shown.activated_in_loop, "activated once launched");
        assert_eq!(shown.reconfigures_display, macos("14.0"));
        assert!(!shown.shown, "the window is closed once the loop ends");
        assert_eq!(vm.state(), VirtualMachineState::Stopped);
    }

    fn a_crash_ends_the_loop_with_its_error() {
        let dir = TempDir::new("gui-crash");
        let vm = running_vm(&dir);
        let crashing = std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            assert!(sim::guest::crash(1));
        });
        let outcome = window(&vm, &WindowOptions::default());
        crashing.join().unwrap();
        let Some(outcome) = outcome else { return };
        match outcome {
            WindowOutcome::VmStopped(StopReason::Error(e)) => assert_eq!(e.code, 1, "{e:?}"),
            other => panic!("{other:?}"),
        }
        assert!(!sim::gui::window().shown);
    }

    fn closing_asks_the_guest_to_stop() {
        let dir = TempDir::new("gui-close");
        let vm = running_vm(&dir);
        sim::guest::set_shutdown_delay_ms(20);
        let closing = std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            sim::gui::close_window();
        });
        let outcome = window(&vm, &WindowOptions::default());
        closing.join().unwrap();
        let Some(outcome) = outcome else {
            // The close hook found no window: nothing to drain but the VM.
            stop_vm(&vm);
            return;
        };
        assert_eq!(
            outcome,
            WindowOutcome::WindowClosed {
                reason: StopReason::GuestStopped,
                forced: false
            }
        );
        assert!(!sim::gui::window().shown);
    }

    fn closing_forces_a_guest_that_ignores_it() {
        let dir = TempDir::new("gui-force");
        let vm = running_vm(&dir);
        sim::guest::set_shutdown_delay_ms(1_000);
        let closing = std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            sim::gui::close_window();
        });
        let options = WindowOptions {
            stop_timeout: Duration::from_millis(100),
            ..WindowOptions::default()
        };
        let outcome = window(&vm, &options);
        closing.join().unwrap();
        sim::guest::set_shutdown_delay_ms(20);
        let Some(outcome) = outcome else {
            stop_vm(&vm);
            return;
        };
        assert_eq!(
            outcome,
            WindowOutcome::WindowClosed {
                reason: StopReason::HostStopped,
                forced: true
            }
        );
    }

    /// Main-queue work that the window's loop runs calls `gui::run` again: a typed
    /// error, nothing sent to AppKit (the fake aborts on a nested `-[NSApplication
    /// run]`), and the outer window carries on until the guest powers off. After it
    /// returns, a window opens again.
    fn a_run_inside_a_run_is_a_typed_error() {
        let dir = TempDir::new("gui-nested");
        let vm = running_vm(&dir);
        if !macos("12.0") {
            // No loop runs: nothing would ever run the main-queue work.
            assert_unsupported("12.0", gui::run(&vm, &WindowOptions::default()));
            stop_vm(&vm);
            return;
        }
        let (sender, nested) = std::sync::mpsc::channel();
        let vm2 = vm.clone();
        sim::gui::on_main_queue(move || {
            let inner = WindowOptions {
                title: "inner".into(),
                ..WindowOptions::default()
            };
            let result = gui::run(&vm2, &inner);
            // The outer loop is still running its window.
            let outer_shown = sim::gui::window().shown;
            sender
                .send((
                    format!("{result:?}"),
                    result.map(|_| ()).err().map(|e| e.to_string()),
                    outer_shown,
                ))
                .unwrap();
            // End the outer loop: the guest powers off (on its own queue; the loop
            // hears of it through the main queue once this work item returns).
            assert!(sim::guest::power_off());
        });
        let outer = WindowOptions {
            title: "outer".into(),
            ..WindowOptions::default()
        };
        let outcome = gui::run(&vm, &outer).unwrap();
        let (debug, message, outer_shown) = nested.recv().unwrap();
        assert_eq!(debug, "Err(WindowAlreadyOpen)");
        let message = message.unwrap();
        assert!(
            message.contains("already open") && message.contains("does not nest"),
            "{message}"
        );
        assert!(outer_shown, "the outer window stayed open");
        assert_eq!(outcome, WindowOutcome::VmStopped(StopReason::GuestStopped));
        let shown = sim::gui::window();
        assert_eq!(shown.title, "outer", "the inner call made no window");
        assert!(!shown.shown);

        // Once the outer `run` has returned, a window opens again.
        block_on(vm.start()).unwrap();
        let powering_off = std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            assert!(sim::guest::power_off());
        });
        let again = gui::run(&vm, &WindowOptions::default());
        powering_off.join().unwrap();
        assert_eq!(
            again.unwrap(),
            WindowOutcome::VmStopped(StopReason::GuestStopped)
        );
    }
}
