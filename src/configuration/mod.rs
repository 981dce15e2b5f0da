//! Builders for everything a virtual machine is made of: the top-level
//! [`VirtualMachineConfiguration`], boot loaders and the platform. Devices are in
//! [`crate::device`].
//!
//! Every builder validates its input in Rust before Virtualization.framework sees
//! it, so bad input is a [`VZError`], never an Objective-C exception.

mod boot_loader;
mod files;
#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
mod macos;
#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
mod macos_bundle;
mod platform;
mod virtual_machine;

pub use boot_loader::{BootLoader, EFIBootLoader, EFIVariableStore, LinuxBootLoader};
#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
pub(crate) use macos::restore_image_url;
#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
pub use macos::{
    MacAuxiliaryStorage, MacHardwareModel, MacMachineIdentifier, MacOSBootLoader,
    MacOSConfigurationRequirements, MacOSRestoreImage, MacPlatformConfiguration,
    OperatingSystemVersion,
};
#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
pub use macos_bundle::{MacOSBundle, MacOSBundleOptions};
pub use platform::{GenericMachineIdentifier, GenericPlatform, Platform};
pub use virtual_machine::{
    VirtualMachineConfiguration, max_cpu_count, max_memory_size, min_cpu_count, min_memory_size,
};

use std::path::Path;

pub(crate) use files::{
    byte_count, existing_file, file_to_create, file_type_name, path_error, read_head,
};

use crate::error::VZError;
use crate::ffi::foundation;
use crate::ffi::runtime::{ClassRef, Id, Sel};

/// The Objective-C object behind a builder.
pub(crate) trait AsObject {
    fn as_object(&self) -> &Id;
}

/// An `NSArray` of the builders' objects.
pub(crate) fn object_array<T: AsObject>(items: &[T]) -> Id {
    // A plain loop: one copy per builder type is all this costs to compile.
    let mut objects = Vec::with_capacity(items.len());
    for item in items {
        objects.push(item.as_object().clone());
    }
    foundation::ns_array(&objects)
}

/// A class that every supported macOS (11 or later) has.
pub(crate) fn base_class(class: Result<ClassRef, VZError>) -> ClassRef {
    class.unwrap_or_else(|e| panic!("Virtualization.framework is not loaded: {e}"))
}

/// A class newer than macOS 11: a missing class becomes [`VZError::Unsupported`].
pub(crate) fn class_since(
    class: Result<ClassRef, VZError>,
    feature: &'static str,
    min_macos: &'static str,
) -> Result<ClassRef, VZError> {
    class.map_err(|_| VZError::Unsupported { feature, min_macos })
}

/// A member newer than its class: checks `respondsToSelector:` on an instance.
pub(crate) fn method_since(
    object: &Id,
    sel: Sel,
    feature: &'static str,
    min_macos: &'static str,
) -> Result<(), VZError> {
    if object.responds_to(sel) {
        Ok(())
    } else {
        Err(VZError::Unsupported { feature, min_macos })
    }
}

/// A file URL for `path`, which must be an existing directory.
pub(crate) fn existing_directory(path: &Path, argument: &'static str) -> Result<Id, VZError> {
    foundation::path_str(path, argument)?;
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => foundation::file_url(path, argument),
        Ok(_) => Err(VZError::invalid_argument(
            argument,
            format!("{} is not a directory", path.display()),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(VZError::invalid_argument(
            argument,
            format!("{} does not exist", path.display()),
        )),
        Err(e) => Err(VZError::invalid_argument(
            argument,
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}
