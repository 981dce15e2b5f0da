//! macOS guests, configuration side (issue 12, item 1): the restore image and its
//! requirements, the hardware model, machine identifier and auxiliary storage, the
//! Mac platform and boot loader, against the fakes in `csrc/vz_macos_guest.m`.
//!
//! All of it is macOS 12 and Apple silicon; below 12 every constructor must be
//! `Unsupported { min_macos: "12.0" }`, and bad input must be refused with a typed
//! error before anything reaches the framework.
#![cfg(arcbox_vz_sim)]

mod common;

use std::future::Future;

use arcbox_vz::{
    GraphicsDeviceConfiguration, KeyboardConfiguration, MacAuxiliaryStorage,
    MacGraphicsDeviceConfiguration, MacGraphicsDisplayConfiguration, MacHardwareModel,
    MacKeyboardConfiguration, MacMachineIdentifier, MacOSBootLoader, MacOSRestoreImage,
    MacPlatformConfiguration, MacTrackpadConfiguration, OperatingSystemVersion, Platform,
    PointingDeviceConfiguration, USBKeyboardConfiguration,
    USBScreenCoordinatePointingDeviceConfiguration, VZError, VirtualMachineConfiguration,
};
use common::{TempDir, assert_unsupported, block_on, invalid_argument, macos, sim, since};
use sim::arm64;

const GIB: u64 = 1 << 30;
/// `VZErrorInvalidRestoreImage` and `VZErrorRestoreImageCatalogLoadFailed`.
const VZ_ERROR_INVALID_RESTORE_IMAGE: isize = 10005;
const VZ_ERROR_CATALOG_LOAD_FAILED: isize = 10001;

fn scenario<R>(body: impl FnOnce() -> R) -> R {
    sim::scenario(|| {
        arm64::reset();
        arm64::fail_next_restore_image_fetch(0);
        let out = body();
        arm64::fail_next_restore_image_fetch(0);
        out
    })
}

/// A supported fake IPSW in `dir`.
fn ipsw(dir: &TempDir) -> std::path::PathBuf {
    dir.file(
        "restore.ipsw",
        &arm64::fake_ipsw("24A335", "15.0.1", "VirtualMac2,1", 2, 4 * GIB),
    )
}

/// A supported hardware model, from a loaded fake image.
fn supported_model(dir: &TempDir) -> MacHardwareModel {
    let image = block_on(MacOSRestoreImage::load(ipsw(dir))).unwrap();
    image
        .most_featureful_supported_configuration()
        .unwrap()
        .hardware_model()
}

#[test]
fn restore_image_loads_with_build_version_and_requirements() {
    scenario(|| {
        let dir = TempDir::new("macos-image");
        let path = ipsw(&dir);
        let before = arm64::restore_image_requests();
        let Some(image) = since("12.0", block_on(MacOSRestoreImage::load(&path))) else {
            return;
        };
        assert_eq!(arm64::restore_image_requests(), before + 1);
        assert_eq!(image.build_version(), "24A335");
        assert_eq!(
            image.operating_system_version(),
            OperatingSystemVersion {
                major: 15,
                minor: 0,
                patch: 1
            }
        );
        assert_eq!(image.operating_system_version().to_string(), "15.0.1");
        assert!(image.url().starts_with("file://"), "{}", image.url());
        assert_eq!(
            image.path().unwrap().file_name().unwrap(),
            path.file_name().unwrap()
        );
        assert!(image.is_supported());
        let requirements = image.most_featureful_supported_configuration().unwrap();
        assert_eq!(requirements.minimum_supported_cpu_count(), 2);
        assert_eq!(requirements.minimum_supported_memory_size(), 4 * GIB);
        let model = requirements.hardware_model();
        assert!(model.is_supported());
        requirements.check(2, 4 * GIB).unwrap();
        requirements.check(8, 16 * GIB).unwrap();
    });
}

