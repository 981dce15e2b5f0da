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

use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::configuration::{AsObject, base_class, class_since, existing_file, method_since};
use crate::error::VZError;
use crate::ffi::foundation::{self, ErrorSlot, reject_nul, with_error};
use crate::ffi::runtime::{Allocated, ClassRef, Id, autoreleasepool, class, objc_methods, sel};

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

// ---- modes ----

/// `VZDiskImageCachingMode` (macOS 12): whether the host caches the data of a disk
/// image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiskImageCachingMode {
    /// `VZDiskImageCachingModeAutomatic` (0): the framework decides. The default.
    #[default]
    #[doc(alias = "VZDiskImageCachingModeAutomatic")]
    Automatic,
    /// `VZDiskImageCachingModeUncached` (1): no host caching.
    #[doc(alias = "VZDiskImageCachingModeUncached")]
    Uncached,
    /// `VZDiskImageCachingModeCached` (2): host caching enabled.
    #[doc(alias = "VZDiskImageCachingModeCached")]
    Cached,
}

impl DiskImageCachingMode {
    /// The `NSInteger` value of the Objective-C enum.
    const fn raw(self) -> isize {
        match self {
            Self::Automatic => 0,
            Self::Uncached => 1,
            Self::Cached => 2,
        }
    }

    fn from_raw(raw: isize) -> Option<Self> {
        [Self::Automatic, Self::Uncached, Self::Cached]
            .into_iter()
            .find(|m| m.raw() == raw)
    }
}

/// `VZDiskImageSynchronizationMode` (macOS 12): how a disk image is synchronized with
/// the storage under it when the guest flushes. Its values start at 1; do not confuse
/// it with [`DiskSynchronizationMode`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiskImageSynchronizationMode {
    /// `VZDiskImageSynchronizationModeFull` (1): flushed data reaches permanent
    /// storage; nothing flushed is lost on a panic or power loss. The default.
    #[default]
    #[doc(alias = "VZDiskImageSynchronizationModeFull")]
    Full,
    /// `VZDiskImageSynchronizationModeFsync` (2): the guarantees of `fsync(2)`: data
    /// reaches the drive, maybe only its cache.
    #[doc(alias = "VZDiskImageSynchronizationModeFsync")]
    Fsync,
    /// `VZDiskImageSynchronizationModeNone` (3): no synchronization. Faster, but the
    /// image cannot be trusted after a host crash, a full disk or a power loss.
    #[doc(alias = "VZDiskImageSynchronizationModeNone")]
    None,
}

impl DiskImageSynchronizationMode {
    /// The `NSInteger` value of the Objective-C enum.
    const fn raw(self) -> isize {
        match self {
            Self::Full => 1,
            Self::Fsync => 2,
            Self::None => 3,
        }
    }

    fn from_raw(raw: isize) -> Option<Self> {
        [Self::Full, Self::Fsync, Self::None]
            .into_iter()
            .find(|m| m.raw() == raw)
    }
}

/// `VZDiskSynchronizationMode` (macOS 14): how a block device or a network block
/// device is synchronized when the guest flushes. Its values start at 0; do not
/// confuse it with [`DiskImageSynchronizationMode`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiskSynchronizationMode {
    /// `VZDiskSynchronizationModeFull` (0): flushed data reaches permanent storage.
    /// The default.
    #[default]
    #[doc(alias = "VZDiskSynchronizationModeFull")]
    Full,
    /// `VZDiskSynchronizationModeNone` (1): no synchronization.
    #[doc(alias = "VZDiskSynchronizationModeNone")]
    None,
}

impl DiskSynchronizationMode {
    /// The `NSInteger` value of the Objective-C enum.
    const fn raw(self) -> isize {
        match self {
            Self::Full => 0,
            Self::None => 1,
        }
    }

    fn from_raw(raw: isize) -> Option<Self> {
        [Self::Full, Self::None]
            .into_iter()
            .find(|m| m.raw() == raw)
    }
}

