//! Live graphics (macOS 14): the runtime `VZGraphicsDevice`s of a virtual machine and
//! their `VZGraphicsDisplay`s, whose size can be read and changed while it runs.
//!
//! Reconfigurations are reported as
//! [`VmEvent::DisplayReconfigurationBegan`](crate::VmEvent::DisplayReconfigurationBegan)
//! and [`VmEvent::DisplayReconfigurationEnded`](crate::VmEvent::DisplayReconfigurationEnded)
//! in [`VirtualMachine::events`](crate::VirtualMachine::events) (the framework's
//! `VZGraphicsDisplayObserver`, registered on every display when the virtual machine
//! is made).
//!
//! # Queues
//!
//! Every call runs on the VM queue. Apple documents that for `graphicsDevices` and
//! says the observer is called there; for `displays`, `sizeInPixels`,
//! `reconfigureWithSizeInPixels:error:` and `addObserver:`/`removeObserver:` it says
//! nothing, and other bindings (Code-Hex/vz) call them on the VM queue, as here.
//!
//! See [Apple's documentation](https://developer.apple.com/documentation/virtualization/vzgraphicsdisplay).

use crate::device::VirtioGraphicsScanoutConfiguration;
use crate::error::VZError;
use crate::ffi::dispatch::QueueBound;
use crate::ffi::encode::CGSize;
use crate::ffi::foundation::{self, ErrorSlot, with_error};
use crate::ffi::runtime::{ClassRef, Id, class, in_pool, objc_methods};

objc_methods! {
    fn is_kind_of(object: &Id, class: ClassRef) -> bool = "isKindOfClass:";
    fn pixels_per_inch_raw(display: &Id) -> isize = "pixelsPerInch";
    fn displays_raw(device: &Id) -> Option<Id> = "displays";
    fn size_in_pixels_raw(display: &Id) -> CGSize = "sizeInPixels";
    fn reconfigure_raw(display: &Id, size: CGSize, error: &mut ErrorSlot) -> bool =
        "reconfigureWithSizeInPixels:error:";
}

/// The argument name of every display size error.
const DISPLAY_SIZE: &str = "display size";

/// `VZGraphicsDevice` (macOS 14): a graphics device of a running virtual machine,
/// from [`VirtualMachine::graphics_devices`](crate::VirtualMachine::graphics_devices),
/// in configuration order. The handle keeps the virtual machine alive.
#[derive(Clone, Debug)]
pub struct GraphicsDevice {
    handle: crate::vm::DeviceHandle,
}

/// Which kind of [`GraphicsDevice`] the framework made: one per configured graphics
/// device, of the matching kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GraphicsDeviceKind {
    /// `VZVirtioGraphicsDevice`, from a
    /// [`VirtioGraphicsDeviceConfiguration`](crate::VirtioGraphicsDeviceConfiguration);
    /// its displays are the scanouts.
    Virtio,
    /// `VZMacGraphicsDevice`, from a
    /// [`MacGraphicsDeviceConfiguration`](crate::MacGraphicsDeviceConfiguration); its
    /// displays have a [`pixels_per_inch`](GraphicsDisplay::pixels_per_inch).
    Mac,
    /// A class this crate does not know (a newer framework's).
    Other,
}

/// Whether `object` is a `name` (false when this macOS has no such class).
fn is_a(object: &Id, name: ClassRef) -> bool {
    in_pool!(is_kind_of(object, name))
}

impl GraphicsDevice {
    pub(crate) fn new(handle: crate::vm::DeviceHandle) -> Self {
        Self { handle }
    }

    /// Which kind of device this is (`VZVirtioGraphicsDevice` or
    /// `VZMacGraphicsDevice`), read on the VM queue.
    pub fn kind(&self) -> GraphicsDeviceKind {
        let virtio = class!("VZVirtioGraphicsDevice").ok();
        let mac = class!("VZMacGraphicsDevice").ok();
        self.handle.with(move |device| {
            if virtio.is_some_and(|class| is_a(device, class)) {
                GraphicsDeviceKind::Virtio
            } else if mac.is_some_and(|class| is_a(device, class)) {
                GraphicsDeviceKind::Mac
            } else {
                GraphicsDeviceKind::Other
            }
        })
    }

