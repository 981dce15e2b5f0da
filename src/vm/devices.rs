//! The runtime devices of a virtual machine, in configuration order. Each handle keeps
//! the virtual machine alive, and every call on it hops onto the VM queue.

use super::handle::VirtualMachine;
use crate::ffi::runtime::{Id, objc_methods, sel};
use crate::socket::VirtioSocketDevice;

objc_methods! {
    fn socket_devices_raw(vm: &Id) -> Option<Id> = "socketDevices";
    fn memory_balloon_devices_raw(vm: &Id) -> Option<Id> = "memoryBalloonDevices";
    fn directory_sharing_devices_raw(vm: &Id) -> Option<Id> = "directorySharingDevices";
    fn network_devices_raw(vm: &Id) -> Option<Id> = "networkDevices";
    fn console_devices_raw(vm: &Id) -> Option<Id> = "consoleDevices";
    fn usb_controllers_raw(vm: &Id) -> Option<Id> = "usbControllers";
    fn graphics_devices_raw(vm: &Id) -> Option<Id> = "graphicsDevices";
}

impl VirtualMachine {
    /// The virtio-vsock devices (`socketDevices`; at most one).
    pub fn socket_devices(&self) -> Vec<VirtioSocketDevice> {
        self.devices(
            sel!("socketDevices"),
            socket_devices_raw,
            VirtioSocketDevice::new,
        )
    }

    /// The memory balloon devices (`memoryBalloonDevices`; at most one).
    pub fn memory_balloon_devices(&self) -> Vec<crate::VirtioTraditionalMemoryBalloonDevice> {
        self.devices(
            sel!("memoryBalloonDevices"),
            memory_balloon_devices_raw,
            crate::VirtioTraditionalMemoryBalloonDevice::new,
        )
    }

    /// The virtiofs devices (`directorySharingDevices`, macOS 12), in configuration
    /// order.
    pub fn directory_sharing_devices(&self) -> Vec<crate::VirtioFileSystemDevice> {
        self.devices(
            sel!("directorySharingDevices"),
            directory_sharing_devices_raw,
            crate::VirtioFileSystemDevice::new,
        )
    }

    /// The network devices (`networkDevices`, macOS 12), in configuration order.
    /// Always empty before macOS 12, which configures network devices but gives no
    /// handle to them at run time.
    pub fn network_devices(&self) -> Vec<crate::NetworkDevice> {
        self.devices(
            sel!("networkDevices"),
            network_devices_raw,
            crate::NetworkDevice::new,
        )
    }

    /// The virtio console devices (`consoleDevices`, macOS 13), in configuration
    /// order.
    pub fn console_devices(&self) -> Vec<crate::VirtioConsoleDevice> {
        self.devices(
            sel!("consoleDevices"),
            console_devices_raw,
            crate::VirtioConsoleDevice::new,
        )
    }

    /// The USB controllers (`usbControllers`, macOS 15), in configuration order.
    pub fn usb_controllers(&self) -> Vec<crate::USBController> {
        self.devices(
            sel!("usbControllers"),
            usb_controllers_raw,
            crate::USBController::new,
        )
    }

    /// The graphics devices (`graphicsDevices`, macOS 14, read on the VM queue), in
    /// configuration order, with their displays: see [`GraphicsDevice`](crate::GraphicsDevice).
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`](crate::VZError::Unsupported) before macOS 14.
    pub fn graphics_devices(&self) -> Result<Vec<crate::GraphicsDevice>, crate::VZError> {
        crate::configuration::class_since(
            crate::ffi::runtime::class!("VZGraphicsDevice"),
            "runtime graphics devices",
            "14.0",
        )?;
        Ok(self.devices(
            sel!("graphicsDevices"),
            graphics_devices_raw,
            crate::GraphicsDevice::new,
        ))
    }
}
