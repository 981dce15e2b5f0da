//! [`VZErrorCode`]: the codes of `VZErrorDomain`, Virtualization.framework's own
//! errors.

use std::fmt;
use std::hash::{Hash, Hasher};

/// Declares [`VZErrorCode`] from one list: variant, raw value, Objective-C name and
/// the first macOS that has the code, so the enum, [`VZErrorCode::raw`],
/// [`VZErrorCode::name`] and [`VZErrorCode::min_macos`] cannot disagree.
macro_rules! vz_error_codes {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident = $raw:literal, $name:literal, $since:literal;
    )*) => {
        /// A `VZErrorCode`: the `code` of an `NSError` whose domain is `VZErrorDomain`.
        ///
        /// Get one from [`FrameworkError::vz_code`](crate::FrameworkError::vz_code).
        /// A code this crate does not know (a newer macOS) is kept in
        /// [`Other`](Self::Other). Equality and hashing compare [`raw`](Self::raw)
        /// values, so `Other(1)` equals [`Internal`](Self::Internal);
        /// [`from_raw`](Self::from_raw) never returns `Other` for a known code.
        ///
        /// ```
        /// # #[cfg(any(target_os = "macos", arcbox_vz_sim))]
        /// # fn main() {
        /// use arcbox_vz::VZErrorCode;
        ///
        /// assert_eq!(VZErrorCode::from_raw(2), VZErrorCode::InvalidVirtualMachineConfiguration);
        /// assert_eq!(VZErrorCode::OutOfDiskSpace.raw(), 8);
        /// assert_eq!(VZErrorCode::OutOfDiskSpace.min_macos(), Some("13.0"));
        /// assert_eq!(VZErrorCode::from_raw(99), VZErrorCode::Other(99));
        /// # }
        /// # #[cfg(not(any(target_os = "macos", arcbox_vz_sim)))]
        /// # fn main() {}
        /// ```
        #[derive(Clone, Copy, Debug)]
        #[non_exhaustive]
        pub enum VZErrorCode {
            $(
                $(#[doc = $doc])*
                #[doc = ""]
                #[doc = concat!("`", $name, "` (", stringify!($raw), "), macOS ", $since, ".")]
                #[doc(alias = $name)]
                $variant,
            )*
            /// A code this crate does not name, with its raw value.
            Other(isize),
        }

        impl VZErrorCode {
            /// Every code this crate names, in the SDK's order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// The `NSInteger` value of the code.
            pub const fn raw(self) -> isize {
                match self {
                    $(Self::$variant => $raw,)*
                    Self::Other(raw) => raw,
                }
            }

            /// The Objective-C name, for example `"VZErrorInternal"`; `None` for
            /// [`Other`](Self::Other).
            pub const fn name(self) -> Option<&'static str> {
                match Self::from_raw(self.raw()) {
                    $(Self::$variant => Some($name),)*
                    Self::Other(_) => None,
                }
            }

            /// The first macOS release that reports the code, for example `"13.0"`;
            /// `None` for [`Other`](Self::Other).
            pub const fn min_macos(self) -> Option<&'static str> {
                match Self::from_raw(self.raw()) {
                    $(Self::$variant => Some($since),)*
                    Self::Other(_) => None,
                }
            }

            /// The code with the raw value `raw`: a named variant when this crate
            /// knows it, [`Other`](Self::Other) otherwise.
            pub const fn from_raw(raw: isize) -> Self {
                match raw {
                    $($raw => Self::$variant,)*
                    _ => Self::Other(raw),
                }
            }
        }
    };
}

