//! Shared by the real-kernel tests (`tests/macos_*.rs`): finding the test guest,
//! skipping when there is none or the Mac cannot run one, building its
//! configuration, and a scripted serial console.
//!
//! The guest is PUI PUI Linux 1.0.3 (<https://github.com/Code-Hex/puipui-linux>),
//! a kernel and initramfs made for testing Virtualization.framework, which
//! `.github/workflows/ci.yml` downloads. `ARCBOX_VZ_TEST_KERNEL` names the kernel
//! (the uncompressed arm64 `Image`, or the x86_64 `bzImage`) and
//! `ARCBOX_VZ_TEST_INITRD` its `initramfs.cpio.gz`.
//!
//! What the tests that log in rely on from that initramfs, with where it is stated:
//! - `console=hvc0` puts a getty on the virtio console; the root password is
//!   `passwd` (its `fs/init` runs `chpasswd`; Code-Hex/vz's tests log in as
//!   root/passwd; older builds had no password, which `Console::login` also takes);
//! - its `fs/etc/init.d/rcS` starts `acpid` with a power-button action that runs
//!   `poweroff`, dropbear, and `socat VSOCK-LISTEN:<port>` in front of dropbear,
//!   the port coming from `vsock_port=` on the kernel command line (default 2222;
//!   Code-Hex/vz's tests speak SSH over it);
//! - the kernel has virtio-fs and vsock built in, and `socat` is in the initramfs.
//!
//! Nothing here has run on a Mac yet: the Apple targets are only type-checked.
#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use arcbox_vz::{
    FileHandleSerialPortAttachment, LinuxBootLoader, VZError,
    VirtioConsoleDeviceSerialPortConfiguration, VirtioEntropyDeviceConfiguration,
    VirtioFileSystemDeviceConfiguration, VirtioSocketDeviceConfiguration, VirtualMachine,
    VirtualMachineConfiguration, VmEvent, VmEvents, VsockStream,
};

/// The vsock port PUI PUI Linux serves dropbear on, passed as `vsock_port=` too.
pub(crate) const GUEST_VSOCK_PORT: u32 = 2222;

/// How long the guest may take from `start` to a login prompt. GitHub's runners are
/// themselves virtual machines, so this is generous.
pub(crate) const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// How long one shell command or one lifecycle step may take.
pub(crate) const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Says that a test skipped and why. Written to the process's standard error
/// directly rather than with `eprintln!`, which the test harness captures, so that
/// every skip shows in CI logs.
pub(crate) fn skip(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "{test}: skipped: {why}");
}

/// What a test needs from the guest.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Needs {
    /// Only a kernel: the test reads the boot messages.
    Kernel,
    /// PUI PUI Linux's initramfs too: the test logs in or talks to its services.
    Userland,
}

/// The guest files named by the environment.
pub(crate) struct TestGuest {
    pub(crate) kernel: PathBuf,
    pub(crate) initrd: Option<PathBuf>,
}

/// The test guest, or `None` after saying why the test skips: no kernel given, a
/// Mac that cannot run virtual machines (`isSupported` is false, as on GitHub's
/// Apple-silicon runners, which have no nested virtualization), or no initramfs for
/// a test that needs its userland.
pub(crate) fn guest(test: &str, needs: Needs) -> Option<TestGuest> {
    let Some(kernel) = std::env::var_os("ARCBOX_VZ_TEST_KERNEL") else {
        skip(
            test,
            "set ARCBOX_VZ_TEST_KERNEL to an uncompressed Linux kernel (and \
             ARCBOX_VZ_TEST_INITRD to its initramfs) to boot a real guest",
        );
        return None;
    };
    if !arcbox_vz::is_supported() {
        skip(
            test,
            "this Mac cannot run virtual machines (VZVirtualMachine.isSupported is false; \
             GitHub's Apple-silicon runners have no nested virtualization)",
        );
        return None;
    }
    let initrd = std::env::var_os("ARCBOX_VZ_TEST_INITRD").map(PathBuf::from);
    if needs == Needs::Userland && initrd.is_none() {
        skip(
            test,
            "this test uses the guest's userland: set ARCBOX_VZ_TEST_INITRD to PUI PUI \
             Linux's initramfs.cpio.gz",
        );
        return None;
    }
    Some(TestGuest {
        kernel: PathBuf::from(kernel),
        initrd,
    })
}

