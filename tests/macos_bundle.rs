//! `MacOSBundle` (issue 12, item 2): a macOS guest's disk image, auxiliary storage,
//! hardware model and machine identifier kept together with a manifest, against the
//! fakes in `csrc/vz_macos_guest.m`.
//!
//! Creation must refuse bad input before writing anything and clean up after itself;
//! opening must name the file that is missing, swapped or damaged, with a typed
//! error, without hanging on FIFOs or reading devices. Before macOS 12 there are no
//! macOS guests: everything is `Unsupported { min_macos: "12.0" }`.
#![cfg(arcbox_vz_sim)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use arcbox_vz::{
    KeyboardConfiguration, MacHardwareModel, MacOSBundle, MacOSBundleOptions,
    MacOSConfigurationRequirements, MacOSRestoreImage, PointingDeviceConfiguration,
    StorageDeviceConfiguration, VZError,
};
use common::{TempDir, assert_unsupported, block_on, invalid_argument, macos, sim};
use sim::arm64;

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
/// Small enough to create quickly; the file is sparse anyway.
const DISK: u64 = 256 * MIB;
const ALL_FILES: [&str; 5] = [
    MacOSBundle::DISK_IMAGE,
    MacOSBundle::AUXILIARY_STORAGE,
    MacOSBundle::HARDWARE_MODEL,
    MacOSBundle::MACHINE_IDENTIFIER,
    MacOSBundle::MANIFEST,
];

fn scenario<R>(body: impl FnOnce() -> R) -> R {
    sim::scenario(|| {
        arm64::reset();
        body()
    })
}

/// The requirements of a supported fake restore image (2 CPUs, 4 GiB), or `None`
/// before macOS 12, where there is none.
fn requirements(dir: &TempDir) -> Option<MacOSConfigurationRequirements> {
    let ipsw = dir.file(
        "restore.ipsw",
        &arm64::fake_ipsw("24A335", "15.0.1", "VirtualMac2,1", 2, 4 * GIB),
    );
    let image = common::since("12.0", block_on(MacOSRestoreImage::load(ipsw)))?;
    image.most_featureful_supported_configuration()
}

fn options() -> MacOSBundleOptions {
    MacOSBundleOptions::new()
        .cpu_count(4)
        .memory_size(8 * GIB)
        .disk_size(DISK)
}

/// A fresh bundle in `dir/name`.
fn bundle_in(dir: &TempDir, name: &str, requirements: &MacOSConfigurationRequirements) -> PathBuf {
    let path = dir.path().join(name);
    MacOSBundle::create(&path, requirements, options()).unwrap();
    path
}

/// A supported model other than the fake image's (a "VirtualMac2," name).
fn other_model() -> MacHardwareModel {
    let model = MacHardwareModel::from_data_representation(b"SIMVZHWMVirtualMac2,7").unwrap();
    assert!(model.is_supported());
    model
}

/// The reason of the `"macOS bundle"` error of opening `path`.
#[track_caller]
fn open_error(path: &Path) -> String {
    let (argument, reason) = invalid_argument(MacOSBundle::open(path).unwrap_err());
    assert_eq!(argument, "macOS bundle", "{reason}");
    reason
}

