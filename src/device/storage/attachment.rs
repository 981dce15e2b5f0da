//! `VZStorageDeviceAttachment`: the sum of the attachment kinds.

use super::*;

/// A `VZStorageDeviceAttachment`: what backs a storage device on the host.
#[derive(Debug)]
#[non_exhaustive]
pub enum StorageDeviceAttachment {
    /// A raw disk image file.
    DiskImage(DiskImageStorageDeviceAttachment),
    /// A disk device of the host (macOS 14).
    DiskBlockDevice(DiskBlockDeviceStorageDeviceAttachment),
    /// A Network Block Device server (macOS 14).
    NetworkBlockDevice(NetworkBlockDeviceStorageDeviceAttachment),
}

impl AsObject for StorageDeviceAttachment {
    fn as_object(&self) -> &Id {
        match self {
            Self::DiskImage(a) => a.as_object(),
            Self::DiskBlockDevice(a) => a.as_object(),
            Self::NetworkBlockDevice(a) => a.as_object(),
        }
    }
}

impl From<DiskImageStorageDeviceAttachment> for StorageDeviceAttachment {
    fn from(a: DiskImageStorageDeviceAttachment) -> Self {
        Self::DiskImage(a)
    }
}

impl From<DiskBlockDeviceStorageDeviceAttachment> for StorageDeviceAttachment {
    fn from(a: DiskBlockDeviceStorageDeviceAttachment) -> Self {
        Self::DiskBlockDevice(a)
    }
}

impl From<NetworkBlockDeviceStorageDeviceAttachment> for StorageDeviceAttachment {
    fn from(a: NetworkBlockDeviceStorageDeviceAttachment) -> Self {
        Self::NetworkBlockDevice(a)
    }
}

/// `-initWithAttachment:` on a storage device class.
pub(super) fn new_device(
    class: ClassRef,
    attachment: &StorageDeviceAttachment,
    name: &'static str,
) -> Result<Id, VZError> {
    in_pool!(device_init(class.alloc(), attachment.as_object()))
        .ok_or(VZError::ClassNotFound { class: name })
}