vz_error_codes! {
    /// An internal error, for example the virtual machine stopped unexpectedly.
    Internal = 1, "VZErrorInternal", "11.0";
    /// The configuration is invalid. Also what `validate` reports when the process
    /// lacks the `com.apple.security.virtualization` entitlement.
    InvalidVirtualMachineConfiguration = 2, "VZErrorInvalidVirtualMachineConfiguration", "11.0";
    /// The virtual machine is in a state that does not allow the operation.
    InvalidVirtualMachineState = 3, "VZErrorInvalidVirtualMachineState", "11.0";
    /// The virtual machine cannot move to the requested state, for example a start
    /// when it cannot start.
    InvalidVirtualMachineStateTransition = 4, "VZErrorInvalidVirtualMachineStateTransition", "11.0";
    /// The disk image is invalid.
    InvalidDiskImage = 5, "VZErrorInvalidDiskImage", "11.0";
    /// Too many virtual machines are running (at most two macOS guests).
    VirtualMachineLimitExceeded = 6, "VZErrorVirtualMachineLimitExceeded", "12.0";
    /// A network error.
    NetworkError = 7, "VZErrorNetworkError", "13.0";
    /// The host is out of disk space.
    OutOfDiskSpace = 8, "VZErrorOutOfDiskSpace", "13.0";
    /// The operation was cancelled.
    OperationCancelled = 9, "VZErrorOperationCancelled", "13.0";
    /// The operation is not supported.
    NotSupported = 10, "VZErrorNotSupported", "13.0";
    /// Saving the virtual machine's state failed.
    Save = 11, "VZErrorSave", "14.0";
    /// Restoring the virtual machine's state failed.
    Restore = 12, "VZErrorRestore", "14.0";
    /// The restore image catalog could not be loaded.
    RestoreImageCatalogLoadFailed = 10001, "VZErrorRestoreImageCatalogLoadFailed", "13.0";
    /// The restore image catalog is invalid.
    InvalidRestoreImageCatalog = 10002, "VZErrorInvalidRestoreImageCatalog", "13.0";
    /// The restore image catalog has no restore image this host supports.
    NoSupportedRestoreImagesInCatalog = 10003, "VZErrorNoSupportedRestoreImagesInCatalog", "13.0";
    /// The restore image could not be loaded.
    RestoreImageLoadFailed = 10004, "VZErrorRestoreImageLoadFailed", "13.0";
    /// The restore image is invalid.
    InvalidRestoreImage = 10005, "VZErrorInvalidRestoreImage", "13.0";
    /// The installation needs an update of the host first.
    InstallationRequiresUpdate = 10006, "VZErrorInstallationRequiresUpdate", "13.0";
    /// The installation failed.
    InstallationFailed = 10007, "VZErrorInstallationFailed", "13.0";
    /// The negotiation with the network block device (NBD) server failed.
    NetworkBlockDeviceNegotiationFailed = 20001, "VZErrorNetworkBlockDeviceNegotiationFailed", "14.0";
    /// The network block device (NBD) server disconnected.
    NetworkBlockDeviceDisconnected = 20002, "VZErrorNetworkBlockDeviceDisconnected", "14.0";
    /// The virtual machine has no USB controller for the device.
    USBControllerNotFound = 30001, "VZErrorUSBControllerNotFound", "15.0";
    /// The device is already attached.
    DeviceAlreadyAttached = 30002, "VZErrorDeviceAlreadyAttached", "15.0";
    /// The device could not be initialized.
    DeviceInitializationFailure = 30003, "VZErrorDeviceInitializationFailure", "15.0";
    /// The device was not found.
    DeviceNotFound = 30004, "VZErrorDeviceNotFound", "15.0";
    /// Guest provisioning: the full name is invalid. In the macOS 27 beta SDK.
    GuestProvisioningInvalidFullName = 40001, "VZErrorGuestProvisioningInvalidFullName", "27.0";
    /// Guest provisioning: the user name is invalid. In the macOS 27 beta SDK.
    GuestProvisioningInvalidUsername = 40002, "VZErrorGuestProvisioningInvalidUsername", "27.0";
    /// Guest provisioning: the password is invalid. In the macOS 27 beta SDK.
    GuestProvisioningInvalidPassword = 40003, "VZErrorGuestProvisioningInvalidPassword", "27.0";
    /// Enrolling the EFI Secure Boot keys failed. In the macOS 27 beta SDK.
    EFISecureBootEnrollmentFailed = 50001, "VZErrorEFISecureBootEnrollmentFailed", "27.0";
    /// An EFI variable is inaccessible. In the macOS 27 beta SDK.
    EFIVariableInaccessible = 50002, "VZErrorEFIVariableInaccessible", "27.0";
}

impl PartialEq for VZErrorCode {
    fn eq(&self, other: &Self) -> bool {
        self.raw() == other.raw()
    }
}

impl Eq for VZErrorCode {}

impl Hash for VZErrorCode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.raw().hash(state);
    }
}

impl From<isize> for VZErrorCode {
    fn from(raw: isize) -> Self {
        Self::from_raw(raw)
    }
}

impl From<VZErrorCode> for isize {
    fn from(code: VZErrorCode) -> Self {
        code.raw()
    }
}

