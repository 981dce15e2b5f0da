//! Boot loaders: `VZLinuxBootLoader`, and `VZEFIBootLoader` with its
//! `VZEFIVariableStore` (macOS 13).

use std::path::{Path, PathBuf};

use crate::configuration::{
    AsObject, base_class, byte_count, class_since, existing_file, file_to_create, read_head,
};
use crate::error::VZError;
use crate::ffi::foundation::{self, check_string, with_error};
use crate::ffi::runtime::{Allocated, Id, class, in_pool, objc_methods};

objc_methods! {
    fn linux_init(loader: Allocated, kernel: &Id) -> Option<Id> = "initWithKernelURL:";
    fn kernel_url(loader: &Id) -> Option<Id> = "kernelURL";
    fn set_command_line_raw(loader: &Id, command_line: &Id) = "setCommandLine:";
    fn command_line_raw(loader: &Id) -> Option<Id> = "commandLine";
    fn set_initial_ramdisk_raw(loader: &Id, url: Option<&Id>) = "setInitialRamdiskURL:";
    fn initial_ramdisk_raw(loader: &Id) -> Option<Id> = "initialRamdiskURL";
    fn efi_init(loader: Allocated) -> Option<Id> = "init";
    fn set_variable_store_raw(loader: &Id, store: Option<&Id>) = "setVariableStore:";
    fn store_open(store: Allocated, url: &Id) -> Option<Id> = "initWithURL:";
    fn store_create(
        store: Allocated,
        url: &Id,
        options: usize,
        error: &mut foundation::ErrorSlot,
    ) -> Option<Id> = "initCreatingVariableStoreAtURL:options:error:";
    fn store_url(store: &Id) -> Option<Id> = "URL";
}

/// A boot loader for [`VirtualMachineConfiguration::set_boot_loader`](crate::VirtualMachineConfiguration::set_boot_loader).
#[derive(Debug)]
#[non_exhaustive]
pub enum BootLoader {
    /// Boots a Linux kernel directly.
    Linux(LinuxBootLoader),
    /// Boots through UEFI firmware (macOS 13).
    EFI(EFIBootLoader),
    /// Boots a macOS guest (macOS 12, Apple silicon).
    #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
    MacOS(crate::configuration::MacOSBootLoader),
}

impl AsObject for BootLoader {
    fn as_object(&self) -> &Id {
        match self {
            Self::Linux(b) => &b.obj,
            Self::EFI(b) => &b.obj,
            #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
            Self::MacOS(b) => &b.obj,
        }
    }
}

impl From<LinuxBootLoader> for BootLoader {
    fn from(b: LinuxBootLoader) -> Self {
        Self::Linux(b)
    }
}

impl From<EFIBootLoader> for BootLoader {
    fn from(b: EFIBootLoader) -> Self {
        Self::EFI(b)
    }
}

#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
impl From<crate::configuration::MacOSBootLoader> for BootLoader {
    fn from(b: crate::configuration::MacOSBootLoader) -> Self {
        Self::MacOS(b)
    }
}

/// What a kernel image looks like from its first bytes.
#[derive(Debug, PartialEq, Eq)]
enum KernelFormat {
    /// gzip (`1f 8b`), as in `Image.gz` or a plain `vmlinuz.gz`.
    Gzip,
    /// zstd (`28 b5 2f fd`).
    Zstd,
    /// xz (`fd 37 7a 58 5a 00`).
    Xz,
    /// An EFI zboot image (`MZ` then `zimg`): a compressed arm64 kernel wrapped as
    /// a PE file, shipped as `vmlinuz` by recent distributions.
    EfiZboot,
    /// An ELF `vmlinux` (`7f 45 4c 46`).
    Elf,
    /// An uncompressed arm64 `Image`: the magic `ARM\x64` at offset 56 of its header
    /// (Linux Documentation/arch/arm64/booting.rst).
    Arm64Image,
    /// An x86 `bzImage`: the magic `HdrS` at offset 0x202 of its setup header
    /// (Linux Documentation/arch/x86/boot.rst).
    BzImage,
    /// None of the above: not a kernel the framework can boot.
    Unknown,
}

/// How many bytes of a kernel [`kernel_format`] looks at: up to the end of the x86
/// `HdrS` magic (0x202 + 4).
const KERNEL_HEAD: usize = 0x206;

