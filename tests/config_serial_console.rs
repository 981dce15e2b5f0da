//! Serial ports and multiport virtio consoles in the simulator.
#![cfg(arcbox_vz_sim)]

mod common;

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use arcbox_vz::{
    FileHandleSerialPortAttachment, FileSerialPortAttachment, SerialPortAttachment, VZError,
    VirtioConsoleDeviceConfiguration, VirtioConsoleDeviceSerialPortConfiguration,
    VirtioConsolePortConfiguration,
};
use common::{TempDir, invalid_argument, minimal_config, sim, since};

/// What a descriptor refers to, from /proc (`socket:[inode]`, a file path...).
fn target(fd: RawFd) -> PathBuf {
    std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap()
}

/// How many open descriptors of this process refer to one of `targets`.
///
/// Counting all descriptors would be racy: GNUstep opens a run-loop wake-up pipe per
/// thread (on the first `NSFileHandle`) and closes it when the thread ends, and test
/// threads end while the next scenario runs.
fn fds_referring_to(targets: &[PathBuf]) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|t| targets.contains(t))
        .count()
}

#[test]
fn file_handle_attachment_dups_both_descriptors() {
    sim::scenario(|| {
        let (host_in, guest_in) = UnixStream::pair().unwrap();
        let (guest_out, host_out) = UnixStream::pair().unwrap();
        let sockets = [target(guest_in.as_raw_fd()), target(guest_out.as_raw_fd())];
        assert_eq!(fds_referring_to(&sockets), 2);
        let attachment =
            FileHandleSerialPortAttachment::new(Some(&guest_in), Some(&guest_out)).unwrap();
        let read = attachment.read_fd().unwrap();
        let write = attachment.write_fd().unwrap();
        assert_ne!(
            read,
            guest_in.as_raw_fd(),
            "the attachment owns a duplicate"
        );
        assert_ne!(
            write,
            guest_out.as_raw_fd(),
            "the attachment owns a duplicate"
        );
        assert_eq!(target(read), sockets[0]);
        assert_eq!(target(write), sockets[1]);
        assert_eq!(fds_referring_to(&sockets), 4, "2 ends + 2 duplicates");

        // The caller may close its own descriptors; the attachment's stay open.
        drop(guest_out);
        assert_eq!(target(write), sockets[1]);

        let port = VirtioConsoleDeviceSerialPortConfiguration::new(attachment);
        assert!(
            matches!(port.attachment(), SerialPortAttachment::FileHandle(a) if a.write_fd() == Some(write))
        );
        assert_eq!(fds_referring_to(&sockets), 3);
        drop(port);
        assert_eq!(
            fds_referring_to(&sockets),
            1,
            "the attachment closed its duplicates"
        );
        drop((host_in, guest_in, host_out));
    });
}

#[test]
fn file_handle_attachment_directions_are_optional() {
    sim::scenario(|| {
        let (a, b) = UnixStream::pair().unwrap();
        let sockets = [target(a.as_raw_fd())];
        let out_only = FileHandleSerialPortAttachment::new(None::<OwnedFd>, Some(&a)).unwrap();
        assert_eq!(out_only.read_fd(), None);
        assert!(out_only.write_fd().is_some());
        let in_only =
            FileHandleSerialPortAttachment::new(Some(a.try_clone().unwrap()), None::<OwnedFd>)
                .unwrap();
        assert!(in_only.read_fd().is_some());
        assert_eq!(in_only.write_fd(), None);
        let neither =
            FileHandleSerialPortAttachment::new(None::<OwnedFd>, None::<OwnedFd>).unwrap();
        assert_eq!((neither.read_fd(), neither.write_fd()), (None, None));
        assert_eq!(
            fds_referring_to(&sockets),
            3,
            "the end, and one duplicate per attachment"
        );
        drop((out_only, in_only, neither));
        assert_eq!(fds_referring_to(&sockets), 1);
        drop((a, b));
    });
}

