//! [`MacOSBundle`]: the four files of a macOS guest kept together in one directory,
//! with a small manifest that says how they belong together.
//!
//! A macOS guest is a disk image, its auxiliary storage, the hardware model it was
//! installed for and its machine identifier. Booting it with a model or identifier
//! of another guest, or with another guest's disk, fails in ways that are hard to
//! trace, so a bundle records which files belong together and checks them every
//! time it is opened.
//!
//! The format is documented on [`MacOSBundle`], which is public.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::configuration::{
    MacAuxiliaryStorage, MacHardwareModel, MacMachineIdentifier, MacOSBootLoader,
    MacOSConfigurationRequirements, MacPlatformConfiguration, VirtualMachineConfiguration,
    byte_count, class_since, file_type_name, max_cpu_count, max_memory_size, read_head,
};
use crate::device::{
    DiskImageStorageDeviceAttachment, KeyboardConfiguration, MacGraphicsDeviceConfiguration,
    MacGraphicsDisplayConfiguration, MacKeyboardConfiguration, MacTrackpadConfiguration,
    NATNetworkDeviceAttachment, PointingDeviceConfiguration, USBKeyboardConfiguration,
    USBScreenCoordinatePointingDeviceConfiguration, VirtioBlockDeviceConfiguration,
    VirtioEntropyDeviceConfiguration, VirtioNetworkDeviceConfiguration,
};
use crate::error::VZError;
use crate::ffi::runtime::class;

/// The `argument` of every bundle error.
const ARGUMENT: &str = "macOS bundle";
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const SECTOR: u64 = 512;
/// The first line's key; its value is the format version.
const FORMAT_KEY: &str = "arcbox_vz_macos_bundle";
const FORMAT_VERSION: u64 = 1;
const CPU_COUNT: &str = "cpu_count";
const MEMORY_SIZE: &str = "memory_size";
const DISK_SIZE: &str = "disk_size";
const MODEL_SUM: &str = "hardware_model_fnv1a64";
const IDENTIFIER_SUM: &str = "machine_identifier_fnv1a64";
const KEYS: [&str; 5] = [CPU_COUNT, MEMORY_SIZE, DISK_SIZE, MODEL_SUM, IDENTIFIER_SUM];

fn bundle_error(reason: impl Into<String>) -> VZError {
    VZError::invalid_argument(ARGUMENT, reason)
}

/// An error of a call made for one file of the bundle, renamed to the bundle with
/// the file named; other errors (`Unsupported`, `Framework`) pass through.
fn about_file(path: &Path, e: VZError) -> VZError {
    match e {
        VZError::InvalidArgument { reason, .. } => {
            bundle_error(format!("{}: {reason}", path.display()))
        }
        other => other,
    }
}

/// The 64-bit FNV-1a hash (see the module documentation).
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// What [`MacOSBundle::create`] makes: CPU count, memory size and disk size. Unset
/// values take the defaults each `create` function documents.
///
/// ```
/// # #[cfg(any(target_os = "macos", arcbox_vz_sim))]
/// # fn demo() {
/// use arcbox_vz::MacOSBundleOptions;
///
/// let options = MacOSBundleOptions::new()
///     .cpu_count(4)
///     .memory_size(8 << 30)
///     .disk_size(128 << 30);
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MacOSBundleOptions {
    cpu_count: Option<usize>,
    memory_size: Option<u64>,
    disk_size: Option<u64>,
}

impl MacOSBundleOptions {
    /// All defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of virtual CPUs.
    #[must_use]
    pub fn cpu_count(mut self, count: usize) -> Self {
        self.cpu_count = Some(count);
        self
    }

    /// The memory size in bytes: a multiple of 1 MiB.
    #[must_use]
    pub fn memory_size(mut self, bytes: u64) -> Self {
        self.memory_size = Some(bytes);
        self
    }

    /// The size of the disk image in bytes: a multiple of 512. The file is created
    /// sparse, so it takes host disk space only as the guest writes.
    #[must_use]
    pub fn disk_size(mut self, bytes: u64) -> Self {
        self.disk_size = Some(bytes);
        self
    }
}

