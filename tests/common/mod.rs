//! Helpers shared by the simulator test suites.
#![allow(dead_code)] // each test binary uses a different subset

#[allow(unused_imports)] // not every test binary uses the simulator's hooks
pub(crate) use arcbox_vz_sim as sim;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "arcbox-vz-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    /// Writes a file with `contents` and returns its path.
    pub(crate) fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// A stand-in for an uncompressed kernel (an ELF header; the simulator never runs it).
    pub(crate) fn kernel(&self) -> PathBuf {
        self.file(
            "vmlinux",
            b"\x7fELF\x02\x01\x01\0fake kernel for the simulator",
        )
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Open file descriptors of this process.
pub(crate) fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Threads of this process.
pub(crate) fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// A whole executor in a few lines: poll on this thread, park until woken.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// The `(argument, reason)` of an `InvalidArgument`; panics on any other error.
pub(crate) fn invalid_argument(err: arcbox_vz::VZError) -> (&'static str, String) {
    match err {
        arcbox_vz::VZError::InvalidArgument { argument, reason } => (argument, reason),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

/// Whether the macOS release the simulator plays (`ARCBOX_VZ_SIM_MACOS`) is `min`
/// (such as `"13.0"`) or later.
pub(crate) fn macos(min: &str) -> bool {
    sim::macos_at_least(min)
}

/// The result of something macOS `min` introduced. Below that release it must be
/// `Unsupported { min_macos: min }`, and this returns `None` (the caller skips the
/// rest); from that release on it must succeed, and this returns the value.
#[track_caller]
pub(crate) fn since<T: std::fmt::Debug>(
    min: &'static str,
    result: Result<T, arcbox_vz::VZError>,
) -> Option<T> {
    if macos(min) {
        return Some(result.unwrap_or_else(|e| panic!("macOS {min} has it, yet: {e:?}")));
    }
    match result {
        Err(arcbox_vz::VZError::Unsupported { min_macos, .. }) if min_macos == min => None,
        other => panic!(
            "before macOS {min}, expected Unsupported {{ min_macos: {min:?} }}, got {other:?}"
        ),
    }
}

/// A configuration that validates: 2 CPUs, 512 MiB and a kernel.
pub(crate) fn minimal_config(dir: &TempDir) -> arcbox_vz::VirtualMachineConfiguration {
    let mut config = arcbox_vz::VirtualMachineConfiguration::new().unwrap();
    config
        .set_cpu_count(2)
        .set_memory_size(512 * 1024 * 1024)
        .set_boot_loader(arcbox_vz::LinuxBootLoader::new(dir.kernel()).unwrap());
    config
}

/// `minimal_config` with a vsock device.
pub(crate) fn vm_config(dir: &TempDir) -> arcbox_vz::VirtualMachineConfiguration {
    let mut config = minimal_config(dir);
    config.set_socket_devices(vec![arcbox_vz::VirtioSocketDeviceConfiguration::new()]);
    config
}

#[allow(unused_imports)] // not every test binary runs children
pub(crate) use sim::child::{ChildOutcome, isolated};

/// A disk device of this machine that answers the sector-size request (`BLKSSZGET`),
/// open for reading and writing (nothing is ever written), with its path: a loop,
/// zram or RAM disk. `None` when there is none to open (the caller skips, saying so).
pub(crate) fn disk_device() -> Option<(std::fs::File, PathBuf)> {
    use std::os::fd::AsRawFd;
    let candidates = (0..8)
        .map(|i| format!("/dev/loop{i}"))
        .chain(["/dev/zram0".to_string(), "/dev/ram0".to_string()]);
    for path in candidates {
        let Ok(file) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
        else {
            continue;
        };
        let mut size: u32 = 0;
        // SAFETY: BLKSSZGET writes one int through the pointer, valid for that write;
        // any other kind of descriptor fails with ENOTTY and writes nothing.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), 0x1268, &raw mut size) };
        if rc == 0 {
            return Some((file, PathBuf::from(path)));
        }
    }
    None
}

/// Asserts that `result` is `Unsupported { min_macos: min }`: what a feature newer than
/// the macOS played gives, whatever its input (for the inputs `since` cannot take,
/// such as bad ones).
#[track_caller]
pub(crate) fn assert_unsupported<T: std::fmt::Debug>(
    min: &'static str,
    result: Result<T, arcbox_vz::VZError>,
) {
    match result {
        Err(arcbox_vz::VZError::Unsupported { min_macos, .. }) if min_macos == min => {}
        other => panic!("expected Unsupported {{ min_macos: {min:?} }}, got {other:?}"),
    }
}

/// Stops the running `vm` on any release and waits until it has stopped: with
/// `stop()` from macOS 12; before it, where `stop()` must be `Unsupported`, by asking
/// the guest to power off (`request_stop`).
pub(crate) fn stop_vm(vm: &arcbox_vz::VirtualMachine) {
    if since("12.0", block_on(vm.stop())).is_some() {
        return;
    }
    vm.request_stop().unwrap();
    assert_eq!(
        block_on(vm.wait_until_stopped()),
        arcbox_vz::StopReason::GuestStopped
    );
}

/// `stop_vm` for async code, for a running or paused `vm`, checking why it stopped.
/// From macOS 12: a force stop (`stop()`), after which the state is already `Stopped`
/// and the reason `HostStopped`. Before: `stop()` must be
/// `Unsupported { min_macos: "12.0" }`, so a paused VM is resumed and the guest asked
/// to power off (`request_stop()`); the reason is `GuestStopped`.
pub(crate) async fn stop_checked(vm: &arcbox_vz::VirtualMachine) {
    use arcbox_vz::{StopReason, VirtualMachineState as S};
    let reason = if since("12.0", vm.stop().await).is_some() {
        assert_eq!(
            vm.state(),
            S::Stopped,
            "a force stop completes once stopped"
        );
        StopReason::HostStopped
    } else {
        if vm.state() == S::Paused {
            vm.resume().await.unwrap();
        }
        vm.request_stop().unwrap();
        StopReason::GuestStopped
    };
    assert_eq!(vm.wait_until_stopped().await, reason);
}

/// The next event of `events` that `wanted` accepts, skipping the others; `None` when
/// none comes within 5 s or the stream ends (a missing callback fails the test instead
/// of hanging it).
pub(crate) fn next_event_where(
    events: &mut arcbox_vz::VmEvents,
    wanted: impl Fn(&arcbox_vz::VmEvent) -> bool,
) -> Option<arcbox_vz::VmEvent> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        match events.try_next() {
            Some(event) if wanted(&event) => return Some(event),
            Some(_) => {}
            None => std::thread::sleep(std::time::Duration::from_millis(1)),
        }
    }
    None
}
