//! Directory sharing (macOS 12): `VZVirtioFileSystemDeviceConfiguration` (virtiofs)
//! with a `VZSingleDirectoryShare`, a `VZMultipleDirectoryShare`, or on Apple silicon
//! a `VZLinuxRosettaDirectoryShare` (macOS 13; the Linux test simulator compiles it
//! too).
//!
//! In a Linux guest: `mount -t virtiofs <tag> /mnt/point`.
//!
//! Apple's documentation: <https://developer.apple.com/documentation/virtualization/shared_directories>

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::configuration::{AsObject, class_since, existing_directory};
use crate::error::VZError;
use crate::ffi::foundation::{self, with_error};
use crate::ffi::runtime::{
    Allocated, ClassRef, Id, autoreleasepool, class, in_pool, objc_methods, sel,
};

objc_methods! {
    fn shared_directory_init(directory: Allocated, url: &Id, read_only: bool) -> Option<Id> =
        "initWithURL:readOnly:";
    fn shared_directory_url(directory: &Id) -> Option<Id> = "URL";
    fn shared_directory_read_only(directory: &Id) -> bool = "isReadOnly";
    fn single_init(share: Allocated, directory: &Id) -> Option<Id> = "initWithDirectory:";
    fn single_directory(share: &Id) -> Option<Id> = "directory";
    fn multiple_init(share: Allocated, directories: &Id) -> Option<Id> = "initWithDirectories:";
    fn multiple_directories(share: &Id) -> Option<Id> = "directories";
    fn validate_name_raw(class: ClassRef, name: &Id, error: &mut foundation::ErrorSlot) -> bool =
        "validateName:error:";
    fn canonicalized_name_raw(class: ClassRef, name: &Id) -> Option<Id> =
        "canonicalizedNameFromName:";
    fn fs_init(device: Allocated, tag: &Id) -> Option<Id> = "initWithTag:";
    fn validate_tag_raw(class: ClassRef, tag: &Id, error: &mut foundation::ErrorSlot) -> bool =
        "validateTag:error:";
    fn fs_tag(device: &Id) -> Option<Id> = "tag";
    fn fs_set_tag(device: &Id, tag: &Id) = "setTag:";
    fn fs_set_share(device: &Id, share: Option<&Id>) = "setShare:";
    fn automount_tag_raw(class: ClassRef) -> Option<Id> = "macOSGuestAutomountTag";
}

const FEATURE: &str = "directory sharing";
const SINCE: &str = "12.0";

/// `VZSharedDirectory` (macOS 12): a directory on the host to share with the guest,
/// read-write or read-only.
#[derive(Debug, Clone)]
pub struct SharedDirectory {
    obj: Id,
}

impl SharedDirectory {
    /// Shares the directory at `path` (`initWithURL:readOnly:`).
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (`"shared directory path"`) when the path is not
    /// an existing directory, is empty, is not UTF-8, contains a NUL byte or starts with U+FEFF;
    /// [`VZError::Unsupported`] before macOS 12.
    pub fn new(path: impl AsRef<Path>, read_only: bool) -> Result<Self, VZError> {
        let class = class_since(class!("VZSharedDirectory"), FEATURE, SINCE)?;
        let url = existing_directory(path.as_ref(), "shared directory path")?;
        let obj = in_pool!(shared_directory_init(class.alloc(), &url, read_only)).ok_or(
            VZError::ClassNotFound {
                class: "VZSharedDirectory",
            },
        )?;
        Ok(Self { obj })
    }

    /// The directory (`URL`), made absolute.
    pub fn path(&self) -> PathBuf {
        in_pool!({
            shared_directory_url(&self.obj)
                .as_ref()
                .map(foundation::url_path)
                .unwrap_or_default()
        })
    }

    /// Whether the guest may only read it (`isReadOnly`).
    pub fn is_read_only(&self) -> bool {
        in_pool!(shared_directory_read_only(&self.obj))
    }
}

/// `VZSingleDirectoryShare` (macOS 12): shares one directory as the root of the
/// virtiofs mount.
#[derive(Debug, Clone)]
pub struct SingleDirectoryShare {
    obj: Id,
}

impl SingleDirectoryShare {
    /// A share of `directory` (`initWithDirectory:`).
    ///
    /// # Panics
    ///
    /// Only if the framework returns nil from this initializer, which it documents
    /// no failure for (out of memory).
    pub fn new(directory: SharedDirectory) -> Self {
        // A SharedDirectory exists only where its class does (macOS 12), and so does
        // this class.
        let class = crate::configuration::base_class(class!("VZSingleDirectoryShare"));
        let obj = in_pool!(single_init(class.alloc(), &directory.obj))
            .expect("-[VZSingleDirectoryShare initWithDirectory:] returned nil");
        Self { obj }
    }

