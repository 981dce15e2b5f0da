//! The examples against the simulator. `simple_vm` on a real pseudo-terminal: the fake
//! guest's boot banner comes through the serial port to the terminal, the terminal is
//! in raw mode while it runs, Ctrl-C stops the guest cleanly, the exit status says
//! why, and the terminal is restored; with no arguments at all it boots the fake guest
//! from a stand-in kernel it removes at exit. The others run to completion (`gui_linux` with a
//! guest that powers itself off).
#![cfg(arcbox_vz_sim)]

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/<name>
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let path = deps.parent().unwrap().join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds the examples",
        path.display()
    );
    path
}

struct Pty {
    master: File,
    slave: OwnedFd,
}

fn open_pty() -> Pty {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two new descriptors; the name, termios and winsize
    // arguments may be NULL.
    let rc = unsafe {
        libc::openpty(
            &raw mut master,
            &raw mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are new and ours.
    unsafe {
        Pty {
            master: File::from_raw_fd(master),
            slave: OwnedFd::from_raw_fd(slave),
        }
    }
}

fn lflag(fd: &OwnedFd) -> libc::tcflag_t {
    // SAFETY: tcgetattr fills a zeroed termios for a terminal descriptor we own.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(fd.as_raw_fd(), &raw mut t), 0);
        t.c_lflag
    }
}

/// Starts `command` with the pty's terminal as its stdin, stdout, stderr and
/// controlling terminal.
fn spawn_on(pty: &Pty, command: &mut Command) -> std::process::Child {
    let slave_fd = pty.slave.as_raw_fd();
    command
        .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::from(pty.slave.try_clone().unwrap()));
    // SAFETY: only async-signal-safe calls between fork and exec: a new session with
    // the pty as its controlling terminal, so Ctrl-C on it sends SIGINT to the child.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 || libc::ioctl(slave_fd, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn().unwrap()
}

/// Reads the terminal until `needle` appears.
fn read_until(master: &mut File, seen: &mut String, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.contains(needle) {
        assert!(
            Instant::now() < deadline,
            "{needle:?} never came; the terminal showed:\n{seen}"
        );
        let mut poll = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&raw mut poll, 1, 100) } <= 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break, // the child closed the terminal
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert!(
        seen.contains(needle),
        "{needle:?} never came; the terminal showed:\n{seen}"
    );
}

#[test]
fn simple_vm_shows_the_banner_and_stops_cleanly_on_ctrl_c() {
    let dir = common::TempDir::new("simple-vm");
    let kernel = dir.kernel();
    let share = dir.path().join("share");
    std::fs::create_dir_all(&share).unwrap();
    let disk = dir.file("disk.img", &[0u8; 1 << 16]);
    let mut pty = open_pty();
    let before = lflag(&pty.slave);
    assert_ne!(
        before & libc::ICANON,
        0,
        "a fresh terminal is in canonical mode"
    );

    let mut command = Command::new(example("simple_vm"));
    command
        .args([
            "--kernel",
            kernel.to_str().unwrap(),
            "--cmdline",
            "console=hvc0 from-the-test",
        ])
        .args(["--cpus", "2", "--memory", "512M", "--vsock-port", "5000"])
        .args(["--disk", &format!("{},ro", disk.display())]);
    if common::macos("12.0") {
        // Directory sharing is macOS 12 (before, a one-line error: see below).
        command.args(["--share", &format!("data={}", share.display())]);
    }
    let mut child = spawn_on(&pty, &mut command);

    let mut seen = String::new();
    read_until(
        &mut pty.master,
        &mut seen,
        "Welcome to the arcbox-vz simulator",
    );
    assert!(seen.contains("Linux version 6.6.0-arcbox-sim"), "{seen}");
    assert!(
        seen.contains("Kernel command line: console=hvc0 from-the-test"),
        "{seen}"
    );
    read_until(&mut pty.master, &mut seen, "listening on vsock port 5000");
    assert_eq!(
        lflag(&pty.slave) & libc::ICANON,
        0,
        "raw mode while the guest runs"
    );

    // Typing goes to the guest's console.
    pty.master.write_all(b"ls\r").unwrap();
    read_until(&mut pty.master, &mut seen, "sh: ls: not found");

    // Ctrl-C: a clean, guest-initiated power-off.
    pty.master.write_all(&[0x03]).unwrap();
    read_until(
        &mut pty.master,
        &mut seen,
        "the virtual machine stopped (GuestStopped)",
    );
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "exit status {status}; the terminal showed:\n{seen}"
    );
    assert_eq!(
        lflag(&pty.slave),
        before,
        "the terminal settings are restored"
    );
}

