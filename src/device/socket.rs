//! The virtio-vsock device configuration: `VZVirtioSocketDeviceConfiguration`.
//!
//! See [Apple's documentation](https://developer.apple.com/documentation/virtualization/vzvirtiosocketdeviceconfiguration).

use crate::configuration::{AsObject, base_class};
use crate::ffi::runtime::{Allocated, Id, class, in_pool, objc_methods};

objc_methods! {
    fn socket_init(device: Allocated) -> Option<Id> = "init";
}

/// `VZVirtioSocketDeviceConfiguration`: a virtio-vsock device, for stream sockets
/// between the host and the guest without any network.
///
/// A virtual machine has at most one: with two or more,
/// [`VirtualMachineConfiguration::validate`](crate::VirtualMachineConfiguration::validate)
/// fails with [`VZError::InvalidConfiguration`](crate::VZError::InvalidConfiguration).
/// Inside the guest, the host is context ID 2 (`VMADDR_CID_HOST`); the guest connects
/// to `(2, port)` for a port the host listens on.
///
/// ```no_run
/// # fn main() -> Result<(), arcbox_vz::VZError> {
/// use arcbox_vz::{VirtioSocketDeviceConfiguration, VirtualMachineConfiguration};
///
/// let mut config = VirtualMachineConfiguration::new()?;
/// config.set_socket_devices(vec![VirtioSocketDeviceConfiguration::new()]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct VirtioSocketDeviceConfiguration {
    obj: Id,
}

impl AsObject for VirtioSocketDeviceConfiguration {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

impl VirtioSocketDeviceConfiguration {
    /// `-[VZVirtioSocketDeviceConfiguration init]`: a new virtio-vsock device
    /// (macOS 11).
    ///
    /// # Panics
    ///
    /// Only if Virtualization.framework is not loaded in this process.
    pub fn new() -> Self {
        let class = base_class(class!("VZVirtioSocketDeviceConfiguration"));
        let obj = in_pool!(socket_init(class.alloc()))
            .expect("-[VZVirtioSocketDeviceConfiguration init] returned nil");
        Self { obj }
    }
}

impl Default for VirtioSocketDeviceConfiguration {
    /// Same as [`VirtioSocketDeviceConfiguration::new`].
    fn default() -> Self {
        Self::new()
    }
}
