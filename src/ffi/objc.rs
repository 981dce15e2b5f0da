//! The Objective-C runtime itself, the bottom of `ffi/`: the object, selector and
//! `BOOL` types, the raw libobjc functions ([`raw`]), cached selectors ([`sel!`])
//! and autorelease pools. It uses nothing else of the crate; message sending is in
//! [`runtime`](super::runtime), on top of it.

use core::ffi::{CStr, c_char, c_void};
use core::marker::{PhantomData, PhantomPinned};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};

/// An Objective-C object, only ever handled by pointer.
#[repr(C)]
pub(crate) struct Object {
    _opaque: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// A registered selector (`SEL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub(crate) struct Sel(NonNull<c_void>);

// SAFETY: a selector is an interned, immutable runtime value that lives as long as the
// process.
unsafe impl Send for Sel {}
// SAFETY: as above.
unsafe impl Sync for Sel {}

impl Sel {
    pub(crate) fn as_ptr(self) -> *mut c_void {
        self.0.as_ptr()
    }
}

/// Objective-C `BOOL`: `bool` on arm64, `signed char` on x86_64 macOS and
/// `unsigned char` on GCC's runtime (the simulator). Read it with [`Bool::as_bool`],
/// which treats any non-zero value as YES.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub(crate) struct Bool(RawBool);

#[cfg(all(target_vendor = "apple", target_arch = "aarch64"))]
type RawBool = bool;
#[cfg(all(target_vendor = "apple", target_arch = "x86_64"))]
type RawBool = i8;
#[cfg(not(target_vendor = "apple"))]
type RawBool = u8;

impl Bool {
    #[allow(clippy::unnecessary_cast)] // a no-op cast on arm64, where RawBool is bool
    pub(crate) const fn new(value: bool) -> Self {
        #[cfg(all(target_vendor = "apple", target_arch = "aarch64"))]
        {
            Self(value)
        }
        #[cfg(not(all(target_vendor = "apple", target_arch = "aarch64")))]
        {
            Self(value as RawBool)
        }
    }

    #[allow(clippy::nonminimal_bool)] // `!= false` keeps one spelling for all three types
    pub(crate) fn as_bool(self) -> bool {
        #[cfg(all(target_vendor = "apple", target_arch = "aarch64"))]
        {
            self.0
        }
        #[cfg(not(all(target_vendor = "apple", target_arch = "aarch64")))]
        {
            self.0 != 0
        }
    }
}

/// Raw runtime functions. Everything imported from libobjc is `C-unwind`: an
/// Objective-C exception that unwinds through an `extern "C"` import is undefined
/// behaviour, through `C-unwind` it is defined (and ends the process).
pub(crate) mod raw {
    use super::*;

    #[cfg_attr(target_vendor = "apple", link(name = "objc", kind = "dylib"))]
    unsafe extern "C-unwind" {
        pub(crate) fn objc_msgSend();
        pub(crate) fn objc_msgSendSuper();
        fn sel_registerName(name: *const c_char) -> *mut c_void;
        fn sel_getName(sel: Sel) -> *const c_char;
        fn objc_getClass(name: *const c_char) -> *mut Object;
        fn object_getClass(object: *mut Object) -> *mut Object;
        fn class_getName(class: *mut Object) -> *const c_char;
        fn class_isMetaClass(class: *mut Object) -> Bool;
        fn class_getInstanceMethod(class: *mut Object, sel: Sel) -> *mut c_void;
        fn method_getTypeEncoding(method: *mut c_void) -> *const c_char;
        fn class_respondsToSelector(class: *mut Object, sel: Sel) -> Bool;
        pub(crate) fn objc_retain(object: *mut Object) -> *mut Object;
        pub(crate) fn objc_release(object: *mut Object);
        fn objc_autoreleasePoolPush() -> *mut c_void;
        fn objc_autoreleasePoolPop(pool: *mut c_void);
        pub(crate) fn objc_allocateClassPair(
            superclass: *mut Object,
            name: *const c_char,
            extra_bytes: usize,
        ) -> *mut Object;
        pub(crate) fn objc_registerClassPair(class: *mut Object);
        pub(crate) fn class_addMethod(
            class: *mut Object,
            sel: Sel,
            imp: *const c_void,
            types: *const c_char,
        ) -> Bool;
        pub(crate) fn class_addIvar(
            class: *mut Object,
            name: *const c_char,
            size: usize,
            log2_alignment: u8,
            types: *const c_char,
        ) -> Bool;
        pub(crate) fn class_getInstanceVariable(
            class: *mut Object,
            name: *const c_char,
        ) -> *mut c_void;
        pub(crate) fn ivar_getOffset(ivar: *mut c_void) -> isize;
        pub(crate) fn objc_getProtocol(name: *const c_char) -> *mut c_void;
        pub(crate) fn class_addProtocol(class: *mut Object, protocol: *mut c_void) -> Bool;
    }

    pub(crate) fn register_sel(name: &CStr) -> Sel {
        // SAFETY: `name` is NUL-terminated; sel_registerName is thread-safe and never
        // returns NULL for a valid name.
        let sel = unsafe { sel_registerName(name.as_ptr()) };
        Sel(NonNull::new(sel).expect("sel_registerName returned NULL"))
    }

