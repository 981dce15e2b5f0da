//! macOS guests, configuration side (Apple silicon only; macOS 12): the restore image
//! (`VZMacOSRestoreImage`) and its requirements (`VZMacOSConfigurationRequirements`),
//! the hardware model, machine identifier and auxiliary storage, the Mac platform
//! (`VZMacPlatformConfiguration`) and the macOS boot loader (`VZMacOSBootLoader`).
//!
//! Every class here is declared only for arm64 in Apple's headers (`#ifdef
//! __arm64__`; vz-api.tsv), so none of this exists on Intel Macs.
//!
//! What stays with the user: downloading the restore image. After
//! [`MacOSRestoreImage::fetch_latest_supported`], fetch the file it names with, for
//! example, `curl --fail --location --output restore.ipsw "$URL"`, then
//! [`MacOSRestoreImage::load`] it.

use std::future::Future;
use std::path::{Path, PathBuf};

use crate::bridge;
use crate::configuration::{
    AsObject, class_since, existing_file, file_to_create, path_error, read_head,
};
use crate::error::{FrameworkError, VZError};
use crate::ffi::block::{ObjectErrorArgs, RcBlock};
use crate::ffi::foundation;
use crate::ffi::os_version;
use crate::ffi::runtime::{
    Allocated, ClassRef, Id, autoreleasepool, class, in_pool, objc_methods, sel,
};

objc_methods! {
    fn image_load_raw(class: ClassRef, url: &Id, handler: &RcBlock) =
        "loadFileURL:completionHandler:";
    fn image_fetch_raw(class: ClassRef, handler: &RcBlock) =
        "fetchLatestSupportedWithCompletionHandler:";
    fn image_url_raw(image: &Id) -> Option<Id> = "URL";
    fn image_build_raw(image: &Id) -> Option<Id> = "buildVersion";
    fn image_supported_raw(image: &Id) -> bool = "isSupported";
    fn image_requirements_raw(image: &Id) -> Option<Id> = "mostFeaturefulSupportedConfiguration";
    fn requirements_model_raw(requirements: &Id) -> Option<Id> = "hardwareModel";
    fn requirements_cpus_raw(requirements: &Id) -> usize = "minimumSupportedCPUCount";
    fn requirements_memory_raw(requirements: &Id) -> u64 = "minimumSupportedMemorySize";
    fn model_init_with_data(model: Allocated, data: &Id) -> Option<Id> =
        "initWithDataRepresentation:";
    fn model_data_raw(model: &Id) -> Option<Id> = "dataRepresentation";
    fn model_supported_raw(model: &Id) -> bool = "isSupported";
    fn identifier_init(identifier: Allocated) -> Option<Id> = "init";
    fn identifier_init_with_data(identifier: Allocated, data: &Id) -> Option<Id> =
        "initWithDataRepresentation:";
    fn identifier_data_raw(identifier: &Id) -> Option<Id> = "dataRepresentation";
    fn storage_init_with_url(storage: Allocated, url: &Id) -> Option<Id> = "initWithURL:";
    fn storage_init_with_contents(storage: Allocated, url: &Id) -> Option<Id> =
        "initWithContentsOfURL:";
    fn storage_create_raw(
        storage: Allocated,
        url: &Id,
        model: &Id,
        options: usize,
        error: &mut foundation::ErrorSlot,
    ) -> Option<Id> = "initCreatingStorageAtURL:hardwareModel:options:error:";
    fn storage_url_raw(storage: &Id) -> Option<Id> = "URL";
    fn platform_init(platform: Allocated) -> Option<Id> = "init";
    fn set_hardware_model_raw(platform: &Id, model: &Id) = "setHardwareModel:";
    fn set_machine_identifier_raw(platform: &Id, identifier: &Id) = "setMachineIdentifier:";
    fn set_auxiliary_storage_raw(platform: &Id, storage: &Id) = "setAuxiliaryStorage:";
    fn boot_loader_init(boot_loader: Allocated) -> Option<Id> = "init";
}

/// `VZMacAuxiliaryStorageInitializationOptionAllowOverwrite` (vz-api.tsv).
const ALLOW_OVERWRITE: usize = 1;

/// The first bytes of a zip archive (a local file header), which an IPSW is.
const ZIP_MAGIC: &[u8; 4] = b"PK\x03\x04";

/// An empty zip archive (end-of-central-directory record only); not a restore image.
const EMPTY_ZIP_MAGIC: &[u8; 4] = b"PK\x05\x06";

