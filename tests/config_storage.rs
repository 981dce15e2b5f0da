//! Storage devices and their attachments, in the simulator.
#![cfg(arcbox_vz_sim)]

mod common;

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use arcbox_vz::{
    DiskBlockDeviceStorageDeviceAttachment, DiskImageCachingMode, DiskImageStorageDeviceAttachment,
    DiskImageSynchronizationMode, DiskSynchronizationMode, LinuxBootLoader,
    NVMExpressControllerDeviceConfiguration, NetworkBlockDeviceStorageDeviceAttachment,
    StorageDeviceAttachment, StorageDeviceConfiguration, USBMassStorageDeviceConfiguration,
    VZError, VZErrorCode, VirtioBlockDeviceConfiguration,
    VirtioTraditionalMemoryBalloonDeviceConfiguration, VirtualMachineConfiguration,
};
use common::{TempDir, assert_unsupported, invalid_argument, macos, sim, since};

const MIB: u64 = 1024 * 1024;

/// A raw disk image of `sectors` 512-byte sectors.
fn disk_image(dir: &TempDir, name: &str, sectors: usize) -> PathBuf {
    dir.file(name, &vec![0u8; sectors * 512])
}

/// A disk device to attach, or `None` (printing why the caller skips).
fn disk() -> Option<(File, PathBuf)> {
    let disk = common::disk_device();
    if disk.is_none() {
        eprintln!("skipped: no disk device (/dev/loop*, /dev/zram0, /dev/ram0) can be opened here");
    }
    disk
}

fn reopen(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap()
}

#[test]
fn disk_image_attachment_round_trips() {
    sim::scenario(|| {
        let dir = TempDir::new("disk-image");
        let path = disk_image(&dir, "disk.img", 2048);

        let disk = DiskImageStorageDeviceAttachment::new(&path, false).unwrap();
        assert_eq!(disk.path(), path);
        assert!(!disk.is_read_only());
        // `new` does not take the framework's automatic caching (it corrupts Linux
        // guests): cached with full synchronization from macOS 12; macOS 11 has no
        // modes at all.
        if let Some(caching) = since("12.0", disk.caching_mode()) {
            assert_eq!(caching, DiskImageCachingMode::Cached);
            assert_eq!(
                caching,
                DiskImageStorageDeviceAttachment::DEFAULT_CACHING_MODE
            );
        }
        if let Some(sync) = since("12.0", disk.synchronization_mode()) {
            assert_eq!(sync, DiskImageSynchronizationMode::Full);
            assert_eq!(
                sync,
                DiskImageStorageDeviceAttachment::DEFAULT_SYNCHRONIZATION_MODE
            );
        }

        let read_only = DiskImageStorageDeviceAttachment::new(&path, true).unwrap();
        assert!(read_only.is_read_only());
        assert_eq!(read_only.path(), path);
        if let Some(caching) = since("12.0", read_only.caching_mode()) {
            assert_eq!(caching, DiskImageCachingMode::Cached);
        }
        if let Some(sync) = since("12.0", read_only.synchronization_mode()) {
            assert_eq!(sync, DiskImageSynchronizationMode::Full);
        }

        for caching in [
            DiskImageCachingMode::Automatic,
            DiskImageCachingMode::Uncached,
            DiskImageCachingMode::Cached,
        ] {
            for sync in [
                DiskImageSynchronizationMode::Full,
                DiskImageSynchronizationMode::Fsync,
                DiskImageSynchronizationMode::None,
            ] {
                let with_options =
                    DiskImageStorageDeviceAttachment::with_options(&path, true, caching, sync);
                let Some(disk) = since("12.0", with_options) else {
                    continue;
                };
                assert_eq!(disk.path(), path);
                assert!(disk.is_read_only());
                assert_eq!(disk.caching_mode().unwrap(), caching);
                assert_eq!(disk.synchronization_mode().unwrap(), sync);
            }
        }

        // An empty image is a whole number (zero) of sectors.
        let empty = dir.file("empty.img", b"");
        assert_eq!(
            DiskImageStorageDeviceAttachment::new(&empty, true)
                .unwrap()
                .path(),
            empty
        );

        // A relative path comes back absolute.
        let cwd = std::env::current_dir().unwrap();
        std::env::set_current_dir(dir.path()).unwrap();
        let relative = DiskImageStorageDeviceAttachment::new("disk.img", true);
        std::env::set_current_dir(cwd).unwrap();
        assert_eq!(relative.unwrap().path(), path);
    });
}

