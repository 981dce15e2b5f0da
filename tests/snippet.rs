//! The configuration snippet users start from, exactly as the documentation shows it.
//! It type-checks for every target (clippy builds it for both Apple targets) and runs
//! up to `build()` in the simulator.
#![cfg(any(target_os = "macos", arcbox_vz_sim))]

#[cfg(arcbox_vz_sim)]
mod common;

use arcbox_vz::{
    GenericPlatform, LinuxBootLoader, VZError, VirtualMachine, VirtualMachineConfiguration,
};

fn snippet(kernel: &str, host_path: &str) -> Result<VirtualMachine, VZError> {
    let mut config = VirtualMachineConfiguration::new()?;
    config.set_cpu_count(2).set_memory_size(512 * 1024 * 1024); // setters chain (&mut Self)
    let boot_loader = LinuxBootLoader::new(kernel)?;
    config.set_boot_loader(boot_loader);
    config.set_platform(GenericPlatform::new()?);

    use arcbox_vz::{SharedDirectory, SingleDirectoryShare, VirtioFileSystemDeviceConfiguration};
    let share = SharedDirectory::new(host_path, false)?; // read_only = false
    let dir_share = SingleDirectoryShare::new(share);
    let fs_device = VirtioFileSystemDeviceConfiguration::new("myshare", dir_share)?; // Result: VZ raises on a bad tag
    config.set_directory_sharing_devices(vec![fs_device]);
    config.validate()?;
    let vm: VirtualMachine = config.build()?;
    Ok(vm)
}

#[cfg(arcbox_vz_sim)]
#[test]
fn the_snippet_runs_up_to_build() {
    common::sim::scenario(|| {
        let dir = common::TempDir::new("snippet");
        let kernel = dir.kernel();
        let result = snippet(kernel.to_str().unwrap(), dir.path().to_str().unwrap());
        // The generic platform and directory sharing are macOS 12.
        let Some(vm) = common::since("12.0", result) else {
            return;
        };
        assert_eq!(vm.state(), arcbox_vz::VirtualMachineState::Stopped);
        assert_eq!(vm.directory_sharing_devices().len(), 1);
    });
}

#[cfg(target_os = "macos")]
#[test]
fn the_snippet_builds_on_a_mac() {
    let (Ok(kernel), Ok(dir)) = (
        std::env::var("ARCBOX_VZ_TEST_KERNEL"),
        std::env::var("HOME"),
    ) else {
        eprintln!("skipped: set ARCBOX_VZ_TEST_KERNEL to build the snippet against a real kernel");
        return;
    };
    snippet(&kernel, &dir).unwrap();
}