fn kernel_format(head: &[u8]) -> KernelFormat {
    if head.starts_with(&[0x1f, 0x8b]) {
        KernelFormat::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        KernelFormat::Zstd
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        KernelFormat::Xz
    } else if head.starts_with(b"MZ") && head.get(4..8) == Some(b"zimg") {
        KernelFormat::EfiZboot
    } else if head.starts_with(b"\x7fELF") {
        KernelFormat::Elf
    } else if head.get(56..60) == Some(b"ARM\x64") {
        KernelFormat::Arm64Image
    } else if head.get(0x202..0x206) == Some(b"HdrS") {
        KernelFormat::BzImage
    } else {
        KernelFormat::Unknown
    }
}

/// Refuses what the framework cannot boot: a non-regular file, an empty or tiny
/// file, a compressed kernel (Virtualization.framework does not decompress it, and on
/// Apple silicon it then hangs silently at start instead of failing), or a file
/// without the header of an arm64 `Image`, an x86 `bzImage` or an ELF `vmlinux`.
fn check_kernel(path: &Path) -> Result<(), VZError> {
    const ARGUMENT: &str = "kernel path";
    let head = read_head(path, ARGUMENT, KERNEL_HEAD)?;
    if head.is_empty() {
        return Err(VZError::invalid_argument(
            ARGUMENT,
            format!("{} is empty", path.display()),
        ));
    }
    let how = match kernel_format(&head) {
        KernelFormat::Elf | KernelFormat::Arm64Image | KernelFormat::BzImage => return Ok(()),
        KernelFormat::Unknown if head.len() < 64 => {
            return Err(VZError::invalid_argument(
                ARGUMENT,
                format!(
                    "{} is only {}: too small to be a Linux kernel (an arm64 Image header \
                     alone is 64 bytes)",
                    path.display(),
                    byte_count(head.len() as u64)
                ),
            ));
        }
        KernelFormat::Unknown => {
            return Err(VZError::invalid_argument(
                ARGUMENT,
                format!(
                    "{} is not a Linux kernel: it has neither the header of an arm64 Image \
                     (\"ARM\\x64\" at offset 56) nor that of an x86 bzImage (\"HdrS\" at \
                     offset 0x202) nor the ELF magic of a vmlinux",
                    path.display()
                ),
            ));
        }
        KernelFormat::Gzip => "gzip-compressed (decompress it: gunzip -c Image.gz > Image)",
        KernelFormat::Zstd => "zstd-compressed (decompress it: zstd -d)",
        KernelFormat::Xz => "xz-compressed (decompress it: xz -d)",
        KernelFormat::EfiZboot => {
            "an EFI zboot image (a compressed kernel in a PE wrapper); boot it with \
             EFIBootLoader, or use the distribution's uncompressed Image"
        }
    };
    Err(VZError::invalid_argument(
        ARGUMENT,
        format!(
            "{} is {how}. Virtualization.framework needs an uncompressed kernel \
             (an arm64 `Image` on Apple silicon), and on Apple silicon it hangs \
             silently on a compressed one",
            path.display()
        ),
    ))
}

/// `VZLinuxBootLoader`: boots a Linux kernel directly, with an optional initial
/// ramdisk and command line.
///
/// ```no_run
/// # fn main() -> Result<(), arcbox_vz::VZError> {
/// let mut boot = arcbox_vz::LinuxBootLoader::new("/path/to/Image")?;
/// boot.set_initial_ramdisk("/path/to/initramfs.cpio.gz")?
///     .set_command_line("console=hvc0")?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct LinuxBootLoader {
    obj: Id,
}

