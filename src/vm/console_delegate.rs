//! The virtio console device delegate (`VZVirtioConsoleDeviceDelegate`, macOS 13):
//! the guest opening and closing ports, as [`VmEvent`]s on the VM's [`EventHub`].
//!
//! One delegate per console device, installed on the VM queue when the virtual machine
//! is made and removed by its teardown. The framework's `delegate` property is weak,
//! so the VM's parts own these objects for as long as they are installed. Every method
//! follows the rules of [`ffi::delegate`](crate::ffi::delegate): a strong reference to
//! its state for the whole call, panics caught, no lock held while waking.

use std::ffi::c_void;
use std::sync::{Arc, OnceLock};

use super::events::{EventHub, VmEvent};
use crate::ffi::delegate::{Method, define, enter, instantiate};
use crate::ffi::foundation;
use crate::ffi::runtime::{ClassRef, Id, Object, Sel, autoreleasepool, in_pool, objc_methods, sel};

objc_methods! {
    fn console_devices_raw(vm: &Id) -> Option<Id> = "consoleDevices";
    fn set_delegate_raw(device: &Id, delegate: Option<&Id>) = "setDelegate:";
    fn ports_raw(device: &Id) -> Option<Id> = "ports";
    fn maximum_port_count_raw(ports: &Id) -> u32 = "maximumPortCount";
    fn port_at_raw(ports: &Id, index: usize) -> Option<Id> = "objectAtIndexedSubscript:";
    fn port_name_raw(port: &Id) -> Option<Id> = "name";
}

/// What one console device's delegate feeds.
#[derive(Debug)]
struct ConsoleState {
    hub: Arc<EventHub>,
    /// The device's index in `VZVirtualMachine.consoleDevices`.
    device_index: usize,
}

/// The index of `port` in `device.ports` (on the VM queue), or `u32::MAX` when the
/// framework's array does not hold it.
fn port_index(device: &Id, port: &Id) -> u32 {
    let Some(ports) = ports_raw(device) else {
        return u32::MAX;
    };
    (0..maximum_port_count_raw(&ports))
        .find(|&i| port_at_raw(&ports, i as usize).is_some_and(|p| p.is(port)))
        .unwrap_or(u32::MAX)
}

/// Both delegate methods: `consoleDevice:didOpenPort:` and `consoleDevice:didClosePort:`.
///
/// # Safety
///
/// As for [`enter`]: `this` is a live instance of the class below; `device` and `port`
/// are nil or live objects for the duration of the call.
unsafe fn port_event(this: *mut Object, device: *mut Object, port: *mut Object, opened: bool) {
    // SAFETY: guaranteed by the caller; the framework calls its delegate on the VM
    // queue, so the device's ports may be read.
    unsafe {
        enter(this, (), |state: Arc<ConsoleState>| {
            let (device, port) = (Id::retain(device), Id::retain(port));
            let (port_index, name) = match (&device, &port) {
                (Some(device), Some(port)) => (
                    port_index(device, port),
                    port_name_raw(port).as_ref().map(foundation::string_from),
                ),
                (None, Some(port)) => (
                    u32::MAX,
                    port_name_raw(port).as_ref().map(foundation::string_from),
                ),
                _ => (u32::MAX, None),
            };
            let device_index = state.device_index;
            let event = if opened {
                VmEvent::ConsolePortOpened {
                    device_index,
                    port_index,
                    name,
                }
            } else {
                VmEvent::ConsolePortClosed {
                    device_index,
                    port_index,
                    name,
                }
            };
            state.hub.emit(&event);
        });
    }
}

extern "C" fn did_open_port(this: *mut Object, _cmd: Sel, device: *mut Object, port: *mut Object) {
    // SAFETY: the runtime calls this method on a live instance of the class below,
    // with the framework's live device and port.
    unsafe { port_event(this, device, port, true) }
}

extern "C" fn did_close_port(this: *mut Object, _cmd: Sel, device: *mut Object, port: *mut Object) {
    // SAFETY: as in did_open_port.
    unsafe { port_event(this, device, port, false) }
}

fn console_delegate_class() -> ClassRef {
    static CLASS: OnceLock<ClassRef> = OnceLock::new();
    *CLASS.get_or_init(|| {
        let methods = [
            Method {
                sel: sel!("consoleDevice:didOpenPort:"),
                imp: did_open_port as *const c_void,
                types: c"v32@0:8@16@24",
            },
            Method {
                sel: sel!("consoleDevice:didClosePort:"),
                imp: did_close_port as *const c_void,
                types: c"v32@0:8@16@24",
            },
        ];
        // SAFETY: each implementation above is an extern "C" function whose signature
        // is its type encoding, and reads its receiver's state as a ConsoleState.
        unsafe {
            define::<ConsoleState>(
                "VirtioConsoleDeviceDelegate",
                c"VZVirtioConsoleDeviceDelegate",
                &methods,
            )
        }
    })
}

/// The console devices of `vm` with the delegates installed on them (on the VM
/// queue). Empty before macOS 13, which has no console devices.
pub(super) fn install(vm: &Id, hub: &Arc<EventHub>) -> Vec<(Id, Id)> {
    if !vm.responds_to(sel!("consoleDevices")) {
        return Vec::new();
    }
    autoreleasepool(|| {
        let Some(devices) = console_devices_raw(vm) else {
            return Vec::new();
        };
        foundation::array_items(&devices)
            .into_iter()
            .enumerate()
            .filter(|(_, device)| device.responds_to(sel!("setDelegate:")))
            .map(|(device_index, device)| {
                let state = Arc::new(ConsoleState {
                    hub: Arc::clone(hub),
                    device_index,
                });
                let delegate = instantiate(console_delegate_class(), state);
                set_delegate_raw(&device, Some(&delegate));
                (device, delegate)
            })
            .collect()
    })
}

/// Removes the delegates [`install`] set (on the VM queue).
pub(super) fn uninstall(installed: &[(Id, Id)]) {
    in_pool!({
        for (device, _) in installed {
            set_delegate_raw(device, None);
        }
    });
}