    /// The shared directory (`directory`).
    ///
    /// # Panics
    ///
    /// Only if the framework breaks its non-null contract for `directory`.
    pub fn directory(&self) -> SharedDirectory {
        let obj = in_pool!(single_directory(&self.obj))
            .expect("-[VZSingleDirectoryShare directory] returned nil");
        SharedDirectory { obj }
    }
}

fn multiple_class() -> Result<ClassRef, VZError> {
    class_since(class!("VZMultipleDirectoryShare"), FEATURE, SINCE)
}

/// `VZMultipleDirectoryShare` (macOS 12): shares several directories, each as a
/// named subdirectory of the virtiofs mount.
///
/// Names are checked (in Rust, then with `+validateName:error:`) before the share is
/// made, because `initWithDirectories:` raises an exception on a bad name. The share
/// is immutable: build a new one to change it.
#[derive(Debug, Clone)]
pub struct MultipleDirectoryShare {
    obj: Id,
}

impl MultipleDirectoryShare {
    /// Shares each directory under its name (`initWithDirectories:`).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), arcbox_vz::VZError> {
    /// use arcbox_vz::{MultipleDirectoryShare, SharedDirectory};
    ///
    /// let share = MultipleDirectoryShare::new([
    ///     ("src", SharedDirectory::new("/Users/me/src", false)?),
    ///     ("docs", SharedDirectory::new("/Users/me/Documents", true)?),
    /// ])?;
    /// # let _ = share; Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (`"directory share name"`) when a name is empty,
    /// contains `/` or a NUL byte, starts with U+FEFF, appears twice, or is refused by
    /// `+[VZMultipleDirectoryShare validateName:error:]` (for example `..` or a name
    /// longer than `NAME_MAX`); [`VZError::Unsupported`] before macOS 12.
    pub fn new<N: Into<String>>(
        entries: impl IntoIterator<Item = (N, SharedDirectory)>,
    ) -> Result<Self, VZError> {
        const ARGUMENT: &str = "directory share name";
        let class = multiple_class()?;
        let entries: Vec<(String, SharedDirectory)> = entries
            .into_iter()
            .map(|(name, dir)| (name.into(), dir))
            .collect();
        let mut seen = HashSet::new();
        for (name, _) in &entries {
            if name.is_empty() {
                return Err(VZError::invalid_argument(ARGUMENT, "a name is empty"));
            }
            foundation::check_string(name, ARGUMENT)?;
            if name.contains('/') {
                return Err(VZError::invalid_argument(
                    ARGUMENT,
                    format!("{name:?} contains '/'; a name is one path component"),
                ));
            }
            if !seen.insert(name.as_str()) {
                return Err(VZError::invalid_argument(
                    ARGUMENT,
                    format!("{name:?} is used for more than one directory"),
                ));
            }
        }
        autoreleasepool(|| {
            for (name, _) in &entries {
                let ns_name = foundation::ns_string(name);
                with_error("+[VZMultipleDirectoryShare validateName:error:]", |error| {
                    validate_name_raw(class, &ns_name, error).then_some(())
                })
                .map_err(|e| {
                    VZError::invalid_argument(
                        ARGUMENT,
                        format!("{name:?} is not a valid name: {}", e.description),
                    )
                })?;
            }
            let pairs: Vec<(&str, &Id)> =
                entries.iter().map(|(n, d)| (n.as_str(), &d.obj)).collect();
            let dictionary = foundation::ns_dictionary(&pairs);
            let obj = multiple_init(class.alloc(), &dictionary).ok_or(VZError::ClassNotFound {
                class: "VZMultipleDirectoryShare",
            })?;
            Ok(Self { obj })
        })
    }

    /// The shared directories by name (`directories`), sorted by name.
    pub fn directories(&self) -> Vec<(String, SharedDirectory)> {
        in_pool!({
            let entries = multiple_directories(&self.obj)
                .as_ref()
                .map(foundation::dictionary_entries)
                .unwrap_or_default();
            let mut directories = Vec::with_capacity(entries.len());
            for (name, obj) in entries {
                directories.push((name, SharedDirectory { obj }));
            }
            directories
        })
    }

