//! The platform: `VZGenericPlatformConfiguration` (macOS 12) and its
//! `VZGenericMachineIdentifier` (macOS 13).

use crate::configuration::{AsObject, class_since, method_since};
use crate::error::VZError;
use crate::ffi::foundation;
use crate::ffi::runtime::{Allocated, ClassRef, Id, class, in_pool, objc_methods, sel};

objc_methods! {
    fn platform_init(platform: Allocated) -> Option<Id> = "init";
    fn machine_identifier_raw(platform: &Id) -> Option<Id> = "machineIdentifier";
    fn set_machine_identifier_raw(platform: &Id, identifier: &Id) = "setMachineIdentifier:";
    fn nested_supported_raw(class: ClassRef) -> bool = "isNestedVirtualizationSupported";
    fn nested_enabled_raw(platform: &Id) -> bool = "isNestedVirtualizationEnabled";
    fn set_nested_enabled_raw(platform: &Id, enabled: bool) = "setNestedVirtualizationEnabled:";
    fn identifier_init(identifier: Allocated) -> Option<Id> = "init";
    fn identifier_init_with_data(identifier: Allocated, data: &Id) -> Option<Id> =
        "initWithDataRepresentation:";
    fn identifier_data(identifier: &Id) -> Option<Id> = "dataRepresentation";
}

/// `VZGenericPlatformConfiguration` (macOS 12): the platform for Linux and other
/// non-macOS guests.
///
/// ```no_run
/// # fn main() -> Result<(), arcbox_vz::VZError> {
/// use arcbox_vz::{GenericMachineIdentifier, GenericPlatform};
///
/// // Keep the machine identifier across runs so the guest sees the same machine.
/// let saved: Vec<u8> = GenericMachineIdentifier::new()?.data_representation();
/// let mut platform = GenericPlatform::new()?;
/// platform.set_machine_identifier(&GenericMachineIdentifier::from_data_representation(&saved)?)?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct GenericPlatform {
    obj: Id,
}

impl AsObject for GenericPlatform {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

fn identifier_class() -> Result<ClassRef, VZError> {
    class_since(
        class!("VZGenericMachineIdentifier"),
        "generic machine identifier",
        "13.0",
    )
}

impl GenericPlatform {
    /// A generic platform with a new machine identifier.
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 12.
    pub fn new() -> Result<Self, VZError> {
        let class = class_since(
            class!("VZGenericPlatformConfiguration"),
            "generic platform",
            "12.0",
        )?;
        let obj = in_pool!(platform_init(class.alloc())).ok_or(VZError::ClassNotFound {
            class: "VZGenericPlatformConfiguration",
        })?;
        Ok(Self { obj })
    }

    /// The machine identifier (`machineIdentifier`, macOS 13).
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 13.
    pub fn machine_identifier(&self) -> Result<GenericMachineIdentifier, VZError> {
        method_since(
            &self.obj,
            sel!("machineIdentifier"),
            "generic machine identifier",
            "13.0",
        )?;
        in_pool!(machine_identifier_raw(&self.obj))
            .map(|obj| GenericMachineIdentifier { obj })
            .ok_or(VZError::ClassNotFound {
                class: "VZGenericMachineIdentifier",
            })
    }

    /// Sets the machine identifier (`setMachineIdentifier:`, macOS 13). Use the same
    /// one every time the same virtual machine boots; a saved state only restores
    /// with the identifier it was saved with.
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 13.
    pub fn set_machine_identifier(
        &mut self,
        identifier: &GenericMachineIdentifier,
    ) -> Result<&mut Self, VZError> {
        method_since(
            &self.obj,
            sel!("setMachineIdentifier:"),
            "generic machine identifier",
            "13.0",
        )?;
        in_pool!(set_machine_identifier_raw(&self.obj, &identifier.obj));
        Ok(self)
    }

    /// Whether this Mac can run virtual machines with nested virtualization
    /// (`+isNestedVirtualizationSupported`, macOS 15, M3 or later). `false` on older
    /// systems.
    pub fn is_nested_virtualization_supported() -> bool {
        let Ok(class) = class!("VZGenericPlatformConfiguration") else {
            return false;
        };
        class.responds_to(sel!("isNestedVirtualizationSupported"))
            && in_pool!(nested_supported_raw(class))
    }

