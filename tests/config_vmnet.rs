//! vmnet networks (macOS 26): the configuration builder and its validation, the
//! network's ownership, the attachment and the typed vmnet errors, in the simulator.
#![cfg(arcbox_vz_sim)]

mod common;

use std::net::Ipv4Addr;
use std::sync::{Mutex, MutexGuard};

use arcbox_vz::{
    MACAddress, NetworkDeviceAttachment, VZError, VirtioNetworkDeviceConfiguration, VmnetError,
    VmnetMode, VmnetNetwork, VmnetNetworkConfiguration, VmnetNetworkDeviceAttachment,
    VmnetNetworkSerialization, VmnetPortForwardingRule, VmnetProtocol, VmnetStatus, VmnetSubnet,
};
use common::{TempDir, invalid_argument, macos, minimal_config, since};

unsafe extern "C" {
    /// Simulator (tests/sim/csrc/vmnet.c): live vmnet configurations and networks.
    fn sim_vmnet_live_objects() -> std::ffi::c_long;
}

fn live_vmnet_objects() -> std::ffi::c_long {
    // SAFETY: reads an atomic counter in the simulator.
    unsafe { sim_vmnet_live_objects() }
}

/// Tests that create networks take this: the object count and the subnets they
/// reserve are process-wide.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

const MASK_24: Ipv4Addr = Ipv4Addr::new(255, 255, 255, 0);

fn host_config(third: u8) -> VmnetNetworkConfiguration {
    let mut config = VmnetNetworkConfiguration::new(VmnetMode::Host);
    config
        .set_ipv4_subnet(Ipv4Addr::new(10, 77, third, 1), MASK_24)
        .unwrap();
    config
}

fn mac(s: &str) -> MACAddress {
    s.parse().unwrap()
}

// ---- validation: nothing reaches vmnet, at every release ----

#[test]
fn invalid_subnets_are_refused() {
    let mut config = VmnetNetworkConfiguration::new(VmnetMode::Shared);
    let cases = [
        ((8, 8, 8, 1), (255, 255, 255, 0), "private range"),
        ((172, 32, 0, 1), (255, 255, 0, 0), "private range"),
        ((10, 0, 0, 1), (254, 0, 0, 0), "private range"),
        ((192, 168, 105, 0), (255, 255, 255, 0), "network address"),
        ((192, 168, 105, 5), (255, 255, 255, 0), "pass 192.168.105.1"),
        ((192, 168, 105, 1), (255, 0, 255, 0), "not contiguous"),
        ((192, 168, 105, 1), (255, 255, 255, 254), "/31"),
        ((192, 168, 105, 1), (0, 0, 0, 0), "private range"),
    ];
    for ((a, b, c, d), (m1, m2, m3, m4), expected) in cases {
        let (argument, reason) = invalid_argument(
            config
                .set_ipv4_subnet(Ipv4Addr::new(a, b, c, d), Ipv4Addr::new(m1, m2, m3, m4))
                .map(|_| ())
                .unwrap_err(),
        );
        assert_eq!(argument, "IPv4 subnet");
        assert!(reason.contains(expected), "{a}.{b}.{c}.{d}: {reason}");
    }
    assert_eq!(config.ipv4_subnet(), None);
    for (address, mask) in [
        ("192.168.105.1", "255.255.255.0"),
        ("10.1.0.1", "255.255.0.0"),
        ("172.20.0.1", "255.255.240.0"),
        ("10.0.0.1", "255.0.0.0"),
        ("192.168.7.1", "255.255.255.252"),
    ] {
        let (address, mask) = (address.parse().unwrap(), mask.parse().unwrap());
        config.set_ipv4_subnet(address, mask).unwrap();
        assert_eq!(
            config.ipv4_subnet(),
            Some(VmnetSubnet {
                host_address: address,
                mask
            })
        );
    }
}