impl LinuxBootLoader {
    /// A boot loader for the kernel at `kernel` (`initWithKernelURL:`).
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] when the path is not an existing regular file, is
    /// not UTF-8, contains a NUL byte or starts with U+FEFF, is empty, or is a compressed kernel (gzip,
    /// zstd, xz or EFI zboot), which the framework cannot boot.
    pub fn new(kernel: impl AsRef<Path>) -> Result<Self, VZError> {
        let kernel = kernel.as_ref();
        let url = existing_file(kernel, "kernel path")?;
        check_kernel(kernel)?;
        let class = base_class(class!("VZLinuxBootLoader"));
        let obj = in_pool!(linux_init(class.alloc(), &url)).ok_or_else(|| {
            VZError::invalid_argument("kernel path", "VZLinuxBootLoader refused it")
        })?;
        Ok(Self { obj })
    }

    /// Sets the initial ramdisk (`setInitialRamdiskURL:`). Compressed initramfs
    /// archives are fine; only the kernel must be uncompressed.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] when the path is not an existing regular file.
    pub fn set_initial_ramdisk(&mut self, initrd: impl AsRef<Path>) -> Result<&mut Self, VZError> {
        let url = existing_file(initrd.as_ref(), "initial ramdisk path")?;
        in_pool!(set_initial_ramdisk_raw(&self.obj, Some(&url)));
        Ok(self)
    }

    /// Removes the initial ramdisk.
    pub fn clear_initial_ramdisk(&mut self) -> &mut Self {
        in_pool!(set_initial_ramdisk_raw(&self.obj, None));
        self
    }

    /// Sets the kernel command line (`setCommandLine:`), for example
    /// `"console=hvc0 root=/dev/vda"`.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] when it contains a NUL byte or starts with U+FEFF.
    pub fn set_command_line(&mut self, command_line: &str) -> Result<&mut Self, VZError> {
        check_string(command_line, "kernel command line")?;
        in_pool!(set_command_line_raw(
            &self.obj,
            &foundation::ns_string(command_line)
        ));
        Ok(self)
    }

    /// The kernel path (`kernelURL`), made absolute.
    pub fn kernel_path(&self) -> PathBuf {
        in_pool!({
            kernel_url(&self.obj)
                .as_ref()
                .map(foundation::url_path)
                .unwrap_or_default()
        })
    }

    /// The initial ramdisk path (`initialRamdiskURL`), if any.
    pub fn initial_ramdisk_path(&self) -> Option<PathBuf> {
        in_pool!(
            initial_ramdisk_raw(&self.obj)
                .as_ref()
                .map(foundation::url_path)
        )
    }

    /// The kernel command line (`commandLine`); empty by default.
    pub fn command_line(&self) -> String {
        in_pool!({
            command_line_raw(&self.obj)
                .as_ref()
                .map(foundation::string_from)
                .unwrap_or_default()
        })
    }
}

/// `VZEFIVariableStore` (macOS 13): the UEFI variables (NVRAM) of a virtual machine,
/// kept in a file.
#[derive(Debug)]
pub struct EFIVariableStore {
    obj: Id,
}

/// `VZEFIVariableStoreInitializationOptionAllowOverwrite`.
const ALLOW_OVERWRITE: usize = 1;

const STORE_PATH: &str = "EFI variable store path";

impl EFIVariableStore {
    /// The smallest file [`open`](Self::open) accepts, in bytes. Apple does not
    /// document its store format; its firmware is EDK II-based, and an EDK II variable
    /// store begins with a 72-byte firmware volume header (with its one-entry block
    /// map) followed by the 28-byte `VARIABLE_STORE_HEADER` (edk2
    /// `MdeModulePkg/Include/Guid/VariableFormat.h`, PI specification volume 3). No
    /// store can be smaller than those headers; stores the framework creates are much
    /// larger.
    pub const MIN_STORE_SIZE: usize = 100;

    /// Creates a new, empty store at `path`
    /// (`initCreatingVariableStoreAtURL:options:error:`).
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (`"EFI variable store path"`) when the path is
    /// empty, not UTF-8, contains a NUL byte or starts with U+FEFF, ends with `/`, its
    /// directory does not exist, something other than a regular file is there (a
    /// directory, a FIFO, a device such as `/dev/null`), the file exists and
    /// `overwrite` is false, or the framework cannot create it (the message names the
    /// path and gives the framework's reason); [`VZError::Unsupported`] before macOS 13.
    pub fn create(path: impl AsRef<Path>, overwrite: bool) -> Result<Self, VZError> {
        let path = path.as_ref();
        let class = class_since(class!("VZEFIVariableStore"), "EFI variable store", "13.0")?;
        let url = file_to_create(path, STORE_PATH)?;
        if !overwrite && path.exists() {
            return Err(VZError::invalid_argument(
                STORE_PATH,
                format!(
                    "{} already exists; open it with EFIVariableStore::open, or pass overwrite = true",
                    path.display()
                ),
            ));
        }
        let options = if overwrite { ALLOW_OVERWRITE } else { 0 };
        let obj = with_error(
            "-[VZEFIVariableStore initCreatingVariableStoreAtURL:options:error:]",
            |error| store_create(class.alloc(), &url, options, error),
        )
        .map_err(|e| {
            VZError::invalid_argument(
                STORE_PATH,
                format!("cannot create a store at {}: {e}", path.display()),
            )
        })?;
        Ok(Self { obj })
    }