    /// Enables or disables nested virtualization (`setNestedVirtualizationEnabled:`,
    /// macOS 15).
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] when enabling it on a system where
    /// [`is_nested_virtualization_supported`](Self::is_nested_virtualization_supported)
    /// is false (before macOS 15, or hardware older than M3).
    pub fn set_nested_virtualization_enabled(
        &mut self,
        enabled: bool,
    ) -> Result<&mut Self, VZError> {
        let feature = "nested virtualization";
        if !self
            .obj
            .responds_to(sel!("setNestedVirtualizationEnabled:"))
        {
            return if enabled {
                Err(VZError::Unsupported {
                    feature,
                    min_macos: "15.0",
                })
            } else {
                Ok(self)
            };
        }
        if enabled && !Self::is_nested_virtualization_supported() {
            return Err(VZError::Unsupported {
                feature: "nested virtualization (needs an M3 or later Mac)",
                min_macos: "15.0",
            });
        }
        in_pool!(set_nested_enabled_raw(&self.obj, enabled));
        Ok(self)
    }

    /// Whether nested virtualization is enabled (`isNestedVirtualizationEnabled`);
    /// `false` before macOS 15.
    pub fn is_nested_virtualization_enabled(&self) -> bool {
        self.obj.responds_to(sel!("isNestedVirtualizationEnabled"))
            && in_pool!(nested_enabled_raw(&self.obj))
    }
}

/// `VZGenericMachineIdentifier` (macOS 13): the identity of a generic-platform
/// virtual machine. Persist it with [`data_representation`](Self::data_representation).
#[derive(Debug, Clone)]
pub struct GenericMachineIdentifier {
    obj: Id,
}

impl GenericMachineIdentifier {
    /// A new, unique identifier.
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 13.
    pub fn new() -> Result<Self, VZError> {
        let class = identifier_class()?;
        in_pool!(identifier_init(class.alloc()))
            .map(|obj| Self { obj })
            .ok_or(VZError::ClassNotFound {
                class: "VZGenericMachineIdentifier",
            })
    }

    /// Rebuilds an identifier from [`data_representation`](Self::data_representation)
    /// (`initWithDataRepresentation:`).
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] when the bytes are not an identifier;
    /// [`VZError::Unsupported`] before macOS 13.
    pub fn from_data_representation(data: &[u8]) -> Result<Self, VZError> {
        let class = identifier_class()?;
        in_pool!(identifier_init_with_data(
            class.alloc(),
            &foundation::ns_data(data)
        ))
        .map(|obj| Self { obj })
        .ok_or_else(|| {
            VZError::invalid_argument(
                "machine identifier data",
                format!(
                    "{} bytes that are not a VZGenericMachineIdentifier data representation",
                    data.len()
                ),
            )
        })
    }

    /// The bytes to store and later pass to
    /// [`from_data_representation`](Self::from_data_representation).
    pub fn data_representation(&self) -> Vec<u8> {
        in_pool!({
            identifier_data(&self.obj)
                .as_ref()
                .map(foundation::data_to_vec)
                .unwrap_or_default()
        })
    }
}

impl PartialEq for GenericMachineIdentifier {
    fn eq(&self, other: &Self) -> bool {
        self.data_representation() == other.data_representation()
    }
}

impl Eq for GenericMachineIdentifier {}

/// The platform of a [`VirtualMachineConfiguration`](crate::VirtualMachineConfiguration),
/// set with [`set_platform`](crate::VirtualMachineConfiguration::set_platform).
#[derive(Debug)]
pub enum Platform {
    /// `VZGenericPlatformConfiguration`: Linux and other non-macOS guests.
    Generic(GenericPlatform),
    /// `VZMacPlatformConfiguration`: macOS guests (Apple silicon).
    #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
    Mac(crate::configuration::MacPlatformConfiguration),
}

impl AsObject for Platform {
    fn as_object(&self) -> &Id {
        match self {
            Self::Generic(p) => &p.obj,
            #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
            Self::Mac(p) => p.as_object(),
        }
    }
}

impl From<GenericPlatform> for Platform {
    fn from(p: GenericPlatform) -> Self {
        Self::Generic(p)
    }
}

#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
impl From<crate::configuration::MacPlatformConfiguration> for Platform {
    fn from(p: crate::configuration::MacPlatformConfiguration) -> Self {
        Self::Mac(p)
    }
}
