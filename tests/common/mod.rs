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

/// What a test body did in a child process (see [`isolated`]).
#[derive(Debug)]
pub(crate) struct ChildOutcome {
    /// The exit status, or `None` when the child was killed for running too long.
    pub(crate) status: Option<std::process::ExitStatus>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl ChildOutcome {
    /// The body returned normally (no panic, no abort, no hang).
    pub(crate) fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// The child ran past its time limit and was killed.
    pub(crate) fn timed_out(&self) -> bool {
        self.status.is_none()
    }

    /// Panics with the child's output unless the body returned normally.
    #[track_caller]
    pub(crate) fn assert_succeeded(&self) {
        assert!(
            self.succeeded(),
            "the child {}:\n--- stdout\n{}\n--- stderr\n{}",
            match self.status {
                None => "hung and was killed".to_string(),
                Some(status) => format!("failed ({status})"),
            },
            self.stdout,
            self.stderr
        );
    }
}

const ISOLATED_ENV: &str = "ARCBOX_VZ_ISOLATED_TEST";

/// Runs `body` in a child process: the test binary runs itself again with only the
/// test `test_name` (its full path, as `cargo test` prints it), and the child runs
/// `body` and exits. A hang (killed after `timeout`), an abort or a panic in the body
/// is then an outcome the parent asserts on, never a stuck or crashed suite.
///
/// In the child this never returns.
pub(crate) fn isolated(
    test_name: &str,
    timeout: std::time::Duration,
    body: impl FnOnce(),
) -> ChildOutcome {
    if std::env::var(ISOLATED_ENV).as_deref() == Ok(test_name) {
        body();
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        // Skip the rest of the harness: only the body decides the outcome.
        std::process::exit(0);
    }
    // As a scenario of its own: the child's pipes and threads must not show up in
    // another test's count of descriptors or threads.
    sim::scenario(|| spawn_and_wait(test_name, timeout))
}

fn spawn_and_wait(test_name: &str, timeout: std::time::Duration) -> ChildOutcome {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(ISOLATED_ENV, test_name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain both pipes on threads so a chatty child never blocks on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    ChildOutcome {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}
