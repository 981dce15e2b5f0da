//! The fake framework refuses, on its own, what Apple documents as invalid: these
//! bypass the Rust checks and call the selectors directly.

use arcbox_vz_sim as sim;

use super::*;
use crate::error::FrameworkError;
use crate::error_code::VZErrorCode;

fn disk_image_error(path: &Path, read_only: bool) -> FrameworkError {
    let class = base_class(class!("VZDiskImageStorageDeviceAttachment"));
    let url = foundation::file_url(path, "test").unwrap();
    with_error("test", |error| {
        disk_image_init(class.alloc(), &url, read_only, error)
    })
    .unwrap_err()
}

#[test]
fn disk_images_the_framework_refuses() {
    sim::scenario(|| {
        let dir =
            std::env::temp_dir().join(format!("arcbox-vz-storage-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let odd = dir.join("odd.img");
        std::fs::write(&odd, [0u8; 1000]).unwrap();

        let e = disk_image_error(&odd, true);
        assert_eq!(
            (e.domain.as_str(), e.code),
            (FrameworkError::VZ_ERROR_DOMAIN, 5),
            "{e:?}"
        );
        assert_eq!(e.vz_code(), Some(VZErrorCode::InvalidDiskImage));
        let e = disk_image_error(&dir.join("missing.img"), true);
        assert_eq!(
            (e.domain.as_str(), e.code),
            (FrameworkError::POSIX_ERROR_DOMAIN, 2),
            "{e:?}"
        );
        // ENOENT is 2, as is VZErrorInvalidVirtualMachineConfiguration: the domain
        // decides.
        assert_eq!(e.vz_code(), None);
        let e = disk_image_error(&dir, true);
        assert_eq!(
            (e.domain.as_str(), e.code),
            (FrameworkError::VZ_ERROR_DOMAIN, 5),
            "{e:?}"
        );

        // The block-device attachment is macOS 14: before that the class is missing.
        let class = class!("VZDiskBlockDeviceStorageDeviceAttachment");
        if !sim::macos_at_least("14.0") {
            assert!(class.is_err(), "no block-device attachment before macOS 14");
            std::fs::remove_dir_all(&dir).unwrap();
            return;
        }
        let class = class.unwrap();
        let file = File::open(&odd).unwrap();
        let handle = autoreleasepool(|| foundation::file_handle(file.as_fd())).unwrap();
        let e = with_error("test", |error| {
            block_device_init(
                class.alloc(),
                &handle,
                true,
                DiskSynchronizationMode::Full.raw(),
                error,
            )
        })
        .unwrap_err();
        assert_eq!(
            (e.domain.as_str(), e.code),
            (FrameworkError::VZ_ERROR_DOMAIN, 5),
            "{e:?}"
        );
        drop(handle);
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

#[test]
fn urls_and_identifiers_the_framework_refuses() {
    sim::scenario(|| {
        // NBD attachments are macOS 14: before that the crate says so.
        match nbd_class() {
            Ok(class) => {
                assert!(sim::macos_at_least("14.0"));
                for (url, valid) in [
                    ("nbd://localhost:10809/disk", true),
                    ("nbd+unix:///disk?socket=/tmp/s", true),
                    ("http://x", false),
                    ("nbd:///disk", false),
                    ("nbd+unix:///disk", false),
                    ("nbd+unix://host/disk?socket=/tmp/s", false),
                ] {
                    let ns_url = foundation::url_from_string(url).unwrap();
                    let result = with_error("test", |error| {
                        nbd_validate_url(class, &ns_url, error).then_some(())
                    });
                    assert_eq!(result.is_ok(), valid, "{url}: {result:?}");
                }
            }
            Err(VZError::Unsupported { min_macos, .. }) => {
                assert!(!sim::macos_at_least("14.0"));
                assert_eq!(min_macos, "14.0");
            }
            Err(other) => panic!("{other:?}"),
        }
        // Block device identifiers are macOS 12.3: before that the class method is
        // missing (sending it would abort).
        let class = base_class(class!("VZVirtioBlockDeviceConfiguration"));
        let validate = sel!("validateBlockDeviceIdentifier:error:");
        if !sim::macos_at_least("12.3") {
            assert!(!class.responds_to(validate));
            return;
        }
        for (identifier, valid) in [
            ("", true),
            ("01234567890123456789", true),
            ("012345678901234567890", false),
            ("é", false),
        ] {
            let string = foundation::ns_string(identifier);
            let result = with_error("test", |error| {
                validate_block_device_identifier_raw(class, &string, error).then_some(())
            });
            assert_eq!(result.is_ok(), valid, "{identifier:?}: {result:?}");
        }
    });
}