/// Asserts that opening `bundle` fails naming `file` and saying `what`.
#[track_caller]
fn assert_open_names(bundle: &Path, file: &str, what: &str) {
    let reason = open_error(bundle);
    let named = bundle.join(file);
    assert!(
        reason.contains(named.to_str().unwrap()),
        "the error should name {named:?}: {reason}"
    );
    assert!(reason.contains(what), "expected {what:?} in: {reason}");
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn create_open_and_boot_round_trip() {
    scenario(|| {
        let dir = TempDir::new("bundle-round-trip");
        let Some(requirements) = requirements(&dir) else {
            return;
        };
        let path = dir.path().join("Guest.bundle");
        let created = MacOSBundle::create(&path, &requirements, options()).unwrap();
        let mut expected: Vec<String> = ALL_FILES.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(listing(&path), expected);
        assert_eq!(created.path(), path);
        assert_eq!(created.disk_image_path(), path.join("Disk.img"));
        assert_eq!(
            created.auxiliary_storage_path(),
            path.join("AuxiliaryStorage")
        );
        assert_eq!(created.hardware_model_path(), path.join("HardwareModel"));
        assert_eq!(
            created.machine_identifier_path(),
            path.join("MachineIdentifier")
        );
        assert_eq!(created.manifest_path(), path.join("arcbox-vz-bundle.txt"));

        // The disk is sparse: its length, not its blocks.
        let disk = std::fs::metadata(created.disk_image_path()).unwrap();
        assert_eq!(disk.len(), DISK);
        use std::os::unix::fs::MetadataExt;
        assert!(disk.blocks() * 512 < DISK, "{} blocks", disk.blocks());
        assert_eq!(
            std::fs::read(created.hardware_model_path()).unwrap(),
            requirements.hardware_model().data_representation()
        );

        let opened = MacOSBundle::open(&path).unwrap();
        assert_eq!(opened.hardware_model(), created.hardware_model());
        assert_eq!(opened.hardware_model(), &requirements.hardware_model());
        assert_eq!(opened.machine_identifier(), created.machine_identifier());
        assert_eq!(
            (opened.cpu_count(), opened.memory_size(), opened.disk_size()),
            (4, 8 * GIB, DISK)
        );
        assert_eq!(
            opened.auxiliary_storage().path().file_name().unwrap(),
            "AuxiliaryStorage"
        );

        let config = opened.configuration().unwrap();
        assert_eq!((config.cpu_count(), config.memory_size()), (4, 8 * GIB));
        assert!(matches!(
            config.storage_devices(),
            [StorageDeviceConfiguration::VirtioBlock(_)]
        ));
        assert_eq!(config.graphics_devices().len(), 1);
        assert_eq!(config.network_devices().len(), 1);
        assert_eq!(config.entropy_devices().len(), 1);
        match config.keyboards() {
            [KeyboardConfiguration::Mac(_), KeyboardConfiguration::USB(_)] => {
                assert!(macos("14.0"))
            }
            [KeyboardConfiguration::USB(_)] => assert!(!macos("14.0")),
            other => panic!("unexpected keyboards {other:?}"),
        }
        match config.pointing_devices() {
            [
                PointingDeviceConfiguration::MacTrackpad(_),
                PointingDeviceConfiguration::USBScreenCoordinate(_),
            ] => {
                assert!(macos("13.0"))
            }
            [PointingDeviceConfiguration::USBScreenCoordinate(_)] => assert!(!macos("13.0")),
            other => panic!("unexpected pointing devices {other:?}"),
        }
        config.validate().unwrap();
        let vm = config.build().unwrap();
        block_on(vm.start()).unwrap();
        common::stop_vm(&vm);
    });
}

#[test]
fn defaults_are_the_requirement_minimums_and_a_64_gib_disk() {
    scenario(|| {
        let dir = TempDir::new("bundle-defaults");
        let Some(requirements) = requirements(&dir) else {
            return;
        };
        let path = dir.path().join("b");
        let bundle = MacOSBundle::create(&path, &requirements, MacOSBundleOptions::new()).unwrap();
        assert_eq!(
            (bundle.cpu_count(), bundle.memory_size(), bundle.disk_size()),
            (2, 4 * GIB, 64 * GIB)
        );
        assert_eq!(MacOSBundle::DEFAULT_DISK_SIZE, 64 * GIB);
        assert_eq!(
            std::fs::metadata(bundle.disk_image_path()).unwrap().len(),
            64 * GIB
        );
        let opened = MacOSBundle::open(&path).unwrap();
        assert_eq!((opened.cpu_count(), opened.memory_size()), (2, 4 * GIB));

        // create_for_model: its own defaults, no requirement minimums.
        let other = dir.path().join("other");
        let bundle =
            MacOSBundle::create_for_model(&other, &other_model(), MacOSBundleOptions::new())
                .unwrap();
        assert_eq!(
            (bundle.cpu_count(), bundle.memory_size()),
            (
                MacOSBundle::DEFAULT_CPU_COUNT,
                MacOSBundle::DEFAULT_MEMORY_SIZE
            )
        );
        assert_eq!(
            MacOSBundle::open(&other).unwrap().hardware_model(),
            &other_model()
        );
    });
}

#[test]
fn a_missing_file_is_named() {
    scenario(|| {
        let dir = TempDir::new("bundle-missing");
        let Some(requirements) = requirements(&dir) else {
            return;
        };
        for file in ALL_FILES {
            let bundle = bundle_in(&dir, &format!("missing-{file}"), &requirements);
            std::fs::remove_file(bundle.join(file)).unwrap();
            assert_open_names(&bundle, file, "is missing");
        }
        let reason = open_error(&dir.path().join("no-such-bundle"));
        assert!(reason.contains("no-such-bundle is missing"), "{reason}");
        let file = dir.file("plain-file", b"x");
        let reason = open_error(&file);
        assert!(reason.contains("not a bundle directory"), "{reason}");
    });
}

#[test]
fn files_from_another_bundle_are_detected() {
    scenario(|| {
        let dir = TempDir::new("bundle-swapped");
        let Some(requirements) = requirements(&dir) else {
            return;
        };
        let theirs = dir.path().join("theirs");
        MacOSBundle::create_for_model(
            &theirs,
            &other_model(),
            options().disk_size(DISK + 512 * 1024),
        )
        .unwrap();
        for (file, what) in [
            (MacOSBundle::HARDWARE_MODEL, "not this bundle's"),
            (MacOSBundle::MACHINE_IDENTIFIER, "not this bundle's"),
            (MacOSBundle::DISK_IMAGE, "disk_size="),
        ] {
            let ours = bundle_in(&dir, &format!("swapped-{file}"), &requirements);
            std::fs::copy(theirs.join(file), ours.join(file)).unwrap();
            assert_open_names(&ours, file, what);
        }
        // A manifest from another bundle: its checksums match the other files.
        let ours = bundle_in(&dir, "swapped-manifest", &requirements);
        std::fs::copy(
            theirs.join(MacOSBundle::MANIFEST),
            ours.join(MacOSBundle::MANIFEST),
        )
        .unwrap();
        assert_open_names(&ours, MacOSBundle::HARDWARE_MODEL, "not this bundle's");
    });
}

#[test]
fn garbage_and_wrong_kinds_of_files_are_typed_errors() {
    scenario(|| {
        let dir = TempDir::new("bundle-garbage");
        let Some(requirements) = requirements(&dir) else {
            return;
        };
        let cases: [(&str, &[u8], &str); 8] = [
            (
                MacOSBundle::HARDWARE_MODEL,
                b"x",
                "not a VZMacHardwareModel",
            ),
            (
                MacOSBundle::MACHINE_IDENTIFIER,
                b"x",
                "not a VZMacMachineIdentifier",
            ),
            (MacOSBundle::DISK_IMAGE, b"x", "is 1 byte,"),
            (MacOSBundle::MANIFEST, b"x", "first line"),
            (MacOSBundle::HARDWARE_MODEL, b"", "is empty"),
            (MacOSBundle::MACHINE_IDENTIFIER, b"", "is empty"),
            (MacOSBundle::AUXILIARY_STORAGE, b"", "is empty"),
            (MacOSBundle::MANIFEST, b"", "is empty"),
        ];
        for (i, (file, content, what)) in cases.into_iter().enumerate() {
            let bundle = bundle_in(&dir, &format!("garbage-{i}"), &requirements);
            std::fs::write(bundle.join(file), content).unwrap();
            assert_open_names(&bundle, file, what);
        }
        // Too large to be what it claims: refused after a bounded read.
        for (file, max) in [
            (MacOSBundle::HARDWARE_MODEL, MacOSBundle::MAX_DATA_SIZE),
            (MacOSBundle::MACHINE_IDENTIFIER, MacOSBundle::MAX_DATA_SIZE),
            (MacOSBundle::MANIFEST, MacOSBundle::MAX_MANIFEST_SIZE),
        ] {
            let bundle = bundle_in(&dir, &format!("huge-{file}"), &requirements);
            std::fs::write(bundle.join(file), vec![b'#'; max + 1]).unwrap();
            assert_open_names(&bundle, file, "limit");
        }
        // A directory, or a link to one, where a file belongs.
        for (i, file) in ALL_FILES.into_iter().enumerate() {
            let bundle = bundle_in(&dir, &format!("dir-{i}"), &requirements);
            std::fs::remove_file(bundle.join(file)).unwrap();
            if i % 2 == 0 {
                std::fs::create_dir(bundle.join(file)).unwrap();
            } else {
                std::os::unix::fs::symlink(dir.path(), bundle.join(file)).unwrap();
            }
            assert_open_names(&bundle, file, "not a regular file");
        }
        // A link to a regular file is followed.
        let bundle = bundle_in(&dir, "linked", &requirements);
        let moved = dir.path().join("moved-disk.img");
        std::fs::rename(bundle.join(MacOSBundle::DISK_IMAGE), &moved).unwrap();
        std::os::unix::fs::symlink(&moved, bundle.join(MacOSBundle::DISK_IMAGE)).unwrap();
        MacOSBundle::open(&bundle).unwrap().configuration().unwrap();
    });
}

/// Makes a FIFO at `path`.
fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[test]
fn fifos_and_devices_in_place_of_files_are_refused_without_hanging() {
    let name = "fifos_and_devices_in_place_of_files_are_refused_without_hanging";
    common::isolated(name, Duration::from_secs(30), || {
        scenario(|| {
            let dir = TempDir::new("bundle-fifo");
            let Some(requirements) = requirements(&dir) else {
                return;
            };
            for file in ALL_FILES {
                let bundle = bundle_in(&dir, &format!("fifo-{file}"), &requirements);
                std::fs::remove_file(bundle.join(file)).unwrap();
                mkfifo(&bundle.join(file));
                assert_open_names(&bundle, file, "FIFO");

                let bundle = bundle_in(&dir, &format!("zero-{file}"), &requirements);
                std::fs::remove_file(bundle.join(file)).unwrap();
                std::os::unix::fs::symlink("/dev/zero", bundle.join(file)).unwrap();
                assert_open_names(&bundle, file, "character device");
            }
        });
    })
    .assert_succeeded();
}

#[test]
fn damaged_manifests_are_typed_errors() {
    scenario(|| {
        let dir = TempDir::new("bundle-manifest");
        let Some(requirements) = requirements(&dir) else {
            return;
        };
        let good = bundle_in(&dir, "good", &requirements);
        let text = std::fs::read_to_string(good.join(MacOSBundle::MANIFEST)).unwrap();
        assert!(text.starts_with("arcbox_vz_macos_bundle=1\n"), "{text}");
        let without = |key: &str| -> String {
            text.lines()
                .filter(|l| !l.starts_with(&format!("{key}=")))
                .map(|l| format!("{l}\n"))
                .collect()
        };
        let replace = |from: &str, to: &str| text.replacen(from, to, 1);
        let cases: Vec<(String, Vec<u8>, &str)> = vec![
            (
                "version 2".into(),
                replace("bundle=1", "bundle=2").into(),
                "format version \"2\"",
            ),
            (
                "version 01".into(),
                replace("bundle=1", "bundle=01").into(),
                "format version",
            ),
            (
                "no format line".into(),
                without("arcbox_vz_macos_bundle").into(),
                "first line",
            ),
            (
                "missing cpu_count".into(),
                without("cpu_count").into(),
                "cpu_count is missing",
            ),
            (
                "missing disk_size".into(),
                without("disk_size").into(),
                "disk_size is missing",
            ),
            (
                "missing checksum".into(),
                without("machine_identifier_fnv1a64").into(),
                "machine_identifier_fnv1a64 is missing",
            ),
            (
                "NUL".into(),
                replace("cpu_count=4", "cpu_count=4\0").into(),
                "NUL byte",
            ),
            (
                "BOM".into(),
                [b"\xEF\xBB\xBF", text.as_bytes()].concat(),
                "byte order mark",
            ),
            (
                "CRLF".into(),
                text.replace('\n', "\r\n").into(),
                "carriage return",
            ),
            (
                "non-ASCII".into(),
                replace("# A", "# \u{e9}").into(),
                "byte 0xc3",
            ),
            (
                "huge number".into(),
                replace("memory_size=", "memory_size=99999999999999999999999").into(),
                "too large",
            ),
            (
                "duplicate key".into(),
                format!("{text}cpu_count=4\n").into(),
                "cpu_count appears twice",
            ),
            (
                "garbage number".into(),
                replace("cpu_count=4", "cpu_count=four").into(),
                "not a decimal",
            ),
            (
                "signed number".into(),
                replace("cpu_count=4", "cpu_count=+4").into(),
                "not a decimal",
            ),
            (
                "spaces".into(),
                replace("cpu_count=4", "cpu_count = 4").into(),
                "unknown key",
            ),
            (
                "zero".into(),
                replace("cpu_count=4", "cpu_count=0").into(),
                "at least 1",
            ),
            (
                "odd memory".into(),
                replace("memory_size=8589934592", "memory_size=8589934593").into(),
                "multiple of 1 MiB",
            ),
            (
                "unknown key".into(),
                format!("{text}name=guest\n").into(),
                "unknown key \"name\"",
            ),
            (
                "not key=value".into(),
                format!("{text}hello\n").into(),
                "not key=value",
            ),
            (
                "uppercase checksum".into(),
                {
                    let line = text
                        .lines()
                        .find(|l| l.starts_with("hardware_model"))
                        .unwrap();
                    replace(
                        line,
                        &line
                            .to_uppercase()
                            .replace("HARDWARE_MODEL_FNV1A64", "hardware_model_fnv1a64"),
                    )
                    .into()
                },
                "hexadecimal",
            ),
        ];
        for (i, (name, content, what)) in cases.into_iter().enumerate() {
            let bundle = bundle_in(&dir, &format!("manifest-{i}"), &requirements);
            std::fs::write(bundle.join(MacOSBundle::MANIFEST), &content).unwrap();
            let reason = open_error(&bundle);
            assert!(
                reason.contains(bundle.join(MacOSBundle::MANIFEST).to_str().unwrap()),
                "{name}: {reason}"
            );
            assert!(
                reason.contains(what),
                "{name}: expected {what:?} in: {reason}"
            );
        }
        // Comments, empty lines, any key order and no final newline are fine.
        let bundle = bundle_in(&dir, "reordered", &requirements);
        let text = std::fs::read_to_string(bundle.join(MacOSBundle::MANIFEST)).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines[1..].reverse();
        let reordered = format!("{}\n\n# note\n{}", lines[0], lines[1..].join("\n"));
        std::fs::write(bundle.join(MacOSBundle::MANIFEST), reordered).unwrap();
        let opened = MacOSBundle::open(&bundle).unwrap();
        assert_eq!(opened.cpu_count(), 4);
    });
}

/// FNV-1a 64 written again from the documented definition, as another program would.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |hash: u64, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

#[test]
fn a_manifest_written_from_the_documented_format_opens() {
    scenario(|| {
        let dir = TempDir::new("bundle-by-hand");
        let Some(requirements) = requirements(&dir) else {
            return;
        };
        let bundle = bundle_in(&dir, "by-hand", &requirements);
        let write_manifest = |cpus: u32| {
            let model = std::fs::read(bundle.join(MacOSBundle::HARDWARE_MODEL)).unwrap();
            let id = std::fs::read(bundle.join(MacOSBundle::MACHINE_IDENTIFIER)).unwrap();
            let text = format!(
                "arcbox_vz_macos_bundle=1\nmachine_identifier_fnv1a64={:016x}\n\
                 hardware_model_fnv1a64={:016x}\ndisk_size={DISK}\nmemory_size={}\n\
                 cpu_count={cpus}\n",
                fnv(&id),
                fnv(&model),
                6 * GIB
            );
            std::fs::write(bundle.join(MacOSBundle::MANIFEST), text).unwrap();
        };
        write_manifest(3);
        let opened = MacOSBundle::open(&bundle).unwrap();
        assert_eq!((opened.cpu_count(), opened.memory_size()), (3, 6 * GIB));
        opened.configuration().unwrap().validate().unwrap();

        // A model this Mac does not support, with a matching checksum: the bundle
        // opens (it can be inspected anywhere); its configuration is refused.
        std::fs::write(
            bundle.join(MacOSBundle::HARDWARE_MODEL),
            b"SIMVZHWMVirtualMac9,1",
        )
        .unwrap();
        write_manifest(3);
        let opened = MacOSBundle::open(&bundle).unwrap();
        assert!(!opened.hardware_model().is_supported());
        let (argument, _) = invalid_argument(opened.configuration().unwrap_err());
        assert_eq!(argument, "hardware model");
    });
}

#[test]
fn create_refuses_a_non_empty_directory_and_touches_nothing() {
    scenario(|| {
        let dir = TempDir::new("bundle-non-empty");
        let Some(requirements) = requirements(&dir) else {
            return;
        };
        let target = dir.path().join("full");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("Disk.img"), b"precious data").unwrap();
        let (argument, reason) =
            invalid_argument(MacOSBundle::create(&target, &requirements, options()).unwrap_err());
        assert_eq!(argument, "macOS bundle");
        assert!(reason.contains("is not empty"), "{reason}");
        assert_eq!(listing(&target), ["Disk.img"]);
        assert_eq!(
            std::fs::read(target.join("Disk.img")).unwrap(),
            b"precious data"
        );

        // An existing bundle is not overwritten either.
        let bundle = bundle_in(&dir, "existing", &requirements);
        let id = std::fs::read(bundle.join(MacOSBundle::MACHINE_IDENTIFIER)).unwrap();
        MacOSBundle::create(&bundle, &requirements, options()).unwrap_err();
        assert_eq!(
            std::fs::read(bundle.join(MacOSBundle::MACHINE_IDENTIFIER)).unwrap(),
            id
        );
        MacOSBundle::open(&bundle).unwrap();

        // A file where the directory would go.
        let file = dir.file("a-file", b"keep");
        let (_, reason) =
            invalid_argument(MacOSBundle::create(&file, &requirements, options()).unwrap_err());
        assert!(reason.contains("not a directory"), "{reason}");
        assert_eq!(std::fs::read(&file).unwrap(), b"keep");

        // An existing empty directory is used, and a missing parent is refused.
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        MacOSBundle::create(&empty, &requirements, options()).unwrap();
        MacOSBundle::open(&empty).unwrap();
        let orphan = dir.path().join("no-parent").join("b");
        MacOSBundle::create(&orphan, &requirements, options()).unwrap_err();
        assert!(!dir.path().join("no-parent").exists());
    });
}

