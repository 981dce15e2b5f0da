#![cfg(any(target_os = "macos", arcbox_vz_sim))]
//! Safe, async bindings to Apple's Virtualization.framework: create, run and talk to
//! Linux virtual machines on macOS. No dependencies, not even `libc`, and no
//! executor of its own: every future is a plain `Send` future that tokio, smol,
//! futures-executor or a hand-written `block_on` can drive.
//!
//! # Quick start
//!
//! ```no_run
//! use arcbox_vz::*;
//!
//! # async fn demo() -> Result<(), VZError> {
//! let mut config = VirtualMachineConfiguration::new()?;
//! let mut boot = LinuxBootLoader::new("/path/to/Image")?; // uncompressed on Apple silicon
//! boot.set_initial_ramdisk("/path/to/initramfs.cpio.gz")?
//!     .set_command_line("console=hvc0")?;
//! let console = FileHandleSerialPortAttachment::new(Some(std::io::stdin()), Some(std::io::stdout()))?;
//! config
//!     .set_cpu_count(2)
//!     .set_memory_size(512 * 1024 * 1024)
//!     .set_boot_loader(boot)
//!     .set_serial_ports(vec![VirtioConsoleDeviceSerialPortConfiguration::new(console)])
//!     .set_socket_devices(vec![VirtioSocketDeviceConfiguration::new()]);
//!
//! let vm = config.build()?; // validates first
//! vm.start().await?;
//!
//! // Talk to a service in the guest over vsock.
//! let stream = vm.socket_devices()[0].connect(1024).await?;
//!
//! vm.request_stop()?; // like pressing the power button
//! println!("stopped: {:?}", vm.wait_until_stopped().await);
//! # drop(stream); Ok(()) }
//! ```
//!
//! The binary must be signed with the `com.apple.security.virtualization`
//! entitlement (`codesign --force --sign - --entitlements entitlements.plist BINARY`);
//! otherwise [`VirtualMachineConfiguration::validate`] fails with `VZErrorDomain`
//! code 2. See the README for a cargo runner that signs automatically.
//!
//! # Map of the crate
//!
//! The public modules:
//!
//! - [`configuration`]: [`VirtualMachineConfiguration`], boot loaders, the platform;
//!   on Apple silicon also macOS guests (`MacOSRestoreImage`, `MacPlatformConfiguration`,
//!   and `MacOSBundle`, the four files of an installed guest kept together).
//! - [`device`]: one module per device family, with the runtime device handles.
//! - [`vm`]: [`VirtualMachine`], its lifecycle, [`VmEvent`]s and [`StopReason`]s; on
//!   Apple silicon also `MacOSInstaller`, which installs macOS into a virtual machine.
//! - [`socket`]: vsock connections and listeners.
//! - [`gui`]: a window onto a running virtual machine (AppKit, on the main thread).
//! - [`VZError`]: the one error type.
//!
//! The files of `src/`, bottom to top. `tests/structure.rs` checks that their imports
//! form no circle, that `ffi/` uses nothing above the errors, and that the errors
//! import only files that import nothing.
//!
//! 1. `ffi/`, the raw layer: every `unsafe` line that talks to Objective-C, blocks,
//!    libdispatch and vmnet. `objc.rs` (the runtime's own types and functions) is its
//!    bottom, then `encode.rs`, `exception.rs`, `runtime.rs` (message sending) and
//!    the rest, among them `delegate.rs`, which defines the classes of the delegates
//!    above without knowing them, and `sys.rs`, the few C library calls the crate
//!    makes (declared there, and checked against `libc` when the tests compile).
//! 2. `error.rs` and `error_code.rs`, used by everyone; they import only files that
//!    import nothing (`vm/state.rs` for `VirtualMachineState`,
//!    `device/vmnet_error.rs` for `VmnetError`). `bridge.rs`, the completion channel
//!    that wakes the crate's futures, uses only them.
//! 3. `configuration/` and `device/`, the builders. They look up in two places:
//!    `VirtualMachineConfiguration::build` makes the [`VirtualMachine`], and the
//!    runtime device handles hold the VM's `DeviceHandle`; `vm/handle.rs` and what
//!    it uses do not name them back.
//! 4. The running virtual machine and vsock, `vm/` and `socket/`, each with the
//!    Objective-C delegate classes it installs (`vm/delegate.rs`,
//!    `socket/delegate.rs`, ...), and `gui.rs`.
//! 5. `bench.rs`: the micro-benchmarks, built only with `--cfg arcbox_vz_bench`.
//!
//! # Threading and safety
//!
//! Each virtual machine owns a private serial dispatch queue, and every call into the
//! framework for it runs there (the framework traps on any other thread). Inputs are
//! validated in Rust before the framework sees them: an Objective-C exception would
//! abort the process, so none is ever provoked. Features newer than macOS 11 are
//! checked at run time and return [`VZError::Unsupported`] on older systems.
//!
//! Supported: macOS 11 or later, Apple silicon and Intel. MSRV: Rust 1.85.
#![deny(unsafe_code)]

#[cfg(arcbox_vz_bench)]
#[allow(unsafe_code)] // calls the simulator's C benchmark helpers
mod bench;
#[allow(unsafe_code)] // a lock-free one-shot channel, model-checked with loom and run under Miri
mod bridge;
pub mod configuration;
pub mod device;
mod error;
mod error_code;
#[allow(unsafe_code)]
mod ffi;
pub mod gui;
pub mod socket;
pub mod vm;

/// The micro-benchmarks (`scripts/bench.sh`); not part of the API.
#[cfg(arcbox_vz_bench)]
#[doc(hidden)]
pub use bench::run as __run_benchmarks;

/// The addresses of the crate's dispatch work functions, for the simulator's idle
/// test (`tests/idle.rs`); not part of the API.
#[cfg(arcbox_vz_sim)]
#[doc(hidden)]
pub use ffi::dispatch::work_functions as __sim_work_functions;

pub use configuration::*;
pub use device::*;
pub use error::{FrameworkError, VZError};
pub use error_code::VZErrorCode;
pub use socket::{Accept, VirtioSocketDevice, VsockListener, VsockStream};
#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
pub use vm::{InstallProgress, MacOSInstaller};
pub use vm::{
    StartOptions, StopReason, VirtualMachine, VirtualMachineState, VmEvent, VmEvents,
    WaitUntilStopped, is_supported,
};
