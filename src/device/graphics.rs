//! The virtio-gpu device configuration: `VZVirtioGraphicsDeviceConfiguration` and
//! its `VZVirtioGraphicsScanoutConfiguration`s (macOS 13).
//!
//! See [Apple's documentation](https://developer.apple.com/documentation/virtualization/vzvirtiographicsdeviceconfiguration).

use crate::configuration::{AsObject, class_since, object_array};
use crate::error::VZError;
use crate::ffi::runtime::{Allocated, Id, class, in_pool, objc_methods};

objc_methods! {
    fn scanout_init(scanout: Allocated, width: isize, height: isize) -> Option<Id> =
        "initWithWidthInPixels:heightInPixels:";
    fn width_raw(scanout: &Id) -> isize = "widthInPixels";
    fn set_width_raw(scanout: &Id, width: isize) = "setWidthInPixels:";
    fn height_raw(scanout: &Id) -> isize = "heightInPixels";
    fn set_height_raw(scanout: &Id, height: isize) = "setHeightInPixels:";
    fn graphics_init(device: Allocated) -> Option<Id> = "init";
    fn set_scanouts_raw(device: &Id, scanouts: &Id) = "setScanouts:";
}

/// The argument name of every scanout size error.
const SCANOUT_SIZE: &str = "scanout size";

fn check_dimension(value: isize, what: &str) -> Result<(), VZError> {
    if value <= 0 {
        return Err(VZError::invalid_argument(
            SCANOUT_SIZE,
            format!("the {what} is {value} pixels; it must be greater than 0"),
        ));
    }
    if value > VirtioGraphicsScanoutConfiguration::MAX_PIXELS {
        return Err(VZError::invalid_argument(
            SCANOUT_SIZE,
            format!(
                "the {what} is {value} pixels; the limit is {}",
                VirtioGraphicsScanoutConfiguration::MAX_PIXELS
            ),
        ));
    }
    Ok(())
}

/// `VZVirtioGraphicsScanoutConfiguration` (macOS 13): one display output of a
/// [`VirtioGraphicsDeviceConfiguration`], with its size in pixels.
#[derive(Debug)]
pub struct VirtioGraphicsScanoutConfiguration {
    obj: Id,
}

impl AsObject for VirtioGraphicsScanoutConfiguration {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

impl VirtioGraphicsScanoutConfiguration {
    /// The largest width or height accepted, in pixels. Apple documents no limit.
    /// The host draws a scanout into a Metal texture, and the largest 2D texture of
    /// every Mac GPU family is 16384 × 16384 pixels (Apple's "Metal feature set
    /// tables"); virtio-gpu itself carries sizes as 32-bit values (virtio 1.2,
    /// 5.7.6.8 `struct virtio_gpu_rect`).
    pub const MAX_PIXELS: isize = 16384;

    /// `-[VZVirtioGraphicsScanoutConfiguration initWithWidthInPixels:heightInPixels:]`:
    /// a scanout of `width_in_pixels` × `height_in_pixels`, for example 1920 × 1080.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (argument `"scanout size"`) when the width or the
    /// height is 0 or negative or above [`MAX_PIXELS`](Self::MAX_PIXELS);
    /// [`VZError::Unsupported`] before macOS 13.
    pub fn new(width_in_pixels: isize, height_in_pixels: isize) -> Result<Self, VZError> {
        let class = class_since(
            class!("VZVirtioGraphicsScanoutConfiguration"),
            "Virtio graphics scanout",
            "13.0",
        )?;
        if width_in_pixels <= 0 || height_in_pixels <= 0 {
            return Err(VZError::invalid_argument(
                SCANOUT_SIZE,
                format!(
                    "{width_in_pixels}x{height_in_pixels} pixels; the width and the height \
                     must both be greater than 0"
                ),
            ));
        }
        if width_in_pixels > Self::MAX_PIXELS || height_in_pixels > Self::MAX_PIXELS {
            return Err(VZError::invalid_argument(
                SCANOUT_SIZE,
                format!(
                    "{width_in_pixels}x{height_in_pixels} pixels; the width and the height \
                     must both be at most {}",
                    Self::MAX_PIXELS
                ),
            ));
        }
        let obj = in_pool!(scanout_init(
            class.alloc(),
            width_in_pixels,
            height_in_pixels
        ))
        .ok_or(VZError::ClassNotFound {
            class: "VZVirtioGraphicsScanoutConfiguration",
        })?;
        Ok(Self { obj })
    }

