//! Networking: `VZVirtioNetworkDeviceConfiguration` and its attachments: NAT
//! (`VZNATNetworkDeviceAttachment`), a datagram socket
//! (`VZFileHandleNetworkDeviceAttachment`) and bridging
//! (`VZBridgedNetworkDeviceAttachment` over a `VZBridgedNetworkInterface`). The MAC
//! address, `VZMACAddress`, is in `mac_address.rs`.
//!
//! Apple's documentation:
//! <https://developer.apple.com/documentation/virtualization/network>.

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use crate::configuration::{AsObject, base_class};
use crate::device::MACAddress;
use crate::device::mac_address::format_octets;
use crate::error::VZError;
use crate::ffi::runtime::{Allocated, ClassRef, Id, class, in_pool, objc_methods, sel};
use crate::ffi::{fd, foundation, sys};

objc_methods! {
    fn nat_init(attachment: Allocated) -> Option<Id> = "init";
    fn file_handle_attachment_init(attachment: Allocated, handle: &Id) -> Option<Id> =
        "initWithFileHandle:";
    fn file_handle_attachment_handle(attachment: &Id) -> Option<Id> = "fileHandle";
    fn mtu_raw(attachment: &Id) -> isize = "maximumTransmissionUnit";
    fn set_mtu_raw(attachment: &Id, mtu: isize) = "setMaximumTransmissionUnit:";
    fn bridged_init(attachment: Allocated, interface: &Id) -> Option<Id> = "initWithInterface:";
    fn bridged_interface(attachment: &Id) -> Option<Id> = "interface";

    fn interfaces_raw(class: ClassRef) -> Option<Id> = "networkInterfaces";
    fn interface_identifier(interface: &Id) -> Option<Id> = "identifier";
    fn interface_display_name(interface: &Id) -> Option<Id> = "localizedDisplayName";

    fn device_init(device: Allocated) -> Option<Id> = "init";
    fn device_mac(device: &Id) -> Option<Id> = "MACAddress";
    fn set_device_mac(device: &Id, mac: &Id) = "setMACAddress:";
    fn set_device_attachment(device: &Id, attachment: Option<&Id>) = "setAttachment:";
}

/// An object a framework initializer returned nil for although its input is valid:
/// only out of memory does that.
fn allocated(obj: Option<Id>, class: &str) -> Id {
    obj.unwrap_or_else(|| panic!("{class} returned nil: out of memory"))
}

// ---------------------------------------------------------------------------------
// Attachments
// ---------------------------------------------------------------------------------

/// `VZNATNetworkDeviceAttachment`: the guest reaches the network through the host's
/// NAT, with an address from the host's DHCP server. Needs no entitlement beyond
/// `com.apple.security.virtualization`.
#[derive(Debug)]
pub struct NATNetworkDeviceAttachment {
    obj: Id,
}

impl NATNetworkDeviceAttachment {
    /// `-[VZNATNetworkDeviceAttachment init]`.
    pub fn new() -> Self {
        let class = base_class(class!("VZNATNetworkDeviceAttachment"));
        let obj = allocated(
            in_pool!(nat_init(class.alloc())),
            "-[VZNATNetworkDeviceAttachment init]",
        );
        Self { obj }
    }
}

impl Default for NATNetworkDeviceAttachment {
    /// As [`NATNetworkDeviceAttachment::new`].
    fn default() -> Self {
        Self::new()
    }
}

/// The MTU of a file-handle attachment when none is set, and the least allowed.
const DEFAULT_MTU: u32 = 1500;
const MAX_MTU: u32 = 65535;

/// `VZFileHandleNetworkDeviceAttachment`: the guest's Ethernet frames go over a
/// connected datagram socket, one frame per datagram, to a user-space network stack
/// in this or another process (for example gvisor-tap-vsock's `gvproxy`, or
/// `vmnet-helper`).
///
/// Use one end of `socketpair(AF_UNIX, SOCK_DGRAM)`
/// ([`UnixDatagram::pair`](std::os::unix::net::UnixDatagram::pair)) or a datagram
/// socket connected to its peer. The attachment keeps its own duplicate of the
/// descriptor, closed when the attachment is released, so the caller keeps and closes
/// its own.
///
/// # Socket buffers
///
/// Apple asks that the socket's `SO_SNDBUF` and `SO_RCVBUF` be set with
/// `setsockopt`, with `SO_RCVBUF` at least twice `SO_SNDBUF` and ideally four times
/// it (for example 1 MiB and 4 MiB), large enough for several frames of the
/// [MTU](Self::set_maximum_transmission_unit). Set them on the descriptor you pass
/// here (the attachment's duplicate shares the socket, so before or after makes no
/// difference) and on its peer. The system defaults for `AF_UNIX` datagram sockets
/// are small and drop frames under load. This crate does not change them for you.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::os::unix::net::UnixDatagram;
/// use arcbox_vz::{FileHandleNetworkDeviceAttachment, VirtioNetworkDeviceConfiguration};
///
/// let (guest_side, host_side) = UnixDatagram::pair()?;
/// let attachment = FileHandleNetworkDeviceAttachment::new(&guest_side)?;
/// let device = VirtioNetworkDeviceConfiguration::new(attachment);
/// drop(guest_side); // the attachment has its own duplicate
/// // Read and write Ethernet frames on `host_side`.
/// # let _ = (device, host_side);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct FileHandleNetworkDeviceAttachment {
    obj: Id,
}