fn mac_class(class: Result<ClassRef, VZError>, feature: &'static str) -> Result<ClassRef, VZError> {
    class_since(class, feature, "12.0")
}

fn framework(error: Option<Id>, what: &str) -> VZError {
    VZError::Framework(match error {
        Some(error) => foundation::framework_error(&error),
        None => FrameworkError::new(
            "arcbox-vz",
            0,
            format!("{what} failed, and Virtualization.framework gave no reason"),
        ),
    })
}

/// A macOS version, as in `NSOperatingSystemVersion`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OperatingSystemVersion {
    /// For example 15 in 15.1.2.
    pub major: i64,
    /// For example 1 in 15.1.2.
    pub minor: i64,
    /// For example 2 in 15.1.2.
    pub patch: i64,
}

impl std::fmt::Display for OperatingSystemVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// `VZMacOSRestoreImage` (macOS 12, Apple silicon): a macOS release to install in a
/// guest, from a local `.ipsw` file ([`load`](Self::load)) or the catalog of the
/// newest release this Mac supports ([`fetch_latest_supported`](Self::fetch_latest_supported)).
///
/// ```no_run
/// # async fn demo() -> Result<(), arcbox_vz::VZError> {
/// use arcbox_vz::MacOSRestoreImage;
///
/// // Where to download from; then, in a shell:
/// //   curl --fail --location --output restore.ipsw "$URL"
/// let latest = MacOSRestoreImage::fetch_latest_supported().await?;
/// println!("{} ({})", latest.url(), latest.build_version());
///
/// let image = MacOSRestoreImage::load("restore.ipsw").await?;
/// let requirements = image
///     .most_featureful_supported_configuration()
///     .expect("this Mac cannot install the image");
/// requirements.check(4, 8 << 30)?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MacOSRestoreImage {
    obj: Id,
}

impl MacOSRestoreImage {
    /// Loads a local restore image (`+loadFileURL:completionHandler:`).
    ///
    /// The file is checked first, and nothing reaches the framework unless it is an
    /// existing regular file that starts like a zip archive, which every IPSW is.
    /// The framework answers on a thread of its own; the future is `Send` and
    /// borrows nothing.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] for a missing file or one that is not an IPSW;
    /// [`VZError::Framework`] when the framework cannot read it
    /// (`VZErrorRestoreImageLoadFailed` 10004, `VZErrorInvalidRestoreImage` 10005);
    /// [`VZError::Unsupported`] before macOS 12 or on an Intel Mac.
    pub fn load(path: impl AsRef<Path>) -> impl Future<Output = Result<Self, VZError>> + Send {
        let prepared = prepare_load(path.as_ref());
        async move {
            let (class, url) = prepared?;
            let rx = start_image_request(|handler| image_load_raw(class, &url, handler));
            rx.await?
        }
    }

    /// Asks Apple's catalog for the newest restore image this Mac supports
    /// (`+fetchLatestSupportedWithCompletionHandler:`, a network request). The
    /// image's [`url`](Self::url) is a remote `https` URL: download it yourself
    /// (`curl --fail --location --output restore.ipsw "$URL"`) and
    /// [`load`](Self::load) the file.
    ///
    /// # Errors
    ///
    /// [`VZError::Framework`] when the catalog cannot be fetched or has nothing for
    /// this Mac (`VZErrorRestoreImageCatalogLoadFailed` 10001 and the next codes);
    /// [`VZError::Unsupported`] before macOS 12 or on an Intel Mac.
    pub fn fetch_latest_supported() -> impl Future<Output = Result<Self, VZError>> + Send {
        let class = image_class();
        async move {
            let class = class?;
            let rx = start_image_request(|handler| image_fetch_raw(class, handler));
            rx.await?
        }
    }

    /// `URL`: the file it was loaded from (`file://…`), or where to download it
    /// (`https://…`) after [`fetch_latest_supported`](Self::fetch_latest_supported).
    pub fn url(&self) -> String {
        in_pool!({
            image_url_raw(&self.obj)
                .as_ref()
                .map(foundation::url_string)
                .unwrap_or_default()
        })
    }

    /// `buildVersion`, for example `"24A335"`.
    pub fn build_version(&self) -> String {
        in_pool!({
            image_build_raw(&self.obj)
                .as_ref()
                .map(foundation::string_from)
                .unwrap_or_default()
        })
    }

