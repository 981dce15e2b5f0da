//! The keyboard configuration: `VZUSBKeyboardConfiguration` (macOS 12).
//!
//! See [Apple's documentation](https://developer.apple.com/documentation/virtualization/vzusbkeyboardconfiguration).

use crate::configuration::{AsObject, class_since};
use crate::error::VZError;
use crate::ffi::runtime::{Allocated, Id, class, in_pool, objc_methods};

objc_methods! {
    fn keyboard_init(keyboard: Allocated) -> Option<Id> = "init";
}

/// `VZUSBKeyboardConfiguration` (macOS 12): a USB keyboard, which takes the key
/// presses a `VZVirtualMachineView` receives.
///
/// ```no_run
/// # fn main() -> Result<(), arcbox_vz::VZError> {
/// use arcbox_vz::{USBKeyboardConfiguration, VirtualMachineConfiguration};
///
/// let mut config = VirtualMachineConfiguration::new()?;
/// config.set_keyboards(vec![USBKeyboardConfiguration::new()?]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct USBKeyboardConfiguration {
    obj: Id,
}

impl AsObject for USBKeyboardConfiguration {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

impl USBKeyboardConfiguration {
    /// `-[VZUSBKeyboardConfiguration init]`: a new USB keyboard.
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 12.
    pub fn new() -> Result<Self, VZError> {
        let class = class_since(class!("VZUSBKeyboardConfiguration"), "USB keyboard", "12.0")?;
        let obj = in_pool!(keyboard_init(class.alloc())).ok_or(VZError::ClassNotFound {
            class: "VZUSBKeyboardConfiguration",
        })?;
        Ok(Self { obj })
    }
}
