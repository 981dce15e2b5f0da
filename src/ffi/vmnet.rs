//! The vmnet C API of macOS 26 (`vmnet_network_configuration_*`, `vmnet_network_*`),
//! resolved at run time.
//!
//! Linking these symbols would make dyld refuse to launch the binary on macOS 11–15,
//! so they are looked up with `dlopen`/`dlsym` the first time a vmnet network is
//! made, after the caller has checked that the OS is new enough. In the Linux
//! simulator the same lookup goes through `sim_vmnet_dlopen`/`sim_vmnet_dlsym`
//! (tests/sim/csrc/vmnet.c), which answer like the real loader for the release the
//! simulator plays.
//!
//! Types (vz-api.tsv, rows `vmnet`): `vmnet_return_t` and `vmnet_mode_t` are
//! `uint32_t`; configuration and network refs are opaque pointers released with
//! `CFRelease`; `struct in_addr` holds the address in network byte order.

use core::ffi::{CStr, c_char, c_void};
use core::ptr::NonNull;
use std::sync::OnceLock;

use super::runtime::IntoArg;
use crate::error::VZError;

/// `VMNET_SUCCESS`.
pub(crate) const SUCCESS: u32 = 1000;
/// `VMNET_FAILURE`, reported when a function returns NULL yet says success.
const FAILURE: u32 = 1001;
/// `VMNET_HOST_MODE`.
pub(crate) const HOST_MODE: u32 = 1000;
/// `VMNET_SHARED_MODE`.
pub(crate) const SHARED_MODE: u32 = 1001;
/// `IPPROTO_TCP`.
pub(crate) const IPPROTO_TCP: u8 = 6;
/// `IPPROTO_UDP`.
pub(crate) const IPPROTO_UDP: u8 = 17;
/// `AF_INET` (2 on macOS and Linux alike).
const AF_INET: u8 = 2;

const FRAMEWORK: &CStr = c"/System/Library/Frameworks/vmnet.framework/vmnet";

/// `struct in_addr`: the address in network byte order.
#[repr(C)]
#[derive(Clone, Copy)]
struct InAddr {
    s_addr: u32,
}

impl InAddr {
    fn new(octets: [u8; 4]) -> Self {
        Self {
            s_addr: u32::from_ne_bytes(octets),
        }
    }

    fn octets(self) -> [u8; 4] {
        self.s_addr.to_ne_bytes()
    }
}

type Ref = *mut c_void;

type CreateConfiguration = unsafe extern "C" fn(u32, *mut u32) -> Ref;
type CreateNetwork = unsafe extern "C" fn(Ref, *mut u32) -> Ref;
type AddDhcpReservation = unsafe extern "C" fn(Ref, *const [u8; 6], *const InAddr) -> u32;
type AddPortForwardingRule = unsafe extern "C" fn(Ref, u8, u8, u16, u16, *const c_void) -> u32;
type Disable = unsafe extern "C" fn(Ref);
type SetExternalInterface = unsafe extern "C" fn(Ref, *const c_char) -> u32;
type SetIpv4Subnet = unsafe extern "C" fn(Ref, *const InAddr, *const InAddr) -> u32;
type SetMtu = unsafe extern "C" fn(Ref, u32) -> u32;
type GetIpv4Subnet = unsafe extern "C" fn(Ref, *mut InAddr, *mut InAddr);
type Release = unsafe extern "C" fn(*const c_void);
type CopySerialization = unsafe extern "C" fn(Ref, *mut u32) -> Ref;
type CreateWithSerialization = unsafe extern "C" fn(Ref, *mut u32) -> Ref;
type XpcRetain = unsafe extern "C" fn(Ref) -> Ref;
type XpcRelease = unsafe extern "C" fn(Ref);

/// The resolved functions, with the signatures of vz-api.tsv.
struct Api {
    configuration_create: CreateConfiguration,
    network_create: CreateNetwork,
    add_dhcp_reservation: AddDhcpReservation,
    add_port_forwarding_rule: AddPortForwardingRule,
    disable_dhcp: Disable,
    disable_dns_proxy: Disable,
    disable_nat44: Disable,
    disable_nat66: Disable,
    disable_router_advertisement: Disable,
    set_external_interface: SetExternalInterface,
    set_ipv4_subnet: SetIpv4Subnet,
    set_mtu: SetMtu,
    get_ipv4_subnet: GetIpv4Subnet,
    cf_release: Release,
    copy_serialization: CopySerialization,
    create_with_serialization: CreateWithSerialization,
    xpc_retain: XpcRetain,
    xpc_release: XpcRelease,
}

