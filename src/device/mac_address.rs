//! `VZMACAddress`: [`MACAddress`], the address of a network device. In a file of its
//! own so that both the network devices (`network.rs`) and the vmnet attachment
//! (`vmnet.rs`) can use it without depending on each other.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use crate::configuration::base_class;
use crate::error::VZError;
use crate::ffi::foundation;
use crate::ffi::runtime::{Allocated, ClassRef, Id, class, in_pool, objc_methods};

objc_methods! {
    fn mac_init_with_string(mac: Allocated, string: &Id) -> Option<Id> = "initWithString:";
    fn mac_random(class: ClassRef) -> Option<Id> = "randomLocallyAdministeredAddress";
    fn mac_string(mac: &Id) -> Option<Id> = "string";
    fn mac_is_broadcast(mac: &Id) -> bool = "isBroadcastAddress";
    fn mac_is_multicast(mac: &Id) -> bool = "isMulticastAddress";
    fn mac_is_unicast(mac: &Id) -> bool = "isUnicastAddress";
    fn mac_is_locally_administered(mac: &Id) -> bool = "isLocallyAdministeredAddress";
    fn mac_is_universally_administered(mac: &Id) -> bool = "isUniversallyAdministeredAddress";
}

const MAC_FORMAT: &str = concat!(
    "expected six two-digit hexadecimal groups separated by ':' (or all by '-'), ",
    "like 01:23:45:ab:cd:ef"
);

/// Parses `01:23:45:ab:cd:ef` (either case, or `-` as the separator throughout).
fn parse_octets(s: &str) -> Result<[u8; 6], String> {
    if s.is_empty() {
        return Err(format!("the string is empty; {MAC_FORMAT}"));
    }
    let separator = match (s.contains(':'), s.contains('-')) {
        (true, true) => {
            return Err(format!("{s:?} mixes ':' and '-' separators; {MAC_FORMAT}"));
        }
        (false, true) => '-',
        _ => ':',
    };
    let groups: Vec<&str> = s.split(separator).collect();
    if groups.len() == 1 {
        return Err(format!("{s:?} has no ':' or '-' separators; {MAC_FORMAT}"));
    }
    if groups.len() != 6 {
        return Err(format!(
            "{s:?} has {} groups, not 6; {MAC_FORMAT}",
            groups.len()
        ));
    }
    let mut octets = [0u8; 6];
    for (i, (group, octet)) in groups.iter().zip(&mut octets).enumerate() {
        if group.len() != 2 || !group.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "group {} of {s:?} ({group:?}) is not two hexadecimal digits; {MAC_FORMAT}",
                i + 1
            ));
        }
        *octet = u8::from_str_radix(group, 16).map_err(|e| format!("{group:?}: {e}"))?;
    }
    Ok(octets)
}

pub(super) fn format_octets(o: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        o[0], o[1], o[2], o[3], o[4], o[5]
    )
}

/// `VZMACAddress`: a 48-bit Ethernet MAC address for a network device.
///
/// Parse one with [`parse`](Self::parse) (or `str::parse`), build one from bytes with
/// [`from_octets`](Self::from_octets), or make a random one with
/// [`random_locally_administered`](Self::random_locally_administered). It prints
/// (`Display`) in the framework's lowercase colon form, `01:23:45:ab:cd:ef`.
///
/// Equality and hashing compare the six octets.
///
/// ```no_run
/// # fn main() -> Result<(), arcbox_vz::VZError> {
/// use arcbox_vz::MACAddress;
///
/// let mac: MACAddress = "52:54:00:AB:CD:EF".parse()?;
/// assert_eq!(mac.to_string(), "52:54:00:ab:cd:ef");
/// assert!(mac.is_unicast() && mac.is_locally_administered());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MACAddress {
    pub(super) obj: Id,
    pub(super) octets: [u8; 6],
}

impl MACAddress {
    /// `-[VZMACAddress initWithString:]`: parses a MAC address.
    ///
    /// The string is six groups of exactly two hexadecimal digits (either case),
    /// separated by `:` or, throughout, by `-` (`01-23-45-ab-cd-ef`, which is converted
    /// to the colon form the framework takes). Single-digit groups (`0:1:2:3:4:5`),
    /// surrounding whitespace and mixed separators are refused, so every accepted
    /// string names exactly one address. The string is checked in Rust first, so
    /// `initWithString:` only ever sees a well-formed colon string; the by-value
    /// `ether_addr_t` initializer (`initWithEthernetAddress:`) is never used.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] with argument `"MAC address"` when the string is
    /// not in that form.
    pub fn parse(s: &str) -> Result<Self, VZError> {
        let octets =
            parse_octets(s).map_err(|reason| VZError::invalid_argument("MAC address", reason))?;
        Self::with_octets(octets).ok_or_else(|| {
            VZError::invalid_argument("MAC address", format!("VZMACAddress refused {s:?}"))
        })
    }

