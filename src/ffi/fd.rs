//! File-descriptor checks and duplication that `std` has no safe wrapper for.

use std::io;
use std::mem::{MaybeUninit, size_of};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use super::sys;

/// `getsockopt(fd, SOL_SOCKET, SO_TYPE)`: `SOCK_STREAM`, `SOCK_DGRAM`, ...;
/// `ENOTSOCK` for a descriptor that is not a socket, `EBADF` for a closed one.
pub(crate) fn socket_type(fd: BorrowedFd<'_>) -> io::Result<core::ffi::c_int> {
    let mut socket_type: core::ffi::c_int = 0;
    let mut len = size_of::<core::ffi::c_int>() as sys::SockLen;
    // SAFETY: `socket_type` and `len` are valid for writes and `len` is the size of
    // `socket_type`, as SO_TYPE (an int) requires; a bad descriptor is an error
    // return, never undefined behaviour.
    let rc = unsafe {
        sys::getsockopt(
            fd.as_raw_fd(),
            sys::SOL_SOCKET,
            sys::SO_TYPE,
            (&raw mut socket_type).cast::<core::ffi::c_void>(),
            &raw mut len,
        )
    };
    if rc == 0 {
        Ok(socket_type)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether the socket has a peer (`getpeername` succeeds; `ENOTCONN` means no).
pub(crate) fn is_connected(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut addr = MaybeUninit::<sys::SockaddrStorage>::uninit();
    let mut len = size_of::<sys::SockaddrStorage>() as sys::SockLen;
    // SAFETY: `addr` is writable for `len` bytes (a sockaddr_storage holds any
    // address); the kernel writes at most `len` bytes and we never read `addr`.
    let rc = unsafe {
        sys::getpeername(
            fd.as_raw_fd(),
            addr.as_mut_ptr().cast::<core::ffi::c_void>(),
            &raw mut len,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(sys::ENOTCONN) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// A close-on-exec duplicate of a descriptor owned by an Objective-C object (a vsock
/// connection), which closes its own when it goes away.
pub(crate) fn dup_owned_by_object(fd: i32) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(sys::EBADF));
    }
    // SAFETY: the descriptor belongs to an object the caller holds, so it stays open
    // for the duration of this borrow.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    borrowed.try_clone_to_owned()
}

/// `DKIOCGETBLOCKSIZE` (`<sys/disk.h>`: `_IOR('d', 24, uint32_t)`): a disk's sector
/// size, answered by `/dev/diskN` and `/dev/rdiskN` alike.
#[cfg(target_vendor = "apple")]
const SECTOR_SIZE_REQUEST: core::ffi::c_ulong = 0x4004_6418;
/// `BLKSSZGET` (`<linux/fs.h>`, `_IO(0x12, 104)`), the simulator's equivalent.
#[cfg(not(target_vendor = "apple"))]
const SECTOR_SIZE_REQUEST: core::ffi::c_ulong = 0x1268;

/// The sector size of the disk open as `fd`. A descriptor that is not a disk (a
/// regular file, `/dev/null`, `/dev/zero`, a terminal) fails with `ENOTTY`.
pub(crate) fn disk_sector_size(fd: BorrowedFd<'_>) -> io::Result<u32> {
    // Both requests write a 32-bit integer (uint32_t on Apple, int on Linux).
    let mut size: u32 = 0;
    // SAFETY: the request writes exactly one 32-bit integer through the pointer,
    // which is valid for that write; a descriptor of another kind fails with ENOTTY
    // and writes nothing.
    let rc = unsafe { sys::ioctl(fd.as_raw_fd(), SECTOR_SIZE_REQUEST, &raw mut size) };
    if rc == 0 {
        Ok(size)
    } else {
        Err(io::Error::last_os_error())
    }
}