#[cfg(arcbox_vz_sim)]
unsafe extern "C" {
    /// The simulator's stand-ins for `dlopen`/`dlsym` (tests/sim/csrc/vmnet.c).
    fn sim_vmnet_dlopen(path: *const c_char, mode: core::ffi::c_int) -> *mut c_void;
    fn sim_vmnet_dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}

fn open(path: &CStr) -> *mut c_void {
    let mode = super::sys::RTLD_LAZY | super::sys::RTLD_LOCAL;
    #[cfg(arcbox_vz_sim)]
    // SAFETY: `path` is NUL-terminated; the stand-in only compares it.
    let handle = unsafe { sim_vmnet_dlopen(path.as_ptr(), mode) };
    #[cfg(not(arcbox_vz_sim))]
    // SAFETY: `path` is NUL-terminated; dlopen of a system framework runs no code of
    // ours, and the handle is never closed (the functions stay in use).
    let handle = unsafe { super::sys::dlopen(path.as_ptr(), mode) };
    handle
}

fn symbol(handle: *mut c_void, name: &CStr) -> Option<NonNull<c_void>> {
    #[cfg(arcbox_vz_sim)]
    // SAFETY: `handle` came from sim_vmnet_dlopen and `name` is NUL-terminated.
    let found = unsafe { sim_vmnet_dlsym(handle, name.as_ptr()) };
    #[cfg(not(arcbox_vz_sim))]
    // SAFETY: `handle` came from dlopen and is never closed; `name` is NUL-terminated.
    // A dlopen handle finds the image's dependencies' symbols too (CFRelease,
    // xpc_release); RTLD_DEFAULT is the fallback for those.
    let found = unsafe {
        let found = super::sys::dlsym(handle, name.as_ptr());
        if found.is_null() && !name.to_bytes().starts_with(b"vmnet_") {
            super::sys::dlsym(super::sys::rtld_default(), name.as_ptr())
        } else {
            found
        }
    };
    NonNull::new(found)
}

/// Resolves `$name` as a function of type `$ty`, or returns `None` from `load`.
macro_rules! resolve {
    ($handle:expr, $name:literal, $ty:ty) => {{
        let f = symbol($handle, $name)?;
        // SAFETY: the symbol is the C function of that name, whose signature (from
        // vz-api.tsv) is the field type this is assigned to; a data pointer and a
        // function pointer have the same size and representation on every target.
        unsafe { core::mem::transmute::<*mut c_void, $ty>(f.as_ptr()) }
    }};
}

fn load() -> Option<Api> {
    let handle = open(FRAMEWORK);
    if handle.is_null() {
        return None;
    }
    Some(Api {
        configuration_create: resolve!(
            handle,
            c"vmnet_network_configuration_create",
            CreateConfiguration
        ),
        network_create: resolve!(handle, c"vmnet_network_create", CreateNetwork),
        add_dhcp_reservation: resolve!(
            handle,
            c"vmnet_network_configuration_add_dhcp_reservation",
            AddDhcpReservation
        ),
        add_port_forwarding_rule: resolve!(
            handle,
            c"vmnet_network_configuration_add_port_forwarding_rule",
            AddPortForwardingRule
        ),
        disable_dhcp: resolve!(handle, c"vmnet_network_configuration_disable_dhcp", Disable),
        disable_dns_proxy: resolve!(
            handle,
            c"vmnet_network_configuration_disable_dns_proxy",
            Disable
        ),
        disable_nat44: resolve!(
            handle,
            c"vmnet_network_configuration_disable_nat44",
            Disable
        ),
        disable_nat66: resolve!(
            handle,
            c"vmnet_network_configuration_disable_nat66",
            Disable
        ),
        disable_router_advertisement: resolve!(
            handle,
            c"vmnet_network_configuration_disable_router_advertisement",
            Disable
        ),
        set_external_interface: resolve!(
            handle,
            c"vmnet_network_configuration_set_external_interface",
            SetExternalInterface
        ),
        set_ipv4_subnet: resolve!(
            handle,
            c"vmnet_network_configuration_set_ipv4_subnet",
            SetIpv4Subnet
        ),
        set_mtu: resolve!(handle, c"vmnet_network_configuration_set_mtu", SetMtu),
        get_ipv4_subnet: resolve!(handle, c"vmnet_network_get_ipv4_subnet", GetIpv4Subnet),
        // vmnet links CoreFoundation, so dlsym through its handle finds CFRelease.
        cf_release: resolve!(handle, c"CFRelease", Release),
        copy_serialization: resolve!(
            handle,
            c"vmnet_network_copy_serialization",
            CopySerialization
        ),
        create_with_serialization: resolve!(
            handle,
            c"vmnet_network_create_with_serialization",
            CreateWithSerialization
        ),
        // libxpc is part of libSystem, which vmnet links.
        xpc_retain: resolve!(handle, c"xpc_retain", XpcRetain),
        xpc_release: resolve!(handle, c"xpc_release", XpcRelease),
    })
}

