//! `VZVirtualMachineConfiguration`: the top-level description of a virtual machine.

use crate::configuration::{
    AsObject, BootLoader, Platform, base_class, method_since, object_array,
};
use crate::device::{
    GraphicsDeviceConfiguration, KeyboardConfiguration, PointingDeviceConfiguration,
    StorageDeviceConfiguration, VirtioConsoleDeviceConfiguration,
    VirtioConsoleDeviceSerialPortConfiguration, VirtioEntropyDeviceConfiguration,
    VirtioFileSystemDeviceConfiguration, VirtioNetworkDeviceConfiguration,
    VirtioSocketDeviceConfiguration, VirtioSoundDeviceConfiguration,
    VirtioTraditionalMemoryBalloonDeviceConfiguration, XHCIControllerConfiguration,
};
use crate::error::VZError;
use crate::ffi::foundation::{self, with_error};
use crate::ffi::runtime::{ClassRef, Id, Sel, class, in_pool, objc_methods, sel};
use crate::vm::VirtualMachine;

objc_methods! {
    fn config_new(class: ClassRef) -> Option<Id> = "new";
    fn set_cpu_count_raw(config: &Id, count: usize) = "setCPUCount:";
    fn cpu_count_raw(config: &Id) -> usize = "CPUCount";
    fn set_memory_size_raw(config: &Id, bytes: u64) = "setMemorySize:";
    fn memory_size_raw(config: &Id) -> u64 = "memorySize";
    fn set_boot_loader_raw(config: &Id, boot_loader: Option<&Id>) = "setBootLoader:";
    fn set_platform_raw(config: &Id, platform: &Id) = "setPlatform:";
    fn set_storage_devices_raw(config: &Id, devices: &Id) = "setStorageDevices:";
    fn set_network_devices_raw(config: &Id, devices: &Id) = "setNetworkDevices:";
    fn set_serial_ports_raw(config: &Id, ports: &Id) = "setSerialPorts:";
    fn set_console_devices_raw(config: &Id, devices: &Id) = "setConsoleDevices:";
    fn set_socket_devices_raw(config: &Id, devices: &Id) = "setSocketDevices:";
    fn set_entropy_devices_raw(config: &Id, devices: &Id) = "setEntropyDevices:";
    fn set_memory_balloon_devices_raw(config: &Id, devices: &Id) = "setMemoryBalloonDevices:";
    fn set_directory_sharing_devices_raw(config: &Id, devices: &Id) =
        "setDirectorySharingDevices:";
    fn set_graphics_devices_raw(config: &Id, devices: &Id) = "setGraphicsDevices:";
    fn set_keyboards_raw(config: &Id, devices: &Id) = "setKeyboards:";
    fn set_pointing_devices_raw(config: &Id, devices: &Id) = "setPointingDevices:";
    fn set_usb_controllers_raw(config: &Id, controllers: &Id) = "setUsbControllers:";
    fn set_audio_devices_raw(config: &Id, devices: &Id) = "setAudioDevices:";
    fn validate_raw(config: &Id, error: &mut foundation::ErrorSlot) -> bool = "validateWithError:";
    fn min_memory_raw(class: ClassRef) -> u64 = "minimumAllowedMemorySize";
    fn max_memory_raw(class: ClassRef) -> u64 = "maximumAllowedMemorySize";
    fn min_cpu_raw(class: ClassRef) -> usize = "minimumAllowedCPUCount";
    fn max_cpu_raw(class: ClassRef) -> usize = "maximumAllowedCPUCount";
}

#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
objc_methods! {
    fn validate_save_restore_raw(config: &Id, error: &mut foundation::ErrorSlot) -> bool =
        "validateSaveRestoreSupportWithError:";
}

fn config_class() -> ClassRef {
    base_class(class!("VZVirtualMachineConfiguration"))
}

/// The fewest virtual CPUs a virtual machine may have
/// (`+[VZVirtualMachineConfiguration minimumAllowedCPUCount]`).
pub fn min_cpu_count() -> usize {
    min_cpu_raw(config_class())
}

