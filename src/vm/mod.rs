//! The running virtual machine: `VZVirtualMachine`, its lifecycle, why it stopped, and
//! its runtime devices.
//!
//! # Threading
//!
//! Each [`VirtualMachine`] owns a private serial dispatch queue, and every call into
//! the framework (getters, setters, lifecycle, device control, the final release)
//! runs on that queue; Virtualization.framework traps on any other thread. The
//! handle itself is `Send + Sync` and cheap to clone, and every future it returns is
//! `Send` and works with any executor: completion handlers run on the VM queue and
//! wake the future through the crate's own waker bridge.
//!
//! # Cancellation
//!
//! Every future of this module and of [`socket`](crate::socket) follows one
//! contract: an operation is sent to the framework by a work item on the VM queue.
//! Dropped before that work item runs, the future cancels it (it is never sent);
//! dropped after, the operation completes in the framework and only its result is
//! discarded (a late vsock connection is closed). The table below gives each one.
//!
//! # Cancellation of each future
//!
//! | future | dropped before the queue reaches it | dropped after |
//! |---|---|---|
//! | `start`, `start_with_options`, `stop`, `pause`, `resume`, `save_machine_state`, `restore_machine_state` | not sent | completes; result discarded |
//! | [`VirtioSocketDevice::connect`](crate::VirtioSocketDevice::connect) | no connection is made | the connection is made and closed |
//! | [`VsockListener::accept`](crate::VsockListener::accept) | — | nothing is taken: the next connection stays for the next `accept` |
//! | [`wait_until_stopped`](VirtualMachine::wait_until_stopped), [`VmEvents::next`] | — | its waiter is removed at once |
//! | [`USBController::attach`](crate::USBController::attach), [`detach`](crate::USBController::detach) | not sent | completes; result discarded |
//! | `MacOSInstaller::install` (Apple silicon) | not sent; the installer can still install | the install goes on; result discarded |
//! | `InstallProgress::next` (Apple silicon) | — | its waker is removed at once |
//!
//! # Teardown
//!
//! When the last handle to a virtual machine goes away (the [`VirtualMachine`]
//! clones and every runtime device handle and listener, which keep it alive), the
//! release is queued as a work item of its own behind everything already queued:
//! never inline in a waker, a completion handler or a delegate method. Event streams
//! then end, and a [`VsockStream`](crate::VsockStream) still open reads end-of-file.

#[allow(unsafe_code)] // method implementations receive raw pointers from the runtime
mod console_delegate;
#[allow(unsafe_code)] // method implementations receive raw pointers from the runtime
mod delegate;
mod devices;
#[allow(unsafe_code)] // method implementations receive raw pointers from the runtime
mod display_observer;
mod events;
mod handle;
mod lifecycle;
mod machine;
#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
#[allow(unsafe_code)] // the progress observer receives raw pointers from the runtime
mod macos_installer;
#[allow(unsafe_code)] // method implementations receive raw pointers from the runtime
mod nbd_delegate;
pub(crate) mod state;

pub use events::{StopReason, VmEvent, VmEvents};
pub(crate) use handle::DeviceHandle;
pub use handle::{VirtualMachine, WaitUntilStopped, is_supported};
pub use lifecycle::StartOptions;
#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
pub use macos_installer::{InstallProgress, MacOSInstaller};
pub use state::VirtualMachineState;
