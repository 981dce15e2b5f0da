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
        .custom_flags(crate::ffi::sys::O_NONBLOCK)
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
///     DiskImageCachingMode::Cached,
///     DiskImageSynchronizationMode::Fsync, // faster than Full, less durable
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
    /// Attaches the raw disk image at `path` with the defaults that keep Linux guests'
    /// filesystems intact: [`DiskImageCachingMode::Cached`] and
    /// [`DiskImageSynchronizationMode::Full`] (see [`DEFAULT_CACHING_MODE`] and
    /// [`DEFAULT_SYNCHRONIZATION_MODE`]).
    ///
    /// From macOS 12 this is `-[VZDiskImageStorageDeviceAttachment
    /// initWithURL:readOnly:cachingMode:synchronizationMode:error:]` with those two
    /// modes. macOS 11 has no caching or synchronization choice: there it is
    /// `-[VZDiskImageStorageDeviceAttachment initWithURL:readOnly:error:]`, and the
    /// framework picks.
    ///
    /// # Why these defaults
    ///
    /// The framework's own default, automatic caching, corrupts Linux guests: on local
    /// storage it picks uncached host I/O, which can read stale data or the zeroes of
    /// a sparse file's holes (the analysis in lensapp/lens-sandbox PR #250), and guests
    /// see ext4 checksum errors, read-only remounts and zeroed directory blocks
    /// (utmapp/UTM issue #4840, lima-vm/lima issue #1957, trycua/cua issue #1099).
    /// These projects moved Linux guests to cached mode:
    ///
    /// - UTM, PR #5919: `Configuration/UTMAppleConfigurationDrive.swift` uses
    ///   `.cached` with `.full` synchronization for virtio disks of Linux guests (and
    ///   gives new Linux guests an NVMe disk instead on macOS 14).
    /// - lima, PR #2026: `pkg/vz/vm_darwin.go` sets `diskImageCachingMode` to
    ///   `DiskImageCachingModeCached`, with `DiskImageSynchronizationModeFsync`
    ///   (chosen earlier for speed, PR #1268).
    /// - cua/lume, PR #1100: `libs/lume/src/Virtualization/VMVirtualizationService.swift`
    ///   passes `.cached` for Linux guests, with `.fsync`.
    /// - crc-org/vfkit (podman machine), PR #76: cached with fsync for every disk
    ///   image.
    /// - Code-Hex/vz (the Go binding lima uses) keeps the framework's defaults in
    ///   `NewDiskImageStorageDeviceAttachment` and added the explicit modes in PR #117
    ///   (issue #106).
    ///
    /// All agree on caching; they differ on synchronization. This crate takes `Full`,
    /// Apple's default and UTM's choice, because its durability can be stated: when
    /// the guest flushes, the data is moved out of the drive's cache to permanent
    /// storage, so nothing the guest flushed is lost on a host panic or power loss.
    /// `Fsync` is best effort with the guarantees of `fsync(2)`: the data may still sit
    /// in the drive's cache (Apple's documentation of `VZDiskImageSynchronizationMode`).
    /// It is faster where the guest flushes often. Choose another mode with
    /// [`with_options`](Self::with_options).
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (`"disk image path"`) when the path does not exist,
    /// is not a regular file (a directory, a device: use
    /// [`DiskBlockDeviceStorageDeviceAttachment`] for a device), is not UTF-8, contains
    /// a NUL byte or starts with U+FEFF, cannot be opened (for writing too, unless `read_only`), or its size
    /// is not a multiple of 512 bytes; [`VZError::Framework`] when the framework
    /// refuses the image.
    ///
    /// [`DEFAULT_CACHING_MODE`]: Self::DEFAULT_CACHING_MODE
    /// [`DEFAULT_SYNCHRONIZATION_MODE`]: Self::DEFAULT_SYNCHRONIZATION_MODE
    pub fn new(path: impl AsRef<Path>, read_only: bool) -> Result<Self, VZError> {
        let class = base_class(class!("VZDiskImageStorageDeviceAttachment"));
        if class.instances_respond_to(sel!(
            "initWithURL:readOnly:cachingMode:synchronizationMode:error:"
        )) {
            return Self::with_modes(
                class,
                path.as_ref(),
                read_only,
                Self::DEFAULT_CACHING_MODE,
                Self::DEFAULT_SYNCHRONIZATION_MODE,
            );
        }
        let url = disk_image_url(path.as_ref(), read_only)?;
        let obj = with_error(
            "-[VZDiskImageStorageDeviceAttachment initWithURL:readOnly:error:]",
            |error| disk_image_init(class.alloc(), &url, read_only, error),
        )
        .map_err(VZError::Framework)?;
        Ok(Self { obj })
    }

    /// The caching mode [`new`](Self::new) uses from macOS 12: host caching on, which
    /// Linux guests need (see [`new`](Self::new) for the sources).
    pub const DEFAULT_CACHING_MODE: DiskImageCachingMode = DiskImageCachingMode::Cached;

    /// The synchronization mode [`new`](Self::new) uses from macOS 12: a guest flush
    /// reaches permanent storage.
    pub const DEFAULT_SYNCHRONIZATION_MODE: DiskImageSynchronizationMode =
        DiskImageSynchronizationMode::Full;

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
        Self::with_modes(
            class,
            path.as_ref(),
            read_only,
            caching_mode,
            synchronization_mode,
        )
    }

    /// The macOS 12 initializer, once the caller has checked that the class has it.
    fn with_modes(
        class: ClassRef,
        path: &Path,
        read_only: bool,
        caching_mode: DiskImageCachingMode,
        synchronization_mode: DiskImageSynchronizationMode,
    ) -> Result<Self, VZError> {
        let url = disk_image_url(path, read_only)?;
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
        in_pool!({
            url_raw(&self.obj)
                .as_ref()
                .map(foundation::url_path)
                .unwrap_or_default()
        })
    }

    /// `isReadOnly`: whether the guest sees the disk as read-only.
    pub fn is_read_only(&self) -> bool {
        in_pool!(is_read_only_raw(&self.obj))
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
            DiskImageCachingMode::from_raw(in_pool!(caching_mode_raw(&self.obj)))
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
        Ok(DiskImageSynchronizationMode::from_raw(in_pool!({
            synchronization_mode_raw(&self.obj)
        }))
        .unwrap_or_default())
    }
}