#[test]
fn requirements_refuse_too_few_cpus_or_too_little_memory() {
    scenario(|| {
        let dir = TempDir::new("macos-req");
        let Some(image) = since("12.0", block_on(MacOSRestoreImage::load(ipsw(&dir)))) else {
            return;
        };
        let requirements = image.most_featureful_supported_configuration().unwrap();
        let (argument, reason) = invalid_argument(requirements.check(1, 4 * GIB).unwrap_err());
        assert_eq!(argument, "CPU count");
        assert!(reason.contains("below the 2"), "{reason}");
        let (argument, _) = invalid_argument(requirements.check(2, 4 * GIB - 1).unwrap_err());
        assert_eq!(argument, "memory size");
    });
}

#[test]
fn an_image_for_another_mac_has_no_supported_configuration() {
    scenario(|| {
        let dir = TempDir::new("macos-unsupported");
        let path = dir.file(
            "newer.ipsw",
            &arm64::fake_ipsw("99Z1", "99.0.0", "VirtualMac9,1", 4, 8 * GIB),
        );
        let Some(image) = since("12.0", block_on(MacOSRestoreImage::load(path))) else {
            return;
        };
        assert!(!image.is_supported());
        assert!(image.most_featureful_supported_configuration().is_none());
    });
}

#[test]
fn bad_restore_images_are_refused_before_the_framework() {
    scenario(|| {
        let dir = TempDir::new("macos-bad-image");
        let missing = dir.path().join("missing.ipsw");
        let text = dir.file("notes.ipsw", b"just some text, not a zip archive");
        let tiny = dir.file("tiny.ipsw", b"PK");
        let empty_zip = dir.file(
            "empty.ipsw",
            b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
        );
        let before = if macos("12.0") {
            arm64::restore_image_requests()
        } else {
            0
        };
        for (path, expect) in [
            (missing, "does not exist"),
            (text, "not a zip archive"),
            (tiny, "only 2 bytes"),
            (empty_zip, "empty zip archive"),
            (dir.path().to_path_buf(), "not a regular file"),
        ] {
            let result = block_on(MacOSRestoreImage::load(&path));
            if !macos("12.0") {
                assert_unsupported("12.0", result);
                continue;
            }
            let (argument, reason) = invalid_argument(result.unwrap_err());
            assert_eq!(argument, "restore image");
            assert!(reason.contains(expect), "{path:?}: {reason}");
        }
        if macos("12.0") {
            assert_eq!(
                arm64::restore_image_requests(),
                before,
                "nothing reached VZ"
            );
        }
    });
}

#[test]
fn a_zip_that_is_not_a_restore_image_is_the_frameworks_error() {
    scenario(|| {
        let dir = TempDir::new("macos-zip");
        let zip = dir.file("other.ipsw", b"PK\x03\x04\x14\0\0\0\0\0some other archive");
        let result = block_on(MacOSRestoreImage::load(&zip));
        if !macos("12.0") {
            assert_unsupported("12.0", result);
            return;
        }
        match result {
            Err(VZError::Framework(e)) => assert_eq!(e.code, VZ_ERROR_INVALID_RESTORE_IMAGE),
            other => panic!("expected VZErrorInvalidRestoreImage, got {other:?}"),
        }
    });
}

#[test]
fn fetch_latest_supported_gives_a_remote_url_and_version() {
    scenario(|| {
        let Some(image) = since(
            "12.0",
            block_on(MacOSRestoreImage::fetch_latest_supported()),
        ) else {
            return;
        };
        assert!(image.url().starts_with("https://"), "{}", image.url());
        assert!(image.path().is_none());
        assert!(!image.build_version().is_empty());
        assert!(image.operating_system_version().major >= 12);
        assert!(image.most_featureful_supported_configuration().is_some());

        arm64::fail_next_restore_image_fetch(VZ_ERROR_CATALOG_LOAD_FAILED as i64);
        match block_on(MacOSRestoreImage::fetch_latest_supported()) {
            Err(VZError::Framework(e)) => assert_eq!(e.code, VZ_ERROR_CATALOG_LOAD_FAILED),
            other => panic!("expected a catalog error, got {other:?}"),
        }
    });
}

