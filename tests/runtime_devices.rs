//! Runtime device control of a running virtual machine in the simulator: serial
//! console, balloon, virtiofs share swap, network attachment swap and disconnection,
//! console ports and USB hot-plug. Every call must reach the fake on the VM queue, or
//! the fake aborts the process as Virtualization.framework traps.
#![cfg(arcbox_vz_sim)]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use arcbox_vz::*;
use common::{TempDir, assert_unsupported, block_on, macos, sim, since, stop_vm, vm_config};

const MIB: u64 = 1024 * 1024;

/// Reads from `stream` until `needle` shows up (or panics after a few seconds).
fn read_until(stream: &mut UnixStream, needle: &str) -> String {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let mut buf = [0u8; 4096];
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        if String::from_utf8_lossy(&seen).contains(needle) {
            return String::from_utf8_lossy(&seen).into_owned();
        }
    }
    panic!(
        "{needle:?} never came; got {:?}",
        String::from_utf8_lossy(&seen)
    );
}

#[test]
fn the_guest_banner_arrives_through_the_serial_port_and_poweroff_stops_it() {
    sim::scenario(|| {
        let dir = TempDir::new("serial");
        // Host <-> guest console: the framework reads guest input from `guest_in`
        // and writes guest output to `guest_out`.
        let (mut host, guest_side) = UnixStream::pair().unwrap();
        let guest_in = guest_side.try_clone().unwrap();
        let attachment =
            FileHandleSerialPortAttachment::new(Some(&guest_in), Some(&guest_side)).unwrap();
        drop((guest_in, guest_side)); // the attachment holds its own dups
        let mut config = vm_config(&dir);
        let mut boot = LinuxBootLoader::new(dir.kernel()).unwrap();
        boot.set_command_line("console=hvc0 quiet").unwrap();
        config.set_boot_loader(boot).set_serial_ports(vec![
            VirtioConsoleDeviceSerialPortConfiguration::new(attachment),
        ]);
        let vm = config.build().unwrap();
        block_on(vm.start()).unwrap();
        let banner = read_until(&mut host, "# ");
        assert!(
            banner.contains("Linux version 6.6.0-arcbox-sim"),
            "{banner}"
        );
        assert!(
            banner.contains("Kernel command line: console=hvc0 quiet"),
            "{banner}"
        );
        host.write_all(b"uname\r").unwrap();
        read_until(&mut host, "uname: not found");
        host.write_all(b"poweroff\r").unwrap();
        read_until(&mut host, "Power down");
        assert_eq!(block_on(vm.wait_until_stopped()), StopReason::GuestStopped);
    });
}

#[test]
fn serial_output_to_a_log_file() {
    sim::scenario(|| {
        let dir = TempDir::new("serial-file");
        let log = dir.path().join("console.log");
        let mut config = vm_config(&dir);
        config.set_serial_ports(vec![VirtioConsoleDeviceSerialPortConfiguration::new(
            FileSerialPortAttachment::new(&log, false).unwrap(),
        )]);
        let vm = config.build().unwrap();
        block_on(vm.start()).unwrap();
        stop_vm(&vm);
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("Linux version"), "{text}");
    });
}

#[test]
fn balloon_target_rounds_and_clamps() {
    sim::scenario(|| {
        let dir = TempDir::new("balloon");
        let mut config = vm_config(&dir);
        config.set_memory_balloon_devices(vec![
            VirtioTraditionalMemoryBalloonDeviceConfiguration::new(),
        ]);
        let vm = config.build().unwrap();
        block_on(vm.start()).unwrap();
        let balloon = vm.memory_balloon_devices().remove(0);
        assert_eq!(balloon.target_virtual_machine_memory_size(), 512 * MIB);
        assert_eq!(
            balloon.set_target_virtual_machine_memory_size(256 * MIB + 12345),
            256 * MIB
        );
        assert_eq!(balloon.target_virtual_machine_memory_size(), 256 * MIB);
        assert_eq!(
            balloon.set_target_virtual_machine_memory_size(1),
            arcbox_vz::min_memory_size()
        );
        assert_eq!(
            balloon.set_target_virtual_machine_memory_size(u64::MAX),
            512 * MIB
        );
        // The handle keeps the VM alive after the VM handle is gone; still on the queue.
        drop(vm);
        assert_eq!(balloon.target_virtual_machine_memory_size(), 512 * MIB);
    });
}