/// The vmnet functions, or `None` when this OS does not have them (before macOS 26).
fn api() -> Option<&'static Api> {
    static API: OnceLock<Option<Api>> = OnceLock::new();
    API.get_or_init(load).as_ref()
}

/// Whether the vmnet network API could be resolved.
pub(crate) fn available() -> bool {
    api().is_some()
}

/// An owned (+1) `vmnet_network_configuration_ref`, released with `CFRelease`.
pub(crate) struct Configuration {
    ptr: NonNull<c_void>,
    api: &'static Api,
}

impl Configuration {
    /// `vmnet_network_configuration_create`. `None` when vmnet is unavailable, else
    /// the configuration or the status it failed with.
    pub(crate) fn create(mode: u32) -> Option<Result<Self, u32>> {
        let api = api()?;
        let mut status = SUCCESS;
        // SAFETY: `mode` is a plain integer (vmnet validates it) and `status` a
        // valid out pointer.
        let ptr = unsafe { (api.configuration_create)(mode, &raw mut status) };
        Some(match NonNull::new(ptr) {
            Some(ptr) if status == SUCCESS => Ok(Self { ptr, api }),
            Some(ptr) => {
                // SAFETY: a +1 object we own and do not use again.
                unsafe { (api.cf_release)(ptr.as_ptr()) };
                Err(status)
            }
            None => Err(if status == SUCCESS { FAILURE } else { status }),
        })
    }

    pub(crate) fn set_ipv4_subnet(&self, address: [u8; 4], mask: [u8; 4]) -> u32 {
        let (address, mask) = (InAddr::new(address), InAddr::new(mask));
        // SAFETY: `self.ptr` is a live configuration; both pointers are to locals.
        unsafe {
            (self.api.set_ipv4_subnet)(self.ptr.as_ptr(), &raw const address, &raw const mask)
        }
    }

    pub(crate) fn set_mtu(&self, mtu: u32) -> u32 {
        // SAFETY: `self.ptr` is a live configuration.
        unsafe { (self.api.set_mtu)(self.ptr.as_ptr(), mtu) }
    }

    pub(crate) fn set_external_interface(&self, name: &CStr) -> u32 {
        // SAFETY: `self.ptr` is a live configuration; `name` is NUL-terminated and
        // outlives the call.
        unsafe { (self.api.set_external_interface)(self.ptr.as_ptr(), name.as_ptr()) }
    }

    pub(crate) fn add_dhcp_reservation(&self, mac: [u8; 6], address: [u8; 4]) -> u32 {
        let address = InAddr::new(address);
        // SAFETY: `self.ptr` is a live configuration; `ether_addr_t` is six bytes and
        // both pointers are to locals.
        unsafe {
            (self.api.add_dhcp_reservation)(self.ptr.as_ptr(), &raw const mac, &raw const address)
        }
    }

    /// An IPv4 rule; ports in host byte order.
    pub(crate) fn add_ipv4_port_forwarding_rule(
        &self,
        protocol: u8,
        internal_port: u16,
        external_port: u16,
        internal_address: [u8; 4],
    ) -> u32 {
        let address = InAddr::new(internal_address);
        // SAFETY: `self.ptr` is a live configuration; with AF_INET the address
        // argument is a `struct in_addr *`, here a local.
        unsafe {
            (self.api.add_port_forwarding_rule)(
                self.ptr.as_ptr(),
                protocol,
                AF_INET,
                internal_port,
                external_port,
                (&raw const address).cast(),
            )
        }
    }