#[test]
fn bad_options_and_unsupported_models_are_refused_before_anything_is_written() {
    scenario(|| {
        let dir = TempDir::new("bundle-bad-options");
        let Some(requirements) = requirements(&dir) else {
            return;
        };
        let target = dir.path().join("b");
        for (options, argument, what) in [
            (options().cpu_count(1), "CPU count", "below the 2"),
            (options().memory_size(4 * GIB - MIB), "memory size", "below"),
            (
                options().memory_size(4 * GIB + 1),
                "memory size",
                "multiple of 1 MiB",
            ),
            (options().cpu_count(100_000), "CPU count", "allowed range"),
            (options().disk_size(0), "macOS bundle", "multiple of 512"),
            (options().disk_size(1000), "macOS bundle", "multiple of 512"),
            (options().disk_size(u64::MAX), "macOS bundle", "at most"),
        ] {
            let (got, reason) =
                invalid_argument(MacOSBundle::create(&target, &requirements, options).unwrap_err());
            assert_eq!(got, argument, "{reason}");
            assert!(reason.contains(what), "expected {what:?} in: {reason}");
            assert!(!target.exists(), "nothing is written: {reason}");
        }

        let unsupported =
            MacHardwareModel::from_data_representation(b"SIMVZHWMVirtualMac9,1").unwrap();
        assert!(!unsupported.is_supported());
        let (argument, _) = invalid_argument(
            MacOSBundle::create_for_model(&target, &unsupported, options()).unwrap_err(),
        );
        assert_eq!(argument, "hardware model");
        assert!(!target.exists());
    });
}

