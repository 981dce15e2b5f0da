//! The simulator's own modes (issue 10): the macOS release it plays, the seeded
//! scheduler and zombies. The suites that use them test the crate; these check that
//! the modes themselves do what they promise.
#![cfg(arcbox_vz_sim)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{TempDir, block_on, isolated, sim};

const CHILD_TIMEOUT: Duration = Duration::from_secs(30);

/// `"13.0"` as `(13, 0)`.
fn release(text: &str) -> (u32, u32) {
    let (major, minor) = text.split_once('.').expect("major.minor");
    (major.parse().unwrap(), minor.parse().unwrap())
}

/// The committed copy of the API table, as rows of columns.
fn api_rows() -> Vec<Vec<String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sim/vz-api.tsv");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| line.split('\t').map(str::to_string).collect())
        .collect()
}

#[test]
fn the_api_table_copy_has_the_columns_the_simulator_reads() {
    let rows = api_rows();
    assert_eq!(
        rows[0][..6],
        [
            "class",
            "kind",
            "selector",
            "argument_types",
            "return_type",
            "macos_introduced"
        ]
    );
    for row in &rows[1..] {
        assert!(row.len() >= 6, "{row:?}");
        release(&row[5]);
    }
    // Where the shared reference is next to the repository (the developers' machines),
    // the copy must match it in the columns the simulator uses.
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/vz-api.tsv");
    let Ok(text) = std::fs::read_to_string(&reference) else {
        eprintln!(
            "skipped the comparison: {} is not here (it is outside the repository)",
            reference.display()
        );
        return;
    };
    let theirs: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split('\t').take(6).collect())
        .collect();
    let ours: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| r.iter().take(6).map(String::as_str).collect())
        .collect();
    assert_eq!(
        ours,
        theirs,
        "tests/sim/vz-api.tsv differs from {}",
        reference.display()
    );
}

#[test]
fn everything_newer_than_the_release_played_is_missing() {
    sim::scenario(|| {
        let played = sim::macos();
        let mut newer = 0;
        let mut checked = 0;
        for row in &api_rows()[1..] {
            let (class, kind, selector) = (&row[0], row[1].as_str(), &row[2]);
            if !class.starts_with("VZ") || release(&row[5]) <= played {
                continue;
            }
            match kind {
                "class-info" => {
                    newer += 1;
                    assert_eq!(
                        sim::availability::class_responds(class, "class", true),
                        None,
                        "{class} is newer than macOS {played:?} but exists"
                    );
                    checked += 1;
                }
                "instance-method" | "class-method" | "property" | "property-setter" => {
                    newer += 1;
                    let class_method = kind == "class-method";
                    if let Some(responds) =
                        sim::availability::class_responds(class, selector, class_method)
                    {
                        assert!(!responds, "{class} {selector} is newer than {played:?}");
                        checked += 1;
                    }
                }
                _ => {}
            }
        }
        assert_eq!(sim::availability::hidden_rows(), newer);
        eprintln!("macOS {played:?}: {newer} newer rows, {checked} checked missing");
        assert!(checked > 0 || newer == 0);
    });
}

#[test]
fn a_message_to_a_deallocated_fake_names_its_class_and_selector() {
    let outcome = isolated(
        "a_message_to_a_deallocated_fake_names_its_class_and_selector",
        CHILD_TIMEOUT,
        || {
            let class = std::ffi::CString::new("VZVirtioSocketDeviceConfiguration").unwrap();
            let selector = std::ffi::CString::new("hash").unwrap();
            // SAFETY: valid C strings; the hook aborts the process, as it must.
            unsafe { sim::raw::sim_message_after_free(class.as_ptr(), selector.as_ptr()) };
        },
    );
    assert!(!outcome.succeeded(), "{outcome:?}");
    assert!(
        outcome
            .stderr
            .contains("message sent to deallocated VZVirtioSocketDeviceConfiguration: hash"),
        "{}",
        outcome.stderr
    );
    assert!(outcome.stderr.contains("replay with ARCBOX_VZ_SIM_SEED="));
}