    /// `displays` (on the VM queue): the device's displays, in the order of the
    /// configured scanouts or displays.
    pub fn displays(&self) -> Vec<GraphicsDisplay> {
        let queue = self.handle.queue().clone();
        let objects = self.handle.with(|device| {
            in_pool!({
                displays_raw(device)
                    .as_ref()
                    .map(foundation::array_items)
                    .unwrap_or_default()
            })
        });
        let mut displays = Vec::with_capacity(objects.len());
        for object in objects {
            displays.push(GraphicsDisplay {
                handle: self.handle.related(QueueBound::new(queue.clone(), object)),
            });
        }
        displays
    }
}

/// `VZGraphicsDisplay` (macOS 14): one display of a [`GraphicsDevice`]. The handle
/// keeps the virtual machine alive; every call runs on the VM queue.
#[derive(Clone, Debug)]
pub struct GraphicsDisplay {
    handle: crate::vm::DeviceHandle,
}

impl GraphicsDisplay {
    /// `sizeInPixels` (on the VM queue): the size the guest draws at now, as
    /// `(width, height)`. It changes when a reconfiguration ends
    /// ([`VmEvent::DisplayReconfigurationEnded`](crate::VmEvent::DisplayReconfigurationEnded)).
    pub fn size_in_pixels(&self) -> (isize, isize) {
        let size = self
            .handle
            .with(|display| in_pool!(size_in_pixels_raw(display)));
        (size.width as isize, size.height as isize)
    }

    /// `pixelsPerInch` of a `VZMacGraphicsDisplay` (on the VM queue): the density
    /// configured with
    /// [`MacGraphicsDisplayConfiguration::new`](crate::MacGraphicsDisplayConfiguration::new).
    /// `None` for a display of a virtio-gpu device (a scanout), which has none.
    pub fn pixels_per_inch(&self) -> Option<isize> {
        let mac = class!("VZMacGraphicsDisplay").ok()?;
        self.handle
            .with(move |display| is_a(display, mac).then(|| in_pool!(pixels_per_inch_raw(display))))
    }

    /// `reconfigureWithSizeInPixels:error:` (on the VM queue): asks the guest to draw
    /// at `width_in_pixels` × `height_in_pixels`. Success only means the request was
    /// passed on: the guest may ignore it. If it follows, the virtual machine's event
    /// stream gets
    /// [`DisplayReconfigurationBegan`](crate::VmEvent::DisplayReconfigurationBegan)
    /// and then
    /// [`DisplayReconfigurationEnded`](crate::VmEvent::DisplayReconfigurationEnded).
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (argument `"display size"`) when the width or the
    /// height is 0 or negative or above
    /// [`VirtioGraphicsScanoutConfiguration::MAX_PIXELS`], and nothing is sent;
    /// [`VZError::Framework`] when the framework refuses the size.
    pub fn reconfigure(
        &self,
        width_in_pixels: isize,
        height_in_pixels: isize,
    ) -> Result<(), VZError> {
        for (value, what) in [(width_in_pixels, "width"), (height_in_pixels, "height")] {
            if value <= 0 {
                return Err(VZError::invalid_argument(
                    DISPLAY_SIZE,
                    format!("the {what} is {value} pixels; it must be greater than 0"),
                ));
            }
            if value > VirtioGraphicsScanoutConfiguration::MAX_PIXELS {
                return Err(VZError::invalid_argument(
                    DISPLAY_SIZE,
                    format!(
                        "the {what} is {value} pixels; the limit is {}",
                        VirtioGraphicsScanoutConfiguration::MAX_PIXELS
                    ),
                ));
            }
        }
        // Exact in f64: both are at most MAX_PIXELS.
        let size = CGSize {
            width: width_in_pixels as f64,
            height: height_in_pixels as f64,
        };
        self.handle
            .with(move |display| {
                with_error(
                    "-[VZGraphicsDisplay reconfigureWithSizeInPixels:error:]",
                    |error| reconfigure_raw(display, size, error).then_some(()),
                )
            })
            .map_err(VZError::Framework)
    }
}