/// Why `fd` cannot carry a file-handle network attachment, if it cannot.
fn check_network_socket(fd: BorrowedFd<'_>) -> Result<(), String> {
    const NEED: &str = "a file-handle network attachment needs a connected datagram socket \
                        (SOCK_DGRAM), for example one end of socketpair(AF_UNIX, SOCK_DGRAM)";
    let n = fd.as_raw_fd();
    let socket_type = match fd::socket_type(fd) {
        Ok(socket_type) => socket_type,
        Err(e) if e.raw_os_error() == Some(sys::EBADF) => {
            return Err(format!(
                "file descriptor {n} is closed (not an open descriptor); {NEED}"
            ));
        }
        Err(e) if e.raw_os_error() == Some(sys::ENOTSOCK) => {
            return Err(format!(
                "{}, which is not a socket; {NEED}",
                describe_non_socket(fd)
            ));
        }
        Err(e) => {
            return Err(format!(
                "cannot read the socket type of file descriptor {n}: {e}; {NEED}"
            ));
        }
    };
    if socket_type != sys::SOCK_DGRAM {
        let kind = match socket_type {
            sys::SOCK_STREAM => "a stream socket (SOCK_STREAM)".to_owned(),
            sys::SOCK_SEQPACKET => "a sequenced-packet socket (SOCK_SEQPACKET)".to_owned(),
            sys::SOCK_RAW => "a raw socket (SOCK_RAW)".to_owned(),
            other => format!("a socket of type {other}"),
        };
        return Err(format!(
            "file descriptor {n} is {kind}, not a datagram socket; {NEED}"
        ));
    }
    match fd::is_connected(fd) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "file descriptor {n} is a datagram socket that is not connected: connect(2) it \
             to its peer, or use socketpair(AF_UNIX, SOCK_DGRAM); {NEED}"
        )),
        Err(e) => Err(format!(
            "cannot tell whether file descriptor {n} is connected: {e}; {NEED}"
        )),
    }
}

/// What a descriptor that is not a socket is, for an error message.
fn describe_non_socket(fd: BorrowedFd<'_>) -> String {
    use std::os::unix::fs::FileTypeExt;
    let kind = fd
        .try_clone_to_owned()
        .and_then(|dup| std::fs::File::from(dup).metadata())
        .map(|meta| {
            let t = meta.file_type();
            if t.is_fifo() {
                "a pipe (FIFO)"
            } else if t.is_file() {
                "a regular file"
            } else if t.is_dir() {
                "a directory"
            } else if t.is_char_device() {
                "a character device"
            } else if t.is_block_device() {
                "a block device"
            } else {
                "a file"
            }
        })
        .unwrap_or("a file");
    format!("file descriptor {} is {kind}", fd.as_raw_fd())
}

impl FileHandleNetworkDeviceAttachment {
    /// `-[VZFileHandleNetworkDeviceAttachment initWithFileHandle:]` with a duplicate
    /// (close-on-exec) of `fd`.
    ///
    /// `fd` is checked first: it must be an open socket (`getsockopt(SO_TYPE)`), of
    /// type `SOCK_DGRAM`, and connected (`getpeername` succeeds; both ends of an
    /// `AF_UNIX` socketpair are). The framework raises an Objective-C exception,
    /// which would abort the process, for anything but a datagram socket, and an
    /// unconnected one fails only once the virtual machine runs.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] with argument `"network file descriptor"` when the
    /// descriptor is closed, not a socket (a pipe, a file, a device), a stream or
    /// other non-datagram socket, or not connected; [`VZError::Io`] when it cannot be
    /// duplicated.
    pub fn new(fd: impl AsFd) -> Result<Self, VZError> {
        let fd = fd.as_fd();
        check_network_socket(fd)
            .map_err(|reason| VZError::invalid_argument("network file descriptor", reason))?;
        let class = base_class(class!("VZFileHandleNetworkDeviceAttachment"));
        // foundation::file_handle makes the NSFileHandle outside any pool of its own.
        let handle = in_pool!(foundation::file_handle(fd))?;
        let obj =
            in_pool!(file_handle_attachment_init(class.alloc(), &handle)).ok_or_else(|| {
                VZError::invalid_argument(
                    "network file descriptor",
                    "VZFileHandleNetworkDeviceAttachment refused it",
                )
            })?;
        Ok(Self { obj })
    }