#[test]
fn mtu_out_of_range_is_refused() {
    let mut config = VmnetNetworkConfiguration::new(VmnetMode::Host);
    for mtu in [0, 576, 1279, 65536, u32::MAX] {
        let (argument, reason) = invalid_argument(config.set_mtu(mtu).map(|_| ()).unwrap_err());
        assert_eq!(argument, "MTU");
        assert!(reason.contains(&mtu.to_string()), "{reason}");
    }
    for mtu in [1280, 1500, 9000, 65535] {
        config.set_mtu(mtu).unwrap();
    }
}

#[test]
fn bad_dhcp_reservations_are_refused() {
    let mut config = VmnetNetworkConfiguration::new(VmnetMode::Host);
    let guest = mac("52:54:00:12:34:56");
    let (argument, reason) = invalid_argument(
        config
            .add_dhcp_reservation(&guest, Ipv4Addr::new(10, 5, 0, 10))
            .map(|_| ())
            .unwrap_err(),
    );
    assert_eq!(argument, "DHCP reservation");
    assert!(reason.contains("set_ipv4_subnet first"), "{reason}");

    config
        .set_ipv4_subnet(Ipv4Addr::new(10, 5, 0, 1), MASK_24)
        .unwrap();
    let cases = [
        (
            mac("01:00:5e:00:00:01"),
            Ipv4Addr::new(10, 5, 0, 10),
            "multicast",
        ),
        (
            mac("ff:ff:ff:ff:ff:ff"),
            Ipv4Addr::new(10, 5, 0, 10),
            "multicast",
        ),
        (
            mac("00:00:00:00:00:00"),
            Ipv4Addr::new(10, 5, 0, 10),
            "all zeros",
        ),
        (guest.clone(), Ipv4Addr::new(10, 5, 1, 10), "outside"),
        (guest.clone(), Ipv4Addr::new(10, 5, 0, 0), "reserves"),
        (guest.clone(), Ipv4Addr::new(10, 5, 0, 255), "reserves"),
        (guest.clone(), Ipv4Addr::new(10, 5, 0, 1), "host's address"),
    ];
    for (mac, address, expected) in cases {
        let (argument, reason) = invalid_argument(
            config
                .add_dhcp_reservation(&mac, address)
                .map(|_| ())
                .unwrap_err(),
        );
        assert_eq!(argument, "DHCP reservation");
        assert!(reason.contains(expected), "{mac} {address}: {reason}");
    }
    config
        .add_dhcp_reservation(&guest, Ipv4Addr::new(10, 5, 0, 10))
        .unwrap();
    for (mac, address) in [
        (guest.clone(), Ipv4Addr::new(10, 5, 0, 11)),
        (mac("52:54:00:00:00:02"), Ipv4Addr::new(10, 5, 0, 10)),
    ] {
        let (_, reason) = invalid_argument(
            config
                .add_dhcp_reservation(&mac, address)
                .map(|_| ())
                .unwrap_err(),
        );
        assert!(reason.contains("already reserved"), "{reason}");
    }
    // The subnet cannot move under the reservation.
    let (_, reason) = invalid_argument(
        config
            .set_ipv4_subnet(Ipv4Addr::new(10, 6, 0, 1), MASK_24)
            .map(|_| ())
            .unwrap_err(),
    );
    assert!(reason.contains("set the subnet first"), "{reason}");
}

