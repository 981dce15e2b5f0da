//! Naming an Objective-C exception that unwinds into arcbox-vz.
//!
//! The crate validates its inputs so the framework never raises. If an exception is
//! raised anyway, the process ends, and without this module it ends with only Rust's
//! "Rust cannot catch foreign exceptions": a `catch_unwind` up the stack (a dispatch
//! trampoline, a block invoke, a test harness) claims the exception in the unwinder's
//! search phase, so Objective-C's own "uncaught exception … reason: …" line is never
//! printed. This module prints one line instead:
//!
//! ```text
//! arcbox-vz: Objective-C exception NSInvalidArgumentException while sending -[VZLinuxBootLoader initWithKernelURL:]: <reason>
//! ```
//!
//! # How
//!
//! 1. Once per process, on the first class lookup, [`install`] puts [`preprocess`] in
//!    front of the runtime's exception preprocessor (`objc_setExceptionPreprocessor`,
//!    public since macOS 10.5). `objc_exception_throw` calls it with every exception
//!    before unwinding starts. It records the exception's name and reason in a
//!    thread-local, then hands the exception to the preprocessor it replaced
//!    (Foundation's) and returns what that returns. It prints nothing: most
//!    exceptions are caught again inside Objective-C and are none of our business.
//! 2. Each message send, and each callback that the crate runs for Objective-C (block
//!    invokes, dispatch work items), holds an [`Unwinding`] guard that is forgotten on
//!    the normal path, so it costs no instruction there. Its `Drop` runs only while
//!    something unwinds through that frame: then it prints the recorded exception
//!    with the place where it crossed into the crate. The innermost guard prints;
//!    the others see that the exception was reported and stay quiet.
//!
//! An exception raised and caught inside Objective-C never reaches a guard, so it
//! prints nothing. With no `catch_unwind` anywhere above, the unwinder never starts
//! its cleanup phase and no guard runs; the runtime's uncaught-exception handler then
//! prints the name and reason itself.
//!
//! # Class and selector
//!
//! The selector is always known. The class is recorded before the send only in debug
//! builds, where every send already looks the class up for its type check. A release
//! send records nothing extra (the message-send micro-benchmark stays at the floor),
//! and reading the receiver's class while unwinding is not safe: a raising `init…`
//! compiled with ARC may already have released its receiver. Release builds therefore
//! print the selector alone; sends to `super` name the class in both.

use core::cell::{Cell, RefCell};
use core::ffi::{CStr, c_char, c_void};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use super::encode::MessageArgs;
use super::objc::{AutoreleasePool, Object, Sel, raw, sel};

/// `objc_exception_preprocessor`: `id (*)(id exception)`.
type Preprocessor = unsafe extern "C-unwind" fn(*mut Object) -> *mut Object;

#[cfg_attr(target_vendor = "apple", link(name = "objc", kind = "dylib"))]
unsafe extern "C-unwind" {
    /// Installs `f` and returns the previous preprocessor (`<objc/objc-exception.h>`).
    fn objc_setExceptionPreprocessor(f: Option<Preprocessor>) -> Option<Preprocessor>;
}

static INSTALL: Once = Once::new();
/// The preprocessor ours replaced, as a data pointer (NULL: none).
static PREVIOUS: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());
/// Set once `PREVIOUS` holds the replaced preprocessor.
static PREVIOUS_KNOWN: AtomicBool = AtomicBool::new(false);

/// Installs the preprocessor, once per process. Cheap after the first call.
pub(crate) fn install() {
    INSTALL.call_once(|| {
        // SAFETY: `preprocess` has the `objc_exception_preprocessor` signature and
        // lives as long as the process.
        let previous = unsafe { objc_setExceptionPreprocessor(Some(preprocess)) };
        let previous = previous.map_or(ptr::null_mut(), |f| f as *mut c_void);
        // ORDERING: Relaxed; published by the Release store below.
        PREVIOUS.store(previous, Ordering::Relaxed);
        // ORDERING: Release pairs with the Acquire load in `previous`, so a thread that
        // sees the flag also sees the pointer.
        PREVIOUS_KNOWN.store(true, Ordering::Release);
    });
}

