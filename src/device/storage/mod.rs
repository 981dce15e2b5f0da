//! Storage: the devices a guest sees as disks (`VZVirtioBlockDeviceConfiguration`,
//! `VZUSBMassStorageDeviceConfiguration` (macOS 13), `VZNVMExpressControllerDeviceConfiguration`
//! (macOS 14)) and what backs them on the host (`VZDiskImageStorageDeviceAttachment`,
//! `VZDiskBlockDeviceStorageDeviceAttachment` (macOS 14),
//! `VZNetworkBlockDeviceStorageDeviceAttachment` (macOS 14)).
//!
//! Every attachment checks its input in Rust first (the disk image exists, is a regular
//! file whose size is a multiple of 512 bytes; the descriptor is an open device; the
//! NBD URL is well formed), so a mistake comes back as [`VZError::InvalidArgument`]
//! instead of an Objective-C exception.
//!
//! See Apple's documentation of
//! [`VZStorageDeviceConfiguration`](https://developer.apple.com/documentation/virtualization/vzstoragedeviceconfiguration)
//! and
//! [`VZStorageDeviceAttachment`](https://developer.apple.com/documentation/virtualization/vzstoragedeviceattachment).

mod attachment;
mod block_device;
mod devices;
mod disk_image;
#[cfg(all(test, arcbox_vz_sim))]
mod framework_tests;
mod modes;
mod nbd;
#[cfg(test)]
mod tests;

pub use attachment::*;
pub use block_device::*;
pub use devices::*;
pub use disk_image::*;
pub use modes::*;
pub use nbd::*;

use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::configuration::{AsObject, base_class, class_since, existing_file, method_since};
use crate::error::VZError;
use crate::ffi::foundation::{self, ErrorSlot, check_string, with_error};
use crate::ffi::runtime::{
    Allocated, ClassRef, Id, autoreleasepool, class, in_pool, objc_methods, sel,
};

objc_methods! {
    fn disk_image_init(
        attachment: Allocated,
        url: &Id,
        read_only: bool,
        error: &mut ErrorSlot,
    ) -> Option<Id> = "initWithURL:readOnly:error:";
    fn disk_image_init_with_modes(
        attachment: Allocated,
        url: &Id,
        read_only: bool,
        caching_mode: isize,
        synchronization_mode: isize,
        error: &mut ErrorSlot,
    ) -> Option<Id> = "initWithURL:readOnly:cachingMode:synchronizationMode:error:";
    fn url_raw(attachment: &Id) -> Option<Id> = "URL";
    fn is_read_only_raw(attachment: &Id) -> bool = "isReadOnly";
    fn caching_mode_raw(attachment: &Id) -> isize = "cachingMode";
    fn synchronization_mode_raw(attachment: &Id) -> isize = "synchronizationMode";
    fn block_device_init(
        attachment: Allocated,
        file_handle: &Id,
        read_only: bool,
        synchronization_mode: isize,
        error: &mut ErrorSlot,
    ) -> Option<Id> = "initWithFileHandle:readOnly:synchronizationMode:error:";
    fn file_handle_raw(attachment: &Id) -> Option<Id> = "fileHandle";
    fn nbd_init(
        attachment: Allocated,
        url: &Id,
        timeout: f64,
        forced_read_only: bool,
        synchronization_mode: isize,
        error: &mut ErrorSlot,
    ) -> Option<Id> = "initWithURL:timeout:forcedReadOnly:synchronizationMode:error:";
    fn nbd_init_with_url(attachment: Allocated, url: &Id, error: &mut ErrorSlot) -> Option<Id> =
        "initWithURL:error:";
    fn nbd_validate_url(class: ClassRef, url: &Id, error: &mut ErrorSlot) -> bool =
        "validateURL:error:";
    fn timeout_raw(attachment: &Id) -> f64 = "timeout";
    fn is_forced_read_only_raw(attachment: &Id) -> bool = "isForcedReadOnly";
    fn device_init(device: Allocated, attachment: &Id) -> Option<Id> = "initWithAttachment:";
    fn validate_block_device_identifier_raw(
        class: ClassRef,
        identifier: &Id,
        error: &mut ErrorSlot,
    ) -> bool = "validateBlockDeviceIdentifier:error:";
    fn block_device_identifier_raw(device: &Id) -> Option<Id> = "blockDeviceIdentifier";
    fn set_block_device_identifier_raw(device: &Id, identifier: &Id) = "setBlockDeviceIdentifier:";
    fn uuid_raw(device: &Id) -> Option<Id> = "uuid";
    fn set_uuid_raw(device: &Id, uuid: &Id) = "setUuid:";
}
