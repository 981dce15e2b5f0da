//! vmnet networks (macOS 26): a [`VmnetNetworkConfiguration`] builder over the vmnet
//! C API (`vmnet_network_configuration_*`), the [`VmnetNetwork`] it creates, and the
//! [`VmnetNetworkDeviceAttachment`] (`VZVmnetNetworkDeviceAttachment`) that puts a
//! virtual machine's network device on it. Several virtual machines attached to one
//! network reach each other, and (in shared mode) the outside through NAT.
//!
//! The vmnet functions are resolved at run time (`dlopen`/`dlsym` of
//! `/System/Library/Frameworks/vmnet.framework/vmnet`) only after the OS is known to
//! be macOS 26 or later, so a binary using this module still launches on macOS 11–15,
//! where [`VmnetNetwork::new`] returns [`VZError::Unsupported`].
//!
//! # Entitlements
//!
//! The Virtualization header says the vmnet attachment "requires an entitlement"
//! without naming one. Reports so far: shared mode works without root for a binary
//! signed with only `com.apple.security.virtualization`; the vmnet overview asks
//! sandboxed apps for `com.apple.vm.networking`, and on some macOS 27 betas a
//! sandboxed app gets `VMNET_MEM_FAILURE` unless it may look up
//! `com.apple.NetworkSharing`. Whether an extra entitlement is strictly needed is not
//! settled.
//!
//! # Processes
//!
//! A network is only usable in the process that created it: a virtual machine whose
//! attachment refers to another process's network fails to start its interface. To
//! share a network with another process of the same app, send
//! [`VmnetNetwork::copy_serialization`] over your own XPC connection and rebuild it
//! there with [`VmnetNetwork::from_serialization`]; that process then has a network
//! of its own on the same subnet. Whether a serialization made by another *app* is
//! accepted is not documented.
//!
//! Apple's documentation: <https://developer.apple.com/documentation/vmnet> and
//! <https://developer.apple.com/documentation/virtualization/vzvmnetnetworkdeviceattachment>.

use core::ffi::c_void;
use std::ffi::CString;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::sync::Arc;

use crate::configuration::{AsObject, class_since};
use crate::device::{MACAddress, VmnetError, VmnetStatus};
use crate::error::VZError;
use crate::ffi::runtime::{Allocated, Id, class, in_pool, objc_methods};
use crate::ffi::vmnet;

pub use crate::ffi::vmnet::VmnetNetworkSerialization;

objc_methods! {
    fn attachment_init(attachment: Allocated, network: &vmnet::Network) -> Option<Id> =
        "initWithNetwork:";
    fn attachment_network(attachment: &Id) -> *const c_void = "network";
}

const FEATURE: &str = "vmnet networks";
const MIN_MACOS: &str = "26.0";

fn unsupported() -> VZError {
    VZError::Unsupported {
        feature: FEATURE,
        min_macos: MIN_MACOS,
    }
}

/// Checks the OS first (the 26.0 class), then resolves the vmnet functions.
fn check_support() -> Result<(), VZError> {
    class_since(class!("VZVmnetNetworkDeviceAttachment"), FEATURE, MIN_MACOS)?;
    if vmnet::available() {
        Ok(())
    } else {
        Err(unsupported())
    }
}

fn check(operation: &'static str, status: u32) -> Result<(), VZError> {
    if status == vmnet::SUCCESS {
        Ok(())
    } else {
        Err(failed(operation, status))
    }
}

fn failed(operation: &'static str, status: u32) -> VZError {
    VZError::Vmnet(VmnetError {
        operation,
        status: VmnetStatus::from_raw(status),
    })
}

// ---------------------------------------------------------------------------------
// The configuration
// ---------------------------------------------------------------------------------

/// `vmnet_mode_t`: what a vmnet network reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VmnetMode {
    /// `VMNET_HOST_MODE`: the host and the guests on the network, nothing else.
    Host,
    /// `VMNET_SHARED_MODE`: as host mode, plus NAT to the outside.
    Shared,
}

/// The transport protocol of a port-forwarding rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VmnetProtocol {
    /// `IPPROTO_TCP` (6).
    Tcp,
    /// `IPPROTO_UDP` (17).
    Udp,
}

