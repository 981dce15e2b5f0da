//! `VZDiskImageStorageDeviceAttachment`: a raw disk image file.

use std::os::unix::fs::OpenOptionsExt;

use super::*;
use crate::configuration::{byte_count, file_type_name, path_error};

const DISK_IMAGE_PATH: &str = "disk image path";

/// Checks a disk image before the framework opens it: an existing regular file, with
/// UTF-8 path and no NUL, that can be opened as requested and whose size is a
/// multiple of 512 bytes. Returns its file URL.
fn disk_image_url(path: &Path, read_only: bool) -> Result<Id, VZError> {
    let url = existing_file(path, DISK_IMAGE_PATH)?;
    let how = if read_only {
        "reading"
    } else {
        "reading and writing"
    };
    let file = OpenOptions::new()
        .read(true)
        .write(!read_only)
        // Never block: existing_file checked the type, but the path could have been
        // swapped for a FIFO since; the type is checked again below.
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            VZError::invalid_argument(
                DISK_IMAGE_PATH,
                format!("cannot open {} for {how}: {e}", path.display()),
            )
        })?;
    let meta = file
        .metadata()
        .map_err(|e| path_error(DISK_IMAGE_PATH, path, "read", &e))?;
    if !meta.is_file() {
        return Err(VZError::invalid_argument(
            DISK_IMAGE_PATH,
            format!(
                "{} is {}, not a regular file",
                path.display(),
                file_type_name(meta.file_type())
            ),
        ));
    }
    let len = meta.len();
    if len % 512 != 0 {
        return Err(VZError::invalid_argument(
            DISK_IMAGE_PATH,
            format!(
                "{} is {}, not a multiple of 512: Virtualization.framework only \
                 takes raw disk images made of whole 512-byte sectors (resize it, for \
                 example with `truncate -s 1G`)",
                path.display(),
                byte_count(len)
            ),
        ));
    }
    Ok(url)
}

/// `VZDiskImageStorageDeviceAttachment`: a raw disk image file on the host, seen by
/// the guest as a disk.
///
/// ```no_run
/// # fn main() -> Result<(), arcbox_vz::VZError> {
/// use arcbox_vz::{
///     DiskImageCachingMode, DiskImageStorageDeviceAttachment, DiskImageSynchronizationMode,
///     VirtioBlockDeviceConfiguration,
/// };
///
/// let disk = DiskImageStorageDeviceAttachment::with_options(
///     "/path/to/disk.img",
///     false,
///     DiskImageCachingMode::Automatic,
///     DiskImageSynchronizationMode::Fsync,
/// )?;
/// let mut device = VirtioBlockDeviceConfiguration::new(disk)?;
/// device.set_block_device_identifier("root")?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DiskImageStorageDeviceAttachment {
    obj: Id,
}

impl AsObject for DiskImageStorageDeviceAttachment {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

impl DiskImageStorageDeviceAttachment {
    /// `-[VZDiskImageStorageDeviceAttachment initWithURL:readOnly:error:]`: attaches the
    /// raw disk image at `path`, with automatic caching and full synchronization.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (`"disk image path"`) when the path does not exist,
    /// is not a regular file (a directory, a device: use
    /// [`DiskBlockDeviceStorageDeviceAttachment`] for a device), is not UTF-8, contains
    /// a NUL byte or starts with U+FEFF, cannot be opened (for writing too, unless `read_only`), or its size
    /// is not a multiple of 512 bytes; [`VZError::Framework`] when the framework
    /// refuses the image.
    pub fn new(path: impl AsRef<Path>, read_only: bool) -> Result<Self, VZError> {
        let class = base_class(class!("VZDiskImageStorageDeviceAttachment"));
        let url = disk_image_url(path.as_ref(), read_only)?;
        let obj = with_error(
            "-[VZDiskImageStorageDeviceAttachment initWithURL:readOnly:error:]",
            |error| disk_image_init(class.alloc(), &url, read_only, error),
        )
        .map_err(VZError::Framework)?;
        Ok(Self { obj })
    }

    /// `-[VZDiskImageStorageDeviceAttachment
    /// initWithURL:readOnly:cachingMode:synchronizationMode:error:]` (macOS 12):
    /// attaches the raw disk image at `path` with the given host caching and
    /// synchronization.
    ///
    /// # Errors
    ///
    /// As for [`new`](Self::new), and [`VZError::Unsupported`] before macOS 12.
    pub fn with_options(
        path: impl AsRef<Path>,
        read_only: bool,
        caching_mode: DiskImageCachingMode,
        synchronization_mode: DiskImageSynchronizationMode,
    ) -> Result<Self, VZError> {
        let class = base_class(class!("VZDiskImageStorageDeviceAttachment"));
        if !class.instances_respond_to(sel!(
            "initWithURL:readOnly:cachingMode:synchronizationMode:error:"
        )) {
            return Err(VZError::Unsupported {
                feature: "disk image caching and synchronization modes",
                min_macos: "12.0",
            });
        }
        let url = disk_image_url(path.as_ref(), read_only)?;
        let obj = with_error(
            "-[VZDiskImageStorageDeviceAttachment initWithURL:readOnly:cachingMode:synchronizationMode:error:]",
            |error| {
                disk_image_init_with_modes(
                    class.alloc(),
                    &url,
                    read_only,
                    caching_mode.raw(),
                    synchronization_mode.raw(),
                    error,
                )
            },
        )
        .map_err(VZError::Framework)?;
        Ok(Self { obj })
    }

    /// `URL`: the disk image's path, made absolute.
    pub fn path(&self) -> PathBuf {
        autoreleasepool(|| {
            url_raw(&self.obj)
                .map(|u| foundation::url_path(&u))
                .unwrap_or_default()
        })
    }

    /// `isReadOnly`: whether the guest sees the disk as read-only.
    pub fn is_read_only(&self) -> bool {
        autoreleasepool(|| is_read_only_raw(&self.obj))
    }

    /// `cachingMode` (macOS 12).
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 12.
    pub fn caching_mode(&self) -> Result<DiskImageCachingMode, VZError> {
        method_since(
            &self.obj,
            sel!("cachingMode"),
            "disk image caching mode",
            "12.0",
        )?;
        // The attachment is immutable and was made with one of our values; a value
        // this crate does not know reads as the default.
        Ok(
            DiskImageCachingMode::from_raw(autoreleasepool(|| caching_mode_raw(&self.obj)))
                .unwrap_or_default(),
        )
    }

    /// `synchronizationMode` (macOS 12).
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 12.
    pub fn synchronization_mode(&self) -> Result<DiskImageSynchronizationMode, VZError> {
        method_since(
            &self.obj,
            sel!("synchronizationMode"),
            "disk image synchronization mode",
            "12.0",
        )?;
        Ok(DiskImageSynchronizationMode::from_raw(autoreleasepool(|| {
            synchronization_mode_raw(&self.obj)
        }))
        .unwrap_or_default())
    }
}
