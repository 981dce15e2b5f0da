//! The memory balloon device configuration:
//! `VZVirtioTraditionalMemoryBalloonDeviceConfiguration`.
//!
//! See [Apple's documentation](https://developer.apple.com/documentation/virtualization/vzvirtiotraditionalmemoryballoondeviceconfiguration).

use crate::configuration::{AsObject, base_class};
use crate::ffi::runtime::{Allocated, Id, class, in_pool, objc_methods};

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
        let obj = in_pool!(balloon_init(class.alloc()))
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

objc_methods! {
    fn target_raw(device: &Id) -> u64 = "targetVirtualMachineMemorySize";
    fn set_target_raw(device: &Id, bytes: u64) = "setTargetVirtualMachineMemorySize:";
}

/// `VZVirtioTraditionalMemoryBalloonDevice`: the memory balloon of a running virtual
/// machine, from [`VirtualMachine::memory_balloon_devices`](crate::VirtualMachine::memory_balloon_devices).
/// Every call runs on the VM queue; the handle keeps the virtual machine alive.
///
/// ```no_run
/// # fn demo(vm: arcbox_vz::VirtualMachine) {
/// let balloon = vm.memory_balloon_devices().remove(0);
/// // Ask the guest to give memory back, down to 256 MiB.
/// let target = balloon.set_target_virtual_machine_memory_size(256 * 1024 * 1024);
/// println!("target is now {target} bytes");
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct VirtioTraditionalMemoryBalloonDevice {
    handle: crate::vm::DeviceHandle,
}

impl VirtioTraditionalMemoryBalloonDevice {
    pub(crate) fn new(handle: crate::vm::DeviceHandle) -> Self {
        Self { handle }
    }

    /// The memory the guest is asked to keep, in bytes
    /// (`targetVirtualMachineMemorySize`); initially the configured memory size.
    pub fn target_virtual_machine_memory_size(&self) -> u64 {
        self.handle.with(target_raw)
    }

    /// Asks the guest to shrink or grow to `bytes`
    /// (`setTargetVirtualMachineMemorySize:`) and returns the target the framework
    /// kept: rounded down to a whole MiB and clamped between the minimum memory size
    /// and the configured memory size. The guest's balloon driver must cooperate.
    pub fn set_target_virtual_machine_memory_size(&self, bytes: u64) -> u64 {
        self.handle.with(move |device| {
            set_target_raw(device, bytes);
            target_raw(device)
        })
    }
}
