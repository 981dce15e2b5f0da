//! The "other devices" (vsock, entropy, memory balloon, virtio-gpu, USB keyboard and
//! pointing device, XHCI controller), in the simulator.
#![cfg(arcbox_vz_sim)]

mod common;

use arcbox_vz::{
    GenericPlatform, USBKeyboardConfiguration, USBScreenCoordinatePointingDeviceConfiguration,
    VZError, VirtioEntropyDeviceConfiguration, VirtioGraphicsDeviceConfiguration,
    VirtioGraphicsScanoutConfiguration, VirtioSocketDeviceConfiguration,
    VirtioTraditionalMemoryBalloonDeviceConfiguration, VirtualMachineConfiguration,
    XHCIControllerConfiguration,
};
use common::{TempDir, assert_unsupported, invalid_argument, macos, minimal_config, sim, since};

/// The framework's reason when `validate` fails with VZErrorDomain code 2.
fn framework_refusal(config: &VirtualMachineConfiguration) -> String {
    match config.validate().unwrap_err() {
        VZError::InvalidConfiguration(e) => {
            assert!(e.is_vz(2), "{e:?}");
            assert_eq!(
                e.failure_reason.as_deref(),
                Some(e.description.as_str()),
                "{e:?}"
            );
            e.description
        }
        other => panic!("expected InvalidConfiguration, got {other:?}"),
    }
}

fn gpu_with(
    scanouts: Vec<VirtioGraphicsScanoutConfiguration>,
) -> VirtioGraphicsDeviceConfiguration {
    let mut gpu = VirtioGraphicsDeviceConfiguration::new().unwrap();
    gpu.set_scanouts(scanouts);
    gpu
}

#[test]
fn builders_round_trip() {
    sim::scenario(|| {
        // No properties: construction (both ways) is the whole round trip.
        drop(VirtioSocketDeviceConfiguration::new());
        drop(VirtioSocketDeviceConfiguration::default());
        drop(VirtioEntropyDeviceConfiguration::new());
        drop(VirtioEntropyDeviceConfiguration::default());
        drop(VirtioTraditionalMemoryBalloonDeviceConfiguration::new());
        drop(VirtioTraditionalMemoryBalloonDeviceConfiguration::default());
        drop(since("12.0", USBKeyboardConfiguration::new()));
        drop(since(
            "12.0",
            USBScreenCoordinatePointingDeviceConfiguration::new(),
        ));
        drop(since("15.0", XHCIControllerConfiguration::new()));

        let Some(mut scanout) = since("13.0", VirtioGraphicsScanoutConfiguration::new(1920, 1080))
        else {
            drop(since("13.0", VirtioGraphicsDeviceConfiguration::new()));
            return;
        };
        assert_eq!(
            (scanout.width_in_pixels(), scanout.height_in_pixels()),
            (1920, 1080)
        );
        scanout
            .set_width_in_pixels(1280)
            .unwrap()
            .set_height_in_pixels(720)
            .unwrap();
        assert_eq!(
            (scanout.width_in_pixels(), scanout.height_in_pixels()),
            (1280, 720)
        );
        let max = VirtioGraphicsScanoutConfiguration::MAX_PIXELS;
        let big = VirtioGraphicsScanoutConfiguration::new(max, 1).unwrap();
        assert_eq!((big.width_in_pixels(), big.height_in_pixels()), (max, 1));

        let mut gpu = VirtioGraphicsDeviceConfiguration::new().unwrap();
        assert!(gpu.scanouts().is_empty(), "framework default");
        gpu.set_scanouts(vec![scanout]);
        assert_eq!(gpu.scanouts().len(), 1);
        assert_eq!(gpu.scanouts()[0].width_in_pixels(), 1280);
        assert_eq!(gpu.scanouts()[0].height_in_pixels(), 720);
        gpu.set_scanouts(Vec::new());
        assert!(gpu.scanouts().is_empty());
    });
}

#[test]
fn a_configuration_with_one_of_each_device_validates_and_builds() {
    sim::scenario(|| {
        // One of each device this macOS has; the newer ones are refused as such.
        let dir = TempDir::new("devices");
        let mut config = minimal_config(&dir);
        if let Some(platform) = since("12.0", GenericPlatform::new()) {
            config.set_platform(platform);
        }
        config
            .set_socket_devices(vec![VirtioSocketDeviceConfiguration::new()])
            .set_entropy_devices(vec![VirtioEntropyDeviceConfiguration::new()])
            .set_memory_balloon_devices(vec![
                VirtioTraditionalMemoryBalloonDeviceConfiguration::new(),
            ]);
        let scanout = since("13.0", VirtioGraphicsScanoutConfiguration::new(1024, 768));
        if let Some(scanout) = scanout {
            config.set_graphics_devices(vec![gpu_with(vec![scanout])]);
        }
        if let Some(keyboard) = since("12.0", USBKeyboardConfiguration::new()) {
            config.set_keyboards(vec![keyboard]);
        }
        let pointing = since(
            "12.0",
            USBScreenCoordinatePointingDeviceConfiguration::new(),
        );
        if let Some(pointing) = pointing {
            config.set_pointing_devices(vec![pointing]);
        }
        if let Some(xhci) = since("15.0", XHCIControllerConfiguration::new()) {
            config.set_usb_controllers(vec![xhci]);
        }
        let count = |has: bool| usize::from(has);
        assert_eq!(config.socket_devices().len(), 1);
        assert_eq!(config.entropy_devices().len(), 1);
        assert_eq!(config.memory_balloon_devices().len(), 1);
        assert_eq!(config.graphics_devices().len(), count(macos("13.0")));
        if macos("13.0") {
            let arcbox_vz::GraphicsDeviceConfiguration::Virtio(gpu) = &config.graphics_devices()[0]
            else {
                panic!("a virtio-gpu device was set");
            };
            assert_eq!(gpu.scanouts()[0].width_in_pixels(), 1024);
        }
        assert_eq!(config.keyboards().len(), count(macos("12.0")));
        assert_eq!(config.pointing_devices().len(), count(macos("12.0")));
        assert_eq!(config.usb_controllers().len(), count(macos("15.0")));
        config.validate().unwrap();
        drop(config.build().unwrap());
    });
}