#[test]
fn hardware_model_and_machine_identifier_round_trip_their_data() {
    scenario(|| {
        let dir = TempDir::new("macos-data");
        if !macos("12.0") {
            assert_unsupported("12.0", MacHardwareModel::from_data_representation(b"x"));
            assert_unsupported("12.0", MacMachineIdentifier::new());
            assert_unsupported("12.0", MacMachineIdentifier::from_data_representation(b"x"));
            return;
        }
        let model = supported_model(&dir);
        let data = model.data_representation();
        let again = MacHardwareModel::from_data_representation(&data).unwrap();
        assert_eq!(again, model);
        assert!(again.is_supported());

        let id = MacMachineIdentifier::new().unwrap();
        let other = MacMachineIdentifier::new().unwrap();
        assert_ne!(id, other, "every new identifier is unique");
        let restored =
            MacMachineIdentifier::from_data_representation(&id.data_representation()).unwrap();
        assert_eq!(restored, id);
    });
}

#[test]
fn garbage_blobs_are_typed_errors() {
    scenario(|| {
        if !macos("12.0") {
            return;
        }
        for garbage in [&b""[..], b"garbage", &[0xff; 64]] {
            let (argument, _) =
                invalid_argument(MacHardwareModel::from_data_representation(garbage).unwrap_err());
            assert_eq!(argument, "hardware model data");
            let (argument, _) = invalid_argument(
                MacMachineIdentifier::from_data_representation(garbage).unwrap_err(),
            );
            assert_eq!(argument, "machine identifier data");
        }
        // A model's bytes are not an identifier, and the other way round.
        let id = MacMachineIdentifier::new().unwrap().data_representation();
        invalid_argument(MacHardwareModel::from_data_representation(&id).unwrap_err());
    });
}

#[test]
fn auxiliary_storage_is_created_overwritten_only_when_asked_and_opened() {
    scenario(|| {
        let dir = TempDir::new("macos-aux");
        let aux = dir.path().join("aux.img");
        if !macos("12.0") {
            return;
        }
        let model = supported_model(&dir);
        let storage = MacAuxiliaryStorage::create(&aux, &model, false).unwrap();
        assert_eq!(storage.path().file_name().unwrap(), "aux.img");
        let written = std::fs::read(&aux).unwrap();
        assert!(!written.is_empty());

        let (argument, reason) =
            invalid_argument(MacAuxiliaryStorage::create(&aux, &model, false).unwrap_err());
        assert_eq!(argument, "auxiliary storage path");
        assert!(reason.contains("already exists"), "{reason}");

        MacAuxiliaryStorage::create(&aux, &model, true).unwrap();

        let opened = MacAuxiliaryStorage::open(&aux).unwrap();
        assert_eq!(opened.path(), storage.path());
        invalid_argument(MacAuxiliaryStorage::open(dir.path().join("nope.img")).unwrap_err());
        invalid_argument(MacAuxiliaryStorage::open(dir.path()).unwrap_err());
        invalid_argument(
            MacAuxiliaryStorage::create(dir.path().join("no/such/dir/aux.img"), &model, true)
                .unwrap_err(),
        );
    });
}

#[test]
fn an_unsupported_hardware_model_is_refused() {
    scenario(|| {
        let dir = TempDir::new("macos-unsupported-model");
        if !macos("12.0") {
            return;
        }
        let path = dir.file(
            "newer.ipsw",
            &arm64::fake_ipsw("99Z1", "99.0.0", "VirtualMac9,1", 4, 8 * GIB),
        );
        let image = block_on(MacOSRestoreImage::load(path)).unwrap();
        assert!(image.most_featureful_supported_configuration().is_none());
        // The model's bytes, as a bundle from a newer Mac would store them.
        let mut bytes = supported_model(&dir).data_representation();
        let name_at = bytes.len() - "VirtualMac2,1".len();
        bytes.truncate(name_at);
        bytes.extend_from_slice(b"VirtualMac9,1");
        let model = MacHardwareModel::from_data_representation(&bytes).unwrap();
        assert!(!model.is_supported());
        let aux = dir.path().join("aux.img");
        let (argument, _) =
            invalid_argument(MacAuxiliaryStorage::create(&aux, &model, false).unwrap_err());
        assert_eq!(argument, "hardware model");
        assert!(!aux.exists(), "nothing was written");
    });
}

