//! The memory balloon device configuration:
//! `VZVirtioTraditionalMemoryBalloonDeviceConfiguration`.
//!
//! See [Apple's documentation](https://developer.apple.com/documentation/virtualization/vzvirtiotraditionalmemoryballoondeviceconfiguration).

use crate::configuration::{AsObject, base_class};
use crate::ffi::runtime::{Allocated, Id, autoreleasepool, class, objc_methods};

objc_methods! {
    fn balloon_init(device: Allocated) -> Option<Id> = "init";
}

/// `VZVirtioTraditionalMemoryBalloonDeviceConfiguration`: a virtio traditional
/// memory balloon, through which the host asks a cooperating guest to give memory
/// back while it runs.
///
/// A virtual machine has at most one: with two or more,
/// [`VirtualMachineConfiguration::validate`](crate::VirtualMachineConfiguration::validate)
/// fails with [`VZError::InvalidConfiguration`](crate::VZError::InvalidConfiguration).
/// The guest needs the `virtio_balloon` driver.
///
/// ```no_run
/// # fn main() -> Result<(), arcbox_vz::VZError> {
/// use arcbox_vz::{VirtioTraditionalMemoryBalloonDeviceConfiguration, VirtualMachineConfiguration};
///
/// let mut config = VirtualMachineConfiguration::new()?;
/// config.set_memory_balloon_devices(vec![VirtioTraditionalMemoryBalloonDeviceConfiguration::new()]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct VirtioTraditionalMemoryBalloonDeviceConfiguration {
    obj: Id,
}

impl AsObject for VirtioTraditionalMemoryBalloonDeviceConfiguration {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

impl VirtioTraditionalMemoryBalloonDeviceConfiguration {
    /// `-[VZVirtioTraditionalMemoryBalloonDeviceConfiguration init]`: a new memory
    /// balloon device (macOS 11).
    ///
    /// # Panics
    ///
    /// Only if Virtualization.framework is not loaded in this process.
    pub fn new() -> Self {
        let class = base_class(class!(
            "VZVirtioTraditionalMemoryBalloonDeviceConfiguration"
        ));
        let obj = autoreleasepool(|| balloon_init(class.alloc()))
            .expect("-[VZVirtioTraditionalMemoryBalloonDeviceConfiguration init] returned nil");
        Self { obj }
    }
}

impl Default for VirtioTraditionalMemoryBalloonDeviceConfiguration {
    /// Same as [`VirtioTraditionalMemoryBalloonDeviceConfiguration::new`].
    fn default() -> Self {
        Self::new()
    }
}