impl VmnetProtocol {
    fn raw(self) -> u8 {
        match self {
            Self::Tcp => vmnet::IPPROTO_TCP,
            Self::Udp => vmnet::IPPROTO_UDP,
        }
    }
}

impl TryFrom<u8> for VmnetProtocol {
    type Error = VZError;

    /// `6` (TCP) or `17` (UDP); vmnet forwards no other protocol.
    fn try_from(number: u8) -> Result<Self, VZError> {
        match number {
            vmnet::IPPROTO_TCP => Ok(Self::Tcp),
            vmnet::IPPROTO_UDP => Ok(Self::Udp),
            other => Err(VZError::invalid_argument(
                "port-forwarding protocol",
                format!("IP protocol {other} cannot be forwarded: only TCP (6) and UDP (17)"),
            )),
        }
    }
}

impl FromStr for VmnetProtocol {
    type Err = VZError;

    /// `"tcp"` or `"udp"`, either case.
    fn from_str(s: &str) -> Result<Self, VZError> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Self::Tcp),
            "udp" => Ok(Self::Udp),
            _ => Err(VZError::invalid_argument(
                "port-forwarding protocol",
                format!("{s:?} cannot be forwarded: only \"tcp\" and \"udp\""),
            )),
        }
    }
}

/// An IPv4 port-forwarding rule: host port `external_port` goes to
/// `internal_address:internal_port` on the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VmnetPortForwardingRule {
    /// TCP or UDP.
    pub protocol: VmnetProtocol,
    /// The host's port.
    pub external_port: u16,
    /// The guest's address, inside the network's subnet.
    pub internal_address: Ipv4Addr,
    /// The guest's port.
    pub internal_port: u16,
}

/// The IPv4 subnet of a network: its host address (`.1`) and mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VmnetSubnet {
    /// The host's (gateway's) address: the second address of the range.
    pub host_address: Ipv4Addr,
    /// The subnet mask.
    pub mask: Ipv4Addr,
}

impl VmnetSubnet {
    fn prefix_len(&self) -> u32 {
        u32::from(self.mask).leading_ones()
    }

    fn network(&self) -> u32 {
        u32::from(self.host_address) & u32::from(self.mask)
    }

    fn broadcast(&self) -> u32 {
        self.network() | !u32::from(self.mask)
    }

    fn contains(&self, address: Ipv4Addr) -> bool {
        u32::from(address) & u32::from(self.mask) == self.network()
    }

    /// Whether `address` is one a guest may have: inside, and not one of the three
    /// addresses vmnet reserves (the first, the host's second, the last).
    fn check_guest_address(&self, address: Ipv4Addr) -> Result<(), String> {
        let a = u32::from(address);
        if !self.contains(address) {
            return Err(format!("{address} is outside the network's subnet {self}"));
        }
        if a == self.network() || a == self.broadcast() {
            return Err(format!(
                "{address} is the first or last address of {self}, which vmnet reserves"
            ));
        }
        if address == self.host_address {
            return Err(format!("{address} is the host's address on {self}"));
        }
        Ok(())
    }
}

impl fmt::Display for VmnetSubnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            Ipv4Addr::from(self.network()),
            self.prefix_len()
        )
    }
}

/// The private (RFC 1918) ranges: network and prefix length.
const PRIVATE_RANGES: [([u8; 4], u32); 3] = [
    ([10, 0, 0, 0], 8),
    ([172, 16, 0, 0], 12),
    ([192, 168, 0, 0], 16),
];

/// The smallest MTU accepted: IPv6's minimum link MTU (RFC 8200), since NAT66 and
/// router advertisement are on by default.
pub const VMNET_MIN_MTU: u32 = 1280;
/// The largest MTU accepted: the largest IP packet.
pub const VMNET_MAX_MTU: u32 = 65535;

