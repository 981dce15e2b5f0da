//! The entropy device configuration: `VZVirtioEntropyDeviceConfiguration`.
//!
//! See [Apple's documentation](https://developer.apple.com/documentation/virtualization/vzvirtioentropydeviceconfiguration).

use crate::configuration::{AsObject, base_class};
use crate::ffi::runtime::{Allocated, Id, class, in_pool, objc_methods};

objc_methods! {
    fn entropy_init(device: Allocated) -> Option<Id> = "init";
}

/// `VZVirtioEntropyDeviceConfiguration`: a virtio-rng device that feeds the guest's
/// random number generator (`/dev/hwrng` in Linux) from the host.
///
/// ```no_run
/// # fn main() -> Result<(), arcbox_vz::VZError> {
/// use arcbox_vz::{VirtioEntropyDeviceConfiguration, VirtualMachineConfiguration};
///
/// let mut config = VirtualMachineConfiguration::new()?;
/// config.set_entropy_devices(vec![VirtioEntropyDeviceConfiguration::new()]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct VirtioEntropyDeviceConfiguration {
    obj: Id,
}

impl AsObject for VirtioEntropyDeviceConfiguration {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

impl VirtioEntropyDeviceConfiguration {
    /// `-[VZVirtioEntropyDeviceConfiguration init]`: a new virtio-rng device
    /// (macOS 11).
    ///
    /// # Panics
    ///
    /// Only if Virtualization.framework is not loaded in this process.
    pub fn new() -> Self {
        let class = base_class(class!("VZVirtioEntropyDeviceConfiguration"));
        let obj = in_pool!(entropy_init(class.alloc()))
            .expect("-[VZVirtioEntropyDeviceConfiguration init] returned nil");
        Self { obj }
    }
}

impl Default for VirtioEntropyDeviceConfiguration {
    /// Same as [`VirtioEntropyDeviceConfiguration::new`].
    fn default() -> Self {
        Self::new()
    }
}
