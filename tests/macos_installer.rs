//! Installing macOS (issue 12, item 1): `MacOSInstaller` against the fake in
//! `csrc/vz_macos_installer.m`, which updates its progress from a thread of its own,
//! asserts the VM queue, raises where Apple raises, and chooses by seed whether the
//! machine shows Running while it installs and whether the install keeps the
//! installer alive.
//!
//! macOS 12 and Apple silicon; below 12 the installer is `Unsupported`.
#![cfg(arcbox_vz_sim)]

mod common;

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use arcbox_vz::{
    DiskImageStorageDeviceAttachment, InstallProgress, MacAuxiliaryStorage, MacMachineIdentifier,
    MacOSBootLoader, MacOSInstaller, MacOSRestoreImage, MacPlatformConfiguration, StartOptions,
    VZError, VZErrorCode, VirtioBlockDeviceConfiguration, VirtualMachine, VirtualMachineState,
};
use common::{TempDir, assert_unsupported, block_on, invalid_argument, macos, minimal_config, sim};
use sim::arm64;

const GIB: u64 = 1 << 30;
const BUILD: &str = "24A335";

fn scenario<R>(body: impl FnOnce() -> R) -> R {
    sim::scenario(|| {
        arm64::reset();
        body()
    })
}

/// A supported fake IPSW in `dir`.
fn ipsw(dir: &TempDir) -> PathBuf {
    dir.file(
        "restore.ipsw",
        &arm64::fake_ipsw(BUILD, "15.0.1", "VirtualMac2,1", 2, 4 * GIB),
    )
}

/// A stopped macOS guest with a 1 GiB sparse disk, as an installer expects it, and
/// the disk's path.
fn mac_vm(dir: &TempDir) -> (VirtualMachine, PathBuf) {
    let image = block_on(MacOSRestoreImage::load(ipsw(dir))).unwrap();
    let requirements = image.most_featureful_supported_configuration().unwrap();
    let model = requirements.hardware_model();
    let aux = MacAuxiliaryStorage::create(dir.path().join("aux.img"), &model, false).unwrap();
    let id = MacMachineIdentifier::new().unwrap();
    let disk = dir.path().join("disk.img");
    std::fs::File::create(&disk).unwrap().set_len(GIB).unwrap();
    let mut config = arcbox_vz::VirtualMachineConfiguration::new().unwrap();
    config
        .set_cpu_count(requirements.minimum_supported_cpu_count())
        .set_memory_size(requirements.minimum_supported_memory_size())
        .set_platform(MacPlatformConfiguration::new(&model, &id, &aux).unwrap())
        .set_boot_loader(MacOSBootLoader::new().unwrap())
        .set_storage_devices(vec![
            VirtioBlockDeviceConfiguration::new(
                DiskImageStorageDeviceAttachment::new(&disk, false).unwrap(),
            )
            .unwrap()
            .into(),
        ]);
    (config.build().unwrap(), disk)
}

/// Drains a progress stream on a thread of its own, as a second task would.
fn collect(mut progress: InstallProgress) -> std::thread::JoinHandle<Vec<f64>> {
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        while let Some(fraction) = block_on(progress.next()) {
            seen.push(fraction);
        }
        seen
    })
}

/// Below 12.0 there is no installer, whatever the machine.
fn unsupported_below_12(dir: &TempDir) -> bool {
    if macos("12.0") {
        return false;
    }
    let vm = minimal_config(dir).build().unwrap();
    assert_unsupported("12.0", MacOSInstaller::new(&vm, ipsw(dir)));
    true
}

