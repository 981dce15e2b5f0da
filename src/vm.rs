//! The running virtual machine.

use std::fmt;

/// `VZVirtualMachineState`: where a virtual machine is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VirtualMachineState {
    /// `VZVirtualMachineStateStopped` (0): not running; can start.
    #[doc(alias = "VZVirtualMachineStateStopped")]
    Stopped,
    /// `VZVirtualMachineStateRunning` (1).
    #[doc(alias = "VZVirtualMachineStateRunning")]
    Running,
    /// `VZVirtualMachineStatePaused` (2).
    #[doc(alias = "VZVirtualMachineStatePaused")]
    Paused,
    /// `VZVirtualMachineStateError` (3): stopped because of an error; can start again.
    #[doc(alias = "VZVirtualMachineStateError")]
    Error,
    /// `VZVirtualMachineStateStarting` (4).
    #[doc(alias = "VZVirtualMachineStateStarting")]
    Starting,
    /// `VZVirtualMachineStatePausing` (5).
    #[doc(alias = "VZVirtualMachineStatePausing")]
    Pausing,
    /// `VZVirtualMachineStateResuming` (6).
    #[doc(alias = "VZVirtualMachineStateResuming")]
    Resuming,
    /// `VZVirtualMachineStateStopping` (7, macOS 12).
    #[doc(alias = "VZVirtualMachineStateStopping")]
    Stopping,
    /// `VZVirtualMachineStateSaving` (8, macOS 14).
    #[doc(alias = "VZVirtualMachineStateSaving")]
    Saving,
    /// `VZVirtualMachineStateRestoring` (9, macOS 14).
    #[doc(alias = "VZVirtualMachineStateRestoring")]
    Restoring,
    /// A value this crate does not know (from a newer macOS).
    Unknown(isize),
}

impl VirtualMachineState {
    pub(crate) fn from_raw(raw: isize) -> Self {
        match raw {
            0 => Self::Stopped,
            1 => Self::Running,
            2 => Self::Paused,
            3 => Self::Error,
            4 => Self::Starting,
            5 => Self::Pausing,
            6 => Self::Resuming,
            7 => Self::Stopping,
            8 => Self::Saving,
            9 => Self::Restoring,
            other => Self::Unknown(other),
        }
    }
}

impl fmt::Display for VirtualMachineState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Stopped => "stopped",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Error => "stopped with an error",
            Self::Starting => "starting",
            Self::Pausing => "pausing",
            Self::Resuming => "resuming",
            Self::Stopping => "stopping",
            Self::Saving => "saving its state",
            Self::Restoring => "restoring its state",
            Self::Unknown(raw) => return write!(f, "in unknown state {raw}"),
        };
        f.write_str(name)
    }
}

use std::sync::Arc;

use crate::configuration::base_class;
use crate::error::VZError;
use crate::ffi::dispatch::{Queue, QueueBound};
use crate::ffi::runtime::{Allocated, ClassRef, Id, autoreleasepool, class, objc_methods};

objc_methods! {
    fn vm_init(vm: Allocated, config: &Id, queue: &Queue) -> Option<Id> =
        "initWithConfiguration:queue:";
    fn vm_is_supported(class: ClassRef) -> bool = "isSupported";
}

/// Whether this Mac can run virtual machines (`+[VZVirtualMachine isSupported]`):
/// false, for example, inside a virtual machine without nested virtualization.
pub fn is_supported() -> bool {
    autoreleasepool(|| vm_is_supported(base_class(class!("VZVirtualMachine"))))
}

/// A virtual machine, created by [`VirtualMachineConfiguration::build`](crate::VirtualMachineConfiguration::build).
#[derive(Clone, Debug)]
pub struct VirtualMachine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    vm: QueueBound<Id>,
}

impl VirtualMachine {
    pub(crate) fn from_configuration(config: &Id) -> Result<Self, VZError> {
        let queue = Queue::new_serial("arcbox-vz.vm");
        let class = base_class(class!("VZVirtualMachine"));
        let q = queue.clone();
        let config = config.clone();
        let vm = queue
            .exec_sync(move || vm_init(class.alloc(), &config, &q))
            .ok_or(VZError::ClassNotFound { class: "VZVirtualMachine" })?;
        Ok(Self {
            inner: Arc::new(Inner {
                vm: QueueBound::new(queue, vm),
            }),
        })
    }
}
