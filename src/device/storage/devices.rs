//! The storage devices a guest sees: virtio-blk, USB mass storage and NVMe.

use super::*;

const BLOCK_DEVICE_IDENTIFIER: &str = "block device identifier";

/// The documented rule for a virtio-blk identifier: at most 20 bytes of ASCII. NUL is
/// refused too, since the guest reads the identifier as a C string.
fn check_block_device_identifier(identifier: &str) -> Result<(), VZError> {
    check_string(identifier, BLOCK_DEVICE_IDENTIFIER)?;
    if !identifier.is_ascii() {
        return Err(VZError::invalid_argument(
            BLOCK_DEVICE_IDENTIFIER,
            format!("{identifier:?} contains non-ASCII characters; the identifier must be ASCII"),
        ));
    }
    if identifier.len() > 20 {
        return Err(VZError::invalid_argument(
            BLOCK_DEVICE_IDENTIFIER,
            format!(
                "{identifier:?} is {} bytes long; the limit is 20 bytes",
                identifier.len()
            ),
        ));
    }
    Ok(())
}

/// `VZVirtioBlockDeviceConfiguration`: a virtio-blk disk (`/dev/vda`, `/dev/vdb`, ... in
/// a Linux guest).
///
/// ```no_run
/// # fn main() -> Result<(), arcbox_vz::VZError> {
/// use arcbox_vz::{
///     DiskImageStorageDeviceAttachment, LinuxBootLoader, VirtioBlockDeviceConfiguration,
///     VirtualMachineConfiguration,
/// };
///
/// let root = DiskImageStorageDeviceAttachment::new("/path/to/root.img", false)?;
/// let mut disk = VirtioBlockDeviceConfiguration::new(root)?;
/// // The guest finds it as /dev/disk/by-id/virtio-root.
/// disk.set_block_device_identifier("root")?;
///
/// let mut config = VirtualMachineConfiguration::new()?;
/// config
///     .set_boot_loader(LinuxBootLoader::new("/path/to/Image")?)
///     .set_storage_devices(vec![disk.into()]);
/// config.validate()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct VirtioBlockDeviceConfiguration {
    obj: Id,
    attachment: StorageDeviceAttachment,
}

impl AsObject for VirtioBlockDeviceConfiguration {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

impl VirtioBlockDeviceConfiguration {
    /// `-[VZVirtioBlockDeviceConfiguration initWithAttachment:]`: a virtio-blk disk
    /// backed by `attachment`.
    ///
    /// # Errors
    ///
    /// Only if Virtualization.framework is unusable in this process.
    pub fn new(attachment: impl Into<StorageDeviceAttachment>) -> Result<Self, VZError> {
        let attachment = attachment.into();
        let class = base_class(class!("VZVirtioBlockDeviceConfiguration"));
        let obj = new_device(class, &attachment, "VZVirtioBlockDeviceConfiguration")?;
        Ok(Self { obj, attachment })
    }

    /// `setBlockDeviceIdentifier:` (macOS 12.3): the identifier the guest reads with a
    /// `VIRTIO_BLK_T_GET_ID` request (Linux shows it in `/dev/disk/by-id/virtio-*`).
    /// An empty string removes it.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (`"block device identifier"`) when it is longer
    /// than 20 bytes, is not ASCII, contains a NUL byte or starts with U+FEFF, or
    /// `+validateBlockDeviceIdentifier:error:` refuses it; [`VZError::Unsupported`]
    /// before macOS 12.3.
    pub fn set_block_device_identifier(&mut self, identifier: &str) -> Result<&mut Self, VZError> {
        method_since(
            &self.obj,
            sel!("setBlockDeviceIdentifier:"),
            "virtio block device identifier",
            "12.3",
        )?;
        check_block_device_identifier(identifier)?;
        let class = base_class(class!("VZVirtioBlockDeviceConfiguration"));
        autoreleasepool(|| {
            let string = foundation::ns_string(identifier);
            with_error(
                "+[VZVirtioBlockDeviceConfiguration validateBlockDeviceIdentifier:error:]",
                |error| validate_block_device_identifier_raw(class, &string, error).then_some(()),
            )
            .map_err(|e| {
                VZError::invalid_argument(
                    BLOCK_DEVICE_IDENTIFIER,
                    format!("{identifier:?}: {}", e.description),
                )
            })?;
            set_block_device_identifier_raw(&self.obj, &string);
            Ok::<(), VZError>(())
        })?;
        Ok(self)
    }

    /// `blockDeviceIdentifier` (macOS 12.3); empty when none is set, and always empty
    /// before macOS 12.3.
    pub fn block_device_identifier(&self) -> String {
        if !self.obj.responds_to(sel!("blockDeviceIdentifier")) {
            return String::new();
        }
        in_pool!({
            block_device_identifier_raw(&self.obj)
                .as_ref()
                .map(foundation::string_from)
                .unwrap_or_default()
        })
    }