/// The first run of a newcomer on Linux: `cargo run --example simple_vm`, no
/// arguments. The simulator's fake guest boots from a stand-in kernel, `poweroff`
/// typed on the terminal ends it with exit status 0, the terminal is restored and the
/// stand-in is gone.
#[test]
fn simple_vm_with_no_arguments_boots_the_fake_guest() {
    let tmp = common::TempDir::new("simple-vm-first-run");
    let mut pty = open_pty();
    let before = lflag(&pty.slave);
    let mut command = Command::new(example("simple_vm"));
    command.env("TMPDIR", tmp.path());
    let mut child = spawn_on(&pty, &mut command);

    let mut seen = String::new();
    read_until(
        &mut pty.master,
        &mut seen,
        "Welcome to the arcbox-vz simulator",
    );
    let prefix = "[simple_vm] no --kernel: running the simulator's fake guest (stand-in kernel ";
    let line = seen
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line saying so; the terminal showed:\n{seen}"));
    let stand_in = PathBuf::from(line.trim_end().strip_suffix(')').unwrap());
    assert!(
        stand_in.starts_with(tmp.path()),
        "{} is not under $TMPDIR",
        stand_in.display()
    );
    assert!(stand_in.exists(), "{} while running", stand_in.display());
    assert_eq!(
        lflag(&pty.slave) & libc::ICANON,
        0,
        "raw mode while the guest runs"
    );

    pty.master.write_all(b"poweroff\r").unwrap();
    read_until(
        &mut pty.master,
        &mut seen,
        "the virtual machine stopped (GuestStopped)",
    );
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "exit status {status}; the terminal showed:\n{seen}"
    );
    assert!(seen.contains("reboot: Power down"), "{seen}");
    assert_eq!(
        lflag(&pty.slave),
        before,
        "the terminal settings are restored"
    );
    assert!(!stand_in.exists(), "{} is left behind", stand_in.display());
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "nothing is left in $TMPDIR"
    );
}