#[test]
fn bad_port_forwarding_rules_are_refused() {
    for number in [0u8, 1, 58, 132, 255] {
        let (argument, reason) = invalid_argument(VmnetProtocol::try_from(number).unwrap_err());
        assert_eq!(argument, "port-forwarding protocol");
        assert!(reason.contains(&number.to_string()), "{reason}");
    }
    for name in ["sctp", "icmp", "", "tcp "] {
        let (argument, _) = invalid_argument(name.parse::<VmnetProtocol>().unwrap_err());
        assert_eq!(argument, "port-forwarding protocol");
    }
    assert_eq!(VmnetProtocol::try_from(6).unwrap(), VmnetProtocol::Tcp);
    assert_eq!("UDP".parse::<VmnetProtocol>().unwrap(), VmnetProtocol::Udp);

    let rule = |external_port, internal_address, internal_port| VmnetPortForwardingRule {
        protocol: VmnetProtocol::Tcp,
        external_port,
        internal_address,
        internal_port,
    };
    let guest = Ipv4Addr::new(10, 7, 0, 20);
    let mut config = VmnetNetworkConfiguration::new(VmnetMode::Shared);
    let (_, reason) = invalid_argument(
        config
            .add_port_forwarding_rule(rule(8080, guest, 80))
            .map(|_| ())
            .unwrap_err(),
    );
    assert!(reason.contains("set_ipv4_subnet first"), "{reason}");
    config
        .set_ipv4_subnet(Ipv4Addr::new(10, 7, 0, 1), MASK_24)
        .unwrap();
    for (r, expected) in [
        (rule(0, guest, 80), "port 0"),
        (rule(8080, guest, 0), "port 0"),
        (rule(8080, Ipv4Addr::new(10, 8, 0, 20), 80), "outside"),
        (rule(8080, Ipv4Addr::new(10, 7, 0, 1), 80), "host's address"),
    ] {
        let (argument, reason) =
            invalid_argument(config.add_port_forwarding_rule(r).map(|_| ()).unwrap_err());
        assert_eq!(argument, "port-forwarding rule");
        assert!(reason.contains(expected), "{r:?}: {reason}");
    }
    config
        .add_port_forwarding_rule(rule(8080, guest, 80))
        .unwrap();
    let (_, reason) = invalid_argument(
        config
            .add_port_forwarding_rule(rule(8080, guest, 81))
            .map(|_| ())
            .unwrap_err(),
    );
    assert!(reason.contains("already forwarded"), "{reason}");
}

#[test]
fn external_interface_is_for_shared_mode_only() {
    let mut host = VmnetNetworkConfiguration::new(VmnetMode::Host);
    let (argument, reason) =
        invalid_argument(host.set_external_interface("en0").map(|_| ()).unwrap_err());
    assert_eq!(argument, "external interface");
    assert!(reason.contains("shared-mode"), "{reason}");
    let mut shared = VmnetNetworkConfiguration::new(VmnetMode::Shared);
    for name in ["", "an-interface-name-too-long", "e\0n0"] {
        invalid_argument(shared.set_external_interface(name).map(|_| ()).unwrap_err());
    }
    shared.set_external_interface("en0").unwrap();
}

#[test]
fn every_vmnet_status_has_its_name() {
    let names = [
        (1001, "VMNET_FAILURE"),
        (1002, "VMNET_MEM_FAILURE"),
        (1003, "VMNET_INVALID_ARGUMENT"),
        (1004, "VMNET_SETUP_INCOMPLETE"),
        (1005, "VMNET_INVALID_ACCESS"),
        (1006, "VMNET_PACKET_TOO_BIG"),
        (1007, "VMNET_BUFFER_EXHAUSTED"),
        (1008, "VMNET_TOO_MANY_PACKETS"),
        (1009, "VMNET_SHARING_SERVICE_BUSY"),
        (1010, "VMNET_NOT_AUTHORIZED"),
    ];
    for (code, name) in names {
        let status = VmnetStatus::from_raw(code);
        assert_eq!(status.raw(), code);
        assert_eq!(status.name(), name);
        assert_eq!(status.to_string(), format!("{name} ({code})"));
    }
    assert_eq!(VmnetStatus::from_raw(4242), VmnetStatus::Unknown(4242));
    assert_eq!(VmnetStatus::from_raw(4242).raw(), 4242);
}

// ---- networks and attachments ----

#[test]
fn before_macos_26_networks_are_unsupported() {
    let _serial = serial();
    let config = host_config(1);
    let network = since("26.0", VmnetNetwork::new(&config));
    assert_eq!(network.is_some(), macos("26.0"));
    if let Err(VZError::Unsupported { feature, .. }) = VmnetNetwork::new(&config) {
        assert_eq!(feature, "vmnet networks");
    }
}

