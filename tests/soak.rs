//! The soak: many lifecycles, vsock connections, cancelled starts and listener churn,
//! then a report of what is left. Its size is `ARCBOX_VZ_SOAK_N` rounds (default 5,
//! which every `cargo test` runs). `scripts/soak.sh` runs it at N and 10N under
//! valgrind to show that nothing grows with the work.
//!
//! Each round: 1 full VM lifecycle (build, start, pause, resume, stop, start,
//! request_stop, wait), 10 vsock connect + echo + close, 1 cancelled start (the
//! future dropped before its completion), 1 listener opened, connected to, and
//! closed, and 1 full configuration (every device family the release has) built and
//! dropped.
#![cfg(arcbox_vz_sim)]

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use arcbox_vz::*;
use common::{TempDir, block_on, macos, sim, since, stop_checked, vm_config};

fn rounds() -> usize {
    std::env::var("ARCBOX_VZ_SOAK_N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5)
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Waits until `f` returns `expected`, for counts that settle a moment after the
/// work (a guest thread finishing its exit).
fn settle(expected: usize, f: impl Fn() -> usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    while f() != expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

/// Every device family this release has; a newer one must be `Unsupported` here.
fn every_device_configuration(dir: &TempDir) -> VirtualMachineConfiguration {
    let mut config = vm_config(dir);
    let disk = dir.file("disk.img", &[0u8; 8192]);
    let (net_a, _net_b) = std::os::unix::net::UnixDatagram::pair().unwrap();
    let (serial_a, _serial_b) = std::os::unix::net::UnixStream::pair().unwrap();
    config
        .set_storage_devices(vec![
            VirtioBlockDeviceConfiguration::new(
                DiskImageStorageDeviceAttachment::new(&disk, true).unwrap(),
            )
            .unwrap()
            .into(),
        ])
        .set_network_devices(vec![
            VirtioNetworkDeviceConfiguration::new(NATNetworkDeviceAttachment::new()),
            VirtioNetworkDeviceConfiguration::new(
                FileHandleNetworkDeviceAttachment::new(&net_a).unwrap(),
            ),
        ])
        .set_serial_ports(vec![VirtioConsoleDeviceSerialPortConfiguration::new(
            FileHandleSerialPortAttachment::new(Some(&serial_a), Some(&serial_a)).unwrap(),
        )])
        .set_entropy_devices(vec![VirtioEntropyDeviceConfiguration::new()])
        .set_memory_balloon_devices(vec![
            VirtioTraditionalMemoryBalloonDeviceConfiguration::new(),
        ]);
    // macOS 12: platform, directory sharing, keyboard, pointing device.
    if let Some(mut platform) = since("12.0", GenericPlatform::new()) {
        if let Some(identifier) = since("13.0", GenericMachineIdentifier::new()) {
            platform.set_machine_identifier(&identifier).unwrap();
        }
        config.set_platform(platform);
    }
    if let Some(directory) = since("12.0", SharedDirectory::new(dir.path(), true)) {
        let share = SingleDirectoryShare::new(directory);
        config.set_directory_sharing_devices(vec![
            VirtioFileSystemDeviceConfiguration::new("soak", share).unwrap(),
        ]);
    }
    if let Some(keyboard) = since("12.0", USBKeyboardConfiguration::new()) {
        config.set_keyboards(vec![keyboard]);
    }
    if let Some(pointing) = since(
        "12.0",
        USBScreenCoordinatePointingDeviceConfiguration::new(),
    ) {
        config.set_pointing_devices(vec![pointing]);
    }
    // macOS 13: console devices and virtio-gpu.
    if let Some(mut port) = since("13.0", VirtioConsolePortConfiguration::new()) {
        port.set_name("agent").unwrap();
        let mut console = VirtioConsoleDeviceConfiguration::new().unwrap();
        console.set_port(0, port).unwrap();
        config.set_console_devices(vec![console]);
    }
    if let Some(mut graphics) = since("13.0", VirtioGraphicsDeviceConfiguration::new()) {
        graphics.set_scanouts(vec![
            VirtioGraphicsScanoutConfiguration::new(1024, 768).unwrap(),
        ]);
        config.set_graphics_devices(vec![graphics]);
    }
    // macOS 15: USB controllers.
    if let Some(usb) = since("15.0", XHCIControllerConfiguration::new()) {
        config.set_usb_controllers(vec![usb]);
    }
    config
}

fn one_round(dir: &TempDir, round: usize) {
    // A full lifecycle.
    let vm = vm_config(dir).build().unwrap();
    block_on(async {
        vm.start().await.unwrap();
        vm.pause().await.unwrap();
        vm.resume().await.unwrap();
        stop_checked(&vm).await; // a force stop; before macOS 12, a guest power-off
        vm.start().await.unwrap();
    });
    // vsock: 10 connections with an echo each, and a listener churned once.
    let device = vm.socket_devices().remove(0);
    for i in 0..10u32 {
        let mut stream = block_on(device.connect(1024)).unwrap();
        stream.write_all(&i.to_le_bytes()).unwrap();
        let mut back = [0u8; 4];
        stream.read_exact(&mut back).unwrap();
        assert_eq!(u32::from_le_bytes(back), i);
    }
    let listener = device.listen(5000).unwrap();
    let guest = sim::guest::connect(5000).unwrap();
    let host = block_on(listener.accept()).unwrap();
    drop((guest, host, listener));
    block_on(async {
        vm.request_stop().unwrap();
        assert_eq!(vm.wait_until_stopped().await, StopReason::GuestStopped);
    });
    drop((device, vm));

    // A cancelled start: the future is dropped while the framework works on it.
    let vm = vm_config(dir).build().unwrap();
    {
        let mut start = Box::pin(vm.start());
        let waker = std::task::Waker::noop();
        assert!(
            start
                .as_mut()
                .poll(&mut std::task::Context::from_waker(waker))
                .is_pending()
        );
        let _ = vm.state(); // queued behind the start: the framework has it now
    }
    drop(vm);

    // Every device family, built, validated and dropped.
    if round % 2 == 0 {
        every_device_configuration(dir).build().unwrap();
    }
}

#[test]
fn soak() {
    let n = rounds();
    sim::scenario(|| {
        let dir = TempDir::new("soak");
        sim::guest::set_echo_ports(&[1024]);
        // One warm-up round so one-time runtime set-up is not counted as growth.
        one_round(&dir, 0);
        // GNUstep gives each thread that deallocates an NSFileHandle a wake-up pipe,
        // kept until the thread exits. Whether this thread or a VM queue does the last
        // release of a configuration's file handles is a race, so make sure this
        // thread has its pipe before counting.
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        drop(
            FileHandleSerialPortAttachment::new(Some(&a), None::<&std::os::unix::net::UnixStream>)
                .unwrap(),
        );
        assert_eq!(sim::quiesce(Duration::from_secs(10)), 0);
        let (fds, threads, rss) = (common::open_fds(), common::threads(), rss_kib());
        let started = Instant::now();
        for round in 0..n {
            one_round(&dir, round);
        }
        let elapsed = started.elapsed();
        assert_eq!(
            sim::quiesce(Duration::from_secs(10)),
            0,
            "queue threads left"
        );
        let fds_after = settle(fds, common::open_fds);
        let threads_after = settle(threads, common::threads);
        let rss_after = rss_kib();
        println!(
            "soak: rounds={n} lifecycles={n} vsock_connects={} cancelled_starts={n} listener_churns={n} \
             in {:.2}s; live_objects={} live_blocks={} fds {fds}->{fds_after} threads {threads}->{threads_after} \
             rss {rss}KiB->{rss_after}KiB ({:+}KiB); released_while_running={}",
            10 * n,
            elapsed.as_secs_f64(),
            sim::live_objects(),
            sim::live_blocks(),
            rss_after as i64 - rss as i64,
            sim::guest::released_while_running(),
        );
        assert_eq!(fds_after, fds, "file descriptors grew");
        assert_eq!(threads_after, threads, "threads grew");
        // macOS 11 has no force stop: each round's cancelled start (and the warm-up's)
        // is released running.
        let released = if macos("12.0") { 0 } else { n as i64 + 1 };
        assert_eq!(sim::guest::released_while_running(), released);
    });
}
