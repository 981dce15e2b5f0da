//! Network devices, MAC addresses and attachments, in the simulator.
#![cfg(arcbox_vz_sim)]

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::{UnixDatagram, UnixStream};

use arcbox_vz::{
    BridgedNetworkDeviceAttachment, BridgedNetworkInterface, FileHandleNetworkDeviceAttachment,
    MACAddress, NATNetworkDeviceAttachment, NetworkDeviceAttachment, VZError,
    VirtioNetworkDeviceConfiguration,
};
use common::{TempDir, invalid_argument, minimal_config, sim, since};

unsafe extern "C" {
    /// Simulator control (tests/sim/csrc/vz_network.m): whether the process holds the
    /// restricted com.apple.vm.networking entitlement.
    fn sim_network_set_vm_networking_entitlement(entitled: std::ffi::c_int);
}

/// Runs `body` as a process that holds com.apple.vm.networking, then drops it again.
fn with_vm_networking_entitlement<R>(body: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            // SAFETY: sets an atomic flag in the simulator.
            unsafe { sim_network_set_vm_networking_entitlement(0) };
        }
    }
    // SAFETY: as above.
    unsafe { sim_network_set_vm_networking_entitlement(1) };
    let _reset = Reset;
    body()
}

/// Descriptors of this process that refer to the same object as `fd` (the same
/// `/proc/self/fd` link target: `socket:[inode]`, `pipe:[inode]` or a path).
fn descriptors_of(fd: i32) -> usize {
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|link| *link == target)
        .count()
}

/// Open descriptors of this process that are not pipes. GNUstep keeps a pipe pair
/// per thread that has used an NSFileHandle and closes it when the thread exits,
/// which other test threads do at any time, so a count of every descriptor is racy.
fn open_non_pipe_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|link| !link.to_string_lossy().starts_with("pipe:"))
        .count()
}

/// The inode of the object behind a descriptor (follows /proc/self/fd/N).
fn inode(fd: i32) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/self/fd/{fd}"))
        .unwrap()
        .ino()
}