// ---- disk image ----

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
        .open(path)
        .map_err(|e| {
            VZError::invalid_argument(
                DISK_IMAGE_PATH,
                format!("cannot open {} for {how}: {e}", path.display()),
            )
        })?;
    let len = file.metadata().map_err(VZError::Io)?.len();
    if len % 512 != 0 {
        return Err(VZError::invalid_argument(
            DISK_IMAGE_PATH,
            format!(
                "{} is {len} bytes, not a multiple of 512: Virtualization.framework only \
                 takes raw disk images made of whole 512-byte sectors (resize it, for \
                 example with `truncate -s 1G`)",
                path.display()
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
    /// a NUL byte, cannot be opened (for writing too, unless `read_only`), or its size
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

// ---- block device ----

const BLOCK_DEVICE_FD: &str = "block device file descriptor";

/// Checks that `fd` is open and refers to a block or character (raw disk) device.
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
        return Ok(());
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
    /// not open or is not a block or character device (a regular file, a directory,
    /// a socket, a pipe); [`VZError::Unsupported`] before macOS 14;
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
        let handle = autoreleasepool(|| foundation::file_handle(fd)).map_err(|e| {
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
        autoreleasepool(|| is_read_only_raw(&self.obj))
    }

    /// `synchronizationMode`.
    pub fn synchronization_mode(&self) -> DiskSynchronizationMode {
        DiskSynchronizationMode::from_raw(autoreleasepool(|| synchronization_mode_raw(&self.obj)))
            .unwrap_or_default()
    }
}

/// `-[VZDiskBlockDeviceStorageDeviceAttachment fileHandle]`: the attachment's own
/// duplicate of the descriptor, open as long as the attachment lives.
impl AsRawFd for DiskBlockDeviceStorageDeviceAttachment {
    fn as_raw_fd(&self) -> RawFd {
        autoreleasepool(|| {
            file_handle_raw(&self.obj).map_or(-1, |h| foundation::file_handle_fd(&h))
        })
    }
}

// ---- network block device ----

const NBD_URL: &str = "NBD URL";

const NBD_URL_FORMS: &str = "nbd://host[:port]/export, nbds://host[:port]/export, \
     nbd+unix:///export?socket=/path/to/socket or nbds+unix:///export?socket=/path/to/socket";

/// Checks the syntax of an NBD URI (<https://github.com/NetworkBlockDevice/nbd/blob/master/doc/uri.md>)
/// with the schemes Virtualization.framework supports. `Err` is the reason.
fn check_nbd_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err(format!("the URL is empty; expected {NBD_URL_FORMS}"));
    }
    if url.contains('\0') {
        return Err(format!("{url:?} contains a NUL byte"));
    }
    if let Some(c) = url.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{url:?} contains {c:?}; percent-encode it"));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("{url:?} is not a URL; expected {NBD_URL_FORMS}"));
    };
    let unix = match scheme.to_ascii_lowercase().as_str() {
        "nbd" | "nbds" => false,
        "nbd+unix" | "nbds+unix" => true,
        _ => {
            return Err(format!(
                "{url:?} has the scheme {scheme:?}; an NBD URL uses nbd, nbds, nbd+unix or nbds+unix"
            ));
        }
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let query = tail
        .split_once('?')
        .map(|(_, q)| q.split_once('#').map_or(q, |(q, _)| q))
        .unwrap_or("");
    if unix {
        if !authority.is_empty() {
            return Err(format!(
                "{url:?} names a host, but a {scheme} URL takes none: give the socket as \
                 {scheme}:///export?socket=/path/to/socket"
            ));
        }
        let socket = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("socket="))
            .unwrap_or("");
        if socket.is_empty() {
            return Err(format!(
                "{url:?} has no socket path; add ?socket=/path/to/socket"
            ));
        }
        return Ok(());
    }
    if authority.contains('@') {
        return Err(format!(
            "{url:?} has user information, which NBD URLs do not take"
        ));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            return Err(format!(
                "{url:?} has an IPv6 address without its closing ']'"
            ));
        };
        if !after.is_empty() && !after.starts_with(':') {
            return Err(format!("{url:?} has text after the IPv6 address"));
        }
        (host, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{url:?} has no host; expected {NBD_URL_FORMS}"));
    }
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p != 0);
        if !valid {
            return Err(format!(
                "{url:?} has the port {port:?}; a port is a number from 1 to 65535 (NBD uses 10809)"
            ));
        }
    }
    Ok(())
}

/// Checks `url` in Rust, makes it an `NSURL` and asks
/// `+[VZNetworkBlockDeviceStorageDeviceAttachment validateURL:error:]`.
fn nbd_url(class: ClassRef, url: &str) -> Result<Id, VZError> {
    check_nbd_url(url).map_err(|reason| VZError::invalid_argument(NBD_URL, reason))?;
    let Some(ns_url) = foundation::url_from_string(url) else {
        return Err(VZError::invalid_argument(
            NBD_URL,
            format!("{url:?} is not a URL that NSURL can parse; percent-encode special characters"),
        ));
    };
    with_error(
        "+[VZNetworkBlockDeviceStorageDeviceAttachment validateURL:error:]",
        |error| nbd_validate_url(class, &ns_url, error).then_some(()),
    )
    .map_err(|e| VZError::invalid_argument(NBD_URL, format!("{url:?}: {}", e.description)))?;
    Ok(ns_url)
}