/// A macOS guest on disk: disk image, auxiliary storage, hardware model and machine
/// identifier in one directory, with a manifest (its format is below).
///
/// [`create`](Self::create) makes a new bundle for a restore image's requirements;
/// install macOS into it once (with the macOS installer, `MacOSInstaller`, on a
/// virtual machine built from its [`configuration`](Self::configuration)), then
/// [`open`](Self::open) it and boot it as many times as you like.
///
/// ```no_run
/// # async fn demo() -> Result<(), arcbox_vz::VZError> {
/// use arcbox_vz::{MacOSBundle, MacOSBundleOptions, MacOSRestoreImage};
///
/// // Once: a bundle for the restore image, then install macOS into it.
/// let image = MacOSRestoreImage::load("restore.ipsw").await?;
/// let requirements = image
///     .most_featureful_supported_configuration()
///     .expect("this Mac cannot run the restore image");
/// let options = MacOSBundleOptions::new().cpu_count(4).memory_size(8 << 30);
/// let bundle = MacOSBundle::create("Guest.bundle", &requirements, options)?;
/// let config = bundle.configuration()?;
/// config.validate()?;
/// let vm = config.build()?;
/// // ... run the macOS installer on `vm` with "restore.ipsw" ...
/// # let _ = vm;
/// # Ok(()) }
/// ```
///
/// Every later boot:
///
/// ```no_run
/// # async fn demo() -> Result<(), arcbox_vz::VZError> {
/// use arcbox_vz::MacOSBundle;
///
/// let bundle = MacOSBundle::open("Guest.bundle")?;
/// let config = bundle.configuration()?;
/// config.validate()?;
/// let vm = config.build()?;
/// vm.start().await?;
/// # Ok(()) }
/// ```
///
/// # Layout
///
/// A bundle is a directory holding these files (the names of Apple's sample code,
/// plus the manifest); other files in it are left alone:
///
/// | File | Content |
/// |------|---------|
/// | `Disk.img` | the raw disk image, created sparse ([`DISK_IMAGE`](Self::DISK_IMAGE)) |
/// | `AuxiliaryStorage` | the `VZMacAuxiliaryStorage` file ([`AUXILIARY_STORAGE`](Self::AUXILIARY_STORAGE)) |
/// | `HardwareModel` | `VZMacHardwareModel.dataRepresentation` ([`HARDWARE_MODEL`](Self::HARDWARE_MODEL)) |
/// | `MachineIdentifier` | `VZMacMachineIdentifier.dataRepresentation` ([`MACHINE_IDENTIFIER`](Self::MACHINE_IDENTIFIER)) |
/// | `arcbox-vz-bundle.txt` | the manifest ([`MANIFEST`](Self::MANIFEST)) |
///
/// `HardwareModel` and `MachineIdentifier` hold the framework's bytes unchanged, 1
/// to [`MAX_DATA_SIZE`](Self::MAX_DATA_SIZE) bytes each; `AuxiliaryStorage` is not
/// empty.
///
/// # Manifest format, version 1
///
/// The manifest is ASCII text of at most [`MAX_MANIFEST_SIZE`](Self::MAX_MANIFEST_SIZE) bytes,
/// with no byte order mark and no NUL or other control bytes besides the line feed.
/// Lines end with `\n` (LF; a carriage return is refused). The first line is exactly
///
/// ```text
/// arcbox_vz_macos_bundle=1
/// ```
///
/// where `1` is the format version (written exactly so: `01` is refused); a reader
/// refuses a version it does not know.
/// Every other line is empty, a comment starting with `#`, or `key=value` with no
/// spaces around the `=`. Each of these keys appears exactly once (any order), and
/// no other key is allowed in version 1:
///
/// | Key | Value |
/// |-----|-------|
/// | `cpu_count` | virtual CPUs, decimal, at least 1 |
/// | `memory_size` | memory in bytes, decimal, a non-zero multiple of 1 MiB |
/// | `disk_size` | the exact length of `Disk.img` in bytes, decimal, a non-zero multiple of 512 |
/// | `hardware_model_fnv1a64` | the checksum of the bytes of `HardwareModel` |
/// | `machine_identifier_fnv1a64` | the checksum of the bytes of `MachineIdentifier` |
///
/// Decimal numbers are ASCII digits only (no sign, no spaces) and must fit in 64
/// bits (`cpu_count`: in the platform's `usize`). A checksum is the 64-bit FNV-1a hash of the whole file (offset basis
/// `0xcbf29ce484222325`, prime `0x100000001b3`: for each byte, XOR it in, then
/// multiply by the prime, wrapping), written as exactly 16 lowercase hexadecimal
/// digits. FNV-1a is not a cryptographic hash: it detects a file swapped by mistake
/// with another bundle's, not tampering. A disk image of another bundle is detected
/// only when its length differs.
///
/// The auxiliary storage has no checksum: the guest writes to it (it holds NVRAM).
/// Its content is checked by Virtualization.framework when the configuration is
/// validated or the guest starts.
///
/// An example, as [`create`](Self::create) writes it:
///
/// ```text
/// arcbox_vz_macos_bundle=1
/// # A macOS guest for arcbox-vz: keep these files together.
/// cpu_count=4
/// memory_size=8589934592
/// disk_size=68719476736
/// hardware_model_fnv1a64=3d2f0e6b1a9c8475
/// machine_identifier_fnv1a64=a01b72c4e9d35f68
/// ```
#[derive(Debug)]
pub struct MacOSBundle {
    dir: PathBuf,
    hardware_model: MacHardwareModel,
    machine_identifier: MacMachineIdentifier,
    auxiliary_storage: MacAuxiliaryStorage,
    cpu_count: usize,
    memory_size: u64,
    disk_size: u64,
}