    /// `operatingSystemVersion`: the macOS release the image installs.
    pub fn operating_system_version(&self) -> OperatingSystemVersion {
        let raw = autoreleasepool(|| {
            os_version::send_returning_version(&self.obj, sel!("operatingSystemVersion"))
        });
        OperatingSystemVersion {
            major: raw.major as i64,
            minor: raw.minor as i64,
            patch: raw.patch as i64,
        }
    }

    /// Whether this Mac can install and run the image (`isSupported`, macOS 13; on
    /// macOS 12, whether it has a supported configuration).
    pub fn is_supported(&self) -> bool {
        if self.obj.responds_to(sel!("isSupported")) {
            in_pool!(image_supported_raw(&self.obj))
        } else {
            self.most_featureful_supported_configuration().is_some()
        }
    }

    /// `mostFeaturefulSupportedConfiguration`: the hardware model and minimum
    /// resources to install the image with, or `None` when this Mac supports none of
    /// the image's hardware models (it cannot install it).
    pub fn most_featureful_supported_configuration(
        &self,
    ) -> Option<MacOSConfigurationRequirements> {
        in_pool!(image_requirements_raw(&self.obj))
            .map(|obj| MacOSConfigurationRequirements { obj })
    }

    /// The local file, after [`load`](Self::load); `None` for a remote image.
    pub fn path(&self) -> Option<PathBuf> {
        autoreleasepool(|| {
            let url = image_url_raw(&self.obj)?;
            self.url()
                .starts_with("file:")
                .then(|| foundation::url_path(&url))
        })
    }
}

fn image_class() -> Result<ClassRef, VZError> {
    mac_class(class!("VZMacOSRestoreImage"), "macOS restore image")
}

/// Checks a restore image path and makes its URL, before anything is sent.
fn prepare_load(path: &Path) -> Result<(ClassRef, Id), VZError> {
    let class = image_class()?;
    Ok((class, restore_image_url(path)?))
}

/// The file URL of a local restore image, after checking that `path` is an existing
/// regular file that starts like a zip archive, as every IPSW does.
pub(crate) fn restore_image_url(path: &Path) -> Result<Id, VZError> {
    let argument = "restore image";
    let url = existing_file(path, argument)?;
    let head = read_head(path, argument, ZIP_MAGIC.len())?;
    if head.as_slice() != ZIP_MAGIC {
        let why = if head.as_slice() == EMPTY_ZIP_MAGIC {
            "an empty zip archive".to_owned()
        } else if head.len() < ZIP_MAGIC.len() {
            format!(
                "only {}",
                crate::configuration::byte_count(head.len() as u64)
            )
        } else {
            "not a zip archive".to_owned()
        };
        return Err(VZError::invalid_argument(
            argument,
            format!(
                "{} is not an IPSW restore image ({why}; an IPSW is a zip archive starting with PK\\x03\\x04)",
                path.display()
            ),
        ));
    }
    Ok(url)
}

/// Sends a request whose handler receives `(VZMacOSRestoreImage?, NSError?)` on an
/// arbitrary thread, and returns the completion to await.
fn start_image_request(
    send: impl FnOnce(&RcBlock),
) -> bridge::Completion<Result<MacOSRestoreImage, VZError>> {
    let (tx, rx) = bridge::channel::<Result<MacOSRestoreImage, VZError>>();
    let handler = RcBlock::once::<ObjectErrorArgs, _>(move |(image, error)| {
        let result = match image {
            Some(obj) => Ok(MacOSRestoreImage { obj }),
            None => Err(framework(error, "loading the restore image")),
        };
        let _ = tx.complete(result);
    });
    in_pool!(send(&handler));
    rx
}

/// `VZMacOSConfigurationRequirements` (macOS 12, Apple silicon): what a restore image
/// needs, from [`MacOSRestoreImage::most_featureful_supported_configuration`].
#[derive(Debug)]
pub struct MacOSConfigurationRequirements {
    obj: Id,
}

impl MacOSConfigurationRequirements {
    /// `hardwareModel`: the model for both the platform and the auxiliary storage.
    ///
    /// # Panics
    ///
    /// If the framework returns nil, which its header rules out (`nonnull`).
    pub fn hardware_model(&self) -> MacHardwareModel {
        let obj = in_pool!(requirements_model_raw(&self.obj))
            .expect("hardwareModel is nonnull (vz-api.tsv)");
        MacHardwareModel { obj }
    }

