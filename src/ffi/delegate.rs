//! Objective-C classes defined at run time whose instances carry Rust state: the
//! framework's delegates and our key-value observer.
//!
//! Each instance holds `Arc::into_raw` of its Rust state in an instance variable,
//! taken back in `dealloc`. Class names include the crate version and an address
//! unique to this copy of the code, so two copies of the crate in one process never
//! collide.
//!
//! # Rules for method implementations
//!
//! Every method is an `extern "C"` function that does all its work inside
//! [`enter`], which:
//! - takes a strong reference to the Rust state for the whole call, so user code run
//!   by the method (a waker that drops the last handle) cannot free it under us;
//! - catches panics (a user's waker may panic), which would otherwise abort the
//!   process at the `extern "C"` boundary: the method returns its fallback instead;
//! - runs inside an autorelease pool.
//!
//! The methods themselves never hold a lock while they wake anyone.

use std::ffi::{CStr, CString, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;
use std::sync::Arc;

use super::runtime::{
    Allocated, ClassBuilder, ClassRef, Id, Object, Sel, autoreleasepool, class, dealloc_super,
    in_pool, objc_methods, pointer_ivar, set_pointer_ivar,
};

/// The instance variable holding `Arc::into_raw` of the Rust state.
const STATE_IVAR: &CStr = c"arcboxVzState";

objc_methods! {
    fn object_init(object: Allocated) -> Option<Id> = "init";
    fn dictionary_object_for_key(dictionary: &Id, key: &Id) -> Option<Id> =
        "objectForKey:";
    fn number_integer_value(number: &Id) -> isize = "integerValue";
}

#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
objc_methods! {
    fn number_double_value(number: &Id) -> f64 = "doubleValue";
}

#[cfg_attr(target_vendor = "apple", link(name = "Foundation", kind = "framework"))]
unsafe extern "C-unwind" {
    /// `NSKeyValueChangeNewKey`: the key of the new value in a KVO change dictionary.
    static NSKeyValueChangeNewKey: *mut Object;
}

/// A distinct address per copy of this code, for class names.
static UNIQUE: u8 = 0;

fn class_name(role: &str) -> CString {
    let version = env!("CARGO_PKG_VERSION").replace(['.', '-', '+'], "_");
    let unique = std::ptr::from_ref(&UNIQUE) as usize;
    CString::new(format!("ArcboxVZ_{version}_{unique:x}_{role}")).expect("no NUL in class names")
}

fn nsobject() -> ClassRef {
    class!("NSObject").unwrap_or_else(|e| panic!("Foundation is not linked into this process: {e}"))
}

/// One method of a class being defined: selector, implementation, type encoding.
pub(crate) struct Method {
    pub(crate) sel: Sel,
    pub(crate) imp: *const c_void,
    pub(crate) types: &'static CStr,
}

/// Defines an `NSObject` subclass adopting `protocol`, with a state instance variable,
/// `methods`, and a `dealloc` that releases state of type `T`.
///
/// # Safety
///
/// Each method's implementation is an `extern "C"` function whose signature matches
/// its type encoding, and whose receiver's state is read as `T`.
pub(crate) unsafe fn define<T: Send + Sync + 'static>(
    role: &str,
    protocol: &CStr,
    methods: &[Method],
) -> ClassRef {
    let name = class_name(role);
    let mut builder = ClassBuilder::new(&name, nsobject())
        .unwrap_or_else(|| panic!("the class name {name:?} is already taken"));
    assert!(builder.add_pointer_ivar(STATE_IVAR));
    let dealloc = Method {
        sel: super::runtime::sel!("dealloc"),
        imp: dealloc_with_state::<T> as *const c_void,
        types: c"v16@0:8",
    };
    for method in methods.iter().chain([&dealloc]) {
        // SAFETY: guaranteed by the caller for `methods`; `dealloc_with_state::<T>`
        // is `void (id, SEL)`, as its encoding says.
        assert!(unsafe { builder.add_method(method.sel, method.imp, method.types) });
    }
    builder.add_protocol(protocol);
    builder.register()
}