    /// The attachment's own duplicate of the descriptor (`fileHandle.fileDescriptor`).
    /// It belongs to the attachment and is closed when the framework releases the
    /// attachment; do not close it.
    pub fn file_descriptor(&self) -> RawFd {
        in_pool!({
            file_handle_attachment_handle(&self.obj)
                .map_or(-1, |handle| foundation::file_handle_fd(&handle))
        })
    }

    /// `setMaximumTransmissionUnit:` (macOS 13): the largest Ethernet payload, in bytes,
    /// the guest may send, from 1500 to 65535. Leave it alone unless both ends are
    /// set up for a larger one: the default, 1500, is what the guest expects, and a
    /// larger MTU without matching [socket buffers](Self#socket-buffers) stalls the
    /// connection. The setter is only called when you call this.
    ///
    /// Before macOS 13 the MTU is always 1500, so setting 1500 there succeeds and
    /// changes nothing.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] with argument `"MTU"` outside 1500..=65535;
    /// [`VZError::Unsupported`] for any other value before macOS 13.
    pub fn set_maximum_transmission_unit(&mut self, mtu: u32) -> Result<&mut Self, VZError> {
        if !(DEFAULT_MTU..=MAX_MTU).contains(&mtu) {
            return Err(VZError::invalid_argument(
                "MTU",
                format!("{mtu} is outside the allowed range {DEFAULT_MTU}..={MAX_MTU} bytes"),
            ));
        }
        if !self.obj.responds_to(sel!("setMaximumTransmissionUnit:")) {
            return if mtu == DEFAULT_MTU {
                Ok(self)
            } else {
                Err(VZError::Unsupported {
                    feature: "a file-handle network MTU other than 1500",
                    min_macos: "13.0",
                })
            };
        }
        // In range, so it fits an NSInteger.
        in_pool!(set_mtu_raw(&self.obj, mtu as isize));
        Ok(self)
    }

    /// `maximumTransmissionUnit` (macOS 13); 1500, the only MTU there is, before
    /// macOS 13.
    pub fn maximum_transmission_unit(&self) -> u32 {
        if !self.obj.responds_to(sel!("maximumTransmissionUnit")) {
            return DEFAULT_MTU;
        }
        u32::try_from(in_pool!(mtu_raw(&self.obj))).unwrap_or(DEFAULT_MTU)
    }
}

/// `VZBridgedNetworkInterface`: a host network interface a guest can be bridged to.
///
/// List them with [`network_interfaces`](Self::network_interfaces).
#[derive(Clone)]
pub struct BridgedNetworkInterface {
    obj: Id,
}

impl BridgedNetworkInterface {
    /// `+[VZBridgedNetworkInterface networkInterfaces]`: the host interfaces that can
    /// be bridged.
    pub fn network_interfaces() -> Vec<BridgedNetworkInterface> {
        let class = base_class(class!("VZBridgedNetworkInterface"));
        in_pool!({
            let objects = interfaces_raw(class)
                .as_ref()
                .map(foundation::array_items)
                .unwrap_or_default();
            let mut interfaces = Vec::with_capacity(objects.len());
            for obj in objects {
                interfaces.push(Self { obj });
            }
            interfaces
        })
    }

    /// `identifier`: the BSD name of the interface, for example `en0`.
    pub fn identifier(&self) -> String {
        in_pool!({
            interface_identifier(&self.obj)
                .as_ref()
                .map(foundation::string_from)
                .unwrap_or_default()
        })
    }

    /// `localizedDisplayName`: a name to show to people, for example `Wi-Fi`, if the
    /// interface has one.
    pub fn localized_display_name(&self) -> Option<String> {
        in_pool!(
            interface_display_name(&self.obj)
                .as_ref()
                .map(foundation::string_from)
        )
    }
}

impl fmt::Debug for BridgedNetworkInterface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BridgedNetworkInterface")
            .field("identifier", &self.identifier())
            .field("localized_display_name", &self.localized_display_name())
            .finish()
    }
}