#[test]
fn virtiofs_share_swap_at_run_time() {
    sim::scenario(|| {
        let dir = TempDir::new("virtiofs");
        let first = dir.path().join("first");
        let second = dir.path().join("second");
        std::fs::create_dir_all(&first).unwrap();
        std::fs::create_dir_all(&second).unwrap();
        let mut config = vm_config(&dir);
        let Some(first) = since("12.0", SharedDirectory::new(&first, false)) else {
            // Nothing to share: the machine has no virtiofs device to find.
            let vm = config.build().unwrap();
            block_on(vm.start()).unwrap();
            assert!(vm.directory_sharing_devices().is_empty());
            stop_vm(&vm);
            return;
        };
        let share = SingleDirectoryShare::new(first);
        config.set_directory_sharing_devices(vec![
            VirtioFileSystemDeviceConfiguration::new("data", share).unwrap(),
        ]);
        let vm = config.build().unwrap();
        block_on(vm.start()).unwrap();
        let device = vm.directory_sharing_devices().remove(0);
        assert_eq!(device.tag(), "data");
        assert!(device.has_share());
        let swapped = SingleDirectoryShare::new(SharedDirectory::new(&second, true).unwrap());
        device.set_share(Some(swapped.into())).unwrap();
        assert!(device.has_share());
        device.set_share(None).unwrap();
        assert!(!device.has_share());
        stop_vm(&vm);
    });
}

#[test]
fn network_attachment_swap_and_disconnection_event() {
    sim::scenario(|| {
        let dir = TempDir::new("network");
        let mut config = vm_config(&dir);
        config.set_network_devices(vec![
            VirtioNetworkDeviceConfiguration::new(NATNetworkDeviceAttachment::new()),
            VirtioNetworkDeviceConfiguration::new(NATNetworkDeviceAttachment::new()),
        ]);
        let vm = config.build().unwrap();
        let mut events = vm.events();
        block_on(vm.start()).unwrap();
        let devices = vm.network_devices();
        if !macos("12.0") {
            // macOS 11 gives no runtime handle to network devices, and tells nobody of
            // a disconnection.
            assert!(devices.is_empty());
            assert!(sim::guest::disconnect_network(1));
            while let Some(event) = events.try_next() {
                assert!(matches!(event, VmEvent::StateChanged(_)), "{event:?}");
            }
            stop_vm(&vm);
            return;
        }
        assert_eq!(devices.len(), 2);
        assert!(devices.iter().all(NetworkDevice::has_attachment));

        assert!(sim::guest::disconnect_network(1));
        let event = block_on(async {
            loop {
                match events.next().await {
                    Some(VmEvent::StateChanged(_)) => continue,
                    other => break other,
                }
            }
        });
        match event {
            Some(VmEvent::NetworkAttachmentDisconnected {
                device_index,
                error,
            }) => {
                assert_eq!(device_index, 1);
                // VZErrorNetworkError is macOS 13; before it the framework said Internal.
                let code = if macos("13.0") { 7 } else { 1 };
                assert!(error.is_vz(code), "{error:?}");
            }
            other => panic!("expected a disconnection, got {other:?}"),
        }
        assert!(devices[0].has_attachment());
        assert!(!devices[1].has_attachment());

        // Reconnect with a file-handle attachment.
        let (ours, theirs) = std::os::unix::net::UnixDatagram::pair().unwrap();
        devices[1].set_attachment(Some(
            FileHandleNetworkDeviceAttachment::new(&theirs)
                .unwrap()
                .into(),
        ));
        drop((ours, theirs));
        assert!(devices[1].has_attachment());
        devices[0].set_attachment(None);
        assert!(!devices[0].has_attachment());
        stop_vm(&vm);
    });
}