    /// A valid directory name made from `name`
    /// (`+[VZMultipleDirectoryShare canonicalizedNameFromName:]`), or `None` when none
    /// can be made (or `name` contains a NUL byte, or before macOS 12).
    pub fn canonicalized_name(name: &str) -> Option<String> {
        if name.contains('\0') {
            return None;
        }
        let class = multiple_class().ok()?;
        in_pool!({
            canonicalized_name_raw(class, &foundation::ns_string(name))
                .as_ref()
                .map(foundation::string_from)
        })
    }
}

/// The share of a [`VirtioFileSystemDeviceConfiguration`] (a `VZDirectoryShare`).
#[derive(Debug)]
#[non_exhaustive]
pub enum DirectoryShare {
    /// One directory as the root of the mount.
    Single(SingleDirectoryShare),
    /// Named directories under the root of the mount.
    Multiple(MultipleDirectoryShare),
    /// Rosetta for Linux binaries (macOS 13; Apple silicon only, also compiled for the
    /// Linux test simulator).
    #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
    Rosetta(LinuxRosettaDirectoryShare),
}

impl AsObject for DirectoryShare {
    fn as_object(&self) -> &Id {
        match self {
            Self::Single(s) => &s.obj,
            Self::Multiple(s) => &s.obj,
            #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
            Self::Rosetta(s) => &s.obj,
        }
    }
}

impl From<SingleDirectoryShare> for DirectoryShare {
    fn from(s: SingleDirectoryShare) -> Self {
        Self::Single(s)
    }
}

impl From<MultipleDirectoryShare> for DirectoryShare {
    fn from(s: MultipleDirectoryShare) -> Self {
        Self::Multiple(s)
    }
}

#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
impl From<LinuxRosettaDirectoryShare> for DirectoryShare {
    fn from(s: LinuxRosettaDirectoryShare) -> Self {
        Self::Rosetta(s)
    }
}

fn fs_class() -> Result<ClassRef, VZError> {
    class_since(
        class!("VZVirtioFileSystemDeviceConfiguration"),
        FEATURE,
        SINCE,
    )
}

/// Checks a virtiofs tag in Rust, then with `+validateTag:error:`; returns it as an
/// `NSString`.
fn checked_tag(class: ClassRef, tag: &str) -> Result<Id, VZError> {
    const ARGUMENT: &str = "directory sharing tag";
    if tag.is_empty() {
        return Err(VZError::invalid_argument(ARGUMENT, "the tag is empty"));
    }
    foundation::check_string(tag, ARGUMENT)?;
    if tag.len() > VirtioFileSystemDeviceConfiguration::MAX_TAG_LEN {
        return Err(VZError::invalid_argument(
            ARGUMENT,
            format!(
                "{tag:?} is {} bytes of UTF-8; a virtiofs tag must be less than 36 bytes",
                tag.len()
            ),
        ));
    }
    autoreleasepool(|| {
        let ns_tag = foundation::ns_string(tag);
        with_error(
            "+[VZVirtioFileSystemDeviceConfiguration validateTag:error:]",
            |error| validate_tag_raw(class, &ns_tag, error).then_some(()),
        )
        .map_err(|e| VZError::invalid_argument(ARGUMENT, format!("{tag:?}: {}", e.description)))?;
        Ok(ns_tag)
    })
}

/// `VZVirtioFileSystemDeviceConfiguration` (macOS 12): a virtiofs device that exposes
/// a [`DirectoryShare`] to the guest under a tag. Add it with
/// [`VirtualMachineConfiguration::set_directory_sharing_devices`](crate::VirtualMachineConfiguration::set_directory_sharing_devices);
/// each device needs its own tag.
///
/// ```no_run
/// # fn main() -> Result<(), arcbox_vz::VZError> {
/// use arcbox_vz::{
///     SharedDirectory, SingleDirectoryShare, VirtioFileSystemDeviceConfiguration,
///     VirtualMachineConfiguration,
/// };
///
/// let share = SharedDirectory::new("/Users/me/src", false)?;
/// let fs = VirtioFileSystemDeviceConfiguration::new("src", SingleDirectoryShare::new(share))?;
/// let mut config = VirtualMachineConfiguration::new()?;
/// config.set_directory_sharing_devices(vec![fs]);
/// // In the guest: mount -t virtiofs src /mnt/src
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct VirtioFileSystemDeviceConfiguration {
    obj: Id,
    share: Option<DirectoryShare>,
}

impl AsObject for VirtioFileSystemDeviceConfiguration {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

impl VirtioFileSystemDeviceConfiguration {
    /// The longest tag, in bytes of UTF-8: a tag is "non-empty and less than 36 bytes
    /// when encoded in UTF-8" (`+validateTag:error:` in
    /// VZVirtioFileSystemDeviceConfiguration.h; Apple's documentation says "fewer than
    /// 36 bytes"). The guest's `virtio_fs_config.tag` field is 36 bytes.
    pub const MAX_TAG_LEN: usize = 35;

