//! Message sending, selectors, classes and object ownership.
//!
//! # Layers
//!
//! 1. [`send`] transmutes `objc_msgSend` (declared without parameters) to the exact,
//!    non-variadic `unsafe extern "C-unwind" fn(receiver, SEL, args..) -> R` of each
//!    call, via [`MessageArgs`]. It is the only place that calls `objc_msgSend`.
//! 2. [`objc_methods!`](crate::ffi::runtime::objc_methods) declares typed, safe Rust
//!    functions for individual selectors, with the selector spelled as in
//!    `vz-api.tsv`. Debug builds check each declaration against the runtime's type
//!    encoding on first use (see [`super::encode`]).
//! 3. The builders in `configuration/`, `device/` and the runtime layer call those
//!    functions and never touch raw pointers.
//!
//! # Ownership
//!
//! [`Id`] owns one reference (+1): `Clone` retains, `Drop` releases. A method of the
//! `alloc`, `new`, `copy`, `mutableCopy` or `init` family returns +1 and is adopted
//! as is; any other method returns +0 and is retained ([`returns_retained`]). An
//! `init` consumes its [`Allocated`] receiver, and when it returns nil it has already
//! released it.

use core::ffi::{CStr, c_char, c_void};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};

use super::encode::{Encode, EncodeReturn, Encoding, RawClass};
use super::exception::{Site, Unwinding};
use crate::error::VZError;

pub(crate) use super::encode::MessageArgs;
use super::objc::SelCache;
pub(crate) use super::objc::{AutoreleasePool, Bool, Object, Sel, raw, sel};

/// A per-call-site class cache. Use [`class!`](crate::ffi::class).
#[derive(Debug)]
pub(crate) struct ClassCache {
    name: &'static str,
    class: AtomicPtr<Object>,
}

