//! Multiport virtio consoles (macOS 13): `VZVirtioConsoleDeviceConfiguration`, its
//! `VZVirtioConsolePortConfigurationArray` and `VZVirtioConsolePortConfiguration`.
//!
//! A Linux guest sees each named port as `/dev/vport*` (and
//! `/sys/class/virtio-ports/*/name`); a port marked as a console is an `hvc` console.
//!
//! Apple's documentation: <https://developer.apple.com/documentation/virtualization/consoles>

use crate::configuration::{AsObject, class_since};
use crate::device::{SerialPortAttachment, SpiceAgentPortAttachment};
use crate::error::VZError;
use crate::ffi::foundation::{self, check_string};
use crate::ffi::runtime::{Allocated, Id, class, in_pool, objc_methods};

objc_methods! {
    fn port_init(port: Allocated) -> Option<Id> = "init";
    fn set_name_raw(port: &Id, name: Option<&Id>) = "setName:";
    fn name_raw(port: &Id) -> Option<Id> = "name";
    fn set_is_console_raw(port: &Id, is_console: bool) = "setIsConsole:";
    fn is_console_raw(port: &Id) -> bool = "isConsole";
    fn set_attachment_raw(port: &Id, attachment: Option<&Id>) = "setAttachment:";
    fn device_init(device: Allocated) -> Option<Id> = "init";
    fn ports_raw(device: &Id) -> Option<Id> = "ports";
    fn maximum_port_count_raw(ports: &Id) -> u32 = "maximumPortCount";
    fn set_maximum_port_count_raw(ports: &Id, count: u32) = "setMaximumPortCount:";
    fn port_at_raw(ports: &Id, index: usize) -> Option<Id> = "objectAtIndexedSubscript:";
    fn set_port_at_raw(ports: &Id, port: Option<&Id>, index: usize) =
        "setObject:atIndexedSubscript:";
}

const FEATURE: &str = "virtio console device";
const SINCE: &str = "13.0";

/// `VZVirtioConsolePortConfiguration` (macOS 13): one port of a
/// [`VirtioConsoleDeviceConfiguration`]: an optional name, whether the guest may use
/// it as its system console, and a [`SerialPortAttachment`] for its data, or a
/// [`SpiceAgentPortAttachment`] for clipboard sharing.
#[derive(Debug)]
pub struct VirtioConsolePortConfiguration {
    obj: Id,
    attachment: Option<SerialPortAttachment>,
    spice_agent: Option<SpiceAgentPortAttachment>,
}

impl VirtioConsolePortConfiguration {
    /// A port with no name, not a console, and no attachment (`init`).
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 13.
    pub fn new() -> Result<Self, VZError> {
        let class = class_since(class!("VZVirtioConsolePortConfiguration"), FEATURE, SINCE)?;
        let obj = in_pool!(port_init(class.alloc())).ok_or(VZError::ClassNotFound {
            class: "VZVirtioConsolePortConfiguration",
        })?;
        Ok(Self {
            obj,
            attachment: None,
            spice_agent: None,
        })
    }

    /// Sets the port's name (`setName:`), which the guest sees (for example in
    /// `/sys/class/virtio-ports/vport0p1/name`).
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (`"console port name"`) when it contains a NUL
    /// byte or starts with U+FEFF, or the port has a [`SpiceAgentPortAttachment`] and
    /// `name` is not [`SpiceAgentPortAttachment::port_name`].
    pub fn set_name(&mut self, name: &str) -> Result<&mut Self, VZError> {
        check_string(name, "console port name")?;
        if self.spice_agent.is_some() {
            let spice_name = SpiceAgentPortAttachment::port_name()?;
            if name != spice_name {
                return Err(VZError::invalid_argument(
                    "console port name",
                    format!(
                        "{name:?}: the port has a SpiceAgentPortAttachment, so its name must be \
                         {spice_name:?}, the one the guest's agent looks for"
                    ),
                ));
            }
        }
        in_pool!(set_name_raw(&self.obj, Some(&foundation::ns_string(name))));
        Ok(self)
    }

