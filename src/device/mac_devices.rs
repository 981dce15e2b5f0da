//! Devices for macOS guests: the Mac graphics device and its displays
//! (`VZMacGraphicsDeviceConfiguration`, `VZMacGraphicsDisplayConfiguration`, macOS
//! 12), the Mac keyboard (`VZMacKeyboardConfiguration`, macOS 14) and trackpad
//! (`VZMacTrackpadConfiguration`, macOS 13); and the device kinds each
//! configuration list accepts ([`GraphicsDeviceConfiguration`],
//! [`KeyboardConfiguration`], [`PointingDeviceConfiguration`]).
//!
//! The graphics classes are declared on both architectures; the keyboard and the
//! trackpad only for arm64 (vz-api.tsv).

use crate::configuration::{AsObject, class_since, object_array};
use crate::device::{
    USBKeyboardConfiguration, USBScreenCoordinatePointingDeviceConfiguration,
    VirtioGraphicsDeviceConfiguration, VirtioGraphicsScanoutConfiguration,
};
use crate::error::VZError;
use crate::ffi::runtime::{Allocated, Id, class, in_pool, objc_methods};

objc_methods! {
    fn display_init(display: Allocated, width: isize, height: isize, ppi: isize) -> Option<Id> =
        "initWithWidthInPixels:heightInPixels:pixelsPerInch:";
    fn width_raw(display: &Id) -> isize = "widthInPixels";
    fn height_raw(display: &Id) -> isize = "heightInPixels";
    fn ppi_raw(display: &Id) -> isize = "pixelsPerInch";
    fn graphics_init(device: Allocated) -> Option<Id> = "init";
    fn set_displays_raw(device: &Id, displays: &Id) = "setDisplays:";
}

#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
objc_methods! {
    fn input_init(device: Allocated) -> Option<Id> = "init";
}

/// The argument name of every Mac display error.
const DISPLAY: &str = "Mac display";

/// `VZMacGraphicsDisplayConfiguration` (macOS 12): one display of a
/// [`MacGraphicsDeviceConfiguration`], in pixels and pixels per inch.
#[derive(Debug)]
pub struct MacGraphicsDisplayConfiguration {
    obj: Id,
}

impl AsObject for MacGraphicsDisplayConfiguration {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

impl MacGraphicsDisplayConfiguration {
    /// The largest width or height accepted, in pixels: Apple documents no limit; the
    /// same bound as [`VirtioGraphicsScanoutConfiguration::MAX_PIXELS`] (the largest
    /// Metal texture of every Mac GPU family).
    pub const MAX_PIXELS: isize = VirtioGraphicsScanoutConfiguration::MAX_PIXELS;

    /// `initWithWidthInPixels:heightInPixels:pixelsPerInch:`, for example 1920 × 1200
    /// at 80 pixels per inch (Apple's sample), or a Retina size at about 220.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (argument `"Mac display"`) when a value is 0 or
    /// negative, or a size is above [`MAX_PIXELS`](Self::MAX_PIXELS);
    /// [`VZError::Unsupported`] before macOS 12.
    pub fn new(
        width_in_pixels: isize,
        height_in_pixels: isize,
        pixels_per_inch: isize,
    ) -> Result<Self, VZError> {
        let class = class_since(
            class!("VZMacGraphicsDisplayConfiguration"),
            "Mac graphics display",
            "12.0",
        )?;
        for (value, what, max) in [
            (width_in_pixels, "width in pixels", Self::MAX_PIXELS),
            (height_in_pixels, "height in pixels", Self::MAX_PIXELS),
            (pixels_per_inch, "pixels per inch", isize::MAX),
        ] {
            if value <= 0 {
                return Err(VZError::invalid_argument(
                    DISPLAY,
                    format!("the {what} is {value}; it must be greater than 0"),
                ));
            }
            if value > max {
                return Err(VZError::invalid_argument(
                    DISPLAY,
                    format!("the {what} is {value}; the limit is {max}"),
                ));
            }
        }
        in_pool!({
            display_init(
                class.alloc(),
                width_in_pixels,
                height_in_pixels,
                pixels_per_inch,
            )
        })
        .map(|obj| Self { obj })
        .ok_or(VZError::ClassNotFound {
            class: "VZMacGraphicsDisplayConfiguration",
        })
    }