    pub(crate) fn lookup_class(name: &CStr) -> Option<NonNull<Object>> {
        // SAFETY: `name` is NUL-terminated; objc_getClass returns NULL for an unknown
        // class (for example, one newer than the running OS).
        NonNull::new(unsafe { objc_getClass(name.as_ptr()) })
    }

    /// The class of an object; for a class object, its metaclass.
    pub(crate) fn object_class(object: NonNull<Object>) -> NonNull<Object> {
        // SAFETY: `object` is a live object, so its isa is a valid class.
        let class = unsafe { object_getClass(object.as_ptr()) };
        NonNull::new(class).expect("an object without a class")
    }

    /// `("-", "Name")` for a class, `("+", "Name")` for a metaclass.
    pub(crate) fn class_display(class: NonNull<Object>) -> (&'static str, String) {
        // SAFETY: `class` is a valid class; class_getName returns a static C string.
        let (meta, name) = unsafe {
            (
                class_isMetaClass(class.as_ptr()).as_bool(),
                CStr::from_ptr(class_getName(class.as_ptr())),
            )
        };
        (
            if meta { "+" } else { "-" },
            name.to_string_lossy().into_owned(),
        )
    }

    pub(crate) fn sel_name(sel: Sel) -> String {
        // SAFETY: `sel` is registered; sel_getName returns its static name.
        unsafe { CStr::from_ptr(sel_getName(sel)) }
            .to_string_lossy()
            .into_owned()
    }

    /// The type encoding of `-[class sel]` (searching superclasses), if it exists.
    #[cfg_attr(not(debug_assertions), allow(dead_code))]
    pub(crate) fn method_encoding(class: NonNull<Object>, sel: Sel) -> Option<&'static CStr> {
        // SAFETY: `class` is a valid class and `sel` a registered selector. Method
        // type strings live as long as the class, and classes are never unloaded here.
        unsafe {
            let method = class_getInstanceMethod(class.as_ptr(), sel);
            if method.is_null() {
                return None;
            }
            let types = method_getTypeEncoding(method);
            (!types.is_null()).then(|| CStr::from_ptr(types))
        }
    }

    pub(crate) fn class_responds(class: NonNull<Object>, sel: Sel) -> bool {
        // SAFETY: `class` is a valid class and `sel` a registered selector.
        unsafe { class_respondsToSelector(class.as_ptr(), sel) }.as_bool()
    }

    pub(crate) fn pool_push() -> NonNull<c_void> {
        // SAFETY: always valid; the token is popped by the guard on this thread.
        NonNull::new(unsafe { objc_autoreleasePoolPush() }).expect("no autorelease pool")
    }

    /// # Safety
    ///
    /// `pool` comes from [`pool_push`] on this thread and pools are popped in
    /// reverse order.
    pub(crate) unsafe fn pool_pop(pool: NonNull<c_void>) {
        // SAFETY: guaranteed by the caller.
        unsafe { objc_autoreleasePoolPop(pool.as_ptr()) }
    }
}

/// A per-call-site selector cache, filled on first use. Use [`sel!`].
#[derive(Debug)]
pub(crate) struct SelCache {
    name: &'static str,
    sel: AtomicPtr<c_void>,
}

impl SelCache {
    /// `name` must end with a NUL byte (the `sel!` macro adds it).
    pub(crate) const fn new(name: &'static str) -> Self {
        Self {
            name,
            sel: AtomicPtr::new(ptr::null_mut()),
        }
    }

    #[inline]
    pub(crate) fn get(&self) -> Sel {
        // ORDERING: Relaxed is enough. The pointer is immutable runtime data and
        // sel_registerName is idempotent: racing threads all store the same value.
        if let Some(sel) = NonNull::new(self.sel.load(Ordering::Relaxed)) {
            return Sel(sel);
        }
        let name =
            CStr::from_bytes_with_nul(self.name.as_bytes()).expect("selector names end in NUL");
        let sel = raw::register_sel(name);
        // ORDERING: as above.
        self.sel.store(sel.as_ptr(), Ordering::Relaxed);
        sel
    }
}

/// The selector for a literal name, registered once per call site.
macro_rules! sel {
    ($name:literal) => {{
        static CACHE: $crate::ffi::objc::SelCache =
            $crate::ffi::objc::SelCache::new(concat!($name, "\0"));
        CACHE.get()
    }};
}
pub(crate) use sel;

/// An autorelease pool, popped on drop. `!Send`: a pool must be popped on the thread
/// that pushed it, in reverse order.
#[derive(Debug)]
pub(crate) struct AutoreleasePool {
    token: NonNull<c_void>,
    _not_send: PhantomData<*mut ()>,
}

impl AutoreleasePool {
    pub(crate) fn push() -> Self {
        Self {
            token: raw::pool_push(),
            _not_send: PhantomData,
        }
    }
}

impl Drop for AutoreleasePool {
    fn drop(&mut self) {
        // SAFETY: pushed on this thread (the guard is !Send); guards are dropped in
        // reverse order of creation by scoping.
        unsafe { raw::pool_pop(self.token) }
    }
}
