//! Test bodies in child processes: a hang, an abort or a panic becomes an outcome the
//! parent asserts on, never a stuck or crashed suite. Shared by the library's unit
//! tests and the integration tests.

/// What a test body did in a child process (see [`isolated`]).
#[derive(Debug)]
pub struct ChildOutcome {
    /// The exit status, or `None` when the child was killed for running too long.
    pub status: Option<std::process::ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl ChildOutcome {
    /// The body returned normally (no panic, no abort, no hang).
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// The child ran past its time limit and was killed.
    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }

    /// Panics with the child's output unless the body returned normally.
    #[track_caller]
    pub fn assert_succeeded(&self) {
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
pub fn isolated(
    test_name: &str,
    timeout: std::time::Duration,
    body: impl FnOnce(),
) -> ChildOutcome {
    isolated_with_env(test_name, timeout, &[], body)
}

/// [`isolated`], with `env` (name, value) pairs set in the child's environment from
/// its start: for the simulator's environment knobs, such as
/// `ARCBOX_VZ_SIM_GUEST_POWER_OFF_MS`, without touching the parent's.
pub fn isolated_with_env(
    test_name: &str,
    timeout: std::time::Duration,
    env: &[(&str, &str)],
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
    crate::scenario(|| spawn_and_wait(test_name, timeout, env))
}

fn spawn_and_wait(
    test_name: &str,
    timeout: std::time::Duration,
    env: &[(&str, &str)],
) -> ChildOutcome {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(ISOLATED_ENV, test_name)
        // The child replays the parent's choices: one seed reproduces both.
        .env("ARCBOX_VZ_SIM_SEED", crate::seed().to_string())
        .envs(env.iter().copied())
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
