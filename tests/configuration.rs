//! The top-level configuration, boot loaders and platform, in the simulator.
#![cfg(arcbox_vz_sim)]

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use arcbox_vz::{
    BootLoader, EFIBootLoader, EFIVariableStore, GenericMachineIdentifier, GenericPlatform,
    LinuxBootLoader, VZError, VirtualMachineConfiguration,
};
use common::{TempDir, assert_unsupported, invalid_argument, minimal_config, sim, since};

const MIB: u64 = 1024 * 1024;

#[test]
fn system_limits() {
    sim::scenario(|| {
        assert_eq!(arcbox_vz::min_cpu_count(), 1);
        assert!(arcbox_vz::max_cpu_count() >= 2);
        assert_eq!(arcbox_vz::min_memory_size() % MIB, 0);
        assert!(arcbox_vz::max_memory_size() > arcbox_vz::min_memory_size());
        assert!(arcbox_vz::is_supported());
    });
}

#[test]
fn configuration_round_trips_and_validates() {
    sim::scenario(|| {
        let dir = TempDir::new("config");
        let mut config = VirtualMachineConfiguration::new().unwrap();
        assert_eq!(config.cpu_count(), 1, "framework default");
        assert_eq!(
            config.memory_size(),
            arcbox_vz::min_memory_size(),
            "framework default"
        );
        config.set_cpu_count(4).set_memory_size(1024 * MIB);
        assert_eq!(config.cpu_count(), 4);
        assert_eq!(config.memory_size(), 1024 * MIB);
        assert!(config.boot_loader().is_none());
        config.set_boot_loader(LinuxBootLoader::new(dir.kernel()).unwrap());
        assert!(matches!(config.boot_loader(), Some(BootLoader::Linux(_))));
        if let Some(platform) = since("12.0", GenericPlatform::new()) {
            config.set_platform(platform);
            assert!(config.platform().is_some());
        } else {
            assert!(config.platform().is_none());
        }
        config.validate().unwrap();
        drop(config.build().unwrap());
    });
}

#[test]
fn bad_cpu_and_memory_settings_name_what_to_change() {
    sim::scenario(|| {
        let dir = TempDir::new("limits");
        let max_cpus = arcbox_vz::max_cpu_count();
        for cpus in [0, max_cpus + 1] {
            let mut config = minimal_config(&dir);
            config.set_cpu_count(cpus);
            let (argument, reason) = invalid_argument(config.validate().unwrap_err());
            assert_eq!(argument, "CPU count");
            assert!(reason.contains(&cpus.to_string()), "{reason}");
        }
        let mut config = minimal_config(&dir);
        config.set_memory_size(512 * MIB + 1);
        let (argument, reason) = invalid_argument(config.validate().unwrap_err());
        assert_eq!(argument, "memory size");
        assert!(reason.contains("multiple of 1 MiB"), "{reason}");
        for memory in [
            arcbox_vz::min_memory_size() - MIB,
            arcbox_vz::max_memory_size() + MIB,
        ] {
            let mut config = minimal_config(&dir);
            config.set_memory_size(memory);
            let (argument, reason) = invalid_argument(config.validate().unwrap_err());
            assert_eq!(argument, "memory size");
            assert!(reason.contains("outside the allowed range"), "{reason}");
        }
        let config = VirtualMachineConfiguration::new().unwrap();
        let (argument, _) = invalid_argument(config.validate().unwrap_err());
        assert_eq!(argument, "boot loader");
        assert!(matches!(
            config.build(),
            Err(VZError::InvalidArgument { .. })
        ));
    });
}

#[test]
fn linux_boot_loader_round_trips() {
    sim::scenario(|| {
        let dir = TempDir::new("linux-boot");
        let kernel = dir.kernel();
        let initrd = dir.file("initrd.cpio.gz", &[0x1f, 0x8b, 8, 0, 0, 0]);
        let mut boot = LinuxBootLoader::new(&kernel).unwrap();
        assert_eq!(boot.kernel_path(), kernel);
        assert_eq!(boot.command_line(), "");
        assert_eq!(boot.initial_ramdisk_path(), None);
        boot.set_initial_ramdisk(&initrd)
            .unwrap()
            .set_command_line("console=hvc0 root=/dev/vda rw")
            .unwrap();
        assert_eq!(boot.initial_ramdisk_path(), Some(initrd));
        assert_eq!(boot.command_line(), "console=hvc0 root=/dev/vda rw");
        boot.clear_initial_ramdisk();
        assert_eq!(boot.initial_ramdisk_path(), None);
        // A relative kernel path comes back absolute.
        let cwd = std::env::current_dir().unwrap();
        std::env::set_current_dir(dir.path()).unwrap();
        let relative = LinuxBootLoader::new("vmlinux");
        std::env::set_current_dir(cwd).unwrap();
        assert_eq!(relative.unwrap().kernel_path(), kernel);
    });
}

