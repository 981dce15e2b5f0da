//! Control hooks for the Apple-silicon-only fakes: Rosetta for Linux
//! (`csrc/vz_rosetta.m`), save/restore (`csrc/vz_save_restore.m`) and the macOS start
//! options (`csrc/vz_start_options.m`).
//!
//! The settings are process-wide and are not reset by [`crate::scenario`]: call
//! [`reset`] at the start of each test that uses them (scenarios run one at a time).
//!
//! A saved-state file of the fake is text, five lines:
//!
//! ```text
//! arcbox-vz-sim saved machine state 1
//! host: <host name>
//! macos: <major * 100 + minor of the simulated release>
//! configuration: <CPUs, memory, device counts, MAC addresses>
//! end
//! ```
//!
//! Restoring refuses a file from another host ("permission denied"), from a newer
//! release, or for another configuration ("invalid argument"), as Apple documents.

use std::ffi::{c_char, c_long};

unsafe extern "C" {
    fn sim_rosetta_set_availability(availability: c_long);
    fn sim_rosetta_set_install_outcome(outcome: c_long);
    fn sim_rosetta_install_calls() -> c_long;
    fn sim_rosetta_describe_shares(buffer: *mut c_char, size: usize) -> usize;
    fn sim_save_fail_next(code: c_long);
    fn sim_restore_fail_next(code: c_long);
    fn sim_last_start_options() -> c_long;
    fn sim_reset_last_start_options();
}

/// The first line of every saved-state file the fake writes.
pub const SAVED_STATE_MAGIC: &str = "arcbox-vz-sim saved machine state 1";

/// What `+[VZLinuxRosettaDirectoryShare availability]` answers
/// (`VZLinuxRosettaAvailability`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RosettaAvailability {
    /// 0: this Mac cannot run Rosetta for Linux.
    NotSupported = 0,
    /// 1: supported, not installed (the default).
    NotInstalled = 1,
    /// 2: installed.
    Installed = 2,
}

/// How `+installRosettaWithCompletionHandler:` ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstallOutcome {
    /// The handler gets nil and Rosetta becomes installed (the default).
    Succeed,
    /// The handler gets a `VZErrorDomain` error with this code (the user cancelled,
    /// the download failed...); nothing changes.
    Fail(i64),
    /// The framework releases the handler without calling it.
    NeverAnswer,
}

/// What the last `-startWithOptions:completionHandler:` received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartOptionsSeen {
    /// A `VZVirtualMachineStartOptions`.
    Base,
    /// A `VZMacOSVirtualMachineStartOptions`, with its `startUpFromMacOSRecovery`.
    MacOS {
        /// `startUpFromMacOSRecovery`.
        recovery: bool,
    },
}

/// Puts every hook of this module back to its default: Rosetta not installed,
/// installs succeed, no injected save/restore failure, no start options seen.
pub fn reset() {
    set_rosetta_availability(RosettaAvailability::NotInstalled);
    set_install_outcome(InstallOutcome::Succeed);
    fail_next_save(0);
    fail_next_restore(0);
    fail_next_install(0);
    // SAFETY: stores an atomic.
    unsafe { sim_reset_last_start_options() }
}

/// Sets what `+availability` answers from now on.
pub fn set_rosetta_availability(availability: RosettaAvailability) {
    // SAFETY: sets a value under the fake's lock.
    unsafe { sim_rosetta_set_availability(availability as c_long) }
}

/// Sets how the next installs end.
pub fn set_install_outcome(outcome: InstallOutcome) {
    let raw = match outcome {
        InstallOutcome::Succeed => 0,
        InstallOutcome::Fail(code) => {
            assert!(code > 0, "a failure code is positive");
            code
        }
        InstallOutcome::NeverAnswer => -1,
    };
    // SAFETY: sets a value under the fake's lock.
    unsafe { sim_rosetta_set_install_outcome(raw) }
}

/// How many times `+installRosettaWithCompletionHandler:` was called in this process.
pub fn install_calls() -> i64 {
    // SAFETY: reads a value under the fake's lock.
    unsafe { sim_rosetta_install_calls() }
}

