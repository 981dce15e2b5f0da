//! The caching and synchronization modes of disk attachments.

/// `VZDiskImageCachingMode` (macOS 12): whether the host caches the data of a disk
/// image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiskImageCachingMode {
    /// `VZDiskImageCachingModeAutomatic` (0): the framework decides. The framework's
    /// default (and `Default`), but not what
    /// [`DiskImageStorageDeviceAttachment::new`](crate::DiskImageStorageDeviceAttachment::new)
    /// uses: on local storage it picks uncached host I/O, which corrupts the
    /// filesystems of Linux guests.
    #[default]
    #[doc(alias = "VZDiskImageCachingModeAutomatic")]
    Automatic,
    /// `VZDiskImageCachingModeUncached` (1): no host caching.
    #[doc(alias = "VZDiskImageCachingModeUncached")]
    Uncached,
    /// `VZDiskImageCachingModeCached` (2): host caching enabled. What
    /// [`DiskImageStorageDeviceAttachment::new`](crate::DiskImageStorageDeviceAttachment::new)
    /// uses from macOS 12.
    #[doc(alias = "VZDiskImageCachingModeCached")]
    Cached,
}

impl DiskImageCachingMode {
    /// The `NSInteger` value of the Objective-C enum.
    pub(super) const fn raw(self) -> isize {
        match self {
            Self::Automatic => 0,
            Self::Uncached => 1,
            Self::Cached => 2,
        }
    }

    pub(super) fn from_raw(raw: isize) -> Option<Self> {
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
    /// storage; nothing flushed is lost on a panic or power loss. The default, and
    /// what
    /// [`DiskImageStorageDeviceAttachment::new`](crate::DiskImageStorageDeviceAttachment::new)
    /// uses from macOS 12.
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
    pub(super) const fn raw(self) -> isize {
        match self {
            Self::Full => 1,
            Self::Fsync => 2,
            Self::None => 3,
        }
    }

    pub(super) fn from_raw(raw: isize) -> Option<Self> {
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
    pub(super) const fn raw(self) -> isize {
        match self {
            Self::Full => 0,
            Self::None => 1,
        }
    }

    pub(super) fn from_raw(raw: isize) -> Option<Self> {
        [Self::Full, Self::None]
            .into_iter()
            .find(|m| m.raw() == raw)
    }
}
