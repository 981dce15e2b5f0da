//! Every public future of the crate is `Send` (and every handle `Send + Sync`),
//! checked at compile time. Not simulator-only: clippy compiles this file for both
//! Apple targets too, where the Apple-silicon-only futures exist.
#![cfg(any(target_os = "macos", arcbox_vz_sim))]

#[cfg(arcbox_vz_sim)]
use arcbox_vz_sim as _;

use arcbox_vz::{
    StartOptions, USBController, USBMassStorageDevice, VirtioSocketDevice, VirtualMachine,
    VmEvents, VsockListener,
};

fn send<T: Send>(_: &T) {}
fn send_sync<T: Send + Sync>() {}

/// Never called: it only has to compile.
#[allow(dead_code)]
fn every_public_future_is_send(
    vm: &VirtualMachine,
    events: &mut VmEvents,
    device: &VirtioSocketDevice,
    listener: &VsockListener,
    usb: &USBController,
    disk: &USBMassStorageDevice,
    options: StartOptions,
) {
    send(&vm.start());
    send(&vm.start_with_options(options));
    send(&vm.stop());
    send(&vm.pause());
    send(&vm.resume());
    send(&vm.wait_until_stopped());
    #[cfg(target_arch = "aarch64")]
    {
        send(&vm.save_machine_state("/tmp/state"));
        send(&vm.restore_machine_state("/tmp/state"));
        send(&arcbox_vz::LinuxRosettaDirectoryShare::install());
    }
    #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
    {
        send(&arcbox_vz::MacOSRestoreImage::load("/tmp/restore.ipsw"));
        send(&arcbox_vz::MacOSRestoreImage::fetch_latest_supported());
    }
    send(&events.next());
    send(&device.connect(1024));
    send(&listener.accept());
    send(&usb.attach(disk));
    send(&usb.detach(disk));
}

#[test]
fn handles_are_send_and_sync() {
    send_sync::<VirtualMachine>();
    send_sync::<VirtioSocketDevice>();
    send_sync::<VsockListener>();
    send_sync::<USBController>();
    send_sync::<arcbox_vz::USBDevice>();
    send_sync::<arcbox_vz::GraphicsDevice>();
    send_sync::<arcbox_vz::GraphicsDisplay>();
    send_sync::<arcbox_vz::WaitUntilStopped<'static>>();
    send_sync::<arcbox_vz::Accept<'static>>();
    fn send_only<T: Send>() {}
    send_only::<VmEvents>();
    let _ = every_public_future_is_send;
}
