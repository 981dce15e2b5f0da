//! The USB controller configuration: `VZXHCIControllerConfiguration` (macOS 15).
//!
//! See [Apple's documentation](https://developer.apple.com/documentation/virtualization/vzxhcicontrollerconfiguration).

use crate::configuration::{AsObject, class_since};
use crate::error::VZError;
use crate::ffi::runtime::{Allocated, Id, autoreleasepool, class, objc_methods};

objc_methods! {
    fn xhci_init(controller: Allocated) -> Option<Id> = "init";
}

/// `VZXHCIControllerConfiguration` (macOS 15): a USB 3 (XHCI) controller, the bus
/// that USB devices, such as USB mass storage, attach to, at start or while the
/// virtual machine runs.
///
/// ```no_run
/// # fn main() -> Result<(), arcbox_vz::VZError> {
/// use arcbox_vz::{VirtualMachineConfiguration, XHCIControllerConfiguration};
///
/// let mut config = VirtualMachineConfiguration::new()?;
/// config.set_usb_controllers(vec![XHCIControllerConfiguration::new()?]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct XHCIControllerConfiguration {
    obj: Id,
}

impl AsObject for XHCIControllerConfiguration {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

impl XHCIControllerConfiguration {
    /// `-[VZXHCIControllerConfiguration init]`: a new XHCI controller without USB
    /// devices.
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 15.
    pub fn new() -> Result<Self, VZError> {
        let class = class_since(
            class!("VZXHCIControllerConfiguration"),
            "XHCI USB controller",
            "15.0",
        )?;
        let obj = autoreleasepool(|| xhci_init(class.alloc())).ok_or(VZError::ClassNotFound {
            class: "VZXHCIControllerConfiguration",
        })?;
        Ok(Self { obj })
    }
}
