//! `NSOperatingSystemVersion` returned by value: the one 24-byte struct return in
//! the crate (`-[VZMacOSRestoreImage operatingSystemVersion]`).
//!
//! The class exists only on Apple silicon, where AArch64 returns a struct larger than
//! 16 bytes indirectly through `x8` with plain `objc_msgSend` (vz-api.tsv;
//! `objc_msgSend_stret` does not exist there). The simulator runs on x86_64 Linux,
//! where the same struct comes back through a hidden first argument, which GCC's
//! runtime (and the simulator's dispatcher) handles in `objc_msgSend_stret`.

use core::ffi::c_void;
use core::ptr::NonNull;

use super::exception::{Site, Unwinding};
use super::runtime::{Id, Object, Sel};

/// `NSOperatingSystemVersion`: `{NSInteger major, minor, patch}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct OperatingSystemVersion {
    pub(crate) major: isize,
    pub(crate) minor: isize,
    pub(crate) patch: isize,
}

#[cfg(all(arcbox_vz_sim, target_arch = "x86_64"))]
unsafe extern "C-unwind" {
    fn objc_msgSend_stret();
}

/// Sends `sel`, a method without arguments returning `NSOperatingSystemVersion`, to
/// `object`.
///
/// Callers pass a selector and receiver that match: the method takes no argument and
/// returns the struct (vz-api.tsv `operatingSystemVersion`).
pub(crate) fn send_returning_version(object: &Id, sel: Sel) -> OperatingSystemVersion {
    let receiver: NonNull<Object> = NonNull::new(object.as_ptr()).expect("an Id is never nil");
    let guard = Unwinding::new(Site::Send { sel, class: None });
    #[cfg(not(all(arcbox_vz_sim, target_arch = "x86_64")))]
    let version = {
        type Method =
            unsafe extern "C-unwind" fn(*mut Object, *mut c_void) -> OperatingSystemVersion;
        let send: Method =
            // SAFETY: objc_msgSend has the signature of the method it dispatches to;
            // the method takes (self, _cmd) and returns the #[repr(C)] struct, which
            // AArch64 returns through x8 exactly as a C function declared this way does.
            unsafe { core::mem::transmute(super::runtime::raw::objc_msgSend as *const ()) };
        // SAFETY: the receiver is a live object whose class declares `sel` with this
        // signature (the caller's contract).
        unsafe { send(receiver.as_ptr(), sel.as_ptr()) }
    };
    #[cfg(all(arcbox_vz_sim, target_arch = "x86_64"))]
    let version = {
        type Method =
            unsafe extern "C-unwind" fn(*mut OperatingSystemVersion, *mut Object, *mut c_void);
        let mut out = OperatingSystemVersion::default();
        // SAFETY: objc_msgSend_stret takes the hidden struct pointer first, then
        // (self, _cmd), like the method it dispatches to.
        let send: Method = unsafe { core::mem::transmute(objc_msgSend_stret as *const ()) };
        // SAFETY: `out` is writable for the struct's 24 bytes; the receiver is a live
        // object whose class declares `sel` with this signature (the caller's contract).
        unsafe { send(&raw mut out, receiver.as_ptr(), sel.as_ptr()) };
        out
    };
    guard.done();
    version
}
