//! Boot loaders: `VZLinuxBootLoader`, and `VZEFIBootLoader` with its
//! `VZEFIVariableStore` (macOS 13).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::configuration::{AsObject, base_class, class_since, existing_file};
use crate::error::VZError;
use crate::ffi::foundation::{self, check_string, with_error};
use crate::ffi::runtime::{Allocated, Id, autoreleasepool, class, objc_methods};

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
}

impl AsObject for BootLoader {
    fn as_object(&self) -> &Id {
        match self {
            Self::Linux(b) => &b.obj,
            Self::EFI(b) => &b.obj,
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
    /// Anything else: an uncompressed `Image`, an x86 `bzImage`, an ELF `vmlinux`.
    Other,
}

fn kernel_format(head: &[u8]) -> KernelFormat {
    if head.starts_with(&[0x1f, 0x8b]) {
        KernelFormat::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        KernelFormat::Zstd
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        KernelFormat::Xz
    } else if head.starts_with(b"MZ") && head.get(4..8) == Some(b"zimg") {
        KernelFormat::EfiZboot
    } else {
        KernelFormat::Other
    }
}

/// Refuses a compressed kernel: Virtualization.framework does not decompress it,
/// and on Apple silicon it then hangs silently at start instead of failing.
fn check_kernel(path: &Path) -> Result<(), VZError> {
    let mut head = [0u8; 8];
    let mut file = File::open(path).map_err(|e| {
        VZError::invalid_argument(
            "kernel path",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let n = file.read(&mut head).map_err(VZError::Io)?;
    if n == 0 {
        return Err(VZError::invalid_argument(
            "kernel path",
            format!("{} is empty", path.display()),
        ));
    }
    let how = match kernel_format(&head[..n]) {
        KernelFormat::Other => return Ok(()),
        KernelFormat::Gzip => "gzip-compressed (decompress it: gunzip -c Image.gz > Image)",
        KernelFormat::Zstd => "zstd-compressed (decompress it: zstd -d)",
        KernelFormat::Xz => "xz-compressed (decompress it: xz -d)",
        KernelFormat::EfiZboot => {
            "an EFI zboot image (a compressed kernel in a PE wrapper); boot it with \
             EFIBootLoader, or use the distribution's uncompressed Image"
        }
    };
    Err(VZError::invalid_argument(
        "kernel path",
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
        let obj = autoreleasepool(|| linux_init(class.alloc(), &url)).ok_or_else(|| {
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
        autoreleasepool(|| set_initial_ramdisk_raw(&self.obj, Some(&url)));
        Ok(self)
    }

    /// Removes the initial ramdisk.
    pub fn clear_initial_ramdisk(&mut self) -> &mut Self {
        autoreleasepool(|| set_initial_ramdisk_raw(&self.obj, None));
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
        autoreleasepool(|| set_command_line_raw(&self.obj, &foundation::ns_string(command_line)));
        Ok(self)
    }

    /// The kernel path (`kernelURL`), made absolute.
    pub fn kernel_path(&self) -> PathBuf {
        autoreleasepool(|| {
            kernel_url(&self.obj)
                .map(|u| foundation::url_path(&u))
                .unwrap_or_default()
        })
    }

    /// The initial ramdisk path (`initialRamdiskURL`), if any.
    pub fn initial_ramdisk_path(&self) -> Option<PathBuf> {
        autoreleasepool(|| initial_ramdisk_raw(&self.obj).map(|u| foundation::url_path(&u)))
    }

    /// The kernel command line (`commandLine`); empty by default.
    pub fn command_line(&self) -> String {
        autoreleasepool(|| {
            command_line_raw(&self.obj)
                .map(|s| foundation::string_from(&s))
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

impl EFIVariableStore {
    /// Creates a new, empty store at `path`
    /// (`initCreatingVariableStoreAtURL:options:error:`).
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] for a bad path, or when the file exists and
    /// `overwrite` is false; [`VZError::Unsupported`] before macOS 13;
    /// [`VZError::Framework`] when the framework cannot create it.
    pub fn create(path: impl AsRef<Path>, overwrite: bool) -> Result<Self, VZError> {
        let path = path.as_ref();
        let class = class_since(class!("VZEFIVariableStore"), "EFI variable store", "13.0")?;
        foundation::path_str(path, "EFI variable store path")?;
        if !overwrite && path.exists() {
            return Err(VZError::invalid_argument(
                "EFI variable store path",
                format!(
                    "{} already exists; open it with EFIVariableStore::open, or pass overwrite = true",
                    path.display()
                ),
            ));
        }
        let url = foundation::file_url(path, "EFI variable store path")?;
        let options = if overwrite { ALLOW_OVERWRITE } else { 0 };
        let obj = with_error(
            "-[VZEFIVariableStore initCreatingVariableStoreAtURL:options:error:]",
            |error| store_create(class.alloc(), &url, options, error),
        )
        .map_err(VZError::Framework)?;
        Ok(Self { obj })
    }

    /// Opens an existing store made by [`create`](Self::create) (`initWithURL:`).
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] when the file does not exist or is empty (an
    /// empty or garbage store makes the virtual machine abort at start, so create
    /// stores with [`create`](Self::create)); [`VZError::Unsupported`] before
    /// macOS 13.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, VZError> {
        let path = path.as_ref();
        let class = class_since(class!("VZEFIVariableStore"), "EFI variable store", "13.0")?;
        let url = existing_file(path, "EFI variable store path")?;
        let len = std::fs::metadata(path)?.len();
        if len == 0 {
            return Err(VZError::invalid_argument(
                "EFI variable store path",
                format!(
                    "{} is empty, which would crash the virtual machine at start; create a \
                     store with EFIVariableStore::create",
                    path.display()
                ),
            ));
        }
        let obj = autoreleasepool(|| store_open(class.alloc(), &url)).ok_or_else(|| {
            VZError::invalid_argument("EFI variable store path", "VZEFIVariableStore refused it")
        })?;
        Ok(Self { obj })
    }

    /// The store's file (`URL`).
    pub fn path(&self) -> PathBuf {
        autoreleasepool(|| {
            store_url(&self.obj)
                .map(|u| foundation::url_path(&u))
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
        let obj = autoreleasepool(|| efi_init(class.alloc())).ok_or(VZError::ClassNotFound {
            class: "VZEFIBootLoader",
        })?;
        autoreleasepool(|| set_variable_store_raw(&obj, Some(&store.obj)));
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
    fn recognizes_compressed_kernels() {
        assert_eq!(kernel_format(&[0x1f, 0x8b, 8, 0]), KernelFormat::Gzip);
        assert_eq!(
            kernel_format(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            KernelFormat::Zstd
        );
        assert_eq!(kernel_format(b"\xfd7zXZ\0\0\0"), KernelFormat::Xz);
        assert_eq!(kernel_format(b"MZ\0\0zimg"), KernelFormat::EfiZboot);
        // An uncompressed arm64 Image starts with a branch instruction, a bzImage with
        // a boot sector, a vmlinux with the ELF magic.
        assert_eq!(kernel_format(b"MZ@\xfa\0\0\0\0"), KernelFormat::Other);
        assert_eq!(kernel_format(b"\x7fELF\x02\x01\x01\0"), KernelFormat::Other);
        assert_eq!(kernel_format(&[0x4d]), KernelFormat::Other);
    }
}