    /// A device that the guest mounts by `tag`, exposing `share` (`initWithTag:`, then
    /// `setShare:`).
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (`"directory sharing tag"`) when the tag is empty,
    /// is 36 bytes of UTF-8 or longer ([`MAX_TAG_LEN`](Self::MAX_TAG_LEN) is the limit), contains a NUL
    /// byte or starts with U+FEFF, or is refused by `+validateTag:error:`; [`VZError::Unsupported`] before
    /// macOS 12.
    pub fn new(tag: &str, share: impl Into<DirectoryShare>) -> Result<Self, VZError> {
        let class = fs_class()?;
        let ns_tag = checked_tag(class, tag)?;
        let share = share.into();
        let obj = autoreleasepool(|| {
            let obj = fs_init(class.alloc(), &ns_tag)?;
            fs_set_share(&obj, Some(share.as_object()));
            Some(obj)
        })
        .ok_or(VZError::ClassNotFound {
            class: "VZVirtioFileSystemDeviceConfiguration",
        })?;
        Ok(Self {
            obj,
            share: Some(share),
        })
    }

    /// The tag (`tag`).
    pub fn tag(&self) -> String {
        in_pool!({
            fs_tag(&self.obj)
                .as_ref()
                .map(foundation::string_from)
                .unwrap_or_default()
        })
    }

    /// Changes the tag (`setTag:`).
    ///
    /// # Errors
    ///
    /// As for [`new`](Self::new).
    pub fn set_tag(&mut self, tag: &str) -> Result<&mut Self, VZError> {
        let ns_tag = checked_tag(fs_class()?, tag)?;
        in_pool!(fs_set_tag(&self.obj, &ns_tag));
        Ok(self)
    }

    /// Replaces the share, or removes it with `None` (`setShare:`).
    pub fn set_share(&mut self, share: Option<DirectoryShare>) -> &mut Self {
        in_pool!(fs_set_share(
            &self.obj,
            share.as_ref().map(AsObject::as_object)
        ));
        self.share = share;
        self
    }

    /// The share, if one is set.
    pub fn share(&self) -> Option<&DirectoryShare> {
        self.share.as_ref()
    }

    /// The tag that macOS guests mount automatically, under
    /// `/Volumes/My Shared Files` (`+macOSGuestAutomountTag`, macOS 13).
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 13.
    pub fn macos_guest_automount_tag() -> Result<String, VZError> {
        let unsupported = VZError::Unsupported {
            feature: "the macOS guest automount tag",
            min_macos: "13.0",
        };
        let Ok(class) = fs_class() else {
            return Err(unsupported);
        };
        if !class.responds_to(sel!("macOSGuestAutomountTag")) {
            return Err(unsupported);
        }
        in_pool!(
            automount_tag_raw(class)
                .as_ref()
                .map(foundation::string_from)
        )
        .ok_or(unsupported)
    }
}

/// `VZLinuxRosettaAvailability`: whether Rosetta for Linux binaries can be used on
/// this Mac. See `LinuxRosettaDirectoryShare::availability` (Apple silicon only; also
/// compiled for the Linux test simulator).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LinuxRosettaAvailability {
    /// `VZLinuxRosettaAvailabilityNotSupported` (0): this Mac cannot run Rosetta for
    /// Linux (an Intel Mac, or macOS before 13).
    #[doc(alias = "VZLinuxRosettaAvailabilityNotSupported")]
    NotSupported,
    /// `VZLinuxRosettaAvailabilityNotInstalled` (1): supported, but Rosetta is not
    /// installed; install it first.
    #[doc(alias = "VZLinuxRosettaAvailabilityNotInstalled")]
    NotInstalled,
    /// `VZLinuxRosettaAvailabilityInstalled` (2): ready to use.
    #[doc(alias = "VZLinuxRosettaAvailabilityInstalled")]
    Installed,
    /// A value this crate does not know (from a newer macOS).
    Unknown(isize),
}

impl LinuxRosettaAvailability {
    /// Maps the framework's `NSInteger` value. Used on Apple silicon and in the
    /// simulator, and by the unit tests everywhere.
    #[cfg_attr(not(any(target_arch = "aarch64", arcbox_vz_sim)), allow(dead_code))]
    pub(crate) fn from_raw(raw: isize) -> Self {
        match raw {
            0 => Self::NotSupported,
            1 => Self::NotInstalled,
            2 => Self::Installed,
            other => Self::Unknown(other),
        }
    }
}