/// A configuration for the test guest: 2 CPUs, 512 MiB, the console on `console`
/// (the guest end of [`Console::new`]), an entropy device and a vsock device, no
/// network (none is needed, and PUI PUI's rcS then goes straight on: busybox
/// `udhcpc` returns at once when `eth0` does not exist), and `shares` as virtio-fs
/// devices.
pub(crate) fn configuration(
    guest: &TestGuest,
    console: &UnixStream,
    shares: Vec<VirtioFileSystemDeviceConfiguration>,
) -> VirtualMachineConfiguration {
    let mut boot = LinuxBootLoader::new(&guest.kernel)
        .unwrap_or_else(|e| panic!("ARCBOX_VZ_TEST_KERNEL={}: {e}", guest.kernel.display()));
    if let Some(initrd) = &guest.initrd {
        boot.set_initial_ramdisk(initrd)
            .unwrap_or_else(|e| panic!("ARCBOX_VZ_TEST_INITRD={}: {e}", initrd.display()));
    }
    boot.set_command_line(&format!("console=hvc0 vsock_port={GUEST_VSOCK_PORT}"))
        .unwrap();
    let attachment = FileHandleSerialPortAttachment::new(Some(console), Some(console)).unwrap();
    let mut config = VirtualMachineConfiguration::new().unwrap();
    config
        .set_cpu_count(2)
        .set_memory_size(512 * 1024 * 1024)
        .set_boot_loader(boot)
        .set_serial_ports(vec![VirtioConsoleDeviceSerialPortConfiguration::new(
            attachment,
        )])
        .set_entropy_devices(vec![VirtioEntropyDeviceConfiguration::new()])
        .set_socket_devices(vec![VirtioSocketDeviceConfiguration::new()]);
    if !shares.is_empty() {
        config.set_directory_sharing_devices(shares);
    }
    config
}

/// A started test guest.
pub(crate) struct Booted {
    pub(crate) vm: VirtualMachine,
    pub(crate) console: Console,
    /// Kept to build a second virtual machine from (save/restore).
    pub(crate) config: VirtualMachineConfiguration,
}

/// Builds the test guest's configuration with `shares`, starts it and checks that
/// it runs.
pub(crate) fn boot(guest: &TestGuest, shares: Vec<VirtioFileSystemDeviceConfiguration>) -> Booted {
    let (console, guest_end) = Console::new();
    let config = configuration(guest, &guest_end, shares);
    start(config, console)
}

/// Builds a virtual machine from `config` (whose serial port is `console`'s guest
/// end), starts it and checks that it runs.
pub(crate) fn start(config: VirtualMachineConfiguration, console: Console) -> Booted {
    let vm = config
        .build()
        .unwrap_or_else(|e| panic!("the test guest's configuration: {e}"));
    within(STEP_TIMEOUT, vm.start())
        .expect("start did not finish in time")
        .unwrap_or_else(|e| panic!("start: {e}"));
    assert_eq!(vm.state(), arcbox_vz::VirtualMachineState::Running);
    Booted {
        vm,
        console,
        config,
    }
}

/// Runs `future` to completion on a small tokio runtime of its own, or gives up
/// (dropping it, which the crate's futures allow at any point) after `limit`.
pub(crate) fn within<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async { tokio::time::timeout(limit, future).await.ok() })
}

/// Waits up to `limit` for an event that `wanted` accepts, and returns it.
pub(crate) fn wait_for_event(
    events: &mut VmEvents,
    limit: Duration,
    what: &str,
    wanted: impl Fn(&VmEvent) -> bool,
) -> VmEvent {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match within(left, events.next()) {
            Some(Some(event)) if wanted(&event) => return event,
            Some(Some(event)) => seen.push(event),
            Some(None) => panic!("the event stream ended before {what}; saw {seen:?}"),
            None => panic!("no {what} within {limit:?}; saw {seen:?}"),
        }
    }
}

