//! USB (macOS 15): the `VZXHCIControllerConfiguration` controller configuration,
//! the runtime `VZUSBController`, hot-pluggable `VZUSBMassStorageDevice`s, and the
//! attached devices (`VZUSBDevice`: `uuid`, `usbController`).
//!
//! See [Apple's documentation](https://developer.apple.com/documentation/virtualization/vzxhcicontrollerconfiguration).

use std::future::Future;

use crate::bridge;
use crate::configuration::{AsObject, class_since, object_array};
use crate::device::USBMassStorageDeviceConfiguration;
use crate::error::VZError;
use crate::ffi::block::{ErrorArg, RcBlock};
use crate::ffi::dispatch::QueueBound;
use crate::ffi::foundation;
use crate::ffi::runtime::{Allocated, Id, class, in_pool, objc_methods};

objc_methods! {
    fn xhci_init(controller: Allocated) -> Option<Id> = "init";
    fn set_usb_devices_raw(controller: &Id, devices: &Id) = "setUsbDevices:";
    fn mass_storage_init(device: Allocated, configuration: &Id) -> Option<Id> =
        "initWithConfiguration:";
    fn attach_raw(controller: &Id, device: &Id, handler: &RcBlock) = "attachDevice:completionHandler:";
    fn detach_raw(controller: &Id, device: &Id, handler: &RcBlock) = "detachDevice:completionHandler:";
    fn controller_devices_raw(controller: &Id) -> Option<Id> = "usbDevices";
    fn device_uuid_raw(device: &Id) -> Option<Id> = "uuid";
    fn device_controller_raw(device: &Id) -> Option<Id> = "usbController";
}

/// `uuid` of a `VZUSBDevice` (or its configuration), as a string; empty if there is
/// none (never the case on Apple: the configuration generates one).
fn uuid_of(device: &Id) -> String {
    in_pool!({
        device_uuid_raw(device)
            .as_ref()
            .map(foundation::uuid_to_string)
            .unwrap_or_default()
    })
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
    usb_devices: Vec<USBMassStorageDeviceConfiguration>,
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
        let obj = in_pool!(xhci_init(class.alloc())).ok_or(VZError::ClassNotFound {
            class: "VZXHCIControllerConfiguration",
        })?;
        Ok(Self {
            obj,
            usb_devices: Vec::new(),
        })
    }

    /// Sets the USB devices present at start (`setUsbDevices:`). Devices can also be
    /// attached and detached while the virtual machine runs, with
    /// [`USBController::attach`].
    pub fn set_usb_devices(
        &mut self,
        devices: Vec<USBMassStorageDeviceConfiguration>,
    ) -> &mut Self {
        in_pool!(set_usb_devices_raw(&self.obj, &object_array(&devices)));
        self.usb_devices = devices;
        self
    }

    /// The USB devices set with [`set_usb_devices`](Self::set_usb_devices).
    pub fn usb_devices(&self) -> &[USBMassStorageDeviceConfiguration] {
        &self.usb_devices
    }
}

/// `VZUSBMassStorageDevice` (macOS 15): a USB disk to hot-plug into a running virtual
/// machine with [`USBController::attach`].
#[derive(Debug)]
pub struct USBMassStorageDevice {
    obj: Id,
}

impl USBMassStorageDevice {
    /// A hot-pluggable disk from its configuration (`initWithConfiguration:`).
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 15.
    pub fn new(configuration: USBMassStorageDeviceConfiguration) -> Result<Self, VZError> {
        let class = class_since(
            class!("VZUSBMassStorageDevice"),
            "USB mass storage hot-plug",
            "15.0",
        )?;
        in_pool!(mass_storage_init(class.alloc(), configuration.as_object()))
            .map(|obj| Self { obj })
            .ok_or(VZError::ClassNotFound {
                class: "VZUSBMassStorageDevice",
            })
    }

    /// `uuid` (`VZUSBDevice` protocol): the UUID of the configuration it was made
    /// from, in the form `"E621E1F8-C36C-495A-93FC-0C247A3E6E5F"`. It identifies the
    /// device among a controller's [`usb_devices`](USBController::usb_devices).
    ///
    /// The UUID never changes, so it is read here, not on a VM queue.
    pub fn uuid(&self) -> String {
        uuid_of(&self.obj)
    }
}

