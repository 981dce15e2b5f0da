//! The raw parts of the window (`crate::gui`): whether this is the process's main
//! thread, work items for the main dispatch queue, and the `NSWindowDelegate` class.
//!
//! AppKit is main-thread only. The main thread is the process's first thread (the one
//! running Rust `main`); a spawned thread can never host the UI, whatever it does.

use core::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};

use super::delegate::{Method, define, enter, instantiate};
use super::runtime::{ClassRef, Id, Object, Sel, sel};

#[cfg_attr(target_vendor = "apple", link(name = "AppKit", kind = "framework"))]
unsafe extern "C-unwind" {}

/// `struct dispatch_queue_static_s`, only ever used by address.
#[repr(C)]
struct MainQueue {
    _opaque: [u8; 0],
}

#[cfg_attr(target_vendor = "apple", link(name = "System", kind = "dylib"))]
unsafe extern "C-unwind" {
    /// The main queue: `dispatch_get_main_queue()` is a header inline returning its
    /// address. `-[NSApplication run]` services it.
    static _dispatch_main_q: MainQueue;
    fn dispatch_async_f(queue: *mut c_void, context: *mut c_void, work: extern "C" fn(*mut c_void));
}

/// Whether the calling thread is the process's main thread.
#[cfg(target_vendor = "apple")]
pub(crate) fn is_main_thread() -> bool {
    // SAFETY: pthread_main_np has no preconditions.
    unsafe { super::sys::pthread_main_np() != 0 }
}

/// Whether the calling thread is the process's main thread: on Linux (the simulator),
/// the thread whose id is the process id.
#[cfg(not(target_vendor = "apple"))]
pub(crate) fn is_main_thread() -> bool {
    // SAFETY: gettid and getpid have no preconditions.
    unsafe { super::sys::gettid() == super::sys::getpid() }
}

/// Runs `f` later on the main queue, that is, on the main thread while
/// `-[NSApplication run]` is servicing it. A panic in `f` is caught at the queue
/// boundary (libdispatch cannot unwind).
pub(crate) fn main_queue_async(f: Box<dyn FnOnce() + Send>) {
    let context = Box::into_raw(Box::new(f));
    // SAFETY: the main queue lives as long as the process; the trampoline takes
    // ownership of `context`.
    unsafe {
        dispatch_async_f(
            (&raw const _dispatch_main_q).cast_mut().cast(),
            context.cast(),
            main_queue_trampoline,
        )
    }
}

/// The work function of every [`main_queue_async`] item.
pub(crate) extern "C" fn main_queue_trampoline(context: *mut c_void) {
    // SAFETY: `context` is the Box leaked by main_queue_async, handed over exactly once.
    let f = unsafe { Box::from_raw(context.cast::<Box<dyn FnOnce() + Send>>()) };
    let _ = catch_unwind(AssertUnwindSafe(|| super::runtime::autoreleasepool(*f)));
}

/// What the window delegate does when its window is about to close (on the main
/// thread).
pub(crate) type OnClose = Box<dyn Fn() + Send + Sync>;

extern "C" fn window_will_close(this: *mut Object, _cmd: Sel, _notification: *mut Object) {
    // SAFETY: the runtime calls this method on a live instance of the class below.
    unsafe { enter(this, (), |on_close: Arc<OnClose>| on_close()) }
}

/// A new `NSWindowDelegate` answering `windowWillClose:` with `on_close`. The window's
/// `delegate` is weak: keep the returned object until it is uninstalled.
pub(crate) fn window_delegate(on_close: OnClose) -> Id {
    static CLASS: OnceLock<ClassRef> = OnceLock::new();
    let class = *CLASS.get_or_init(|| {
        let methods = [Method {
            sel: sel!("windowWillClose:"),
            imp: window_will_close as *const c_void,
            types: c"v24@0:8@16",
        }];
        // SAFETY: `window_will_close` is `void (id, SEL, id)` as encoded, and reads
        // its receiver's state as `OnClose`, the type given here.
        unsafe { define::<OnClose>("WindowDelegate", c"NSWindowDelegate", &methods) }
    });
    instantiate(class, Arc::new(on_close))
}