impl MacOSBundle {
    /// The disk image's file name.
    pub const DISK_IMAGE: &'static str = "Disk.img";
    /// The auxiliary storage's file name.
    pub const AUXILIARY_STORAGE: &'static str = "AuxiliaryStorage";
    /// The hardware model's file name.
    pub const HARDWARE_MODEL: &'static str = "HardwareModel";
    /// The machine identifier's file name.
    pub const MACHINE_IDENTIFIER: &'static str = "MachineIdentifier";
    /// The manifest's file name.
    pub const MANIFEST: &'static str = "arcbox-vz-bundle.txt";
    /// The largest manifest [`open`](Self::open) reads, in bytes.
    pub const MAX_MANIFEST_SIZE: usize = 4096;
    /// The largest hardware model or machine identifier file [`open`](Self::open)
    /// reads, in bytes (their data representations are a few hundred bytes).
    pub const MAX_DATA_SIZE: usize = 64 * 1024;
    /// The disk size [`create`](Self::create) uses when none is given: 64 GiB,
    /// created sparse.
    pub const DEFAULT_DISK_SIZE: u64 = 64 * GIB;
    /// The CPU count [`create_for_model`](Self::create_for_model) uses when none is
    /// given.
    pub const DEFAULT_CPU_COUNT: usize = 4;
    /// The memory size [`create_for_model`](Self::create_for_model) uses when none
    /// is given: 8 GiB.
    pub const DEFAULT_MEMORY_SIZE: u64 = 8 * GIB;

    /// Creates a new bundle in `dir` for a restore image's `requirements`: a sparse
    /// disk image, auxiliary storage for the requirements' hardware model, a new
    /// machine identifier, and the manifest. Unset options default to the
    /// requirements' minimum CPU count and memory size and to
    /// [`DEFAULT_DISK_SIZE`](Self::DEFAULT_DISK_SIZE).
    ///
    /// `dir` may exist if it is an empty directory; otherwise it is created (its
    /// parent must exist). Nothing that exists is ever overwritten, and if creation
    /// fails half way, the files it made (and `dir`, if it made it) are removed.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (argument `"CPU count"` or `"memory size"`) when
    /// an option is below the requirements or outside what this Mac allows, or
    /// (`"hardware model"`) when this Mac does not support the model, all before
    /// anything is written; (`"macOS bundle"`) when `dir` is not an empty directory
    /// or the disk size is not a non-zero multiple of 512; [`VZError::Io`] or
    /// [`VZError::Framework`] when a file cannot be written (the message names it).
    pub fn create(
        dir: impl AsRef<Path>,
        requirements: &MacOSConfigurationRequirements,
        options: MacOSBundleOptions,
    ) -> Result<Self, VZError> {
        let cpu_count = options
            .cpu_count
            .unwrap_or_else(|| requirements.minimum_supported_cpu_count());
        let memory_size = options
            .memory_size
            .unwrap_or_else(|| requirements.minimum_supported_memory_size());
        requirements.check(cpu_count, memory_size)?;
        let model = requirements.hardware_model();
        create_bundle(dir.as_ref(), &model, cpu_count, memory_size, options)
    }

