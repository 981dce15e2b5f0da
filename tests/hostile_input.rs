//! Hostile input (issue 9): input that used to hang, abort later, or be silently
//! changed. Each case runs in a child process (`common::isolated`), so a hang or an
//! abort fails its test instead of stalling or killing the suite.
#![cfg(arcbox_vz_sim)]

mod common;

use std::time::Duration;

use arcbox_vz::{
    DiskImageStorageDeviceAttachment, DiskSynchronizationMode, EFIBootLoader, EFIVariableStore,
    FileHandleSerialPortAttachment, FileSerialPortAttachment, LinuxBootLoader,
    MultipleDirectoryShare, NetworkBlockDeviceStorageDeviceAttachment, SharedDirectory,
    SingleDirectoryShare, USBController, USBKeyboardConfiguration, USBMassStorageDevice,
    USBScreenCoordinatePointingDeviceConfiguration, VZError, VirtioBlockDeviceConfiguration,
    VirtioConsoleDeviceConfiguration, VirtioConsolePortConfiguration,
    VirtioFileSystemDeviceConfiguration, VirtioGraphicsDeviceConfiguration,
    VirtioGraphicsScanoutConfiguration, XHCIControllerConfiguration,
};
use common::{ChildOutcome, TempDir, assert_unsupported, macos, minimal_config, sim, since};

/// Long enough for a slow CI machine, short enough that a hang fails quickly.
const LIMIT: Duration = Duration::from_secs(20);

/// Runs `body` alone in a child process and asserts it returned normally.
#[track_caller]
fn in_child(test_name: &str, body: impl FnOnce()) {
    common::isolated(test_name, LIMIT, body).assert_succeeded();
}

// ---- item 5: availability is checked where the selector is sent ----

/// The device-list setters newer than macOS 11, as vz-api.tsv lists them.
const NEWER_LIST_SETTERS: [&str; 6] = [
    "setDirectorySharingDevices:",
    "setGraphicsDevices:",
    "setKeyboards:",
    "setPointingDevices:",
    "setConsoleDevices:",
    "setUsbControllers:",
];

#[test]
fn hidden_selector_behaves_like_a_missing_one() {
    // The hook is faithful: no longer answered by respondsToSelector:, and a send
    // raises (an abort, since Rust cannot catch it).
    in_child("hidden_selector_behaves_like_a_missing_one", || {
        let class = "VZVirtualMachineConfiguration";
        // setConsoleDevices: is missing before macOS 13: hide one that exists there.
        let selector = if macos("13.0") {
            "setConsoleDevices:"
        } else {
            "setEntropyDevices:"
        };
        assert_eq!(
            sim::availability::instance_responds(class, selector),
            Some(true)
        );
        sim::availability::hide_selector(selector);
        assert_eq!(
            sim::availability::instance_responds(class, selector),
            Some(false)
        );
        assert_eq!(
            sim::availability::instance_responds(class, "setSerialPorts:"),
            Some(true)
        );
    });
}

