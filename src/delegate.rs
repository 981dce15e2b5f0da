//! Objective-C classes defined at run time for the framework's delegates.
//!
//! - The virtual machine delegate (`VZVirtualMachineDelegate`), which also observes
//!   the VM's `state` with key-value observing, and feeds the VM's [`EventHub`].
//! - The vsock listener delegate (`VZVirtioSocketListenerDelegate`), which hands
//!   accepted connections to a [`VsockListener`](crate::socket::VsockListener).
//!
//! The framework's `delegate` properties are weak, so the Rust side owns these
//! objects for as long as they are installed. Each instance carries an `Arc` of its
//! Rust state in an instance variable, dropped in `dealloc`. Class names include the
//! crate version and an address unique to this copy of the code, so two copies of the
//! crate in one process never collide.
//!
//! This is the one module outside `ffi` with `unsafe`: the method implementations
//! receive raw object pointers from the Objective-C runtime.

use std::ffi::{CStr, CString, c_void};
use std::ptr::NonNull;
use std::sync::{Arc, OnceLock};

use crate::ffi::foundation;
use crate::ffi::runtime::{
    ClassBuilder, ClassRef, Id, Object, Sel, autoreleasepool, class, dealloc_super, objc_methods,
    pointer_ivar, sel, set_pointer_ivar,
};
use crate::socket::ListenerShared;
use crate::vm::{EventHub, StopReason, VirtualMachineState, VmEvent, network_devices_raw};

/// The instance variable holding `Arc::into_raw` of the Rust state.
const STATE_IVAR: &CStr = c"arcboxVzState";

objc_methods! {
    fn object_init(object: crate::ffi::runtime::Allocated) -> Option<Id> = "init";
    fn state_of_vm(vm: &Id) -> isize = "state";
}

/// A distinct address per copy of this code, for class names.
static UNIQUE: u8 = 0;

fn class_name(role: &str) -> CString {
    let version = env!("CARGO_PKG_VERSION").replace(['.', '-', '+'], "_");
    let unique = std::ptr::from_ref(&UNIQUE) as usize;
    CString::new(format!("ArcboxVZ_{version}_{unique:x}_{role}")).expect("no NUL in class names")
}

fn nsobject() -> ClassRef {
    crate::configuration::base_class(class!("NSObject"))
}

/// The Rust state of a delegate object.
///
/// # Safety
///
/// `this` is a live instance of a delegate class defined here whose state type is `T`.
unsafe fn state<'a, T>(this: *mut Object) -> &'a T {
    let this = NonNull::new(this).expect("a method receiver is never nil");
    // SAFETY: the ivar holds Arc::into_raw of a T, set when the object was created
    // and released only in dealloc; the object is alive for this call.
    unsafe { &*pointer_ivar(this, STATE_IVAR).cast::<T>() }
}

/// `dealloc`: drops the Rust state, then `[super dealloc]`.
///
/// # Safety
///
/// Called by the runtime as the object's dealloc.
unsafe fn dealloc_with_state<T>(this: *mut Object) {
    let object = NonNull::new(this).expect("a method receiver is never nil");
    // SAFETY: the ivar holds the Arc::into_raw given at creation, taken back once here.
    drop(unsafe { Arc::from_raw(pointer_ivar(object, STATE_IVAR).cast::<T>()) });
    // SAFETY: the end of this object's dealloc.
    unsafe { dealloc_super(object, nsobject()) }
}

/// A new instance of `class` carrying `state`.
fn instantiate<T>(class: ClassRef, state: Arc<T>) -> Id {
    let object =
        autoreleasepool(|| object_init(class.alloc())).expect("init of a plain NSObject subclass");
    set_pointer_ivar(&object, STATE_IVAR, Arc::into_raw(state).cast::<c_void>());
    object
}

/// Defines a class from `methods` (selector, implementation, type encoding).
fn define(role: &str, protocol: &CStr, methods: &[(Sel, *const c_void, &CStr)]) -> ClassRef {
    let name = class_name(role);
    let mut builder = ClassBuilder::new(&name, nsobject())
        .unwrap_or_else(|| panic!("the class name {name:?} is already taken"));
    assert!(builder.add_pointer_ivar(STATE_IVAR));
    for (sel, imp, types) in methods {
        // SAFETY: each implementation below is an extern "C" function whose
        // signature is exactly its type encoding.
        assert!(unsafe { builder.add_method(*sel, *imp, types) });
    }
    builder.add_protocol(protocol);
    builder.register()
}

// ---------------------------------------------------------------- VM delegate

extern "C" fn guest_did_stop(this: *mut Object, _cmd: Sel, _vm: *mut Object) {
    // SAFETY: `this` is an instance of the VM delegate class, whose state is an EventHub.
    let hub = unsafe { state::<EventHub>(this) };
    // The event first: whoever `wait_until_stopped` wakes must find it already there.
    hub.emit(VmEvent::GuestStopped);
    hub.record_stop(StopReason::GuestStopped);
}

extern "C" fn did_stop_with_error(
    this: *mut Object,
    _cmd: Sel,
    _vm: *mut Object,
    error: *mut Object,
) {
    // SAFETY: as in guest_did_stop.
    let hub = unsafe { state::<EventHub>(this) };
    // SAFETY: the framework passes a live NSError for the duration of the call.
    let error = match unsafe { Id::retain(error) } {
        Some(error) => foundation::framework_error(&error),
        None => crate::error::FrameworkError::new("arcbox-vz", 0, "stopped with an unknown error"),
    };
    hub.emit(VmEvent::StoppedWithError(error.clone()));
    hub.record_stop(StopReason::Error(error));
}