#[test]
fn a_creation_that_fails_half_way_removes_only_what_it_made() {
    let name = "a_creation_that_fails_half_way_removes_only_what_it_made";
    common::isolated(name, Duration::from_secs(30), || {
        scenario(|| {
            let dir = TempDir::new("bundle-half-way");
            let Some(requirements) = requirements(&dir) else {
                return;
            };
            // Files may grow to 1 MiB at most: the 256 MiB disk image fails with
            // EFBIG, after the hardware model and machine identifier are written.
            // SAFETY: ignoring SIGXFSZ installs no handler; setrlimit reads the
            // struct, valid for the call. This process is a child of the test.
            unsafe {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let limit = libc::rlimit {
                    rlim_cur: MIB,
                    rlim_max: libc::RLIM_INFINITY,
                };
                assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &raw const limit), 0);
            }
            let new = dir.path().join("new");
            match MacOSBundle::create(&new, &requirements, options()) {
                Err(VZError::Io(e)) => {
                    assert!(e.to_string().contains("Disk.img"), "{e}")
                }
                other => panic!("expected an I/O error on Disk.img, got {other:?}"),
            }
            assert!(!new.exists(), "the directory it made is removed");

            let empty = dir.path().join("empty");
            std::fs::create_dir(&empty).unwrap();
            MacOSBundle::create(&empty, &requirements, options()).unwrap_err();
            assert!(empty.is_dir(), "a directory it did not make stays");
            assert!(listing(&empty).is_empty(), "{:?}", listing(&empty));
        });
    })
    .assert_succeeded();
}

#[test]
fn before_macos_12_everything_is_unsupported() {
    scenario(|| {
        let dir = TempDir::new("bundle-old");
        if macos("12.0") {
            return;
        }
        assert_unsupported("12.0", MacOSBundle::open(dir.path()));
        assert_unsupported("12.0", MacOSBundle::open(dir.path().join("missing")));
        assert_unsupported(
            "12.0",
            MacHardwareModel::from_data_representation(b"SIMVZHWMVirtualMac2,1"),
        );
        assert!(requirements(&dir).is_none());
    });
}