#[test]
fn hidden_selector_send_aborts() {
    let outcome: ChildOutcome = common::isolated("hidden_selector_send_aborts", LIMIT, || {
        sim::availability::hide_selector("setConsoleDevices:");
        sim::availability::send_nil_argument("VZVirtualMachineConfiguration", "setConsoleDevices:");
    });
    assert!(
        !outcome.succeeded() && !outcome.timed_out(),
        "sending a hidden selector must raise: {outcome:?}"
    );
    assert!(
        outcome.stderr.contains("foreign exception"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn empty_lists_for_missing_setters_are_not_sent() {
    // As on macOS 11: none of the newer setters exists. Empty lists (what simple_vm
    // always sets) configure nothing, so they must validate, not abort.
    in_child("empty_lists_for_missing_setters_are_not_sent", || {
        for selector in NEWER_LIST_SETTERS {
            sim::availability::hide_selector(selector);
        }
        sim::scenario(|| {
            let dir = TempDir::new("hostile-empty-lists");
            let mut config = minimal_config(&dir);
            config
                .set_directory_sharing_devices(vec![])
                .set_graphics_devices(Vec::<arcbox_vz::GraphicsDeviceConfiguration>::new())
                .set_keyboards(Vec::<arcbox_vz::KeyboardConfiguration>::new())
                .set_pointing_devices(Vec::<arcbox_vz::PointingDeviceConfiguration>::new())
                .set_console_devices(vec![])
                .set_usb_controllers(vec![]);
            config.validate().unwrap();
        });
    });
}

/// `validate` on a configuration with one device in the list whose setter is hidden:
/// `Unsupported { min_macos: setter_since }`. The device needs macOS `device_since`;
/// before that no such list can be made (asserted), and there is nothing more to check.
fn unsupported_list(
    selector: &str,
    setter_since: &str,
    device_since: &'static str,
    set: impl FnOnce(&mut arcbox_vz::VirtualMachineConfiguration) -> Result<(), VZError>,
) {
    sim::availability::hide_selector(selector);
    sim::scenario(|| {
        let dir = TempDir::new("hostile-full-lists");
        let mut config = minimal_config(&dir);
        if since(device_since, set(&mut config)).is_none() {
            return;
        }
        match config.validate() {
            Err(VZError::Unsupported { min_macos, .. }) => {
                assert_eq!(min_macos, setter_since, "{selector}");
            }
            other => panic!("{selector}: expected Unsupported, got {other:?}"),
        }
    });
}

#[test]
fn non_empty_list_for_a_missing_console_setter_is_unsupported() {
    in_child(
        "non_empty_list_for_a_missing_console_setter_is_unsupported",
        || {
            unsupported_list("setConsoleDevices:", "13.0", "13.0", |config| {
                config.set_console_devices(vec![VirtioConsoleDeviceConfiguration::new()?]);
                Ok(())
            });
        },
    );
}

#[test]
fn non_empty_lists_for_missing_macos_12_setters_are_unsupported() {
    in_child(
        "non_empty_lists_for_missing_macos_12_setters_are_unsupported",
        || {
            unsupported_list("setDirectorySharingDevices:", "12.0", "12.0", |config| {
                let dir = TempDir::new("hostile-share");
                let share = SingleDirectoryShare::new(SharedDirectory::new(dir.path(), true)?);
                let device = VirtioFileSystemDeviceConfiguration::new("share", share)?;
                config.set_directory_sharing_devices(vec![device]);
                Ok(())
            });
            // The setter is macOS 12, the only graphics device macOS 13.
            unsupported_list("setGraphicsDevices:", "12.0", "13.0", |config| {
                config.set_graphics_devices(vec![VirtioGraphicsDeviceConfiguration::new()?]);
                Ok(())
            });
            unsupported_list("setKeyboards:", "12.0", "12.0", |config| {
                config.set_keyboards(vec![USBKeyboardConfiguration::new()?]);
                Ok(())
            });
            unsupported_list("setPointingDevices:", "12.0", "12.0", |config| {
                config.set_pointing_devices(vec![
                    USBScreenCoordinatePointingDeviceConfiguration::new()?,
                ]);
                Ok(())
            });
        },
    );
}

#[test]
fn non_empty_list_for_a_missing_usb_setter_is_unsupported() {
    in_child(
        "non_empty_list_for_a_missing_usb_setter_is_unsupported",
        || {
            unsupported_list("setUsbControllers:", "15.0", "15.0", |config| {
                config.set_usb_controllers(vec![XHCIControllerConfiguration::new()?]);
                Ok(())
            });
        },
    );
}

// ---- item 18: a leading U+FEFF is refused, never dropped ----

/// Asserts `result` is an `InvalidArgument` for `argument` that names U+FEFF.
#[track_caller]
fn refuses_bom<T: std::fmt::Debug>(result: Result<T, VZError>, argument: &str) {
    let (got, reason) = common::invalid_argument(result.unwrap_err());
    assert_eq!(got, argument, "{reason}");
    assert!(reason.contains("U+FEFF"), "{reason}");
}

#[test]
fn leading_bom_is_refused_in_every_string_input() {
    in_child("leading_bom_is_refused_in_every_string_input", || {
        sim::scenario(|| {
            let dir = TempDir::new("hostile-bom");
            if since("12.0", SharedDirectory::new(dir.path(), true)).is_some() {
                let shared = || SharedDirectory::new(dir.path(), true).unwrap();
                // Share names: "\u{FEFF}a" and "a" used to become one share.
                refuses_bom(
                    MultipleDirectoryShare::new([("\u{FEFF}a", shared()), ("a", shared())]),
                    "directory share name",
                );
                refuses_bom(
                    MultipleDirectoryShare::new([("\u{FEFF}x", shared())]),
                    "directory share name",
                );
                // Tags: "\u{FEFF}x" used to become "x".
                refuses_bom(
                    VirtioFileSystemDeviceConfiguration::new(
                        "\u{FEFF}x",
                        SingleDirectoryShare::new(shared()),
                    ),
                    "directory sharing tag",
                );
            }
            let mut port = since("13.0", VirtioConsolePortConfiguration::new());
            if let Some(port) = &mut port {
                refuses_bom(
                    port.set_name("\u{FEFF}port").map(|_| ()),
                    "console port name",
                );
                assert_eq!(port.name(), None, "nothing was set");
            }
            let mut boot = LinuxBootLoader::new(dir.kernel()).unwrap();
            refuses_bom(
                boot.set_command_line("\u{FEFF}console=hvc0").map(|_| ()),
                "kernel command line",
            );
            let disk = dir.file("disk.img", &[0u8; 512]);
            let mut block = VirtioBlockDeviceConfiguration::new(
                DiskImageStorageDeviceAttachment::new(&disk, true).unwrap(),
            )
            .unwrap();
            let identifier = block.set_block_device_identifier("\u{FEFF}id").map(|_| ());
            if macos("12.3") {
                refuses_bom(identifier, "block device identifier");
            } else {
                assert_unsupported("12.3", identifier);
            }
            // A relative path that starts with U+FEFF.
            refuses_bom(LinuxBootLoader::new("\u{FEFF}vmlinux"), "kernel path");
            refuses_bom(
                DiskImageStorageDeviceAttachment::new("\u{FEFF}disk.img", true),
                "disk image path",
            );
            let shared = SharedDirectory::new("\u{FEFF}dir", true);
            if macos("12.0") {
                refuses_bom(shared, "shared directory path");
            } else {
                assert_unsupported("12.0", shared);
            }
            // U+FEFF elsewhere is an ordinary character, kept as is.
            if let Some(port) = &mut port {
                port.set_name("a\u{FEFF}b").unwrap();
                assert_eq!(port.name().as_deref(), Some("a\u{FEFF}b"));
            }
        });
    });
}

// ---- items 14, 15, 19, 21: files that are not files ----

/// Makes a FIFO at `path`.
fn mkfifo(path: &std::path::Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[test]
fn fifo_paths_are_refused_instead_of_hanging() {
    in_child("fifo_paths_are_refused_instead_of_hanging", || {
        sim::scenario(|| {
            let dir = TempDir::new("hostile-fifo");
            let fifo = dir.path().join("fifo");
            mkfifo(&fifo);
            let expect = |result: Result<(), VZError>, argument: &str| {
                let (got, reason) = common::invalid_argument(result.unwrap_err());
                assert_eq!(got, argument, "{reason}");
                assert!(reason.contains("FIFO"), "{reason}");
                assert!(reason.contains(fifo.to_str().unwrap()), "{reason}");
            };
            // EFI variable stores are macOS 13: refused as such before.
            let efi = |result: Result<(), VZError>| {
                if macos("13.0") {
                    expect(result, "EFI variable store path");
                } else {
                    assert_unsupported("13.0", result);
                }
            };
            efi(EFIVariableStore::create(&fifo, true).map(drop));
            efi(EFIVariableStore::open(&fifo).map(drop));
            expect(
                FileSerialPortAttachment::new(&fifo, true).map(drop),
                "serial log path",
            );
            expect(
                FileSerialPortAttachment::new(&fifo, false).map(drop),
                "serial log path",
            );
            expect(LinuxBootLoader::new(&fifo).map(drop), "kernel path");
            let mut boot = LinuxBootLoader::new(dir.kernel()).unwrap();
            expect(
                boot.set_initial_ramdisk(&fifo).map(drop),
                "initial ramdisk path",
            );
            expect(
                DiskImageStorageDeviceAttachment::new(&fifo, true).map(drop),
                "disk image path",
            );
        });
    });
}

#[test]
fn device_nodes_and_sockets_are_not_files() {
    in_child("device_nodes_and_sockets_are_not_files", || {
        sim::scenario(|| {
            let dir = TempDir::new("hostile-nodes");
            let socket_path = dir.path().join("socket");
            let _listener = std::os::unix::net::UnixListener::bind(&socket_path).unwrap();
            for (path, kind) in [
                (std::path::Path::new("/dev/null"), "a character device"),
                (socket_path.as_path(), "a socket"),
            ] {
                for (needs, result) in [
                    ("13.0", EFIVariableStore::create(path, true).map(drop)),
                    ("13.0", EFIVariableStore::open(path).map(drop)),
                    ("11.0", FileSerialPortAttachment::new(path, true).map(drop)),
                    ("11.0", LinuxBootLoader::new(path).map(drop)),
                    (
                        "11.0",
                        DiskImageStorageDeviceAttachment::new(path, true).map(drop),
                    ),
                ] {
                    if !macos(needs) {
                        assert_unsupported(needs, result);
                        continue;
                    }
                    let (_, reason) = common::invalid_argument(result.unwrap_err());
                    assert!(reason.contains(kind), "{path:?}: {reason}");
                    assert!(reason.contains(path.to_str().unwrap()), "{reason}");
                }
            }
        });
    });
}

#[test]
fn bad_efi_stores_are_refused_before_start() {
    in_child("bad_efi_stores_are_refused_before_start", || {
        sim::scenario(|| {
            let dir = TempDir::new("hostile-efi");
            if !macos("13.0") {
                assert_unsupported("13.0", EFIVariableStore::create("/dev/null", true));
                assert_unsupported("13.0", EFIVariableStore::open(dir.file("one", b"x")));
                return;
            }
            let argument = "EFI variable store path";
            let check = |result: Result<EFIVariableStore, VZError>, why: &str| {
                let (got, reason) = common::invalid_argument(result.unwrap_err());
                assert_eq!(got, argument, "{reason}");
                assert!(reason.contains(why), "{reason}");
            };
            check(
                EFIVariableStore::create("/dev/null", true),
                "a character device",
            );
            let one = dir.file("one", b"x");
            check(EFIVariableStore::open(&one), "is only 1 byte,");
            let small = dir.file("small", &[0xa5; 99]);
            check(EFIVariableStore::open(&small), "is only 99 bytes");
            check(EFIVariableStore::open(dir.file("empty", b"")), "is empty");
            // A trailing '/' names a directory, for create and open alike.
            let slash = format!("{}/", dir.path().join("vars").display());
            check(EFIVariableStore::create(&slash, true), "ends with '/'");
            let made = dir.path().join("made");
            drop(EFIVariableStore::create(&made, false).unwrap());
            check(
                EFIVariableStore::open(format!("{}/", made.display())),
                "ends with '/'",
            );
            // A missing directory is named.
            let missing = dir.path().join("no-such-dir").join("vars");
            check(
                EFIVariableStore::create(&missing, false),
                dir.path().join("no-such-dir").to_str().unwrap(),
            );
            // What create made opens, and boots.
            let store = EFIVariableStore::open(&made).unwrap();
            let mut config = minimal_config(&dir);
            config.set_boot_loader(EFIBootLoader::new(store).unwrap());
            config.validate().unwrap();
        });
    });
}

#[test]
fn files_that_are_not_kernels_are_refused() {
    in_child("files_that_are_not_kernels_are_refused", || {
        sim::scenario(|| {
            let dir = TempDir::new("hostile-kernel");
            let check = |path: &std::path::Path, why: &str| {
                let (got, reason) =
                    common::invalid_argument(LinuxBootLoader::new(path).unwrap_err());
                assert_eq!(got, "kernel path", "{reason}");
                assert!(reason.contains(why), "{path:?}: {reason}");
                assert!(reason.contains(path.to_str().unwrap()), "{reason}");
            };
            // /proc files report size 0 but have content: read, and refused by header.
            check(
                std::path::Path::new("/proc/self/status"),
                "is not a Linux kernel",
            );
            check(&dir.file("one", b"\x7f"), "is only 1 byte:");
            check(&dir.file("text", &[b'#'; 4096]), "is not a Linux kernel");
            // The three documented headers are accepted.
            let mut image = vec![0u8; 4096];
            image[56..60].copy_from_slice(b"ARM\x64");
            LinuxBootLoader::new(dir.file("Image", &image)).unwrap();
            let mut bz = vec![0u8; 4096];
            bz[0x202..0x206].copy_from_slice(b"HdrS");
            LinuxBootLoader::new(dir.file("bzImage", &bz)).unwrap();
            LinuxBootLoader::new(dir.kernel()).unwrap();
        });
    });
}

#[test]
fn io_errors_name_the_path_and_count_bytes_right() {
    in_child("io_errors_name_the_path_and_count_bytes_right", || {
        sim::scenario(|| {
            let dir = TempDir::new("hostile-io");
            let odd = dir.file("odd.img", &[0u8; 1]);
            let (_, reason) = common::invalid_argument(
                DiskImageStorageDeviceAttachment::new(&odd, true).unwrap_err(),
            );
            assert!(reason.contains("is 1 byte,"), "{reason}");
            assert!(reason.contains(odd.to_str().unwrap()), "{reason}");
            // A path under a regular file cannot be read (ENOTDIR): named.
            let under = odd.join("vmlinux");
            let (_, reason) = common::invalid_argument(LinuxBootLoader::new(&under).unwrap_err());
            assert!(reason.contains(under.to_str().unwrap()), "{reason}");
            let (_, reason) =
                common::invalid_argument(FileSerialPortAttachment::new(&under, true).unwrap_err());
            assert!(reason.contains(under.to_str().unwrap()), "{reason}");
        });
    });
}

// ---- items 16, 17, 19: limits ----

#[test]
fn console_port_limits_are_refused() {
    in_child("console_port_limits_are_refused", || {
        sim::scenario(|| {
            let max = VirtioConsoleDeviceConfiguration::MAX_PORT_COUNT;
            let Some(mut console) = since("13.0", VirtioConsoleDeviceConfiguration::new()) else {
                assert_unsupported("13.0", VirtioConsolePortConfiguration::new());
                return;
            };
            let (argument, reason) =
                common::invalid_argument(console.set_maximum_port_count(u32::MAX).unwrap_err());
            assert_eq!(argument, "console maximum port count", "{reason}");
            assert!(reason.contains(&max.to_string()), "{reason}");
            let port = VirtioConsolePortConfiguration::new().unwrap();
            let (argument, _) =
                common::invalid_argument(console.set_port(u32::MAX - 1, port).unwrap_err());
            assert_eq!(argument, "console port index");
            let port = VirtioConsolePortConfiguration::new().unwrap();
            assert!(console.set_port(max, port).is_err());
            // The limit itself is accepted, and builds.
            let port = VirtioConsolePortConfiguration::new().unwrap();
            console.set_port(max - 1, port).unwrap();
            console.set_maximum_port_count(max).unwrap();
            let dir = TempDir::new("hostile-console");
            let mut config = minimal_config(&dir);
            config.set_console_devices(vec![console]);
            config.validate().unwrap();
        });
    });
}

#[test]
fn nbd_timeouts_are_never_silently_changed() {
    in_child("nbd_timeouts_are_never_silently_changed", || {
        sim::scenario(|| {
            let url = "nbd://localhost:10809/disk";
            let new = |timeout| {
                NetworkBlockDeviceStorageDeviceAttachment::new(
                    url,
                    timeout,
                    false,
                    DiskSynchronizationMode::Full,
                )
            };
            let bad = [
                Duration::MAX,
                Duration::from_secs(u64::MAX),
                Duration::from_secs(24 * 60 * 60 + 1),
                Duration::ZERO,
            ];
            let good = [
                Duration::from_nanos(1),
                Duration::from_millis(1500),
                Duration::from_secs(24 * 60 * 60),
            ];
            if !macos("14.0") {
                // No NBD before macOS 14, whatever the timeout.
                for timeout in bad.into_iter().chain(good) {
                    assert_unsupported("14.0", new(timeout));
                }
                return;
            }
            for bad in bad {
                let (argument, _) = common::invalid_argument(new(bad).unwrap_err());
                assert_eq!(argument, "NBD timeout", "{bad:?}");
            }
            for good in good {
                assert_eq!(new(good).unwrap().timeout(), good);
            }
        });
    });
}

#[test]
fn huge_scanouts_are_refused() {
    in_child("huge_scanouts_are_refused", || {
        sim::scenario(|| {
            if !macos("13.0") {
                let huge = VirtioGraphicsScanoutConfiguration::new(isize::MAX, isize::MAX);
                assert_unsupported("13.0", huge);
                assert_unsupported(
                    "13.0",
                    VirtioGraphicsScanoutConfiguration::new(16384, 16384),
                );
                return;
            }
            let (argument, reason) = common::invalid_argument(
                VirtioGraphicsScanoutConfiguration::new(isize::MAX, isize::MAX).unwrap_err(),
            );
            assert_eq!(argument, "scanout size");
            assert!(reason.contains("at most 16384"), "{reason}");
            let mut scanout = VirtioGraphicsScanoutConfiguration::new(16384, 16384).unwrap();
            assert!(scanout.set_width_in_pixels(16385).is_err());
            assert!(scanout.set_height_in_pixels(isize::MAX).is_err());
            assert_eq!(scanout.width_in_pixels(), 16384, "unchanged");
        });
    });
}

// ---- item 8: futures that are Send ----

/// Compile-time check: the USB hot-plug futures can be spawned on a multithreaded
/// executor (they used to hold a `&USBMassStorageDevice` across the await).
#[test]
fn usb_hotplug_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    fn futures(controller: &USBController, device: &USBMassStorageDevice) {
        assert_send(&controller.attach(device));
        assert_send(&controller.detach(device));
    }
    let _ = futures;
}

#[test]
fn serial_descriptors_that_cannot_stream_are_refused() {
    in_child("serial_descriptors_that_cannot_stream_are_refused", || {
        sim::scenario(|| {
            let dir = TempDir::new("hostile-serial-fd");
            let directory = std::fs::File::open(dir.path()).unwrap();
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let (argument, reason) = common::invalid_argument(
                FileHandleSerialPortAttachment::new(Some(&directory), None::<&std::fs::File>)
                    .unwrap_err(),
            );
            assert_eq!(argument, "serial read file descriptor");
            assert!(reason.contains("a directory"), "{reason}");
            let (argument, reason) = common::invalid_argument(
                FileHandleSerialPortAttachment::new(None::<&std::fs::File>, Some(&listener))
                    .unwrap_err(),
            );
            assert_eq!(argument, "serial write file descriptor");
            assert!(reason.contains("without a peer"), "{reason}");
            // Streams are fine.
            let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
            let (reader, writer) = std::io::pipe().unwrap();
            drop(FileHandleSerialPortAttachment::new(Some(&reader), Some(&writer)).unwrap());
            drop(FileHandleSerialPortAttachment::new(Some(&a), Some(&a)).unwrap());
        });
    });
}

// ---- item 19: character devices that are not disks ----

#[test]
fn devices_that_are_not_disks_are_refused_as_block_devices() {
    in_child(
        "devices_that_are_not_disks_are_refused_as_block_devices",
        || {
            sim::scenario(|| {
                for path in ["/dev/null", "/dev/zero", "/dev/urandom"] {
                    let file = std::fs::File::open(path).unwrap();
                    let err = arcbox_vz::DiskBlockDeviceStorageDeviceAttachment::new(
                        &file,
                        true,
                        DiskSynchronizationMode::Full,
                    )
                    .unwrap_err();
                    if !macos("14.0") {
                        assert_unsupported("14.0", Err::<(), _>(err));
                        continue;
                    }
                    let (argument, reason) = common::invalid_argument(err);
                    assert_eq!(argument, "block device file descriptor", "{path}");
                    assert!(reason.contains("not a disk"), "{path}: {reason}");
                }
            });
        },
    );
}