impl fmt::Display for VZErrorCode {
    /// The Objective-C name and the value, for example `VZErrorInternal (1)`, or
    /// `VZErrorDomain code 99` for a code this crate does not name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({})", self.raw()),
            None => write!(f, "VZErrorDomain code {}", self.raw()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// The `VZErrorCode` rows of the reference table: name, value, macOS.
    const TABLE: &[(&str, isize, &str)] = &[
        ("VZErrorInternal", 1, "11.0"),
        ("VZErrorInvalidVirtualMachineConfiguration", 2, "11.0"),
        ("VZErrorInvalidVirtualMachineState", 3, "11.0"),
        ("VZErrorInvalidVirtualMachineStateTransition", 4, "11.0"),
        ("VZErrorInvalidDiskImage", 5, "11.0"),
        ("VZErrorVirtualMachineLimitExceeded", 6, "12.0"),
        ("VZErrorNetworkError", 7, "13.0"),
        ("VZErrorOutOfDiskSpace", 8, "13.0"),
        ("VZErrorOperationCancelled", 9, "13.0"),
        ("VZErrorNotSupported", 10, "13.0"),
        ("VZErrorSave", 11, "14.0"),
        ("VZErrorRestore", 12, "14.0"),
        ("VZErrorRestoreImageCatalogLoadFailed", 10001, "13.0"),
        ("VZErrorInvalidRestoreImageCatalog", 10002, "13.0"),
        ("VZErrorNoSupportedRestoreImagesInCatalog", 10003, "13.0"),
        ("VZErrorRestoreImageLoadFailed", 10004, "13.0"),
        ("VZErrorInvalidRestoreImage", 10005, "13.0"),
        ("VZErrorInstallationRequiresUpdate", 10006, "13.0"),
        ("VZErrorInstallationFailed", 10007, "13.0"),
        ("VZErrorNetworkBlockDeviceNegotiationFailed", 20001, "14.0"),
        ("VZErrorNetworkBlockDeviceDisconnected", 20002, "14.0"),
        ("VZErrorUSBControllerNotFound", 30001, "15.0"),
        ("VZErrorDeviceAlreadyAttached", 30002, "15.0"),
        ("VZErrorDeviceInitializationFailure", 30003, "15.0"),
        ("VZErrorDeviceNotFound", 30004, "15.0"),
        ("VZErrorGuestProvisioningInvalidFullName", 40001, "27.0"),
        ("VZErrorGuestProvisioningInvalidUsername", 40002, "27.0"),
        ("VZErrorGuestProvisioningInvalidPassword", 40003, "27.0"),
        ("VZErrorEFISecureBootEnrollmentFailed", 50001, "27.0"),
        ("VZErrorEFIVariableInaccessible", 50002, "27.0"),
    ];

    #[test]
    fn every_table_code_round_trips() {
        assert_eq!(VZErrorCode::ALL.len(), TABLE.len());
        for (&code, &(name, raw, since)) in VZErrorCode::ALL.iter().zip(TABLE) {
            assert_eq!(code.raw(), raw, "{name}");
            assert_eq!(code.name(), Some(name));
            assert_eq!(code.min_macos(), Some(since), "{name}");
            let back = VZErrorCode::from_raw(raw);
            assert_eq!(back, code);
            assert!(!matches!(back, VZErrorCode::Other(_)), "{name}");
            assert_eq!(isize::from(VZErrorCode::from(raw)), raw);
            assert_eq!(code.to_string(), format!("{name} ({raw})"));
        }
        let distinct: HashSet<_> = VZErrorCode::ALL.iter().map(|c| c.raw()).collect();
        assert_eq!(distinct.len(), VZErrorCode::ALL.len(), "no value twice");
    }

    #[test]
    fn named_variants() {
        assert_eq!(VZErrorCode::from_raw(1), VZErrorCode::Internal);
        assert_eq!(
            VZErrorCode::from_raw(2),
            VZErrorCode::InvalidVirtualMachineConfiguration
        );
        assert_eq!(VZErrorCode::from_raw(5), VZErrorCode::InvalidDiskImage);
        assert_eq!(
            VZErrorCode::from_raw(20002),
            VZErrorCode::NetworkBlockDeviceDisconnected
        );
        assert_eq!(VZErrorCode::DeviceNotFound.raw(), 30004);
        assert_eq!(VZErrorCode::EFIVariableInaccessible.raw(), 50002);
    }

    #[test]
    fn unknown_codes_are_kept() {
        for raw in [
            0,
            -1,
            13,
            9999,
            10000,
            10008,
            20003,
            30005,
            40004,
            50003,
            isize::MAX,
        ] {
            let code = VZErrorCode::from_raw(raw);
            assert!(matches!(code, VZErrorCode::Other(r) if r == raw), "{raw}");
            assert_eq!(code.raw(), raw);
            assert_eq!(code.name(), None);
            assert_eq!(code.min_macos(), None);
            assert_eq!(code.to_string(), format!("VZErrorDomain code {raw}"));
        }
        // Equality is by value: an `Other` with a known value is that code.
        assert_eq!(VZErrorCode::Other(1), VZErrorCode::Internal);
        assert_eq!(VZErrorCode::Other(1).name(), Some("VZErrorInternal"));
        let set: HashSet<_> = [VZErrorCode::Other(8), VZErrorCode::OutOfDiskSpace].into();
        assert_eq!(set.len(), 1);
        assert_ne!(VZErrorCode::Other(99), VZErrorCode::Other(98));
    }
}