    /// [`create`](Self::create) for a hardware model you already have, without a
    /// restore image's minimums: unset options default to
    /// [`DEFAULT_CPU_COUNT`](Self::DEFAULT_CPU_COUNT),
    /// [`DEFAULT_MEMORY_SIZE`](Self::DEFAULT_MEMORY_SIZE) and
    /// [`DEFAULT_DISK_SIZE`](Self::DEFAULT_DISK_SIZE).
    ///
    /// # Errors
    ///
    /// As for [`create`](Self::create), without the requirements' minimums.
    pub fn create_for_model(
        dir: impl AsRef<Path>,
        hardware_model: &MacHardwareModel,
        options: MacOSBundleOptions,
    ) -> Result<Self, VZError> {
        let cpu_count = options.cpu_count.unwrap_or(Self::DEFAULT_CPU_COUNT);
        let memory_size = options.memory_size.unwrap_or(Self::DEFAULT_MEMORY_SIZE);
        hardware_model.require_supported()?;
        create_bundle(
            dir.as_ref(),
            hardware_model,
            cpu_count,
            memory_size,
            options,
        )
    }

    /// Opens the bundle in `dir` and checks it: every file exists and is a regular
    /// file (symbolic links to regular files are followed), the manifest parses,
    /// the hardware model and machine identifier parse and match their checksums,
    /// the auxiliary storage is not empty, and the disk image is exactly as long as
    /// the manifest says. Only the manifest, the hardware model and the machine
    /// identifier are read, each up to a fixed limit, without ever blocking.
    ///
    /// Whether this Mac supports the hardware model is checked by
    /// [`configuration`](Self::configuration), and whether it allows the CPU count
    /// and memory size by [`validate`](VirtualMachineConfiguration::validate), so a
    /// bundle can be inspected anywhere.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (argument `"macOS bundle"`) whose reason names
    /// the file that is missing, not a regular file, too large, unreadable, or does
    /// not match; [`VZError::Unsupported`] before macOS 12 or on an Intel Mac.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, VZError> {
        mac_guest_support()?;
        let dir = &absolute(dir.as_ref())?;
        match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) => {
                return Err(bundle_error(format!(
                    "{} is {}, not a bundle directory",
                    dir.display(),
                    file_type_name(meta.file_type())
                )));
            }
            Err(e) => return Err(io_error(dir, "read", &e)),
        }
        let manifest_path = dir.join(Self::MANIFEST);
        let manifest = parse_manifest(
            &manifest_path,
            &read_bounded(&manifest_path, Self::MAX_MANIFEST_SIZE)?,
        )?;

        let model_path = dir.join(Self::HARDWARE_MODEL);
        let model_data = read_bounded(&model_path, Self::MAX_DATA_SIZE)?;
        let hardware_model = MacHardwareModel::from_data_representation(&model_data)
            .map_err(|e| about_file(&model_path, e))?;
        check_sum(
            &model_path,
            &model_data,
            manifest.model_sum,
            "hardware model",
        )?;

        let id_path = dir.join(Self::MACHINE_IDENTIFIER);
        let id_data = read_bounded(&id_path, Self::MAX_DATA_SIZE)?;
        let machine_identifier = MacMachineIdentifier::from_data_representation(&id_data)
            .map_err(|e| about_file(&id_path, e))?;
        check_sum(
            &id_path,
            &id_data,
            manifest.identifier_sum,
            "machine identifier",
        )?;

        let aux_path = dir.join(Self::AUXILIARY_STORAGE);
        if regular_file_len(&aux_path)? == 0 {
            return Err(bundle_error(format!(
                "{} is empty; the framework never writes an empty auxiliary storage, so it \
                 was truncated or replaced",
                aux_path.display()
            )));
        }
        let auxiliary_storage =
            MacAuxiliaryStorage::open(&aux_path).map_err(|e| about_file(&aux_path, e))?;

        let disk_path = dir.join(Self::DISK_IMAGE);
        let disk_len = regular_file_len(&disk_path)?;
        if disk_len != manifest.disk_size {
            return Err(bundle_error(format!(
                "{} is {}, but {} records disk_size={}: the disk image was \
                 truncated, resized or replaced; restore it, or if you resized it on purpose, \
                 write its new size in the manifest",
                disk_path.display(),
                byte_count(disk_len),
                manifest_path.display(),
                manifest.disk_size
            )));
        }

        Ok(Self {
            dir: dir.to_path_buf(),
            hardware_model,
            machine_identifier,
            auxiliary_storage,
            cpu_count: manifest.cpu_count,
            memory_size: manifest.memory_size,
            disk_size: manifest.disk_size,
        })
    }

    /// A configuration to boot (or install) the guest: the Mac platform with the
    /// bundle's hardware model, machine identifier and auxiliary storage, the macOS
    /// boot loader, the manifest's CPU count and memory size, the disk image as the
    /// first storage device (virtio-blk, read-write), a Mac graphics device with one
    /// 1920 × 1200 display at 80 pixels per inch, a Mac keyboard (macOS 14) and a
    /// USB keyboard, a Mac trackpad (macOS 13) and a USB screen-coordinate pointing
    /// device, a NAT network device and an entropy device. Change or add devices on
    /// the result before [`validate`](VirtualMachineConfiguration::validate).
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] when this Mac does not support the hardware
    /// model (`"hardware model"`) or the disk image cannot be opened
    /// (`"disk image path"`); [`VZError::Unsupported`] before macOS 12.
    pub fn configuration(&self) -> Result<VirtualMachineConfiguration, VZError> {
        let platform = MacPlatformConfiguration::new(
            &self.hardware_model,
            &self.machine_identifier,
            &self.auxiliary_storage,
        )?;
        let disk = VirtioBlockDeviceConfiguration::new(DiskImageStorageDeviceAttachment::new(
            self.disk_image_path(),
            false,
        )?)?;
        let mut graphics = MacGraphicsDeviceConfiguration::new()?;
        graphics.set_displays(vec![MacGraphicsDisplayConfiguration::new(1920, 1200, 80)?]);

        let mut keyboards: Vec<KeyboardConfiguration> = Vec::new();
        if let Some(keyboard) = newer(MacKeyboardConfiguration::new())? {
            keyboards.push(keyboard.into());
        }
        keyboards.push(USBKeyboardConfiguration::new()?.into());
        let mut pointing: Vec<PointingDeviceConfiguration> = Vec::new();
        if let Some(trackpad) = newer(MacTrackpadConfiguration::new())? {
            pointing.push(trackpad.into());
        }
        pointing.push(USBScreenCoordinatePointingDeviceConfiguration::new()?.into());

        let mut config = VirtualMachineConfiguration::new()?;
        config
            .set_cpu_count(self.cpu_count)
            .set_memory_size(self.memory_size)
            .set_platform(platform)
            .set_boot_loader(MacOSBootLoader::new()?)
            .set_storage_devices(vec![disk.into()])
            .set_graphics_devices(vec![graphics])
            .set_keyboards(keyboards)
            .set_pointing_devices(pointing)
            .set_network_devices(vec![VirtioNetworkDeviceConfiguration::new(
                NATNetworkDeviceAttachment::new(),
            )])
            .set_entropy_devices(vec![VirtioEntropyDeviceConfiguration::new()]);
        Ok(config)
    }

    /// The bundle directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The disk image, `Disk.img`.
    pub fn disk_image_path(&self) -> PathBuf {
        self.dir.join(Self::DISK_IMAGE)
    }

    /// The auxiliary storage, `AuxiliaryStorage`.
    pub fn auxiliary_storage_path(&self) -> PathBuf {
        self.dir.join(Self::AUXILIARY_STORAGE)
    }

    /// The hardware model, `HardwareModel`.
    pub fn hardware_model_path(&self) -> PathBuf {
        self.dir.join(Self::HARDWARE_MODEL)
    }

    /// The machine identifier, `MachineIdentifier`.
    pub fn machine_identifier_path(&self) -> PathBuf {
        self.dir.join(Self::MACHINE_IDENTIFIER)
    }

    /// The manifest, `arcbox-vz-bundle.txt`.
    pub fn manifest_path(&self) -> PathBuf {
        self.dir.join(Self::MANIFEST)
    }

    /// The hardware model the guest was installed for.
    pub fn hardware_model(&self) -> &MacHardwareModel {
        &self.hardware_model
    }

    /// The guest's machine identifier.
    pub fn machine_identifier(&self) -> &MacMachineIdentifier {
        &self.machine_identifier
    }

    /// The guest's auxiliary storage.
    pub fn auxiliary_storage(&self) -> &MacAuxiliaryStorage {
        &self.auxiliary_storage
    }

    /// The number of virtual CPUs, from the manifest.
    pub fn cpu_count(&self) -> usize {
        self.cpu_count
    }

    /// The memory size in bytes, from the manifest.
    pub fn memory_size(&self) -> u64 {
        self.memory_size
    }

    /// The length of the disk image in bytes, from the manifest.
    pub fn disk_size(&self) -> u64 {
        self.disk_size
    }
}

