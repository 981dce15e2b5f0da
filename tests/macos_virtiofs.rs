//! virtio-fs with a real guest: PUI PUI Linux mounts a read-write and a read-only
//! shared directory (commands typed on its console after logging in), reads what
//! the host wrote, and writes back where it may. Needs a Mac that can run virtual
//! machines (macOS 12 for directory sharing) and PUI PUI Linux in
//! `ARCBOX_VZ_TEST_KERNEL` / `ARCBOX_VZ_TEST_INITRD` (see `macos_guest`); anywhere
//! else it says why it skipped.

#[cfg(target_os = "macos")]
mod macos_guest;

#[cfg(target_os = "macos")]
#[test]
fn guest_mounts_shared_directories() {
    use arcbox_vz::{
        SharedDirectory, SingleDirectoryShare, VZError, VirtioFileSystemDeviceConfiguration,
    };
    use macos_guest::{Needs, STEP_TIMEOUT, check, within};

    const TEST: &str = "guest_mounts_shared_directories";
    let Some(guest) = macos_guest::guest(TEST, Needs::Userland) else {
        return;
    };
    let dir = Scratch::new();
    let (rw, ro) = (dir.0.join("rw"), dir.0.join("ro"));
    std::fs::create_dir_all(&rw).unwrap();
    std::fs::create_dir_all(&ro).unwrap();
    // A value the guest cannot guess, and that the command lines never contain.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let token = format!("from-the-host-{}-{nanos}", std::process::id());
    std::fs::write(rw.join("host.txt"), format!("{token}\n")).unwrap();
    std::fs::write(ro.join("host.txt"), format!("{token}\n")).unwrap();

    let share = |path: &std::path::Path, read_only: bool, tag: &str| {
        SharedDirectory::new(path, read_only)
            .map(SingleDirectoryShare::new)
            .and_then(|s| VirtioFileSystemDeviceConfiguration::new(tag, s))
    };
    let shares = match (
        share(&rw, false, "arcbox-rw"),
        share(&ro, true, "arcbox-ro"),
    ) {
        (Ok(rw), Ok(ro)) => vec![rw, ro],
        (Err(VZError::Unsupported { min_macos, .. }), _) => {
            macos_guest::skip(TEST, &format!("directory sharing needs macOS {min_macos}"));
            return;
        }
        (Err(e), _) | (_, Err(e)) => panic!("a shared directory: {e}"),
    };
    let mut booted = macos_guest::boot(&guest, shares);
    let console = &mut booted.console;
    check(console.login());

    check(console.run_ok("mkdir -p /mnt/rw /mnt/ro"));
    check(console.run_ok("mount -t virtiofs arcbox-rw /mnt/rw"));
    check(console.run_ok("mount -t virtiofs arcbox-ro /mnt/ro"));
    let shown = check(console.run_ok("cat /mnt/rw/host.txt /mnt/ro/host.txt"));
    assert_eq!(
        shown.matches(token.as_str()).count(),
        2,
        "the guest should print the host's file from both shares; the console showed:\n{shown}"
    );

    check(console.run_ok("echo from-the-guest > /mnt/rw/guest.txt && sync"));
    assert_eq!(
        std::fs::read_to_string(rw.join("guest.txt")).unwrap(),
        "from-the-guest\n"
    );
    // The read-only share refuses writes: `!` makes the refusal exit 0.
    check(console.run_ok("! touch /mnt/ro/refused 2>/dev/null"));
    assert!(!ro.join("refused").exists());

    within(STEP_TIMEOUT, booted.vm.stop())
        .expect("stop did not finish in time")
        .unwrap_or_else(|e| panic!("stop: {e}"));
}

/// A directory under the system temp dir, removed on drop.
#[cfg(target_os = "macos")]
struct Scratch(std::path::PathBuf);

#[cfg(target_os = "macos")]
impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("arcbox-vz-virtiofs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

#[cfg(target_os = "macos")]
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(not(target_os = "macos"))]
#[test]
fn guest_mounts_shared_directories() {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "guest_mounts_shared_directories: skipped: it boots a real guest, which needs \
         macOS with Virtualization.framework; tests/config_sharing.rs and \
         tests/runtime_devices.rs cover the same API in the simulator"
    );
}
