//! The pointing device configuration:
//! `VZUSBScreenCoordinatePointingDeviceConfiguration` (macOS 12).
//!
//! See [Apple's documentation](https://developer.apple.com/documentation/virtualization/vzusbscreencoordinatepointingdeviceconfiguration).

use crate::configuration::{AsObject, class_since};
use crate::error::VZError;
use crate::ffi::runtime::{Allocated, Id, class, in_pool, objc_methods};

objc_methods! {
    fn pointing_init(device: Allocated) -> Option<Id> = "init";
}

/// `VZUSBScreenCoordinatePointingDeviceConfiguration` (macOS 12): a USB pointing
/// device that reports absolute screen coordinates (a tablet rather than a mouse), so
/// the guest's pointer follows the host's inside a `VZVirtualMachineView`.
///
/// ```no_run
/// # fn main() -> Result<(), arcbox_vz::VZError> {
/// use arcbox_vz::{USBScreenCoordinatePointingDeviceConfiguration, VirtualMachineConfiguration};
///
/// let mut config = VirtualMachineConfiguration::new()?;
/// config.set_pointing_devices(vec![USBScreenCoordinatePointingDeviceConfiguration::new()?]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct USBScreenCoordinatePointingDeviceConfiguration {
    obj: Id,
}

impl AsObject for USBScreenCoordinatePointingDeviceConfiguration {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

impl USBScreenCoordinatePointingDeviceConfiguration {
    /// `-[VZUSBScreenCoordinatePointingDeviceConfiguration init]`: a new USB
    /// screen-coordinate pointing device.
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 12.
    pub fn new() -> Result<Self, VZError> {
        let class = class_since(
            class!("VZUSBScreenCoordinatePointingDeviceConfiguration"),
            "USB screen-coordinate pointing device",
            "12.0",
        )?;
        let obj = in_pool!(pointing_init(class.alloc())).ok_or(VZError::ClassNotFound {
            class: "VZUSBScreenCoordinatePointingDeviceConfiguration",
        })?;
        Ok(Self { obj })
    }
}