#[test]
fn simple_vm_reports_bad_input_in_one_line() {
    let dir = common::TempDir::new("simple-vm-bad");
    let gz = dir.file("Image.gz", &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
    let mut cases = vec![
        (
            vec![
                "--kernel".to_owned(),
                dir.path().join("missing").display().to_string(),
            ],
            "does not exist",
        ),
        (
            vec!["--kernel".to_owned(), gz.display().to_string()],
            "gzip-compressed",
        ),
        (
            vec![
                "--kernel".to_owned(),
                dir.kernel().display().to_string(),
                "--memory".to_owned(),
                "lots".to_owned(),
            ],
            "bad memory size",
        ),
        (
            vec!["--bogus".to_owned(), "1".to_owned()],
            "unknown flag --bogus",
        ),
    ];
    if !common::macos("12.0") {
        cases.push((
            vec![
                "--kernel".to_owned(),
                dir.kernel().display().to_string(),
                "--share".to_owned(),
                format!("data={}", dir.path().display()),
            ],
            "directory sharing is not supported here: it needs macOS 12.0 or later",
        ));
    }
    for (args, expected) in cases {
        assert_one_line_failure("simple_vm", &args, expected);
    }
}

#[test]
fn the_other_examples_run_against_the_simulator() {
    let dir = common::TempDir::new("examples");
    let kernel = dir.kernel();
    let kernel = kernel.to_str().unwrap();
    let share = dir.path().join("share");
    std::fs::create_dir_all(&share).unwrap();
    /// Example, arguments, an environment variable, what its output must contain.
    type Case<'a> = (
        &'a str,
        Vec<&'a str>,
        Option<(&'a str, &'a str)>,
        &'a [&'a str],
    );
    // A force stop from macOS 12; before, the examples ask the guest to power off.
    let stopped = if common::macos("12.0") {
        "stopped: HostStopped"
    } else {
        "stopped: GuestStopped"
    };
    let cases: [Case<'_>; 3] = [
        (
            "vsock_echo",
            vec!["--kernel", kernel],
            None,
            &["got back \"hello from the host\"", stopped],
        ),
        (
            "vsock_listen",
            vec!["--kernel", kernel, "--port", "5000"],
            Some(("ARCBOX_VZ_SIM_GUEST_CONNECT", "5000")),
            &["the guest says \"hello from the guest\"", stopped],
        ),
        (
            "virtiofs",
            vec![
                "--kernel",
                kernel,
                "--share",
                share.to_str().unwrap(),
                "--tag",
                "data",
            ],
            None,
            &["virtiofs tag \"data\"", "read-only", stopped],
        ),
    ];
    for (name, args, env, expected) in cases {
        let mut command = Command::new(example(name));
        command.args(&args);
        if let Some((key, value)) = env {
            command.env(key, value);
        }
        let output = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        if name == "virtiofs" && !common::macos("12.0") {
            // No directory sharing before macOS 12: one clear line, nothing started.
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{name}: {stdout}{stderr}");
            assert_eq!(
                stderr.trim_end(),
                "virtiofs: directory sharing is not supported here: it needs macOS 12.0 or later"
            );
            assert!(!stdout.contains("started"), "{stdout}");
            continue;
        }
        if !common::macos("12.0") {
            assert!(
                stdout.contains("no force stop before macOS 12"),
                "{name}: {stdout}"
            );
        }
        assert!(
            output.status.success(),
            "{name}: {}\n{stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        for needle in expected {
            assert!(
                stdout.contains(needle),
                "{name}: {needle:?} missing from\n{stdout}"
            );
        }
    }
}