fn nbd_class() -> Result<ClassRef, VZError> {
    class_since(
        class!("VZNetworkBlockDeviceStorageDeviceAttachment"),
        "network block device attachment",
        "14.0",
    )
}

/// `VZNetworkBlockDeviceStorageDeviceAttachment` (macOS 14): a disk served by a
/// Network Block Device server, reached by an NBD URL such as
/// `nbd://localhost:10809/disk` or `nbd+unix:///disk?socket=/tmp/nbd.sock`.
///
/// The framework connects when the virtual machine starts, not here, and reconnects
/// after recoverable errors. A sandboxed app needs the
/// `com.apple.security.network.client` entitlement.
#[derive(Debug)]
pub struct NetworkBlockDeviceStorageDeviceAttachment {
    obj: Id,
}

impl AsObject for NetworkBlockDeviceStorageDeviceAttachment {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

impl NetworkBlockDeviceStorageDeviceAttachment {
    /// `-[VZNetworkBlockDeviceStorageDeviceAttachment
    /// initWithURL:timeout:forcedReadOnly:synchronizationMode:error:]`: a client of the
    /// NBD server at `url`. After `timeout` without an answer the client reconnects;
    /// `forced_read_only` makes the disk read-only even if the server allows writes.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (`"NBD URL"`) when `url` is not an NBD URL (scheme
    /// nbd, nbds, nbd+unix or nbds+unix; a host, or for the `+unix` schemes a
    /// `?socket=` path) or `+validateURL:error:` refuses it; (`"NBD timeout"`) when
    /// `timeout` is zero; [`VZError::Unsupported`] before macOS 14;
    /// [`VZError::Framework`] when the framework refuses the attachment.
    pub fn new(
        url: &str,
        timeout: Duration,
        forced_read_only: bool,
        synchronization_mode: DiskSynchronizationMode,
    ) -> Result<Self, VZError> {
        let class = nbd_class()?;
        let seconds = timeout.as_secs_f64();
        if !(seconds.is_finite() && seconds > 0.0) {
            return Err(VZError::invalid_argument(
                "NBD timeout",
                format!(
                    "{timeout:?} is not a positive duration; NBD clients commonly use a few seconds"
                ),
            ));
        }
        let ns_url = autoreleasepool(|| nbd_url(class, url))?;
        let obj = with_error(
            "-[VZNetworkBlockDeviceStorageDeviceAttachment initWithURL:timeout:forcedReadOnly:synchronizationMode:error:]",
            |error| nbd_init(class.alloc(), &ns_url, seconds, forced_read_only, synchronization_mode.raw(), error),
        )
        .map_err(VZError::Framework)?;
        Ok(Self { obj })
    }

    /// `-[VZNetworkBlockDeviceStorageDeviceAttachment initWithURL:error:]`: a client of
    /// the NBD server at `url` with the framework's default timeout, read-only and
    /// synchronization settings (read them back with the getters).
    ///
    /// # Errors
    ///
    /// As for [`new`](Self::new), without the timeout.
    pub fn with_url(url: &str) -> Result<Self, VZError> {
        let class = nbd_class()?;
        let ns_url = autoreleasepool(|| nbd_url(class, url))?;
        let obj = with_error(
            "-[VZNetworkBlockDeviceStorageDeviceAttachment initWithURL:error:]",
            |error| nbd_init_with_url(class.alloc(), &ns_url, error),
        )
        .map_err(VZError::Framework)?;
        Ok(Self { obj })
    }

    /// `URL`, as a string (`absoluteString`).
    pub fn url(&self) -> String {
        autoreleasepool(|| {
            url_raw(&self.obj)
                .map(|u| foundation::url_string(&u))
                .unwrap_or_default()
        })
    }

    /// `timeout`: how long the client waits before reconnecting.
    pub fn timeout(&self) -> Duration {
        Duration::try_from_secs_f64(autoreleasepool(|| timeout_raw(&self.obj))).unwrap_or_default()
    }

    /// `isForcedReadOnly`: whether the disk is read-only whatever the server allows.
    pub fn is_forced_read_only(&self) -> bool {
        autoreleasepool(|| is_forced_read_only_raw(&self.obj))
    }