#[test]
fn block_device_attachment_owns_a_duplicate_descriptor() {
    sim::scenario(|| {
        if !macos("14.0") {
            // Refused before the descriptor is even looked at.
            let null = File::open("/dev/null").unwrap();
            assert_unsupported(
                "14.0",
                DiskBlockDeviceStorageDeviceAttachment::new(
                    &null,
                    true,
                    DiskSynchronizationMode::Full,
                ),
            );
            return;
        }
        let Some((disk, path)) = disk() else { return };
        // The first NSFileHandle makes GNUstep open descriptors of its own; count after it.
        drop(
            DiskBlockDeviceStorageDeviceAttachment::new(disk, true, DiskSynchronizationMode::Full)
                .unwrap(),
        );
        let before = common::open_fds();
        let device = reopen(&path);
        let attachment = DiskBlockDeviceStorageDeviceAttachment::new(
            &device,
            true,
            DiskSynchronizationMode::None,
        )
        .unwrap();
        assert!(attachment.is_read_only());
        assert_eq!(
            attachment.synchronization_mode(),
            DiskSynchronizationMode::None
        );
        let own = attachment.as_raw_fd();
        assert!(own >= 0);
        assert_ne!(
            own,
            device.as_raw_fd(),
            "the attachment keeps a dup, not the caller's descriptor"
        );
        assert_eq!(common::open_fds(), before + 2);

        // The caller may close its descriptor; the attachment's stays open.
        drop(device);
        let target = std::fs::read_link(format!("/proc/self/fd/{own}")).unwrap();
        assert_eq!(target, path);
        drop(attachment);
        assert_eq!(common::open_fds(), before, "the attachment closes its dup");

        let writable = DiskBlockDeviceStorageDeviceAttachment::new(
            reopen(&path),
            false,
            DiskSynchronizationMode::Full,
        )
        .unwrap();
        assert!(!writable.is_read_only());
        assert_eq!(
            writable.synchronization_mode(),
            DiskSynchronizationMode::Full
        );
        drop(writable);
        assert_eq!(common::open_fds(), before);
    });
}

#[test]
fn network_block_device_attachment_round_trips() {
    sim::scenario(|| {
        let url = "nbd://localhost:10809/disk";
        let nbd = NetworkBlockDeviceStorageDeviceAttachment::new(
            url,
            Duration::from_millis(2500),
            true,
            DiskSynchronizationMode::None,
        );
        let Some(nbd) = since("14.0", nbd) else {
            assert_unsupported(
                "14.0",
                NetworkBlockDeviceStorageDeviceAttachment::with_url(url),
            );
            return;
        };
        assert_eq!(nbd.url(), url);
        assert_eq!(nbd.timeout(), Duration::from_millis(2500));
        assert!(nbd.is_forced_read_only());
        assert_eq!(nbd.synchronization_mode(), DiskSynchronizationMode::None);

        for url in [
            "nbds://10.0.0.1:10809/export",
            "nbd+unix:///disk?socket=/tmp/nbd.sock",
            "nbds+unix:///disk?socket=/tmp/nbd.sock",
        ] {
            let nbd = NetworkBlockDeviceStorageDeviceAttachment::with_url(url).unwrap();
            assert_eq!(nbd.url(), url);
            // Apple documents no defaults for initWithURL:error:; the simulator uses 5 s,
            // writable, full synchronization.
            assert!(nbd.timeout() > Duration::ZERO, "simulator default");
            assert!(!nbd.is_forced_read_only(), "simulator default");
            assert_eq!(
                nbd.synchronization_mode(),
                DiskSynchronizationMode::Full,
                "simulator default"
            );
        }
    });
}

