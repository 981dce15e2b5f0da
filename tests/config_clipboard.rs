//! Clipboard sharing (macOS 13): `SpiceAgentPortAttachment` on a port of a virtio
//! console device, next to a serial console, in the simulator.
#![cfg(arcbox_vz_sim)]

mod common;

use std::os::unix::net::UnixStream;

use arcbox_vz::{
    FileHandleSerialPortAttachment, FileSerialPortAttachment, SpiceAgentPortAttachment,
    VirtioConsoleDeviceConfiguration, VirtioConsoleDeviceSerialPortConfiguration,
    VirtioConsolePortConfiguration,
};
use common::{
    TempDir, assert_unsupported, block_on, invalid_argument, macos, minimal_config, sim, since,
    stop_vm,
};

#[test]
fn clipboard_sharing_is_unsupported_before_macos_13() {
    sim::scenario(|| {
        if macos("13.0") {
            return;
        }
        assert_unsupported("13.0", SpiceAgentPortAttachment::new());
        assert_unsupported("13.0", SpiceAgentPortAttachment::port_name());
    });
}

#[test]
fn the_attachment_shares_the_clipboard_by_default() {
    sim::scenario(|| {
        let Some(mut spice) = since("13.0", SpiceAgentPortAttachment::new()) else {
            return;
        };
        assert!(spice.shares_clipboard());
        spice.set_shares_clipboard(false);
        assert!(!spice.shares_clipboard());
        spice.set_shares_clipboard(true);
        assert!(spice.shares_clipboard());
        let name = SpiceAgentPortAttachment::port_name().unwrap();
        assert!(!name.is_empty());
    });
}

#[test]
fn the_port_takes_the_name_the_framework_reports() {
    sim::scenario(|| {
        let Some(mut port) = since("13.0", VirtioConsolePortConfiguration::new()) else {
            return;
        };
        let name = SpiceAgentPortAttachment::port_name().unwrap();
        port.set_name("something.else").unwrap();
        port.set_spice_agent_attachment(SpiceAgentPortAttachment::new().unwrap())
            .unwrap();
        assert_eq!(port.name().as_deref(), Some(name.as_str()));
        assert!(port.spice_agent_attachment().is_some());
        assert!(port.attachment().is_none());
        assert!(!port.is_console());
        // Setting the same name again is fine.
        port.set_name(&name).unwrap();

        // A serial attachment replaces it.
        let dir = TempDir::new("clipboard-replace");
        let log = dir.path().join("port.log");
        port.set_attachment(FileSerialPortAttachment::new(&log, false).unwrap());
        assert!(port.spice_agent_attachment().is_none());
        assert!(port.attachment().is_some());
        port.set_name("something.else").unwrap();
        port.set_spice_agent_attachment(SpiceAgentPortAttachment::new().unwrap())
            .unwrap();
        port.clear_attachment();
        assert!(port.spice_agent_attachment().is_none());
    });
}

#[test]
fn a_spice_agent_port_that_is_not_a_plain_named_port_is_refused() {
    sim::scenario(|| {
        let Some(mut console_port) = since("13.0", VirtioConsolePortConfiguration::new()) else {
            return;
        };
        let name = SpiceAgentPortAttachment::port_name().unwrap();
        // On the system console port.
        console_port.set_is_console(true);
        let (argument, reason) = invalid_argument(
            console_port
                .set_spice_agent_attachment(SpiceAgentPortAttachment::new().unwrap())
                .unwrap_err(),
        );
        assert_eq!(argument, "SPICE agent port");
        assert!(reason.contains("console"), "{reason}");
        assert!(console_port.spice_agent_attachment().is_none());

        // Renamed after the attachment.
        let mut port = VirtioConsolePortConfiguration::new().unwrap();
        port.set_spice_agent_attachment(SpiceAgentPortAttachment::new().unwrap())
            .unwrap();
        let (argument, reason) = invalid_argument(port.set_name("org.example").unwrap_err());
        assert_eq!(argument, "console port name");
        assert!(reason.contains(&name), "{reason}");
        assert_eq!(port.name().as_deref(), Some(name.as_str()), "unchanged");

        // Unnamed, or made a console, after the attachment: refused by the device.
        let mut device = VirtioConsoleDeviceConfiguration::new().unwrap();
        port.clear_name();
        let (argument, _) = invalid_argument(device.set_port(0, port).unwrap_err());
        assert_eq!(argument, "SPICE agent port");
        let mut port = VirtioConsolePortConfiguration::new().unwrap();
        port.set_spice_agent_attachment(SpiceAgentPortAttachment::new().unwrap())
            .unwrap()
            .set_is_console(true);
        let (argument, reason) = invalid_argument(device.set_port(0, port).unwrap_err());
        assert_eq!(argument, "SPICE agent port");
        assert!(reason.contains("console"), "{reason}");
        assert!(device.port(0).is_none(), "nothing was stored");
    });
}

#[test]
fn clipboard_next_to_a_serial_console_validates_builds_and_runs() {
    sim::scenario(|| {
        let dir = TempDir::new("clipboard");
        let Some(spice) = since("13.0", SpiceAgentPortAttachment::new()) else {
            return;
        };
        let name = SpiceAgentPortAttachment::port_name().unwrap();
        let (_host, guest) = UnixStream::pair().unwrap();
        let terminal = FileHandleSerialPortAttachment::new(Some(&guest), Some(&guest)).unwrap();
        let mut clipboard = VirtioConsolePortConfiguration::new().unwrap();
        clipboard.set_spice_agent_attachment(spice).unwrap();
        let mut console = VirtioConsoleDeviceConfiguration::new().unwrap();
        console.set_port(0, clipboard).unwrap();
        let mut config = minimal_config(&dir);
        config
            .set_serial_ports(vec![VirtioConsoleDeviceSerialPortConfiguration::new(
                terminal,
            )])
            .set_console_devices(vec![console]);
        config.validate().unwrap();
        let vm = config.build().unwrap();
        block_on(vm.start()).unwrap();
        let port = vm.console_devices().remove(0).port(0).unwrap();
        assert_eq!(port.name(), Some(name));
        assert!(port.has_attachment());
        stop_vm(&vm);
    });
}
