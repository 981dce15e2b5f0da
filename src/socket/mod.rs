//! vsock: the runtime `VZVirtioSocketDevice`, connections as [`VsockStream`]s, and
//! [`VsockListener`]s for connections from the guest.
//!
//! A connection's descriptor belongs to its `VZVirtioSocketConnection`, which closes
//! it when it goes away. Every stream here owns its own `dup` (close-on-exec), made
//! inside the framework's callback, so it outlives the connection object and a late
//! callback after its future was dropped closes it instead of leaking it.

//!
//! # Lifetimes
//!
//! A [`VirtioSocketDevice`] and a [`VsockListener`] keep their virtual machine alive,
//! and every call they make runs on its queue with a handle to it. A
//! [`VsockStream`] does not: once the virtual machine is gone (or the guest closes
//! its end), reads return end-of-file and writes fail with an I/O error.

#[allow(unsafe_code)] // method implementations receive raw pointers from the runtime
mod delegate;
mod device;
mod listener;
mod stream;

pub use device::VirtioSocketDevice;
pub use listener::{Accept, VsockListener};
pub use stream::VsockStream;