/// The most virtual CPUs a virtual machine may have on this Mac
/// (`+[VZVirtualMachineConfiguration maximumAllowedCPUCount]`).
pub fn max_cpu_count() -> usize {
    max_cpu_raw(config_class())
}

/// The least memory, in bytes, a virtual machine may have
/// (`+[VZVirtualMachineConfiguration minimumAllowedMemorySize]`).
pub fn min_memory_size() -> u64 {
    min_memory_raw(config_class())
}

/// The most memory, in bytes, a virtual machine may have on this Mac
/// (`+[VZVirtualMachineConfiguration maximumAllowedMemorySize]`).
pub fn max_memory_size() -> u64 {
    max_memory_raw(config_class())
}

const MIB: u64 = 1024 * 1024;

/// `VZVirtualMachineConfiguration`: CPUs, memory, boot loader, platform and devices.
///
/// Setters chain. Nothing is checked until [`validate`](Self::validate) (or
/// [`build`](Self::build), which validates first): then CPU count, memory size and
/// the boot loader are checked in Rust, with errors that say what to change, and the
/// rest by the framework's own `validateWithError:`.
///
/// ```no_run
/// # fn main() -> Result<(), arcbox_vz::VZError> {
/// use arcbox_vz::{GenericPlatform, LinuxBootLoader, VirtualMachineConfiguration};
///
/// let mut config = VirtualMachineConfiguration::new()?;
/// config
///     .set_cpu_count(2)
///     .set_memory_size(512 * 1024 * 1024)
///     .set_boot_loader(LinuxBootLoader::new("/path/to/Image")?)
///     .set_platform(GenericPlatform::new()?);
/// config.validate()?;
/// let vm = config.build()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct VirtualMachineConfiguration {
    obj: Id,
    boot_loader: Option<BootLoader>,
    platform: Option<Platform>,
    storage_devices: Vec<StorageDeviceConfiguration>,
    network_devices: Vec<VirtioNetworkDeviceConfiguration>,
    serial_ports: Vec<VirtioConsoleDeviceSerialPortConfiguration>,
    console_devices: Vec<VirtioConsoleDeviceConfiguration>,
    socket_devices: Vec<VirtioSocketDeviceConfiguration>,
    entropy_devices: Vec<VirtioEntropyDeviceConfiguration>,
    memory_balloon_devices: Vec<VirtioTraditionalMemoryBalloonDeviceConfiguration>,
    directory_sharing_devices: Vec<VirtioFileSystemDeviceConfiguration>,
    graphics_devices: Vec<GraphicsDeviceConfiguration>,
    keyboards: Vec<KeyboardConfiguration>,
    pointing_devices: Vec<PointingDeviceConfiguration>,
    usb_controllers: Vec<XHCIControllerConfiguration>,
    audio_devices: Vec<VirtioSoundDeviceConfiguration>,
}