#[test]
fn storage_devices_round_trip() {
    sim::scenario(|| {
        let dir = TempDir::new("storage-devices");
        let path = disk_image(&dir, "root.img", 64);

        let mut virtio = VirtioBlockDeviceConfiguration::new(
            DiskImageStorageDeviceAttachment::new(&path, false).unwrap(),
        )
        .unwrap();
        assert_eq!(virtio.block_device_identifier(), "", "framework default");
        if since("12.3", virtio.set_block_device_identifier("root-disk")).is_some() {
            assert_eq!(virtio.block_device_identifier(), "root-disk");
            // Exactly 20 bytes is allowed; the empty string removes the identifier.
            virtio
                .set_block_device_identifier("01234567890123456789")
                .unwrap();
            assert_eq!(virtio.block_device_identifier(), "01234567890123456789");
            virtio.set_block_device_identifier("").unwrap();
        }
        assert_eq!(virtio.block_device_identifier(), "");
        match virtio.attachment() {
            StorageDeviceAttachment::DiskImage(disk) => assert_eq!(disk.path(), path),
            other => panic!("unexpected attachment {other:?}"),
        }
        let mut devices: Vec<StorageDeviceConfiguration> = vec![virtio.into()];
        assert!(matches!(
            devices[0],
            StorageDeviceConfiguration::VirtioBlock(_)
        ));

        let usb = USBMassStorageDeviceConfiguration::new(
            DiskImageStorageDeviceAttachment::new(&path, true).unwrap(),
        );
        if let Some(mut usb) = since("13.0", usb) {
            if let Some(generated) = since("15.0", usb.uuid()) {
                assert_eq!(generated.len(), 36, "{generated}");
                let uuid = "E621E1F8-C36C-495A-93FC-0C247A3E6E5F";
                usb.set_uuid(uuid).unwrap();
                assert_eq!(usb.uuid().unwrap(), uuid);
                usb.set_uuid(&uuid.to_lowercase()).unwrap();
                assert_eq!(usb.uuid().unwrap().to_uppercase(), uuid);
            } else {
                assert_unsupported("15.0", usb.set_uuid("E621E1F8-C36C-495A-93FC-0C247A3E6E5F"));
            }
            assert!(
                matches!(usb.attachment(), StorageDeviceAttachment::DiskImage(d) if d.is_read_only())
            );
            devices.push(usb.into());
            assert!(matches!(
                devices[1],
                StorageDeviceConfiguration::USBMassStorage(_)
            ));
        }

        let nbd = NetworkBlockDeviceStorageDeviceAttachment::with_url("nbd://localhost/disk");
        if let Some(nbd) = since("14.0", nbd) {
            let nvme = NVMExpressControllerDeviceConfiguration::new(nbd).unwrap();
            match nvme.attachment() {
                StorageDeviceAttachment::NetworkBlockDevice(nbd) => {
                    assert_eq!(nbd.url(), "nbd://localhost/disk")
                }
                other => panic!("unexpected attachment {other:?}"),
            }
            devices.push(nvme.into());
            assert!(matches!(
                devices[2],
                StorageDeviceConfiguration::NVMExpress(_)
            ));
            assert!(matches!(
                devices[2].attachment(),
                StorageDeviceAttachment::NetworkBlockDevice(_)
            ));
        } else {
            let disk = DiskImageStorageDeviceAttachment::new(&path, true).unwrap();
            assert_unsupported("14.0", NVMExpressControllerDeviceConfiguration::new(disk));
        }
        let expected = 1 + usize::from(macos("13.0")) + usize::from(macos("14.0"));
        assert_eq!(devices.len(), expected);
    });
}