    /// `widthInPixels`.
    pub fn width_in_pixels(&self) -> isize {
        in_pool!(width_raw(&self.obj))
    }

    /// `heightInPixels`.
    pub fn height_in_pixels(&self) -> isize {
        in_pool!(height_raw(&self.obj))
    }

    /// `pixelsPerInch`.
    pub fn pixels_per_inch(&self) -> isize {
        in_pool!(ppi_raw(&self.obj))
    }
}

/// `VZMacGraphicsDeviceConfiguration` (macOS 12): the graphics device of a macOS
/// guest (use [`VirtioGraphicsDeviceConfiguration`] for Linux).
///
/// ```no_run
/// # fn main() -> Result<(), arcbox_vz::VZError> {
/// use arcbox_vz::*;
///
/// let mut gpu = MacGraphicsDeviceConfiguration::new()?;
/// gpu.set_displays(vec![MacGraphicsDisplayConfiguration::new(1920, 1200, 80)?]);
/// let mut config = VirtualMachineConfiguration::new()?;
/// config.set_graphics_devices(vec![gpu]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MacGraphicsDeviceConfiguration {
    obj: Id,
    displays: Vec<MacGraphicsDisplayConfiguration>,
}

impl AsObject for MacGraphicsDeviceConfiguration {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

impl MacGraphicsDeviceConfiguration {
    /// `init`: a device without displays.
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 12.
    pub fn new() -> Result<Self, VZError> {
        let class = class_since(
            class!("VZMacGraphicsDeviceConfiguration"),
            "Mac graphics device",
            "12.0",
        )?;
        let obj = in_pool!(graphics_init(class.alloc())).ok_or(VZError::ClassNotFound {
            class: "VZMacGraphicsDeviceConfiguration",
        })?;
        Ok(Self {
            obj,
            displays: Vec::new(),
        })
    }

    /// Sets the displays (`setDisplays:`); Apple's samples use one.
    pub fn set_displays(&mut self, displays: Vec<MacGraphicsDisplayConfiguration>) -> &mut Self {
        in_pool!(set_displays_raw(&self.obj, &object_array(&displays)));
        self.displays = displays;
        self
    }