impl ClassCache {
    /// `name` must end with a NUL byte (the `class!` macro adds it).
    pub(crate) const fn new(name: &'static str) -> Self {
        Self {
            name,
            class: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The class, or [`VZError::ClassNotFound`] when the running OS does not have it.
    pub(crate) fn get(&self) -> Result<ClassRef, VZError> {
        // ORDERING: Relaxed is enough: a registered class pointer never changes, and
        // objc_getClass is thread-safe and returns the same pointer to every caller.
        if let Some(class) = NonNull::new(self.class.load(Ordering::Relaxed)) {
            return Ok(ClassRef(class));
        }
        // The first contact with the runtime: from here on, an Objective-C exception
        // that reaches the crate is named (see `exception`).
        super::exception::install();
        let name = CStr::from_bytes_with_nul(self.name.as_bytes()).expect("class names end in NUL");
        match raw::lookup_class(name) {
            Some(class) => {
                // ORDERING: as above.
                self.class.store(class.as_ptr(), Ordering::Relaxed);
                Ok(ClassRef(class))
            }
            None => Err(VZError::ClassNotFound {
                class: &self.name[..self.name.len() - 1],
            }),
        }
    }
}

/// The class with a literal name, as `Result<ClassRef, VZError>`, cached per call site.
macro_rules! class {
    ($name:literal) => {{
        static CACHE: $crate::ffi::runtime::ClassCache =
            $crate::ffi::runtime::ClassCache::new(concat!($name, "\0"));
        CACHE.get()
    }};
}
pub(crate) use class;

/// A class object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub(crate) struct ClassRef(NonNull<Object>);

// SAFETY: class objects are registered once and then shared immutably by the runtime;
// every runtime function on them is thread-safe.
unsafe impl Send for ClassRef {}
// SAFETY: as above.
unsafe impl Sync for ClassRef {}

impl ClassRef {
    pub(crate) fn as_nonnull(self) -> NonNull<Object> {
        self.0
    }

    /// `+[Class alloc]`: an uninitialized instance for an `init…` method.
    pub(crate) fn alloc(self) -> Allocated {
        // SAFETY: every NSObject class answers +alloc with an id (+1) or nil.
        let object: *mut Object = unsafe { send(self.0, sel!("alloc"), ()) };
        Allocated(NonNull::new(object).expect("+alloc returned nil: out of memory"))
    }

    /// Whether the class itself answers `sel` (a class method or property).
    pub(crate) fn responds_to(self, sel: Sel) -> bool {
        raw::class_responds(raw::object_class(self.0), sel)
    }

    /// Whether instances of the class answer `sel`.
    pub(crate) fn instances_respond_to(self, sel: Sel) -> bool {
        raw::class_responds(self.0, sel)
    }
}

/// An owned reference (+1) to an Objective-C object: `Clone` retains, `Drop` releases.
///
/// `Id` is `Send`: retain and release are thread-safe, and the crate keeps its
/// invariant that objects bound to a virtual machine queue are only ever reached and
/// released on that queue (they live inside [`QueueBound`](super::dispatch::QueueBound)).
/// It is not `Sync`: Virtualization's objects are not thread-safe.
#[derive(Debug)]
#[repr(transparent)]
pub(crate) struct Id(NonNull<Object>);

// SAFETY: see the type's documentation.
unsafe impl Send for Id {}

impl Id {
    /// Adopts a +1 reference (from `alloc`/`new`/`copy`/`init`). `None` for nil.
    ///
    /// # Safety
    ///
    /// `object` is nil or a valid object whose +1 reference the caller gives away.
    pub(crate) unsafe fn from_owned(object: *mut Object) -> Option<Self> {
        NonNull::new(object).map(Self)
    }

    /// Retains a +0 reference (a getter or factory result). `None` for nil.
    ///
    /// # Safety
    ///
    /// `object` is nil or a valid object that stays alive until this call returns.
    pub(crate) unsafe fn retain(object: *mut Object) -> Option<Self> {
        let object = NonNull::new(object)?;
        // SAFETY: `object` is valid (caller); objc_retain returns its argument.
        unsafe { raw::objc_retain(object.as_ptr()) };
        Some(Self(object))
    }

    pub(crate) fn as_ptr(&self) -> *mut Object {
        self.0.as_ptr()
    }

    /// Whether `sel` is implemented by this object (`-respondsToSelector:`).
    pub(crate) fn responds_to(&self, sel: Sel) -> bool {
        // SAFETY: every NSObject implements -respondsToSelector:(SEL) -> BOOL.
        let yes: Bool = unsafe { send(self.0, sel!("respondsToSelector:"), (sel,)) };
        yes.as_bool()
    }

    /// Whether both handles point to the same object.
    pub(crate) fn is(&self, other: &Id) -> bool {
        self.0 == other.0
    }
}

impl Clone for Id {
    fn clone(&self) -> Self {
        // SAFETY: `self` owns a reference, so the object is alive.
        unsafe { raw::objc_retain(self.0.as_ptr()) };
        Self(self.0)
    }
}

impl Drop for Id {
    fn drop(&mut self) {
        // SAFETY: `self` owns exactly one reference, given up here.
        unsafe { raw::objc_release(self.0.as_ptr()) }
    }
}

/// The result of `+alloc`, waiting for an `init…` method, which consumes it.
#[derive(Debug)]
pub(crate) struct Allocated(NonNull<Object>);

impl Drop for Allocated {
    fn drop(&mut self) {
        // SAFETY: never initialized, so we still own the +1 from +alloc.
        unsafe { raw::objc_release(self.0.as_ptr()) }
    }
}

/// The selector of an [`objc_methods!`] declaration, registered on first use, and
/// whether its method family returns +1, worked out when the crate is compiled.
///
/// One static per declaration holds both: a separate `const` for the family cost
/// the compiler 152 ms of evaluation for the crate's 318 methods (`-Z self-profile`).
#[derive(Debug)]
pub(crate) struct MethodCache {
    sel: SelCache,
    /// [`returns_retained`] of the selector.
    pub(crate) retained: bool,
}

impl MethodCache {
    /// `name` must end with a NUL byte.
    pub(crate) const fn new(name: &'static str) -> Self {
        Self {
            sel: SelCache::new(name),
            retained: returns_retained(name),
        }
    }

    #[inline]
    pub(crate) fn sel(&self) -> Sel {
        self.sel.get()
    }
}

/// Whether a selector's method family returns a +1 reference: `alloc`, `new`,
/// `copy`, `mutableCopy` or `init`, matched on the first keyword after leading
/// underscores, and not followed by a lowercase letter (`initialize` is not `init`).
/// A trailing NUL (as in [`MethodCache::new`]) does not change the answer.
pub(crate) const fn returns_retained(selector: &str) -> bool {
    // Slice patterns rather than loops over bytes: the compiler evaluates this for
    // every declared method, and a pattern is a few steps where a loop is hundreds.
    let mut s = selector.as_bytes();
    while let [b'_', rest @ ..] = s {
        s = rest;
    }
    let after = match s {
        [b'a', b'l', b'l', b'o', b'c', after @ ..]
        | [b'n', b'e', b'w', after @ ..]
        | [b'c', b'o', b'p', b'y', after @ ..]
        | [
            b'm',
            b'u',
            b't',
            b'a',
            b'b',
            b'l',
            b'e',
            b'C',
            b'o',
            b'p',
            b'y',
            after @ ..,
        ]
        | [b'i', b'n', b'i', b't', after @ ..] => after,
        _ => return false,
    };
    !matches!(after, [b'a'..=b'z', ..])
}

/// Runs `f` inside an autorelease pool. Every public entry point that talks to
/// Objective-C from a caller's thread goes through this: Rust threads have no pool.
pub(crate) fn autoreleasepool<R>(f: impl FnOnce() -> R) -> R {
    let _pool = AutoreleasePool::enter();
    f()
}

impl AutoreleasePool {
    /// Opens a pool as [`autoreleasepool`] does, for a guard that pops it when it
    /// goes out of scope (see [`in_pool!`]).
    pub(crate) fn enter() -> Self {
        super::exception::forget_earlier();
        Self::push()
    }
}

/// Evaluates one expression inside an autorelease pool: the closure-free form of
/// [`autoreleasepool`], for the many one-line calls whose result is all that leaves
/// the pool. It compiles to two calls around the expression, where a closure is
/// compiled into a function and a copy of `autoreleasepool` of its own.
///
/// The expression must not contain `?` or `return`: inside this macro they leave the
/// enclosing function, not just the pool. Use [`autoreleasepool`] for those.
macro_rules! in_pool {
    ($e:expr) => {{
        let _pool = $crate::ffi::runtime::AutoreleasePool::enter();
        $e
    }};
}
pub(crate) use in_pool;

/// Sends `sel` with `args` to `receiver` and returns the result.
///
/// Debug builds first check that the receiver's class implements `sel` with these
/// argument and return types, and panic naming `-[Class sel]` if not.
///
/// An Objective-C exception that unwinds out of the send is reported on stderr with
/// its name, reason and selector, and in debug builds the receiver's class (see
/// [`super::exception`]).
///
/// # Safety
///
/// `receiver` is a live object (or class) whose method `sel` takes exactly `A` and
/// returns `R`, and the call is allowed on this thread (VM-bound objects: on the VM
/// queue). Ownership of returned objects is the caller's business.
#[inline]
#[track_caller]
pub(crate) unsafe fn send<A: MessageArgs, R: EncodeReturn>(
    receiver: NonNull<Object>,
    sel: Sel,
    args: A,
) -> R {
    let guard = before_send(receiver, sel, A::ENCODINGS, R::ENCODING);
    // SAFETY: forwarded from the caller.
    let result = unsafe { A::invoke(raw::objc_msgSend, receiver.as_ptr(), sel, args) };
    guard.done();
    result
}

/// The part of [`send`] before the call, the same for every signature, so compiled
/// once: the debug-build check, and the guard that reports an exception.
#[inline]
#[track_caller]
fn before_send(
    receiver: NonNull<Object>,
    sel: Sel,
    args: &'static [Encoding],
    ret: Encoding,
) -> Unwinding {
    #[cfg(debug_assertions)]
    super::encode::verify(receiver, sel, args, ret);
    // Debug builds name the class (already looked up by `verify`); release builds add
    // nothing to the send (see `exception`).
    #[cfg(debug_assertions)]
    let class = Some(raw::object_class(receiver));
    #[cfg(not(debug_assertions))]
    let class = {
        let _ = (receiver, args, ret); // read by the debug-build check only
        None
    };
    Unwinding::new(Site::Send { sel, class })
}

/// `struct objc_super` (the same layout on Apple's and GCC's runtimes).
#[repr(C)]
struct ObjcSuper {
    receiver: *mut Object,
    superclass: *mut Object,
}

/// Sends `sel` to `receiver`, starting the method lookup at `superclass`.
///
/// # Safety
///
/// As for [`send`], with `superclass` a superclass of the receiver's class.
pub(crate) unsafe fn send_super<A: MessageArgs, R: EncodeReturn>(
    receiver: NonNull<Object>,
    superclass: ClassRef,
    sel: Sel,
    args: A,
) -> R {
    let mut sup = ObjcSuper {
        receiver: receiver.as_ptr(),
        superclass: superclass.0.as_ptr(),
    };
    let guard = Unwinding::new(Site::Send {
        sel,
        class: Some(superclass.0),
    });
    // SAFETY: objc_msgSendSuper takes a `struct objc_super *` where objc_msgSend takes
    // the receiver and otherwise has the same contract; the rest is the caller's.
    let result = unsafe {
        A::invoke(
            raw::objc_msgSendSuper,
            ptr::addr_of_mut!(sup).cast(),
            sel,
            args,
        )
    };
    guard.done();
    result
}

/// A receiver in an [`objc_methods!`] declaration.
pub(crate) trait Receiver {
    fn receiver_ptr(self) -> NonNull<Object>;
}

impl Receiver for &Id {
    fn receiver_ptr(self) -> NonNull<Object> {
        self.0
    }
}

impl Receiver for ClassRef {
    fn receiver_ptr(self) -> NonNull<Object> {
        self.0
    }
}

/// `init…` consumes its receiver.
impl Receiver for Allocated {
    fn receiver_ptr(self) -> NonNull<Object> {
        let object = self.0;
        core::mem::forget(self);
        object
    }
}

/// An argument in an [`objc_methods!`] declaration, converted to its C form.
pub(crate) trait IntoArg {
    type Raw: Encode;
    fn into_arg(self) -> Self::Raw;
}

macro_rules! plain_args {
    ($($ty:ty),*) => {$(
        impl IntoArg for $ty {
            type Raw = $ty;
            fn into_arg(self) -> $ty {
                self
            }
        }
    )*};
}
plain_args!(
    usize,
    isize,
    u64,
    u32,
    i32,
    i16,
    f64,
    Sel,
    super::encode::CGSize,
    super::encode::CGPoint,
    super::encode::CGRect
);

impl IntoArg for bool {
    type Raw = Bool;
    fn into_arg(self) -> Bool {
        Bool::new(self)
    }
}

impl IntoArg for &Id {
    type Raw = *mut Object;
    fn into_arg(self) -> *mut Object {
        self.as_ptr()
    }
}

impl IntoArg for Option<&Id> {
    type Raw = *mut Object;
    fn into_arg(self) -> *mut Object {
        self.map_or(ptr::null_mut(), Id::as_ptr)
    }
}

/// A `NULL` pointer argument (a `void *` context nobody reads).
#[derive(Clone, Copy, Debug)]
pub(crate) struct NullPtr;

impl IntoArg for NullPtr {
    type Raw = *const c_void;
    fn into_arg(self) -> *const c_void {
        ptr::null()
    }
}

impl IntoArg for ClassRef {
    type Raw = RawClass;
    fn into_arg(self) -> RawClass {
        RawClass(self.0)
    }
}

/// A return type in an [`objc_methods!`] declaration, converted from its C form.
pub(crate) trait FromReturn: Sized {
    type Raw: EncodeReturn;
    /// # Safety
    ///
    /// `raw` is what the declared method returned; `retained` tells whether its
    /// family returns +1.
    unsafe fn from_return(raw: Self::Raw, retained: bool) -> Self;
}

macro_rules! plain_returns {
    ($($ty:ty),*) => {$(
        impl FromReturn for $ty {
            type Raw = $ty;
            unsafe fn from_return(raw: $ty, _retained: bool) -> $ty {
                raw
            }
        }
    )*};
}
plain_returns!(
    (),
    usize,
    isize,
    u64,
    u32,
    i32,
    f64,
    super::encode::CGSize,
    *const c_char,
    *const c_void
);

impl FromReturn for bool {
    type Raw = Bool;
    unsafe fn from_return(raw: Bool, _retained: bool) -> bool {
        raw.as_bool()
    }
}

impl FromReturn for Option<Id> {
    type Raw = *mut Object;
    unsafe fn from_return(raw: *mut Object, retained: bool) -> Self {
        if retained {
            // SAFETY: the method family returns +1 (caller).
            unsafe { Id::from_owned(raw) }
        } else {
            // SAFETY: a +0 result is alive until the enclosing pool pops (caller).
            unsafe { Id::retain(raw) }
        }
    }
}

/// Declares safe Rust functions for Objective-C methods.
///
/// ```text
/// objc_methods! {
///     /// `-[VZVirtualMachineConfiguration setCPUCount:]`
///     fn set_cpu_count(config: &Id, count: usize) = "setCPUCount:";
///     fn cpu_count(config: &Id) -> usize = "CPUCount";
/// }
/// ```
///
/// The receiver is `&Id`, a `ClassRef` (class methods) or an `Allocated` (`init…`,
/// which consumes it). Arguments implement `IntoArg`; the return type implements
/// `FromReturn`, and `Option<Id>` follows the selector's method family for ownership.
///
/// # Contract
///
/// Each declaration must match the Objective-C method exactly: selector, argument and
/// return types from `vz-api.tsv`, and the function must only be called with a
/// receiver of the class that declares it, on a thread the class allows. Debug builds
/// verify the selector and types against the runtime on first use. This is the same
/// contract as objc2's `extern_methods!`.
macro_rules! objc_methods {
    ($(
        $(#[$meta:meta])*
        $vis:vis fn $name:ident($recv:ident: $recv_ty:ty $(, $arg:ident: $arg_ty:ty)* $(,)?)
            $(-> $ret:ty)? = $sel:literal;
    )*) => {$(
        $(#[$meta])*
        #[allow(unsafe_code)]
        #[track_caller]
        $vis fn $name($recv: $recv_ty $(, $arg: $arg_ty)*) $(-> $ret)? {
            let receiver = $crate::ffi::runtime::Receiver::receiver_ptr($recv);
            let args = ($($crate::ffi::runtime::IntoArg::into_arg($arg),)*);
            static METHOD: $crate::ffi::runtime::MethodCache =
                $crate::ffi::runtime::MethodCache::new(concat!($sel, "\0"));
            // SAFETY: the declaration matches the method (the macro's contract, checked
            // in debug builds), and the caller passes a receiver of the declaring class.
            let raw = unsafe { $crate::ffi::runtime::send(receiver, METHOD.sel(), args) };
            // SAFETY: `raw` is what the method returned, and `retained` its family.
            unsafe { $crate::ffi::runtime::FromReturn::from_return(raw, METHOD.retained) }
        }
    )*};
}
pub(crate) use objc_methods;

/// Builds an Objective-C class at run time (for delegates).
#[derive(Debug)]
pub(crate) struct ClassBuilder(NonNull<Object>);

impl ClassBuilder {
    /// Starts a subclass of `superclass`; `None` if the name is taken.
    pub(crate) fn new(name: &CStr, superclass: ClassRef) -> Option<Self> {
        // SAFETY: valid superclass and NUL-terminated name.
        let class = unsafe { raw::objc_allocateClassPair(superclass.0.as_ptr(), name.as_ptr(), 0) };
        NonNull::new(class).map(Self)
    }

    /// Adds a pointer-sized instance variable, for per-instance Rust state.
    pub(crate) fn add_pointer_ivar(&mut self, name: &CStr) -> bool {
        let align = core::mem::align_of::<*mut c_void>().trailing_zeros() as u8;
        // SAFETY: the class is not registered yet, which class_addIvar requires.
        unsafe {
            raw::class_addIvar(
                self.0.as_ptr(),
                name.as_ptr(),
                core::mem::size_of::<*mut c_void>(),
                align,
                c"^v".as_ptr(),
            )
        }
        .as_bool()
    }

    /// Adds a method.
    ///
    /// # Safety
    ///
    /// `imp` is an `extern "C"` function whose signature is exactly the one `types`
    /// describes, receiver and `_cmd` first.
    pub(crate) unsafe fn add_method(&mut self, sel: Sel, imp: *const c_void, types: &CStr) -> bool {
        // SAFETY: the caller vouches for `imp` and `types`.
        unsafe { raw::class_addMethod(self.0.as_ptr(), sel, imp, types.as_ptr()) }.as_bool()
    }

    /// Declares conformance to a protocol, if the runtime knows it.
    pub(crate) fn add_protocol(&mut self, name: &CStr) {
        // SAFETY: NUL-terminated name; NULL means an unknown protocol, then skip.
        unsafe {
            let protocol = raw::objc_getProtocol(name.as_ptr());
            if !protocol.is_null() {
                raw::class_addProtocol(self.0.as_ptr(), protocol);
            }
        }
    }

    pub(crate) fn register(self) -> ClassRef {
        // SAFETY: allocated by objc_allocateClassPair and not yet registered.
        unsafe { raw::objc_registerClassPair(self.0.as_ptr()) };
        ClassRef(self.0)
    }
}

/// Stores `value` in the pointer instance variable `name` (added with
/// [`ClassBuilder::add_pointer_ivar`]) of `object`.
///
/// # Panics
///
/// When the object's class has no such instance variable.
pub(crate) fn set_pointer_ivar(object: &Id, name: &CStr, value: *const c_void) {
    let offset = ivar_offset(ClassRef(raw::object_class(object.0)), name)
        .expect("the class has the pointer instance variable");
    // SAFETY: the class (or a superclass) declares `name` as a pointer-sized,
    // pointer-aligned ivar at `offset`, inside the live object.
    unsafe {
        object
            .0
            .as_ptr()
            .cast::<u8>()
            .offset(offset)
            .cast::<*const c_void>()
            .write(value)
    }
}

/// Reads the pointer instance variable `name` of `object`.
///
/// # Safety
///
/// `object` is a live instance of a class made with [`ClassBuilder`] that has the
/// pointer ivar `name`.
pub(crate) unsafe fn pointer_ivar(object: NonNull<Object>, name: &CStr) -> *const c_void {
    let offset = ivar_offset(ClassRef(raw::object_class(object)), name)
        .expect("the class has the pointer instance variable");
    // SAFETY: as for set_pointer_ivar; guaranteed by the caller.
    unsafe {
        object
            .as_ptr()
            .cast::<u8>()
            .offset(offset)
            .cast::<*const c_void>()
            .read()
    }
}

/// `[super dealloc]` for a class made with [`ClassBuilder`] from `superclass`.
///
/// # Safety
///
/// Called once, at the end of the class's own `dealloc`, with its receiver.
pub(crate) unsafe fn dealloc_super(object: NonNull<Object>, superclass: ClassRef) {
    // SAFETY: -[NSObject dealloc] takes no arguments and returns void; the caller
    // guarantees this is the end of the object's dealloc.
    unsafe { send_super::<(), ()>(object, superclass, sel!("dealloc"), ()) }
}

/// The byte offset of a class's instance variable, for [`ClassBuilder`] state.
pub(crate) fn ivar_offset(class: ClassRef, name: &CStr) -> Option<isize> {
    // SAFETY: valid class and NUL-terminated name; NULL means no such ivar.
    unsafe {
        let ivar = raw::class_getInstanceVariable(class.0.as_ptr(), name.as_ptr());
        (!ivar.is_null()).then(|| raw::ivar_getOffset(ivar))
    }
}

#[cfg(test)]
mod tests {
    use super::returns_retained;

    #[test]
    fn method_families() {
        for s in [
            "alloc",
            "new",
            "copy",
            "mutableCopy",
            "init",
            "initWithURL:",
            "newFoo",
            "copyItems",
            "_init",
            "initWithConfiguration:queue:",
            "init_x",
            "mutableCopyWithZone:",
            "__new",
            "initWith:",
        ] {
            assert!(returns_retained(s), "{s}");
            assert!(returns_retained(&format!("{s}\0")), "{s} with NUL");
        }
        for s in [
            "initialize",
            "news",
            "copying",
            "fileURLWithPath:",
            "state",
            "",
            "randomLocallyAdministeredAddress",
            "allocator",
            "description",
            "___",
            "allo",
            "mutableCop",
            "in",
            "_initialize",
        ] {
            assert!(!returns_retained(s), "{s}");
            assert!(!returns_retained(&format!("{s}\0")), "{s} with NUL");
        }
    }
}
