//! The vsock listener delegate (`VZVirtioSocketListenerDelegate`), which hands
//! accepted connections to a [`VsockListener`](super::VsockListener).
//!
//! The framework's `delegate` property is weak, so the listener owns this object for
//! as long as it is installed. The method follows the rules of
//! [`ffi::delegate`](crate::ffi::delegate): a strong reference to the shared state
//! for the whole call, panics caught (the connection is then refused), no lock held
//! while waking.

use std::ffi::{CStr, c_void};
use std::sync::{Arc, OnceLock};

use super::listener::ListenerShared;
use crate::ffi::delegate::{Method, define, enter, instantiate};
use crate::ffi::runtime::{Bool, ClassRef, Id, Object, Sel, sel};

extern "C" fn should_accept(
    this: *mut Object,
    _cmd: Sel,
    _listener: *mut Object,
    connection: *mut Object,
    _device: *mut Object,
) -> Bool {
    // SAFETY: the runtime calls this method on a live instance of the class below,
    // and passes a connection alive for the duration of the call, which we retain.
    let accepted = unsafe {
        enter(this, false, |shared: Arc<ListenerShared>| {
            Id::retain(connection).is_some_and(|c| shared.offer(&c))
        })
    };
    Bool::new(accepted)
}

#[cfg(all(target_vendor = "apple", target_arch = "aarch64"))]
const SHOULD_ACCEPT_TYPES: &CStr = c"B40@0:8@16@24@32";
#[cfg(all(target_vendor = "apple", target_arch = "x86_64"))]
const SHOULD_ACCEPT_TYPES: &CStr = c"c40@0:8@16@24@32";
#[cfg(not(target_vendor = "apple"))]
const SHOULD_ACCEPT_TYPES: &CStr = c"C40@0:8@16@24@32";

/// A new vsock listener delegate handing connections to `shared`.
pub(super) fn listener_delegate(shared: Arc<ListenerShared>) -> Id {
    static CLASS: OnceLock<ClassRef> = OnceLock::new();
    let class = *CLASS.get_or_init(|| {
        let methods = [Method {
            sel: sel!("listener:shouldAcceptNewConnection:fromSocketDevice:"),
            imp: should_accept as *const c_void,
            types: SHOULD_ACCEPT_TYPES,
        }];
        // SAFETY: the implementation is an extern "C" function whose signature is its
        // type encoding, and reads its receiver's state as a ListenerShared.
        unsafe {
            define::<ListenerShared>(
                "VirtioSocketListenerDelegate",
                c"VZVirtioSocketListenerDelegate",
                &methods,
            )
        }
    });
    instantiate(class, shared)
}