/// `VZBridgedNetworkDeviceAttachment`: the guest appears on the host interface's
/// network as a machine of its own.
///
/// # Entitlement
///
/// Bridging needs the **restricted** entitlement `com.apple.vm.networking`, which only
/// Apple can grant (to developers of virtualization software, on request). Without
/// it, [`VirtualMachineConfiguration::validate`](crate::VirtualMachineConfiguration::validate)
/// fails with "Using VZBridgedNetworkDeviceAttachment in a process that lacks the
/// “com.apple.vm.networking” entitlement", and an ad-hoc-signed binary that claims it
/// is killed at launch. Use [`NATNetworkDeviceAttachment`], or a
/// [`FileHandleNetworkDeviceAttachment`] to a user-space network stack (which can
/// itself bridge through vmnet), instead.
#[derive(Debug)]
pub struct BridgedNetworkDeviceAttachment {
    obj: Id,
}

impl BridgedNetworkDeviceAttachment {
    /// `-[VZBridgedNetworkDeviceAttachment initWithInterface:]`.
    pub fn new(interface: &BridgedNetworkInterface) -> Self {
        let class = base_class(class!("VZBridgedNetworkDeviceAttachment"));
        let obj = allocated(
            in_pool!(bridged_init(class.alloc(), &interface.obj)),
            "-[VZBridgedNetworkDeviceAttachment initWithInterface:]",
        );
        Self { obj }
    }

    /// `interface`: the host interface the guest is bridged to.
    pub fn interface(&self) -> BridgedNetworkInterface {
        let obj = allocated(
            in_pool!(bridged_interface(&self.obj)),
            "-[VZBridgedNetworkDeviceAttachment interface]",
        );
        BridgedNetworkInterface { obj }
    }
}

/// What a network device is attached to on the host (`VZNetworkDeviceAttachment`).
#[derive(Debug)]
#[non_exhaustive]
pub enum NetworkDeviceAttachment {
    /// The host's NAT.
    NAT(NATNetworkDeviceAttachment),
    /// A connected datagram socket.
    FileHandle(FileHandleNetworkDeviceAttachment),
    /// A host interface (needs the restricted `com.apple.vm.networking` entitlement).
    Bridged(BridgedNetworkDeviceAttachment),
    /// A vmnet network (macOS 26).
    Vmnet(super::VmnetNetworkDeviceAttachment),
}

impl AsObject for NetworkDeviceAttachment {
    fn as_object(&self) -> &Id {
        match self {
            Self::NAT(a) => &a.obj,
            Self::FileHandle(a) => &a.obj,
            Self::Bridged(a) => &a.obj,
            Self::Vmnet(a) => a.as_object(),
        }
    }
}

impl From<NATNetworkDeviceAttachment> for NetworkDeviceAttachment {
    fn from(a: NATNetworkDeviceAttachment) -> Self {
        Self::NAT(a)
    }
}

impl From<FileHandleNetworkDeviceAttachment> for NetworkDeviceAttachment {
    fn from(a: FileHandleNetworkDeviceAttachment) -> Self {
        Self::FileHandle(a)
    }
}

impl From<super::VmnetNetworkDeviceAttachment> for NetworkDeviceAttachment {
    fn from(a: super::VmnetNetworkDeviceAttachment) -> Self {
        Self::Vmnet(a)
    }
}

impl From<BridgedNetworkDeviceAttachment> for NetworkDeviceAttachment {
    fn from(a: BridgedNetworkDeviceAttachment) -> Self {
        Self::Bridged(a)
    }
}

// ---------------------------------------------------------------------------------
// The device
// ---------------------------------------------------------------------------------

/// `VZVirtioNetworkDeviceConfiguration`: a virtio-net network card.
///
/// Every device has an attachment (the framework refuses a configuration with a
/// device without one, so the constructor takes it) and a MAC address, random and
/// locally administered unless you set one.
///
/// ```no_run
/// # fn main() -> Result<(), arcbox_vz::VZError> {
/// use arcbox_vz::{
///     MACAddress, NATNetworkDeviceAttachment, VirtioNetworkDeviceConfiguration,
///     VirtualMachineConfiguration,
/// };
///
/// let mut nic = VirtioNetworkDeviceConfiguration::new(NATNetworkDeviceAttachment::new());
/// // Keep the same address across boots so the guest keeps its DHCP lease.
/// nic.set_mac_address(&"52:54:00:12:34:56".parse::<MACAddress>()?)?;
///
/// let mut config = VirtualMachineConfiguration::new()?;
/// config.set_network_devices(vec![nic]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct VirtioNetworkDeviceConfiguration {
    obj: Id,
    attachment: NetworkDeviceAttachment,
}

