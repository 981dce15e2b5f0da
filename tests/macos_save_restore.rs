//! Saving and restoring a real guest (macOS 14, Apple silicon): the running guest is
//! paused and saved, the virtual machine is stopped, and a new one built from the
//! same configuration restores the file and resumes; the guest's vsock service then
//! answers again. Needs an Apple-silicon Mac that can run virtual machines and PUI
//! PUI Linux in `ARCBOX_VZ_TEST_KERNEL` / `ARCBOX_VZ_TEST_INITRD` (see
//! `macos_guest`); anywhere else it says why it skipped.

#[cfg(target_os = "macos")]
mod macos_guest;

#[cfg(all(target_os = "macos", target_arch = "aarch64"))]
#[test]
fn saves_and_restores_a_running_guest() {
    use arcbox_vz::{StopReason, VZError, VirtualMachineState};
    use macos_guest::{
        BOOT_TIMEOUT, GUEST_VSOCK_PORT, Needs, STEP_TIMEOUT, check, connect_when_ready, first_line,
        within,
    };

    const TEST: &str = "saves_and_restores_a_running_guest";
    let Some(guest) = macos_guest::guest(TEST, Needs::Userland) else {
        return;
    };
    let (console, guest_end) = macos_guest::Console::new();
    let config = macos_guest::configuration(&guest, &guest_end, Vec::new());
    match config.validate_save_restore_support() {
        Ok(()) => {}
        Err(VZError::Unsupported { min_macos, .. }) => {
            macos_guest::skip(
                TEST,
                &format!("saving a virtual machine needs macOS {min_macos}"),
            );
            return;
        }
        Err(VZError::InvalidConfiguration(reason)) => {
            macos_guest::skip(
                TEST,
                &format!("the framework cannot save this configuration: {reason}"),
            );
            return;
        }
        Err(e) => panic!("validate_save_restore_support: {e}"),
    }
    let booted = macos_guest::start(config, console);
    let vm = &booted.vm;
    let banner = check(connect_when_ready(vm, GUEST_VSOCK_PORT, BOOT_TIMEOUT).and_then(first_line));
    assert!(banner.starts_with("SSH-2.0-"), "vsock banner {banner:?}");

    let dir = std::env::temp_dir().join(format!("arcbox-vz-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let saved = dir.join("guest.vzvmsave");
    let _ = std::fs::remove_file(&saved); // the framework does not overwrite a save

    within(STEP_TIMEOUT, vm.pause())
        .expect("pause did not finish in time")
        .unwrap_or_else(|e| panic!("pause: {e}"));
    // Saving copies the guest's memory: allow as long as a boot.
    within(BOOT_TIMEOUT, vm.save_machine_state(&saved))
        .expect("saving did not finish in time")
        .unwrap_or_else(|e| panic!("save_machine_state: {e}"));
    let size = std::fs::metadata(&saved).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 0,
        "the saved state {} is empty or missing",
        saved.display()
    );
    assert_eq!(vm.state(), VirtualMachineState::Paused);
    within(STEP_TIMEOUT, vm.stop())
        .expect("stop did not finish in time")
        .unwrap_or_else(|e| panic!("stop: {e}"));
    assert_eq!(
        within(STEP_TIMEOUT, vm.wait_until_stopped()),
        Some(StopReason::HostStopped)
    );

    // A new virtual machine from the same configuration (as the framework requires).
    let restored = booted
        .config
        .build()
        .unwrap_or_else(|e| panic!("building the second virtual machine: {e}"));
    within(BOOT_TIMEOUT, restored.restore_machine_state(&saved))
        .expect("restoring did not finish in time")
        .unwrap_or_else(|e| panic!("restore_machine_state: {e}"));
    assert_eq!(restored.state(), VirtualMachineState::Paused);
    within(STEP_TIMEOUT, restored.resume())
        .expect("resume did not finish in time")
        .unwrap_or_else(|e| panic!("resume after restore: {e}"));
    assert_eq!(restored.state(), VirtualMachineState::Running);
    // The guest carries on where it was saved: its vsock service answers at once.
    let banner =
        check(connect_when_ready(&restored, GUEST_VSOCK_PORT, STEP_TIMEOUT).and_then(first_line));
    assert!(
        banner.starts_with("SSH-2.0-"),
        "vsock banner after restore {banner:?}"
    );

    within(STEP_TIMEOUT, restored.stop())
        .expect("stop did not finish in time")
        .unwrap_or_else(|e| panic!("stop after restore: {e}"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(all(target_os = "macos", not(target_arch = "aarch64")))]
#[test]
fn saves_and_restores_a_running_guest() {
    macos_guest::skip(
        "saves_and_restores_a_running_guest",
        "Virtualization.framework saves and restores virtual machines on Apple silicon only",
    );
}

#[cfg(not(target_os = "macos"))]
#[test]
fn saves_and_restores_a_running_guest() {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "saves_and_restores_a_running_guest: skipped: it boots a real guest, which needs \
         macOS on Apple silicon"
    );
}
