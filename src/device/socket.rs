//! PLACEHOLDER: replaced by the family's implementation.
use crate::configuration::AsObject;
use crate::ffi::runtime::Id;
/// Placeholder.
#[derive(Debug)] pub struct VirtioSocketDeviceConfiguration { obj: Id }
impl AsObject for VirtioSocketDeviceConfiguration { fn as_object(&self) -> &Id { &self.obj } }
