#![cfg(any(target_os = "macos", arcbox_vz_sim))]
//! Safe, async bindings to Apple's Virtualization.framework, with no dependencies
//! besides `libc` and no executor of their own.
#![deny(unsafe_code)]

mod bridge;
pub mod configuration;
#[allow(unsafe_code)] // method implementations receive raw pointers from the runtime
mod delegate;
pub mod device;
mod error;
#[allow(unsafe_code)]
mod ffi;
pub mod socket;
pub mod vm;

pub use configuration::*;
pub use device::*;
pub use error::{FrameworkError, VZError};
pub use socket::{VirtioSocketDevice, VsockListener, VsockStream};
pub use vm::{
    StartOptions, StopReason, VirtualMachine, VirtualMachineState, VmEvent, VmEvents, is_supported,
};