/// A builder for a vmnet network (`vmnet_network_configuration_ref`).
///
/// Every setter checks its input in Rust; nothing reaches vmnet before
/// [`VmnetNetwork::new`]. vmnet's defaults: NAT44, NAT66, DHCP, DNS proxy and router
/// advertisement on; a random /24 under 192.168.0.0/16; a random IPv6 ULA prefix;
/// MTU 1500; no reservations, no forwarding.
///
/// ```no_run
/// # fn main() -> Result<(), arcbox_vz::VZError> {
/// use std::net::Ipv4Addr;
/// use arcbox_vz::{VmnetMode, VmnetNetwork, VmnetNetworkConfiguration};
///
/// let mut config = VmnetNetworkConfiguration::new(VmnetMode::Host);
/// config
///     .set_ipv4_subnet(Ipv4Addr::new(192, 168, 105, 1), Ipv4Addr::new(255, 255, 255, 0))?
///     .set_mtu(1500)?;
/// let network = VmnetNetwork::new(&config)?; // Unsupported before macOS 26
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct VmnetNetworkConfiguration {
    mode: VmnetMode,
    subnet: Option<VmnetSubnet>,
    mtu: Option<u32>,
    external_interface: Option<CString>,
    reservations: Vec<(MACAddress, Ipv4Addr)>,
    rules: Vec<VmnetPortForwardingRule>,
    disable_dhcp: bool,
    disable_dns_proxy: bool,
    disable_nat44: bool,
    disable_nat66: bool,
    disable_router_advertisement: bool,
}

impl VmnetNetworkConfiguration {
    /// A configuration with vmnet's defaults for `mode`.
    pub fn new(mode: VmnetMode) -> Self {
        Self {
            mode,
            subnet: None,
            mtu: None,
            external_interface: None,
            reservations: Vec::new(),
            rules: Vec::new(),
            disable_dhcp: false,
            disable_dns_proxy: false,
            disable_nat44: false,
            disable_nat66: false,
            disable_router_advertisement: false,
        }
    }

    /// The mode.
    pub fn mode(&self) -> VmnetMode {
        self.mode
    }

    /// `vmnet_network_configuration_set_ipv4_subnet`: the IPv4 subnet, given by the
    /// host's address on it and the mask, like `192.168.105.1` and `255.255.255.0`.
    ///
    /// vmnet reserves the first address, the second (the host's) and the last. Pass
    /// the second (the `.1` host address): the `.0` network address is accepted by
    /// vmnet but the virtual machine then fails to start (Code-Hex/vz PR #205), so it
    /// is refused here, as is any other address.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (`"IPv4 subnet"`) when the mask is not
    /// contiguous or longer than /30, the subnet is not inside a private range
    /// (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16), the address is not the subnet's
    /// second address, or reservations or rules were added before (set the subnet
    /// first).
    pub fn set_ipv4_subnet(
        &mut self,
        host_address: Ipv4Addr,
        mask: Ipv4Addr,
    ) -> Result<&mut Self, VZError> {
        let error = |reason: String| VZError::invalid_argument("IPv4 subnet", reason);
        let m = u32::from(mask);
        let prefix = m.leading_ones();
        if m.count_ones() != prefix {
            return Err(error(format!(
                "mask {mask} is not contiguous (ones, then zeros), like 255.255.255.0"
            )));
        }
        if prefix > 30 {
            return Err(error(format!(
                "mask {mask} (/{prefix}) leaves no address for a guest: vmnet reserves the \
                 first, second and last addresses; use /30 or shorter"
            )));
        }
        let subnet = VmnetSubnet { host_address, mask };
        let network = subnet.network();
        let private = PRIVATE_RANGES.iter().any(|&(range, len)| {
            let range_mask = u32::MAX << (32 - len);
            prefix >= len && network & range_mask == u32::from(Ipv4Addr::from(range))
        });
        if !private {
            return Err(error(format!(
                "{subnet} is not inside a private range (10.0.0.0/8, 172.16.0.0/12, \
                 192.168.0.0/16)"
            )));
        }
        let host = Ipv4Addr::from(network + 1);
        if u32::from(host_address) == network {
            return Err(error(format!(
                "{host_address} is the network address of {subnet}: pass the host address \
                 {host} (with .0 the virtual machine fails to start)"
            )));
        }
        if host_address != host {
            return Err(error(format!(
                "{host_address} is not the host address of {subnet}: pass {host}, the \
                 second address, which vmnet reserves for the host"
            )));
        }
        if !self.reservations.is_empty() || !self.rules.is_empty() {
            return Err(error(
                "DHCP reservations or port-forwarding rules were added before the subnet: \
                 set the subnet first"
                    .to_owned(),
            ));
        }
        self.subnet = Some(subnet);
        Ok(self)
    }

    /// The subnet set with [`set_ipv4_subnet`](Self::set_ipv4_subnet).
    pub fn ipv4_subnet(&self) -> Option<VmnetSubnet> {
        self.subnet
    }

