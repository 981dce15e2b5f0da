//! Hostile input (issue 9): input that used to hang, abort later, or be silently
//! changed. Each case runs in a child process (`common::isolated`), so a hang or an
//! abort fails its test instead of stalling or killing the suite.
#![cfg(arcbox_vz_sim)]

mod common;

use std::time::Duration;

use arcbox_vz::{
    SharedDirectory, SingleDirectoryShare, USBKeyboardConfiguration,
    USBScreenCoordinatePointingDeviceConfiguration, VZError, VirtioConsoleDeviceConfiguration,
    VirtioFileSystemDeviceConfiguration, VirtioGraphicsDeviceConfiguration,
    XHCIControllerConfiguration,
};
use common::{ChildOutcome, TempDir, minimal_config, sim};

/// Long enough for a slow CI machine, short enough that a hang fails quickly.
const LIMIT: Duration = Duration::from_secs(20);

/// Runs `body` alone in a child process and asserts it returned normally.
#[track_caller]
fn in_child(test_name: &str, body: impl FnOnce()) {
    common::isolated(test_name, LIMIT, body).assert_succeeded();
}

// ---- item 5: availability is checked where the selector is sent ----

/// The device-list setters newer than macOS 11, as vz-api.tsv lists them.
const NEWER_LIST_SETTERS: [&str; 6] = [
    "setDirectorySharingDevices:",
    "setGraphicsDevices:",
    "setKeyboards:",
    "setPointingDevices:",
    "setConsoleDevices:",
    "setUsbControllers:",
];

#[test]
fn hidden_selector_behaves_like_a_missing_one() {
    // The hook is faithful: no longer answered by respondsToSelector:, and a send
    // raises (an abort, since Rust cannot catch it).
    in_child("hidden_selector_behaves_like_a_missing_one", || {
        let class = "VZVirtualMachineConfiguration";
        assert_eq!(
            sim::availability::instance_responds(class, "setConsoleDevices:"),
            Some(true)
        );
        sim::availability::hide_selector("setConsoleDevices:");
        assert_eq!(
            sim::availability::instance_responds(class, "setConsoleDevices:"),
            Some(false)
        );
        assert_eq!(
            sim::availability::instance_responds(class, "setSerialPorts:"),
            Some(true)
        );
    });
}

#[test]
fn hidden_selector_send_aborts() {
    let outcome: ChildOutcome = common::isolated("hidden_selector_send_aborts", LIMIT, || {
        sim::availability::hide_selector("setConsoleDevices:");
        sim::availability::send_nil_argument("VZVirtualMachineConfiguration", "setConsoleDevices:");
    });
    assert!(
        !outcome.succeeded() && !outcome.timed_out(),
        "sending a hidden selector must raise: {outcome:?}"
    );
    assert!(
        outcome.stderr.contains("foreign exception"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn empty_lists_for_missing_setters_are_not_sent() {
    // As on macOS 11: none of the newer setters exists. Empty lists (what simple_vm
    // always sets) configure nothing, so they must validate, not abort.
    in_child("empty_lists_for_missing_setters_are_not_sent", || {
        for selector in NEWER_LIST_SETTERS {
            sim::availability::hide_selector(selector);
        }
        sim::scenario(|| {
            let dir = TempDir::new("hostile-empty-lists");
            let mut config = minimal_config(&dir);
            config
                .set_directory_sharing_devices(vec![])
                .set_graphics_devices(vec![])
                .set_keyboards(vec![])
                .set_pointing_devices(vec![])
                .set_console_devices(vec![])
                .set_usb_controllers(vec![]);
            config.validate().unwrap();
        });
    });
}

/// `validate` on a configuration with one device in the list whose setter is hidden.
fn unsupported_list(
    selector: &str,
    set: impl FnOnce(&mut arcbox_vz::VirtualMachineConfiguration),
) -> &'static str {
    sim::availability::hide_selector(selector);
    sim::scenario(|| {
        let dir = TempDir::new("hostile-full-lists");
        let mut config = minimal_config(&dir);
        set(&mut config);
        match config.validate() {
            Err(VZError::Unsupported { min_macos, .. }) => min_macos,
            other => panic!("{selector}: expected Unsupported, got {other:?}"),
        }
    })
}

#[test]
fn non_empty_list_for_a_missing_console_setter_is_unsupported() {
    in_child(
        "non_empty_list_for_a_missing_console_setter_is_unsupported",
        || {
            let min = unsupported_list("setConsoleDevices:", |config| {
                config.set_console_devices(vec![VirtioConsoleDeviceConfiguration::new().unwrap()]);
            });
            assert_eq!(min, "13.0");
        },
    );
}

#[test]
fn non_empty_lists_for_missing_macos_12_setters_are_unsupported() {
    in_child(
        "non_empty_lists_for_missing_macos_12_setters_are_unsupported",
        || {
            let min = unsupported_list("setDirectorySharingDevices:", |config| {
                let dir = TempDir::new("hostile-share");
                let share =
                    SingleDirectoryShare::new(SharedDirectory::new(dir.path(), true).unwrap());
                let device = VirtioFileSystemDeviceConfiguration::new("share", share).unwrap();
                config.set_directory_sharing_devices(vec![device]);
            });
            assert_eq!(min, "12.0");
            let min = unsupported_list("setGraphicsDevices:", |config| {
                config
                    .set_graphics_devices(vec![VirtioGraphicsDeviceConfiguration::new().unwrap()]);
            });
            assert_eq!(min, "12.0");
            let min = unsupported_list("setKeyboards:", |config| {
                config.set_keyboards(vec![USBKeyboardConfiguration::new().unwrap()]);
            });
            assert_eq!(min, "12.0");
            let min = unsupported_list("setPointingDevices:", |config| {
                config.set_pointing_devices(vec![
                    USBScreenCoordinatePointingDeviceConfiguration::new().unwrap(),
                ]);
            });
            assert_eq!(min, "12.0");
        },
    );
}

#[test]
fn non_empty_list_for_a_missing_usb_setter_is_unsupported() {
    in_child(
        "non_empty_list_for_a_missing_usb_setter_is_unsupported",
        || {
            let min = unsupported_list("setUsbControllers:", |config| {
                config.set_usb_controllers(vec![XHCIControllerConfiguration::new().unwrap()]);
            });
            assert_eq!(min, "15.0");
        },
    );
}