/// `Ok(None)` for a device this macOS does not have yet.
fn newer<T>(result: Result<T, VZError>) -> Result<Option<T>, VZError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(VZError::Unsupported { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// [`VZError::Unsupported`] where there are no macOS guests (before macOS 12).
fn mac_guest_support() -> Result<(), VZError> {
    class_since(class!("VZMacPlatformConfiguration"), "macOS bundle", "12.0").map(drop)
}

/// `path` made absolute (without resolving links), so the bundle's paths stay
/// right if the working directory changes.
fn absolute(path: &Path) -> Result<PathBuf, VZError> {
    crate::ffi::foundation::path_str(path, ARGUMENT)?;
    std::path::absolute(path).map_err(|e| io_error(path, "resolve", &e))
}

fn io_error(path: &Path, doing: &str, e: &std::io::Error) -> VZError {
    if e.kind() == std::io::ErrorKind::NotFound {
        return bundle_error(format!("{} is missing", path.display()));
    }
    bundle_error(format!("cannot {doing} {}: {e}", path.display()))
}

/// The length of the regular file at `path` (following symbolic links).
fn regular_file_len(path: &Path) -> Result<u64, VZError> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, "read", &e))?;
    if !meta.is_file() {
        return Err(bundle_error(format!(
            "{} is {}, not a regular file",
            path.display(),
            file_type_name(meta.file_type())
        )));
    }
    Ok(meta.len())
}