/// The preprocessor that ours replaced.
fn previous() -> Option<Preprocessor> {
    // ORDERING: Acquire pairs with the Release store in `install`. Another thread can
    // throw between objc_setExceptionPreprocessor returning and the store; the
    // installer runs no Objective-C code in that window, so the wait is short.
    while !PREVIOUS_KNOWN.load(Ordering::Acquire) {
        std::thread::yield_now();
    }
    // ORDERING: ordered by the Acquire load above.
    let previous = PREVIOUS.load(Ordering::Relaxed);
    if previous.is_null() {
        return None;
    }
    // SAFETY: a non-null value is the function pointer objc_setExceptionPreprocessor
    // returned, stored as a data pointer; function and data pointers have the same
    // size and representation on every target we build for.
    Some(unsafe { core::mem::transmute::<*mut c_void, Preprocessor>(previous) })
}

/// What this thread knows about the last exception thrown on it.
#[derive(Debug)]
enum Record {
    /// Nothing, or an exception from before the current autorelease scope.
    Empty,
    /// Thrown and not yet reported.
    Pending { name: String, reason: String },
    /// Reported by a guard; outer guards stay quiet.
    Reported,
}

thread_local! {
    static RECORD: RefCell<Record> = const { RefCell::new(Record::Empty) };
    /// Set while `preprocess` describes an exception, in case describing it throws.
    static DESCRIBING: Cell<bool> = const { Cell::new(false) };
}

/// The exception preprocessor: records the exception's name and reason on this
/// thread, then chains to the preprocessor it replaced.
unsafe extern "C-unwind" fn preprocess(exception: *mut Object) -> *mut Object {
    if let Some(exception) = NonNull::new(exception) {
        // Never unwind a Rust panic into objc_exception_throw.
        let _ = catch_unwind(AssertUnwindSafe(|| record(exception)));
    }
    match previous() {
        // SAFETY: the runtime's previous preprocessor, called as the runtime would.
        Some(previous) => unsafe { previous(exception) },
        None => exception,
    }
}

fn record(exception: NonNull<Object>) {
    let Ok(false) = DESCRIBING.try_with(|d| d.replace(true)) else {
        return;
    };
    let (name, reason) = describe(exception);
    let _ = RECORD.try_with(|r| {
        if let Ok(mut r) = r.try_borrow_mut() {
            *r = Record::Pending { name, reason };
        }
    });
    let _ = DESCRIBING.try_with(|d| d.set(false));
}

/// The thrown object's `name` and `reason` (an `NSException`), or its class.
fn describe(exception: NonNull<Object>) -> (String, String) {
    let _pool = AutoreleasePool::push();
    let class = raw::object_class(exception);
    let (name_sel, reason_sel) = (sel!("name"), sel!("reason"));
    if !(raw::class_responds(class, name_sel) && raw::class_responds(class, reason_sel)) {
        let (_, class_name) = raw::class_display(class);
        return (format!("(an object of class {class_name})"), String::new());
    }
    // SAFETY: -[NSException name] and -reason take no arguments and return an
    // NSString (or nil); the class answers both.
    let (name, reason) = unsafe {
        (
            send_unchecked::<*mut Object>(exception, name_sel),
            send_unchecked::<*mut Object>(exception, reason_sel),
        )
    };
    (string(name), string(reason))
}