#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
pub use rosetta::*;

#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
mod rosetta {
    //! `VZLinuxRosettaDirectoryShare` and its caching options (Apple silicon only on
    //! macOS; the Linux test simulator compiles them too, so its tests exercise them).
    //!
    //! The caching-option classes are not in the crate's reference table; their
    //! selectors were checked against Apple's headers and documentation:
    //! - `VZLinuxRosettaUnixSocketCachingOptions`: `-initWithPath:error:`, `-init`
    //!   (default socket `/run/rosettad/rosetta.sock`), `path`, `+maximumPathLength`
    //!   (`NSUInteger`) -- MacOSX15.1.sdk `VZLinuxRosettaUnixSocketCachingOptions.h`
    //!   and developer.apple.com/documentation/virtualization/vzlinuxrosettaunixsocketcachingoptions;
    //! - `VZLinuxRosettaAbstractSocketCachingOptions`: `-initWithName:error:`, `name`,
    //!   `+maximumNameLength` (`NSUInteger`) -- MacOSX26.0.sdk
    //!   `VZLinuxRosettaAbstractSocketCachingOptions.h`;
    //! - `VZLinuxRosettaDirectoryShare`: `@property (strong, nullable)
    //!   VZLinuxRosettaCachingOptions *options` (`setOptions:`), macOS 14 --
    //!   developer.apple.com/documentation/virtualization/vzlinuxrosettadirectoryshare/options,
    //!   and the same calls in Code-Hex/vz `virtualization_14_arm64.m`.

    use super::*;
    use crate::bridge;
    use crate::error::FrameworkError;
    use crate::ffi::block::{ErrorArg, RcBlock};

    objc_methods! {
        fn rosetta_init(share: Allocated, error: &mut foundation::ErrorSlot) -> Option<Id> =
            "initWithError:";
        fn rosetta_availability(class: ClassRef) -> isize = "availability";
        fn rosetta_install(class: ClassRef, handler: &RcBlock) = "installRosettaWithCompletionHandler:";
        fn rosetta_set_options(share: &Id, options: Option<&Id>) = "setOptions:";
        fn unix_init_path(options: Allocated, path: &Id, error: &mut foundation::ErrorSlot) -> Option<Id> =
            "initWithPath:error:";
        fn unix_init(options: Allocated) -> Option<Id> = "init";
        fn unix_path(options: &Id) -> Option<Id> = "path";
        fn unix_max_path(class: ClassRef) -> usize = "maximumPathLength";
        fn abstract_init_name(options: Allocated, name: &Id, error: &mut foundation::ErrorSlot) -> Option<Id> =
            "initWithName:error:";
        fn abstract_name(options: &Id) -> Option<Id> = "name";
        fn abstract_max_name(class: ClassRef) -> usize = "maximumNameLength";
    }

    const ROSETTA: &str = "Rosetta for Linux";
    const CACHING: &str = "Rosetta translation caching";

    fn rosetta_class() -> Result<ClassRef, VZError> {
        class_since(class!("VZLinuxRosettaDirectoryShare"), ROSETTA, "13.0")
    }

    /// `VZLinuxRosettaDirectoryShare` (macOS 13, Apple silicon only; also compiled for
    /// the Linux test simulator): shares Rosetta
    /// with a Linux guest so it can run x86_64 binaries. Mount the device's tag in
    /// the guest and register the `rosetta` binary with `binfmt_misc`.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), arcbox_vz::VZError> {
    /// use arcbox_vz::{
    ///     LinuxRosettaAvailability, LinuxRosettaDirectoryShare, VirtioFileSystemDeviceConfiguration,
    /// };
    ///
    /// match LinuxRosettaDirectoryShare::availability() {
    ///     LinuxRosettaAvailability::Installed => {}
    ///     LinuxRosettaAvailability::NotInstalled => LinuxRosettaDirectoryShare::install().await?,
    ///     _ => return Ok(()),
    /// }
    /// let rosetta = VirtioFileSystemDeviceConfiguration::new("rosetta", LinuxRosettaDirectoryShare::new()?)?;
    /// # let _ = rosetta; Ok(()) }
    /// ```
    #[derive(Debug)]
    pub struct LinuxRosettaDirectoryShare {
        pub(super) obj: Id,
        caching: Option<LinuxRosettaCachingOptions>,
    }