    /// Removes the port's name (`setName:` with nil).
    pub fn clear_name(&mut self) -> &mut Self {
        in_pool!(set_name_raw(&self.obj, None));
        self
    }

    /// The port's name (`name`); `None` by default.
    pub fn name(&self) -> Option<String> {
        in_pool!(name_raw(&self.obj).as_ref().map(foundation::string_from))
    }

    /// Marks the port for use as the guest's system console (`setIsConsole:`).
    pub fn set_is_console(&mut self, is_console: bool) -> &mut Self {
        in_pool!(set_is_console_raw(&self.obj, is_console));
        self
    }

    /// Whether the port is marked as the system console (`isConsole`); `false` by
    /// default.
    pub fn is_console(&self) -> bool {
        in_pool!(is_console_raw(&self.obj))
    }

    /// Connects the port to `attachment` (`setAttachment:`), replacing any previous one
    /// (a [`SpiceAgentPortAttachment`] too).
    pub fn set_attachment(&mut self, attachment: impl Into<SerialPortAttachment>) -> &mut Self {
        let attachment = attachment.into();
        in_pool!(set_attachment_raw(&self.obj, Some(attachment.as_object())));
        self.attachment = Some(attachment);
        self.spice_agent = None;
        self
    }

    /// Disconnects the port (`setAttachment:` with nil), whatever its attachment.
    pub fn clear_attachment(&mut self) -> &mut Self {
        in_pool!(set_attachment_raw(&self.obj, None));
        self.attachment = None;
        self.spice_agent = None;
        self
    }

    /// Makes this the clipboard-sharing port (macOS 13): names it
    /// [`SpiceAgentPortAttachment::port_name`], the name the framework reports
    /// (`setName:`), and connects it to `attachment` (`setAttachment:`), replacing any
    /// previous attachment. The port must not be a console; the guest needs a SPICE
    /// agent (`spice-vdagent`). See [`SpiceAgentPortAttachment`] for an example.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (`"SPICE agent port"`) when the port is marked as
    /// the system console ([`set_is_console`](Self::set_is_console)): the guest's
    /// kernel would write its console into the agent's channel.
    pub fn set_spice_agent_attachment(
        &mut self,
        attachment: SpiceAgentPortAttachment,
    ) -> Result<&mut Self, VZError> {
        if self.is_console() {
            return Err(spice_on_console());
        }
        let name = SpiceAgentPortAttachment::port_name()?;
        in_pool!({
            set_name_raw(&self.obj, Some(&foundation::ns_string(&name)));
            set_attachment_raw(&self.obj, Some(&attachment.obj));
        });
        self.attachment = None;
        self.spice_agent = Some(attachment);
        Ok(self)
    }

    /// The SPICE agent attachment, if one was set with
    /// [`set_spice_agent_attachment`](Self::set_spice_agent_attachment).
    pub fn spice_agent_attachment(&self) -> Option<&SpiceAgentPortAttachment> {
        self.spice_agent.as_ref()
    }

    /// A port with a SPICE agent attachment must keep the agent's name and must not be
    /// a console; checked again when the port is added to a device, since
    /// [`clear_name`](Self::clear_name) and [`set_is_console`](Self::set_is_console)
    /// cannot fail.
    fn check_spice_agent(&self) -> Result<(), VZError> {
        if self.spice_agent.is_none() {
            return Ok(());
        }
        if self.is_console() {
            return Err(spice_on_console());
        }
        let expected = SpiceAgentPortAttachment::port_name()?;
        match self.name() {
            Some(name) if name == expected => Ok(()),
            name => Err(VZError::invalid_argument(
                "SPICE agent port",
                format!(
                    "the port is named {name:?}, but a port with a SpiceAgentPortAttachment must \
                     be named {expected:?}, the one the guest's agent looks for"
                ),
            )),
        }
    }

    /// The attachment, if one was set.
    pub fn attachment(&self) -> Option<&SerialPortAttachment> {
        self.attachment.as_ref()
    }
}

