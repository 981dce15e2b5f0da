//! PLACEHOLDER: replaced by the family's implementation.
use crate::configuration::AsObject;
use crate::ffi::runtime::Id;
/// Placeholder.
#[derive(Debug)] pub struct NVMExpressControllerDeviceConfiguration { obj: Id }
/// Placeholder.
#[derive(Debug)] pub enum StorageDeviceConfiguration { NVMExpress(NVMExpressControllerDeviceConfiguration) }
impl AsObject for StorageDeviceConfiguration { fn as_object(&self) -> &Id { match self { Self::NVMExpress(d) => &d.obj } } }
