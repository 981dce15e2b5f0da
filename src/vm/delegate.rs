//! The virtual machine delegate (`VZVirtualMachineDelegate`), which also observes the
//! VM's `state` with key-value observing, and feeds the VM's [`EventHub`].
//!
//! The framework's `delegate` property is weak, so the VM's parts own this object for
//! as long as it is installed. Every method follows the rules of
//! [`ffi::delegate`](crate::ffi::delegate): a strong reference to the hub for the
//! whole call, panics caught, no lock held while waking.

use std::ffi::c_void;
use std::sync::{Arc, OnceLock};

use super::events::{EventHub, StopReason, VmEvent};
use super::state::VirtualMachineState;
use crate::error::FrameworkError;
use crate::ffi::delegate::{Method, define, enter, instantiate, kvo_new_integer};
use crate::ffi::foundation;
use crate::ffi::runtime::{ClassRef, Id, Object, Sel, objc_methods, sel};

objc_methods! {
    fn network_devices_of(vm: &Id) -> Option<Id> = "networkDevices";
}

extern "C" fn guest_did_stop(this: *mut Object, _cmd: Sel, _vm: *mut Object) {
    // SAFETY: the runtime calls this method on a live instance of the class below.
    unsafe {
        enter(this, (), |hub: Arc<EventHub>| {
            // The event first: whoever `wait_until_stopped` wakes finds it there.
            hub.emit(&VmEvent::GuestStopped);
            hub.record_stop(StopReason::GuestStopped);
        });
    }
}

extern "C" fn did_stop_with_error(
    this: *mut Object,
    _cmd: Sel,
    _vm: *mut Object,
    error: *mut Object,
) {
    // SAFETY: a live receiver, as in guest_did_stop; the framework passes an NSError
    // alive for the duration of the call, which we retain.
    unsafe {
        enter(this, (), |hub: Arc<EventHub>| {
            let error = match Id::retain(error) {
                Some(error) => foundation::framework_error(&error),
                None => FrameworkError::new("arcbox-vz", 0, "stopped with an unknown error"),
            };
            hub.emit(&VmEvent::StoppedWithError(error.clone()));
            hub.record_stop(StopReason::Error(error));
        });
    }
}

extern "C" fn network_disconnected(
    this: *mut Object,
    _cmd: Sel,
    vm: *mut Object,
    device: *mut Object,
    error: *mut Object,
) {
    // SAFETY: a live receiver, as in guest_did_stop; the framework passes live
    // objects for the duration of the call, which we retain, on the VM queue (where
    // the delegate is called), so `networkDevices` may be read.
    unsafe {
        enter(this, (), |hub: Arc<EventHub>| {
            let (vm, device, error) = (Id::retain(vm), Id::retain(device), Id::retain(error));
            let device_index = vm
                .as_ref()
                .and_then(network_devices_of)
                .as_ref()
                .map(foundation::array_items)
                .and_then(|devices| {
                    let device = device.as_ref()?;
                    devices.iter().position(|d| d.is(device))
                })
                .unwrap_or(usize::MAX);
            let error = error.map_or_else(
                || FrameworkError::new("arcbox-vz", 0, "disconnected"),
                |e| foundation::framework_error(&e),
            );
            hub.emit(&VmEvent::NetworkAttachmentDisconnected {
                device_index,
                error,
            });
        });
    }
}

/// `observeValueForKeyPath:ofObject:change:context:` for the VM's `state`. The new
/// state comes from the change dictionary: Apple does not document on which queue
/// KVO notifications for `state` arrive, and the `state` getter traps off the VM
/// queue, so the observed object is never messaged here.
extern "C" fn observe_state(
    this: *mut Object,
    _cmd: Sel,
    _key_path: *mut Object,
    _object: *mut Object,
    change: *mut Object,
    _context: *mut c_void,
) {
    // SAFETY: a live receiver, as in guest_did_stop; KVO passes a change dictionary
    // alive for the duration of the call, which we retain.
    unsafe {
        enter(this, (), |hub: Arc<EventHub>| {
            let Some(raw) = Id::retain(change).as_ref().and_then(kvo_new_integer) else {
                return;
            };
            hub.state_changed(VirtualMachineState::from_raw(raw));
        });
    }
}

/// A new VM delegate (and `state` observer) feeding `hub`.
pub(super) fn vm_delegate(hub: Arc<EventHub>) -> Id {
    static CLASS: OnceLock<ClassRef> = OnceLock::new();
    let class = *CLASS.get_or_init(|| {
        let methods = [
            Method {
                sel: sel!("guestDidStopVirtualMachine:"),
                imp: guest_did_stop as *const c_void,
                types: c"v24@0:8@16",
            },
            Method {
                sel: sel!("virtualMachine:didStopWithError:"),
                imp: did_stop_with_error as *const c_void,
                types: c"v32@0:8@16@24",
            },
            Method {
                sel: sel!("virtualMachine:networkDevice:attachmentWasDisconnectedWithError:"),
                imp: network_disconnected as *const c_void,
                types: c"v40@0:8@16@24@32",
            },
            Method {
                sel: sel!("observeValueForKeyPath:ofObject:change:context:"),
                imp: observe_state as *const c_void,
                types: c"v48@0:8@16@24@32^v40",
            },
        ];
        // SAFETY: each implementation above is an extern "C" function whose signature
        // is its type encoding, and reads its receiver's state as an EventHub.
        unsafe {
            define::<EventHub>(
                "VirtualMachineDelegate",
                c"VZVirtualMachineDelegate",
                &methods,
            )
        }
    });
    instantiate(class, hub)
}