/// Connects to `port` in the guest, retrying while nothing listens there yet (the
/// guest is still booting), for up to `limit`.
pub(crate) fn connect_when_ready(
    vm: &VirtualMachine,
    port: u32,
    limit: Duration,
) -> Result<VsockStream, String> {
    let device = vm
        .socket_devices()
        .into_iter()
        .next()
        .ok_or("the virtual machine has no vsock device")?;
    let deadline = Instant::now() + limit;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        let attempt = left.min(Duration::from_secs(10));
        match within(attempt, device.connect(port)) {
            Some(Ok(stream)) => return Ok(stream),
            Some(Err(VZError::Io(e)))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionRefused
                ) && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(500));
            }
            Some(Err(e)) => {
                return Err(format!(
                    "connecting to guest vsock port {port} (attempt {attempts}): {e}"
                ));
            }
            None if Instant::now() < deadline => {} // a connect that hung: try again
            None => {
                return Err(format!(
                    "no connection to guest vsock port {port} within {limit:?} ({attempts} attempts)"
                ));
            }
        }
    }
}

/// Reads the first line the peer sends on `stream` (up to 256 bytes), waiting up
/// to [`STEP_TIMEOUT`].
pub(crate) fn first_line(stream: VsockStream) -> Result<String, String> {
    let mut stream = UnixStream::from(stream);
    stream
        .set_read_timeout(Some(STEP_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < 256 && !line.ends_with(b"\n") {
        match stream.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => line.push(byte[0]),
            Err(e) => {
                return Err(format!(
                    "reading from vsock after {:?}: {e}",
                    String::from_utf8_lossy(&line)
                ));
            }
        }
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_owned())
}

/// The host end of the guest's serial console: a thread drains everything the
/// guest prints (so the guest never blocks on a full socket), and the test waits
/// for text in it or types into it.
pub(crate) struct Console {
    input: UnixStream,
    output: Arc<Output>,
    /// Where the next search starts: everything before it has been matched.
    cursor: usize,
    next_command: u32,
}

#[derive(Default)]
struct Output {
    bytes: Mutex<Vec<u8>>,
    grew: Condvar,
}

impl Output {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.bytes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Console {
    /// A console and the guest end of its socket pair, for
    /// [`FileHandleSerialPortAttachment`].
    pub(crate) fn new() -> (Self, UnixStream) {
        let (host, guest) = UnixStream::pair().expect("a socket pair for the console");
        let reader = host
            .try_clone()
            .expect("a second descriptor for the console");
        reader
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("a read timeout on the console");
        let output = Arc::new(Output::default());
        let weak = Arc::downgrade(&output);
        std::thread::Builder::new()
            .name("guest-console".into())
            .spawn(move || drain(reader, &weak))
            .expect("the console thread");
        let console = Self {
            input: host,
            output,
            cursor: 0,
            next_command: 0,
        };
        (console, guest)
    }

    /// Everything the guest printed so far.
    pub(crate) fn transcript(&self) -> String {
        String::from_utf8_lossy(&self.output.lock()).into_owned()
    }

    /// The last 4 KiB of the transcript, for failure messages.
    fn tail(bytes: &[u8]) -> String {
        let start = bytes.len().saturating_sub(4096);
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    /// Waits up to `limit` for any of `needles` after the cursor. Moves the cursor
    /// past the earliest match and returns which needle it was.
    pub(crate) fn wait_for(&mut self, needles: &[&str], limit: Duration) -> Result<usize, String> {
        let deadline = Instant::now() + limit;
        let mut bytes = self.output.lock();
        loop {
            let found = needles
                .iter()
                .enumerate()
                .filter_map(|(i, needle)| {
                    find(&bytes[self.cursor..], needle.as_bytes()).map(|at| (at, i, needle.len()))
                })
                .min();
            if let Some((at, i, len)) = found {
                self.cursor += at + len;
                return Ok(i);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "waited {limit:?} for {needles:?} on the guest console; its last output:\n{}",
                    Self::tail(&bytes)
                ));
            }
            bytes = self
                .output
                .grew
                .wait_timeout(bytes, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Types `text` into the console.
    pub(crate) fn send(&mut self, text: &str) -> Result<(), String> {
        self.input
            .write_all(text.as_bytes())
            .map_err(|e| format!("writing to the guest console: {e}"))
    }

    /// Logs in as root on the guest's getty, answering the password prompt if there
    /// is one, and checks that a shell runs commands.
    pub(crate) fn login(&mut self) -> Result<(), String> {
        self.wait_for(&["login:"], BOOT_TIMEOUT)?;
        self.send("root\n")?;
        if self.wait_for(&["Password:", "# "], STEP_TIMEOUT)? == 0 {
            self.send("passwd\n")?;
            // Type nothing before the shell's prompt: login may discard early input.
            if self.wait_for(&["# ", "Login incorrect"], STEP_TIMEOUT)? == 1 {
                return Err(format!(
                    "the guest refused root/passwd; its last output:\n{}",
                    Self::tail(&self.output.lock())
                ));
            }
        }
        let (status, _) = self.run("true")?;
        if status != 0 {
            return Err(format!("`true` exited with {status} after login"));
        }
        Ok(())
    }

    /// Sends `command` to the shell, followed by a marker that carries its exit
    /// status; [`finish`](Self::finish) waits for that marker.
    pub(crate) fn start(&mut self, command: &str) -> Result<u32, String> {
        let id = self.next_command;
        self.next_command += 1;
        // The quotes split the marker, so the terminal's echo of this line never
        // matches it; only the output of `echo` does.
        self.send(&format!("{command}; echo \"ARCBOX\"\"-DONE-{id}:$?:\"\n"))?;
        Ok(id)
    }

    /// Waits up to [`STEP_TIMEOUT`] for the command `id` to finish, and returns its
    /// exit status and what the console showed meanwhile (the echoed command line
    /// included).
    pub(crate) fn finish(&mut self, id: u32) -> Result<(i32, String), String> {
        let start = self.cursor;
        let marker = format!("ARCBOX-DONE-{id}:");
        self.wait_for(&[&marker], STEP_TIMEOUT)?;
        let end = self.cursor - marker.len();
        self.wait_for(&[":"], STEP_TIMEOUT)?;
        let bytes = self.output.lock();
        let shown = String::from_utf8_lossy(&bytes[start..end]).into_owned();
        let status = String::from_utf8_lossy(&bytes[end + marker.len()..self.cursor - 1])
            .trim()
            .parse()
            .map_err(|e| format!("the exit status of command {id}: {e}"))?;
        Ok((status, shown))
    }

    /// Runs `command` in the guest's shell: its exit status and what it printed.
    pub(crate) fn run(&mut self, command: &str) -> Result<(i32, String), String> {
        let id = self.start(command)?;
        self.finish(id)
    }

    /// Runs `command` and fails unless it exits with 0; returns what it printed.
    pub(crate) fn run_ok(&mut self, command: &str) -> Result<String, String> {
        let (status, shown) = self.run(command)?;
        if status == 0 {
            Ok(shown)
        } else {
            Err(format!(
                "`{command}` exited with {status} in the guest; the console showed:\n{shown}"
            ))
        }
    }
}

/// The console thread: appends what the guest prints until the console is gone or
/// every guest end of the socket is closed.
fn drain(mut reader: UnixStream, output: &Weak<Output>) {
    let mut buf = [0u8; 4096];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                let Some(output) = output.upgrade() else {
                    return;
                };
                output.lock().extend_from_slice(&buf[..n]);
                output.grew.notify_all();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                if output.strong_count() == 0 {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Unwraps a helper's result, failing the test with its message as written.
pub(crate) fn check<T>(result: Result<T, String>) -> T {
    result.unwrap_or_else(|e| panic!("{e}"))
}
