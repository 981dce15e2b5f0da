//! Boots a real Linux kernel with Virtualization.framework and reads its banner on
//! the serial console, then stops it from the host. Needs a Mac that can run
//! virtual machines, a signed test binary (the cargo runner in .cargo/config.toml
//! signs it), and `ARCBOX_VZ_TEST_KERNEL=/path/to/Image` (plus optional
//! `ARCBOX_VZ_TEST_INITRD`); see `macos_guest` for the test guest. Anywhere else it
//! says why it skipped.

#[cfg(target_os = "macos")]
mod macos_guest;

#[cfg(target_os = "macos")]
#[test]
fn boots_a_real_kernel_and_reads_its_console() {
    use arcbox_vz::{StopReason, VirtualMachineState};
    use macos_guest::{BOOT_TIMEOUT, Needs, STEP_TIMEOUT, check, within};

    let Some(guest) =
        macos_guest::guest("boots_a_real_kernel_and_reads_its_console", Needs::Kernel)
    else {
        return;
    };
    let mut booted = macos_guest::boot(&guest, Vec::new());
    check(booted.console.wait_for(&["Linux version"], BOOT_TIMEOUT));

    within(STEP_TIMEOUT, booted.vm.stop())
        .expect("stop did not finish in time")
        .unwrap_or_else(|e| panic!("stop: {e}"));
    assert_eq!(
        within(STEP_TIMEOUT, booted.vm.wait_until_stopped()),
        Some(StopReason::HostStopped)
    );
    assert_eq!(booted.vm.state(), VirtualMachineState::Stopped);
}

#[cfg(not(target_os = "macos"))]
#[test]
fn boots_a_real_kernel_and_reads_its_console() {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "boots_a_real_kernel_and_reads_its_console: skipped: booting a real kernel needs \
         macOS with Virtualization.framework; the simulator suites cover the same paths \
         against the fake framework"
    );
}