#[test]
fn mac_platform_and_boot_loader_go_into_a_configuration_that_validates() {
    scenario(|| {
        let dir = TempDir::new("macos-platform");
        if !macos("12.0") {
            assert_unsupported("12.0", MacOSBootLoader::new());
            return;
        }
        let model = supported_model(&dir);
        let id = MacMachineIdentifier::new().unwrap();
        let aux = MacAuxiliaryStorage::create(dir.path().join("aux.img"), &model, false).unwrap();
        let platform = MacPlatformConfiguration::new(&model, &id, &aux).unwrap();
        assert_eq!(platform.hardware_model(), &model);
        assert_eq!(platform.machine_identifier(), &id);
        assert_eq!(platform.auxiliary_storage().path(), aux.path());

        let mut config = VirtualMachineConfiguration::new().unwrap();
        config
            .set_cpu_count(2)
            .set_memory_size(4 * GIB)
            .set_platform(platform)
            .set_boot_loader(MacOSBootLoader::new().unwrap());
        assert!(matches!(config.platform(), Some(Platform::Mac(_))));
        assert!(matches!(
            config.boot_loader(),
            Some(arcbox_vz::BootLoader::MacOS(_))
        ));
        config.validate().unwrap();
    });
}

#[test]
fn mac_graphics_keyboard_and_trackpad_go_into_the_existing_setters() {
    scenario(|| {
        let Some(mut gpu) = since("12.0", MacGraphicsDeviceConfiguration::new()) else {
            assert_unsupported("12.0", MacGraphicsDisplayConfiguration::new(1920, 1200, 80));
            return;
        };
        let display = MacGraphicsDisplayConfiguration::new(1920, 1200, 80).unwrap();
        assert_eq!(
            (
                display.width_in_pixels(),
                display.height_in_pixels(),
                display.pixels_per_inch()
            ),
            (1920, 1200, 80)
        );
        gpu.set_displays(vec![display]);
        assert_eq!(gpu.displays().len(), 1);

        let mut config = VirtualMachineConfiguration::new().unwrap();
        config.set_graphics_devices(vec![gpu]);
        assert!(matches!(
            config.graphics_devices(),
            [GraphicsDeviceConfiguration::Mac(_)]
        ));

        // A Mac keyboard (14) and trackpad (13), each listed with its USB fallback.
        let usb_keyboard = KeyboardConfiguration::from(USBKeyboardConfiguration::new().unwrap());
        match since("14.0", MacKeyboardConfiguration::new()) {
            Some(mac) => {
                config.set_keyboards(vec![mac.into(), usb_keyboard]);
                assert!(matches!(
                    config.keyboards(),
                    [KeyboardConfiguration::Mac(_), KeyboardConfiguration::USB(_)]
                ));
            }
            None => {
                config.set_keyboards(vec![usb_keyboard]);
            }
        }
        let usb_pointing = PointingDeviceConfiguration::from(
            USBScreenCoordinatePointingDeviceConfiguration::new().unwrap(),
        );
        match since("13.0", MacTrackpadConfiguration::new()) {
            Some(trackpad) => {
                config.set_pointing_devices(vec![trackpad.into(), usb_pointing]);
                assert_eq!(config.pointing_devices().len(), 2);
            }
            None => {
                config.set_pointing_devices(vec![usb_pointing]);
            }
        }
    });
}

#[test]
fn bad_mac_display_sizes_are_refused() {
    scenario(|| {
        if !macos("12.0") {
            return;
        }
        for (w, h, ppi) in [
            (0, 1200, 80),
            (1920, -1, 80),
            (1920, 1200, 0),
            (MacGraphicsDisplayConfiguration::MAX_PIXELS + 1, 1200, 80),
        ] {
            let (argument, _) =
                invalid_argument(MacGraphicsDisplayConfiguration::new(w, h, ppi).unwrap_err());
            assert_eq!(argument, "Mac display");
        }
    });
}