#[test]
fn file_attachment_creates_appends_or_truncates() {
    sim::scenario(|| {
        let dir = TempDir::new("serial-file");
        let log = dir.path().join("console.log");
        let attachment = FileSerialPortAttachment::new(&log, false).unwrap();
        assert!(log.exists(), "the framework creates the file");
        assert_eq!(attachment.path(), log);
        assert!(!attachment.append());
        drop(attachment);

        std::fs::write(&log, b"old output").unwrap();
        let appending = FileSerialPortAttachment::new(&log, true).unwrap();
        assert!(appending.append());
        assert_eq!(
            std::fs::read(&log).unwrap(),
            b"old output",
            "append keeps the file"
        );
        drop(appending);
        let truncating = FileSerialPortAttachment::new(&log, false).unwrap();
        assert_eq!(std::fs::read(&log).unwrap(), b"", "no append truncates it");

        // A relative path comes back absolute.
        let cwd = std::env::current_dir().unwrap();
        std::env::set_current_dir(dir.path()).unwrap();
        let relative = FileSerialPortAttachment::new("relative.log", true);
        std::env::set_current_dir(cwd).unwrap();
        assert_eq!(relative.unwrap().path(), dir.path().join("relative.log"));

        let port = VirtioConsoleDeviceSerialPortConfiguration::new(truncating);
        match port.attachment() {
            SerialPortAttachment::File(f) => assert_eq!(f.path(), log),
            other => panic!("unexpected attachment {other:?}"),
        }
    });
}

#[test]
fn a_file_the_framework_cannot_open_is_a_framework_error() {
    sim::scenario(|| {
        // The directory exists, so the Rust checks pass, but nobody (not even root)
        // can create a file in procfs: the framework's open fails.
        let err =
            FileSerialPortAttachment::new("/proc/self/arcbox-vz-serial.log", false).unwrap_err();
        match err {
            VZError::Framework(e) => {
                assert_eq!(e.domain, "NSPOSIXErrorDomain", "{e}");
                assert!(e.description.contains("/proc/self"), "{e}");
            }
            other => panic!("expected a framework error, got {other:?}"),
        }
    });
}