/// A copy of an `NSString`'s characters; "(nil)" for nil.
fn string(object: *mut Object) -> String {
    let Some(object) = NonNull::new(object) else {
        return "(nil)".to_owned();
    };
    let utf8 = sel!("UTF8String");
    if !raw::class_responds(raw::object_class(object), utf8) {
        return "(not a string)".to_owned();
    }
    // SAFETY: -[NSString UTF8String] returns a C string that lives as long as the
    // autorelease pool `describe` pushed; it is copied out at once.
    unsafe {
        let chars = send_unchecked::<*const c_char>(object, utf8);
        if chars.is_null() {
            return "(nil)".to_owned();
        }
        CStr::from_ptr(chars).to_string_lossy().into_owned()
    }
}

/// A send without the debug-build type check (which may panic) or a guard.
///
/// # Safety
///
/// The receiver's method `sel` takes no arguments and returns `R`.
unsafe fn send_unchecked<R: super::encode::EncodeReturn>(receiver: NonNull<Object>, sel: Sel) -> R {
    // SAFETY: forwarded from the caller.
    unsafe { <() as MessageArgs>::invoke(raw::objc_msgSend, receiver.as_ptr(), sel, ()) }
}

/// Forgets an exception recorded before a new entry into the crate, so a guard never
/// reports an exception that Objective-C raised and caught long ago as the cause of a
/// later unwind (a C++ exception, say).
pub(crate) fn forget_earlier() {
    let _ = RECORD.try_with(|r| {
        if let Ok(mut r) = r.try_borrow_mut() {
            *r = Record::Empty;
        }
    });
}

/// Where an exception crossed into the crate.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Site {
    /// A message send. `class` is the receiver's class (debug builds) or the class the
    /// lookup started at (`super` sends).
    Send {
        sel: Sel,
        class: Option<NonNull<Object>>,
    },
    /// A Rust callback run for Objective-C or libdispatch.
    Callback(&'static str),
}

/// Prints the recorded exception if dropped while unwinding. Forget it with
/// [`done`](Self::done) on the normal path: then it costs nothing.
#[derive(Debug)]
#[must_use = "a guard reports only while it is alive"]
pub(crate) struct Unwinding(Site);

impl Unwinding {
    #[inline(always)]
    pub(crate) fn new(site: Site) -> Self {
        Self(site)
    }

    /// The guarded code returned normally.
    #[inline(always)]
    pub(crate) fn done(self) {
        core::mem::forget(self);
    }
}

impl Drop for Unwinding {
    fn drop(&mut self) {
        report(self.0);
    }
}

#[cold]
#[inline(never)]
fn report(site: Site) {
    if std::thread::panicking() {
        // A Rust panic: the panic hook has said everything.
        return;
    }
    let Ok(Ok(earlier)) = RECORD.try_with(|r| {
        r.try_borrow_mut()
            .map(|mut r| core::mem::replace(&mut *r, Record::Reported))
    }) else {
        return;
    };
    let line = match earlier {
        Record::Reported => return,
        Record::Pending { name, reason } => {
            format!("arcbox-vz: Objective-C exception {name} while {site}: {reason}\n")
        }
        Record::Empty => format!(
            "arcbox-vz: a foreign exception (C++, or Objective-C raised before arcbox-vz \
             was set up) is unwinding while {site}\n"
        ),
    };
    let _ = std::io::stderr().write_all(line.as_bytes());
}

impl core::fmt::Display for Site {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::Send {
                sel,
                class: Some(class),
            } => {
                let (kind, name) = raw::class_display(class);
                write!(f, "sending {kind}[{name} {}]", raw::sel_name(sel))
            }
            Self::Send { sel, class: None } => write!(f, "sending {}", raw::sel_name(sel)),
            Self::Callback(what) => f.write_str(what),
        }
    }
}

/// The name and reason recorded on this thread and not yet reported, for tests.
#[cfg(all(test, arcbox_vz_sim))]
pub(crate) fn pending() -> Option<(String, String)> {
    RECORD.with_borrow(|r| match r {
        Record::Pending { name, reason } => Some((name.clone(), reason.clone())),
        _ => None,
    })
}