fn spice_on_console() -> VZError {
    VZError::invalid_argument(
        "SPICE agent port",
        "the port is marked as the system console (set_is_console(true)); a \
         SpiceAgentPortAttachment needs a port that is not a console",
    )
}

/// `VZVirtioConsoleDeviceConfiguration` (macOS 13): a virtio console device with
/// several ports, each at an index (`ports`, a `VZVirtioConsolePortConfigurationArray`).
/// Add it with
/// [`VirtualMachineConfiguration::set_console_devices`](crate::VirtualMachineConfiguration::set_console_devices).
///
/// # Port indices and the maximum port count
///
/// The framework requires the maximum port count to be larger than the highest port
/// index. Until [`set_maximum_port_count`](Self::set_maximum_port_count) is called,
/// the framework derives it from the ports (highest index + 1), so
/// [`set_port`](Self::set_port) accepts any index. Once a maximum is set, it is a
/// limit: `set_port` refuses an index that is not below it, and the maximum cannot be
/// lowered to or below a port index in use. Either way the configuration can never
/// fail validation because of a port index.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::os::fd::OwnedFd;
/// use arcbox_vz::{
///     FileHandleSerialPortAttachment, VirtioConsoleDeviceConfiguration,
///     VirtioConsolePortConfiguration, VirtualMachineConfiguration,
/// };
///
/// let mut port = VirtioConsolePortConfiguration::new()?;
/// port.set_name("org.example.agent")?
///     .set_attachment(FileHandleSerialPortAttachment::new(None::<OwnedFd>, Some(std::io::stdout()))?);
/// let mut console = VirtioConsoleDeviceConfiguration::new()?;
/// console.set_maximum_port_count(4)?.set_port(1, port)?;
/// let mut config = VirtualMachineConfiguration::new()?;
/// config.set_console_devices(vec![console]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct VirtioConsoleDeviceConfiguration {
    obj: Id,
    /// `-[VZVirtioConsoleDeviceConfiguration ports]`, fetched once (a strong,
    /// read-only property: the device keeps the same array).
    array: Id,
    /// The ports by index, `None` where none is set; never ends with `None`, so its
    /// length is the highest index set + 1 (at most `MAX_PORT_COUNT` slots).
    ports: Vec<Option<VirtioConsolePortConfiguration>>,
    /// Whether `set_maximum_port_count` was called, making the maximum a limit.
    maximum_set: bool,
}

impl AsObject for VirtioConsoleDeviceConfiguration {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

impl VirtioConsoleDeviceConfiguration {
    /// The most ports a virtio console device can have, so the limit of
    /// [`set_maximum_port_count`](Self::set_maximum_port_count) (and one more than the
    /// highest index [`set_port`](Self::set_port) accepts). Apple documents no limit;
    /// this is the virtio specification's: a multiport console uses two virtqueues
    /// per port plus two control queues (virtio 1.2, 5.3.2 "Virtqueues"), and the PCI
    /// transport counts queues in the 16-bit `num_queues` (virtio 1.2, 4.1.4.3), so
    /// 2 × (ports + 1) ≤ 65535.
    pub const MAX_PORT_COUNT: u32 = 32766;

    /// A console device without ports (`init`).
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 13.
    pub fn new() -> Result<Self, VZError> {
        let class = class_since(class!("VZVirtioConsoleDeviceConfiguration"), FEATURE, SINCE)?;
        let missing = VZError::ClassNotFound {
            class: "VZVirtioConsoleDeviceConfiguration",
        };
        let obj = in_pool!(device_init(class.alloc())).ok_or(missing)?;
        let array = in_pool!(ports_raw(&obj)).ok_or(VZError::ClassNotFound {
            class: "VZVirtioConsolePortConfigurationArray",
        })?;
        Ok(Self {
            obj,
            array,
            ports: Vec::new(),
            maximum_set: false,
        })
    }

