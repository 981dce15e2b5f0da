//! vsock with a real guest, both ways: the host connects to the port PUI PUI Linux
//! serves (dropbear behind socat, so the guest speaks first with its SSH banner),
//! and the guest connects to a port the host listens on (socat typed on the
//! console). Needs a Mac that can run virtual machines and PUI PUI Linux in
//! `ARCBOX_VZ_TEST_KERNEL` / `ARCBOX_VZ_TEST_INITRD` (see `macos_guest`); anywhere
//! else each test says why it skipped.

#[cfg(target_os = "macos")]
mod macos_guest;

#[cfg(target_os = "macos")]
#[test]
fn connects_to_a_port_the_guest_serves() {
    use macos_guest::{BOOT_TIMEOUT, GUEST_VSOCK_PORT, Needs, check, connect_when_ready};

    const TEST: &str = "connects_to_a_port_the_guest_serves";
    let Some(guest) = macos_guest::guest(TEST, Needs::Userland) else {
        return;
    };
    let booted = macos_guest::boot(&guest, Vec::new());
    let stream = check(connect_when_ready(
        &booted.vm,
        GUEST_VSOCK_PORT,
        BOOT_TIMEOUT,
    ));
    assert_eq!(stream.destination_port(), GUEST_VSOCK_PORT);
    let banner = check(macos_guest::first_line(stream));
    assert!(
        banner.starts_with("SSH-2.0-"),
        "expected dropbear's SSH banner on guest port {GUEST_VSOCK_PORT}, got {banner:?}"
    );
}

#[cfg(target_os = "macos")]
#[test]
fn accepts_a_connection_from_the_guest() {
    use std::io::Read;

    use macos_guest::{Needs, STEP_TIMEOUT, check, within};

    const TEST: &str = "accepts_a_connection_from_the_guest";
    const HOST_PORT: u32 = 7011;
    let Some(guest) = macos_guest::guest(TEST, Needs::Userland) else {
        return;
    };
    let mut booted = macos_guest::boot(&guest, Vec::new());
    let device = booted.vm.socket_devices().remove(0);
    let listener = device
        .listen(HOST_PORT)
        .unwrap_or_else(|e| panic!("listen on {HOST_PORT}: {e}"));
    check(booted.console.login());

    // CID 2 is the host. socat sends the line, and exits once the host closes.
    let command = booted
        .console
        .start(&format!(
            "echo from-the-guest | socat - VSOCK-CONNECT:2:{HOST_PORT}"
        ))
        .unwrap();
    let stream = within(STEP_TIMEOUT, listener.accept())
        .unwrap_or_else(|| {
            panic!(
                "no connection from the guest within {STEP_TIMEOUT:?}; its console:\n{}",
                booted.console.transcript()
            )
        })
        .expect("the listener closed");
    assert_eq!(stream.destination_port(), HOST_PORT);
    let mut stream = std::os::unix::net::UnixStream::from(stream);
    stream.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    let mut received = String::new();
    stream
        .read_to_string(&mut received)
        .unwrap_or_else(|e| panic!("reading the guest's connection: {e}"));
    drop(stream);
    assert_eq!(received, "from-the-guest\n");
    let (status, shown) = check(booted.console.finish(command));
    assert_eq!(status, 0, "socat in the guest failed:\n{shown}");
}

#[cfg(not(target_os = "macos"))]
#[test]
fn connects_to_a_port_the_guest_serves() {
    skipped("connects_to_a_port_the_guest_serves");
}

#[cfg(not(target_os = "macos"))]
#[test]
fn accepts_a_connection_from_the_guest() {
    skipped("accepts_a_connection_from_the_guest");
}

#[cfg(not(target_os = "macos"))]
fn skipped(test: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "{test}: skipped: it boots a real guest, which needs macOS with \
         Virtualization.framework; tests/vsock.rs covers the same paths in the simulator"
    );
}