#[test]
fn a_failing_scenario_prints_the_seed_to_replay_it() {
    let outcome = isolated(
        "a_failing_scenario_prints_the_seed_to_replay_it",
        CHILD_TIMEOUT,
        || {
            sim::scenario(|| panic!("deliberate failure"));
        },
    );
    assert!(!outcome.succeeded());
    let expected = format!("replay with ARCBOX_VZ_SIM_SEED={}", sim::seed());
    assert!(outcome.stderr.contains(&expected), "{}", outcome.stderr);
}

/// A callback held back until the client's next call still comes when the client
/// never calls again: a waiter with nothing else to do is never stranded.
#[test]
fn every_callback_comes_even_if_the_client_never_calls_again() {
    for _ in 0..8 {
        sim::scenario(|| {
            let dir = TempDir::new("no-next-call");
            let vm = common::vm_config(&dir).build().unwrap();
            block_on(vm.start()).unwrap();
            vm.request_stop().unwrap();
            assert_eq!(
                block_on(vm.wait_until_stopped()),
                arcbox_vz::StopReason::GuestStopped
            );
        });
    }
}

/// `ARCBOX_VZ_SIM_GUEST_POWER_OFF_MS=N`: N ms after each boot the guest powers itself
/// off as `poweroff` would (its message, then a clean guest stop). The timer belongs
/// to its boot: a stop before it fires disarms it (a later boot is not cut short), a
/// paused guest's clock stands still, and a released VM is never touched (zombies).
#[test]
fn the_guest_powers_itself_off_after_the_time_in_the_environment() {
    use arcbox_vz::{StopReason, VirtualMachineState};
    use std::time::Instant;

    const NAME: &str = "the_guest_powers_itself_off_after_the_time_in_the_environment";
    const AFTER: Duration = Duration::from_millis(400);
    let outcome = sim::child::isolated_with_env(
        NAME,
        CHILD_TIMEOUT,
        &[("ARCBOX_VZ_SIM_GUEST_POWER_OFF_MS", "400")],
        || {
            sim::scenario(|| {
                let dir = TempDir::new("guest-power-off-knob");
                let log = dir.path().join("console.log");
                let mut config = common::minimal_config(&dir);
                config.set_serial_ports(vec![
                    arcbox_vz::VirtioConsoleDeviceSerialPortConfiguration::new(
                        arcbox_vz::FileSerialPortAttachment::new(&log, false).unwrap(),
                    ),
                ]);
                let vm = config.build().unwrap();

                // By itself, after the time.
                let started = Instant::now();
                block_on(vm.start()).unwrap();
                assert_eq!(block_on(vm.wait_until_stopped()), StopReason::GuestStopped);
                let took = started.elapsed();
                assert!(took >= AFTER, "powered off after {took:?}");
                let console = std::fs::read_to_string(&log).unwrap();
                assert!(console.contains("reboot: Power down"), "{console}");

                // Stopped early and started again: the first boot's timer is gone.
                block_on(vm.start()).unwrap();
                std::thread::sleep(Duration::from_millis(100));
                common::stop_vm(&vm);
                let restarted = Instant::now();
                block_on(vm.start()).unwrap();
                assert_eq!(block_on(vm.wait_until_stopped()), StopReason::GuestStopped);
                let took = restarted.elapsed();
                assert!(took >= AFTER, "the earlier boot's timer fired: {took:?}");

                // Paused past the time: nothing until it runs again.
                block_on(vm.start()).unwrap();
                block_on(vm.pause()).unwrap();
                std::thread::sleep(AFTER + Duration::from_millis(200));
                assert_eq!(vm.state(), VirtualMachineState::Paused);
                block_on(vm.resume()).unwrap();
                assert_eq!(block_on(vm.wait_until_stopped()), StopReason::GuestStopped);

                // Released with the timer armed: it fires on nothing.
                block_on(vm.start()).unwrap();
                common::stop_vm(&vm);
                drop(vm);
                std::thread::sleep(AFTER + Duration::from_millis(100));
                assert_eq!(sim::guest::running_vms(), 0);
            });
        },
    );
    outcome.assert_succeeded();
}