#[test]
fn console_ports_round_trip() {
    sim::scenario(|| {
        let dir = TempDir::new("console");
        let Some(mut port) = since("13.0", VirtioConsolePortConfiguration::new()) else {
            drop(since("13.0", VirtioConsoleDeviceConfiguration::new()));
            return;
        };
        assert_eq!(port.name(), None);
        assert!(!port.is_console());
        assert!(port.attachment().is_none());
        port.set_name("org.example.agent")
            .unwrap()
            .set_is_console(true);
        assert_eq!(port.name().as_deref(), Some("org.example.agent"));
        assert!(port.is_console());
        port.set_attachment(
            FileSerialPortAttachment::new(dir.path().join("p0.log"), false).unwrap(),
        );
        assert!(matches!(
            port.attachment(),
            Some(SerialPortAttachment::File(_))
        ));
        port.clear_attachment().clear_name().set_is_console(false);
        assert_eq!(
            (port.name(), port.is_console(), port.attachment().is_none()),
            (None, false, true)
        );
        port.set_name("").unwrap();
        assert_eq!(port.name().as_deref(), Some(""));

        let mut console = VirtioConsoleDeviceConfiguration::new().unwrap();
        assert_eq!(console.maximum_port_count(), 0, "no ports yet");
        assert_eq!(console.ports().count(), 0);
        // Without an explicit maximum, the framework uses the highest index + 1.
        console.set_port(2, port).unwrap();
        assert_eq!(console.maximum_port_count(), 3);
        let mut first = VirtioConsolePortConfiguration::new().unwrap();
        first.set_name("first").unwrap();
        console.set_port(0, first).unwrap();
        let indices: Vec<u32> = console.ports().map(|(i, _)| i).collect();
        assert_eq!(indices, [0, 2]);
        assert_eq!(console.port(0).unwrap().name().as_deref(), Some("first"));
        assert!(console.port(1).is_none());
        // A second port at an index replaces the first; the order stays by index.
        let mut second = VirtioConsolePortConfiguration::new().unwrap();
        second.set_name("second").unwrap();
        console.set_port(0, second).unwrap();
        let names: Vec<(u32, Option<String>)> =
            console.ports().map(|(i, p)| (i, p.name())).collect();
        assert_eq!(
            names,
            [(0, Some("second".into())), (2, Some(String::new()))]
        );
        // The highest index set (2) bounds the maximum from below.
        let (argument, reason) = invalid_argument(console.set_maximum_port_count(2).unwrap_err());
        assert_eq!(argument, "console maximum port count");
        assert!(reason.contains("index 2"), "{reason}");
        // An explicit maximum is kept, and limits later ports.
        console.set_maximum_port_count(8).unwrap();
        assert_eq!(console.maximum_port_count(), 8);
        console
            .set_port(7, VirtioConsolePortConfiguration::new().unwrap())
            .unwrap();
        let removed = console.remove_port(7).unwrap();
        assert!(removed.name().is_none());
        assert!(console.port(7).is_none());
        assert!(console.remove_port(7).is_none());
        assert_eq!(console.maximum_port_count(), 8);
        // Removing the highest port lowers the bound on the maximum; the highest index
        // there can be works like any other.
        let last = VirtioConsoleDeviceConfiguration::MAX_PORT_COUNT - 1;
        let mut wide = VirtioConsoleDeviceConfiguration::new().unwrap();
        wide.set_port(last, VirtioConsolePortConfiguration::new().unwrap())
            .unwrap();
        wide.set_port(1, VirtioConsolePortConfiguration::new().unwrap())
            .unwrap();
        let indices: Vec<u32> = wide.ports().map(|(i, _)| i).collect();
        assert_eq!(indices, [1, last]);
        assert!(wide.set_maximum_port_count(last).is_err());
        assert!(wide.remove_port(last).is_some());
        assert!(wide.port(last).is_none() && wide.remove_port(last + 1).is_none());
        wide.set_maximum_port_count(2).unwrap();
        let indices: Vec<u32> = wide.ports().map(|(i, _)| i).collect();
        assert_eq!(indices, [1]);

        let mut config = minimal_config(&dir);
        config.set_console_devices(vec![console]);
        config.validate().unwrap();
        drop(config.build().unwrap());
    });
}

#[test]
fn serial_ports_validate_in_a_configuration() {
    sim::scenario(|| {
        let dir = TempDir::new("serial-config");
        let (a, _b) = UnixStream::pair().unwrap();
        let ports = vec![
            VirtioConsoleDeviceSerialPortConfiguration::new(
                FileHandleSerialPortAttachment::new(Some(&a), Some(&a)).unwrap(),
            ),
            VirtioConsoleDeviceSerialPortConfiguration::new(
                FileSerialPortAttachment::new(dir.path().join("hvc1.log"), true).unwrap(),
            ),
        ];
        let mut config = minimal_config(&dir);
        config.set_serial_ports(ports);
        assert_eq!(config.serial_ports().len(), 2);
        config.validate().unwrap();
        drop(config.build().unwrap());
    });
}