#[test]
fn an_install_reports_increasing_progress_and_completes() {
    scenario(|| {
        let dir = TempDir::new("install");
        if unsupported_below_12(&dir) {
            return;
        }
        let (vm, disk) = mac_vm(&dir);
        let installer = MacOSInstaller::new(&vm, ipsw(&dir)).unwrap();
        assert_eq!(installer.restore_image_path(), ipsw(&dir));
        assert_eq!(installer.fraction_completed(), 0.0);
        let mut stream = installer.progress();
        assert_eq!(
            block_on(stream.next()),
            Some(0.0),
            "a stream starts with the current value"
        );
        let progress = collect(stream);
        let before = arm64::installs();
        block_on(installer.install()).unwrap();
        assert_eq!(arm64::installs(), before + 1);

        let seen = progress.join().unwrap();
        assert!(seen.len() >= 2, "too few progress reports: {seen:?}");
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "not increasing: {seen:?}"
        );
        assert!(seen.first().is_some_and(|&f| f > 0.0), "{seen:?}");
        assert_eq!(seen.last(), Some(&1.0), "{seen:?}");
        assert_eq!(installer.fraction_completed(), 1.0);
        // A stream made after the end gives the last value, then ends.
        let mut late = installer.progress();
        assert_eq!(block_on(late.next()), Some(1.0));
        assert_eq!(block_on(late.next()), None);

        assert_eq!(arm64::installed_build(&disk).as_deref(), Some(BUILD));
        assert_eq!(vm.state(), VirtualMachineState::Stopped);
        // Installed, it boots, also into recovery where start options exist.
        block_on(vm.start()).unwrap();
        common::stop_vm(&vm);
        if macos("13.0") {
            block_on(vm.start_with_options(StartOptions::macos_recovery().unwrap())).unwrap();
            common::stop_vm(&vm);
        }
    });
}

