//! Shares a host directory with the guest over virtiofs, then swaps it for another
//! while the guest runs. Driven by a `block_on` of a few lines: no async runtime.
//!
//! ```text
//! cargo run --example virtiofs -- --kernel Image --initrd initramfs.cpio.gz --share DIR [--tag share]
//! ```
//!
//! In the guest: `mount -t virtiofs share /mnt`.

#[cfg(arcbox_vz_sim)]
use arcbox_vz_sim as _; // links the Linux simulator

#[cfg(any(target_os = "macos", arcbox_vz_sim))]
mod common;

/// A complete executor: poll on this thread, park until woken.
#[cfg(any(target_os = "macos", arcbox_vz_sim))]
fn run() -> Result<(), Box<dyn std::error::Error>> {
    use arcbox_vz::*;

    let flags = common::Flags::from_env();
    flags.check(&["kernel", "initrd", "share", "tag"])?;
    let directory = flags.get("share")?.ok_or("--share DIR is required")?;
    let tag = flags.get("tag")?.unwrap_or_else(|| "share".to_owned());
    let (mut config, console_log) = common::logged_configuration(&flags, "virtiofs")?;
    let share = SingleDirectoryShare::new(SharedDirectory::new(&directory, false)?);
    config.set_directory_sharing_devices(vec![VirtioFileSystemDeviceConfiguration::new(
        &tag, share,
    )?]);
    let vm = config.build()?;

    common::block_on(vm.start())?;
    println!("started; guest console in {}", console_log.display());
    let device = vm.directory_sharing_devices().remove(0);
    println!(
        "sharing {directory} as virtiofs tag {:?}; in the guest: mount -t virtiofs {tag} /mnt",
        device.tag()
    );

    // Swap in a read-only share of the temp directory while the guest runs.
    let other = std::env::temp_dir();
    device.set_share(Some(
        SingleDirectoryShare::new(SharedDirectory::new(&other, true)?).into(),
    ))?;
    println!("now sharing {} read-only", other.display());

    println!("stopped: {:?}", common::block_on(common::stop(&vm))?);
    Ok(())
}

#[cfg(any(target_os = "macos", arcbox_vz_sim))]
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One readable line, such as "directory sharing ... needs macOS 12.0".
            eprintln!("virtiofs: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(not(any(target_os = "macos", arcbox_vz_sim)))]
fn main() {
    eprintln!("virtiofs needs macOS (or, on Linux, the arcbox-vz simulator: see the README)");
    std::process::exit(1);
}