    impl LinuxRosettaDirectoryShare {
        /// Whether Rosetta for Linux is supported and installed
        /// (`+[VZLinuxRosettaDirectoryShare availability]`);
        /// [`NotSupported`](LinuxRosettaAvailability::NotSupported) before macOS 13.
        pub fn availability() -> LinuxRosettaAvailability {
            match rosetta_class() {
                Ok(class) => {
                    LinuxRosettaAvailability::from_raw(in_pool!(rosetta_availability(class)))
                }
                Err(_) => LinuxRosettaAvailability::NotSupported,
            }
        }

        /// A Rosetta share (`initWithError:`). Check
        /// [`availability`](Self::availability) first.
        ///
        /// # Errors
        ///
        /// [`VZError::Framework`] when Rosetta is not available (for example, not
        /// installed: see [`install`](Self::install)); [`VZError::Unsupported`]
        /// before macOS 13.
        pub fn new() -> Result<Self, VZError> {
            let class = rosetta_class()?;
            let obj = with_error("-[VZLinuxRosettaDirectoryShare initWithError:]", |error| {
                rosetta_init(class.alloc(), error)
            })
            .map_err(VZError::Framework)?;
            Ok(Self { obj, caching: None })
        }

        /// Downloads and installs Rosetta for Linux if needed, prompting the user
        /// (`+installRosettaWithCompletionHandler:`). The framework calls back on an
        /// arbitrary queue; the future works with any executor and may be dropped
        /// early.
        ///
        /// # Errors
        ///
        /// [`VZError::Framework`] when the installation fails or the user cancels it;
        /// [`VZError::Cancelled`] if the framework drops the request without
        /// answering; [`VZError::Unsupported`] before macOS 13.
        pub async fn install() -> Result<(), VZError> {
            let completion = start_install()?;
            match completion.await? {
                None => Ok(()),
                Some(error) => Err(VZError::Framework(error)),
            }
        }

        /// Sets or removes the translation caching options (`setOptions:`, macOS 14).
        ///
        /// # Errors
        ///
        /// [`VZError::Unsupported`] before macOS 14.
        pub fn set_caching_options(
            &mut self,
            options: Option<LinuxRosettaCachingOptions>,
        ) -> Result<&mut Self, VZError> {
            crate::configuration::method_since(&self.obj, sel!("setOptions:"), CACHING, "14.0")?;
            in_pool!(rosetta_set_options(
                &self.obj,
                options.as_ref().map(|o| o.obj())
            ));
            self.caching = options;
            Ok(self)
        }

        /// The translation caching options, if set.
        pub fn caching_options(&self) -> Option<&LinuxRosettaCachingOptions> {
            self.caching.as_ref()
        }
    }

    /// Starts the installation; the block owns the completer, so a handler released
    /// without being called resolves the future to `Cancelled`.
    fn start_install() -> Result<bridge::Completion<Option<FrameworkError>>, VZError> {
        let class = rosetta_class()?;
        let (completer, completion) = bridge::channel();
        let handler = RcBlock::once::<ErrorArg, _>(move |error: Option<Id>| {
            // Runs on an arbitrary queue, inside an autorelease pool (the block's).
            let _ = completer.complete(error.as_ref().map(foundation::framework_error));
        });
        in_pool!(rosetta_install(class, &handler));
        Ok(completion)
    }

    /// The future of [`LinuxRosettaDirectoryShare::install`] can move between threads.
    #[allow(dead_code)]
    fn _install_is_send() {
        fn is_send<T: Send>(_: &T) {}
        is_send(&LinuxRosettaDirectoryShare::install());
    }

    /// `VZLinuxRosettaCachingOptions` (macOS 14): how Rosetta reaches the translation
    /// cache daemon in the guest.
    #[derive(Debug, Clone)]
    #[non_exhaustive]
    pub enum LinuxRosettaCachingOptions {
        /// A Unix domain socket at a path.
        UnixSocket(LinuxRosettaUnixSocketCachingOptions),
        /// A Linux abstract socket.
        AbstractSocket(LinuxRosettaAbstractSocketCachingOptions),
    }

    impl LinuxRosettaCachingOptions {
        fn obj(&self) -> &Id {
            match self {
                Self::UnixSocket(o) => &o.obj,
                Self::AbstractSocket(o) => &o.obj,
            }
        }
    }

    impl From<LinuxRosettaUnixSocketCachingOptions> for LinuxRosettaCachingOptions {
        fn from(o: LinuxRosettaUnixSocketCachingOptions) -> Self {
            Self::UnixSocket(o)
        }
    }

    impl From<LinuxRosettaAbstractSocketCachingOptions> for LinuxRosettaCachingOptions {
        fn from(o: LinuxRosettaAbstractSocketCachingOptions) -> Self {
            Self::AbstractSocket(o)
        }
    }