#[test]
fn a_cancelled_install_ends_with_cancelled() {
    scenario(|| {
        let dir = TempDir::new("install-cancel");
        if unsupported_below_12(&dir) {
            return;
        }
        let (vm, disk) = mac_vm(&dir);
        let installer = MacOSInstaller::new(&vm, ipsw(&dir)).unwrap();
        let (tx, rx) = mpsc::channel();
        let task = installer.clone();
        let install = std::thread::spawn(move || {
            let mut progress = task.progress();
            let running = task.install();
            // Cancel once the install reports its first step.
            let watch = std::thread::spawn(move || {
                while let Some(f) = block_on(progress.next()) {
                    if f > 0.0 {
                        tx.send(()).unwrap();
                        break;
                    }
                }
            });
            let result = block_on(running);
            watch.join().unwrap();
            result
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the install never reported progress");
        installer.cancel().unwrap();
        installer.cancel().unwrap(); // twice is harmless
        let result = install.join().unwrap();
        assert!(matches!(result, Err(VZError::Cancelled)), "{result:?}");
        assert!(installer.fraction_completed() < 1.0);
        assert_eq!(
            arm64::installed_build(&disk),
            None,
            "a cancelled install wrote the disk"
        );
        let mut progress = installer.progress();
        assert!(block_on(progress.next()).is_some());
        assert_eq!(
            block_on(progress.next()),
            None,
            "the stream ends with the install"
        );
        installer.cancel().unwrap(); // after the end, nothing to do
        assert_eq!(vm.state(), VirtualMachineState::Stopped);
    });
}

#[test]
fn cancel_before_the_install_is_refused_and_sends_nothing() {
    scenario(|| {
        let dir = TempDir::new("install-early-cancel");
        if unsupported_below_12(&dir) {
            return;
        }
        let (vm, disk) = mac_vm(&dir);
        let installer = MacOSInstaller::new(&vm, ipsw(&dir)).unwrap();
        let (argument, reason) = invalid_argument(installer.cancel().unwrap_err());
        assert_eq!(argument, "installer");
        assert!(reason.contains("not started"), "{reason}");
        // The fake raises if the progress was cancelled before the install began.
        block_on(installer.install()).unwrap();
        assert_eq!(arm64::installed_build(&disk).as_deref(), Some(BUILD));
    });
}

#[test]
fn a_second_install_with_the_same_installer_is_refused() {
    scenario(|| {
        let dir = TempDir::new("install-twice");
        if unsupported_below_12(&dir) {
            return;
        }
        let (vm, _disk) = mac_vm(&dir);
        let installer = MacOSInstaller::new(&vm, ipsw(&dir)).unwrap();
        block_on(installer.install()).unwrap();
        let before = arm64::installs();
        for _ in 0..2 {
            let (argument, reason) = invalid_argument(block_on(installer.install()).unwrap_err());
            assert_eq!(argument, "installer");
            assert!(reason.contains("make a new one"), "{reason}");
        }
        // A clone is the same installer.
        assert!(block_on(installer.clone().install()).is_err());
        assert_eq!(
            arm64::installs(),
            before,
            "the framework raises on a second install"
        );
        // A new installer for the same machine may install again.
        block_on(MacOSInstaller::new(&vm, ipsw(&dir)).unwrap().install()).unwrap();
    });
}

#[test]
fn installing_on_a_machine_that_is_not_stopped_is_refused() {
    scenario(|| {
        let dir = TempDir::new("install-running");
        if unsupported_below_12(&dir) {
            return;
        }
        let (vm, disk) = mac_vm(&dir);
        let installer = MacOSInstaller::new(&vm, ipsw(&dir)).unwrap();
        block_on(vm.start()).unwrap();
        let before = arm64::installs();
        match block_on(installer.install()) {
            Err(VZError::InvalidState { operation, state }) => {
                assert_eq!(operation, "install macOS on");
                assert_eq!(state, VirtualMachineState::Running);
            }
            other => panic!("expected InvalidState, got {other:?}"),
        }
        assert_eq!(arm64::installs(), before);
        common::stop_vm(&vm);
        // Refused before it began, the installer is still unused.
        block_on(installer.install()).unwrap();
        assert_eq!(arm64::installed_build(&disk).as_deref(), Some(BUILD));
    });
}

#[test]
fn a_linux_machine_is_refused() {
    scenario(|| {
        let dir = TempDir::new("install-linux");
        if unsupported_below_12(&dir) {
            return;
        }
        let vm = minimal_config(&dir).build().unwrap();
        let (argument, reason) =
            invalid_argument(MacOSInstaller::new(&vm, ipsw(&dir)).unwrap_err());
        assert_eq!(argument, "virtual machine");
        assert!(reason.contains("MacPlatformConfiguration"), "{reason}");
    });
}

#[test]
fn bad_restore_images_are_refused_before_the_framework() {
    scenario(|| {
        let dir = TempDir::new("install-bad-image");
        if unsupported_below_12(&dir) {
            return;
        }
        let (vm, _disk) = mac_vm(&dir);
        let fifo = dir.path().join("fifo.ipsw");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let bad: Vec<PathBuf> = vec![
            dir.path().join("missing.ipsw"),
            dir.path().to_path_buf(),
            dir.file("one-byte.ipsw", b"P"),
            dir.file("text.ipsw", b"not an archive at all"),
            dir.file("empty-zip.ipsw", b"PK\x05\x06"),
            fifo,
            PathBuf::from("/dev/zero"),
            PathBuf::from("/proc/self/status"),
            PathBuf::from("restore.ipsw\0hidden"),
            PathBuf::from("relative.ipsw"),
        ];
        for path in bad {
            match MacOSInstaller::new(&vm, &path) {
                Err(VZError::InvalidArgument { argument, reason }) => {
                    assert_eq!(argument, "restore image", "{}", path.display());
                    assert!(!reason.is_empty());
                }
                other => panic!(
                    "{}: expected InvalidArgument, got {other:?}",
                    path.display()
                ),
            }
        }
        assert_eq!(vm.state(), VirtualMachineState::Stopped);
    });
}

#[test]
fn a_failing_install_is_the_frameworks_error() {
    scenario(|| {
        let dir = TempDir::new("install-fails");
        if unsupported_below_12(&dir) {
            return;
        }
        let (vm, disk) = mac_vm(&dir);
        // A zip that is not a restore image passes the check and fails in the framework.
        let fake_zip = dir.file("other.ipsw", b"PK\x03\x04 some other archive");
        let installer = MacOSInstaller::new(&vm, &fake_zip).unwrap();
        let progress = collect(installer.progress());
        match block_on(installer.install()) {
            Err(VZError::Framework(error)) => {
                if macos("13.0") {
                    assert_eq!(error.vz_code(), Some(VZErrorCode::InstallationFailed));
                }
            }
            other => panic!("expected a framework error, got {other:?}"),
        }
        assert!(!progress.join().unwrap().is_empty(), "the stream ends");

        arm64::fail_next_install(10007);
        let installer = MacOSInstaller::new(&vm, ipsw(&dir)).unwrap();
        let result = block_on(installer.install());
        assert!(matches!(result, Err(VZError::Framework(_))), "{result:?}");
        assert!(installer.fraction_completed() < 1.0);
        assert_eq!(arm64::installed_build(&disk), None);
        assert_eq!(vm.state(), VirtualMachineState::Stopped);
    });
}

#[test]
fn an_install_outlives_every_handle() {
    scenario(|| {
        let dir = TempDir::new("install-dropped");
        if unsupported_below_12(&dir) {
            return;
        }
        let (vm, disk) = mac_vm(&dir);
        let installer = MacOSInstaller::new(&vm, ipsw(&dir)).unwrap();
        let install = installer.install();
        let progress = collect(installer.progress());
        // Every handle goes before the install is even sent: the queued work item,
        // the completion handler and the stream hold what they need.
        drop(installer);
        drop(vm);
        block_on(install).unwrap();
        let seen = progress.join().unwrap();
        assert_eq!(seen.last(), Some(&1.0));
        assert_eq!(arm64::installed_build(&disk).as_deref(), Some(BUILD));
    });
}

#[test]
fn an_install_dropped_before_it_is_sent_is_not_sent() {
    scenario(|| {
        let dir = TempDir::new("install-cancelled-future");
        if unsupported_below_12(&dir) {
            return;
        }
        let (vm, disk) = mac_vm(&dir);
        let installer = MacOSInstaller::new(&vm, ipsw(&dir)).unwrap();
        let before = arm64::installs();
        sim::hold_queues(true);
        drop(installer.install());
        sim::hold_queues(false);
        // A state read is a hop behind the dropped work item.
        assert_eq!(vm.state(), VirtualMachineState::Stopped);
        assert_eq!(arm64::installs(), before);
        block_on(installer.install()).unwrap();
        assert_eq!(arm64::installed_build(&disk).as_deref(), Some(BUILD));
    });
}

#[test]
fn a_dropped_progress_stream_leaves_no_waker() {
    scenario(|| {
        let dir = TempDir::new("install-progress-drop");
        if unsupported_below_12(&dir) {
            return;
        }
        let (vm, _disk) = mac_vm(&dir);
        let installer = MacOSInstaller::new(&vm, ipsw(&dir)).unwrap();
        for _ in 0..100 {
            let mut progress = installer.progress();
            assert_eq!(block_on(progress.next()), Some(0.0));
            // Pending now: polled once with a waker, then dropped.
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            assert!(progress.poll_next(&mut cx).is_pending());
        }
        block_on(installer.install()).unwrap();
    });
}

#[test]
fn installer_futures_and_handles_are_send() {
    fn send<T: Send + Sync>(_: &T) {}
    fn send_future<T: Send>(_: &T) {}
    scenario(|| {
        let dir = TempDir::new("install-send");
        if unsupported_below_12(&dir) {
            return;
        }
        let (vm, _disk) = mac_vm(&dir);
        let installer = MacOSInstaller::new(&vm, ipsw(&dir)).unwrap();
        send(&installer);
        let mut progress = installer.progress();
        send_future(&progress.next());
        let install = installer.install();
        send_future(&install);
        block_on(install).unwrap();
    });
}

#[test]
fn the_machine_refuses_lifecycle_calls_and_other_installers_while_installing() {
    scenario(|| {
        let dir = TempDir::new("install-busy");
        if unsupported_below_12(&dir) {
            return;
        }
        let (vm, disk) = mac_vm(&dir);
        let installer = MacOSInstaller::new(&vm, ipsw(&dir)).unwrap();
        let other = MacOSInstaller::new(&vm, ipsw(&dir)).unwrap();
        let mut progress = installer.progress();
        let install = std::thread::spawn({
            let installer = installer.clone();
            move || block_on(installer.install())
        });
        // Once it reports a step, it is surely installing.
        while block_on(progress.next()).is_some_and(|f| f == 0.0) {}
        let refused = |result: Result<(), VZError>, what: &str| {
            let (argument, reason) = invalid_argument(result.unwrap_err());
            assert_eq!(argument, "virtual machine", "{what}");
            assert!(reason.contains("being installed"), "{what}: {reason}");
        };
        refused(block_on(vm.start()), "start");
        refused(vm.request_stop(), "request_stop");
        if macos("12.0") {
            refused(block_on(vm.stop()), "stop");
        }
        refused(block_on(vm.pause()), "pause");
        refused(block_on(other.install()), "a second installer");
        install.join().unwrap().unwrap();
        assert_eq!(arm64::installed_build(&disk).as_deref(), Some(BUILD));
        // Afterwards the machine is free again, and the other installer unused.
        block_on(other.install()).unwrap();
        block_on(vm.start()).unwrap();
        common::stop_vm(&vm);
    });
}