#[test]
fn vmnet_pair_puts_two_vms_on_one_network_or_says_it_needs_macos_26() {
    let dir = common::TempDir::new("vmnet-pair-example");
    let kernel = dir.kernel();
    // A subnet of its own, so a parallel run of the other tests cannot take it.
    let output = Command::new(example("vmnet_pair"))
        .args([
            "--kernel",
            kernel.to_str().unwrap(),
            "--subnet",
            "10.211.77.1",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !common::macos("26.0") {
        assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
        assert_eq!(
            stderr.trim_end(),
            "vmnet_pair: vmnet networks is not supported here: it needs macOS 26.0 or later"
        );
        assert!(!stdout.contains("started"), "{stdout}");
        return;
    }
    assert!(output.status.success(), "{stdout}{stderr}");
    for expected in [
        "host-mode network 10.211.77.0/24 (the host is 10.211.77.1)",
        "vm a started: MAC 52:54:00:76:00:0a, reserved address 10.211.77.10",
        "vm b started: MAC 52:54:00:76:00:0b, reserved address 10.211.77.11",
        "in vm a: ping 10.211.77.11",
        "vm a stopped: HostStopped",
        "vm b stopped: HostStopped",
    ] {
        assert!(stdout.contains(expected), "{expected:?} missing:\n{stdout}");
    }
}

/// `gui_linux` with a guest that powers itself off 300 ms after booting: the window
/// opens (on the example's main thread), the loop ends when the guest stops, and the
/// example says so and exits 0. Before macOS 13 (no virtio-gpu device; before 12 no
/// window either) it says so in one line and starts nothing.
#[test]
fn gui_linux_shows_the_guest_until_it_powers_off() {
    let dir = common::TempDir::new("gui-linux-example");
    let kernel = dir.kernel();
    let log = dir.path().join("console.log");
    let output = Command::new(example("gui_linux"))
        .args(["--kernel", kernel.to_str().unwrap()])
        .args(["--cmdline", "console=hvc0 from-the-gui-test"])
        .args(["--width", "1280", "--height", "800"])
        .args(["--console-log", log.to_str().unwrap()])
        .env("ARCBOX_VZ_SIM_GUEST_POWER_OFF_MS", "300")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !common::macos("13.0") {
        assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
        assert_eq!(
            stderr.trim_end(),
            "gui_linux: Virtio graphics device is not supported here: it needs macOS 13.0 or later"
        );
        assert!(!stdout.contains("started"), "{stdout}");
        return;
    }
    assert!(
        output.status.success(),
        "{}\n{stdout}{stderr}",
        output.status
    );
    assert!(stderr.is_empty(), "{stderr}");
    assert!(
        stdout.contains("ended: the guest stopped (GuestStopped); the window was closed"),
        "{stdout}"
    );
    // What the fake AppKit window was given: the size in points and the title.
    assert!(
        stdout.contains(
            "simulator window: 1280x800 points, title \"Linux (arcbox-vz)\", showing a virtual machine: true"
        ),
        "{stdout}"
    );
    let console = std::fs::read_to_string(&log).unwrap();
    assert!(
        console.contains("Kernel command line: console=hvc0 from-the-gui-test"),
        "{console}"
    );
    assert!(console.contains("reboot: Power down"), "{console}");
}

#[test]
fn gui_linux_reports_bad_input_in_one_line() {
    let dir = common::TempDir::new("gui-linux-bad");
    let kernel = dir.kernel().display().to_string();
    let cases: [(Vec<&str>, &str); 3] = [
        (vec![], "--kernel PATH is required"),
        (
            vec!["--kernel", &kernel, "--width", "wide"],
            "--width \"wide\": expected a positive number of pixels",
        ),
        (
            vec!["--kernel", &kernel, "--bogus", "1"],
            "unknown flag --bogus",
        ),
    ];
    for (args, expected) in cases {
        assert_one_line_failure("gui_linux", &args, expected);
    }
}

/// A fake IPSW the fake installer accepts (`csrc/vz_macos_installer.m`).
fn fake_ipsw(dir: &common::TempDir) -> PathBuf {
    dir.file(
        "restore.ipsw",
        &common::sim::arm64::fake_ipsw("24A335", "15.0.1", "VirtualMac2,1", 2, 4 << 30),
    )
}

fn run_example(name: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(example(name))
        .args(args)
        .env("ARCBOX_VZ_SIM_GUEST_POWER_OFF_MS", "300")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn macos_install_makes_a_bundle_that_macos_vm_boots_in_a_window() {
    let dir = common::TempDir::new("macos-examples");
    let ipsw = fake_ipsw(&dir);
    let bundle = dir.path().join("macOS.bundle");
    let (ipsw, bundle_arg) = (ipsw.to_str().unwrap(), bundle.to_str().unwrap());
    let (code, stdout, stderr) = run_example(
        "macos_install",
        &["--ipsw", ipsw, "--bundle", bundle_arg, "--disk", "2G"],
    );
    if !common::macos("12.0") {
        assert_eq!(code, Some(1), "{stdout}{stderr}");
        assert!(stderr.trim_end().lines().count() == 1, "{stderr}");
        assert!(stderr.contains("needs macOS 12.0"), "{stderr}");
        assert!(!bundle.exists());
        return;
    }
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("installing macOS 15.0.1 (24A335) into"),
        "{stdout}"
    );
    assert!(stdout.contains("2 CPUs, 4096 MiB, 2 GiB disk"), "{stdout}");
    assert!(stdout.contains("installed; boot it with"), "{stdout}");
    // Not a terminal: one line per tenth, ending at 100 %.
    let bars: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("installing: ["))
        .collect();
    assert!(bars.len() >= 2, "{stderr}");
    assert!(bars.last().unwrap().ends_with("100%"), "{stderr}");
    assert_eq!(
        common::sim::arm64::installed_build(&bundle.join("Disk.img")).as_deref(),
        Some("24A335")
    );

    let (code, stdout, stderr) = run_example("macos_vm", &["--bundle", bundle_arg]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("started"), "{stdout}");
    assert!(
        stdout.contains("the virtual machine stopped (GuestStopped)"),
        "{stdout}"
    );
    if common::macos("13.0") {
        let (code, stdout, stderr) =
            run_example("macos_vm", &["--bundle", bundle_arg, "--recovery"]);
        assert_eq!(code, Some(0), "{stdout}{stderr}");
        assert!(stdout.contains("(GuestStopped)"), "{stdout}");
    }
}

#[test]
fn macos_examples_report_bad_input_in_one_line_and_leave_nothing_behind() {
    let dir = common::TempDir::new("macos-examples-bad");
    let ipsw = fake_ipsw(&dir);
    let ipsw = ipsw.to_str().unwrap();
    let not_ipsw = dir.file("text.ipsw", b"hello");
    let zip = dir.file("other.ipsw", b"PK\x03\x04 another archive");
    let occupied = dir.path().join("occupied");
    std::fs::create_dir(&occupied).unwrap();
    std::fs::write(occupied.join("keep.txt"), b"mine").unwrap();
    let fresh = dir.path().join("fresh.bundle");
    let fresh_arg = fresh.to_str().unwrap();
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "macos_install",
            vec!["--bundle", fresh_arg],
            "--ipsw is required",
        ),
        (
            "macos_install",
            vec!["--ipsw", ipsw],
            "--bundle is required",
        ),
        (
            "macos_install",
            vec!["--ipsw", ipsw, "--bundle", fresh_arg, "--bogus", "1"],
            "unknown flag --bogus",
        ),
        (
            "macos_install",
            vec!["--ipsw", not_ipsw.to_str().unwrap(), "--bundle", fresh_arg],
            "not an IPSW restore image",
        ),
        (
            "macos_install",
            vec!["--ipsw", ipsw, "--bundle", occupied.to_str().unwrap()],
            "is not empty",
        ),
        (
            "macos_install",
            vec!["--ipsw", ipsw, "--bundle", fresh_arg, "--cpus", "1"],
            "CPU",
        ),
        (
            "macos_install",
            vec!["--ipsw", zip.to_str().unwrap(), "--bundle", fresh_arg],
            "The restore image is invalid",
        ),
        ("macos_vm", vec![], "--bundle is required"),
        ("macos_vm", vec!["--bundle", fresh_arg], "fresh.bundle"),
        (
            "macos_vm",
            vec!["--bundle", occupied.to_str().unwrap(), "--width", "wide"],
            "bad --width",
        ),
    ];
    for (name, args, expected) in cases {
        let (code, stdout, stderr) = run_example(name, &args);
        assert_eq!(code, Some(1), "{name} {args:?}: {stdout}{stderr}");
        let line = stderr.trim_end();
        assert_eq!(line.lines().count(), 1, "{name} {args:?}: {stderr}");
        assert!(line.starts_with(&format!("{name}: ")), "{line}");
        if common::macos("12.0")
            || expected.starts_with("--")
            || expected.starts_with("unknown")
            || expected.starts_with("bad")
        {
            assert!(line.contains(expected), "{name} {args:?}: {line}");
        }
        assert!(!fresh.exists(), "{name} {args:?} left {}", fresh.display());
    }
    // An install that fails half way removes the bundle it made, and only that.
    if common::macos("12.0") {
        let output = Command::new(example("macos_install"))
            .args(["--ipsw", ipsw, "--bundle", fresh_arg])
            .env("ARCBOX_VZ_SIM_INSTALL_FAIL", "10007")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        let last = stderr.trim_end().lines().last().unwrap_or_default();
        assert!(
            last.starts_with("macos_install: ") && last.contains("removed"),
            "{stderr}"
        );
        assert!(!fresh.exists());
    }
    assert_eq!(std::fs::read(occupied.join("keep.txt")).unwrap(), b"mine");
    assert_eq!(std::fs::read_dir(&occupied).unwrap().count(), 1);
}

/// Runs example `name` with `args` and asserts it fails with exit status 1 and one
/// line on stderr that starts with its name and contains `expected`, never a panic.
fn assert_one_line_failure<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(
    name: &str,
    args: &[S],
    expected: &str,
) {
    let output = Command::new(example(name)).args(args).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{name} {args:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.lines().count(),
        1,
        "one line for {name} {args:?}: {stderr}"
    );
    assert!(
        stderr.starts_with(&format!("{name}: ")) && stderr.contains(expected),
        "{name} {args:?}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