macro_rules! device_list {
    ($(
        $(#[$doc:meta])*
        $set:ident, $get:ident, $field:ident: $ty:ty => $raw:ident $(, since $since:expr)?;
    )*) => {$(
        $(#[$doc])*
        pub fn $set(&mut self, devices: Vec<$ty>) -> &mut Self {
            let since: Option<NewerSetter> = None $(.or(Some($since)))?;
            // The availability check is made here, where the selector is sent, and
            // whatever the list holds: a setter this macOS lacks is never sent.
            // `validate` reports a non-empty list for it.
            if since.is_none_or(|since| since.is_available(&self.obj)) {
                in_pool!($raw(&self.obj, &object_array(&devices)));
            }
            self.$field = devices;
            self
        }

        #[doc = concat!("The devices set with [`", stringify!($set), "`](Self::", stringify!($set), ").")]
        pub fn $get(&self) -> &[$ty] {
            &self.$field
        }
    )*};
}

/// `device_list!` for lists of several device kinds: the setter takes any one kind
/// (so existing callers keep compiling) and stores the enum.
macro_rules! mixed_device_list {
    ($(
        $(#[$doc:meta])*
        $set:ident, $get:ident, $field:ident: $ty:ty => $raw:ident, since $since:expr;
    )*) => {$(
        $(#[$doc])*
        pub fn $set(&mut self, devices: Vec<impl Into<$ty>>) -> &mut Self {
            let devices: Vec<$ty> = devices.into_iter().map(Into::into).collect();
            // As in device_list!: the setter is sent only where this macOS has it.
            if $since.is_available(&self.obj) {
                in_pool!($raw(&self.obj, &object_array(&devices)));
            }
            self.$field = devices;
            self
        }

        #[doc = concat!("The devices set with [`", stringify!($set), "`](Self::", stringify!($set), ").")]
        pub fn $get(&self) -> &[$ty] {
            &self.$field
        }
    )*};
}

/// A device-list setter of `VZVirtualMachineConfiguration` newer than macOS 11 (the
/// oldest macOS with the framework); versions from vz-api.tsv.
#[derive(Clone, Copy)]
struct NewerSetter {
    selector: fn() -> Sel,
    feature: &'static str,
    min_macos: &'static str,
}

impl NewerSetter {
    /// Whether this macOS has the setter (`respondsToSelector:`). The one check for
    /// both the send (in the setter) and the error (in `validate`), so they agree.
    fn check(&self, config: &Id) -> Result<(), VZError> {
        method_since(config, (self.selector)(), self.feature, self.min_macos)
    }

    fn is_available(&self, config: &Id) -> bool {
        self.check(config).is_ok()
    }

    /// An empty list needs no setter (nothing to configure); a non-empty one needs it.
    fn check_list(&self, config: &Id, len: usize) -> Result<(), VZError> {
        if len == 0 { Ok(()) } else { self.check(config) }
    }
}

const DIRECTORY_SHARING: NewerSetter = NewerSetter {
    selector: || sel!("setDirectorySharingDevices:"),
    feature: "directory sharing devices",
    min_macos: "12.0",
};
const GRAPHICS: NewerSetter = NewerSetter {
    selector: || sel!("setGraphicsDevices:"),
    feature: "graphics devices",
    min_macos: "12.0",
};
const KEYBOARDS: NewerSetter = NewerSetter {
    selector: || sel!("setKeyboards:"),
    feature: "keyboards",
    min_macos: "12.0",
};
const POINTING: NewerSetter = NewerSetter {
    selector: || sel!("setPointingDevices:"),
    feature: "pointing devices",
    min_macos: "12.0",
};
const CONSOLE: NewerSetter = NewerSetter {
    selector: || sel!("setConsoleDevices:"),
    feature: "virtio console devices",
    min_macos: "13.0",
};
const USB_CONTROLLERS: NewerSetter = NewerSetter {
    selector: || sel!("setUsbControllers:"),
    feature: "USB controllers",
    min_macos: "15.0",
};
const AUDIO: NewerSetter = NewerSetter {
    selector: || sel!("setAudioDevices:"),
    feature: "audio devices",
    min_macos: "12.0",
};

impl VirtualMachineConfiguration {
    /// A configuration with the framework's defaults: 1 CPU, the minimum memory, no
    /// boot loader and no devices.
    ///
    /// # Errors
    ///
    /// Only if Virtualization.framework is unusable in this process.
    pub fn new() -> Result<Self, VZError> {
        let obj = in_pool!(config_new(config_class())).ok_or(VZError::ClassNotFound {
            class: "VZVirtualMachineConfiguration",
        })?;
        Ok(Self {
            obj,
            boot_loader: None,
            platform: None,
            storage_devices: Vec::new(),
            network_devices: Vec::new(),
            serial_ports: Vec::new(),
            console_devices: Vec::new(),
            socket_devices: Vec::new(),
            entropy_devices: Vec::new(),
            memory_balloon_devices: Vec::new(),
            directory_sharing_devices: Vec::new(),
            graphics_devices: Vec::new(),
            keyboards: Vec::new(),
            pointing_devices: Vec::new(),
            usb_controllers: Vec::new(),
            audio_devices: Vec::new(),
        })
    }

    /// Sets the number of virtual CPUs (`setCPUCount:`), checked by
    /// [`validate`](Self::validate) against [`min_cpu_count`] and [`max_cpu_count`].
    pub fn set_cpu_count(&mut self, count: usize) -> &mut Self {
        set_cpu_count_raw(&self.obj, count);
        self
    }

    /// The number of virtual CPUs (`CPUCount`).
    pub fn cpu_count(&self) -> usize {
        cpu_count_raw(&self.obj)
    }

    /// Sets the memory size in bytes (`setMemorySize:`). It must be a multiple of
    /// 1 MiB between [`min_memory_size`] and [`max_memory_size`], which
    /// [`validate`](Self::validate) checks.
    pub fn set_memory_size(&mut self, bytes: u64) -> &mut Self {
        set_memory_size_raw(&self.obj, bytes);
        self
    }

    /// The memory size in bytes (`memorySize`).
    pub fn memory_size(&self) -> u64 {
        memory_size_raw(&self.obj)
    }

    /// Sets the boot loader (`setBootLoader:`): a [`LinuxBootLoader`](crate::LinuxBootLoader)
    /// or an [`EFIBootLoader`](crate::EFIBootLoader).
    pub fn set_boot_loader(&mut self, boot_loader: impl Into<BootLoader>) -> &mut Self {
        let boot_loader = boot_loader.into();
        in_pool!(set_boot_loader_raw(
            &self.obj,
            Some(boot_loader.as_object())
        ));
        self.boot_loader = Some(boot_loader);
        self
    }

    /// The boot loader, if one was set.
    pub fn boot_loader(&self) -> Option<&BootLoader> {
        self.boot_loader.as_ref()
    }

    /// Sets the platform (`setPlatform:`, macOS 12): a [`GenericPlatform`](crate::GenericPlatform), or a
    /// `MacPlatformConfiguration` for a macOS guest on Apple silicon. Without one, the framework uses a default [`GenericPlatform`](crate::GenericPlatform).
    pub fn set_platform(&mut self, platform: impl Into<Platform>) -> &mut Self {
        let platform = platform.into();
        // Both platforms exist only where their classes do (macOS 12), and so does
        // the setter.
        in_pool!(set_platform_raw(&self.obj, platform.as_object()));
        self.platform = Some(platform);
        self
    }

    /// The platform, if one was set.
    pub fn platform(&self) -> Option<&Platform> {
        self.platform.as_ref()
    }

    mixed_device_list! {
        /// Sets the graphics devices (`setGraphicsDevices:`, macOS 12): virtio-gpu
        /// ([`VirtioGraphicsDeviceConfiguration`](crate::VirtioGraphicsDeviceConfiguration))
        /// or, for macOS guests, [`MacGraphicsDeviceConfiguration`](crate::MacGraphicsDeviceConfiguration).
        set_graphics_devices, graphics_devices, graphics_devices: GraphicsDeviceConfiguration
            => set_graphics_devices_raw, since GRAPHICS;
        /// Sets the keyboards (`setKeyboards:`, macOS 12): USB keyboards or, for macOS
        /// guests on Apple silicon, a `MacKeyboardConfiguration` (macOS 14), best
        /// listed with a USB keyboard for guests older than macOS 13.
        set_keyboards, keyboards, keyboards: KeyboardConfiguration => set_keyboards_raw, since KEYBOARDS;
        /// Sets the pointing devices (`setPointingDevices:`, macOS 12): USB
        /// screen-coordinate devices or, for macOS guests on Apple silicon, a
        /// `MacTrackpadConfiguration` (macOS 13), best listed with a USB one for guests
        /// older than macOS 13. Kinds mix through `.into()` into
        /// [`PointingDeviceConfiguration`](crate::PointingDeviceConfiguration).
        set_pointing_devices, pointing_devices,
            pointing_devices: PointingDeviceConfiguration
            => set_pointing_devices_raw, since POINTING;
    }

    device_list! {
        /// Sets the storage devices (`setStorageDevices:`): virtio-blk, USB mass
        /// storage and NVMe controllers.
        set_storage_devices, storage_devices, storage_devices: StorageDeviceConfiguration
            => set_storage_devices_raw;
        /// Sets the network devices (`setNetworkDevices:`).
        set_network_devices, network_devices, network_devices: VirtioNetworkDeviceConfiguration
            => set_network_devices_raw;
        /// Sets the serial ports (`setSerialPorts:`). The first port is where the fake
        /// guest of the simulator and most Linux guests (`console=hvc0`) print.
        set_serial_ports, serial_ports, serial_ports: VirtioConsoleDeviceSerialPortConfiguration
            => set_serial_ports_raw;
        /// Sets the virtio console devices (`setConsoleDevices:`, macOS 13).
        set_console_devices, console_devices, console_devices: VirtioConsoleDeviceConfiguration
            => set_console_devices_raw, since CONSOLE;
        /// Sets the socket devices (`setSocketDevices:`); at most one virtio-vsock
        /// device is allowed.
        set_socket_devices, socket_devices, socket_devices: VirtioSocketDeviceConfiguration
            => set_socket_devices_raw;
        /// Sets the entropy devices (`setEntropyDevices:`).
        set_entropy_devices, entropy_devices, entropy_devices: VirtioEntropyDeviceConfiguration
            => set_entropy_devices_raw;
        /// Sets the memory balloon devices (`setMemoryBalloonDevices:`); at most one.
        set_memory_balloon_devices, memory_balloon_devices,
            memory_balloon_devices: VirtioTraditionalMemoryBalloonDeviceConfiguration
            => set_memory_balloon_devices_raw;
        /// Sets the directory sharing devices (`setDirectorySharingDevices:`, macOS 12).
        set_directory_sharing_devices, directory_sharing_devices,
            directory_sharing_devices: VirtioFileSystemDeviceConfiguration
            => set_directory_sharing_devices_raw, since DIRECTORY_SHARING;
        /// Sets the USB controllers (`setUsbControllers:`, macOS 15).
        set_usb_controllers, usb_controllers, usb_controllers: XHCIControllerConfiguration
            => set_usb_controllers_raw, since USB_CONTROLLERS;
        /// Sets the audio devices (`setAudioDevices:`, macOS 12). Recording from the
        /// host needs the microphone permission: see
        /// [`HostAudioInputStreamSource`](crate::HostAudioInputStreamSource).
        set_audio_devices, audio_devices, audio_devices: VirtioSoundDeviceConfiguration
            => set_audio_devices_raw, since AUDIO;
    }

    /// Checks the configuration: first in Rust (CPU count, memory size, boot loader),
    /// then with
    /// `-[VZVirtualMachineConfiguration validateWithError:]`.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] naming the setting to change;
    /// [`VZError::Unsupported`] when a device list this macOS cannot configure (for
    /// example console devices before macOS 13) is not empty (an empty one is simply
    /// not sent); or [`VZError::InvalidConfiguration`] with the framework's reason (this is also
    /// where a binary without the `com.apple.security.virtualization` entitlement
    /// fails).
    pub fn validate(&self) -> Result<(), VZError> {
        let cpus = self.cpu_count();
        let (min_cpus, max_cpus) = (min_cpu_count(), max_cpu_count());
        if cpus < min_cpus || cpus > max_cpus {
            return Err(VZError::invalid_argument(
                "CPU count",
                format!("{cpus} is outside the allowed range {min_cpus}..={max_cpus} for this Mac"),
            ));
        }
        let memory = self.memory_size();
        if memory % MIB != 0 {
            return Err(VZError::invalid_argument(
                "memory size",
                format!("{memory} bytes is not a multiple of 1 MiB (1048576 bytes)"),
            ));
        }
        let (min_memory, max_memory) = (min_memory_size(), max_memory_size());
        if memory < min_memory || memory > max_memory {
            return Err(VZError::invalid_argument(
                "memory size",
                format!(
                    "{} MiB is outside the allowed range {}..={} MiB for this Mac",
                    memory / MIB,
                    min_memory / MIB,
                    max_memory / MIB
                ),
            ));
        }
        for (setter, len) in [
            (DIRECTORY_SHARING, self.directory_sharing_devices.len()),
            (GRAPHICS, self.graphics_devices.len()),
            (KEYBOARDS, self.keyboards.len()),
            (POINTING, self.pointing_devices.len()),
            (CONSOLE, self.console_devices.len()),
            (USB_CONTROLLERS, self.usb_controllers.len()),
            (AUDIO, self.audio_devices.len()),
        ] {
            setter.check_list(&self.obj, len)?;
        }
        #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
        {
            // A macOS guest needs both halves (vz-api.tsv: VZMacOSBootLoader is "only
            // valid with VZMacPlatformConfiguration").
            let mac_boot = matches!(self.boot_loader, Some(BootLoader::MacOS(_)));
            let mac_platform = matches!(self.platform, Some(Platform::Mac(_)));
            if mac_boot && !mac_platform {
                return Err(VZError::invalid_argument(
                    "platform",
                    "a MacOSBootLoader needs a MacPlatformConfiguration; call set_platform with one",
                ));
            }
            if mac_platform && !mac_boot && self.boot_loader.is_some() {
                return Err(VZError::invalid_argument(
                    "boot loader",
                    "a MacPlatformConfiguration boots with a MacOSBootLoader only",
                ));
            }
        }
        if self.boot_loader.is_none() {
            return Err(VZError::invalid_argument(
                "boot loader",
                "the configuration has none; call set_boot_loader with a LinuxBootLoader, an EFIBootLoader or (macOS guests) a MacOSBootLoader",
            ));
        }
        with_error(
            "-[VZVirtualMachineConfiguration validateWithError:]",
            |error| validate_raw(&self.obj, error).then_some(()),
        )
        .map_err(VZError::InvalidConfiguration)
    }

    /// Checks that a virtual machine with this configuration can save and restore its
    /// state (`validateSaveRestoreSupportWithError:`, macOS 14, Apple silicon only; also
    /// compiled for the Linux test simulator).
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 14, or [`VZError::InvalidConfiguration`]
    /// with the framework's reason.
    #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
    pub fn validate_save_restore_support(&self) -> Result<(), VZError> {
        crate::configuration::method_since(
            &self.obj,
            crate::ffi::runtime::sel!("validateSaveRestoreSupportWithError:"),
            "saving and restoring virtual machine state",
            "14.0",
        )?;
        with_error(
            "-[VZVirtualMachineConfiguration validateSaveRestoreSupportWithError:]",
            |error| validate_save_restore_raw(&self.obj, error).then_some(()),
        )
        .map_err(VZError::InvalidConfiguration)
    }

    /// Validates the configuration and creates a virtual machine from it, on a new
    /// private serial queue. The framework copies the configuration, so changing this
    /// builder afterwards does not affect the virtual machine.
    ///
    /// # Errors
    ///
    /// As for [`validate`](Self::validate).
    pub fn build(&self) -> Result<VirtualMachine, VZError> {
        self.validate()?;
        let vm = VirtualMachine::from_configuration(&self.obj)?;
        // The framework's attachments point at their vmnet networks; the VM holds them.
        vm.keep_alive(
            self.network_devices
                .iter()
                .filter_map(|device| match device.attachment() {
                    crate::device::NetworkDeviceAttachment::Vmnet(a) => Some(a.network().clone()),
                    _ => None,
                })
                .collect(),
        );
        Ok(vm)
    }
}

// Beside the configuration it reads, so that `macos.rs` (which the boot loader and the
// platform name) does not depend on this file.
#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
impl crate::configuration::MacOSConfigurationRequirements {
    /// [`check`](Self::check) with the CPU count and memory size of `configuration`.
    ///
    /// # Errors
    ///
    /// As for [`check`](Self::check).
    pub fn check_configuration(
        &self,
        configuration: &VirtualMachineConfiguration,
    ) -> Result<(), VZError> {
        self.check(configuration.cpu_count(), configuration.memory_size())
    }
}