extern "C" fn network_disconnected(
    this: *mut Object,
    _cmd: Sel,
    vm: *mut Object,
    device: *mut Object,
    error: *mut Object,
) {
    // SAFETY: as in guest_did_stop.
    let hub = unsafe { state::<EventHub>(this) };
    // SAFETY: the framework passes live objects for the duration of the call; we are
    // on the VM queue, where the delegate is called.
    let (vm, device, error) = unsafe { (Id::retain(vm), Id::retain(device), Id::retain(error)) };
    autoreleasepool(|| {
        let device_index = vm
            .as_ref()
            .and_then(network_devices_raw)
            .map(|devices| foundation::array_items(&devices))
            .and_then(|devices| {
                let device = device.as_ref()?;
                devices.iter().position(|d| d.is(device))
            })
            .unwrap_or(usize::MAX);
        let error = error.map_or_else(
            || crate::error::FrameworkError::new("arcbox-vz", 0, "disconnected"),
            |e| foundation::framework_error(&e),
        );
        hub.emit(VmEvent::NetworkAttachmentDisconnected {
            device_index,
            error,
        });
    });
}

extern "C" fn observe_state(
    this: *mut Object,
    _cmd: Sel,
    _key_path: *mut Object,
    object: *mut Object,
    _change: *mut Object,
    _context: *mut c_void,
) {
    // SAFETY: as in guest_did_stop.
    let hub = unsafe { state::<EventHub>(this) };
    // SAFETY: KVO passes the observed VM, alive for the call; the framework changes
    // `state` on the VM queue, so the notification (synchronous) arrives there too.
    let Some(vm) = (unsafe { Id::retain(object) }) else {
        return;
    };
    let state = VirtualMachineState::from_raw(autoreleasepool(|| state_of_vm(&vm)));
    hub.state_changed(state);
}

extern "C" fn vm_delegate_dealloc(this: *mut Object, _cmd: Sel) {
    // SAFETY: the runtime calls dealloc once, on an instance of this class.
    unsafe { dealloc_with_state::<EventHub>(this) }
}

/// A new VM delegate (and `state` observer) feeding `hub`.
pub(crate) fn vm_delegate(hub: Arc<EventHub>) -> Id {
    static CLASS: OnceLock<ClassRef> = OnceLock::new();
    let class = *CLASS.get_or_init(|| {
        define(
            "VirtualMachineDelegate",
            c"VZVirtualMachineDelegate",
            &[
                (
                    sel!("guestDidStopVirtualMachine:"),
                    guest_did_stop as *const c_void,
                    c"v24@0:8@16",
                ),
                (
                    sel!("virtualMachine:didStopWithError:"),
                    did_stop_with_error as *const c_void,
                    c"v32@0:8@16@24",
                ),
                (
                    sel!("virtualMachine:networkDevice:attachmentWasDisconnectedWithError:"),
                    network_disconnected as *const c_void,
                    c"v40@0:8@16@24@32",
                ),
                (
                    sel!("observeValueForKeyPath:ofObject:change:context:"),
                    observe_state as *const c_void,
                    c"v48@0:8@16@24@32^v40",
                ),
                (
                    sel!("dealloc"),
                    vm_delegate_dealloc as *const c_void,
                    c"v16@0:8",
                ),
            ],
        )
    });
    instantiate(class, hub)
}

// ---------------------------------------------------------------- vsock listener delegate

extern "C" fn should_accept(
    this: *mut Object,
    _cmd: Sel,
    _listener: *mut Object,
    connection: *mut Object,
    _device: *mut Object,
) -> crate::ffi::runtime::Bool {
    // SAFETY: `this` is an instance of the listener delegate class, whose state is a
    // ListenerShared.
    let shared = unsafe { state::<ListenerShared>(this) };
    // SAFETY: the framework passes a live connection for the duration of the call.
    let connection = unsafe { Id::retain(connection) };
    let accepted = connection.is_some_and(|c| autoreleasepool(|| shared.offer(&c)));
    crate::ffi::runtime::Bool::new(accepted)
}

extern "C" fn listener_delegate_dealloc(this: *mut Object, _cmd: Sel) {
    // SAFETY: the runtime calls dealloc once, on an instance of this class.
    unsafe { dealloc_with_state::<ListenerShared>(this) }
}

#[cfg(all(target_vendor = "apple", target_arch = "aarch64"))]
const SHOULD_ACCEPT_TYPES: &CStr = c"B40@0:8@16@24@32";
#[cfg(all(target_vendor = "apple", target_arch = "x86_64"))]
const SHOULD_ACCEPT_TYPES: &CStr = c"c40@0:8@16@24@32";
#[cfg(not(target_vendor = "apple"))]
const SHOULD_ACCEPT_TYPES: &CStr = c"C40@0:8@16@24@32";

/// A new vsock listener delegate handing connections to `shared`.
pub(crate) fn listener_delegate(shared: Arc<ListenerShared>) -> Id {
    static CLASS: OnceLock<ClassRef> = OnceLock::new();
    let class = *CLASS.get_or_init(|| {
        define(
            "VirtioSocketListenerDelegate",
            c"VZVirtioSocketListenerDelegate",
            &[
                (
                    sel!("listener:shouldAcceptNewConnection:fromSocketDevice:"),
                    should_accept as *const c_void,
                    SHOULD_ACCEPT_TYPES,
                ),
                (
                    sel!("dealloc"),
                    listener_delegate_dealloc as *const c_void,
                    c"v16@0:8",
                ),
            ],
        )
    });
    instantiate(class, shared)
}