#[test]
fn console_ports_at_run_time() {
    sim::scenario(|| {
        let dir = TempDir::new("console");
        let Some(mut port) = since("13.0", VirtioConsolePortConfiguration::new()) else {
            // No console devices to configure, and none at run time.
            let vm = vm_config(&dir).build().unwrap();
            block_on(vm.start()).unwrap();
            assert!(vm.console_devices().is_empty());
            stop_vm(&vm);
            return;
        };
        port.set_name("org.example.agent").unwrap();
        let mut console = VirtioConsoleDeviceConfiguration::new().unwrap();
        console.set_port(1, port).unwrap();
        let mut config = vm_config(&dir);
        config.set_console_devices(vec![console]);
        let vm = config.build().unwrap();
        block_on(vm.start()).unwrap();
        let console = vm.console_devices().remove(0);
        assert!(console.maximum_port_count() >= 2);
        assert!(console.port(0).is_none());
        assert!(console.port(u32::MAX).is_none());
        let port = console.port(1).unwrap();
        assert_eq!(port.name().as_deref(), Some("org.example.agent"));
        assert!(!port.has_attachment());
        let log = dir.path().join("port1.log");
        port.set_attachment(Some(
            FileSerialPortAttachment::new(&log, true).unwrap().into(),
        ));
        assert!(port.has_attachment());
        port.set_attachment(None);
        assert!(!port.has_attachment());
        stop_vm(&vm);
    });
}

#[test]
fn usb_mass_storage_hot_plug() {
    sim::scenario(|| {
        let dir = TempDir::new("usb");
        let image = dir.file("usb.img", &[0u8; 4096]);
        let mut config = vm_config(&dir);
        let Some(xhci) = since("15.0", XHCIControllerConfiguration::new()) else {
            // No controller to configure, and none at run time.
            let vm = config.build().unwrap();
            block_on(vm.start()).unwrap();
            assert!(vm.usb_controllers().is_empty());
            stop_vm(&vm);
            let disk = DiskImageStorageDeviceAttachment::new(&image, true).unwrap();
            if let Some(usb) = since("13.0", USBMassStorageDeviceConfiguration::new(disk)) {
                assert_unsupported("15.0", USBMassStorageDevice::new(usb));
            }
            return;
        };
        config.set_usb_controllers(vec![xhci]);
        let vm = config.build().unwrap();
        block_on(vm.start()).unwrap();
        let controller = vm.usb_controllers().remove(0);
        assert_eq!(controller.usb_device_count(), 0);
        let disk = DiskImageStorageDeviceAttachment::new(&image, true).unwrap();
        let device =
            USBMassStorageDevice::new(USBMassStorageDeviceConfiguration::new(disk).unwrap())
                .unwrap();
        block_on(controller.attach(&device)).unwrap();
        assert_eq!(controller.usb_device_count(), 1);
        match block_on(controller.attach(&device)) {
            Err(VZError::Framework(e)) => assert!(e.is_vz(30002), "{e:?}"),
            other => panic!("expected DeviceAlreadyAttached, got {other:?}"),
        }
        block_on(controller.detach(&device)).unwrap();
        assert_eq!(controller.usb_device_count(), 0);
        match block_on(controller.detach(&device)) {
            Err(VZError::Framework(e)) => assert!(e.is_vz(30004), "{e:?}"),
            other => panic!("expected DeviceNotFound, got {other:?}"),
        }
        stop_vm(&vm);
    });
}

#[test]
fn usb_devices_in_the_controller_configuration() {
    sim::scenario(|| {
        let dir = TempDir::new("usb-config");
        let image = dir.file("usb.img", &[0u8; 4096]);
        let disk = DiskImageStorageDeviceAttachment::new(&image, true).unwrap();
        let Some(mut controller) = since("15.0", XHCIControllerConfiguration::new()) else {
            return;
        };
        controller.set_usb_devices(vec![USBMassStorageDeviceConfiguration::new(disk).unwrap()]);
        assert_eq!(controller.usb_devices().len(), 1);
        let mut config = vm_config(&dir);
        config.set_usb_controllers(vec![controller]);
        config.validate().unwrap();
    });
}