    pub(crate) fn disable_dhcp(&self) {
        // SAFETY: `self.ptr` is a live configuration.
        unsafe { (self.api.disable_dhcp)(self.ptr.as_ptr()) }
    }

    pub(crate) fn disable_dns_proxy(&self) {
        // SAFETY: `self.ptr` is a live configuration.
        unsafe { (self.api.disable_dns_proxy)(self.ptr.as_ptr()) }
    }

    pub(crate) fn disable_nat44(&self) {
        // SAFETY: `self.ptr` is a live configuration.
        unsafe { (self.api.disable_nat44)(self.ptr.as_ptr()) }
    }

    pub(crate) fn disable_nat66(&self) {
        // SAFETY: `self.ptr` is a live configuration.
        unsafe { (self.api.disable_nat66)(self.ptr.as_ptr()) }
    }

    pub(crate) fn disable_router_advertisement(&self) {
        // SAFETY: `self.ptr` is a live configuration.
        unsafe { (self.api.disable_router_advertisement)(self.ptr.as_ptr()) }
    }

    /// `vmnet_network_create`: the network or the status it failed with.
    pub(crate) fn create_network(&self) -> Result<Network, u32> {
        let mut status = SUCCESS;
        // SAFETY: `self.ptr` is a live configuration and `status` a valid out pointer.
        let ptr = unsafe { (self.api.network_create)(self.ptr.as_ptr(), &raw mut status) };
        Network::from_create(self.api, ptr, status)
    }
}

impl Drop for Configuration {
    fn drop(&mut self) {
        // SAFETY: we own one reference; the network made from it holds its own.
        unsafe { (self.api.cf_release)(self.ptr.as_ptr()) }
    }
}

/// An owned (+1) `vmnet_network_ref`, released with `CFRelease`.
pub(crate) struct Network {
    ptr: NonNull<c_void>,
    api: &'static Api,
}

// SAFETY: a vmnet network is a CoreFoundation object: retain and release are atomic,
// and after vmnet_network_create it is never mutated through this type (only read
// with vmnet_network_get_ipv4_subnet and passed to VZ).
unsafe impl Send for Network {}
// SAFETY: as above.
unsafe impl Sync for Network {}

impl Network {
    /// What a `vmnet_network_create…` call returned: the network, or the status it
    /// failed with (a network returned with a failure status is released).
    fn from_create(api: &'static Api, ptr: *mut c_void, status: u32) -> Result<Self, u32> {
        match NonNull::new(ptr) {
            Some(ptr) if status == SUCCESS => Ok(Self { ptr, api }),
            Some(ptr) => {
                // SAFETY: a +1 object we own and do not use again.
                unsafe { (api.cf_release)(ptr.as_ptr()) };
                Err(status)
            }
            None => Err(if status == SUCCESS { FAILURE } else { status }),
        }
    }

    /// The raw `vmnet_network_ref`, valid while `self` lives.
    pub(crate) fn as_ptr(&self) -> *const c_void {
        self.ptr.as_ptr()
    }

    /// `vmnet_network_get_ipv4_subnet`: `(subnet address, mask)`.
    pub(crate) fn ipv4_subnet(&self) -> ([u8; 4], [u8; 4]) {
        let mut address = InAddr { s_addr: 0 };
        let mut mask = InAddr { s_addr: 0 };
        // SAFETY: `self.ptr` is a live network; both out pointers are to locals.
        unsafe {
            (self.api.get_ipv4_subnet)(self.ptr.as_ptr(), &raw mut address, &raw mut mask);
        }
        (address.octets(), mask.octets())
    }
}

impl Network {
    /// `vmnet_network_copy_serialization`: the serialization or the status it failed
    /// with.
    pub(crate) fn copy_serialization(&self) -> Result<VmnetNetworkSerialization, u32> {
        let mut status = SUCCESS;
        // SAFETY: `self.ptr` is a live network and `status` a valid out pointer; the
        // result is +1 (released with xpc_release).
        let ptr = unsafe { (self.api.copy_serialization)(self.ptr.as_ptr(), &raw mut status) };
        match NonNull::new(ptr) {
            Some(ptr) if status == SUCCESS => Ok(VmnetNetworkSerialization { ptr, api: self.api }),
            Some(ptr) => {
                // SAFETY: a +1 object we own and do not use again.
                unsafe { (self.api.xpc_release)(ptr.as_ptr()) };
                Err(status)
            }
            None => Err(if status == SUCCESS { FAILURE } else { status }),
        }
    }
}