#[test]
fn a_network_reads_back_its_subnet_and_is_released() {
    let _serial = serial();
    let before = live_vmnet_objects();
    let mut config = host_config(2);
    config
        .set_mtu(9000)
        .unwrap()
        .add_dhcp_reservation(&mac("52:54:00:00:02:0a"), Ipv4Addr::new(10, 77, 2, 10))
        .unwrap()
        .add_port_forwarding_rule(VmnetPortForwardingRule {
            protocol: VmnetProtocol::Udp,
            external_port: 5353,
            internal_address: Ipv4Addr::new(10, 77, 2, 10),
            internal_port: 53,
        })
        .unwrap()
        .disable_dhcp()
        .disable_dns_proxy()
        .disable_nat44()
        .disable_nat66()
        .disable_router_advertisement();
    let Some(network) = since("26.0", VmnetNetwork::new(&config)) else {
        assert_eq!(live_vmnet_objects(), before);
        return;
    };
    // The C configuration is released once the network exists.
    assert_eq!(live_vmnet_objects(), before + 1);
    assert_eq!(
        network.ipv4_subnet(),
        VmnetSubnet {
            host_address: Ipv4Addr::new(10, 77, 2, 1),
            mask: MASK_24
        }
    );
    let clone = network.clone();
    assert_eq!(network.reference_count(), 2);
    drop(network);
    assert_eq!(live_vmnet_objects(), before + 1);
    drop(clone);
    assert_eq!(live_vmnet_objects(), before);
}

#[test]
fn vmnet_picks_a_subnet_when_none_is_set() {
    let _serial = serial();
    let config = VmnetNetworkConfiguration::new(VmnetMode::Shared);
    let Some(network) = since("26.0", VmnetNetwork::new(&config)) else {
        return;
    };
    let subnet = network.ipv4_subnet();
    let [a, b, _, d] = subnet.host_address.octets();
    assert_eq!((a, b, d), (192, 168, 1), "{subnet}");
    assert_eq!(subnet.mask, MASK_24);
}

#[test]
fn a_taken_subnet_is_a_typed_vmnet_error() {
    let _serial = serial();
    let config = host_config(3);
    let Some(first) = since("26.0", VmnetNetwork::new(&config)) else {
        return;
    };
    let err = VmnetNetwork::new(&config).unwrap_err();
    let message = err.to_string();
    match err {
        VZError::Vmnet(VmnetError {
            operation, status, ..
        }) => {
            assert_eq!(operation, "vmnet_network_create");
            assert_eq!(status, VmnetStatus::SharingServiceBusy);
        }
        other => panic!("expected VZError::Vmnet, got {other:?}"),
    }
    assert!(
        message.contains("vmnet_network_create failed with VMNET_SHARING_SERVICE_BUSY (1009)")
            && message.contains("choose another subnet"),
        "{message}"
    );
    // Once the first network is released, its subnet is free again.
    drop(first);
    VmnetNetwork::new(&config).unwrap();
}

#[test]
fn attachments_keep_their_network_alive() {
    let _serial = serial();
    let before = live_vmnet_objects();
    let config = host_config(4);
    let Some(network) = since("26.0", VmnetNetwork::new(&config)) else {
        return;
    };
    let first = VmnetNetworkDeviceAttachment::new(&network).unwrap();
    let second = VmnetNetworkDeviceAttachment::new(&network).unwrap();
    assert!(first.is_attached_to(&network) && second.is_attached_to(&network));
    assert_eq!(network.reference_count(), 3);
    drop(network);
    // The attachments' clones keep the network reserved.
    assert_eq!(live_vmnet_objects(), before + 1);
    assert!(VmnetNetwork::new(&config).is_err());
    assert_eq!(
        first.network().ipv4_subnet().host_address,
        Ipv4Addr::new(10, 77, 4, 1)
    );
    drop(first);
    assert_eq!(live_vmnet_objects(), before + 1);
    drop(second);
    assert_eq!(live_vmnet_objects(), before);
}