#[test]
fn bad_kernels_are_refused_before_the_framework_sees_them() {
    sim::scenario(|| {
        let dir = TempDir::new("bad-kernel");
        let cases: Vec<(std::path::PathBuf, &str)> = vec![
            (dir.path().join("missing"), "does not exist"),
            (dir.path().to_path_buf(), "is a directory"),
            (
                dir.file("Image.gz", &[0x1f, 0x8b, 8, 0, 1, 2, 3, 4]),
                "gzip-compressed",
            ),
            (
                dir.file("Image.zst", &[0x28, 0xb5, 0x2f, 0xfd, 0]),
                "zstd-compressed",
            ),
            (dir.file("vmlinuz.efi", b"MZ\0\0zimg\0\0gzip"), "EFI zboot"),
            (dir.file("empty", b""), "is empty"),
        ];
        for (path, why) in cases {
            let (argument, reason) = invalid_argument(LinuxBootLoader::new(&path).unwrap_err());
            assert_eq!(argument, "kernel path");
            assert!(reason.contains(why), "{path:?}: {reason}");
        }
        let (argument, reason) =
            invalid_argument(LinuxBootLoader::new(Path::new("/tmp/a\0b")).unwrap_err());
        assert_eq!(
            (argument, reason.contains("NUL")),
            ("kernel path", true),
            "{reason}"
        );
        let non_utf8 = Path::new(OsStr::from_bytes(b"/tmp/\xff"));
        let (argument, reason) = invalid_argument(LinuxBootLoader::new(non_utf8).unwrap_err());
        assert_eq!(
            (argument, reason.contains("UTF-8")),
            ("kernel path", true),
            "{reason}"
        );

        let mut boot = LinuxBootLoader::new(dir.kernel()).unwrap();
        let (argument, _) = invalid_argument(
            boot.set_initial_ramdisk(dir.path().join("nope"))
                .unwrap_err(),
        );
        assert_eq!(argument, "initial ramdisk path");
        let (argument, _) = invalid_argument(boot.set_command_line("console=hvc0\0").unwrap_err());
        assert_eq!(argument, "kernel command line");
    });
}

/// VZ reads the kernel and RAM disk when the machine starts, not when the configuration
/// is validated: Code-Hex/vz's tests delete the kernel right after building the boot
/// loader and expect validation to succeed (tests/sim/FIDELITY.md). The simulator plays
/// that; the files' problems come from `start`.
#[test]
fn files_removed_after_the_boot_loader_is_built_still_validate() {
    sim::scenario(|| {
        let dir = TempDir::new("kernel-gone");
        let kernel = dir.kernel();
        let initrd = dir.file("initrd.cpio.gz", &[0x1f, 0x8b, 8, 0, 0, 0]);
        let mut boot = LinuxBootLoader::new(&kernel).unwrap();
        boot.set_initial_ramdisk(&initrd).unwrap();
        let mut config = minimal_config(&dir);
        config.set_boot_loader(boot);
        std::fs::remove_file(&kernel).unwrap();
        std::fs::remove_file(&initrd).unwrap();
        config.validate().unwrap();
    });
}

#[test]
fn efi_boot_loader_and_variable_store() {
    sim::scenario(|| {
        let dir = TempDir::new("efi");
        let path = dir.path().join("nvram.bin");
        let Some(store) = since("13.0", EFIVariableStore::create(&path, false)) else {
            assert!(!path.exists(), "nothing was created");
            let existing = dir.file("nvram-existing.bin", &[0; 128]);
            assert_unsupported("13.0", EFIVariableStore::open(&existing));
            return;
        };
        assert_eq!(store.path(), path);
        assert!(std::fs::metadata(&path).unwrap().len() > 0);
        // Creating again needs overwrite.
        let (argument, reason) =
            invalid_argument(EFIVariableStore::create(&path, false).unwrap_err());
        assert_eq!(argument, "EFI variable store path");
        assert!(reason.contains("already exists"), "{reason}");
        EFIVariableStore::create(&path, true).unwrap();
        let reopened = EFIVariableStore::open(&path).unwrap();
        let boot = EFIBootLoader::new(reopened).unwrap();
        assert_eq!(boot.variable_store().path(), path);

        let empty = dir.file("empty-nvram", b"");
        let (argument, reason) = invalid_argument(EFIVariableStore::open(&empty).unwrap_err());
        assert_eq!(argument, "EFI variable store path");
        assert!(reason.contains("is empty"), "{reason}");
        assert!(EFIVariableStore::open(dir.path().join("missing")).is_err());

        let mut config = minimal_config(&dir);
        config.set_boot_loader(boot);
        config.validate().unwrap();
    });
}

#[test]
fn generic_platform_and_machine_identifier() {
    sim::scenario(|| {
        let id = since("13.0", GenericMachineIdentifier::new());
        if let Some(id) = &id {
            let data = id.data_representation();
            assert!(!data.is_empty());
            let rebuilt = GenericMachineIdentifier::from_data_representation(&data).unwrap();
            assert_eq!(&rebuilt, id);
            assert_ne!(
                &GenericMachineIdentifier::new().unwrap(),
                id,
                "each new one is unique"
            );
            let (argument, _) = invalid_argument(
                GenericMachineIdentifier::from_data_representation(b"garbage").unwrap_err(),
            );
            assert_eq!(argument, "machine identifier data");
        } else {
            assert_unsupported(
                "13.0",
                GenericMachineIdentifier::from_data_representation(b"garbage"),
            );
        }

        let Some(mut platform) = since("12.0", GenericPlatform::new()) else {
            assert!(!GenericPlatform::is_nested_virtualization_supported());
            return;
        };
        if let Some(id) = &id {
            platform.set_machine_identifier(id).unwrap();
            assert_eq!(&platform.machine_identifier().unwrap(), id);
        } else {
            assert_unsupported("13.0", platform.machine_identifier());
        }

        // The simulated Mac is not an M3.
        assert!(!GenericPlatform::is_nested_virtualization_supported());
        assert!(matches!(
            platform.set_nested_virtualization_enabled(true),
            Err(VZError::Unsupported {
                min_macos: "15.0",
                ..
            })
        ));
        platform.set_nested_virtualization_enabled(false).unwrap();
        assert!(!platform.is_nested_virtualization_enabled());
    });
}

#[test]
fn isolated_reports_a_hang_and_a_clean_exit() {
    let hang = common::isolated(
        "isolated_reports_a_hang_and_a_clean_exit",
        std::time::Duration::from_millis(300),
        || std::thread::sleep(std::time::Duration::from_secs(60)),
    );
    assert!(hang.timed_out(), "{hang:?}");
}