    /// Opens an existing store made by [`create`](Self::create) (`initWithURL:`).
    ///
    /// Apple does not document the file format, and the framework accepts any file
    /// here, then aborts the process at start when the store is empty or garbage
    /// (Code-Hex/vz#127). This refuses what cannot be a store: anything but a regular
    /// file, and files smaller than [`MIN_STORE_SIZE`](Self::MIN_STORE_SIZE).
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (`"EFI variable store path"`) when the path does
    /// not exist, ends with `/`, is not a regular file (a directory, a FIFO, a device
    /// such as `/dev/null`), cannot be read, or is smaller than
    /// [`MIN_STORE_SIZE`](Self::MIN_STORE_SIZE) (create stores with
    /// [`create`](Self::create)); [`VZError::Unsupported`] before macOS 13.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, VZError> {
        let path = path.as_ref();
        let class = class_since(class!("VZEFIVariableStore"), "EFI variable store", "13.0")?;
        let url = existing_file(path, STORE_PATH)?;
        let head = read_head(path, STORE_PATH, Self::MIN_STORE_SIZE)?;
        if head.len() < Self::MIN_STORE_SIZE {
            let what = if head.is_empty() {
                "is empty".to_owned()
            } else {
                format!(
                    "is only {}, smaller than any EFI variable store ({} at least)",
                    byte_count(head.len() as u64),
                    byte_count(Self::MIN_STORE_SIZE as u64)
                )
            };
            return Err(VZError::invalid_argument(
                STORE_PATH,
                format!(
                    "{} {what}, which would crash the virtual machine at start; create a \
                     store with EFIVariableStore::create",
                    path.display()
                ),
            ));
        }
        let obj = in_pool!(store_open(class.alloc(), &url)).ok_or_else(|| {
            VZError::invalid_argument(STORE_PATH, "VZEFIVariableStore refused it")
        })?;
        Ok(Self { obj })
    }

    /// The store's file (`URL`).
    pub fn path(&self) -> PathBuf {
        in_pool!({
            store_url(&self.obj)
                .as_ref()
                .map(foundation::url_path)
                .unwrap_or_default()
        })
    }
}

/// `VZEFIBootLoader` (macOS 13): boots through UEFI firmware, as a disk image with an
/// EFI system partition expects. Use it with [`GenericPlatform`](crate::GenericPlatform).
#[derive(Debug)]
pub struct EFIBootLoader {
    obj: Id,
    store: EFIVariableStore,
}

impl EFIBootLoader {
    /// An EFI boot loader that keeps its variables in `store`.
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 13.
    pub fn new(store: EFIVariableStore) -> Result<Self, VZError> {
        let class = class_since(class!("VZEFIBootLoader"), "EFI boot loader", "13.0")?;
        let obj = in_pool!(efi_init(class.alloc())).ok_or(VZError::ClassNotFound {
            class: "VZEFIBootLoader",
        })?;
        in_pool!(set_variable_store_raw(&obj, Some(&store.obj)));
        Ok(Self { obj, store })
    }

    /// The variable store.
    pub fn variable_store(&self) -> &EFIVariableStore {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::{KernelFormat, kernel_format};

    #[test]
    fn recognizes_kernels_by_their_headers() {
        assert_eq!(kernel_format(&[0x1f, 0x8b, 8, 0]), KernelFormat::Gzip);
        assert_eq!(
            kernel_format(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            KernelFormat::Zstd
        );
        assert_eq!(kernel_format(b"\xfd7zXZ\0\0\0"), KernelFormat::Xz);
        assert_eq!(kernel_format(b"MZ\0\0zimg"), KernelFormat::EfiZboot);
        assert_eq!(kernel_format(b"\x7fELF\x02\x01\x01\0"), KernelFormat::Elf);
        // An arm64 Image: a branch instruction (or "MZ" for EFI stub kernels), then
        // the magic at offset 56.
        let mut image = vec![0u8; 64];
        image[..4].copy_from_slice(b"MZ@\xfa");
        image[56..60].copy_from_slice(b"ARM\x64");
        assert_eq!(kernel_format(&image), KernelFormat::Arm64Image);
        let mut bz = vec![0u8; 0x206];
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        assert_eq!(kernel_format(&bz), KernelFormat::BzImage);
        assert_eq!(kernel_format(b"MZ@\xfa\0\0\0\0"), KernelFormat::Unknown);
        assert_eq!(kernel_format(&[0x4d]), KernelFormat::Unknown);
        assert_eq!(kernel_format(b"Name:\tcargo\n"), KernelFormat::Unknown);
    }
}
