//! The NBD attachment delegate (`VZNetworkBlockDeviceStorageDeviceAttachmentDelegate`,
//! macOS 14), which turns an attachment's connection and errors into [`VmEvent`]s.
//!
//! # Why the VM's event stream
//!
//! An NBD attachment is moved into a storage device configuration and from there into
//! the virtual machine: the user no longer holds it when it connects, and already
//! listens to [`VirtualMachine::events`](crate::VirtualMachine::events) for what
//! happens to the machine. So the events come there, naming the storage device by its
//! index, like a network disconnection.
//!
//! # Lifetime
//!
//! The attachment's `delegate` property is weak. Just before a virtual machine is made
//! (Apple does not say whether the framework reads the delegate then or later), one
//! delegate per NBD attachment in its `storageDevices` is installed and owned by the
//! virtual machine's parts, which live as long as the `VZVirtualMachine` (and so as
//! long as the attachment is in use). The teardown sets the property back to nil
//! (when it is still ours) before anything is released, on the VM queue. Methods
//! follow the rules of [`ffi::delegate`](crate::ffi::delegate): a strong reference
//! to the state for the whole call, panics caught, no lock held while waking.

use std::ffi::c_void;
use std::sync::{Arc, OnceLock};

use super::events::{EventHub, VmEvent};
use crate::error::FrameworkError;
use crate::ffi::delegate::{Method, define, enter, instantiate};
use crate::ffi::foundation;
use crate::ffi::runtime::{ClassRef, Id, Object, Sel, class, objc_methods, sel};

objc_methods! {
    fn storage_devices_of(config: &Id) -> Option<Id> = "storageDevices";
    fn attachment_of(device: &Id) -> Option<Id> = "attachment";
    fn is_kind_of(object: &Id, class: ClassRef) -> bool = "isKindOfClass:";
    fn delegate_of(attachment: &Id) -> Option<Id> = "delegate";
    fn set_delegate_raw(attachment: &Id, delegate: Option<&Id>) = "setDelegate:";
}

/// What one delegate reports to: the virtual machine's hub, and the storage device.
#[derive(Debug)]
struct NbdState {
    hub: Arc<EventHub>,
    device_index: usize,
}

extern "C" fn was_connected(this: *mut Object, _cmd: Sel, _attachment: *mut Object) {
    // SAFETY: the runtime calls this method on a live instance of the class below.
    unsafe {
        enter(this, (), |state: Arc<NbdState>| {
            state.hub.emit(&VmEvent::NetworkBlockDeviceConnected {
                device_index: state.device_index,
            });
        });
    }
}

extern "C" fn did_encounter_error(
    this: *mut Object,
    _cmd: Sel,
    _attachment: *mut Object,
    error: *mut Object,
) {
    // SAFETY: a live receiver, as in was_connected; the framework passes an NSError
    // alive for the duration of the call, which we retain.
    unsafe {
        enter(this, (), |state: Arc<NbdState>| {
            let error = match Id::retain(error) {
                Some(error) => foundation::framework_error(&error),
                None => FrameworkError::new("arcbox-vz", 0, "the NBD client failed"),
            };
            state.hub.emit(&VmEvent::NetworkBlockDeviceError {
                device_index: state.device_index,
                error,
            });
        });
    }
}

fn delegate_class() -> ClassRef {
    static CLASS: OnceLock<ClassRef> = OnceLock::new();
    *CLASS.get_or_init(|| {
        let methods = [
            Method {
                sel: sel!("attachmentWasConnected:"),
                imp: was_connected as *const c_void,
                types: c"v24@0:8@16",
            },
            Method {
                sel: sel!("attachment:didEncounterError:"),
                imp: did_encounter_error as *const c_void,
                types: c"v32@0:8@16@24",
            },
        ];
        // SAFETY: each implementation above is an extern "C" function whose signature
        // is its type encoding, and reads its receiver's state as an NbdState.
        unsafe {
            define::<NbdState>(
                "NetworkBlockDeviceAttachmentDelegate",
                c"VZNetworkBlockDeviceStorageDeviceAttachmentDelegate",
                &methods,
            )
        }
    })
}

/// The delegates installed on the NBD attachments of one virtual machine.
#[derive(Debug, Default)]
pub(super) struct NbdDelegates {
    /// `(attachment, delegate)`: the delegate is owned here, the property is weak.
    installed: Vec<(Id, Id)>,
}

impl NbdDelegates {
    /// On the VM queue, before the virtual machine is made: a delegate feeding
    /// `hub` on every NBD attachment among `config`'s storage devices. None before
    /// macOS 14, which has no NBD attachments.
    pub(super) fn install(config: &Id, hub: &Arc<EventHub>) -> Self {
        let Ok(nbd) = class!("VZNetworkBlockDeviceStorageDeviceAttachment") else {
            return Self::default();
        };
        let devices = storage_devices_of(config)
            .as_ref()
            .map(foundation::array_items)
            .unwrap_or_default();
        let mut installed: Vec<(Id, Id)> = Vec::new();
        for (device_index, device) in devices.iter().enumerate() {
            let Some(attachment) = attachment_of(device) else {
                continue;
            };
            if !is_kind_of(&attachment, nbd) || installed.iter().any(|(a, _)| a.is(&attachment)) {
                continue;
            }
            let state = Arc::new(NbdState {
                hub: Arc::clone(hub),
                device_index,
            });
            let delegate = instantiate(delegate_class(), state);
            set_delegate_raw(&attachment, Some(&delegate));
            installed.push((attachment, delegate));
        }
        Self { installed }
    }

    /// On the VM queue, at teardown: detaches every delegate still installed (an
    /// attachment reused by a newer virtual machine keeps that one's delegate).
    pub(super) fn uninstall(&mut self) {
        for (attachment, delegate) in self.installed.drain(..) {
            if delegate_of(&attachment).is_some_and(|current| current.is(&delegate)) {
                set_delegate_raw(&attachment, None);
            }
        }
    }
}