    /// The displays set with [`set_displays`](Self::set_displays).
    pub fn displays(&self) -> &[MacGraphicsDisplayConfiguration] {
        &self.displays
    }
}

/// `VZMacKeyboardConfiguration` (macOS 14, Apple silicon): a Mac keyboard, with keys
/// such as Globe, recognised by macOS 13 and later guests. List a
/// [`USBKeyboardConfiguration`] as well to serve older guests (vz-api.tsv).
#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
#[derive(Debug)]
pub struct MacKeyboardConfiguration {
    obj: Id,
}

#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
impl MacKeyboardConfiguration {
    /// `init`.
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 14 or on an Intel Mac.
    pub fn new() -> Result<Self, VZError> {
        let class = class_since(class!("VZMacKeyboardConfiguration"), "Mac keyboard", "14.0")?;
        in_pool!(input_init(class.alloc()))
            .map(|obj| Self { obj })
            .ok_or(VZError::ClassNotFound {
                class: "VZMacKeyboardConfiguration",
            })
    }
}

/// `VZMacTrackpadConfiguration` (macOS 13, Apple silicon): a multi-touch trackpad,
/// recognised by macOS 13 and later guests. List a
/// [`USBScreenCoordinatePointingDeviceConfiguration`] as well to serve older guests
/// (vz-api.tsv).
#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
#[derive(Debug)]
pub struct MacTrackpadConfiguration {
    obj: Id,
}

#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
impl MacTrackpadConfiguration {
    /// `init`.
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 13 or on an Intel Mac.
    pub fn new() -> Result<Self, VZError> {
        let class = class_since(class!("VZMacTrackpadConfiguration"), "Mac trackpad", "13.0")?;
        in_pool!(input_init(class.alloc()))
            .map(|obj| Self { obj })
            .ok_or(VZError::ClassNotFound {
                class: "VZMacTrackpadConfiguration",
            })
    }
}

/// A graphics device for
/// [`set_graphics_devices`](crate::VirtualMachineConfiguration::set_graphics_devices).
#[derive(Debug)]
pub enum GraphicsDeviceConfiguration {
    /// virtio-gpu, for Linux guests.
    Virtio(VirtioGraphicsDeviceConfiguration),
    /// The Mac graphics device, for macOS guests.
    Mac(MacGraphicsDeviceConfiguration),
}

impl AsObject for GraphicsDeviceConfiguration {
    fn as_object(&self) -> &Id {
        match self {
            Self::Virtio(d) => d.as_object(),
            Self::Mac(d) => d.as_object(),
        }
    }
}

impl From<VirtioGraphicsDeviceConfiguration> for GraphicsDeviceConfiguration {
    fn from(d: VirtioGraphicsDeviceConfiguration) -> Self {
        Self::Virtio(d)
    }
}

impl From<MacGraphicsDeviceConfiguration> for GraphicsDeviceConfiguration {
    fn from(d: MacGraphicsDeviceConfiguration) -> Self {
        Self::Mac(d)
    }
}

/// A keyboard for [`set_keyboards`](crate::VirtualMachineConfiguration::set_keyboards).
#[derive(Debug)]
pub enum KeyboardConfiguration {
    /// A USB keyboard.
    USB(USBKeyboardConfiguration),
    /// A Mac keyboard (macOS 14, Apple silicon).
    #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
    Mac(MacKeyboardConfiguration),
}

impl AsObject for KeyboardConfiguration {
    fn as_object(&self) -> &Id {
        match self {
            Self::USB(d) => d.as_object(),
            #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
            Self::Mac(d) => &d.obj,
        }
    }
}

impl From<USBKeyboardConfiguration> for KeyboardConfiguration {
    fn from(d: USBKeyboardConfiguration) -> Self {
        Self::USB(d)
    }
}

#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
impl From<MacKeyboardConfiguration> for KeyboardConfiguration {
    fn from(d: MacKeyboardConfiguration) -> Self {
        Self::Mac(d)
    }
}

/// A pointing device for
/// [`set_pointing_devices`](crate::VirtualMachineConfiguration::set_pointing_devices).
#[derive(Debug)]
pub enum PointingDeviceConfiguration {
    /// A USB device reporting absolute screen coordinates.
    USBScreenCoordinate(USBScreenCoordinatePointingDeviceConfiguration),
    /// A Mac trackpad (macOS 13, Apple silicon).
    #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
    MacTrackpad(MacTrackpadConfiguration),
}

impl AsObject for PointingDeviceConfiguration {
    fn as_object(&self) -> &Id {
        match self {
            Self::USBScreenCoordinate(d) => d.as_object(),
            #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
            Self::MacTrackpad(d) => &d.obj,
        }
    }
}

impl From<USBScreenCoordinatePointingDeviceConfiguration> for PointingDeviceConfiguration {
    fn from(d: USBScreenCoordinatePointingDeviceConfiguration) -> Self {
        Self::USBScreenCoordinate(d)
    }
}

#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
impl From<MacTrackpadConfiguration> for PointingDeviceConfiguration {
    fn from(d: MacTrackpadConfiguration) -> Self {
        Self::MacTrackpad(d)
    }
}
