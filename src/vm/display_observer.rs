//! The display observer (`VZGraphicsDisplayObserver`, macOS 14), which turns the
//! start and end of a display reconfiguration into [`VmEvent`]s.
//!
//! One observer per display of the virtual machine (`graphicsDevices`, then each
//! device's `displays`) is registered with `addObserver:` when the virtual machine is
//! made, on the VM queue. Apple does not say whether a display retains its observers,
//! so the virtual machine's parts own them and the teardown calls `removeObserver:`,
//! on the VM queue, before anything is released. The header says the observer is
//! called on the VM queue. Methods follow the rules of
//! [`ffi::delegate`](crate::ffi::delegate): a strong reference to the state for the
//! whole call, panics caught, no lock held while waking.

use std::ffi::c_void;
use std::sync::{Arc, OnceLock};

use super::events::{EventHub, VmEvent};
use crate::ffi::delegate::{Method, define, enter, instantiate};
use crate::ffi::foundation;
use crate::ffi::runtime::{ClassRef, Id, Object, Sel, objc_methods, sel};

objc_methods! {
    fn graphics_devices_of(vm: &Id) -> Option<Id> = "graphicsDevices";
    fn displays_of(device: &Id) -> Option<Id> = "displays";
    fn add_observer_raw(display: &Id, observer: &Id) = "addObserver:";
    fn remove_observer_raw(display: &Id, observer: &Id) = "removeObserver:";
}

/// Which display one observer watches, and the hub it reports to.
#[derive(Debug)]
struct ObserverState {
    hub: Arc<EventHub>,
    device_index: usize,
    display_index: usize,
}

extern "C" fn did_begin(this: *mut Object, _cmd: Sel, _display: *mut Object) {
    // SAFETY: the runtime calls this method on a live instance of the class below.
    unsafe {
        enter(this, (), |state: Arc<ObserverState>| {
            state.hub.emit(&VmEvent::DisplayReconfigurationBegan {
                device_index: state.device_index,
                display_index: state.display_index,
            });
        });
    }
}

extern "C" fn did_end(this: *mut Object, _cmd: Sel, _display: *mut Object) {
    // SAFETY: as in did_begin.
    unsafe {
        enter(this, (), |state: Arc<ObserverState>| {
            state.hub.emit(&VmEvent::DisplayReconfigurationEnded {
                device_index: state.device_index,
                display_index: state.display_index,
            });
        });
    }
}

fn observer_class() -> ClassRef {
    static CLASS: OnceLock<ClassRef> = OnceLock::new();
    *CLASS.get_or_init(|| {
        let methods = [
            Method {
                sel: sel!("displayDidBeginReconfiguration:"),
                imp: did_begin as *const c_void,
                types: c"v24@0:8@16",
            },
            Method {
                sel: sel!("displayDidEndReconfiguration:"),
                imp: did_end as *const c_void,
                types: c"v24@0:8@16",
            },
        ];
        // SAFETY: each implementation above is an extern "C" function whose signature
        // is its type encoding, and reads its receiver's state as an ObserverState.
        unsafe {
            define::<ObserverState>(
                "GraphicsDisplayObserver",
                c"VZGraphicsDisplayObserver",
                &methods,
            )
        }
    })
}

/// The observers registered on the displays of one virtual machine.
#[derive(Debug, Default)]
pub(super) struct DisplayObservers {
    /// `(display, observer)`: both owned here.
    installed: Vec<(Id, Id)>,
}

impl DisplayObservers {
    /// On the VM queue: an observer feeding `hub` on every display of `vm`. None
    /// before macOS 14, which has no runtime graphics devices.
    pub(super) fn install(vm: &Id, hub: &Arc<EventHub>) -> Self {
        if !vm.responds_to(sel!("graphicsDevices")) {
            return Self::default();
        }
        let devices = graphics_devices_of(vm)
            .as_ref()
            .map(foundation::array_items)
            .unwrap_or_default();
        let mut installed = Vec::new();
        for (device_index, device) in devices.iter().enumerate() {
            let displays = displays_of(device)
                .as_ref()
                .map(foundation::array_items)
                .unwrap_or_default();
            for (display_index, display) in displays.into_iter().enumerate() {
                let state = Arc::new(ObserverState {
                    hub: Arc::clone(hub),
                    device_index,
                    display_index,
                });
                let observer = instantiate(observer_class(), state);
                add_observer_raw(&display, &observer);
                installed.push((display, observer));
            }
        }
        Self { installed }
    }

    /// On the VM queue, at teardown: unregisters every observer.
    pub(super) fn uninstall(&mut self) {
        for (display, observer) in self.installed.drain(..) {
            remove_observer_raw(&display, &observer);
        }
    }
}