#[test]
fn two_virtual_machines_on_one_network_validate() {
    let _serial = serial();
    let dir = TempDir::new("vmnet-pair");
    let config = host_config(5);
    let Some(network) = since("26.0", VmnetNetwork::new(&config)) else {
        return;
    };
    let mut vms = Vec::new();
    for i in 0..2u8 {
        let attachment = VmnetNetworkDeviceAttachment::new(&network).unwrap();
        let mut device = VirtioNetworkDeviceConfiguration::new(attachment);
        device
            .set_mac_address(&MACAddress::from_octets([0x52, 0x54, 0, 0, 5, i]))
            .unwrap();
        assert!(matches!(
            device.attachment(),
            NetworkDeviceAttachment::Vmnet(a) if a.is_attached_to(&network)
        ));
        let mut vm = minimal_config(&dir);
        vm.set_network_devices(vec![device]);
        vm.validate().unwrap();
        vms.push(vm);
    }
    // Two VMs' configurations and this handle.
    assert_eq!(network.reference_count(), 3);
}

#[test]
fn a_serialized_network_is_rebuilt_on_the_same_subnet() {
    let _serial = serial();
    let before = live_vmnet_objects();
    let config = host_config(6);
    let Some(network) = since("26.0", VmnetNetwork::new(&config)) else {
        // SAFETY: null is allowed; before macOS 26 nothing is dereferenced.
        let err = unsafe { VmnetNetworkSerialization::from_raw_xpc_object(std::ptr::null_mut()) };
        common::assert_unsupported("26.0", err);
        return;
    };
    let serialization = network.copy_serialization().unwrap();
    let copy = serialization.clone();
    // What another process would do with the XPC object it received.
    let received =
        // SAFETY: a live XPC object from vmnet_network_copy_serialization.
        unsafe { VmnetNetworkSerialization::from_raw_xpc_object(copy.as_raw_xpc_object()) }
            .unwrap();
    drop(copy);
    let rebuilt = VmnetNetwork::from_serialization(&received).unwrap();
    assert_eq!(rebuilt.ipv4_subnet(), network.ipv4_subnet());
    // The rebuilt handle is this process's own: it can be attached.
    let attachment = VmnetNetworkDeviceAttachment::new(&rebuilt).unwrap();
    assert!(attachment.is_attached_to(&rebuilt));
    // Another network on that subnet is still refused.
    assert!(matches!(
        VmnetNetwork::new(&config),
        Err(VZError::Vmnet(VmnetError {
            status: VmnetStatus::SharingServiceBusy,
            ..
        }))
    ));
    drop((serialization, received, attachment, rebuilt, network));
    assert_eq!(live_vmnet_objects(), before);

    let (argument, _) = invalid_argument(
        // SAFETY: null is allowed.
        unsafe { VmnetNetworkSerialization::from_raw_xpc_object(std::ptr::null_mut()) }
            .unwrap_err(),
    );
    assert_eq!(argument, "vmnet network serialization");
}

#[test]
fn a_virtual_machine_holds_its_vmnet_networks_until_it_is_released() {
    let _serial = serial();
    let before = live_vmnet_objects();
    let dir = TempDir::new("vmnet-vm");
    let Some(network) = since("26.0", VmnetNetwork::new(&host_config(7))) else {
        return;
    };
    let vm = {
        let mut config = minimal_config(&dir);
        config.set_network_devices(vec![VirtioNetworkDeviceConfiguration::new(
            VmnetNetworkDeviceAttachment::new(&network).unwrap(),
        )]);
        config.build().unwrap()
    };
    // The configuration and its attachment are gone; the VM holds the network.
    assert_eq!(network.reference_count(), 2);
    drop(network);
    assert_eq!(live_vmnet_objects(), before + 1);

    // A second network swapped in at run time is held too.
    let second = VmnetNetwork::new(&host_config(8)).unwrap();
    let device = vm.network_devices().remove(0);
    device.set_attachment(Some(
        VmnetNetworkDeviceAttachment::new(&second).unwrap().into(),
    ));
    assert_eq!(second.reference_count(), 2);
    drop(second);
    assert_eq!(live_vmnet_objects(), before + 2);

    // Released with the VM (its teardown is a work item on the VM queue).
    drop((device, vm));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while live_vmnet_objects() != before {
        assert!(
            std::time::Instant::now() < deadline,
            "the networks were never released"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