/// `VZUSBController` (macOS 15): the USB controller of a running virtual machine,
/// from [`VirtualMachine::usb_controllers`](crate::VirtualMachine::usb_controllers).
/// Every call runs on the VM queue; the handle keeps the virtual machine alive.
///
/// ```no_run
/// # async fn demo(vm: arcbox_vz::VirtualMachine) -> Result<(), arcbox_vz::VZError> {
/// use arcbox_vz::*;
///
/// let controller = vm.usb_controllers().remove(0);
/// let disk = DiskImageStorageDeviceAttachment::new("/tmp/usb.img", true)?;
/// let device = USBMassStorageDevice::new(USBMassStorageDeviceConfiguration::new(disk)?)?;
/// controller.attach(&device).await?;
/// controller.detach(&device).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct USBController {
    handle: crate::vm::DeviceHandle,
}

impl USBController {
    pub(crate) fn new(handle: crate::vm::DeviceHandle) -> Self {
        Self { handle }
    }

    /// How many USB devices are attached (`usbDevices`).
    pub fn usb_device_count(&self) -> usize {
        self.handle
            .with(|controller| {
                controller_devices_raw(controller).map(|d| foundation::array_items(&d).len())
            })
            .unwrap_or(0)
    }

    /// The USB devices attached now (`usbDevices`, read on the VM queue), in the
    /// controller's order.
    pub fn usb_devices(&self) -> Vec<USBDevice> {
        let queue = self.handle.queue().clone();
        let objects = self.handle.with(|controller| {
            in_pool!({
                controller_devices_raw(controller)
                    .as_ref()
                    .map(foundation::array_items)
                    .unwrap_or_default()
            })
        });
        let mut devices = Vec::with_capacity(objects.len());
        for object in objects {
            devices.push(USBDevice {
                handle: self.handle.related(QueueBound::new(queue.clone(), object)),
            });
        }
        devices
    }

    /// Hot-plugs `device` (`attachDevice:completionHandler:`).
    ///
    /// The future is `Send` and borrows neither `self` nor `device`: it holds its
    /// own references, so it can be spawned on a multithreaded executor.
    ///
    /// # Errors
    ///
    /// [`VZError::Framework`] with `VZErrorDeviceAlreadyAttached` (30002) or
    /// `VZErrorDeviceInitializationFailure` (30003).
    pub fn attach(
        &self,
        device: &USBMassStorageDevice,
    ) -> impl Future<Output = Result<(), VZError>> + Send + use<> {
        Self::hotplug(self.handle.clone(), device.obj.clone(), true)
    }

    /// Unplugs `device` (`detachDevice:completionHandler:`).
    ///
    /// The future is `Send` and borrows neither `self` nor `device`.
    ///
    /// # Errors
    ///
    /// [`VZError::Framework`] with `VZErrorDeviceNotFound` (30004) when it is not
    /// attached.
    pub fn detach(
        &self,
        device: &USBMassStorageDevice,
    ) -> impl Future<Output = Result<(), VZError>> + Send + use<> {
        Self::hotplug(self.handle.clone(), device.obj.clone(), false)
    }

    async fn hotplug(
        handle: crate::vm::DeviceHandle,
        device: Id,
        attach: bool,
    ) -> Result<(), VZError> {
        let (tx, rx) = bridge::channel::<Result<(), VZError>>();
        handle.exec_async(move |controller| {
            if tx.is_abandoned() {
                return;
            }
            let handler = RcBlock::once::<ErrorArg, _>(move |error| {
                let result = match error {
                    None => Ok(()),
                    Some(error) => Err(VZError::Framework(foundation::framework_error(&error))),
                };
                let _ = tx.complete(result);
            });
            if attach {
                attach_raw(controller, &device, &handler);
            } else {
                detach_raw(controller, &device, &handler);
            }
        });
        rx.await?
    }
}

/// A USB device attached to a running virtual machine's controller (`VZUSBDevice`,
/// macOS 15), from [`USBController::usb_devices`]: a
/// [`USBMassStorageDevice`] of the configuration or hot-plugged. Every call runs on
/// the VM queue, where the framework changes what is attached; the handle keeps the
/// virtual machine alive.
#[derive(Clone, Debug)]
pub struct USBDevice {
    handle: crate::vm::DeviceHandle,
}

impl USBDevice {
    /// `uuid`: the device's UUID, the one of its configuration (compare it with
    /// [`USBMassStorageDevice::uuid`] or [`USBMassStorageDeviceConfiguration::uuid`]).
    pub fn uuid(&self) -> String {
        self.handle.with(uuid_of)
    }

    /// `usbController`: the controller the device is attached to now, or `None` once
    /// it has been detached (the framework's reference is weak).
    pub fn usb_controller(&self) -> Option<USBController> {
        let queue = self.handle.queue().clone();
        self.handle
            .with(|device| in_pool!(device_controller_raw(device)))
            .map(|controller| {
                USBController::new(self.handle.related(QueueBound::new(queue, controller)))
            })
    }
}
