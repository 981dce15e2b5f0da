//! PLACEHOLDER: replaced by the family's implementation.
use crate::configuration::AsObject;
use crate::ffi::runtime::Id;
/// Placeholder.
#[derive(Debug)] pub struct VirtioNetworkDeviceConfiguration { obj: Id }
impl AsObject for VirtioNetworkDeviceConfiguration { fn as_object(&self) -> &Id { &self.obj } }