    fn unix_class() -> Result<ClassRef, VZError> {
        class_since(
            class!("VZLinuxRosettaUnixSocketCachingOptions"),
            CACHING,
            "14.0",
        )
    }

    fn abstract_class() -> Result<ClassRef, VZError> {
        class_since(
            class!("VZLinuxRosettaAbstractSocketCachingOptions"),
            CACHING,
            "14.0",
        )
    }

    /// Checks a socket path or name: no NUL, at most `max` bytes of UTF-8.
    fn check_socket_name(value: &str, max: usize, argument: &'static str) -> Result<(), VZError> {
        foundation::check_string(value, argument)?;
        if value.is_empty() {
            return Err(VZError::invalid_argument(argument, "it is empty"));
        }
        if value.len() > max {
            return Err(VZError::invalid_argument(
                argument,
                format!(
                    "{value:?} is {} bytes of UTF-8; the limit is {max}",
                    value.len()
                ),
            ));
        }
        Ok(())
    }

    /// `VZLinuxRosettaUnixSocketCachingOptions` (macOS 14): Rosetta talks to the
    /// translation cache daemon over a Unix domain socket in the guest.
    #[derive(Debug, Clone)]
    pub struct LinuxRosettaUnixSocketCachingOptions {
        obj: Id,
    }

    impl LinuxRosettaUnixSocketCachingOptions {
        /// The default socket, `/run/rosettad/rosetta.sock` (`init`).
        ///
        /// # Errors
        ///
        /// [`VZError::Unsupported`] before macOS 14.
        pub fn default_socket() -> Result<Self, VZError> {
            let class = unix_class()?;
            in_pool!(unix_init(class.alloc()))
                .map(|obj| Self { obj })
                .ok_or(VZError::ClassNotFound {
                    class: "VZLinuxRosettaUnixSocketCachingOptions",
                })
        }

        /// A socket at `path` in the guest (`initWithPath:error:`); the guest must
        /// create its directory.
        ///
        /// # Errors
        ///
        /// [`VZError::InvalidArgument`] (`"Rosetta caching socket path"`) when the path
        /// is empty, contains a NUL byte, starts with U+FEFF or is longer than
        /// [`maximum_path_length`](Self::maximum_path_length) bytes;
        /// [`VZError::Framework`] when the framework refuses it;
        /// [`VZError::Unsupported`] before macOS 14.
        pub fn new(path: &str) -> Result<Self, VZError> {
            let class = unix_class()?;
            check_socket_name(
                path,
                Self::maximum_path_length()?,
                "Rosetta caching socket path",
            )?;
            let obj = with_error(
                "-[VZLinuxRosettaUnixSocketCachingOptions initWithPath:error:]",
                |error| unix_init_path(class.alloc(), &foundation::ns_string(path), error),
            )
            .map_err(VZError::Framework)?;
            Ok(Self { obj })
        }

        /// The socket path (`path`).
        pub fn path(&self) -> String {
            in_pool!({
                unix_path(&self.obj)
                    .as_ref()
                    .map(foundation::string_from)
                    .unwrap_or_default()
            })
        }

        /// The longest path allowed, in bytes (`+maximumPathLength`).
        ///
        /// # Errors
        ///
        /// [`VZError::Unsupported`] before macOS 14.
        pub fn maximum_path_length() -> Result<usize, VZError> {
            let class = unix_class()?;
            Ok(in_pool!(unix_max_path(class)))
        }
    }

    /// `VZLinuxRosettaAbstractSocketCachingOptions` (macOS 14): Rosetta talks to the
    /// translation cache daemon over a Linux abstract socket.
    #[derive(Debug, Clone)]
    pub struct LinuxRosettaAbstractSocketCachingOptions {
        obj: Id,
    }

    impl LinuxRosettaAbstractSocketCachingOptions {
        /// An abstract socket named `name` (`initWithName:error:`).
        ///
        /// # Errors
        ///
        /// [`VZError::InvalidArgument`] (`"Rosetta caching socket name"`) when the
        /// name is empty, contains a NUL byte, starts with U+FEFF or is longer than
        /// [`maximum_name_length`](Self::maximum_name_length) bytes;
        /// [`VZError::Framework`] when the framework refuses it;
        /// [`VZError::Unsupported`] before macOS 14.
        pub fn new(name: &str) -> Result<Self, VZError> {
            let class = abstract_class()?;
            check_socket_name(
                name,
                Self::maximum_name_length()?,
                "Rosetta caching socket name",
            )?;
            let obj = with_error(
                "-[VZLinuxRosettaAbstractSocketCachingOptions initWithName:error:]",
                |error| abstract_init_name(class.alloc(), &foundation::ns_string(name), error),
            )
            .map_err(VZError::Framework)?;
            Ok(Self { obj })
        }