#[test]
fn bad_inputs_are_refused_before_the_framework_sees_them() {
    sim::scenario(|| {
        let dir = TempDir::new("storage-bad");
        let missing = dir.path().join("missing.img");
        let odd = dir.file("odd.img", &[0u8; 1000]);
        let good = disk_image(&dir, "good.img", 8);
        let nul = PathBuf::from("/tmp/disk\0.img");
        let non_utf8 = PathBuf::from(OsStr::from_bytes(b"/tmp/disk-\xff.img"));
        let regular = File::open(&good).unwrap();
        let (socket, _peer) = UnixStream::pair().unwrap();
        let nbd = |url: &str| {
            NetworkBlockDeviceStorageDeviceAttachment::new(
                url,
                Duration::from_secs(5),
                false,
                DiskSynchronizationMode::Full,
            )
            .map(drop)
        };
        let identifier = |id: &str| {
            let disk = DiskImageStorageDeviceAttachment::new(&good, true)?;
            VirtioBlockDeviceConfiguration::new(disk)?
                .set_block_device_identifier(id)
                .map(drop)
        };
        let usb_uuid = |uuid: &str| {
            let disk = DiskImageStorageDeviceAttachment::new(&good, true)?;
            USBMassStorageDeviceConfiguration::new(disk)?
                .set_uuid(uuid)
                .map(drop)
        };
        let image = |path: &Path| DiskImageStorageDeviceAttachment::new(path, false).map(drop);
        let image_with_options = |path: &Path| {
            DiskImageStorageDeviceAttachment::with_options(
                path,
                true,
                DiskImageCachingMode::Cached,
                DiskImageSynchronizationMode::Fsync,
            )
            .map(drop)
        };

        // The releases each case needs, oldest first: before one of them, the case is
        // refused as unsupported instead.
        const ANY: &[&str] = &[];
        const MODES: &[&str] = &["12.0"];
        const IDENTIFIER: &[&str] = &["12.3"];
        const USB_UUID: &[&str] = &["13.0", "15.0"];
        const NBD: &[&str] = &["14.0"];
        const BLOCK: &[&str] = &["14.0"];
        #[allow(clippy::type_complexity)]
        let cases: Vec<(
            &[&str],
            &str,
            Box<dyn Fn() -> Result<(), VZError> + '_>,
            &str,
            &str,
        )> = vec![
            (
                ANY,
                "missing disk image",
                Box::new(|| image(&missing)),
                "disk image path",
                "does not exist",
            ),
            (
                ANY,
                "directory as disk image",
                Box::new(|| image(dir.path())),
                "disk image path",
                "is a directory",
            ),
            (
                ANY,
                "disk image path with NUL",
                Box::new(|| image(&nul)),
                "disk image path",
                "NUL",
            ),
            (
                ANY,
                "non-UTF-8 disk image path",
                Box::new(|| image(&non_utf8)),
                "disk image path",
                "UTF-8",
            ),
            (
                ANY,
                "image of 1000 bytes",
                Box::new(|| image(&odd)),
                "disk image path",
                "not a multiple of 512",
            ),
            (
                MODES,
                "image of 1000 bytes, with modes",
                Box::new(|| image_with_options(&odd)),
                "disk image path",
                "not a multiple of 512",
            ),
            (
                MODES,
                "missing image, with modes",
                Box::new(|| image_with_options(&missing)),
                "disk image path",
                "does not exist",
            ),
            (
                NBD,
                "http URL",
                Box::new(|| nbd("http://x")),
                "NBD URL",
                "scheme \"http\"",
            ),
            (
                NBD,
                "NBD URL without host",
                Box::new(|| nbd("nbd://")),
                "NBD URL",
                "no host",
            ),
            (
                NBD,
                "not a URL",
                Box::new(|| nbd("not a url")),
                "NBD URL",
                "contains ' '",
            ),
            (NBD, "empty URL", Box::new(|| nbd("")), "NBD URL", "empty"),
            (
                NBD,
                "NBD URL with bad port",
                Box::new(|| nbd("nbd://host:99999/disk")),
                "NBD URL",
                "port",
            ),
            (
                NBD,
                "nbd+unix URL without socket",
                Box::new(|| nbd("nbd+unix:///disk")),
                "NBD URL",
                "no socket path",
            ),
            (
                NBD,
                "http URL, default options",
                Box::new(|| {
                    NetworkBlockDeviceStorageDeviceAttachment::with_url("http://x").map(drop)
                }),
                "NBD URL",
                "scheme",
            ),
            (
                NBD,
                "zero timeout",
                Box::new(|| {
                    NetworkBlockDeviceStorageDeviceAttachment::new(
                        "nbd://localhost/disk",
                        Duration::ZERO,
                        false,
                        DiskSynchronizationMode::Full,
                    )
                    .map(drop)
                }),
                "NBD timeout",
                "not a positive duration",
            ),
            (
                IDENTIFIER,
                "identifier of 21 bytes",
                Box::new(|| identifier("012345678901234567890")),
                "block device identifier",
                "21 bytes",
            ),
            (
                IDENTIFIER,
                "non-ASCII identifier",
                Box::new(|| identifier("disque-é")),
                "block device identifier",
                "non-ASCII",
            ),
            (
                IDENTIFIER,
                "identifier with NUL",
                Box::new(|| identifier("disk\0")),
                "block device identifier",
                "NUL",
            ),
            (
                USB_UUID,
                "bad USB UUID",
                Box::new(|| usb_uuid("not-a-uuid")),
                "USB device UUID",
                "not a UUID",
            ),
            (
                USB_UUID,
                "empty USB UUID",
                Box::new(|| usb_uuid("")),
                "USB device UUID",
                "not a UUID",
            ),
            (
                USB_UUID,
                "braced USB UUID",
                Box::new(|| usb_uuid("{E621E1F8-C36C-495A-93FC-0C247A3E6E5F}")),
                "USB device UUID",
                "not a UUID",
            ),
            (
                BLOCK,
                "closed file descriptor",
                Box::new(|| {
                    // A descriptor number that was open a moment ago and is now closed.
                    let closed = File::open("/dev/null").unwrap().as_raw_fd();
                    // SAFETY: deliberately violates BorrowedFd's "open" invariant to prove
                    // the crate refuses a closed descriptor (EBADF) without using it.
                    let fd = unsafe { BorrowedFd::borrow_raw(closed) };
                    DiskBlockDeviceStorageDeviceAttachment::new(
                        fd,
                        true,
                        DiskSynchronizationMode::Full,
                    )
                    .map(drop)
                }),
                "block device file descriptor",
                "cannot be used",
            ),
            (
                BLOCK,
                "regular file as block device",
                Box::new(|| {
                    DiskBlockDeviceStorageDeviceAttachment::new(
                        &regular,
                        true,
                        DiskSynchronizationMode::Full,
                    )
                    .map(drop)
                }),
                "block device file descriptor",
                "regular file",
            ),
            (
                BLOCK,
                "socket as block device",
                Box::new(|| {
                    DiskBlockDeviceStorageDeviceAttachment::new(
                        &socket,
                        true,
                        DiskSynchronizationMode::Full,
                    )
                    .map(drop)
                }),
                "block device file descriptor",
                "a socket",
            ),
        ];
        // Twice: GNUstep opens descriptors of its own the first time some cases reach
        // it (its first NSFileHandle), so only the second pass can count.
        let mut fds = 0;
        for pass in 0..2 {
            if pass == 1 {
                fds = common::open_fds();
            }
            for (needs, case, call, argument, why) in &cases {
                if let Some(min) = needs.iter().find(|min| !macos(min)) {
                    match call() {
                        Err(VZError::Unsupported { min_macos, .. }) if min_macos == *min => {}
                        other => panic!("{case}: expected Unsupported {{ {min} }}, got {other:?}"),
                    }
                    continue;
                }
                let err = call().expect_err(case);
                let (got, reason) = invalid_argument(err);
                assert_eq!(got, *argument, "{case}: {reason}");
                assert!(
                    reason.contains(why),
                    "{case}: {reason:?} does not say {why:?}"
                );
            }
        }
        assert_eq!(
            common::open_fds(),
            fds,
            "a refused input leaked a descriptor"
        );
    });
}

