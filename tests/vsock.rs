//! vsock in the simulator: connect, echo integrity, refused ports, descriptor hygiene
//! over many connections, and listeners (accept, close while an accept is pending).
#![cfg(arcbox_vz_sim)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::time::Duration;

use arcbox_vz::{VZError, VirtioSocketDevice, VirtualMachine};
use common::{TempDir, block_on, sim, vm_config};

const ECHO_PORT: u32 = 1024;

fn running_vm(dir: &TempDir) -> (VirtualMachine, VirtioSocketDevice) {
    sim::guest::set_echo_ports(&[ECHO_PORT, 2048]);
    let vm = vm_config(dir).build().unwrap();
    block_on(vm.start()).unwrap();
    let device = vm.socket_devices().remove(0);
    (vm, device)
}

fn stop(vm: &VirtualMachine) {
    common::stop_vm(vm);
}

/// Descriptors of this process that are sockets (what vsock streams are).
fn open_sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

#[test]
fn echo_of_one_mebibyte_is_byte_exact() {
    sim::scenario(|| {
        let dir = TempDir::new("echo");
        let (vm, device) = running_vm(&dir);
        let stream = block_on(device.connect(ECHO_PORT)).unwrap();
        assert_eq!(stream.destination_port(), ECHO_PORT);
        let payload: Vec<u8> = (0..1024 * 1024u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let mut writer = stream.try_clone().unwrap();
        let to_send = payload.clone();
        let sender = std::thread::spawn(move || {
            writer.write_all(&to_send).unwrap();
            writer.shutdown(Shutdown::Write).unwrap();
        });
        let mut echoed = Vec::with_capacity(payload.len());
        (&stream).read_to_end(&mut echoed).unwrap();
        sender.join().unwrap();
        assert_eq!(echoed.len(), payload.len());
        assert!(echoed == payload, "the echo differs from what was sent");
        drop(stream);
        stop(&vm);
    });
}

#[test]
fn streams_are_cloexec_and_convert_for_reactors() {
    sim::scenario(|| {
        let dir = TempDir::new("convert");
        let (vm, device) = running_vm(&dir);
        let stream = block_on(device.connect(ECHO_PORT)).unwrap();
        // SAFETY: F_GETFD only reads descriptor flags.
        let flags = unsafe { libc::fcntl(stream.as_raw_fd(), libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        let mut unix: std::os::unix::net::UnixStream = stream.into();
        unix.write_all(b"ping").unwrap();
        let mut reply = [0u8; 4];
        unix.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"ping");
        drop(unix);
        // And through tokio's reactor.
        let stream = block_on(device.connect(ECHO_PORT)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        rt.block_on(async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let std_stream: std::os::unix::net::UnixStream = stream.into();
            std_stream.set_nonblocking(true).unwrap();
            let mut stream = tokio::net::UnixStream::from_std(std_stream).unwrap();
            stream.write_all(b"tokio").await.unwrap();
            let mut reply = [0u8; 5];
            stream.read_exact(&mut reply).await.unwrap();
            assert_eq!(&reply, b"tokio");
        });
        stop(&vm);
    });
}

#[test]
fn a_port_nobody_listens_on_is_connection_reset() {
    sim::scenario(|| {
        let dir = TempDir::new("reset");
        let (vm, device) = running_vm(&dir);
        match block_on(device.connect(4444)) {
            Err(VZError::Io(e)) => {
                assert_eq!(e.kind(), ErrorKind::ConnectionReset);
                // The message names the port, so a retry loop's log says which.
                assert!(e.to_string().contains("vsock port 4444"), "{e}");
            }
            other => panic!("expected ConnectionReset, got {other:?}"),
        }
        stop(&vm);
        // A stopped virtual machine is a state error, not a reset to retry on.
        match block_on(device.connect(ECHO_PORT)) {
            Err(VZError::InvalidState { state, .. }) => {
                assert_eq!(state, arcbox_vz::VirtualMachineState::Stopped)
            }
            other => panic!("expected InvalidState, got {other:?}"),
        }
    });
}

#[test]
fn a_thousand_connects_and_closes_leave_the_fd_count_unchanged() {
    sim::scenario(|| {
        let dir = TempDir::new("churn");
        let (vm, device) = running_vm(&dir);
        // Warm up once, then count.
        drop(block_on(device.connect(ECHO_PORT)).unwrap());
        std::thread::sleep(Duration::from_millis(50));
        let (sockets, fds) = (open_sockets(), common::open_fds());
        for i in 0..1000u32 {
            let mut stream = block_on(device.connect(ECHO_PORT)).unwrap();
            stream.write_all(&i.to_le_bytes()).unwrap();
            let mut back = [0u8; 4];
            stream.read_exact(&mut back).unwrap();
            assert_eq!(u32::from_le_bytes(back), i);
        }
        // The guest closes its ends as soon as it sees EOF.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while open_sockets() != sockets && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            open_sockets(),
            sockets,
            "socket descriptors after 1000 connections"
        );
        assert_eq!(
            common::open_fds(),
            fds,
            "all descriptors after 1000 connections"
        );
        println!("1000 connections: {sockets} sockets and {fds} fds before and after");
        stop(&vm);
    });
}

#[test]
fn listener_accepts_guest_connections_and_close_ends_a_pending_accept() {
    sim::scenario(|| {
        let dir = TempDir::new("listen");
        let (vm, device) = running_vm(&dir);
        let listener = device.listen(5000).unwrap();
        assert_eq!(listener.port(), 5000);
        // Listening twice on one port is refused (VZ would replace the first silently).
        assert!(matches!(
            device.listen(5000),
            Err(VZError::InvalidArgument {
                argument: "vsock port",
                ..
            })
        ));
        // Nobody listens on 5001: the guest's connect is refused.
        assert!(sim::guest::connect(5001).is_none());

        let guest = sim::guest::connect(5000).expect("accepted");
        let host = block_on(listener.accept()).expect("a connection");
        let mut guest = std::os::unix::net::UnixStream::from(guest);
        guest.write_all(b"hello host").unwrap();
        let mut buf = [0u8; 10];
        (&host).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello host");
        (&host).write_all(b"hi").unwrap();
        let mut buf = [0u8; 2];
        guest.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
        drop((host, guest));

        // A connection that was never accepted is closed with the listener.
        let unaccepted = std::os::unix::net::UnixStream::from(sim::guest::connect(5000).unwrap());
        // An accept pending on another thread ends with None when the listener closes.
        let listener = std::sync::Arc::new(listener);
        let _ = block_on(listener.accept()); // takes the unaccepted one
        let l2 = std::sync::Arc::clone(&listener);
        let pending = std::thread::spawn(move || block_on(l2.accept()).is_none());
        std::thread::sleep(Duration::from_millis(30));
        listener.close();
        assert!(
            pending.join().unwrap(),
            "the pending accept ended with None"
        );
        assert!(block_on(listener.accept()).is_none());
        let mut byte = [0u8; 1];
        assert_eq!((&unaccepted).read(&mut byte).unwrap(), 0, "closed: EOF");

        // After close, the guest is refused, and the port can be listened on again.
        assert!(sim::guest::connect(5000).is_none());
        drop(listener);
        let again = device.listen(5000).unwrap();
        assert!(sim::guest::connect(5000).is_some());
        // Ports are independent, whatever the order they are listened on and closed.
        let others: Vec<_> = [5002, 4999, 5001]
            .map(|port| device.listen(port).unwrap())
            .into();
        for port in [4999, 5000, 5001, 5002] {
            assert!(device.listen(port).is_err(), "port {port} is taken");
        }
        others[2].close();
        assert!(device.listen(5002).is_err() && device.listen(4999).is_err());
        drop(device.listen(5001).expect("5001 is free again"));
        drop((again, others));
        stop(&vm);
    });
}

#[test]
fn dropping_a_listener_with_queued_connections_leaks_nothing() {
    sim::scenario(|| {
        let dir = TempDir::new("listen-drop");
        let (vm, device) = running_vm(&dir);
        let before = open_sockets();
        for _ in 0..20 {
            let listener = device.listen(6000).unwrap();
            let guests: Vec<_> = (0..5).map(|_| sim::guest::connect(6000).unwrap()).collect();
            drop(listener);
            drop(guests);
        }
        assert_eq!(open_sockets(), before);
        stop(&vm);
    });
}

#[test]
fn connect_before_start_is_a_state_error_and_any_port_cannot_be_listened_on() {
    sim::scenario(|| {
        let dir = TempDir::new("before-start");
        let vm = common::vm_config(&dir).build().unwrap();
        let device = vm.socket_devices().remove(0);
        // Not a ConnectionReset, which the docs say to retry on: a loop would spin.
        match block_on(device.connect(ECHO_PORT)) {
            Err(VZError::InvalidState { operation, state }) => {
                assert_eq!(state, arcbox_vz::VirtualMachineState::Stopped);
                assert!(operation.contains("vsock"), "{operation}");
            }
            other => panic!("expected InvalidState, got {other:?}"),
        }
        // VMADDR_PORT_ANY is "any port", never a port a guest can reach.
        let (argument, reason) = common::invalid_argument(device.listen(u32::MAX).unwrap_err());
        assert_eq!(argument, "vsock port");
        assert!(reason.contains("VMADDR_PORT_ANY"), "{reason}");
        // The refused port was not recorded as listened on.
        drop(device.listen(u32::MAX - 1).unwrap());
    });
}