    /// `attachment`: what backs the disk.
    pub fn attachment(&self) -> &StorageDeviceAttachment {
        &self.attachment
    }
}

const USB_DEVICE_UUID: &str = "USB device UUID";

/// Whether `s` has the form `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX` with hex digits,
/// which is what `-[NSUUID initWithUUIDString:]` accepts.
pub(super) fn is_uuid_string(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `VZUSBMassStorageDeviceConfiguration` (macOS 13): a USB disk, for example an
/// installer ISO attached read-only.
#[derive(Debug)]
pub struct USBMassStorageDeviceConfiguration {
    obj: Id,
    attachment: StorageDeviceAttachment,
}

impl AsObject for USBMassStorageDeviceConfiguration {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

impl USBMassStorageDeviceConfiguration {
    /// `-[VZUSBMassStorageDeviceConfiguration initWithAttachment:]` (macOS 13): a USB
    /// mass storage device backed by `attachment`.
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 13.
    pub fn new(attachment: impl Into<StorageDeviceAttachment>) -> Result<Self, VZError> {
        let attachment = attachment.into();
        let class = class_since(
            class!("VZUSBMassStorageDeviceConfiguration"),
            "USB mass storage device",
            "13.0",
        )?;
        let obj = new_device(class, &attachment, "VZUSBMassStorageDeviceConfiguration")?;
        Ok(Self { obj, attachment })
    }

    /// `uuid` (macOS 15): the device's USB identity, generated by the framework unless
    /// set, as an uppercase UUID string.
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 15.
    pub fn uuid(&self) -> Result<String, VZError> {
        method_since(&self.obj, sel!("uuid"), "USB device UUID", "15.0")?;
        Ok(in_pool!({
            uuid_raw(&self.obj)
                .as_ref()
                .map(foundation::uuid_to_string)
                .unwrap_or_default()
        }))
    }

    /// `setUuid:` (macOS 15): sets the device's USB identity, as a UUID string such as
    /// `"E621E1F8-C36C-495A-93FC-0C247A3E6E5F"` (either case).
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (`"USB device UUID"`) when `uuid` is not of that
    /// form; [`VZError::Unsupported`] before macOS 15.
    pub fn set_uuid(&mut self, uuid: &str) -> Result<&mut Self, VZError> {
        method_since(&self.obj, sel!("setUuid:"), "USB device UUID", "15.0")?;
        let invalid = || {
            VZError::invalid_argument(
                USB_DEVICE_UUID,
                format!(
                    "{uuid:?} is not a UUID; expected the form E621E1F8-C36C-495A-93FC-0C247A3E6E5F"
                ),
            )
        };
        if !is_uuid_string(uuid) {
            return Err(invalid());
        }
        let ns_uuid = foundation::uuid_from_string(uuid).ok_or_else(invalid)?;
        in_pool!(set_uuid_raw(&self.obj, &ns_uuid));
        Ok(self)
    }

    /// `attachment`: what backs the disk.
    pub fn attachment(&self) -> &StorageDeviceAttachment {
        &self.attachment
    }
}

/// `VZNVMExpressControllerDeviceConfiguration` (macOS 14): an NVMe disk. The framework
/// accepts it only with a [`GenericPlatform`](crate::GenericPlatform) (the default
/// platform of a [`VirtualMachineConfiguration`](crate::VirtualMachineConfiguration)).
#[derive(Debug)]
pub struct NVMExpressControllerDeviceConfiguration {
    obj: Id,
    attachment: StorageDeviceAttachment,
}

impl AsObject for NVMExpressControllerDeviceConfiguration {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

impl NVMExpressControllerDeviceConfiguration {
    /// `-[VZNVMExpressControllerDeviceConfiguration initWithAttachment:]` (macOS 14):
    /// an NVMe controller with one namespace backed by `attachment`.
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 14.
    pub fn new(attachment: impl Into<StorageDeviceAttachment>) -> Result<Self, VZError> {
        let attachment = attachment.into();
        let class = class_since(
            class!("VZNVMExpressControllerDeviceConfiguration"),
            "NVM Express controller",
            "14.0",
        )?;
        let obj = new_device(
            class,
            &attachment,
            "VZNVMExpressControllerDeviceConfiguration",
        )?;
        Ok(Self { obj, attachment })
    }

    /// `attachment`: what backs the disk.
    pub fn attachment(&self) -> &StorageDeviceAttachment {
        &self.attachment
    }
}

/// A `VZStorageDeviceConfiguration`, for
/// [`VirtualMachineConfiguration::set_storage_devices`](crate::VirtualMachineConfiguration::set_storage_devices).
#[derive(Debug)]
#[non_exhaustive]
pub enum StorageDeviceConfiguration {
    /// A virtio-blk disk.
    VirtioBlock(VirtioBlockDeviceConfiguration),
    /// A USB mass storage device (macOS 13).
    USBMassStorage(USBMassStorageDeviceConfiguration),
    /// An NVMe controller (macOS 14).
    NVMExpress(NVMExpressControllerDeviceConfiguration),
}

impl StorageDeviceConfiguration {
    /// `attachment`: what backs the disk.
    pub fn attachment(&self) -> &StorageDeviceAttachment {
        match self {
            Self::VirtioBlock(d) => d.attachment(),
            Self::USBMassStorage(d) => d.attachment(),
            Self::NVMExpress(d) => d.attachment(),
        }
    }
}

impl AsObject for StorageDeviceConfiguration {
    fn as_object(&self) -> &Id {
        match self {
            Self::VirtioBlock(d) => &d.obj,
            Self::USBMassStorage(d) => &d.obj,
            Self::NVMExpress(d) => &d.obj,
        }
    }
}

impl From<VirtioBlockDeviceConfiguration> for StorageDeviceConfiguration {
    fn from(d: VirtioBlockDeviceConfiguration) -> Self {
        Self::VirtioBlock(d)
    }
}

impl From<USBMassStorageDeviceConfiguration> for StorageDeviceConfiguration {
    fn from(d: USBMassStorageDeviceConfiguration) -> Self {
        Self::USBMassStorage(d)
    }
}

impl From<NVMExpressControllerDeviceConfiguration> for StorageDeviceConfiguration {
    fn from(d: NVMExpressControllerDeviceConfiguration) -> Self {
        Self::NVMExpress(d)
    }
}