    /// `synchronizationMode`.
    pub fn synchronization_mode(&self) -> DiskSynchronizationMode {
        DiskSynchronizationMode::from_raw(autoreleasepool(|| synchronization_mode_raw(&self.obj)))
            .unwrap_or_default()
    }
}

// ---- attachments ----

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
            Self::DiskImage(a) => &a.obj,
            Self::DiskBlockDevice(a) => &a.obj,
            Self::NetworkBlockDevice(a) => &a.obj,
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
fn new_device(
    class: ClassRef,
    attachment: &StorageDeviceAttachment,
    name: &'static str,
) -> Result<Id, VZError> {
    autoreleasepool(|| device_init(class.alloc(), attachment.as_object()))
        .ok_or(VZError::ClassNotFound { class: name })
}

// ---- devices ----

const BLOCK_DEVICE_IDENTIFIER: &str = "block device identifier";

/// The documented rule for a virtio-blk identifier: at most 20 bytes of ASCII. NUL is
/// refused too, since the guest reads the identifier as a C string.
fn check_block_device_identifier(identifier: &str) -> Result<(), VZError> {
    reject_nul(identifier, BLOCK_DEVICE_IDENTIFIER)?;
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
    /// than 20 bytes, is not ASCII, contains a NUL byte, or
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
        autoreleasepool(|| {
            block_device_identifier_raw(&self.obj)
                .map(|s| foundation::string_from(&s))
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
fn is_uuid_string(s: &str) -> bool {
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
        Ok(autoreleasepool(|| {
            uuid_raw(&self.obj)
                .map(|u| foundation::uuid_to_string(&u))
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
        autoreleasepool(|| set_uuid_raw(&self.obj, &ns_uuid));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_values_match_the_sdk() {
        assert_eq!(DiskImageCachingMode::Automatic.raw(), 0);
        assert_eq!(DiskImageCachingMode::Uncached.raw(), 1);
        assert_eq!(DiskImageCachingMode::Cached.raw(), 2);
        // VZDiskImageSynchronizationMode starts at 1.
        assert_eq!(DiskImageSynchronizationMode::Full.raw(), 1);
        assert_eq!(DiskImageSynchronizationMode::Fsync.raw(), 2);
        assert_eq!(DiskImageSynchronizationMode::None.raw(), 3);
        // VZDiskSynchronizationMode is a different enum and starts at 0.
        assert_eq!(DiskSynchronizationMode::Full.raw(), 0);
        assert_eq!(DiskSynchronizationMode::None.raw(), 1);

        for m in [
            DiskImageCachingMode::Automatic,
            DiskImageCachingMode::Uncached,
            DiskImageCachingMode::Cached,
        ] {
            assert_eq!(DiskImageCachingMode::from_raw(m.raw()), Some(m));
        }
        for m in [
            DiskImageSynchronizationMode::Full,
            DiskImageSynchronizationMode::Fsync,
            DiskImageSynchronizationMode::None,
        ] {
            assert_eq!(DiskImageSynchronizationMode::from_raw(m.raw()), Some(m));
        }
        for m in [DiskSynchronizationMode::Full, DiskSynchronizationMode::None] {
            assert_eq!(DiskSynchronizationMode::from_raw(m.raw()), Some(m));
        }
        assert_eq!(DiskImageCachingMode::from_raw(3), None);
        assert_eq!(DiskImageSynchronizationMode::from_raw(0), None);
        assert_eq!(DiskSynchronizationMode::from_raw(2), None);
    }

    #[test]
    fn defaults_are_the_frameworks() {
        assert_eq!(
            DiskImageCachingMode::default(),
            DiskImageCachingMode::Automatic
        );
        assert_eq!(
            DiskImageSynchronizationMode::default(),
            DiskImageSynchronizationMode::Full
        );
        assert_eq!(
            DiskSynchronizationMode::default(),
            DiskSynchronizationMode::Full
        );
    }

    #[test]
    fn nbd_url_syntax() {
        for ok in [
            "nbd://localhost",
            "nbd://localhost:10809/disk",
            "NBD://example.com/",
            "nbds://10.0.0.1:10809/export",
            "nbd://[::1]:10809/disk",
            "nbd+unix:///disk?socket=/tmp/nbd.sock",
            "nbds+unix:///?socket=/run/nbd.sock&tls-certificates=/x",
        ] {
            assert_eq!(check_nbd_url(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("not a url", "contains ' '"),
            ("localhost:10809", "not a URL"),
            ("http://x", "scheme \"http\""),
            ("nbd://", "no host"),
            ("nbd:///disk", "no host"),
            ("nbd://host:0/disk", "port \"0\""),
            ("nbd://host:65536/disk", "port \"65536\""),
            ("nbd://host:/disk", "port \"\""),
            ("nbd://user@host/disk", "user information"),
            ("nbd://[::1/disk", "closing ']'"),
            ("nbd+unix://host/disk?socket=/s", "takes none"),
            ("nbd+unix:///disk", "no socket path"),
            ("nbd+unix:///disk?socket=", "no socket path"),
            ("nbd://a\0b", "NUL"),
        ] {
            let reason = check_nbd_url(bad).unwrap_err();
            assert!(reason.contains(why), "{bad:?}: {reason}");
        }
    }

    #[test]
    fn uuid_strings() {
        assert!(is_uuid_string("E621E1F8-C36C-495A-93FC-0C247A3E6E5F"));
        assert!(is_uuid_string("e621e1f8-c36c-495a-93fc-0c247a3e6e5f"));
        for bad in [
            "",
            "E621E1F8C36C495A93FC0C247A3E6E5F",
            "E621E1F8-C36C-495A-93FC-0C247A3E6E5",
            "G621E1F8-C36C-495A-93FC-0C247A3E6E5F",
            "{E621E1F8-C36C-495A-93FC-0C247A3E6E5F}",
        ] {
            assert!(!is_uuid_string(bad), "{bad}");
        }
    }
}

/// The fake framework refuses, on its own, what Apple documents as invalid: these
/// bypass the Rust checks and call the selectors directly.
#[cfg(all(test, arcbox_vz_sim))]
mod framework_tests {
    use arcbox_vz_sim as sim;

    use super::*;
    use crate::error::FrameworkError;

    fn disk_image_error(path: &Path, read_only: bool) -> FrameworkError {
        let class = base_class(class!("VZDiskImageStorageDeviceAttachment"));
        let url = foundation::file_url(path, "test").unwrap();
        with_error("test", |error| {
            disk_image_init(class.alloc(), &url, read_only, error)
        })
        .unwrap_err()
    }

    #[test]
    fn disk_images_the_framework_refuses() {
        sim::scenario(|| {
            let dir =
                std::env::temp_dir().join(format!("arcbox-vz-storage-unit-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let odd = dir.join("odd.img");
            std::fs::write(&odd, [0u8; 1000]).unwrap();

            let e = disk_image_error(&odd, true);
            assert_eq!(
                (e.domain.as_str(), e.code),
                (FrameworkError::VZ_ERROR_DOMAIN, 5),
                "{e:?}"
            );
            let e = disk_image_error(&dir.join("missing.img"), true);
            assert_eq!(
                (e.domain.as_str(), e.code),
                (FrameworkError::POSIX_ERROR_DOMAIN, 2),
                "{e:?}"
            );
            let e = disk_image_error(&dir, true);
            assert_eq!(
                (e.domain.as_str(), e.code),
                (FrameworkError::VZ_ERROR_DOMAIN, 5),
                "{e:?}"
            );

            let class = class!("VZDiskBlockDeviceStorageDeviceAttachment").unwrap();
            let file = File::open(&odd).unwrap();
            let handle = autoreleasepool(|| foundation::file_handle(file.as_fd())).unwrap();
            let e = with_error("test", |error| {
                block_device_init(
                    class.alloc(),
                    &handle,
                    true,
                    DiskSynchronizationMode::Full.raw(),
                    error,
                )
            })
            .unwrap_err();
            assert_eq!(
                (e.domain.as_str(), e.code),
                (FrameworkError::VZ_ERROR_DOMAIN, 5),
                "{e:?}"
            );
            drop(handle);
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    #[test]
    fn urls_and_identifiers_the_framework_refuses() {
        sim::scenario(|| {
            let class = nbd_class().unwrap();
            for (url, valid) in [
                ("nbd://localhost:10809/disk", true),
                ("nbd+unix:///disk?socket=/tmp/s", true),
                ("http://x", false),
                ("nbd:///disk", false),
                ("nbd+unix:///disk", false),
                ("nbd+unix://host/disk?socket=/tmp/s", false),
            ] {
                let ns_url = foundation::url_from_string(url).unwrap();
                let result = with_error("test", |error| {
                    nbd_validate_url(class, &ns_url, error).then_some(())
                });
                assert_eq!(result.is_ok(), valid, "{url}: {result:?}");
            }
            let class = base_class(class!("VZVirtioBlockDeviceConfiguration"));
            for (identifier, valid) in [
                ("", true),
                ("01234567890123456789", true),
                ("012345678901234567890", false),
                ("é", false),
            ] {
                let string = foundation::ns_string(identifier);
                let result = with_error("test", |error| {
                    validate_block_device_identifier_raw(class, &string, error).then_some(())
                });
                assert_eq!(result.is_ok(), valid, "{identifier:?}: {result:?}");
            }
        });
    }
}