    /// Puts `port` at `index` (`-[VZVirtioConsolePortConfigurationArray
    /// setObject:atIndexedSubscript:]`), replacing any port there.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (`"console port index"`) when a maximum port count
    /// was set and `index` is not below it, or when `index` is not below
    /// [`MAX_PORT_COUNT`](Self::MAX_PORT_COUNT); (`"SPICE agent port"`) when `port` has
    /// a [`SpiceAgentPortAttachment`] but is marked as a console or is no longer named
    /// [`SpiceAgentPortAttachment::port_name`].
    pub fn set_port(
        &mut self,
        index: u32,
        port: VirtioConsolePortConfiguration,
    ) -> Result<&mut Self, VZError> {
        port.check_spice_agent()?;
        if index >= Self::MAX_PORT_COUNT {
            return Err(VZError::invalid_argument(
                "console port index",
                format!(
                    "{index} is too large: a virtio console has at most {} ports, so the \
                     highest index is {}",
                    Self::MAX_PORT_COUNT,
                    Self::MAX_PORT_COUNT - 1
                ),
            ));
        }
        if self.maximum_set {
            let maximum = self.maximum_port_count();
            if index >= maximum {
                return Err(VZError::invalid_argument(
                    "console port index",
                    format!(
                        "{index} is out of range: the maximum port count is {maximum}, so the \
                         highest index is {}; raise it with set_maximum_port_count first",
                        maximum.saturating_sub(1)
                    ),
                ));
            }
        }
        in_pool!(set_port_at_raw(
            &self.array,
            Some(&port.obj),
            index as usize
        ));
        let slot = index as usize;
        if slot >= self.ports.len() {
            self.ports.resize_with(slot + 1, || None);
        }
        self.ports[slot] = Some(port);
        Ok(self)
    }

    /// Removes and returns the port at `index` (`setObject:atIndexedSubscript:` with
    /// nil).
    pub fn remove_port(&mut self, index: u32) -> Option<VirtioConsolePortConfiguration> {
        let port = self.ports.get_mut(index as usize)?.take()?;
        while let Some(None) = self.ports.last() {
            self.ports.pop();
        }
        in_pool!(set_port_at_raw(&self.array, None, index as usize));
        Some(port)
    }

    /// Sets the maximum number of ports (`setMaximumPortCount:`), for example to leave
    /// room for ports the guest expects. From then on it limits
    /// [`set_port`](Self::set_port).
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (`"console maximum port count"`) when `count` is
    /// above [`MAX_PORT_COUNT`](Self::MAX_PORT_COUNT), or a port is already set at an
    /// index that is not below `count`.
    pub fn set_maximum_port_count(&mut self, count: u32) -> Result<&mut Self, VZError> {
        if count > Self::MAX_PORT_COUNT {
            return Err(VZError::invalid_argument(
                "console maximum port count",
                format!(
                    "{count} is too large: a virtio console has at most {} ports",
                    Self::MAX_PORT_COUNT
                ),
            ));
        }
        if let Some(highest) = self.ports.len().checked_sub(1) {
            if highest >= count as usize {
                return Err(VZError::invalid_argument(
                    "console maximum port count",
                    format!(
                        "{count} is too small: a port is set at index {highest}, so the count \
                         must be at least {}",
                        highest + 1
                    ),
                ));
            }
        }
        in_pool!(set_maximum_port_count_raw(&self.array, count));
        self.maximum_set = true;
        Ok(self)
    }

    /// The maximum number of ports (`maximumPortCount`): the value set with
    /// [`set_maximum_port_count`](Self::set_maximum_port_count), else the framework's
    /// default, the highest port index + 1.
    pub fn maximum_port_count(&self) -> u32 {
        in_pool!(maximum_port_count_raw(&self.array))
    }

    /// The port at `index`, if one is set.
    pub fn port(&self, index: u32) -> Option<&VirtioConsolePortConfiguration> {
        let port = self.ports.get(index as usize)?.as_ref()?;
        debug_assert!(
            in_pool!(port_at_raw(&self.array, index as usize)).is_some_and(|p| p.is(&port.obj)),
            "the framework's port array disagrees with the builder at index {index}"
        );
        Some(port)
    }

