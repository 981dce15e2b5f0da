//! The errors of vmnet ([`VmnetStatus`], [`VmnetError`]): plain data that imports
//! nothing from the crate, so that `VZError` can carry them without depending on the
//! vmnet code in `vmnet.rs` (`tests/structure.rs` keeps the import graph acyclic).

use std::fmt;

/// A `vmnet_return_t` other than `VMNET_SUCCESS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VmnetStatus {
    /// `VMNET_FAILURE` (1001): a general failure.
    Failure,
    /// `VMNET_MEM_FAILURE` (1002): memory allocation failed.
    MemFailure,
    /// `VMNET_INVALID_ARGUMENT` (1003).
    InvalidArgument,
    /// `VMNET_SETUP_INCOMPLETE` (1004).
    SetupIncomplete,
    /// `VMNET_INVALID_ACCESS` (1005): permission denied.
    InvalidAccess,
    /// `VMNET_PACKET_TOO_BIG` (1006).
    PacketTooBig,
    /// `VMNET_BUFFER_EXHAUSTED` (1007).
    BufferExhausted,
    /// `VMNET_TOO_MANY_PACKETS` (1008).
    TooManyPackets,
    /// `VMNET_SHARING_SERVICE_BUSY` (1009): another service uses the subnet.
    SharingServiceBusy,
    /// `VMNET_NOT_AUTHORIZED` (1010).
    NotAuthorized,
    /// A code this crate does not know.
    Unknown(u32),
}

impl VmnetStatus {
    /// The status for a raw `vmnet_return_t` (which must not be `VMNET_SUCCESS`).
    pub fn from_raw(code: u32) -> Self {
        match code {
            1001 => Self::Failure,
            1002 => Self::MemFailure,
            1003 => Self::InvalidArgument,
            1004 => Self::SetupIncomplete,
            1005 => Self::InvalidAccess,
            1006 => Self::PacketTooBig,
            1007 => Self::BufferExhausted,
            1008 => Self::TooManyPackets,
            1009 => Self::SharingServiceBusy,
            1010 => Self::NotAuthorized,
            other => Self::Unknown(other),
        }
    }

    /// The raw `vmnet_return_t`.
    pub fn raw(self) -> u32 {
        match self {
            Self::Failure => 1001,
            Self::MemFailure => 1002,
            Self::InvalidArgument => 1003,
            Self::SetupIncomplete => 1004,
            Self::InvalidAccess => 1005,
            Self::PacketTooBig => 1006,
            Self::BufferExhausted => 1007,
            Self::TooManyPackets => 1008,
            Self::SharingServiceBusy => 1009,
            Self::NotAuthorized => 1010,
            Self::Unknown(code) => code,
        }
    }

    /// The C name, like `"VMNET_INVALID_ARGUMENT"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Failure => "VMNET_FAILURE",
            Self::MemFailure => "VMNET_MEM_FAILURE",
            Self::InvalidArgument => "VMNET_INVALID_ARGUMENT",
            Self::SetupIncomplete => "VMNET_SETUP_INCOMPLETE",
            Self::InvalidAccess => "VMNET_INVALID_ACCESS",
            Self::PacketTooBig => "VMNET_PACKET_TOO_BIG",
            Self::BufferExhausted => "VMNET_BUFFER_EXHAUSTED",
            Self::TooManyPackets => "VMNET_TOO_MANY_PACKETS",
            Self::SharingServiceBusy => "VMNET_SHARING_SERVICE_BUSY",
            Self::NotAuthorized => "VMNET_NOT_AUTHORIZED",
            Self::Unknown(_) => "an unknown vmnet_return_t",
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Self::Failure => "vmnet gave no reason",
            Self::MemFailure => {
                "out of memory; a sandboxed app also gets this on some macOS betas when its \
                 sandbox blocks the com.apple.NetworkSharing mach lookup"
            }
            Self::InvalidArgument => "vmnet refused a setting of the network configuration",
            Self::SetupIncomplete => "the network configuration is incomplete",
            Self::InvalidAccess => {
                "permission denied: check the process's entitlements \
                 (com.apple.security.virtualization; sandboxed apps: com.apple.vm.networking)"
            }
            Self::PacketTooBig => "a packet is larger than the MTU",
            Self::BufferExhausted => "vmnet ran out of buffers",
            Self::TooManyPackets => "too many packets at once",
            Self::SharingServiceBusy => {
                "another network or Internet Sharing already uses this subnet: choose another \
                 subnet, or release the other network"
            }
            Self::NotAuthorized => {
                "this process may not use vmnet: check its code signature and entitlements"
            }
            Self::Unknown(_) => "a status newer than this crate",
        }
    }
}

impl fmt::Display for VmnetStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.raw())
    }
}

/// A vmnet function failed: which one, and its `vmnet_return_t`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VmnetError {
    /// The C function, like `"vmnet_network_create"`.
    pub operation: &'static str,
    /// What it returned.
    pub status: VmnetStatus,
}

impl fmt::Display for VmnetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed with {}: {}",
            self.operation,
            self.status,
            self.status.hint()
        )
    }
}

impl std::error::Error for VmnetError {}
