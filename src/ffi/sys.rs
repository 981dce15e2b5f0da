//! The few C library functions and constants the crate uses, declared here so that
//! the crate depends on nothing: the `libc` crate cost a clean build about 1.6 s
//! before this crate could start (BENCHMARKS.md).
//!
//! Every item is checked at compile time against `libc` (a dev-dependency only), in
//! the `checked_against_libc` module below: constants must be equal, function types
//! must match the `libc` declarations, and `sockaddr_storage` must have the same size
//! and alignment. That module is compiled for every target CI builds the tests for:
//! Linux (the simulator), `aarch64-apple-darwin` and `x86_64-apple-darwin`.
//!
//! Values for Apple targets follow `<sys/errno.h>`, `<sys/fcntl.h>`,
//! `<sys/socket.h>` and `<dlfcn.h>`; for Linux (x86_64 and aarch64), the kernel's
//! generic values as glibc exposes them.

use core::ffi::{c_int, c_ulong, c_void};

/// `socklen_t`.
pub(crate) type SockLen = u32;

/// `struct sockaddr_storage`: room for any socket address. Only its size and
/// alignment matter here (the crate never reads an address).
#[repr(C, align(8))]
pub(crate) struct SockaddrStorage {
    _bytes: [u8; 128],
}

/// `EBADF`: not an open descriptor.
pub(crate) const EBADF: c_int = 9;
/// `ENOTSOCK`: a descriptor that is not a socket.
#[cfg(target_vendor = "apple")]
pub(crate) const ENOTSOCK: c_int = 38;
#[cfg(not(target_vendor = "apple"))]
pub(crate) const ENOTSOCK: c_int = 88;
/// `ENOTCONN`: a socket with no peer.
#[cfg(target_vendor = "apple")]
pub(crate) const ENOTCONN: c_int = 57;
#[cfg(not(target_vendor = "apple"))]
pub(crate) const ENOTCONN: c_int = 107;

/// `O_NONBLOCK`, for `open`.
#[cfg(target_vendor = "apple")]
pub(crate) const O_NONBLOCK: c_int = 0x4;
#[cfg(not(target_vendor = "apple"))]
pub(crate) const O_NONBLOCK: c_int = 0o4000;

/// `SOL_SOCKET` and `SO_TYPE`, for `getsockopt`.
#[cfg(target_vendor = "apple")]
pub(crate) const SOL_SOCKET: c_int = 0xffff;
#[cfg(not(target_vendor = "apple"))]
pub(crate) const SOL_SOCKET: c_int = 1;
#[cfg(target_vendor = "apple")]
pub(crate) const SO_TYPE: c_int = 0x1008;
#[cfg(not(target_vendor = "apple"))]
pub(crate) const SO_TYPE: c_int = 3;

/// Socket types, as `getsockopt(SO_TYPE)` reports them.
pub(crate) const SOCK_STREAM: c_int = 1;
pub(crate) const SOCK_DGRAM: c_int = 2;
pub(crate) const SOCK_RAW: c_int = 3;
pub(crate) const SOCK_SEQPACKET: c_int = 5;

/// `dlopen` modes.
pub(crate) const RTLD_LAZY: c_int = 1;
#[cfg(target_vendor = "apple")]
pub(crate) const RTLD_LOCAL: c_int = 0x4;
#[cfg(not(target_vendor = "apple"))]
pub(crate) const RTLD_LOCAL: c_int = 0;

/// `RTLD_DEFAULT`: `dlsym` through every loaded image (`(void *)-2` on Apple).
#[cfg(target_vendor = "apple")]
pub(crate) fn rtld_default() -> *mut c_void {
    core::ptr::without_provenance_mut(-2_isize as usize)
}