        /// The socket name (`name`).
        pub fn name(&self) -> String {
            in_pool!({
                abstract_name(&self.obj)
                    .as_ref()
                    .map(foundation::string_from)
                    .unwrap_or_default()
            })
        }

        /// The longest name allowed, in bytes (`+maximumNameLength`).
        ///
        /// # Errors
        ///
        /// [`VZError::Unsupported`] before macOS 14.
        pub fn maximum_name_length() -> Result<usize, VZError> {
            let class = abstract_class()?;
            Ok(in_pool!(abstract_max_name(class)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{LinuxRosettaAvailability, VirtioFileSystemDeviceConfiguration};

    #[test]
    fn rosetta_availability_uses_apples_raw_values() {
        // VZLinuxRosettaAvailability: NotSupported = 0, NotInstalled = 1, Installed = 2
        // (arcbox swapped 1 and 2).
        assert_eq!(
            LinuxRosettaAvailability::from_raw(0),
            LinuxRosettaAvailability::NotSupported
        );
        assert_eq!(
            LinuxRosettaAvailability::from_raw(1),
            LinuxRosettaAvailability::NotInstalled
        );
        assert_eq!(
            LinuxRosettaAvailability::from_raw(2),
            LinuxRosettaAvailability::Installed
        );
        assert_eq!(
            LinuxRosettaAvailability::from_raw(3),
            LinuxRosettaAvailability::Unknown(3)
        );
        assert_eq!(
            LinuxRosettaAvailability::from_raw(-1),
            LinuxRosettaAvailability::Unknown(-1)
        );
    }

    #[test]
    fn tag_limit_is_below_the_virtio_field() {
        // "less than 36 bytes when encoded in UTF-8".
        assert_eq!(VirtioFileSystemDeviceConfiguration::MAX_TAG_LEN, 35);
    }
}

objc_methods! {
    fn runtime_tag_raw(device: &Id) -> Option<Id> = "tag";
    fn runtime_set_share_raw(device: &Id, share: Option<&Id>) = "setShare:";
    fn runtime_share_raw(device: &Id) -> Option<Id> = "share";
}

/// `VZVirtioFileSystemDevice`: a virtiofs device of a running virtual machine, from
/// [`VirtualMachine::directory_sharing_devices`](crate::VirtualMachine::directory_sharing_devices).
/// Every call runs on the VM queue; the handle keeps the virtual machine alive.
///
/// ```no_run
/// # fn demo(vm: arcbox_vz::VirtualMachine) -> Result<(), arcbox_vz::VZError> {
/// use arcbox_vz::{SharedDirectory, SingleDirectoryShare};
///
/// let device = vm.directory_sharing_devices().remove(0);
/// let share = SingleDirectoryShare::new(SharedDirectory::new("/tmp/other", true)?);
/// device.set_share(Some(share.into()))?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct VirtioFileSystemDevice {
    handle: crate::vm::DeviceHandle,
}

impl VirtioFileSystemDevice {
    pub(crate) fn new(handle: crate::vm::DeviceHandle) -> Self {
        Self { handle }
    }

    /// The tag the guest mounts (`tag`).
    pub fn tag(&self) -> String {
        self.handle
            .with(|device| {
                runtime_tag_raw(device)
                    .as_ref()
                    .map(foundation::string_from)
            })
            .unwrap_or_default()
    }

    /// Whether a share is attached (`share` is not nil).
    pub fn has_share(&self) -> bool {
        self.handle
            .with(|device| runtime_share_raw(device).is_some())
    }

    /// Swaps the shared directory while the virtual machine runs (`setShare:`), or
    /// detaches it with `None`.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] for a Rosetta share, which the framework refuses
    /// at run time (it raises): configure Rosetta before starting.
    pub fn set_share(&self, share: Option<DirectoryShare>) -> Result<(), VZError> {
        #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
        if matches!(share, Some(DirectoryShare::Rosetta(_))) {
            return Err(VZError::invalid_argument(
                "directory share",
                "a Rosetta share cannot be set on a running virtiofs device; set it in the configuration before starting",
            ));
        }
        let share = share.map(|s| s.as_object().clone());
        self.handle
            .with(move |device| runtime_set_share_raw(device, share.as_ref()));
        Ok(())
    }
}
