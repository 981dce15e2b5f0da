//! The Apple-silicon-only API in the simulator (issue 10, item 4): Rosetta for Linux
//! (availability, install, caching options), save/restore, and the start options.
//!
//! On a Mac these exist only on arm64; the crate compiles them for the simulator too
//! (`cfg(any(target_arch = "aarch64", arcbox_vz_sim))`), and the simulator plays an
//! Apple-silicon Mac. Below a feature's macOS release (`ARCBOX_VZ_SIM_MACOS`) its
//! tests assert `Unsupported { min_macos }` instead, or leave that to the test of the
//! same feature that does.
#![cfg(arcbox_vz_sim)]

mod common;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use arcbox_vz::{
    DirectoryShare, FrameworkError, LinuxRosettaAbstractSocketCachingOptions,
    LinuxRosettaAvailability, LinuxRosettaCachingOptions, LinuxRosettaDirectoryShare,
    LinuxRosettaUnixSocketCachingOptions, SharedDirectory, SingleDirectoryShare, StartOptions,
    StopReason, VZError, VirtioConsoleDeviceConfiguration, VirtioFileSystemDeviceConfiguration,
    VirtualMachine, VirtualMachineState as S, VmEvent,
};
use common::{TempDir, block_on, minimal_config, sim, vm_config};
use sim::arm64::{self, InstallOutcome, RosettaAvailability, StartOptionsSeen};

/// `VZErrorNotSupported`, what the fake answers when Rosetta is missing.
const VZ_ERROR_NOT_SUPPORTED: isize = 10;
/// `VZErrorSave` and `VZErrorRestore` (vz-api.tsv enum rows).
const VZ_ERROR_SAVE: isize = 11;
const VZ_ERROR_RESTORE: isize = 12;
/// `VZErrorInternal`.
const VZ_ERROR_INTERNAL: isize = 1;

/// Long enough for a slow CI machine, short enough that a hang fails quickly.
const LIMIT: Duration = Duration::from_secs(20);

// ---- helpers ----

/// Runs `body` as a simulator scenario with the arm64 hooks at their defaults.
fn scenario<R>(body: impl FnOnce() -> R) -> R {
    sim::scenario(|| {
        arm64::reset();
        let out = body();
        arm64::reset();
        out
    })
}

/// The `NSError` of a `Framework` error; panics on anything else.
#[track_caller]
fn framework<T: std::fmt::Debug>(result: Result<T, VZError>) -> FrameworkError {
    match result {
        Err(VZError::Framework(e)) => e,
        other => panic!("expected VZError::Framework, got {other:?}"),
    }
}

/// The `min_macos` of an `Unsupported` error; panics on anything else.
#[track_caller]
fn unsupported<T: std::fmt::Debug>(result: Result<T, VZError>) -> &'static str {
    match result {
        Err(VZError::Unsupported { min_macos, .. }) => min_macos,
        other => panic!("expected VZError::Unsupported, got {other:?}"),
    }
}

/// The `(operation, state)` of an `InvalidState` error; panics on anything else.
#[track_caller]
fn invalid_state<T: std::fmt::Debug>(result: Result<T, VZError>) -> (&'static str, S) {
    match result {
        Err(VZError::InvalidState { operation, state }) => (operation, state),
        other => panic!("expected VZError::InvalidState, got {other:?}"),
    }
}

/// The `argument` of an `InvalidArgument` error; panics on anything else.
#[track_caller]
fn invalid_argument<T: std::fmt::Debug>(result: Result<T, VZError>) -> &'static str {
    match result {
        Err(VZError::InvalidArgument { argument, .. }) => argument,
        other => panic!("expected VZError::InvalidArgument, got {other:?}"),
    }
}