    /// The ports that are set, by increasing index.
    pub fn ports(&self) -> impl Iterator<Item = (u32, &VirtioConsolePortConfiguration)> {
        // Indices fit in u32: set_port takes them as u32.
        let mut index = 0;
        self.ports.iter().filter_map(move |port| {
            index += 1;
            Some((index - 1, port.as_ref()?))
        })
    }
}

objc_methods! {
    fn runtime_ports_raw(device: &Id) -> Option<Id> = "ports";
    fn runtime_port_at_raw(ports: &Id, index: usize) -> Option<Id> = "objectAtIndexedSubscript:";
    fn runtime_max_ports_raw(ports: &Id) -> u32 = "maximumPortCount";
    fn runtime_port_name_raw(port: &Id) -> Option<Id> = "name";
    fn runtime_port_set_attachment_raw(port: &Id, attachment: Option<&Id>) = "setAttachment:";
    fn runtime_port_attachment_raw(port: &Id) -> Option<Id> = "attachment";
}

/// `VZVirtioConsoleDevice` (macOS 13): a virtio console device of a running virtual
/// machine, from [`VirtualMachine::console_devices`](crate::VirtualMachine::console_devices).
///
/// The guest opening and closing its ports arrives in
/// [`VirtualMachine::events`](crate::VirtualMachine::events) as
/// [`VmEvent::ConsolePortOpened`](crate::VmEvent::ConsolePortOpened) and
/// [`VmEvent::ConsolePortClosed`](crate::VmEvent::ConsolePortClosed)
/// (`VZVirtioConsoleDeviceDelegate`).
///
/// ```no_run
/// # fn demo(vm: arcbox_vz::VirtualMachine) -> Result<(), arcbox_vz::VZError> {
/// use arcbox_vz::FileSerialPortAttachment;
///
/// let console = vm.console_devices().remove(0);
/// if let Some(port) = console.port(1) {
///     port.set_attachment(Some(FileSerialPortAttachment::new("/tmp/port1.log", true)?.into()));
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct VirtioConsoleDevice {
    handle: crate::vm::DeviceHandle,
}

impl VirtioConsoleDevice {
    pub(crate) fn new(handle: crate::vm::DeviceHandle) -> Self {
        Self { handle }
    }

    /// The number of port slots (`ports.maximumPortCount`).
    pub fn maximum_port_count(&self) -> u32 {
        self.handle
            .with(|device| {
                runtime_ports_raw(device)
                    .as_ref()
                    .map(runtime_max_ports_raw)
            })
            .unwrap_or(0)
    }

    /// The port at `index`, if one was configured there.
    pub fn port(&self, index: u32) -> Option<VirtioConsolePort> {
        let port = self.handle.with(move |device| {
            let ports = runtime_ports_raw(device)?;
            if index >= runtime_max_ports_raw(&ports) {
                return None;
            }
            runtime_port_at_raw(&ports, index as usize)
        })?;
        let port = crate::ffi::dispatch::QueueBound::new(self.handle.queue().clone(), port);
        Some(VirtioConsolePort {
            handle: self.handle.related(port),
        })
    }
}

/// `VZVirtioConsolePort` (macOS 13): one port of a running virtio console device.
#[derive(Clone, Debug)]
pub struct VirtioConsolePort {
    handle: crate::vm::DeviceHandle,
}

impl VirtioConsolePort {
    /// The port's name (`name`), if it has one.
    pub fn name(&self) -> Option<String> {
        self.handle.with(|port| {
            runtime_port_name_raw(port)
                .as_ref()
                .map(foundation::string_from)
        })
    }

    /// Whether the port has an attachment (`attachment` is not nil).
    pub fn has_attachment(&self) -> bool {
        self.handle
            .with(|port| runtime_port_attachment_raw(port).is_some())
    }

    /// Swaps the port's attachment while the virtual machine runs
    /// (`setAttachment:`), or detaches it with `None`.
    pub fn set_attachment(&self, attachment: Option<SerialPortAttachment>) {
        let attachment = attachment.map(|a| a.as_object().clone());
        self.handle
            .with(move |port| runtime_port_set_attachment_raw(port, attachment.as_ref()));
    }
}