/// The whole regular file at `path`, which must hold 1 to `max` bytes. The read is
/// bounded and never blocks (a FIFO or a device is refused once opened).
fn read_bounded(path: &Path, max: usize) -> Result<Vec<u8>, VZError> {
    if let Err(e) = std::fs::symlink_metadata(path) {
        return Err(io_error(path, "read", &e));
    }
    let data = read_head(path, ARGUMENT, max + 1)?;
    if data.is_empty() {
        return Err(bundle_error(format!("{} is empty", path.display())));
    }
    if data.len() > max {
        return Err(bundle_error(format!(
            "{} is larger than the {max}-byte limit for this file",
            path.display()
        )));
    }
    Ok(data)
}

fn check_sum(path: &Path, data: &[u8], expected: u64, what: &str) -> Result<(), VZError> {
    let actual = fnv1a64(data);
    if actual == expected {
        return Ok(());
    }
    Err(bundle_error(format!(
        "{} is a {what}, but not this bundle's: its checksum is {actual:016x}, the manifest \
         records {expected:016x} (was it copied from another bundle?)",
        path.display()
    )))
}

/// The values of a parsed manifest.
struct Manifest {
    cpu_count: usize,
    memory_size: u64,
    disk_size: u64,
    model_sum: u64,
    identifier_sum: u64,
}

fn parse_manifest(path: &Path, data: &[u8]) -> Result<Manifest, VZError> {
    parse_manifest_text(data).map_err(|why| bundle_error(format!("{}: {why}", path.display())))
}

/// [`parse_manifest`] without the file name in its errors.
fn parse_manifest_text(data: &[u8]) -> Result<Manifest, String> {
    if data.starts_with(b"\xEF\xBB\xBF") {
        return Err("it starts with a UTF-8 byte order mark; write it without one".to_owned());
    }
    for (at, &byte) in data.iter().enumerate() {
        if byte == b'\n' || (0x20..0x7f).contains(&byte) {
            continue;
        }
        let what = match byte {
            0 => return Err(format!("it contains a NUL byte at offset {at}")),
            b'\r' => "a carriage return (lines end with \\n only)".to_owned(),
            _ => format!("the byte 0x{byte:02x}"),
        };
        return Err(format!(
            "it contains {what} at offset {at}; the manifest is printable ASCII"
        ));
    }
    // Only printable ASCII and line feeds are left.
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');

    let expected_first = format!("{FORMAT_KEY}={FORMAT_VERSION}");
    match lines.next().unwrap_or_default().split_once('=') {
        Some((FORMAT_KEY, version)) if version == FORMAT_VERSION.to_string() => {}
        Some((FORMAT_KEY, version)) => {
            return Err(format!(
                "format version {version:?} is not one this arcbox-vz reads (it reads \
                 version {FORMAT_VERSION}: {expected_first}); was it written by a newer \
                 arcbox-vz?"
            ));
        }
        _ => {
            return Err(format!(
                "it is not an arcbox-vz macOS bundle manifest: the first line must be \
                 {expected_first}"
            ));
        }
    }

    let mut values: [Option<&str>; KEYS.len()] = [None; KEYS.len()];
    for (index, line) in lines.enumerate() {
        let number = index + 2;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!(
                "line {number} is not key=value, a comment (#) or empty"
            ));
        };
        let Some(slot) = KEYS.iter().position(|k| *k == key) else {
            return Err(format!(
                "line {number}: unknown key {key:?} (version {FORMAT_VERSION} has {})",
                KEYS.join(", ")
            ));
        };
        if values[slot].is_some() {
            return Err(format!("line {number}: the key {key} appears twice"));
        }
        values[slot] = Some(value);
    }
    let mut present = [""; KEYS.len()];
    for (slot, value) in values.into_iter().enumerate() {
        present[slot] = value.ok_or_else(|| format!("the key {} is missing", KEYS[slot]))?;
    }
    let [cpu, memory, disk, model, identifier] = present;

    let cpu_count = decimal(CPU_COUNT, cpu)?;
    let cpu_count =
        usize::try_from(cpu_count).map_err(|_| format!("cpu_count={cpu} is too large"))?;
    let memory_size = decimal(MEMORY_SIZE, memory)?;
    if memory_size % MIB != 0 {
        return Err(format!(
            "memory_size={memory} is not a multiple of 1 MiB (1048576 bytes)"
        ));
    }
    let disk_size = decimal(DISK_SIZE, disk)?;
    if disk_size % SECTOR != 0 {
        return Err(format!("disk_size={disk} is not a multiple of 512 bytes"));
    }
    Ok(Manifest {
        cpu_count,
        memory_size,
        disk_size,
        model_sum: checksum(MODEL_SUM, model)?,
        identifier_sum: checksum(IDENTIFIER_SUM, identifier)?,
    })
}