/// A new instance of `class` (made by [`define`] for `T`) carrying `state`.
pub(crate) fn instantiate<T: Send + Sync + 'static>(class: ClassRef, state: Arc<T>) -> Id {
    let object = in_pool!(object_init(class.alloc())).expect("init of a plain NSObject subclass");
    set_pointer_ivar(&object, STATE_IVAR, Arc::into_raw(state).cast::<c_void>());
    object
}

/// Runs a method body with a strong reference to the receiver's state, in an
/// autorelease pool, with panics caught. Returns `fallback` when the body panics.
///
/// # Safety
///
/// `this` is nil or a live instance of a class made by [`define`] for `T`, and stays
/// alive for this call (the runtime passes method receivers that way).
pub(crate) unsafe fn enter<T: Send + Sync + 'static, R>(
    this: *mut Object,
    fallback: R,
    body: impl FnOnce(Arc<T>) -> R,
) -> R {
    let Some(this) = NonNull::new(this) else {
        return fallback;
    };
    // SAFETY: the ivar holds Arc::into_raw of a T, set at creation and given back only
    // in dealloc, which cannot run while the receiver is alive for this call.
    let state = unsafe { pointer_ivar(this, STATE_IVAR) }.cast::<T>();
    if state.is_null() {
        return fallback;
    }
    // SAFETY: `state` came from Arc::into_raw and its count is at least one (the
    // object's own); we add ours and take it as an Arc, dropped at the end of the call.
    let state = unsafe {
        Arc::increment_strong_count(state);
        Arc::from_raw(state)
    };
    // Only this part is compiled once per method body; the rest is shared.
    let mut call = Some((body, state));
    let mut result = None;
    run_in_pool_caught(&mut || {
        if let Some((body, state)) = call.take() {
            result = Some(body(state));
        }
    });
    result.unwrap_or(fallback)
}

/// The non-generic part of [`enter`]: runs `f` in an autorelease pool with a panic
/// caught (the panic hook has reported it).
fn run_in_pool_caught(f: &mut dyn FnMut()) {
    let _ = catch_unwind(AssertUnwindSafe(|| autoreleasepool(f)));
}

/// `dealloc`: releases the Rust state, then `[super dealloc]`.
extern "C" fn dealloc_with_state<T>(this: *mut Object, _cmd: Sel) {
    let Some(object) = NonNull::new(this) else {
        return;
    };
    // SAFETY: the runtime calls dealloc once, on an instance of a class made by
    // `define::<T>`, whose ivar holds the Arc::into_raw given at creation.
    let state = unsafe { pointer_ivar(object, STATE_IVAR) }.cast::<T>();
    if !state.is_null() {
        // SAFETY: see above; taken back exactly once, here.
        let state = unsafe { Arc::from_raw(state) };
        // The state's drop may run user code (wakers held inside it): never unwind
        // into the runtime.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(state)));
    }
    // SAFETY: the end of this object's dealloc; its superclass is NSObject.
    unsafe { dealloc_super(object, nsobject()) }
}

/// The new value in a key-value observing change dictionary (observed with
/// `NSKeyValueObservingOptionNew`), as an integer: no message is sent to the
/// observed object, so this is safe on whatever thread the notification arrives.
pub(crate) fn kvo_new_integer(change: &Id) -> Option<isize> {
    kvo_new_number(change).as_ref().map(number_integer_value)
}

/// As [`kvo_new_integer`], for a `double` property.
#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
pub(crate) fn kvo_new_double(change: &Id) -> Option<f64> {
    kvo_new_number(change).as_ref().map(number_double_value)
}

/// The `NSNumber` under `NSKeyValueChangeNewKey` (retained, so it outlives the pool).
fn kvo_new_number(change: &Id) -> Option<Id> {
    // SAFETY: a constant NSString exported by Foundation, initialized before any
    // code of ours runs, and never released.
    let key = unsafe { Id::retain(NSKeyValueChangeNewKey) }?;
    in_pool!(dictionary_object_for_key(change, &key))
}
