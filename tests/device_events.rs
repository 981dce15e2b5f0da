//! Device events of a running virtual machine in the simulator: the NBD attachment
//! delegate (`attachmentWasConnected:`, `attachment:didEncounterError:`, macOS 14)
//! reported in the VM's event stream, and the USB device's `uuid` and `usbController`
//! (macOS 15). Every test passes at every simulated release.
#![cfg(arcbox_vz_sim)]

mod common;

use arcbox_vz::*;
use common::{TempDir, assert_unsupported, block_on, sim, since, stop_vm, vm_config};

/// A configuration with a disk image at storage index 0 and, from macOS 14, an NBD
/// attachment at index 1; `None` before macOS 14 (after checking it is refused).
fn nbd_config(dir: &TempDir) -> Option<VirtualMachineConfiguration> {
    let nbd = since(
        "14.0",
        NetworkBlockDeviceStorageDeviceAttachment::with_url("nbd://localhost:10809/disk"),
    )?;
    let image = dir.file("disk.img", &vec![0u8; 1024 * 1024]);
    let disk = DiskImageStorageDeviceAttachment::new(&image, true).unwrap();
    let mut config = vm_config(dir);
    config.set_storage_devices(vec![
        VirtioBlockDeviceConfiguration::new(disk).unwrap().into(),
        VirtioBlockDeviceConfiguration::new(nbd).unwrap().into(),
    ]);
    Some(config)
}

/// The next event that is not a state change (`None` if none comes within 5 s).
fn next_device_event(events: &mut VmEvents) -> Option<VmEvent> {
    common::next_event_where(events, |e| !matches!(e, VmEvent::StateChanged(_)))
}

#[test]
fn nbd_connection_is_an_event_naming_the_storage_device() {
    sim::scenario(|| {
        let dir = TempDir::new("nbd-connected");
        let Some(config) = nbd_config(&dir) else {
            return;
        };
        let vm = config.build().unwrap();
        let mut events = vm.events();
        block_on(vm.start()).unwrap();
        assert_eq!(
            next_device_event(&mut events),
            Some(VmEvent::NetworkBlockDeviceConnected { device_index: 1 })
        );
        stop_vm(&vm);
    });
}

#[test]
fn nbd_failure_is_an_event_with_the_framework_error() {
    sim::scenario(|| {
        let dir = TempDir::new("nbd-error");
        let Some(config) = nbd_config(&dir) else {
            return;
        };
        let vm = config.build().unwrap();
        let mut events = vm.events();
        // VZErrorNetworkBlockDeviceDisconnected.
        sim::storage::fail_next_nbd(20002);
        block_on(vm.start()).unwrap();
        match next_device_event(&mut events) {
            Some(VmEvent::NetworkBlockDeviceError {
                device_index,
                error,
            }) => {
                assert_eq!(device_index, 1);
                assert!(error.is_vz(20002), "{error:?}");
            }
            other => panic!("expected an NBD error, got {other:?}"),
        }
        stop_vm(&vm);
    });
}

#[test]
fn nbd_events_without_a_listener_and_a_vm_dropped_before_the_connection() {
    sim::scenario(|| {
        let dir = TempDir::new("nbd-dropped");
        let Some(config) = nbd_config(&dir) else {
            return;
        };
        // Nobody listens: the event goes nowhere.
        let vm = config.build().unwrap();
        block_on(vm.start()).unwrap();
        stop_vm(&vm);
        // Started again, and dropped at once, before the client reports: the
        // teardown detaches the delegate; nothing is left (the scenario checks).
        block_on(vm.start()).unwrap();
        drop(vm);
        // The same configuration (so the same attachment) in a second machine.
        let vm = config.build().unwrap();
        let mut events = vm.events();
        block_on(vm.start()).unwrap();
        assert_eq!(
            next_device_event(&mut events),
            Some(VmEvent::NetworkBlockDeviceConnected { device_index: 1 })
        );
        stop_vm(&vm);
    });
}

#[test]
fn an_event_stream_dropped_before_the_nbd_event_leaves_nothing() {
    sim::scenario(|| {
        let dir = TempDir::new("nbd-stream-dropped");
        let Some(config) = nbd_config(&dir) else {
            return;
        };
        let vm = config.build().unwrap();
        let events = vm.events();
        block_on(vm.start()).unwrap();
        drop(events);
        stop_vm(&vm);
    });
}

#[test]
fn usb_devices_name_their_uuid_and_controller() {
    sim::scenario(|| {
        let dir = TempDir::new("usb-uuid");
        let image = dir.file("usb.img", &[0u8; 4096]);
        let mut config = vm_config(&dir);
        let Some(xhci) = since("15.0", XHCIControllerConfiguration::new()) else {
            // No hot-pluggable device to ask, nor a controller to list them.
            let disk = DiskImageStorageDeviceAttachment::new(&image, true).unwrap();
            if let Some(usb) = since("13.0", USBMassStorageDeviceConfiguration::new(disk)) {
                assert_unsupported("15.0", usb.uuid());
                assert_unsupported("15.0", USBMassStorageDevice::new(usb));
            }
            return;
        };
        config.set_usb_controllers(vec![xhci]);
        let vm = config.build().unwrap();
        block_on(vm.start()).unwrap();
        let controller = vm.usb_controllers().remove(0);
        assert!(controller.usb_devices().is_empty());

        let disk = DiskImageStorageDeviceAttachment::new(&image, true).unwrap();
        let mut usb = USBMassStorageDeviceConfiguration::new(disk).unwrap();
        let uuid = "E621E1F8-C36C-495A-93FC-0C247A3E6E5F";
        usb.set_uuid(uuid).unwrap();
        let device = USBMassStorageDevice::new(usb).unwrap();
        assert_eq!(device.uuid(), uuid);

        block_on(controller.attach(&device)).unwrap();
        let attached = controller.usb_devices();
        assert_eq!(attached.len(), 1);
        assert_eq!(attached[0].uuid(), uuid);
        let owner = attached[0]
            .usb_controller()
            .expect("attached to a controller");
        assert_eq!(owner.usb_device_count(), 1);

        block_on(controller.detach(&device)).unwrap();
        assert!(controller.usb_devices().is_empty());
        // The framework's reference to the controller is weak, and cleared on detach.
        assert!(attached[0].usb_controller().is_none());
        assert_eq!(attached[0].uuid(), uuid);
        drop((attached, owner, controller));
        stop_vm(&vm);
    });
}

#[test]
fn an_nbd_attachment_shared_by_two_vms_reports_to_the_newer_one() {
    sim::scenario(|| {
        let dir = TempDir::new("nbd-shared");
        let Some(config) = nbd_config(&dir) else {
            return;
        };
        let older = config.build().unwrap();
        let newer = config.build().unwrap();
        // The older machine's teardown leaves the newer one's delegate in place.
        drop(older);
        let mut events = newer.events();
        block_on(newer.start()).unwrap();
        assert_eq!(
            next_device_event(&mut events),
            Some(VmEvent::NetworkBlockDeviceConnected { device_index: 1 })
        );
        stop_vm(&newer);
    });
}
