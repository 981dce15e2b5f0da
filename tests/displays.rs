//! Live graphics displays in the simulator (macOS 14): the runtime graphics devices,
//! their displays, `sizeInPixels`, `reconfigureWithSizeInPixels:error:` and the
//! display observer's events in the VM's event stream. Every call must reach the fake
//! on the VM queue, or the fake aborts the process. Every test passes at every
//! simulated release.
#![cfg(arcbox_vz_sim)]

mod common;

use arcbox_vz::*;
use common::{
    TempDir, assert_unsupported, block_on, invalid_argument, macos, sim, stop_vm, vm_config,
};

/// A virtual machine with a virtio-gpu of one 1024 × 768 scanout (macOS 13 on), or
/// none before.
fn gpu_vm(dir: &TempDir) -> VirtualMachine {
    let mut config = vm_config(dir);
    if macos("13.0") {
        let mut gpu = VirtioGraphicsDeviceConfiguration::new().unwrap();
        gpu.set_scanouts(vec![
            VirtioGraphicsScanoutConfiguration::new(1024, 768).unwrap(),
        ]);
        config.set_graphics_devices(vec![gpu]);
    }
    config.build().unwrap()
}

/// The next event that is not a state change (`None` if none comes within 5 s).
fn next_display_event(events: &mut VmEvents) -> Option<VmEvent> {
    common::next_event_where(events, |e| !matches!(e, VmEvent::StateChanged(_)))
}

#[test]
fn graphics_devices_and_their_displays() {
    sim::scenario(|| {
        let dir = TempDir::new("displays");
        let vm = gpu_vm(&dir);
        if !macos("14.0") {
            assert_unsupported("14.0", vm.graphics_devices());
            return;
        }
        // Before the start too: the devices exist from the virtual machine's creation.
        let devices = vm.graphics_devices().unwrap();
        assert_eq!(devices.len(), 1);
        let displays = devices[0].displays();
        assert_eq!(displays.len(), 1);
        assert_eq!(displays[0].size_in_pixels(), (1024, 768));

        // A machine without a graphics device has none.
        let plain = vm_config(&dir).build().unwrap();
        assert!(plain.graphics_devices().unwrap().is_empty());
    });
}

#[test]
fn reconfigure_to_a_bad_size_is_refused_before_the_framework() {
    sim::scenario(|| {
        let dir = TempDir::new("displays-bad");
        let vm = gpu_vm(&dir);
        let Ok(devices) = vm.graphics_devices() else {
            assert!(!macos("14.0"));
            return;
        };
        let display = devices[0].displays().remove(0);
        for (w, h) in [
            (0, 768),
            (1024, 0),
            (-1, 768),
            (1024, -5),
            (16385, 768),
            (1024, isize::MAX),
        ] {
            let (argument, reason) = invalid_argument(display.reconfigure(w, h).unwrap_err());
            assert_eq!(argument, "display size");
            assert!(reason.contains("pixels"), "{reason}");
        }
        assert_eq!(display.size_in_pixels(), (1024, 768));
    });
}

#[test]
fn reconfigure_reports_begin_then_end_and_changes_the_size() {
    sim::scenario(|| {
        let dir = TempDir::new("displays-resize");
        let vm = gpu_vm(&dir);
        let Ok(devices) = vm.graphics_devices() else {
            assert!(!macos("14.0"));
            return;
        };
        let display = devices[0].displays().remove(0);
        let mut events = vm.events();
        block_on(vm.start()).unwrap();
        display.reconfigure(1280, 720).unwrap();
        assert_eq!(
            next_display_event(&mut events),
            Some(VmEvent::DisplayReconfigurationBegan {
                device_index: 0,
                display_index: 0
            })
        );
        assert_eq!(
            next_display_event(&mut events),
            Some(VmEvent::DisplayReconfigurationEnded {
                device_index: 0,
                display_index: 0
            })
        );
        assert_eq!(display.size_in_pixels(), (1280, 720));
        stop_vm(&vm);
    });
}

#[test]
fn a_vm_dropped_during_a_reconfiguration_leaves_nothing() {
    sim::scenario(|| {
        let dir = TempDir::new("displays-dropped");
        let vm = gpu_vm(&dir);
        let Ok(devices) = vm.graphics_devices() else {
            assert!(!macos("14.0"));
            return;
        };
        let display = devices[0].displays().remove(0);
        let events = vm.events();
        block_on(vm.start()).unwrap();
        display.reconfigure(800, 600).unwrap();
        // Everything goes at once, before the observer hears anything: the teardown
        // unregisters the observers on the queue; the scenario checks for leaks.
        drop((events, display, devices, vm));
    });
}

/// A Mac graphics device (macOS 12 configuration; runtime objects from macOS 14) next
/// to a virtio-gpu: `graphicsDevices` in configuration order, each of its kind, the
/// Mac one with its displays in order at their size and density; a Mac display
/// reconfigures like a scanout. Before macOS 14 there are no runtime graphics devices.
#[test]
fn a_mac_graphics_device_and_its_displays() {
    sim::scenario(|| {
        let dir = TempDir::new("displays-mac");
        let Some(mut mac) = common::since("12.0", MacGraphicsDeviceConfiguration::new()) else {
            return;
        };
        mac.set_displays(vec![
            MacGraphicsDisplayConfiguration::new(1920, 1200, 80).unwrap(),
            MacGraphicsDisplayConfiguration::new(2880, 1800, 220).unwrap(),
        ]);
        let mut devices: Vec<GraphicsDeviceConfiguration> = vec![mac.into()];
        if macos("13.0") {
            let mut gpu = VirtioGraphicsDeviceConfiguration::new().unwrap();
            gpu.set_scanouts(vec![
                VirtioGraphicsScanoutConfiguration::new(1024, 768).unwrap(),
            ]);
            devices.push(gpu.into());
        }
        let mut config = vm_config(&dir);
        config.set_graphics_devices(devices);
        let vm = config.build().unwrap();
        if !macos("14.0") {
            assert_unsupported("14.0", vm.graphics_devices());
            return;
        }
        let devices = vm.graphics_devices().unwrap();
        assert_eq!(devices.len(), 2);
        assert_eq!(devices[0].kind(), GraphicsDeviceKind::Mac);
        let displays = devices[0].displays();
        let seen: Vec<_> = displays
            .iter()
            .map(|d| (d.size_in_pixels(), d.pixels_per_inch()))
            .collect();
        assert_eq!(seen, [((1920, 1200), Some(80)), ((2880, 1800), Some(220))]);
        assert_eq!(devices[1].kind(), GraphicsDeviceKind::Virtio);
        let scanouts = devices[1].displays();
        assert_eq!(scanouts.len(), 1);
        assert_eq!(scanouts[0].size_in_pixels(), (1024, 768));
        assert_eq!(
            scanouts[0].pixels_per_inch(),
            None,
            "a scanout has no density"
        );

        // The second Mac display follows a reconfiguration while the guest runs.
        let mut events = vm.events();
        block_on(vm.start()).unwrap();
        displays[1].reconfigure(1440, 900).unwrap();
        assert_eq!(
            next_display_event(&mut events),
            Some(VmEvent::DisplayReconfigurationBegan {
                device_index: 0,
                display_index: 1
            })
        );
        assert_eq!(
            next_display_event(&mut events),
            Some(VmEvent::DisplayReconfigurationEnded {
                device_index: 0,
                display_index: 1
            })
        );
        assert_eq!(displays[1].size_in_pixels(), (1440, 900));
        assert_eq!(displays[1].pixels_per_inch(), Some(220));
        stop_vm(&vm);
    });
}