    /// `vmnet_network_configuration_set_mtu` (default 1500).
    ///
    /// Apple documents no range; this crate accepts
    /// [`VMNET_MIN_MTU`]`..=`[`VMNET_MAX_MTU`].
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (`"MTU"`) outside that range.
    pub fn set_mtu(&mut self, mtu: u32) -> Result<&mut Self, VZError> {
        if !(VMNET_MIN_MTU..=VMNET_MAX_MTU).contains(&mtu) {
            return Err(VZError::invalid_argument(
                "MTU",
                format!(
                    "{mtu} is outside {VMNET_MIN_MTU}..={VMNET_MAX_MTU} bytes (1280 is IPv6's \
                     minimum, 65535 the largest IP packet)"
                ),
            ));
        }
        self.mtu = Some(mtu);
        Ok(self)
    }

    /// `vmnet_network_configuration_set_external_interface`: the host interface a
    /// shared-mode network reaches the outside through, like `"en0"` (default: the
    /// interface of the default route).
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (`"external interface"`) in host mode, or when
    /// the name is empty, longer than 15 bytes or contains NUL.
    pub fn set_external_interface(&mut self, name: &str) -> Result<&mut Self, VZError> {
        let error = |reason: String| VZError::invalid_argument("external interface", reason);
        if self.mode != VmnetMode::Shared {
            return Err(error(
                "only a shared-mode network has an external interface".to_owned(),
            ));
        }
        if name.is_empty() || name.len() > 15 {
            return Err(error(format!(
                "{name:?} is not a BSD interface name (1 to 15 bytes, like \"en0\")"
            )));
        }
        let name =
            CString::new(name).map_err(|_| error(format!("{name:?} contains a NUL byte")))?;
        self.external_interface = Some(name);
        Ok(self)
    }

    /// `vmnet_network_configuration_add_dhcp_reservation`: the guest with MAC address
    /// `mac` always gets `address` from DHCP. Set the subnet first.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (`"DHCP reservation"`) when no subnet was set,
    /// the MAC address is multicast or all zeros, the address is outside the subnet
    /// or one vmnet reserves, or the MAC or address is already reserved.
    pub fn add_dhcp_reservation(
        &mut self,
        mac: &MACAddress,
        address: Ipv4Addr,
    ) -> Result<&mut Self, VZError> {
        let error = |reason: String| VZError::invalid_argument("DHCP reservation", reason);
        let subnet = self.subnet.ok_or_else(|| {
            error(
                "no IPv4 subnet is set (vmnet would pick a random one): call set_ipv4_subnet \
                 first"
                    .to_owned(),
            )
        })?;
        let octets = mac.octets();
        if octets[0] & 1 != 0 {
            return Err(error(format!(
                "{mac} is a multicast address; a guest's MAC address is unicast"
            )));
        }
        if octets == [0; 6] {
            return Err(error("the MAC address is all zeros".to_owned()));
        }
        subnet.check_guest_address(address).map_err(error)?;
        if let Some((m, a)) = self
            .reservations
            .iter()
            .find(|(m, a)| m == mac || *a == address)
        {
            return Err(error(format!("{m} is already reserved {a}")));
        }
        self.reservations.push((mac.clone(), address));
        Ok(self)
    }

    /// `vmnet_network_configuration_add_port_forwarding_rule` for IPv4. Set the subnet
    /// first.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (`"port-forwarding rule"`) when a port is 0, no
    /// subnet was set, the internal address is outside the subnet or reserved, or the
    /// external port is already forwarded for that protocol.
    pub fn add_port_forwarding_rule(
        &mut self,
        rule: VmnetPortForwardingRule,
    ) -> Result<&mut Self, VZError> {
        let error = |reason: String| VZError::invalid_argument("port-forwarding rule", reason);
        if rule.external_port == 0 || rule.internal_port == 0 {
            return Err(error(format!(
                "port 0 cannot be forwarded (external {}, internal {})",
                rule.external_port, rule.internal_port
            )));
        }
        let subnet = self
            .subnet
            .ok_or_else(|| error("no IPv4 subnet is set: call set_ipv4_subnet first".to_owned()))?;
        subnet
            .check_guest_address(rule.internal_address)
            .map_err(error)?;
        if self
            .rules
            .iter()
            .any(|r| r.protocol == rule.protocol && r.external_port == rule.external_port)
        {
            return Err(error(format!(
                "{:?} port {} is already forwarded",
                rule.protocol, rule.external_port
            )));
        }
        self.rules.push(rule);
        Ok(self)
    }

