//! Boots a real Linux kernel with Virtualization.framework. Needs a Mac, a signed test
//! binary (the cargo runner in .cargo/config.toml signs it), and
//! `ARCBOX_VZ_TEST_KERNEL=/path/to/Image` (plus optional `ARCBOX_VZ_TEST_INITRD`).
//! Anywhere else it says why it skipped.

#[cfg(target_os = "macos")]
#[test]
fn boots_a_real_kernel_and_reads_its_console() {
    use std::io::Read;
    use std::time::{Duration, Instant};

    use arcbox_vz::*;

    let Ok(kernel) = std::env::var("ARCBOX_VZ_TEST_KERNEL") else {
        eprintln!("skipped: set ARCBOX_VZ_TEST_KERNEL to an uncompressed Linux kernel to boot one");
        return;
    };
    if !is_supported() {
        eprintln!(
            "skipped: this Mac cannot run virtual machines (VZVirtualMachine.isSupported is false)"
        );
        return;
    }
    let mut boot = LinuxBootLoader::new(&kernel).unwrap();
    if let Ok(initrd) = std::env::var("ARCBOX_VZ_TEST_INITRD") {
        boot.set_initial_ramdisk(initrd).unwrap();
    }
    boot.set_command_line("console=hvc0").unwrap();
    let (mut host, guest) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut config = VirtualMachineConfiguration::new().unwrap();
    config
        .set_cpu_count(2)
        .set_memory_size(512 * 1024 * 1024)
        .set_boot_loader(boot)
        .set_serial_ports(vec![VirtioConsoleDeviceSerialPortConfiguration::new(
            FileHandleSerialPortAttachment::new(Some(&guest), Some(&guest)).unwrap(),
        )])
        .set_socket_devices(vec![VirtioSocketDeviceConfiguration::new()]);
    let vm = config.build().unwrap();
    futures_executor::block_on(vm.start()).unwrap();
    assert_eq!(vm.state(), VirtualMachineState::Running);

    host.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut console = Vec::new();
    while Instant::now() < deadline && !String::from_utf8_lossy(&console).contains("Linux version")
    {
        let mut buf = [0u8; 4096];
        if let Ok(n) = host.read(&mut buf) {
            console.extend_from_slice(&buf[..n]);
        }
    }
    assert!(
        String::from_utf8_lossy(&console).contains("Linux version"),
        "no kernel banner on hvc0"
    );

    futures_executor::block_on(vm.stop()).unwrap();
    assert_eq!(
        futures_executor::block_on(vm.wait_until_stopped()),
        StopReason::HostStopped
    );
}

#[cfg(not(target_os = "macos"))]
#[test]
fn boots_a_real_kernel_and_reads_its_console() {
    eprintln!(
        "skipped: booting a real kernel needs macOS with Virtualization.framework; the \
         simulator suites cover the same paths against the fake framework"
    );
}