unsafe extern "C" {
    pub(crate) fn getsockopt(
        socket: c_int,
        level: c_int,
        name: c_int,
        value: *mut c_void,
        len: *mut SockLen,
    ) -> c_int;
    /// `address` is a `struct sockaddr *`; any socket address buffer may be passed.
    pub(crate) fn getpeername(socket: c_int, address: *mut c_void, len: *mut SockLen) -> c_int;
    pub(crate) fn ioctl(fd: c_int, request: c_ulong, ...) -> c_int;
    // The simulator answers these with stand-ins of its own (ffi/vmnet.rs).
    #[cfg(not(arcbox_vz_sim))]
    pub(crate) fn dlopen(path: *const core::ffi::c_char, mode: c_int) -> *mut c_void;
    #[cfg(not(arcbox_vz_sim))]
    pub(crate) fn dlsym(handle: *mut c_void, symbol: *const core::ffi::c_char) -> *mut c_void;
    #[cfg(target_vendor = "apple")]
    pub(crate) fn pthread_main_np() -> c_int;
    #[cfg(not(target_vendor = "apple"))]
    pub(crate) fn gettid() -> c_int;
    #[cfg(not(target_vendor = "apple"))]
    pub(crate) fn getpid() -> c_int;
}

/// Compile-time checks of every item above against the `libc` crate, for the target
/// being compiled. A wrong value or type fails the build of the tests.
#[cfg(test)]
mod checked_against_libc {
    use core::ffi::{c_int, c_ulong, c_void};
    use core::mem::{align_of, size_of};

    macro_rules! same_constants {
        ($($name:ident),* $(,)?) => {$(
            const _: () = assert!(
                super::$name == libc::$name,
                concat!(stringify!($name), " differs from libc's")
            );
        )*};
    }
    same_constants!(
        EBADF,
        ENOTSOCK,
        ENOTCONN,
        O_NONBLOCK,
        SOL_SOCKET,
        SO_TYPE,
        SOCK_STREAM,
        SOCK_DGRAM,
        SOCK_RAW,
        SOCK_SEQPACKET,
        RTLD_LAZY,
        RTLD_LOCAL,
    );

    const _: () = assert!(size_of::<super::SockLen>() == size_of::<libc::socklen_t>());
    const _: () = assert!(
        size_of::<super::SockaddrStorage>() == size_of::<libc::sockaddr_storage>()
            && align_of::<super::SockaddrStorage>() == align_of::<libc::sockaddr_storage>()
    );

    // Each pair: ours, then libc's, both as one written-out function type. Where
    // libc takes a `struct sockaddr *`, ours takes `void *` (the same pointer ABI).
    type GetSockOpt =
        unsafe extern "C" fn(c_int, c_int, c_int, *mut c_void, *mut libc::socklen_t) -> c_int;
    const _: [GetSockOpt; 2] = [super::getsockopt, libc::getsockopt];
    const _: unsafe extern "C" fn(c_int, *mut c_void, *mut libc::socklen_t) -> c_int =
        super::getpeername;
    const _: unsafe extern "C" fn(c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> c_int =
        libc::getpeername;
    type Ioctl = unsafe extern "C" fn(c_int, c_ulong, ...) -> c_int;
    const _: [Ioctl; 2] = [super::ioctl, libc::ioctl];
    #[cfg(not(arcbox_vz_sim))]
    const _: [unsafe extern "C" fn(*const core::ffi::c_char, c_int) -> *mut c_void; 2] =
        [super::dlopen, libc::dlopen];
    #[cfg(not(arcbox_vz_sim))]
    const _: [unsafe extern "C" fn(*mut c_void, *const core::ffi::c_char) -> *mut c_void; 2] =
        [super::dlsym, libc::dlsym];
    #[cfg(target_vendor = "apple")]
    const _: [unsafe extern "C" fn() -> c_int; 2] = [super::pthread_main_np, libc::pthread_main_np];
    #[cfg(not(target_vendor = "apple"))]
    const _: [unsafe extern "C" fn() -> libc::pid_t; 4] =
        [super::gettid, libc::gettid, super::getpid, libc::getpid];

    #[cfg(target_vendor = "apple")]
    #[test]
    fn rtld_default_is_libcs() {
        assert_eq!(super::rtld_default(), libc::RTLD_DEFAULT);
    }
}
