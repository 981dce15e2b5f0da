//! Clipboard sharing (macOS 13): `VZSpiceAgentPortAttachment`, the host side of the
//! SPICE agent protocol on a virtio console port.
//!
//! Apple's documentation:
//! <https://developer.apple.com/documentation/virtualization/vzspiceagentportattachment>

use crate::configuration::class_since;
use crate::error::VZError;
use crate::ffi::foundation;
use crate::ffi::runtime::{Allocated, ClassRef, Id, class, in_pool, objc_methods};

objc_methods! {
    fn spice_init(attachment: Allocated) -> Option<Id> = "init";
    fn set_shares_clipboard_raw(attachment: &Id, shares: bool) = "setSharesClipboard:";
    fn shares_clipboard_raw(attachment: &Id) -> bool = "sharesClipboard";
    fn port_name_raw(class: ClassRef) -> Option<Id> = "spiceAgentPortName";
}

const FEATURE: &str = "SPICE agent (clipboard sharing)";
const SINCE: &str = "13.0";

fn spice_class() -> Result<ClassRef, VZError> {
    class_since(class!("VZSpiceAgentPortAttachment"), FEATURE, SINCE)
}

/// `VZSpiceAgentPortAttachment` (macOS 13): shares the host's clipboard with a guest
/// that runs a SPICE agent (`spice-vdagent` in Linux).
///
/// It works only on a port of a virtio console device
/// ([`VirtioConsoleDeviceConfiguration`](crate::VirtioConsoleDeviceConfiguration)),
/// named [`port_name`](Self::port_name), which is what
/// [`VirtioConsolePortConfiguration::set_spice_agent_attachment`](crate::VirtioConsolePortConfiguration::set_spice_agent_attachment)
/// sets up. It is not a [`SerialPortAttachment`](crate::SerialPortAttachment), so it
/// cannot be put on a serial port.
///
/// On a Mac without a logged-in graphical session (such as a headless cloud Mac), the
/// framework has been reported to raise an Objective-C exception while creating it
/// (lima-vm/lima#1260), which aborts the process.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use arcbox_vz::{
///     FileHandleSerialPortAttachment, SpiceAgentPortAttachment,
///     VirtioConsoleDeviceConfiguration, VirtioConsoleDeviceSerialPortConfiguration,
///     VirtioConsolePortConfiguration, VirtualMachineConfiguration,
/// };
///
/// // The serial console on this terminal (the guest's hvc0)...
/// let terminal = FileHandleSerialPortAttachment::new(Some(std::io::stdin()), Some(std::io::stdout()))?;
/// let serial = VirtioConsoleDeviceSerialPortConfiguration::new(terminal);
/// // ...and the clipboard on a port of a virtio console device.
/// let mut clipboard = VirtioConsolePortConfiguration::new()?;
/// clipboard.set_spice_agent_attachment(SpiceAgentPortAttachment::new()?)?;
/// let mut console = VirtioConsoleDeviceConfiguration::new()?;
/// console.set_port(0, clipboard)?;
///
/// let mut config = VirtualMachineConfiguration::new()?;
/// config.set_serial_ports(vec![serial]).set_console_devices(vec![console]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SpiceAgentPortAttachment {
    pub(crate) obj: Id,
}

impl SpiceAgentPortAttachment {
    /// A SPICE agent attachment that shares the clipboard (`init`; `sharesClipboard`
    /// is on by default).
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 13.
    pub fn new() -> Result<Self, VZError> {
        let class = spice_class()?;
        let obj = in_pool!(spice_init(class.alloc())).ok_or(VZError::ClassNotFound {
            class: "VZSpiceAgentPortAttachment",
        })?;
        Ok(Self { obj })
    }

    /// The name of the console port the guest's agent looks for
    /// (`+[VZSpiceAgentPortAttachment spiceAgentPortName]`), as the framework reports
    /// it.
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 13.
    pub fn port_name() -> Result<String, VZError> {
        let class = spice_class()?;
        in_pool!(port_name_raw(class).as_ref().map(foundation::string_from)).ok_or(
            VZError::ClassNotFound {
                class: "VZSpiceAgentPortAttachment",
            },
        )
    }

    /// Turns clipboard sharing on or off (`setSharesClipboard:`).
    pub fn set_shares_clipboard(&mut self, shares: bool) -> &mut Self {
        in_pool!(set_shares_clipboard_raw(&self.obj, shares));
        self
    }

    /// Whether the clipboard is shared (`sharesClipboard`); `true` by default.
    pub fn shares_clipboard(&self) -> bool {
        in_pool!(shares_clipboard_raw(&self.obj))
    }
}
