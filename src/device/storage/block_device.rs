//! `VZDiskBlockDeviceStorageDeviceAttachment` (macOS 14): a disk device of the host.

use super::*;

const BLOCK_DEVICE_FD: &str = "block device file descriptor";

/// Checks that `fd` is open and refers to a disk: a block device (`/dev/diskN`) or a
/// raw disk's character device (`/dev/rdiskN`, as in Apple's own example) that
/// answers the disk sector-size request. `/dev/null`, `/dev/zero` or a terminal are
/// character devices too, but not disks: the framework would accept them and the
/// guest would get a disk that is never usable.
fn check_block_device(fd: BorrowedFd<'_>) -> Result<(), VZError> {
    let raw = fd.as_raw_fd();
    let unusable = |e: std::io::Error| {
        VZError::invalid_argument(
            BLOCK_DEVICE_FD,
            format!("file descriptor {raw} cannot be used: {e}"),
        )
    };
    let file = File::from(fd.try_clone_to_owned().map_err(unusable)?);
    let kind = file.metadata().map_err(unusable)?.file_type();
    if kind.is_block_device() || kind.is_char_device() {
        return match crate::ffi::fd::disk_sector_size(fd) {
            Ok(_) => Ok(()),
            Err(e) => Err(VZError::invalid_argument(
                BLOCK_DEVICE_FD,
                format!(
                    "file descriptor {raw} is a device but not a disk ({e}); \
                     /dev/null, /dev/zero and terminals cannot back a disk: \
                     pass a disk device such as /dev/rdisk4"
                ),
            )),
        };
    }
    let (what, hint) = if kind.is_file() {
        (
            "a regular file",
            "; attach disk image files with DiskImageStorageDeviceAttachment",
        )
    } else if kind.is_dir() {
        ("a directory", "")
    } else if kind.is_socket() {
        ("a socket", "")
    } else if kind.is_fifo() {
        ("a pipe", "")
    } else {
        ("not a device", "")
    };
    Err(VZError::invalid_argument(
        BLOCK_DEVICE_FD,
        format!("file descriptor {raw} is {what}, not a disk device such as /dev/rdisk4{hint}"),
    ))
}

/// `VZDiskBlockDeviceStorageDeviceAttachment` (macOS 14): a whole disk device of the
/// host (for example `/dev/rdisk4`), used directly rather than through a file system.
///
/// The guest can destroy any file system on that disk. Disk devices are usually only
/// readable by root: Apple recommends opening the device in a privileged helper and
/// passing the descriptor to the unprivileged process that runs the virtual machine.
#[derive(Debug)]
pub struct DiskBlockDeviceStorageDeviceAttachment {
    obj: Id,
}

impl AsObject for DiskBlockDeviceStorageDeviceAttachment {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

impl DiskBlockDeviceStorageDeviceAttachment {
    /// `-[VZDiskBlockDeviceStorageDeviceAttachment
    /// initWithFileHandle:readOnly:synchronizationMode:error:]`: attaches the disk
    /// device open as `fd`. The attachment keeps its own duplicate of the descriptor
    /// (close-on-exec), so the caller may close `fd` afterwards. When `read_only` is
    /// false, writes only succeed if `fd` was opened for writing.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (`"block device file descriptor"`) when `fd` is
    /// not open or is not a disk: a regular file, a directory, a socket, a pipe, or a
    /// device that does not answer the disk sector-size request (`DKIOCGETBLOCKSIZE`),
    /// such as `/dev/null` or `/dev/zero`; [`VZError::Unsupported`] before macOS 14;
    /// [`VZError::Framework`] when the framework refuses the device.
    pub fn new(
        fd: impl AsFd,
        read_only: bool,
        synchronization_mode: DiskSynchronizationMode,
    ) -> Result<Self, VZError> {
        let class = class_since(
            class!("VZDiskBlockDeviceStorageDeviceAttachment"),
            "disk block device attachment",
            "14.0",
        )?;
        let fd = fd.as_fd();
        check_block_device(fd)?;
        let handle = in_pool!(foundation::file_handle(fd)).map_err(|e| {
            VZError::invalid_argument(
                BLOCK_DEVICE_FD,
                format!(
                    "file descriptor {} cannot be duplicated: {e}",
                    fd.as_raw_fd()
                ),
            )
        })?;
        let obj = with_error(
            "-[VZDiskBlockDeviceStorageDeviceAttachment initWithFileHandle:readOnly:synchronizationMode:error:]",
            |error| block_device_init(class.alloc(), &handle, read_only, synchronization_mode.raw(), error),
        )
        .map_err(VZError::Framework)?;
        Ok(Self { obj })
    }

    /// `isReadOnly`: whether the guest sees the disk as read-only.
    pub fn is_read_only(&self) -> bool {
        in_pool!(is_read_only_raw(&self.obj))
    }

    /// `synchronizationMode`.
    pub fn synchronization_mode(&self) -> DiskSynchronizationMode {
        DiskSynchronizationMode::from_raw(in_pool!(synchronization_mode_raw(&self.obj)))
            .unwrap_or_default()
    }
}

/// `-[VZDiskBlockDeviceStorageDeviceAttachment fileHandle]`: the attachment's own
/// duplicate of the descriptor, open as long as the attachment lives.
impl AsRawFd for DiskBlockDeviceStorageDeviceAttachment {
    fn as_raw_fd(&self) -> RawFd {
        in_pool!(file_handle_raw(&self.obj).map_or(-1, |h| foundation::file_handle_fd(&h)))
    }
}
