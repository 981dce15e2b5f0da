//! Two virtual machines on one host-mode vmnet network (macOS 26), each pinned to an
//! address by a DHCP reservation, so they reach each other (and the host) but
//! nothing else.
//!
//! ```text
//! cargo run --example vmnet_pair -- --kernel Image --initrd initramfs.cpio.gz [--subnet 192.168.105.1]
//! ```
//!
//! In guest A (console log in `$TMPDIR/vmnet_pair-a-console.log`), once both have
//! booted with DHCP: `ping 192.168.105.11`. Before macOS 26 it says, in one line,
//! that vmnet networks need macOS 26.

#[cfg(arcbox_vz_sim)]
use arcbox_vz_sim as _; // links the Linux simulator

#[cfg(any(target_os = "macos", arcbox_vz_sim))]
mod common;

#[cfg(any(target_os = "macos", arcbox_vz_sim))]
fn run() -> Result<(), Box<dyn std::error::Error>> {
    use std::net::Ipv4Addr;

    use arcbox_vz::*;

    let flags = common::Flags::from_env();
    flags.check(&["kernel", "initrd", "subnet"])?;
    let host: Ipv4Addr = match flags.get("subnet")? {
        Some(text) => text
            .parse()
            .map_err(|e| format!("--subnet {text:?}: {e}"))?,
        None => Ipv4Addr::new(192, 168, 105, 1),
    };
    let mask = Ipv4Addr::new(255, 255, 255, 0);
    let [a, b, c, _] = host.octets();
    let guests = [
        ("a", MACAddress::from_octets([0x52, 0x54, 0, 0x76, 0, 0x0a])),
        ("b", MACAddress::from_octets([0x52, 0x54, 0, 0x76, 0, 0x0b])),
    ];

    // The network: host mode, our subnet, one reservation per guest.
    let mut network_config = VmnetNetworkConfiguration::new(VmnetMode::Host);
    network_config.set_ipv4_subnet(host, mask)?;
    for (i, (_, mac)) in guests.iter().enumerate() {
        network_config.add_dhcp_reservation(mac, Ipv4Addr::new(a, b, c, 10 + i as u8))?;
    }
    let network = VmnetNetwork::new(&network_config)?;
    println!(
        "host-mode network {} (the host is {})",
        network.ipv4_subnet(),
        network.ipv4_subnet().host_address
    );

    // Two virtual machines, each with a network device on it.
    let mut vms = Vec::new();
    for (i, (name, mac)) in guests.iter().enumerate() {
        let (mut config, console_log) =
            common::logged_configuration(&flags, &format!("vmnet_pair-{name}"))?;
        let mut device =
            VirtioNetworkDeviceConfiguration::new(VmnetNetworkDeviceAttachment::new(&network)?);
        device.set_mac_address(mac)?;
        config.set_network_devices(vec![device]);
        let vm = config.build()?;
        common::block_on(vm.start())?;
        println!(
            "vm {name} started: MAC {mac}, reserved address {}, console in {}",
            Ipv4Addr::new(a, b, c, 10 + i as u8),
            console_log.display()
        );
        vms.push(vm);
    }
    println!(
        "both on one network ({} handles on it); in vm a: ping {}",
        network.reference_count(),
        Ipv4Addr::new(a, b, c, 11)
    );

    for ((name, _), vm) in guests.iter().zip(&vms) {
        println!(
            "vm {name} stopped: {:?}",
            common::block_on(common::stop(vm))?
        );
    }
    Ok(())
}

#[cfg(any(target_os = "macos", arcbox_vz_sim))]
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One readable line, such as "vmnet networks ... needs macOS 26.0".
            eprintln!("vmnet_pair: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(not(any(target_os = "macos", arcbox_vz_sim)))]
fn main() {
    eprintln!("vmnet_pair needs macOS (or, on Linux, the arcbox-vz simulator: see the README)");
    std::process::exit(1);
}
