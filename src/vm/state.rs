//! `VZVirtualMachineState`, on its own so that the error type can name it without
//! depending on the running-VM layer.

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