#[test]
fn mac_addresses_parse_print_and_classify() {
    sim::scenario(|| {
        let mac = MACAddress::parse("01:23:45:AB:cd:Ef").unwrap();
        assert_eq!(mac.to_string(), "01:23:45:ab:cd:ef");
        assert_eq!(mac.octets(), [0x01, 0x23, 0x45, 0xab, 0xcd, 0xef]);
        assert_eq!(format!("{mac:?}"), "MACAddress(01:23:45:ab:cd:ef)");
        // 0x01: multicast, universally administered.
        assert!(mac.is_multicast() && !mac.is_unicast() && !mac.is_broadcast());
        assert!(mac.is_universally_administered() && !mac.is_locally_administered());

        let dashed: MACAddress = "52-54-00-12-34-56".parse().unwrap();
        assert_eq!(dashed.to_string(), "52:54:00:12:34:56");
        assert!(dashed.is_unicast() && dashed.is_locally_administered());
        assert!(!dashed.is_multicast() && !dashed.is_universally_administered());

        let broadcast = MACAddress::parse("ff:ff:ff:ff:ff:ff").unwrap();
        assert!(broadcast.is_broadcast() && broadcast.is_multicast() && !broadcast.is_unicast());

        let from_bytes = MACAddress::from_octets([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
        assert_eq!(from_bytes, dashed);
        let mut set = HashSet::new();
        set.insert(dashed.clone());
        assert!(set.contains(&from_bytes));
        assert_ne!(from_bytes, mac);

        for _ in 0..64 {
            let random = MACAddress::random_locally_administered();
            assert!(
                random.is_locally_administered() && random.is_unicast(),
                "{random}"
            );
            assert!(!random.is_multicast() && !random.is_broadcast(), "{random}");
            assert_eq!(random.octets()[0] & 0b11, 0b10, "{random}");
            assert_eq!(MACAddress::parse(&random.to_string()).unwrap(), random);
        }
    });
}

#[test]
fn virtio_network_device_round_trips() {
    sim::scenario(|| {
        let mut nic = VirtioNetworkDeviceConfiguration::new(NATNetworkDeviceAttachment::new());
        assert!(matches!(nic.attachment(), NetworkDeviceAttachment::NAT(_)));
        // The framework's default address: random, locally administered, unicast.
        let default = nic.mac_address();
        assert!(
            default.is_locally_administered() && default.is_unicast(),
            "{default}"
        );
        assert_eq!(
            nic.mac_address(),
            default,
            "chosen once, when the device was made"
        );
        let other = VirtioNetworkDeviceConfiguration::new(NATNetworkDeviceAttachment::default());
        assert_ne!(
            other.mac_address(),
            default,
            "each device gets its own address"
        );

        let mac: MACAddress = "52:54:00:ab:cd:ef".parse().unwrap();
        nic.set_mac_address(&mac).unwrap();
        assert_eq!(nic.mac_address(), mac);
        assert_eq!(nic.mac_address().to_string(), "52:54:00:ab:cd:ef");

        let (ours, _peer) = UnixDatagram::pair().unwrap();
        nic.set_attachment(FileHandleNetworkDeviceAttachment::new(&ours).unwrap());
        assert!(matches!(
            nic.attachment(),
            NetworkDeviceAttachment::FileHandle(_)
        ));
        assert_eq!(
            nic.mac_address(),
            mac,
            "the address survives a new attachment"
        );
    });
}

#[test]
fn file_handle_attachment_round_trips_and_owns_a_duplicate() {
    sim::scenario(|| {
        let dir = TempDir::new("network-fd");
        let (ours, peer) = UnixDatagram::pair().unwrap();
        let before = open_non_pipe_fds();
        for round in 0..3 {
            let mut attachment = FileHandleNetworkDeviceAttachment::new(ours.as_fd()).unwrap();
            assert_eq!(open_non_pipe_fds(), before + 1, "one duplicate");
            assert_eq!(descriptors_of(ours.as_raw_fd()), 2, "of our socket");
            let dup = attachment.file_descriptor();
            assert_ne!(
                dup,
                ours.as_raw_fd(),
                "the attachment has its own descriptor"
            );
            assert_eq!(inode(dup), inode(ours.as_raw_fd()), "for the same socket");

            assert_eq!(attachment.maximum_transmission_unit(), 1500, "the default");
            // Before macOS 13 the MTU is 1500, and only 1500 can be set.
            if since("13.0", attachment.set_maximum_transmission_unit(9000)).is_some() {
                assert_eq!(attachment.maximum_transmission_unit(), 9000);
                attachment.set_maximum_transmission_unit(65535).unwrap();
                assert_eq!(attachment.maximum_transmission_unit(), 65535);
            } else {
                assert_eq!(attachment.maximum_transmission_unit(), 1500);
            }
            attachment.set_maximum_transmission_unit(1500).unwrap();
            assert_eq!(attachment.maximum_transmission_unit(), 1500);

            let mut config = minimal_config(&dir);
            config.set_network_devices(vec![VirtioNetworkDeviceConfiguration::new(attachment)]);
            config.validate().unwrap();
            drop(config);
            assert_eq!(
                descriptors_of(ours.as_raw_fd()),
                1,
                "round {round}: the duplicate is closed"
            );
            assert_eq!(
                open_non_pipe_fds(),
                before,
                "round {round}: back to where it started"
            );
        }
        // Our descriptor is still open and works.
        ours.send(b"frame").unwrap();
        let mut buf = [0u8; 16];
        let n = peer.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"frame");
    });
}

#[test]
fn bridged_interfaces_and_attachment() {
    sim::scenario(|| {
        let interfaces = BridgedNetworkInterface::network_interfaces();
        let names: Vec<(String, Option<String>)> = interfaces
            .iter()
            .map(|i| (i.identifier(), i.localized_display_name()))
            .collect();
        assert_eq!(
            names,
            [
                ("en0".to_owned(), Some("Ethernet".to_owned())),
                ("en1".to_owned(), Some("Wi-Fi".to_owned()))
            ]
        );
        let en1 = interfaces[1].clone();
        drop(interfaces);
        assert!(format!("{en1:?}").contains("en1"));
        let attachment = BridgedNetworkDeviceAttachment::new(&en1);
        assert_eq!(attachment.interface().identifier(), "en1");
        assert_eq!(
            attachment.interface().localized_display_name().as_deref(),
            Some("Wi-Fi")
        );
        let nic = VirtioNetworkDeviceConfiguration::new(attachment);
        match nic.attachment() {
            NetworkDeviceAttachment::Bridged(a) => assert_eq!(a.interface().identifier(), "en1"),
            other => panic!("expected a bridged attachment, got {other:?}"),
        }
    });
}

#[test]
fn configurations_with_network_devices_validate() {
    sim::scenario(|| {
        let dir = TempDir::new("network-validate");
        let (ours, _peer) = UnixDatagram::pair().unwrap();
        let mut file_handle = FileHandleNetworkDeviceAttachment::new(&ours).unwrap();
        if since("13.0", file_handle.set_maximum_transmission_unit(4000)).is_some() {
            assert_eq!(file_handle.maximum_transmission_unit(), 4000);
        }
        let mut config = minimal_config(&dir);
        config.set_network_devices(vec![
            VirtioNetworkDeviceConfiguration::new(NATNetworkDeviceAttachment::new()),
            VirtioNetworkDeviceConfiguration::new(file_handle),
        ]);
        assert_eq!(config.network_devices().len(), 2);
        config.validate().unwrap();

        // A device without an attachment, which the framework refuses ("A network
        // device must have an attachment."), cannot be built: the constructor takes the
        // attachment. Nor can an out-of-range MTU be set (see the bad-input table). So
        // the one documented failure left is bridging without com.apple.vm.networking.
        let en0 = &BridgedNetworkInterface::network_interfaces()[0];
        let mut config = minimal_config(&dir);
        config.set_network_devices(vec![VirtioNetworkDeviceConfiguration::new(
            BridgedNetworkDeviceAttachment::new(en0),
        )]);
        let error = match config.validate().unwrap_err() {
            VZError::InvalidConfiguration(e) => e,
            other => panic!("expected InvalidConfiguration, got {other:?}"),
        };
        assert!(error.is_vz(2), "{error:?}");
        assert_eq!(
            error.failure_reason.as_deref(),
            Some(
                "Using VZBridgedNetworkDeviceAttachment in a process that lacks the \
                 \u{201c}com.apple.vm.networking\u{201d} entitlement."
            )
        );
        assert!(config.build().is_err());

        with_vm_networking_entitlement(|| {
            config.validate().unwrap();
            drop(config.build().unwrap());
        });
    });
}

#[test]
fn bad_network_inputs_are_refused_before_the_framework_sees_them() {
    sim::scenario(|| {
        // MAC addresses.
        let macs: &[(&str, &str)] = &[
            ("", "is empty"),
            (
                "zz:00:00:00:00:00",
                "group 1 of \"zz:00:00:00:00:00\" (\"zz\") is not two hexadecimal digits",
            ),
            ("00:11:22:33:44", "has 5 groups, not 6"),
            ("00:11:22:33:44:55:66", "has 7 groups, not 6"),
            (
                "0:1:2:3:4:5",
                "group 1 of \"0:1:2:3:4:5\" (\"0\") is not two hexadecimal digits",
            ),
            (
                "00:11:22:33:44:5g",
                "group 6 of \"00:11:22:33:44:5g\" (\"5g\") is not two hexadecimal digits",
            ),
            (
                "00:11:22:33:44:+5",
                "(\"+5\") is not two hexadecimal digits",
            ),
            (
                "00:11:22:33:44:555",
                "(\"555\") is not two hexadecimal digits",
            ),
            ("00-11-22:33:44:55", "mixes ':' and '-' separators"),
            (
                " 00:11:22:33:44:55",
                "(\" 00\") is not two hexadecimal digits",
            ),
            ("001122334455", "has no ':' or '-' separators"),
            (
                "00:11:22:33:44:55\0",
                "(\"55\\0\") is not two hexadecimal digits",
            ),
        ];
        for (input, why) in macs {
            let (argument, reason) = invalid_argument(MACAddress::parse(input).unwrap_err());
            assert_eq!(argument, "MAC address", "{input:?}");
            assert!(reason.contains(why), "{input:?}: {reason}");
            assert!(
                reason.contains("01:23:45:ab:cd:ef"),
                "names the expected form: {reason}"
            );
            let (argument, _) = invalid_argument(input.parse::<MACAddress>().unwrap_err());
            assert_eq!(argument, "MAC address");
        }

        // A multicast or broadcast address cannot be a device's address.
        let mut nic = VirtioNetworkDeviceConfiguration::new(NATNetworkDeviceAttachment::new());
        let before = nic.mac_address();
        for multicast in [
            "01:00:5e:00:00:01",
            "33:33:00:00:00:01",
            "ff:ff:ff:ff:ff:ff",
        ] {
            let mac = MACAddress::parse(multicast).unwrap();
            let (argument, reason) = invalid_argument(nic.set_mac_address(&mac).unwrap_err());
            assert_eq!(argument, "MAC address");
            assert!(reason.contains("is a multicast address"), "{reason}");
            assert!(reason.contains(multicast), "{reason}");
        }
        assert_eq!(nic.mac_address(), before, "unchanged");

        // File descriptors.
        let (stream, _stream_peer) = UnixStream::pair().unwrap();
        let (mut pipe_reader, mut pipe_writer) = std::io::pipe().unwrap();
        let dev_null = std::fs::File::open("/dev/null").unwrap();
        let regular = tempfile_in(&TempDir::new("network-regular"));
        let unconnected = UnixDatagram::unbound().unwrap();
        let closed = {
            let socket = UnixDatagram::unbound().unwrap();
            socket.as_raw_fd()
        };
        // SAFETY: (test only) `closed` was just closed, which is the point; the check
        // only passes it to getsockopt, which answers EBADF.
        let closed_fd = unsafe { BorrowedFd::borrow_raw(closed) };
        let fds: Vec<(BorrowedFd<'_>, String)> = vec![
            (
                stream.as_fd(),
                "is a stream socket (SOCK_STREAM), not a datagram socket".into(),
            ),
            (
                pipe_reader.as_fd(),
                "is a pipe (FIFO), which is not a socket".into(),
            ),
            (
                pipe_writer.as_fd(),
                "is a pipe (FIFO), which is not a socket".into(),
            ),
            (
                dev_null.as_fd(),
                "is a character device, which is not a socket".into(),
            ),
            (
                regular.1.as_fd(),
                "is a regular file, which is not a socket".into(),
            ),
            (
                unconnected.as_fd(),
                "is a datagram socket that is not connected".into(),
            ),
            (closed_fd, format!("file descriptor {closed} is closed")),
        ];
        // Every descriptor but the closed one, to count what refers to each.
        let links = |fds: &[(BorrowedFd<'_>, String)]| -> Vec<usize> {
            fds[..fds.len() - 1]
                .iter()
                .map(|(fd, _)| descriptors_of(fd.as_raw_fd()))
                .collect()
        };
        let (before, links_before) = (open_non_pipe_fds(), links(&fds));
        for (fd, why) in &fds {
            let (argument, reason) =
                invalid_argument(FileHandleNetworkDeviceAttachment::new(fd).unwrap_err());
            assert_eq!(argument, "network file descriptor", "{why}");
            assert!(reason.contains(why), "expected {why:?} in {reason:?}");
            assert!(
                reason.contains("connected datagram socket (SOCK_DGRAM)"),
                "{reason}"
            );
            assert!(
                reason.contains(&format!("file descriptor {}", fd.as_raw_fd())),
                "{reason}"
            );
        }
        // Nothing was duplicated and kept.
        assert_eq!(links(&fds), links_before);
        assert_eq!(open_non_pipe_fds(), before);
        drop(fds);
        // The refused descriptors are untouched.
        pipe_writer.write_all(b"x").unwrap();
        let mut byte = [0u8; 1];
        pipe_reader.read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x");

        // MTU.
        let (ours, _peer) = UnixDatagram::pair().unwrap();
        let mut attachment = FileHandleNetworkDeviceAttachment::new(&ours).unwrap();
        for mtu in [0, 1499, 65536, u32::MAX] {
            let (argument, reason) =
                invalid_argument(attachment.set_maximum_transmission_unit(mtu).unwrap_err());
            assert_eq!(argument, "MTU");
            assert_eq!(
                reason,
                format!("{mtu} is outside the allowed range 1500..=65535 bytes")
            );
        }
        assert_eq!(attachment.maximum_transmission_unit(), 1500, "unchanged");
    });
}

/// A regular file in `dir`, open for reading.
fn tempfile_in(dir: &TempDir) -> (std::path::PathBuf, std::fs::File) {
    let path = dir.file("not-a-socket", b"data");
    let file = std::fs::File::open(&path).unwrap();
    (path, file)
}