/// A non-zero decimal number of ASCII digits that fits in 64 bits.
fn decimal(key: &str, value: &str) -> Result<u64, String> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{key}={value} is not a decimal number (ASCII digits only)"
        ));
    }
    match value.parse::<u64>() {
        Ok(0) => Err(format!("{key} is 0; it must be at least 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "{key}={value} is too large (the limit is {})",
            u64::MAX
        )),
    }
}

/// Exactly 16 lowercase hexadecimal digits.
fn checksum(key: &str, value: &str) -> Result<u64, String> {
    let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if value.len() != 16 || !value.bytes().all(hex) {
        return Err(format!(
            "{key}={value} is not 16 lowercase hexadecimal digits"
        ));
    }
    u64::from_str_radix(value, 16).map_err(|e| format!("{key}={value}: {e}"))
}

fn manifest_text(
    cpu_count: usize,
    memory_size: u64,
    disk_size: u64,
    model: &[u8],
    id: &[u8],
) -> String {
    format!(
        "{FORMAT_KEY}={FORMAT_VERSION}\n\
         # A macOS guest for arcbox-vz: keep these files together.\n\
         {CPU_COUNT}={cpu_count}\n\
         {MEMORY_SIZE}={memory_size}\n\
         {DISK_SIZE}={disk_size}\n\
         {MODEL_SUM}={:016x}\n\
         {IDENTIFIER_SUM}={:016x}\n",
        fnv1a64(model),
        fnv1a64(id)
    )
}

/// What a failed creation removes: the files it made, then the directory if it made
/// it. Disarmed once the bundle is complete.
struct Undo {
    files: Vec<PathBuf>,
    dir: Option<PathBuf>,
    armed: bool,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for file in self.files.iter().rev() {
            let _ = std::fs::remove_file(file);
        }
        if let Some(dir) = &self.dir {
            // Only if empty: something another process put there stays.
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Checks the sizes against this Mac's limits, before anything is written.
fn check_sizes(cpu_count: usize, memory_size: u64, disk_size: u64) -> Result<(), VZError> {
    let max_cpus = max_cpu_count();
    if cpu_count == 0 || cpu_count > max_cpus {
        return Err(VZError::invalid_argument(
            "CPU count",
            format!("{cpu_count} is outside the allowed range 1..={max_cpus} for this Mac"),
        ));
    }
    let max_memory = max_memory_size();
    if memory_size % MIB != 0 || memory_size > max_memory {
        return Err(VZError::invalid_argument(
            "memory size",
            format!(
                "{memory_size} bytes must be a multiple of 1 MiB (1048576 bytes) and at most \
                 {max_memory} bytes on this Mac"
            ),
        ));
    }
    if disk_size == 0 || disk_size % SECTOR != 0 || disk_size > i64::MAX as u64 {
        return Err(bundle_error(format!(
            "the disk size {disk_size} must be a non-zero multiple of 512 bytes, at most {}",
            i64::MAX as u64 / SECTOR * SECTOR
        )));
    }
    Ok(())
}

/// A target directory that does not exist or is empty; whether it must be created.
fn prepare_dir(dir: &Path) -> Result<bool, VZError> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            let mut entries = std::fs::read_dir(dir).map_err(|e| io_error(dir, "list", &e))?;
            if entries.next().is_some() {
                return Err(bundle_error(format!(
                    "{} is not empty; a bundle is created in a new or empty directory, so \
                     nothing is overwritten",
                    dir.display()
                )));
            }
            Ok(false)
        }
        Ok(meta) => Err(bundle_error(format!(
            "{} is {}, not a directory",
            dir.display(),
            file_type_name(meta.file_type())
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::fs::symlink_metadata(dir).is_ok() {
                return Err(bundle_error(format!(
                    "{} is a symbolic link to nothing",
                    dir.display()
                )));
            }
            Ok(true)
        }
        Err(e) => Err(io_error(dir, "read", &e)),
    }
}

/// Creates a new file (never replacing one) and records it for `undo`.
fn new_file(undo: &mut Undo, path: PathBuf) -> Result<File, VZError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| write_error(&path, &e))?;
    undo.files.push(path);
    Ok(file)
}