    /// `vmnet_network_configuration_disable_dhcp`: guests configure their addresses
    /// themselves.
    pub fn disable_dhcp(&mut self) -> &mut Self {
        self.disable_dhcp = true;
        self
    }

    /// `vmnet_network_configuration_disable_dns_proxy`.
    pub fn disable_dns_proxy(&mut self) -> &mut Self {
        self.disable_dns_proxy = true;
        self
    }

    /// `vmnet_network_configuration_disable_nat44`.
    pub fn disable_nat44(&mut self) -> &mut Self {
        self.disable_nat44 = true;
        self
    }

    /// `vmnet_network_configuration_disable_nat66`.
    pub fn disable_nat66(&mut self) -> &mut Self {
        self.disable_nat66 = true;
        self
    }

    /// `vmnet_network_configuration_disable_router_advertisement`.
    pub fn disable_router_advertisement(&mut self) -> &mut Self {
        self.disable_router_advertisement = true;
        self
    }

    /// Makes the C configuration and applies every setting.
    fn build(&self) -> Result<vmnet::Configuration, VZError> {
        let mode = match self.mode {
            VmnetMode::Host => vmnet::HOST_MODE,
            VmnetMode::Shared => vmnet::SHARED_MODE,
        };
        let config = vmnet::Configuration::create(mode)
            .ok_or_else(unsupported)?
            .map_err(|status| failed("vmnet_network_configuration_create", status))?;
        if let Some(subnet) = self.subnet {
            check(
                "vmnet_network_configuration_set_ipv4_subnet",
                config.set_ipv4_subnet(subnet.host_address.octets(), subnet.mask.octets()),
            )?;
        }
        if let Some(mtu) = self.mtu {
            check("vmnet_network_configuration_set_mtu", config.set_mtu(mtu))?;
        }
        if let Some(name) = &self.external_interface {
            check(
                "vmnet_network_configuration_set_external_interface",
                config.set_external_interface(name),
            )?;
        }
        for (mac, address) in &self.reservations {
            check(
                "vmnet_network_configuration_add_dhcp_reservation",
                config.add_dhcp_reservation(mac.octets(), address.octets()),
            )?;
        }
        for rule in &self.rules {
            check(
                "vmnet_network_configuration_add_port_forwarding_rule",
                config.add_ipv4_port_forwarding_rule(
                    rule.protocol.raw(),
                    rule.internal_port,
                    rule.external_port,
                    rule.internal_address.octets(),
                ),
            )?;
        }
        if self.disable_dhcp {
            config.disable_dhcp();
        }
        if self.disable_dns_proxy {
            config.disable_dns_proxy();
        }
        if self.disable_nat44 {
            config.disable_nat44();
        }
        if self.disable_nat66 {
            config.disable_nat66();
        }
        if self.disable_router_advertisement {
            config.disable_router_advertisement();
        }
        Ok(config)
    }
}

// ---------------------------------------------------------------------------------
// The network
// ---------------------------------------------------------------------------------

/// A vmnet network (`vmnet_network_ref`), reserved for as long as a clone of it
/// lives: the last clone dropped releases it (`CFRelease`).
///
/// Clones share one network. Every [`VmnetNetworkDeviceAttachment`] holds a clone, so
/// a network outlives the attachments (and virtual machine configurations) that use
/// it.
#[derive(Clone, Debug)]
pub struct VmnetNetwork {
    inner: Arc<vmnet::Network>,
}

impl VmnetNetwork {
    /// `vmnet_network_configuration_create` with the builder's mode, each setting,
    /// then `vmnet_network_create`; the C configuration is released afterwards.
    ///
    /// # Errors
    ///
    /// - [`VZError::Unsupported`] (`min_macos: "26.0"`) before macOS 26, where the
    ///   vmnet functions are not even looked up;
    /// - [`VZError::Vmnet`] naming the vmnet function and its `vmnet_return_t`, for
    ///   example `VMNET_SHARING_SERVICE_BUSY` when the subnet is taken.
    pub fn new(config: &VmnetNetworkConfiguration) -> Result<Self, VZError> {
        check_support()?;
        let c_config = config.build()?;
        let network = c_config
            .create_network()
            .map_err(|status| failed("vmnet_network_create", status))?;
        drop(c_config);
        Ok(Self {
            inner: Arc::new(network),
        })
    }