#[test]
fn a_dropped_load_leaks_nothing() {
    scenario(|| {
        let dir = TempDir::new("macos-drop");
        let path = ipsw(&dir);
        if !macos("12.0") {
            return;
        }
        let before = arm64::restore_image_requests();
        let mut load = Box::pin(MacOSRestoreImage::load(&path));
        let waker = std::task::Waker::noop();
        let _ = load
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker));
        drop(load);
        // The framework still answers; the answer is dropped with nothing leaked
        // (the scenario checks objects and blocks at its end).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while arm64::restore_image_requests() == before {
            assert!(
                std::time::Instant::now() < deadline,
                "the load never answered"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    });
}

#[test]
fn requirements_check_a_whole_configuration_and_bad_displays_fail_validation() {
    scenario(|| {
        let dir = TempDir::new("macos-check-config");
        let Some(image) = since("12.0", block_on(MacOSRestoreImage::load(ipsw(&dir)))) else {
            return;
        };
        let requirements = image.most_featureful_supported_configuration().unwrap();
        let model = requirements.hardware_model();
        let aux = MacAuxiliaryStorage::create(dir.path().join("aux.img"), &model, false).unwrap();
        let platform =
            MacPlatformConfiguration::new(&model, &MacMachineIdentifier::new().unwrap(), &aux)
                .unwrap();
        let mut config = VirtualMachineConfiguration::new().unwrap();
        config
            .set_cpu_count(1)
            .set_memory_size(4 * GIB)
            .set_platform(platform)
            .set_boot_loader(MacOSBootLoader::new().unwrap());
        let (argument, _) =
            invalid_argument(requirements.check_configuration(&config).unwrap_err());
        assert_eq!(argument, "CPU count");
        config.set_cpu_count(2);
        requirements.check_configuration(&config).unwrap();

        let mut gpu = MacGraphicsDeviceConfiguration::new().unwrap();
        gpu.set_displays(vec![
            MacGraphicsDisplayConfiguration::new(1920, 1200, 80).unwrap(),
        ]);
        config.set_graphics_devices(vec![gpu]);
        config.validate().unwrap();
    });
}

#[test]
fn mac_boot_loader_and_platform_must_come_together_and_match() {
    scenario(|| {
        let dir = TempDir::new("macos-pairing");
        if !macos("12.0") {
            return;
        }
        // A Mac boot loader on a generic platform: refused before VZ sees it.
        let mut config = VirtualMachineConfiguration::new().unwrap();
        config
            .set_cpu_count(2)
            .set_memory_size(4 * GIB)
            .set_boot_loader(MacOSBootLoader::new().unwrap());
        let (argument, _) = invalid_argument(config.validate().unwrap_err());
        assert_eq!(argument, "platform");

        // A Mac platform with a Linux boot loader.
        let model = supported_model(&dir);
        let aux = MacAuxiliaryStorage::create(dir.path().join("aux.img"), &model, false).unwrap();
        let id = MacMachineIdentifier::new().unwrap();
        let mut config = common::minimal_config(&dir);
        config.set_platform(MacPlatformConfiguration::new(&model, &id, &aux).unwrap());
        let (argument, _) = invalid_argument(config.validate().unwrap_err());
        assert_eq!(argument, "boot loader");

        // Aux storage created here for another (supported) model.
        let mut other = model.data_representation();
        other.extend_from_slice(b"-other");
        let other = MacHardwareModel::from_data_representation(&other).unwrap();
        assert!(other.is_supported());
        let aux_other =
            MacAuxiliaryStorage::create(dir.path().join("aux2.img"), &other, false).unwrap();
        let (argument, _) =
            invalid_argument(MacPlatformConfiguration::new(&model, &id, &aux_other).unwrap_err());
        assert_eq!(argument, "auxiliary storage");
        // Opened from a file, it cannot be checked, and is accepted.
        let reopened = MacAuxiliaryStorage::open(dir.path().join("aux2.img")).unwrap();
        MacPlatformConfiguration::new(&model, &id, &reopened).unwrap();
    });
}