/// The caching options of every live `VZLinuxRosettaDirectoryShare`, as the framework
/// holds them: `"none"`, `"unix:<path>"` or `"abstract:<name>"`.
pub fn rosetta_share_options() -> Vec<String> {
    // SAFETY: with a null buffer the hook only returns the length it needs.
    let needed = unsafe { sim_rosetta_describe_shares(std::ptr::null_mut(), 0) };
    let mut buffer = vec![0u8; needed + 64];
    // SAFETY: the buffer is valid for `len` bytes; the hook writes at most that many,
    // NUL included.
    let written = unsafe { sim_rosetta_describe_shares(buffer.as_mut_ptr().cast(), buffer.len()) };
    assert!(written < buffer.len(), "a share appeared between two calls");
    buffer.truncate(written);
    String::from_utf8(buffer)
        .expect("descriptions are UTF-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The next save fails with this `VZErrorDomain` code, writing nothing (0: none).
pub fn fail_next_save(code: i64) {
    // SAFETY: stores an atomic.
    unsafe { sim_save_fail_next(code) }
}

/// The next restore of a good file fails with this `VZErrorDomain` code (0: none).
pub fn fail_next_restore(code: i64) {
    // SAFETY: stores an atomic.
    unsafe { sim_restore_fail_next(code) }
}

/// What the last `-startWithOptions:completionHandler:` received since [`reset`].
pub fn last_start_options() -> Option<StartOptionsSeen> {
    // SAFETY: reads an atomic.
    match unsafe { sim_last_start_options() } {
        0 => None,
        1 => Some(StartOptionsSeen::Base),
        2 => Some(StartOptionsSeen::MacOS { recovery: false }),
        3 => Some(StartOptionsSeen::MacOS { recovery: true }),
        other => panic!("unknown start options code {other}"),
    }
}

unsafe extern "C" {
    fn sim_restore_image_requests() -> c_long;
    fn sim_restore_image_fetch_fail_next(code: c_long);
}

/// How many `VZMacOSRestoreImage` loads and fetches the fake has answered in this
/// process (`csrc/vz_macos_guest.m`).
pub fn restore_image_requests() -> i64 {
    // SAFETY: reads a value under the fake's lock.
    unsafe { sim_restore_image_requests() }
}

/// The next `+fetchLatestSupportedWithCompletionHandler:` fails with this
/// `VZErrorDomain` code (0: none).
pub fn fail_next_restore_image_fetch(code: i64) {
    // SAFETY: stores a value under the fake's lock.
    unsafe { sim_restore_image_fetch_fail_next(code) }
}

/// A fake IPSW restore image as `csrc/vz_macos_guest.m` reads it: the zip magic, a
/// header line, then `key=value` lines.
pub fn fake_ipsw(build: &str, version: &str, model: &str, cpus: usize, memory: u64) -> Vec<u8> {
    format!(
        "PK\x03\x04SIMIPSW1\nbuild={build}\nversion={version}\nmodel={model}\ncpus={cpus}\nmemory={memory}\n"
    )
    .into_bytes()
}

unsafe extern "C" {
    fn sim_installer_fail_next(code: c_long);
    fn sim_installer_installs() -> c_long;
    fn sim_installed_build(disk: *const c_char, buffer: *mut c_char, size: usize) -> usize;
}

/// The next `-[VZMacOSInstaller installWithCompletionHandler:]` fails half way with
/// this `VZErrorDomain` code (0: none) (`csrc/vz_macos_installer.m`).
pub fn fail_next_install(code: i64) {
    // SAFETY: stores an atomic.
    unsafe { sim_installer_fail_next(code) }
}

/// How many installs the fake has begun in this process.
pub fn installs() -> i64 {
    // SAFETY: reads an atomic.
    unsafe { sim_installer_installs() }
}

/// The build a successful fake install wrote at the start of the disk image at
/// `disk`, or `None` when nothing was installed there.
pub fn installed_build(disk: &std::path::Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(disk.as_os_str().as_bytes()).ok()?;
    let mut buffer = [0 as c_char; 64];
    // SAFETY: a NUL-terminated path and a buffer of the length passed; the fake
    // writes at most size - 1 bytes and a NUL.
    let len = unsafe { sim_installed_build(path.as_ptr(), buffer.as_mut_ptr(), buffer.len()) };
    // SAFETY: the buffer is NUL-terminated (above).
    let build = unsafe { std::ffi::CStr::from_ptr(buffer.as_ptr()) };
    (len > 0).then(|| build.to_string_lossy().into_owned())
}