#[test]
fn several_entropy_devices_and_a_gpu_without_scanouts_are_accepted() {
    sim::scenario(|| {
        // Apple limits the socket and balloon devices to one each, and a virtio-gpu
        // device to at most one scanout; nothing else here.
        let dir = TempDir::new("devices-many");
        let mut config = minimal_config(&dir);
        config.set_entropy_devices(vec![
            VirtioEntropyDeviceConfiguration::new(),
            VirtioEntropyDeviceConfiguration::new(),
        ]);
        if let Some(gpu) = since("13.0", VirtioGraphicsDeviceConfiguration::new()) {
            config.set_graphics_devices(vec![gpu]);
        }
        config.validate().unwrap();
    });
}

#[test]
fn framework_validation_errors_keep_the_nserror() {
    sim::scenario(|| {
        let dir = TempDir::new("framework-validation");
        let mut config = minimal_config(&dir);
        config.set_socket_devices(vec![
            arcbox_vz::VirtioSocketDeviceConfiguration::new(),
            arcbox_vz::VirtioSocketDeviceConfiguration::new(),
        ]);
        match config.validate().unwrap_err() {
            VZError::InvalidConfiguration(e) => {
                assert!(e.is_vz(2), "{e:?}");
                assert_eq!(e.description, "Only one socket device is supported.");
            }
            other => panic!("expected InvalidConfiguration, got {other:?}"),
        }
    });
}

#[test]
fn two_socket_devices_fail_validation() {
    sim::scenario(|| {
        let dir = TempDir::new("two-sockets");
        let mut config = minimal_config(&dir);
        config.set_socket_devices(vec![
            VirtioSocketDeviceConfiguration::new(),
            VirtioSocketDeviceConfiguration::default(),
        ]);
        assert_eq!(
            framework_refusal(&config),
            "Only one socket device is supported."
        );
        config.set_socket_devices(vec![VirtioSocketDeviceConfiguration::new()]);
        config.validate().unwrap();
    });
}

#[test]
fn two_memory_balloon_devices_fail_validation() {
    sim::scenario(|| {
        let dir = TempDir::new("two-balloons");
        let mut config = minimal_config(&dir);
        config.set_memory_balloon_devices(vec![
            VirtioTraditionalMemoryBalloonDeviceConfiguration::new(),
            VirtioTraditionalMemoryBalloonDeviceConfiguration::new(),
        ]);
        assert_eq!(
            framework_refusal(&config),
            "Only one memory balloon device is supported."
        );
        config.set_memory_balloon_devices(vec![
            VirtioTraditionalMemoryBalloonDeviceConfiguration::new(),
        ]);
        config.validate().unwrap();
    });
}

#[test]
fn a_gpu_with_two_scanouts_fails_validation() {
    sim::scenario(|| {
        let dir = TempDir::new("two-scanouts");
        let mut config = minimal_config(&dir);
        let Some(first) = since("13.0", VirtioGraphicsScanoutConfiguration::new(1920, 1080)) else {
            return;
        };
        config.set_graphics_devices(vec![gpu_with(vec![
            first,
            VirtioGraphicsScanoutConfiguration::new(1280, 720).unwrap(),
        ])]);
        let reason = framework_refusal(&config);
        assert!(reason.contains("maximum of one scanout"), "{reason}");
        assert!(reason.contains('2'), "{reason}");
    });
}

#[test]
fn bad_scanout_sizes_are_refused_before_the_framework_sees_them() {
    sim::scenario(|| {
        let cases: [(isize, isize); 7] = [
            (0, 0),
            (0, 600),
            (-1, 600),
            (800, 0),
            (800, -1),
            (isize::MIN, 600),
            (-1, -1),
        ];
        if !macos("13.0") {
            // Without the class, any size is refused as unsupported.
            for (width, height) in cases {
                assert_unsupported(
                    "13.0",
                    VirtioGraphicsScanoutConfiguration::new(width, height),
                );
            }
            return;
        }
        for (width, height) in cases {
            let (argument, reason) = invalid_argument(
                VirtioGraphicsScanoutConfiguration::new(width, height).unwrap_err(),
            );
            assert_eq!(argument, "scanout size", "{width}x{height}");
            assert!(reason.contains(&format!("{width}x{height}")), "{reason}");
            assert!(reason.contains("greater than 0"), "{reason}");
        }

        let mut scanout = VirtioGraphicsScanoutConfiguration::new(800, 600).unwrap();
        for bad in [0, -1, isize::MIN] {
            let (argument, reason) =
                invalid_argument(scanout.set_width_in_pixels(bad).unwrap_err());
            assert_eq!(argument, "scanout size");
            assert!(
                reason.contains("width") && reason.contains(&bad.to_string()),
                "{reason}"
            );
            let (argument, reason) =
                invalid_argument(scanout.set_height_in_pixels(bad).unwrap_err());
            assert_eq!(argument, "scanout size");
            assert!(
                reason.contains("height") && reason.contains(&bad.to_string()),
                "{reason}"
            );
        }
        // A refused size leaves the scanout as it was.
        assert_eq!(
            (scanout.width_in_pixels(), scanout.height_in_pixels()),
            (800, 600)
        );
    });
}