    /// The width in pixels (`widthInPixels`).
    pub fn width_in_pixels(&self) -> isize {
        in_pool!(width_raw(&self.obj))
    }

    /// The height in pixels (`heightInPixels`).
    pub fn height_in_pixels(&self) -> isize {
        in_pool!(height_raw(&self.obj))
    }

    /// Sets the width in pixels (`setWidthInPixels:`).
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (argument `"scanout size"`) when it is 0 or
    /// negative, or above [`MAX_PIXELS`](Self::MAX_PIXELS).
    pub fn set_width_in_pixels(&mut self, width_in_pixels: isize) -> Result<&mut Self, VZError> {
        check_dimension(width_in_pixels, "width")?;
        in_pool!(set_width_raw(&self.obj, width_in_pixels));
        Ok(self)
    }

    /// Sets the height in pixels (`setHeightInPixels:`).
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (argument `"scanout size"`) when it is 0 or
    /// negative, or above [`MAX_PIXELS`](Self::MAX_PIXELS).
    pub fn set_height_in_pixels(&mut self, height_in_pixels: isize) -> Result<&mut Self, VZError> {
        check_dimension(height_in_pixels, "height")?;
        in_pool!(set_height_raw(&self.obj, height_in_pixels));
        Ok(self)
    }
}

/// `VZVirtioGraphicsDeviceConfiguration` (macOS 13): a paravirtualized virtio-gpu
/// device, whose scanout a `VZVirtualMachineView` can show.
///
/// Apple supports at most one scanout per device: with two or more,
/// [`VirtualMachineConfiguration::validate`](crate::VirtualMachineConfiguration::validate)
/// fails with [`VZError::InvalidConfiguration`]. A new device has no scanout.
///
/// ```no_run
/// # fn main() -> Result<(), arcbox_vz::VZError> {
/// use arcbox_vz::{
///     VirtioGraphicsDeviceConfiguration, VirtioGraphicsScanoutConfiguration,
///     VirtualMachineConfiguration,
/// };
///
/// let mut gpu = VirtioGraphicsDeviceConfiguration::new()?;
/// gpu.set_scanouts(vec![VirtioGraphicsScanoutConfiguration::new(1920, 1080)?]);
/// let mut config = VirtualMachineConfiguration::new()?;
/// config.set_graphics_devices(vec![gpu]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct VirtioGraphicsDeviceConfiguration {
    obj: Id,
    scanouts: Vec<VirtioGraphicsScanoutConfiguration>,
}

impl AsObject for VirtioGraphicsDeviceConfiguration {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

impl VirtioGraphicsDeviceConfiguration {
    /// `-[VZVirtioGraphicsDeviceConfiguration init]`: a virtio-gpu device without
    /// scanouts.
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 13.
    pub fn new() -> Result<Self, VZError> {
        let class = class_since(
            class!("VZVirtioGraphicsDeviceConfiguration"),
            "Virtio graphics device",
            "13.0",
        )?;
        let obj = in_pool!(graphics_init(class.alloc())).ok_or(VZError::ClassNotFound {
            class: "VZVirtioGraphicsDeviceConfiguration",
        })?;
        Ok(Self {
            obj,
            scanouts: Vec::new(),
        })
    }

    /// Sets the scanouts (`setScanouts:`). Apple supports at most one; more fail
    /// [`VirtualMachineConfiguration::validate`](crate::VirtualMachineConfiguration::validate).
    pub fn set_scanouts(&mut self, scanouts: Vec<VirtioGraphicsScanoutConfiguration>) -> &mut Self {
        in_pool!(set_scanouts_raw(&self.obj, &object_array(&scanouts)));
        self.scanouts = scanouts;
        self
    }

    /// The scanouts set with [`set_scanouts`](Self::set_scanouts); empty by default.
    pub fn scanouts(&self) -> &[VirtioGraphicsScanoutConfiguration] {
        &self.scanouts
    }
}