/// A vmnet network turned into an XPC object (`vmnet_network_copy_serialization`),
/// to hand to another process of the same app, which rebuilds the network with
/// [`VmnetNetwork::from_serialization`](crate::VmnetNetwork::from_serialization).
///
/// The crate does not send it: pass [`as_raw_xpc_object`](Self::as_raw_xpc_object)
/// to your own XPC connection (for example as a value of an XPC dictionary, which
/// retains it), and on the other side wrap the received object with
/// [`from_raw_xpc_object`](Self::from_raw_xpc_object). Dropping it releases the XPC
/// object (`xpc_release`).
pub struct VmnetNetworkSerialization {
    ptr: NonNull<c_void>,
    api: &'static Api,
}

// SAFETY: XPC objects are reference counted atomically, and this type never mutates
// the serialization (vmnet only reads it).
unsafe impl Send for VmnetNetworkSerialization {}
// SAFETY: as above.
unsafe impl Sync for VmnetNetworkSerialization {}

impl VmnetNetworkSerialization {
    /// The `xpc_object_t`, valid while `self` lives (+0: retain it to keep it longer).
    pub fn as_raw_xpc_object(&self) -> *mut c_void {
        self.ptr.as_ptr()
    }

    /// Wraps an `xpc_object_t` received from another process, taking a reference of
    /// its own (`xpc_retain`): the caller keeps its reference.
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`](crate::VZError::Unsupported) (`min_macos: "26.0"`)
    /// before macOS 26; [`VZError::InvalidArgument`](crate::VZError::InvalidArgument)
    /// for a null pointer.
    ///
    /// # Safety
    ///
    /// `object` must be null or a live XPC object made by
    /// `vmnet_network_copy_serialization` (in this or another process of the app).
    pub unsafe fn from_raw_xpc_object(object: *mut c_void) -> Result<Self, VZError> {
        let api = api().ok_or(VZError::Unsupported {
            feature: "vmnet networks",
            min_macos: "26.0",
        })?;
        let ptr = NonNull::new(object).ok_or_else(|| {
            VZError::invalid_argument("vmnet network serialization", "the XPC object is null")
        })?;
        // SAFETY: the caller promises a live XPC object; xpc_retain returns it.
        unsafe { (api.xpc_retain)(ptr.as_ptr()) };
        Ok(Self { ptr, api })
    }

    /// `vmnet_network_create_with_serialization`: the network or the status it failed
    /// with.
    pub(crate) fn create_network(&self) -> Result<Network, u32> {
        let mut status = SUCCESS;
        let ptr =
            // SAFETY: `self.ptr` is a live serialization and `status` a valid out pointer.
            unsafe { (self.api.create_with_serialization)(self.ptr.as_ptr(), &raw mut status) };
        Network::from_create(self.api, ptr, status)
    }
}

impl Clone for VmnetNetworkSerialization {
    fn clone(&self) -> Self {
        // SAFETY: `self.ptr` is live; the clone owns the new reference.
        unsafe { (self.api.xpc_retain)(self.ptr.as_ptr()) };
        Self {
            ptr: self.ptr,
            api: self.api,
        }
    }
}

impl Drop for VmnetNetworkSerialization {
    fn drop(&mut self) {
        // SAFETY: we own one reference and drop it once.
        unsafe { (self.api.xpc_release)(self.ptr.as_ptr()) }
    }
}

impl std::fmt::Debug for VmnetNetworkSerialization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("VmnetNetworkSerialization")
            .field(&self.ptr)
            .finish()
    }
}

/// A live network as the `vmnet_network_ref` argument of a message
/// (`initWithNetwork:`): only a borrowed, live [`Network`] can be passed.
impl IntoArg for &Network {
    type Raw = *const c_void;
    fn into_arg(self) -> *const c_void {
        self.ptr.as_ptr()
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // SAFETY: we own one reference and drop it once.
        unsafe { (self.api.cf_release)(self.ptr.as_ptr()) }
    }
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("vmnet_network_ref").field(&self.ptr).finish()
    }
}