fn write_error(path: &Path, e: &std::io::Error) -> VZError {
    VZError::Io(std::io::Error::new(
        e.kind(),
        format!("cannot write {}: {e}", path.display()),
    ))
}

fn write_new(undo: &mut Undo, path: PathBuf, data: &[u8]) -> Result<(), VZError> {
    let mut file = new_file(undo, path.clone())?;
    file.write_all(data)
        .and_then(|()| file.sync_all())
        .map_err(|e| write_error(&path, &e))
}

fn create_bundle(
    dir: &Path,
    model: &MacHardwareModel,
    cpu_count: usize,
    memory_size: u64,
    options: MacOSBundleOptions,
) -> Result<MacOSBundle, VZError> {
    mac_guest_support()?;
    let disk_size = options.disk_size.unwrap_or(MacOSBundle::DEFAULT_DISK_SIZE);
    check_sizes(cpu_count, memory_size, disk_size)?;
    model.require_supported()?;
    let dir = &absolute(dir)?;
    let machine_identifier = MacMachineIdentifier::new()?;
    let create_dir = prepare_dir(dir)?;

    let mut undo = Undo {
        files: Vec::new(),
        dir: None,
        armed: true,
    };
    if create_dir {
        std::fs::create_dir(dir).map_err(|e| write_error(dir, &e))?;
        undo.dir = Some(dir.to_path_buf());
    }
    let model_data = model.data_representation();
    let id_data = machine_identifier.data_representation();
    write_new(
        &mut undo,
        dir.join(MacOSBundle::HARDWARE_MODEL),
        &model_data,
    )?;
    write_new(
        &mut undo,
        dir.join(MacOSBundle::MACHINE_IDENTIFIER),
        &id_data,
    )?;

    let disk_path = dir.join(MacOSBundle::DISK_IMAGE);
    new_file(&mut undo, disk_path.clone())?
        .set_len(disk_size)
        .map_err(|e| write_error(&disk_path, &e))?;

    let aux_path = dir.join(MacOSBundle::AUXILIARY_STORAGE);
    // Reserved with an empty file of our own, which the framework then replaces: a
    // file someone else puts there is never touched, and one the framework leaves
    // half written is removed with the rest.
    new_file(&mut undo, aux_path.clone())?;
    let auxiliary_storage = MacAuxiliaryStorage::create(&aux_path, model, true)
        .map_err(|e| about_file(&aux_path, e))?;

    let text = manifest_text(cpu_count, memory_size, disk_size, &model_data, &id_data);
    write_new(&mut undo, dir.join(MacOSBundle::MANIFEST), text.as_bytes())?;
    undo.armed = false;
    Ok(MacOSBundle {
        dir: dir.to_path_buf(),
        hardware_model: model.clone(),
        machine_identifier,
        auxiliary_storage,
        cpu_count,
        memory_size,
        disk_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_published_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn the_written_manifest_parses_back() {
        let text = manifest_text(4, 8 * GIB, 64 * GIB, b"model", b"id");
        let m = parse_manifest(Path::new("m"), text.as_bytes()).unwrap();
        assert_eq!(
            (m.cpu_count, m.memory_size, m.disk_size),
            (4, 8 * GIB, 64 * GIB)
        );
        assert_eq!(m.model_sum, fnv1a64(b"model"));
        assert_eq!(m.identifier_sum, fnv1a64(b"id"));
    }
}