#[test]
fn configuration_with_storage_devices_validates() {
    sim::scenario(|| {
        let dir = TempDir::new("storage-config");
        let root = disk_image(&dir, "root.img", 2048);
        let iso = disk_image(&dir, "installer.iso", 16);

        // The devices this macOS has: the newer ones are refused as such above.
        let root_disk = DiskImageStorageDeviceAttachment::with_options(
            &root,
            false,
            DiskImageCachingMode::Cached,
            DiskImageSynchronizationMode::Fsync,
        );
        let root_disk = since("12.0", root_disk)
            .unwrap_or_else(|| DiskImageStorageDeviceAttachment::new(&root, false).unwrap());
        let mut virtio = VirtioBlockDeviceConfiguration::new(root_disk).unwrap();
        if since("12.3", virtio.set_block_device_identifier("root")).is_some() {
            assert_eq!(virtio.block_device_identifier(), "root");
        }
        let usb = since(
            "13.0",
            USBMassStorageDeviceConfiguration::new(
                DiskImageStorageDeviceAttachment::new(&iso, true).unwrap(),
            ),
        );
        let nvme = since(
            "14.0",
            NetworkBlockDeviceStorageDeviceAttachment::with_url("nbd://localhost:10809/data"),
        )
        .map(|nbd| NVMExpressControllerDeviceConfiguration::new(nbd).unwrap());
        // A disk device too, where this machine has one to open (and macOS 14 on).
        let raw = macos("14.0").then(disk).flatten().map(|(disk, _)| {
            VirtioBlockDeviceConfiguration::new(
                DiskBlockDeviceStorageDeviceAttachment::new(
                    disk,
                    true,
                    DiskSynchronizationMode::Full,
                )
                .unwrap(),
            )
            .unwrap()
        });

        let mut config = VirtualMachineConfiguration::new().unwrap();
        config
            .set_cpu_count(2)
            .set_memory_size(512 * MIB)
            .set_boot_loader(LinuxBootLoader::new(dir.kernel()).unwrap())
            .set_storage_devices(
                [
                    Some(virtio.into()),
                    usb.map(Into::into),
                    nvme.map(Into::into),
                    raw.map(Into::into),
                ]
                .into_iter()
                .flatten()
                .collect(),
            );
        let expected = 1
            + usize::from(macos("13.0"))
            + usize::from(macos("14.0"))
            + usize::from(macos("14.0") && common::disk_device().is_some());
        assert_eq!(config.storage_devices().len(), expected);
        config.validate().unwrap();
        drop(config.build().unwrap());

        // Replacing the devices releases the old ones.
        config.set_storage_devices(Vec::new());
        assert!(config.storage_devices().is_empty());
        config.validate().unwrap();
    });
}

#[test]
fn framework_refusals_carry_a_typed_vz_code() {
    sim::scenario(|| {
        let dir = TempDir::new("storage-vz-code");
        let root = disk_image(&dir, "root.img", 2048);
        // A disk next to two memory balloons, which the framework's validation refuses
        // with VZErrorDomain code 2 at every release.
        let mut config = common::minimal_config(&dir);
        config
            .set_storage_devices(vec![
                VirtioBlockDeviceConfiguration::new(
                    DiskImageStorageDeviceAttachment::new(&root, false).unwrap(),
                )
                .unwrap()
                .into(),
            ])
            .set_memory_balloon_devices(vec![
                VirtioTraditionalMemoryBalloonDeviceConfiguration::new(),
                VirtioTraditionalMemoryBalloonDeviceConfiguration::new(),
            ]);
        match config.validate().unwrap_err() {
            VZError::InvalidConfiguration(e) => {
                assert_eq!(
                    e.vz_code(),
                    Some(VZErrorCode::InvalidVirtualMachineConfiguration),
                    "{e:?}"
                );
                assert_eq!(e.vz_code().and_then(VZErrorCode::min_macos), Some("11.0"));
            }
            other => panic!("expected InvalidConfiguration, got {other:?}"),
        }
    });
}