#[test]
fn bad_inputs_are_refused_before_the_framework_sees_them() {
    sim::scenario(|| {
        let dir = TempDir::new("bad-serial");
        let cases: Vec<(PathBuf, &str)> = vec![
            (dir.path().join("missing-dir/console.log"), "does not exist"),
            (dir.path().to_path_buf(), "is a directory"),
            (PathBuf::from("/tmp/a\0b.log"), "NUL"),
            (PathBuf::from(OsStr::from_bytes(b"/tmp/\xff.log")), "UTF-8"),
            (PathBuf::new(), "empty"),
        ];
        for (path, why) in cases {
            let (argument, reason) =
                invalid_argument(FileSerialPortAttachment::new(&path, false).unwrap_err());
            assert_eq!(argument, "serial log path", "{path:?}");
            assert!(reason.contains(why), "{path:?}: {reason}");
        }
        assert!(
            !dir.path().join("missing-dir").exists(),
            "nothing was created"
        );

        // Console port names.
        let Some(mut port) = since("13.0", VirtioConsolePortConfiguration::new()) else {
            return;
        };
        let (argument, reason) = invalid_argument(port.set_name("bad\0name").unwrap_err());
        assert_eq!(argument, "console port name");
        assert!(reason.contains("NUL"), "{reason}");
        assert_eq!(port.name(), None, "a refused name is not set");

        // Console port indices.
        let mut console = VirtioConsoleDeviceConfiguration::new().unwrap();
        let (argument, _) = invalid_argument(
            console
                .set_port(u32::MAX, VirtioConsolePortConfiguration::new().unwrap())
                .unwrap_err(),
        );
        assert_eq!(argument, "console port index");
        console.set_maximum_port_count(2).unwrap();
        for index in [2, 3, 1000] {
            let (argument, reason) = invalid_argument(
                console
                    .set_port(index, VirtioConsolePortConfiguration::new().unwrap())
                    .unwrap_err(),
            );
            assert_eq!(argument, "console port index");
            assert!(reason.contains("out of range"), "{reason}");
        }
        console
            .set_port(1, VirtioConsolePortConfiguration::new().unwrap())
            .unwrap();
        for count in [0, 1] {
            let (argument, reason) =
                invalid_argument(console.set_maximum_port_count(count).unwrap_err());
            assert_eq!(argument, "console maximum port count");
            assert!(reason.contains("index 1"), "{reason}");
        }
        assert_eq!(
            console.maximum_port_count(),
            2,
            "a refused count is not set"
        );
        assert!(
            console
                .ports()
                .all(|(i, _)| i < console.maximum_port_count())
        );

        // What was refused never reached the framework: the configuration is valid.
        let mut config = minimal_config(&dir);
        config.set_console_devices(vec![console]);
        config.validate().unwrap();
    });
}

#[test]
fn open_files_do_not_leak() {
    sim::scenario(|| {
        let dir = TempDir::new("serial-leak");
        let mut targets = Vec::new();
        let mut ends = Vec::new();
        for i in 0..50 {
            let log = dir.path().join(format!("{i}.log"));
            let (a, b) = UnixStream::pair().unwrap();
            targets.push(target(a.as_raw_fd()));
            targets.push(target(b.as_raw_fd()));
            let handles = FileHandleSerialPortAttachment::new(Some(&a), Some(&b)).unwrap();
            let mut config = minimal_config(&dir);
            let mut serial_ports = Vec::new();
            if let Some(mut port) = since("13.0", VirtioConsolePortConfiguration::new()) {
                port.set_attachment(handles);
                let mut console = VirtioConsoleDeviceConfiguration::new().unwrap();
                console.set_port(0, port).unwrap();
                config.set_console_devices(vec![console]);
            } else {
                // No console devices before macOS 13: a second serial port holds them.
                serial_ports.push(VirtioConsoleDeviceSerialPortConfiguration::new(handles));
            }
            let file = FileSerialPortAttachment::new(&log, true).unwrap();
            targets.push(log);
            serial_ports.insert(0, VirtioConsoleDeviceSerialPortConfiguration::new(file));
            config.set_serial_ports(serial_ports);
            config.validate().unwrap();
            ends.push((a, b));
        }
        assert_eq!(
            fds_referring_to(&targets),
            100,
            "only our own socket ends are open"
        );
        drop(ends);
        assert_eq!(fds_referring_to(&targets), 0);
    });
}