impl AsObject for VirtioNetworkDeviceConfiguration {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

impl VirtioNetworkDeviceConfiguration {
    /// `-[VZVirtioNetworkDeviceConfiguration init]` and `setAttachment:`: a virtio
    /// network device attached to `attachment`, with the framework's default MAC
    /// address (random, locally administered, unicast).
    pub fn new(attachment: impl Into<NetworkDeviceAttachment>) -> Self {
        let attachment = attachment.into();
        let class = base_class(class!("VZVirtioNetworkDeviceConfiguration"));
        let obj = allocated(
            in_pool!(device_init(class.alloc())),
            "-[VZVirtioNetworkDeviceConfiguration init]",
        );
        in_pool!(set_device_attachment(&obj, Some(attachment.as_object())));
        Self { obj, attachment }
    }

    /// `setAttachment:`: replaces the attachment.
    pub fn set_attachment(&mut self, attachment: impl Into<NetworkDeviceAttachment>) -> &mut Self {
        let attachment = attachment.into();
        in_pool!(set_device_attachment(
            &self.obj,
            Some(attachment.as_object())
        ));
        self.attachment = attachment;
        self
    }

    /// The attachment (`attachment`).
    pub fn attachment(&self) -> &NetworkDeviceAttachment {
        &self.attachment
    }

    /// `setMACAddress:`: the guest's MAC address for this device.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] with argument `"MAC address"` for a multicast
    /// (including broadcast) address, which no network card may have; use a unicast
    /// address such as [`MACAddress::random_locally_administered`].
    pub fn set_mac_address(&mut self, mac: &MACAddress) -> Result<&mut Self, VZError> {
        if mac.octets[0] & 1 != 0 {
            return Err(VZError::invalid_argument(
                "MAC address",
                format!(
                    "{} is a multicast address (the low bit of the first octet is set); a network \
                     device needs a unicast address",
                    format_octets(&mac.octets)
                ),
            ));
        }
        in_pool!(set_device_mac(&self.obj, &mac.obj));
        Ok(self)
    }

    /// `MACAddress`: the device's MAC address; by default a random, locally
    /// administered one, chosen when the device was made.
    pub fn mac_address(&self) -> MACAddress {
        let obj = allocated(
            in_pool!(device_mac(&self.obj)),
            "-[VZNetworkDeviceConfiguration MACAddress]",
        );
        MACAddress::from_object(obj)
    }
}

objc_methods! {
    fn runtime_attachment_raw(device: &Id) -> Option<Id> = "attachment";
    fn runtime_set_attachment_raw(device: &Id, attachment: Option<&Id>) = "setAttachment:";
}

/// `VZNetworkDevice` (macOS 12): a network device of a running virtual machine, from
/// [`VirtualMachine::network_devices`](crate::VirtualMachine::network_devices). Every
/// call runs on the VM queue; the handle keeps the virtual machine alive.
///
/// ```no_run
/// # fn demo(vm: arcbox_vz::VirtualMachine) {
/// use arcbox_vz::NATNetworkDeviceAttachment;
///
/// let device = vm.network_devices().remove(0);
/// device.set_attachment(Some(NATNetworkDeviceAttachment::new().into()));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct NetworkDevice {
    handle: crate::vm::DeviceHandle,
}

impl NetworkDevice {
    pub(crate) fn new(handle: crate::vm::DeviceHandle) -> Self {
        Self { handle }
    }

    /// Whether the device has an attachment (`attachment` is not nil). It becomes
    /// nil when the attachment is disconnected, which
    /// [`VmEvent::NetworkAttachmentDisconnected`](crate::VmEvent::NetworkAttachmentDisconnected)
    /// reports.
    pub fn has_attachment(&self) -> bool {
        self.handle
            .with(|device| runtime_attachment_raw(device).is_some())
    }

    /// Swaps the attachment while the virtual machine runs (`setAttachment:`), or
    /// disconnects the device with `None`. A failure to attach is reported as a
    /// [`VmEvent::NetworkAttachmentDisconnected`](crate::VmEvent::NetworkAttachmentDisconnected).
    pub fn set_attachment(&self, attachment: Option<NetworkDeviceAttachment>) {
        if let Some(NetworkDeviceAttachment::Vmnet(a)) = &attachment {
            // The framework's attachment points at the network: the VM holds it.
            self.handle.vm().keep_alive(vec![a.network().clone()]);
        }
        let attachment = attachment.map(|a| a.as_object().clone());
        self.handle
            .with(move |device| runtime_set_attachment_raw(device, attachment.as_ref()));
    }
}