    /// `vmnet_network_get_ipv4_subnet`: the subnet the network has (the one vmnet
    /// picked, when none was set). vmnet reports the subnet address and mask; the
    /// host address is the second address of the range.
    pub fn ipv4_subnet(&self) -> VmnetSubnet {
        let (address, mask) = self.inner.ipv4_subnet();
        let mask = Ipv4Addr::from(mask);
        let network = u32::from(Ipv4Addr::from(address)) & u32::from(mask);
        VmnetSubnet {
            host_address: Ipv4Addr::from(network.wrapping_add(1)),
            mask,
        }
    }

    /// `vmnet_network_copy_serialization`: an XPC object another process of the same
    /// app can rebuild this network from ([`from_serialization`](Self::from_serialization)).
    ///
    /// # Errors
    ///
    /// [`VZError::Vmnet`] with the status vmnet returned.
    pub fn copy_serialization(&self) -> Result<VmnetNetworkSerialization, VZError> {
        self.inner
            .copy_serialization()
            .map_err(|status| failed("vmnet_network_copy_serialization", status))
    }

    /// `vmnet_network_create_with_serialization`: this process's handle on the
    /// network another process (or this one) serialized. The result is a network of
    /// this process, so it can be attached here; a `vmnet_network_ref` of another
    /// process never can (its interface fails to start), which is why no other way
    /// in is offered.
    ///
    /// # Errors
    ///
    /// - [`VZError::Unsupported`] (`min_macos: "26.0"`) before macOS 26;
    /// - [`VZError::Vmnet`] with the status vmnet returned.
    pub fn from_serialization(serialization: &VmnetNetworkSerialization) -> Result<Self, VZError> {
        check_support()?;
        let network = serialization
            .create_network()
            .map_err(|status| failed("vmnet_network_create_with_serialization", status))?;
        Ok(Self {
            inner: Arc::new(network),
        })
    }

    /// How many values share this network: its clones and the attachments holding
    /// one.
    pub fn reference_count(&self) -> usize {
        Arc::strong_count(&self.inner)
    }
}

// ---------------------------------------------------------------------------------
// The attachment
// ---------------------------------------------------------------------------------

/// `VZVmnetNetworkDeviceAttachment` (macOS 26): a network device on a
/// [`VmnetNetwork`]. It holds a clone of the network, so the network lives at least
/// as long as the attachment; Apple does not document whether the framework object
/// retains it.
#[derive(Debug)]
pub struct VmnetNetworkDeviceAttachment {
    obj: Id,
    network: VmnetNetwork,
}

impl VmnetNetworkDeviceAttachment {
    /// `-[VZVmnetNetworkDeviceAttachment initWithNetwork:]`.
    ///
    /// The network must have been created in this process (a [`VmnetNetwork`]
    /// always is).
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] (`min_macos: "26.0"`) before macOS 26 (which cannot
    /// happen with a network made by [`VmnetNetwork::new`]).
    ///
    /// # Panics
    ///
    /// Only if the initializer returns nil for a valid network (out of memory).
    pub fn new(network: &VmnetNetwork) -> Result<Self, VZError> {
        let class = class_since(class!("VZVmnetNetworkDeviceAttachment"), FEATURE, MIN_MACOS)?;
        let obj = in_pool!(attachment_init(class.alloc(), &network.inner)).unwrap_or_else(|| {
            panic!("-[VZVmnetNetworkDeviceAttachment initWithNetwork:] returned nil")
        });
        Ok(Self {
            obj,
            network: network.clone(),
        })
    }

    /// The network this attachment is on.
    pub fn network(&self) -> &VmnetNetwork {
        &self.network
    }

    /// Whether the framework object's `network` is the network given to `new`.
    pub fn is_attached_to(&self, network: &VmnetNetwork) -> bool {
        let raw = in_pool!(attachment_network(&self.obj));
        core::ptr::eq(raw, network.inner.as_ptr())
    }
}

impl AsObject for VmnetNetworkDeviceAttachment {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}