    /// `minimumSupportedCPUCount`.
    pub fn minimum_supported_cpu_count(&self) -> usize {
        in_pool!(requirements_cpus_raw(&self.obj))
    }

    /// `minimumSupportedMemorySize`, in bytes.
    pub fn minimum_supported_memory_size(&self) -> u64 {
        in_pool!(requirements_memory_raw(&self.obj))
    }

    /// Checks a CPU count and a memory size (bytes) against the minimums, and that
    /// this Mac supports the hardware model. Below the minimums the framework's
    /// behaviour is undefined (vz-api.tsv), so check before building.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] naming what is too small or unsupported.
    pub fn check(&self, cpu_count: usize, memory_size: u64) -> Result<(), VZError> {
        let cpus = self.minimum_supported_cpu_count();
        if cpu_count < cpus {
            return Err(VZError::invalid_argument(
                "CPU count",
                format!("{cpu_count} is below the {cpus} this macOS release needs"),
            ));
        }
        let memory = self.minimum_supported_memory_size();
        if memory_size < memory {
            return Err(VZError::invalid_argument(
                "memory size",
                format!("{memory_size} bytes is below the {memory} bytes this macOS release needs"),
            ));
        }
        self.hardware_model().require_supported()
    }
}

/// `VZMacHardwareModel` (macOS 12, Apple silicon): the virtual Mac model a guest was
/// installed for. Store [`data_representation`](Self::data_representation) next to
/// the disk and rebuild it on every boot.
#[derive(Debug, Clone)]
pub struct MacHardwareModel {
    obj: Id,
}

impl AsObject for MacHardwareModel {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

impl MacHardwareModel {
    /// Rebuilds a model from its stored bytes (`initWithDataRepresentation:`).
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] when the bytes are empty or not a hardware model;
    /// [`VZError::Unsupported`] before macOS 12 or on an Intel Mac.
    pub fn from_data_representation(data: &[u8]) -> Result<Self, VZError> {
        let class = mac_class(class!("VZMacHardwareModel"), "Mac hardware model")?;
        let garbage = || {
            VZError::invalid_argument(
                "hardware model data",
                format!(
                    "{} that are not a VZMacHardwareModel data representation",
                    crate::configuration::byte_count(data.len() as u64)
                ),
            )
        };
        if data.is_empty() {
            return Err(garbage());
        }
        in_pool!(model_init_with_data(
            class.alloc(),
            &foundation::ns_data(data)
        ))
        .map(|obj| Self { obj })
        .ok_or_else(garbage)
    }

    /// The bytes to store (`dataRepresentation`).
    pub fn data_representation(&self) -> Vec<u8> {
        in_pool!({
            model_data_raw(&self.obj)
                .as_ref()
                .map(foundation::data_to_vec)
                .unwrap_or_default()
        })
    }

    /// Whether this Mac can run this model (`isSupported`); if not, no configuration
    /// using it validates.
    pub fn is_supported(&self) -> bool {
        in_pool!(model_supported_raw(&self.obj))
    }

    /// [`VZError::InvalidArgument`] unless [`is_supported`](Self::is_supported).
    pub(crate) fn require_supported(&self) -> Result<(), VZError> {
        if self.is_supported() {
            Ok(())
        } else {
            Err(VZError::invalid_argument(
                "hardware model",
                "this Mac does not support the hardware model (isSupported is false)",
            ))
        }
    }
}

impl PartialEq for MacHardwareModel {
    fn eq(&self, other: &Self) -> bool {
        self.data_representation() == other.data_representation()
    }
}

impl Eq for MacHardwareModel {}

/// `VZMacMachineIdentifier` (macOS 12, Apple silicon): the identity of one virtual
/// Mac. Two virtual machines running at once must not share one.
#[derive(Debug, Clone)]
pub struct MacMachineIdentifier {
    obj: Id,
}

impl AsObject for MacMachineIdentifier {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

fn identifier_class() -> Result<ClassRef, VZError> {
    mac_class(class!("VZMacMachineIdentifier"), "Mac machine identifier")
}

impl MacMachineIdentifier {
    /// A new, unique identifier (`init`), for a new installation.
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 12 or on an Intel Mac.
    pub fn new() -> Result<Self, VZError> {
        let class = identifier_class()?;
        in_pool!(identifier_init(class.alloc()))
            .map(|obj| Self { obj })
            .ok_or(VZError::ClassNotFound {
                class: "VZMacMachineIdentifier",
            })
    }