/// Waits (polling the state, on the VM queue) until the virtual machine is `state`.
#[track_caller]
fn wait_for_state(vm: &VirtualMachine, state: S) {
    let deadline = Instant::now() + LIMIT;
    while vm.state() != state {
        assert!(
            Instant::now() < deadline,
            "still {} instead of {state}",
            vm.state()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Polls `future` once, with a waker that does nothing.
fn poll_once<F: Future + ?Sized>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

/// Every `StateChanged` event already delivered to `events`.
fn states_seen(events: &mut arcbox_vz::VmEvents) -> Vec<S> {
    std::iter::from_fn(|| events.try_next())
        .filter_map(|e| match e {
            VmEvent::StateChanged(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// A running virtual machine, paused, with its configuration's directory.
fn paused_vm(dir: &TempDir) -> VirtualMachine {
    let vm = vm_config(dir).build().unwrap();
    block_on(async {
        vm.start().await.unwrap();
        vm.pause().await.unwrap();
    });
    vm
}

/// Saves `vm` (paused) to `path`, then stops it: a saved-state file to restore.
fn save_and_stop(vm: &VirtualMachine, path: &Path) {
    block_on(async {
        vm.save_machine_state(path).await.unwrap();
        vm.stop().await.unwrap();
    });
}

/// The guest's vsock echo service answers: the guest is running.
fn echo_works(vm: &VirtualMachine) {
    use std::io::{Read, Write};
    let device = vm.socket_devices().remove(0);
    let mut stream = block_on(device.connect(1024)).unwrap();
    stream.write_all(b"ping").unwrap();
    let mut reply = [0u8; 4];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"ping");
}

// ---- Rosetta ----

#[test]
fn rosetta_availability_is_what_the_host_says() {
    scenario(|| {
        for (host, expected) in [
            (
                RosettaAvailability::NotSupported,
                LinuxRosettaAvailability::NotSupported,
            ),
            (
                RosettaAvailability::NotInstalled,
                LinuxRosettaAvailability::NotInstalled,
            ),
            (
                RosettaAvailability::Installed,
                LinuxRosettaAvailability::Installed,
            ),
        ] {
            arm64::set_rosetta_availability(host);
            let expected = if sim::macos_at_least("13.0") {
                expected
            } else {
                // No VZLinuxRosettaDirectoryShare before macOS 13.
                LinuxRosettaAvailability::NotSupported
            };
            assert_eq!(LinuxRosettaDirectoryShare::availability(), expected);
        }
    });
}

#[test]
fn a_rosetta_share_needs_rosetta_installed() {
    scenario(|| {
        if !sim::macos_at_least("13.0") {
            arm64::set_rosetta_availability(RosettaAvailability::Installed);
            assert_eq!(unsupported(LinuxRosettaDirectoryShare::new()), "13.0");
            return;
        }
        for host in [
            RosettaAvailability::NotSupported,
            RosettaAvailability::NotInstalled,
        ] {
            arm64::set_rosetta_availability(host);
            let error = framework(LinuxRosettaDirectoryShare::new());
            assert!(error.is_vz(VZ_ERROR_NOT_SUPPORTED), "{error}");
        }
        arm64::set_rosetta_availability(RosettaAvailability::Installed);
        let share = LinuxRosettaDirectoryShare::new().unwrap();
        assert!(share.caching_options().is_none());
    });
}

#[test]
fn rosetta_install_installs_it() {
    scenario(|| {
        if !sim::macos_at_least("13.0") {
            assert_eq!(
                unsupported(block_on(LinuxRosettaDirectoryShare::install())),
                "13.0"
            );
            return;
        }
        let calls = arm64::install_calls();
        block_on(LinuxRosettaDirectoryShare::install()).unwrap();
        assert_eq!(arm64::install_calls(), calls + 1);
        assert_eq!(
            LinuxRosettaDirectoryShare::availability(),
            LinuxRosettaAvailability::Installed
        );
        LinuxRosettaDirectoryShare::new().unwrap();
        // Installing again succeeds too (nothing to download).
        block_on(LinuxRosettaDirectoryShare::install()).unwrap();
    });
}

#[test]
fn rosetta_install_works_from_any_executor() {
    scenario(|| {
        if !sim::macos_at_least("13.0") {
            return; // rosetta_install_installs_it covers Unsupported
        }
        futures_executor::block_on(LinuxRosettaDirectoryShare::install()).unwrap();
        arm64::reset();
        smol::block_on(LinuxRosettaDirectoryShare::install()).unwrap();
        arm64::reset();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::spawn(LinuxRosettaDirectoryShare::install())
                .await
                .unwrap()
        })
        .unwrap();
        assert_eq!(
            LinuxRosettaDirectoryShare::availability(),
            LinuxRosettaAvailability::Installed
        );
    });
}

#[test]
fn a_failed_rosetta_install_is_a_framework_error() {
    scenario(|| {
        if !sim::macos_at_least("13.0") {
            return;
        }
        // The user cancelled, or the download failed: the framework's error, and
        // Rosetta stays missing.
        arm64::set_install_outcome(InstallOutcome::Fail(9));
        let error = framework(block_on(LinuxRosettaDirectoryShare::install()));
        assert!(error.is_vz(9), "{error}");
        assert_eq!(
            LinuxRosettaDirectoryShare::availability(),
            LinuxRosettaAvailability::NotInstalled
        );
        // A Mac that cannot run Rosetta at all.
        arm64::set_install_outcome(InstallOutcome::Succeed);
        arm64::set_rosetta_availability(RosettaAvailability::NotSupported);
        let error = framework(block_on(LinuxRosettaDirectoryShare::install()));
        assert!(error.is_vz(VZ_ERROR_NOT_SUPPORTED), "{error}");
    });
}

#[test]
fn a_rosetta_install_never_answered_is_cancelled() {
    scenario(|| {
        if !sim::macos_at_least("13.0") {
            return;
        }
        arm64::set_install_outcome(InstallOutcome::NeverAnswer);
        match block_on(LinuxRosettaDirectoryShare::install()) {
            Err(VZError::Cancelled) => {}
            other => panic!("expected Cancelled, got {other:?}"),
        }
    });
}

#[test]
fn rosetta_install_futures_dropped_early_leave_nothing_behind() {
    scenario(|| {
        if !sim::macos_at_least("13.0") {
            return;
        }
        // Polled once (the request is sent) and dropped: the framework still answers,
        // later, into nothing. The scenario then checks that no block or queue is left.
        for outcome in [
            InstallOutcome::Succeed,
            InstallOutcome::Fail(9),
            InstallOutcome::NeverAnswer,
        ] {
            arm64::set_install_outcome(outcome);
            let calls = arm64::install_calls();
            let mut futures: Vec<_> = (0..8)
                .map(|_| Box::pin(LinuxRosettaDirectoryShare::install()))
                .collect();
            for future in &mut futures {
                // Sent by the first poll (pending, unless the machine was very slow).
                let _ = poll_once(future.as_mut());
            }
            drop(futures);
            assert_eq!(arm64::install_calls(), calls + 8);
        }
        // Never polled: never sent.
        let calls = arm64::install_calls();
        drop(LinuxRosettaDirectoryShare::install());
        assert_eq!(arm64::install_calls(), calls);
    });
}

#[test]
fn rosetta_caching_options_reach_the_framework() {
    scenario(|| {
        arm64::set_rosetta_availability(RosettaAvailability::Installed);
        if !sim::macos_at_least("14.0") {
            assert_eq!(
                unsupported(LinuxRosettaUnixSocketCachingOptions::default_socket()),
                "14.0"
            );
            assert_eq!(
                unsupported(LinuxRosettaAbstractSocketCachingOptions::new("rosetta")),
                "14.0"
            );
            if sim::macos_at_least("13.0") {
                let mut share = LinuxRosettaDirectoryShare::new().unwrap();
                assert_eq!(unsupported(share.set_caching_options(None)), "14.0");
            }
            return;
        }
        let mut share = LinuxRosettaDirectoryShare::new().unwrap();
        assert_eq!(arm64::rosetta_share_options(), ["none"]);

        let default = LinuxRosettaUnixSocketCachingOptions::default_socket().unwrap();
        assert_eq!(default.path(), "/run/rosettad/rosetta.sock");
        share.set_caching_options(Some(default.into())).unwrap();
        assert_eq!(
            arm64::rosetta_share_options(),
            ["unix:/run/rosettad/rosetta.sock"]
        );

        let unix = LinuxRosettaUnixSocketCachingOptions::new("/run/cache/r.sock").unwrap();
        share.set_caching_options(Some(unix.into())).unwrap();
        assert_eq!(arm64::rosetta_share_options(), ["unix:/run/cache/r.sock"]);
        match share.caching_options() {
            Some(LinuxRosettaCachingOptions::UnixSocket(o)) => {
                assert_eq!(o.path(), "/run/cache/r.sock")
            }
            other => panic!("{other:?}"),
        }

        let abstract_socket = LinuxRosettaAbstractSocketCachingOptions::new("rosettad").unwrap();
        assert_eq!(abstract_socket.name(), "rosettad");
        share
            .set_caching_options(Some(abstract_socket.into()))
            .unwrap();
        assert_eq!(arm64::rosetta_share_options(), ["abstract:rosettad"]);

        // The share, with its options, goes into a configuration and a virtual machine.
        let dir = TempDir::new("rosetta-config");
        let mut config = vm_config(&dir);
        let device = VirtioFileSystemDeviceConfiguration::new("rosetta", share).unwrap();
        config.set_directory_sharing_devices(vec![device]);
        config.validate().unwrap();
        let vm = config.build().unwrap();
        drop(config);
        assert_eq!(arm64::rosetta_share_options(), ["abstract:rosettad"]);
        block_on(vm.start()).unwrap();
        assert_eq!(vm.directory_sharing_devices()[0].tag(), "rosetta");
        block_on(vm.stop()).unwrap();
        drop(vm);
    });
}

#[test]
fn rosetta_caching_options_are_checked_before_the_framework() {
    scenario(|| {
        if !sim::macos_at_least("14.0") {
            return; // rosetta_caching_options_reach_the_framework covers Unsupported
        }
        let max_path = LinuxRosettaUnixSocketCachingOptions::maximum_path_length().unwrap();
        let max_name = LinuxRosettaAbstractSocketCachingOptions::maximum_name_length().unwrap();
        assert_eq!((max_path, max_name), (107, 107));
        let longest = format!("/{}", "p".repeat(max_path - 1));
        assert_eq!(
            LinuxRosettaUnixSocketCachingOptions::new(&longest)
                .unwrap()
                .path(),
            longest
        );
        for bad in [
            String::new(),
            format!("{longest}x"),
            "/run/a\0b".to_string(),
            "\u{feff}/run/r.sock".to_string(),
        ] {
            assert_eq!(
                invalid_argument(LinuxRosettaUnixSocketCachingOptions::new(&bad)),
                "Rosetta caching socket path",
                "{bad:?}"
            );
        }
        for bad in [String::new(), "n".repeat(max_name + 1), "a\0b".to_string()] {
            assert_eq!(
                invalid_argument(LinuxRosettaAbstractSocketCachingOptions::new(&bad)),
                "Rosetta caching socket name",
                "{bad:?}"
            );
        }
        // A multi-byte name is measured in UTF-8 bytes, as the framework does.
        let wide = "é".repeat(max_name / 2 + 1);
        assert_eq!(
            invalid_argument(LinuxRosettaAbstractSocketCachingOptions::new(&wide)),
            "Rosetta caching socket name"
        );
    });
}

#[test]
fn a_running_device_refuses_a_rosetta_share() {
    scenario(|| {
        if !sim::macos_at_least("13.0") {
            return;
        }
        arm64::set_rosetta_availability(RosettaAvailability::Installed);
        let dir = TempDir::new("rosetta-runtime");
        let host = dir.path().join("host");
        std::fs::create_dir(&host).unwrap();
        let mut config = vm_config(&dir);
        let share = SingleDirectoryShare::new(SharedDirectory::new(&host, true).unwrap());
        config.set_directory_sharing_devices(vec![
            VirtioFileSystemDeviceConfiguration::new("share", share).unwrap(),
        ]);
        let vm = config.build().unwrap();
        block_on(vm.start()).unwrap();
        let device = vm.directory_sharing_devices().remove(0);
        // The framework raises here (documented); the crate must refuse first.
        let rosetta: DirectoryShare = LinuxRosettaDirectoryShare::new().unwrap().into();
        assert_eq!(
            invalid_argument(device.set_share(Some(rosetta))),
            "directory share"
        );
        assert!(device.has_share());
        block_on(vm.stop()).unwrap();
    });
}

// ---- save/restore ----

#[test]
fn save_and_restore_below_macos_14_are_unsupported() {
    scenario(|| {
        if sim::macos_at_least("14.0") {
            return;
        }
        let dir = TempDir::new("save-old-macos");
        let config = vm_config(&dir);
        assert_eq!(unsupported(config.validate_save_restore_support()), "14.0");
        let vm = paused_vm(&dir);
        let path = dir.path().join("vm.state");
        assert_eq!(unsupported(block_on(vm.save_machine_state(&path))), "14.0");
        assert!(!path.exists());
        // No force stop before macOS 12: the guest shuts down.
        block_on(async {
            vm.resume().await.unwrap();
            vm.request_stop().unwrap();
            vm.wait_until_stopped().await
        });
        std::fs::write(&path, b"anything").unwrap();
        assert_eq!(
            unsupported(block_on(vm.restore_machine_state(&path))),
            "14.0"
        );
        assert_eq!(vm.state(), S::Stopped);
    });
}

#[test]
fn pause_save_stop_restore_resume() {
    scenario(|| {
        if !sim::macos_at_least("14.0") {
            return;
        }
        let dir = TempDir::new("save-restore");
        let path = dir.path().join("vm.state");
        vm_config(&dir).validate_save_restore_support().unwrap();
        let vm = paused_vm(&dir);
        let mut events = vm.events();
        block_on(vm.save_machine_state(&path)).unwrap();
        assert_eq!(vm.state(), S::Paused, "saving leaves it paused");
        assert_eq!(states_seen(&mut events), [S::Saving, S::Paused]);
        let saved = std::fs::read_to_string(&path).unwrap();
        assert!(saved.starts_with(arm64::SAVED_STATE_MAGIC), "{saved}");

        block_on(vm.stop()).unwrap();
        assert_eq!(block_on(vm.wait_until_stopped()), StopReason::HostStopped);
        let _ = states_seen(&mut events);

        block_on(vm.restore_machine_state(&path)).unwrap();
        assert_eq!(vm.state(), S::Paused, "a restored machine is paused");
        assert_eq!(states_seen(&mut events), [S::Restoring, S::Paused]);
        block_on(vm.resume()).unwrap();
        assert_eq!(vm.state(), S::Running);
        echo_works(&vm);

        // It can be saved again, over the same file, and restored again.
        block_on(vm.pause()).unwrap();
        save_and_stop(&vm, &path);
        block_on(vm.restore_machine_state(&path)).unwrap();
        block_on(vm.resume()).unwrap();
        block_on(vm.stop()).unwrap();
        assert_eq!(block_on(vm.wait_until_stopped()), StopReason::HostStopped);
    });
}

#[test]
fn a_new_virtual_machine_restores_another_ones_state() {
    scenario(|| {
        if !sim::macos_at_least("14.0") {
            return;
        }
        let dir = TempDir::new("restore-new-vm");
        let path = dir.path().join("vm.state");
        let first = paused_vm(&dir);
        save_and_stop(&first, &path);
        drop(first);
        // As in a new process: a virtual machine with the same configuration, never
        // started, restored, then stopped by its guest. Apple does not order the state
        // change and the delegate call: try both orders.
        for delegate_first in [true, false] {
            sim::set_callback_order(2, delegate_first, true);
            let vm = vm_config(&dir).build().unwrap();
            assert_eq!(block_on(vm.wait_until_stopped()), StopReason::NeverStarted);
            block_on(vm.restore_machine_state(&path)).unwrap();
            block_on(vm.resume()).unwrap();
            echo_works(&vm);
            vm.request_stop().unwrap();
            assert_eq!(
                block_on(vm.wait_until_stopped()),
                StopReason::GuestStopped,
                "delegate first: {delegate_first}"
            );
        }
    });
}

#[test]
fn a_restored_machine_reports_its_own_stop_not_the_last_one() {
    scenario(|| {
        if !sim::macos_at_least("14.0") {
            return;
        }
        // The state notification comes before the delegate call: a stop reason left
        // over from before the restore must not answer for the stop after it.
        sim::set_callback_order(2, false, true);
        let dir = TempDir::new("restore-stale-reason");
        let path = dir.path().join("vm.state");
        let vm = paused_vm(&dir);
        save_and_stop(&vm, &path);
        assert_eq!(block_on(vm.wait_until_stopped()), StopReason::HostStopped);
        block_on(vm.restore_machine_state(&path)).unwrap();
        block_on(vm.resume()).unwrap();
        vm.request_stop().unwrap();
        assert_eq!(block_on(vm.wait_until_stopped()), StopReason::GuestStopped);
    });
}

#[test]
fn save_needs_a_paused_machine_and_restore_a_stopped_one() {
    scenario(|| {
        if !sim::macos_at_least("14.0") {
            return;
        }
        let dir = TempDir::new("save-states");
        let path = dir.path().join("vm.state");
        let vm = vm_config(&dir).build().unwrap();
        block_on(async {
            assert_eq!(
                invalid_state(vm.save_machine_state(&path).await),
                ("save the state of", S::Stopped)
            );
            vm.start().await.unwrap();
            assert_eq!(
                invalid_state(vm.save_machine_state(&path).await),
                ("save the state of", S::Running)
            );
            assert!(!path.exists());
            vm.pause().await.unwrap();
            vm.save_machine_state(&path).await.unwrap();
            assert_eq!(
                invalid_state(vm.restore_machine_state(&path).await),
                ("restore the state of", S::Paused)
            );
            vm.resume().await.unwrap();
            assert_eq!(
                invalid_state(vm.restore_machine_state(&path).await),
                ("restore the state of", S::Running)
            );
            let message = vm.save_machine_state(&path).await.unwrap_err().to_string();
            assert_eq!(
                message,
                "cannot save the state of a virtual machine that is running"
            );
            vm.stop().await.unwrap();
        });
    });
}

#[test]
fn restoring_a_bad_file_is_a_typed_error_and_changes_nothing() {
    scenario(|| {
        if !sim::macos_at_least("14.0") {
            return;
        }
        let dir = TempDir::new("restore-bad");
        let good = dir.path().join("good.state");
        let vm = paused_vm(&dir);
        save_and_stop(&vm, &good);
        let saved = std::fs::read_to_string(&good).unwrap();

        // Missing: refused before the framework.
        assert_eq!(
            invalid_argument(block_on(vm.restore_machine_state(dir.path().join("none")))),
            "saved state path"
        );
        let other_host = saved
            .lines()
            .map(|l| {
                if l.starts_with("host: ") {
                    "host: another-mac"
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
        let newer = saved
            .lines()
            .map(|l| {
                if l.starts_with("macos: ") {
                    "macos: 9900"
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
        let cases: [(&str, Vec<u8>, &str); 6] = [
            ("empty", Vec::new(), "invalid argument"),
            ("one-byte", b"x".to_vec(), "invalid argument"),
            ("garbage", vec![0xa5; 100_000], "invalid argument"),
            (
                "truncated",
                saved.as_bytes()[..saved.len() / 2].to_vec(),
                "invalid argument",
            ),
            ("other-host", other_host.into_bytes(), "permission denied"),
            ("newer-macos", newer.into_bytes(), "invalid argument"),
        ];
        for (name, contents, reason) in cases {
            let path = dir.file(name, &contents);
            let error = framework(block_on(vm.restore_machine_state(&path)));
            assert!(error.is_vz(VZ_ERROR_RESTORE), "{name}: {error}");
            assert!(error.description.contains(reason), "{name}: {error}");
            assert_eq!(vm.state(), S::Stopped, "{name}: the state is unchanged");
        }
        // A /proc file: a "regular" file of size 0 that has content.
        let error = framework(block_on(vm.restore_machine_state("/proc/self/status")));
        assert!(error.is_vz(VZ_ERROR_RESTORE), "{error}");

        // Another configuration (one CPU instead of two).
        let mut config = vm_config(&dir);
        config.set_cpu_count(1);
        let other = config.build().unwrap();
        let error = framework(block_on(other.restore_machine_state(&good)));
        assert!(error.is_vz(VZ_ERROR_RESTORE), "{error}");
        assert!(error.description.contains("invalid argument"), "{error}");
        drop(other);

        // A failed restore leaves a machine that starts normally, and the good file
        // still restores.
        block_on(vm.start()).unwrap();
        block_on(vm.stop()).unwrap();
        block_on(vm.restore_machine_state(&good)).unwrap();
        block_on(vm.stop()).unwrap();
    });
}

#[test]
fn a_failed_restore_is_the_last_stop_reason() {
    scenario(|| {
        if !sim::macos_at_least("14.0") {
            return;
        }
        let dir = TempDir::new("restore-internal");
        let path = dir.path().join("vm.state");
        let vm = paused_vm(&dir);
        save_and_stop(&vm, &path);
        arm64::fail_next_restore(VZ_ERROR_INTERNAL as i64);
        let error = framework(block_on(vm.restore_machine_state(&path)));
        assert!(error.is_vz(VZ_ERROR_INTERNAL), "{error}");
        assert_eq!(vm.state(), S::Stopped);
        // A stop waiter does not wait forever for a reason: the restore failed.
        match block_on(vm.wait_until_stopped()) {
            StopReason::StartFailed(e) => assert!(e.is_vz(VZ_ERROR_INTERNAL), "{e}"),
            other => panic!("expected StartFailed, got {other:?}"),
        }
    });
}

#[test]
fn saving_to_a_bad_path_is_a_typed_error() {
    scenario(|| {
        if !sim::macos_at_least("14.0") {
            return;
        }
        let dir = TempDir::new("save-bad-path");
        let vm = paused_vm(&dir);
        // Refused before the framework.
        let no_dir = dir.path().join("missing").join("vm.state");
        let trailing = format!("{}/", dir.path().join("vm.state").display());
        for bad in [
            no_dir.clone(),
            dir.path().to_path_buf(),
            PathBuf::from(trailing),
            dir.path().join("a\0b"),
            PathBuf::new(),
        ] {
            assert_eq!(
                invalid_argument(block_on(vm.save_machine_state(&bad))),
                "saved state path",
                "{bad:?}"
            );
        }
        // The directory exists but the file cannot be created (even by root): the
        // framework fails with VZErrorSave, and the machine stays paused.
        let error = framework(block_on(
            vm.save_machine_state("/proc/self/arcbox-vz.state"),
        ));
        assert!(error.is_vz(VZ_ERROR_SAVE), "{error}");
        assert!(error.description.contains("failed to save"), "{error}");
        assert_eq!(vm.state(), S::Paused);
        // A framework failure (a full disk): no file, still paused, still savable.
        let path = dir.path().join("vm.state");
        arm64::fail_next_save(VZ_ERROR_SAVE as i64);
        let error = framework(block_on(vm.save_machine_state(&path)));
        assert!(error.is_vz(VZ_ERROR_SAVE), "{error}");
        assert!(!path.exists());
        assert_eq!(vm.state(), S::Paused);
        block_on(vm.save_machine_state(&path)).unwrap();
        block_on(vm.stop()).unwrap();
    });
}

#[test]
fn hostile_paths_never_reach_the_framework() {
    // A FIFO would block the framework's open() forever: in a child process, so a
    // hang fails this test instead of stalling the suite.
    let outcome = common::isolated("hostile_paths_never_reach_the_framework", LIMIT, || {
        scenario(|| {
            if !sim::macos_at_least("14.0") {
                return;
            }
            let dir = TempDir::new("save-hostile");
            let fifo = dir.path().join("fifo");
            let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
            // SAFETY: a valid C string; mkfifo only reads it.
            assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
            let vm = paused_vm(&dir);
            assert_eq!(
                invalid_argument(block_on(vm.save_machine_state(&fifo))),
                "saved state path"
            );
            assert_eq!(
                invalid_argument(block_on(vm.save_machine_state("/dev/null"))),
                "saved state path"
            );
            save_and_stop(&vm, &dir.path().join("vm.state"));
            for bad in [
                fifo.clone(),
                dir.path().to_path_buf(),
                PathBuf::from("/dev/null"),
                dir.path().join("a\0b"),
            ] {
                assert_eq!(
                    invalid_argument(block_on(vm.restore_machine_state(&bad))),
                    "saved state path",
                    "{bad:?}"
                );
            }
            assert_eq!(vm.state(), S::Stopped);
        });
    });
    outcome.assert_succeeded();
}

#[test]
fn a_configuration_that_cannot_be_saved_is_refused_before_the_framework() {
    scenario(|| {
        if !sim::macos_at_least("14.0") {
            return;
        }
        let dir = TempDir::new("save-unsupported");
        vm_config(&dir).validate_save_restore_support().unwrap();
        minimal_config(&dir)
            .validate_save_restore_support()
            .unwrap();

        // cirruslabs/tart#803 and #540: console and directory sharing devices.
        let host = dir.path().join("host");
        std::fs::create_dir(&host).unwrap();
        let mut with_console = vm_config(&dir);
        with_console.set_console_devices(vec![VirtioConsoleDeviceConfiguration::new().unwrap()]);
        let mut with_share = vm_config(&dir);
        let share = SingleDirectoryShare::new(SharedDirectory::new(&host, true).unwrap());
        with_share.set_directory_sharing_devices(vec![
            VirtioFileSystemDeviceConfiguration::new("share", share).unwrap(),
        ]);
        for (config, reason) in [
            (with_console, "Unsupported console device"),
            (with_share, "Unsupported directory sharing device"),
        ] {
            let error = match config.validate_save_restore_support() {
                Err(VZError::InvalidConfiguration(e)) => e,
                other => panic!("expected InvalidConfiguration, got {other:?}"),
            };
            assert!(
                error
                    .failure_reason
                    .as_deref()
                    .unwrap_or("")
                    .contains(reason),
                "{error}"
            );
            // The framework raises if asked to save such a machine: the crate asks
            // the configuration first.
            let vm = config.build().unwrap();
            block_on(vm.start()).unwrap();
            block_on(vm.pause()).unwrap();
            let path = dir.path().join("vm.state");
            match block_on(vm.save_machine_state(&path)) {
                Err(VZError::InvalidConfiguration(e)) => assert!(
                    e.failure_reason.as_deref().unwrap_or("").contains(reason),
                    "{e}"
                ),
                other => panic!("expected InvalidConfiguration, got {other:?}"),
            }
            assert!(!path.exists());
            block_on(vm.stop()).unwrap();
            std::fs::write(&path, b"x").unwrap();
            assert!(matches!(
                block_on(vm.restore_machine_state(&path)),
                Err(VZError::InvalidConfiguration(_))
            ));
            std::fs::remove_file(&path).unwrap();
        }
    });
}

#[test]
fn concurrent_saves_dropped_early_leave_nothing_behind() {
    scenario(|| {
        if !sim::macos_at_least("14.0") {
            return;
        }
        let dir = TempDir::new("save-dropped");
        let vm = paused_vm(&dir);
        let paths: Vec<PathBuf> = (0..6)
            .map(|i| dir.path().join(format!("vm-{i}.state")))
            .collect();

        // Dropped before their work items ran: none is sent, no file appears.
        sim::hold_queues(true);
        let mut futures: Vec<_> = paths
            .iter()
            .map(|p| Box::pin(vm.save_machine_state(p)))
            .collect();
        for future in &mut futures {
            assert!(poll_once(future.as_mut()).is_pending());
        }
        drop(futures);
        sim::hold_queues(false);
        assert_eq!(vm.state(), S::Paused);
        assert!(paths.iter().all(|p| !p.exists()));

        // Dropped once the first save began: it completes in the framework (its file
        // appears, the machine is paused again); the others found it saving.
        let mut events = vm.events();
        let mut futures: Vec<_> = paths
            .iter()
            .map(|p| Box::pin(vm.save_machine_state(p)))
            .collect();
        for future in &mut futures {
            // Those after the first may already be refused (the machine is saving).
            let _ = poll_once(future.as_mut());
        }
        assert_eq!(
            block_on(events.next()),
            Some(VmEvent::StateChanged(S::Saving))
        );
        drop(futures);
        wait_for_state(&vm, S::Paused);
        // The save's completion handler runs after the state change: let it finish
        // before counting files and objects.
        let deadline = Instant::now() + LIMIT;
        while !paths[0].exists() {
            assert!(Instant::now() < deadline, "the first save never finished");
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(paths[1..].iter().all(|p| !p.exists()));
        block_on(vm.resume()).unwrap();
        echo_works(&vm);
        block_on(vm.stop()).unwrap();
        drop(vm);
    });
}

#[test]
fn a_machine_dropped_while_saving_is_stopped_once_it_settles() {
    scenario(|| {
        if !sim::macos_at_least("14.0") {
            return;
        }
        let dir = TempDir::new("save-drop-vm");
        let path = dir.path().join("vm.state");
        let vm = paused_vm(&dir);
        let mut events = vm.events();
        let mut save = Box::pin(vm.save_machine_state(&path));
        assert!(poll_once(save.as_mut()).is_pending());
        assert_eq!(
            block_on(events.next()),
            Some(VmEvent::StateChanged(S::Saving))
        );
        drop(save);
        drop(vm);
        // The teardown waits for Paused, then force-stops it: nothing left running.
        let deadline = Instant::now() + LIMIT;
        while sim::guest::running_vms() != 0 {
            assert!(Instant::now() < deadline, "the saved machine kept running");
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(sim::guest::released_while_running(), 0);
    });
}

#[test]
fn missing_selectors_are_unsupported_never_sent() {
    // Only these selectors missing, at a release whose classes exist (the version
    // matrix hides whole releases): the crate answers Unsupported and never sends
    // them (a send would raise, which aborts the child).
    let outcome = common::isolated(
        "missing_selectors_are_unsupported_never_sent",
        LIMIT,
        || {
            if !sim::macos_at_least("13.0") {
                return; // the classes are missing too: the other tests cover that
            }
            for selector in [
                "validateSaveRestoreSupportWithError:",
                "saveMachineStateToURL:completionHandler:",
                "restoreMachineStateFromURL:completionHandler:",
                "startWithOptions:completionHandler:",
                "setOptions:",
            ] {
                sim::availability::hide_selector(selector);
            }
            scenario(|| {
                arm64::set_rosetta_availability(RosettaAvailability::Installed);
                let dir = TempDir::new("arm64-hidden");
                let path = dir.path().join("vm.state");
                assert_eq!(
                    unsupported(vm_config(&dir).validate_save_restore_support()),
                    "14.0"
                );
                let vm = paused_vm(&dir);
                assert_eq!(unsupported(block_on(vm.save_machine_state(&path))), "14.0");
                block_on(vm.stop()).unwrap();
                std::fs::write(&path, b"x").unwrap();
                assert_eq!(
                    unsupported(block_on(vm.restore_machine_state(&path))),
                    "14.0"
                );
                assert_eq!(
                    unsupported(block_on(
                        vm.start_with_options(StartOptions::new().unwrap())
                    )),
                    "13.0"
                );
                assert_eq!(vm.state(), S::Stopped);
                let mut share = LinuxRosettaDirectoryShare::new().unwrap();
                assert_eq!(unsupported(share.set_caching_options(None)), "14.0");
            });
        },
    );
    outcome.assert_succeeded();
}

// ---- start options ----

#[test]
fn start_options_reach_the_framework() {
    scenario(|| {
        if !sim::macos_at_least("13.0") {
            assert_eq!(unsupported(StartOptions::new()), "13.0");
            assert_eq!(unsupported(StartOptions::macos_recovery()), "13.0");
            return;
        }
        let dir = TempDir::new("start-options");
        let vm = vm_config(&dir).build().unwrap();
        assert_eq!(arm64::last_start_options(), None);
        block_on(vm.start_with_options(StartOptions::new().unwrap())).unwrap();
        assert_eq!(vm.state(), S::Running);
        assert_eq!(arm64::last_start_options(), Some(StartOptionsSeen::Base));
        assert_eq!(
            invalid_state(block_on(
                vm.start_with_options(StartOptions::new().unwrap())
            )),
            ("start", S::Running)
        );
        block_on(vm.stop()).unwrap();

        block_on(vm.start_with_options(StartOptions::macos_recovery().unwrap())).unwrap();
        assert_eq!(
            arm64::last_start_options(),
            Some(StartOptionsSeen::MacOS { recovery: true })
        );
        echo_works(&vm);
        vm.request_stop().unwrap();
        assert_eq!(block_on(vm.wait_until_stopped()), StopReason::GuestStopped);
    });
}

#[test]
fn a_start_with_options_that_fails_is_the_stop_reason() {
    scenario(|| {
        if !sim::macos_at_least("13.0") {
            return;
        }
        let dir = TempDir::new("start-options-fail");
        let vm = vm_config(&dir).build().unwrap();
        sim::guest::fail_next_start(VZ_ERROR_INTERNAL as i64);
        let error = framework(block_on(
            vm.start_with_options(StartOptions::new().unwrap()),
        ));
        assert!(error.is_vz(VZ_ERROR_INTERNAL), "{error}");
        match block_on(vm.wait_until_stopped()) {
            StopReason::StartFailed(e) => assert!(e.is_vz(VZ_ERROR_INTERNAL), "{e}"),
            other => panic!("expected StartFailed, got {other:?}"),
        }
    });
}