    /// `-[VZMACAddress initWithString:]` with the colon form of `octets`.
    ///
    /// # Panics
    ///
    /// Only if the framework refuses a well-formed address, which it does not.
    pub fn from_octets(octets: [u8; 6]) -> Self {
        Self::with_octets(octets)
            .unwrap_or_else(|| panic!("VZMACAddress refused {}", format_octets(&octets)))
    }

    fn with_octets(octets: [u8; 6]) -> Option<Self> {
        let class = base_class(class!("VZMACAddress"));
        let string = format_octets(&octets);
        let obj = in_pool!(mac_init_with_string(
            class.alloc(),
            &foundation::ns_string(&string)
        ))?;
        Some(Self { obj, octets })
    }

    /// `+[VZMACAddress randomLocallyAdministeredAddress]`: a random, locally
    /// administered, unicast address. Random addresses are not guaranteed to be
    /// unique; keep the one a virtual machine got if its guest should keep its
    /// network identity (DHCP leases) across boots.
    ///
    /// # Panics
    ///
    /// Only if the framework returns nil, which it does not.
    pub fn random_locally_administered() -> Self {
        let class = base_class(class!("VZMACAddress"));
        let obj = in_pool!(mac_random(class)).unwrap_or_else(|| {
            panic!("+[VZMACAddress randomLocallyAdministeredAddress] returned nil: out of memory")
        });
        Self::from_object(obj)
    }

    /// Wraps a `VZMACAddress` the framework handed out.
    pub(super) fn from_object(obj: Id) -> Self {
        let octets = parse_octets(&mac_string_of(&obj)).unwrap_or_default();
        Self { obj, octets }
    }

    /// The six octets, parsed from the framework's `string`.
    pub fn octets(&self) -> [u8; 6] {
        self.octets
    }

    /// `isBroadcastAddress`: whether this is `ff:ff:ff:ff:ff:ff`.
    pub fn is_broadcast(&self) -> bool {
        in_pool!(mac_is_broadcast(&self.obj))
    }

    /// `isMulticastAddress`: whether the group bit (the low bit of the first octet)
    /// is set. The broadcast address is a multicast address too.
    pub fn is_multicast(&self) -> bool {
        in_pool!(mac_is_multicast(&self.obj))
    }

    /// `isUnicastAddress`: whether the group bit is clear. Only unicast addresses can
    /// be given to a network device.
    pub fn is_unicast(&self) -> bool {
        in_pool!(mac_is_unicast(&self.obj))
    }

    /// `isLocallyAdministeredAddress`: whether the locally-administered bit (bit 1 of
    /// the first octet) is set, as for addresses that no vendor assigned.
    pub fn is_locally_administered(&self) -> bool {
        in_pool!(mac_is_locally_administered(&self.obj))
    }

    /// `isUniversallyAdministeredAddress`: whether the locally-administered bit is
    /// clear (a vendor-assigned, OUI-based address).
    pub fn is_universally_administered(&self) -> bool {
        in_pool!(mac_is_universally_administered(&self.obj))
    }
}

fn mac_string_of(obj: &Id) -> String {
    in_pool!({
        mac_string(obj)
            .as_ref()
            .map(foundation::string_from)
            .unwrap_or_default()
    })
}

impl FromStr for MACAddress {
    type Err = VZError;

    /// As [`MACAddress::parse`].
    fn from_str(s: &str) -> Result<Self, VZError> {
        Self::parse(s)
    }
}

/// `-[VZMACAddress string]`: lowercase hexadecimal with colons.
impl fmt::Display for MACAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mac_string_of(&self.obj))
    }
}

impl fmt::Debug for MACAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MACAddress")
            .field(&format_args!("{}", format_octets(&self.octets)))
            .finish()
    }
}

impl PartialEq for MACAddress {
    fn eq(&self, other: &Self) -> bool {
        self.octets == other.octets
    }
}

impl Eq for MACAddress {}

impl Hash for MACAddress {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.octets.hash(state);
    }
}