    /// Rebuilds an identifier from its stored bytes (`initWithDataRepresentation:`).
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] when the bytes are empty or not an identifier;
    /// [`VZError::Unsupported`] before macOS 12 or on an Intel Mac.
    pub fn from_data_representation(data: &[u8]) -> Result<Self, VZError> {
        let class = identifier_class()?;
        let garbage = || {
            VZError::invalid_argument(
                "machine identifier data",
                format!(
                    "{} that are not a VZMacMachineIdentifier data representation",
                    crate::configuration::byte_count(data.len() as u64)
                ),
            )
        };
        if data.is_empty() {
            return Err(garbage());
        }
        in_pool!(identifier_init_with_data(
            class.alloc(),
            &foundation::ns_data(data)
        ))
        .map(|obj| Self { obj })
        .ok_or_else(garbage)
    }

    /// The bytes to store (`dataRepresentation`).
    pub fn data_representation(&self) -> Vec<u8> {
        in_pool!({
            identifier_data_raw(&self.obj)
                .as_ref()
                .map(foundation::data_to_vec)
                .unwrap_or_default()
        })
    }
}

impl PartialEq for MacMachineIdentifier {
    fn eq(&self, other: &Self) -> bool {
        self.data_representation() == other.data_representation()
    }
}

impl Eq for MacMachineIdentifier {}

/// `VZMacAuxiliaryStorage` (macOS 12, Apple silicon): the guest's boot and NVRAM
/// data, a file that travels with the disk. Create it once with the hardware model
/// the guest is installed for; open it on later boots.
#[derive(Debug, Clone)]
pub struct MacAuxiliaryStorage {
    obj: Id,
    /// The model it was created with, when it was created here (the framework has
    /// no getter for it).
    created_for: Option<MacHardwareModel>,
}

impl AsObject for MacAuxiliaryStorage {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

fn storage_class() -> Result<ClassRef, VZError> {
    mac_class(class!("VZMacAuxiliaryStorage"), "Mac auxiliary storage")
}

impl MacAuxiliaryStorage {
    /// Creates a new, empty store at `path` for `model`
    /// (`initCreatingStorageAtURL:hardwareModel:options:error:`). An existing file is
    /// replaced only when `overwrite` is true.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] when the file exists and `overwrite` is false,
    /// when the path is not a regular file or its directory is missing, or when this
    /// Mac does not support `model`; [`VZError::Framework`] when the framework
    /// cannot write it; [`VZError::Unsupported`] before macOS 12 or on Intel.
    pub fn create(
        path: impl AsRef<Path>,
        model: &MacHardwareModel,
        overwrite: bool,
    ) -> Result<Self, VZError> {
        let path = path.as_ref();
        let class = storage_class()?;
        let argument = "auxiliary storage path";
        let url = file_to_create(path, argument)?;
        if !overwrite {
            match std::fs::symlink_metadata(path) {
                Ok(_) => {
                    return Err(VZError::invalid_argument(
                        argument,
                        format!(
                            "{} already exists; pass overwrite = true to replace it",
                            path.display()
                        ),
                    ));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(path_error(argument, path, "read", &e)),
            }
        }
        model.require_supported()?;
        let options = if overwrite { ALLOW_OVERWRITE } else { 0 };
        foundation::with_error("creating the auxiliary storage", |error| {
            storage_create_raw(class.alloc(), &url, &model.obj, options, error)
        })
        .map(|obj| Self {
            obj,
            created_for: Some(model.clone()),
        })
        .map_err(VZError::Framework)
    }

    /// Opens an existing store (`initWithURL:`, macOS 13; `initWithContentsOfURL:`
    /// on macOS 12). The framework reports problems with its content only when the
    /// configuration is validated or the machine starts.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] when `path` is not an existing regular file;
    /// [`VZError::Unsupported`] before macOS 12 or on an Intel Mac.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, VZError> {
        let class = storage_class()?;
        let url = existing_file(path.as_ref(), "auxiliary storage path")?;
        let obj = if class.instances_respond_to(sel!("initWithURL:")) {
            in_pool!(storage_init_with_url(class.alloc(), &url))
        } else {
            in_pool!(storage_init_with_contents(class.alloc(), &url))
        };
        obj.map(|obj| Self {
            obj,
            created_for: None,
        })
        .ok_or(VZError::ClassNotFound {
            class: "VZMacAuxiliaryStorage",
        })
    }

    /// The file (`URL`).
    pub fn path(&self) -> PathBuf {
        in_pool!({
            storage_url_raw(&self.obj)
                .as_ref()
                .map(foundation::url_path)
                .unwrap_or_default()
        })
    }
}

/// `VZMacPlatformConfiguration` (macOS 12, Apple silicon): the platform of a macOS
/// guest, with its hardware model, machine identifier and auxiliary storage. Use the
/// same three on every boot of the same guest; pair it with a [`MacOSBootLoader`].
///
/// ```no_run
/// # fn main() -> Result<(), arcbox_vz::VZError> {
/// use arcbox_vz::*;
///
/// let model = MacHardwareModel::from_data_representation(&std::fs::read("vm/model")?)?;
/// let id = MacMachineIdentifier::from_data_representation(&std::fs::read("vm/id")?)?;
/// let aux = MacAuxiliaryStorage::open("vm/aux.img")?;
/// let platform = MacPlatformConfiguration::new(&model, &id, &aux)?;
/// let mut config = VirtualMachineConfiguration::new()?;
/// config.set_platform(platform).set_boot_loader(MacOSBootLoader::new()?);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MacPlatformConfiguration {
    obj: Id,
    hardware_model: MacHardwareModel,
    machine_identifier: MacMachineIdentifier,
    auxiliary_storage: MacAuxiliaryStorage,
}

impl AsObject for MacPlatformConfiguration {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

impl MacPlatformConfiguration {
    /// A Mac platform (`init`, then `setHardwareModel:`, `setMachineIdentifier:` and
    /// `setAuxiliaryStorage:`).
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] when this Mac does not support the hardware
    /// model, or when the auxiliary storage was [created](MacAuxiliaryStorage::create)
    /// in this process for another model (the framework's behaviour is then
    /// undefined; a store [opened](MacAuxiliaryStorage::open) from a file cannot be
    /// checked); [`VZError::Unsupported`] before macOS 12 or on an Intel Mac.
    pub fn new(
        hardware_model: &MacHardwareModel,
        machine_identifier: &MacMachineIdentifier,
        auxiliary_storage: &MacAuxiliaryStorage,
    ) -> Result<Self, VZError> {
        let class = mac_class(class!("VZMacPlatformConfiguration"), "Mac platform")?;
        hardware_model.require_supported()?;
        if auxiliary_storage
            .created_for
            .as_ref()
            .is_some_and(|model| model != hardware_model)
        {
            return Err(VZError::invalid_argument(
                "auxiliary storage",
                "it was created for another hardware model than the platform's",
            ));
        }
        let obj = in_pool!(platform_init(class.alloc())).ok_or(VZError::ClassNotFound {
            class: "VZMacPlatformConfiguration",
        })?;
        in_pool!({
            set_hardware_model_raw(&obj, &hardware_model.obj);
            set_machine_identifier_raw(&obj, &machine_identifier.obj);
            set_auxiliary_storage_raw(&obj, &auxiliary_storage.obj);
        });
        Ok(Self {
            obj,
            hardware_model: hardware_model.clone(),
            machine_identifier: machine_identifier.clone(),
            auxiliary_storage: auxiliary_storage.clone(),
        })
    }

    /// The hardware model.
    pub fn hardware_model(&self) -> &MacHardwareModel {
        &self.hardware_model
    }

    /// The machine identifier.
    pub fn machine_identifier(&self) -> &MacMachineIdentifier {
        &self.machine_identifier
    }

    /// The auxiliary storage.
    pub fn auxiliary_storage(&self) -> &MacAuxiliaryStorage {
        &self.auxiliary_storage
    }
}

/// `VZMacOSBootLoader` (macOS 12, Apple silicon): boots a macOS guest; only valid
/// with a [`MacPlatformConfiguration`].
#[derive(Debug)]
pub struct MacOSBootLoader {
    pub(crate) obj: Id,
}

impl MacOSBootLoader {
    /// `init`.
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 12 or on an Intel Mac.
    pub fn new() -> Result<Self, VZError> {
        let class = mac_class(class!("VZMacOSBootLoader"), "macOS boot loader")?;
        in_pool!(boot_loader_init(class.alloc()))
            .map(|obj| Self { obj })
            .ok_or(VZError::ClassNotFound {
                class: "VZMacOSBootLoader",
            })
    }
}
