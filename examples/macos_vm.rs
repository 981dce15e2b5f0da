//! Boots a macOS guest from a bundle made by `macos_install` and shows it in a
//! window (Apple silicon, macOS 12 or later for the window).
//!
//! ```text
//! cargo run --example macos_vm -- --bundle macOS.bundle [--recovery] [--width 1440 --height 900]
//! ```
//!
//! The window stays until the guest shuts down or the window is closed; closing it
//! asks the guest to shut down, and forces the stop if the guest has not within
//! 30 seconds. `--recovery` starts macOS Recovery (macOS 13). Exit status: 0 the
//! guest shut down, 1 an error.

#[cfg(arcbox_vz_sim)]
use arcbox_vz_sim as _; // links the Linux simulator

#[cfg(any(all(target_os = "macos", target_arch = "aarch64"), arcbox_vz_sim))]
mod common;

#[cfg(any(all(target_os = "macos", target_arch = "aarch64"), arcbox_vz_sim))]
fn run() -> Result<std::process::ExitCode, Box<dyn std::error::Error>> {
    use std::process::ExitCode;
    use std::time::Duration;

    use arcbox_vz::gui::{self, WindowOptions, WindowOutcome};
    use arcbox_vz::*;

    const USAGE: &str =
        "usage: macos_vm --bundle DIR [--recovery] [--width POINTS] [--height POINTS]";
    let flags = common::Flags::from_env();
    flags.check(&["bundle", "recovery", "width", "height", "help"])?;
    if flags.has("help") {
        println!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    }
    let dir = flags.get("bundle")?.ok_or(format!(
        "--bundle is required (make one with the macos_install example; {USAGE})"
    ))?;
    let size = |name: &str, default: f64| -> Result<f64, String> {
        match flags.get(name)? {
            None => Ok(default),
            Some(text) => text
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 100.0 && *v <= 10_000.0)
                .ok_or(format!("bad --{name} {text:?} (points, 100 to 10000)")),
        }
    };
    let options = WindowOptions {
        width: size("width", 1440.0)?,
        height: size("height", 900.0)?,
        title: format!("macOS: {dir}"),
        stop_timeout: Duration::from_secs(30),
        ..WindowOptions::default()
    };

    let bundle = MacOSBundle::open(&dir)?;
    let vm = bundle.configuration()?.build()?;
    if flags.has("recovery") {
        common::block_on(vm.start_with_options(StartOptions::macos_recovery()?))?;
    } else {
        common::block_on(vm.start())?;
    }
    println!("started {dir}; close the window to shut it down");
    let outcome = gui::run(&vm, &options)?;
    let reason = match &outcome {
        WindowOutcome::VmStopped(reason) => reason.clone(),
        WindowOutcome::WindowClosed { reason, forced } => {
            if *forced {
                println!("the guest did not shut down in time: it was forced off");
            }
            reason.clone()
        }
        other => return Err(format!("window ended: {other:?}").into()),
    };
    println!("the virtual machine stopped ({reason:?})");
    Ok(match reason {
        StopReason::GuestStopped | StopReason::HostStopped => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}

#[cfg(any(all(target_os = "macos", target_arch = "aarch64"), arcbox_vz_sim))]
fn main() -> std::process::ExitCode {
    // The window needs the main thread, so no async runtime owns it: the few awaits
    // above use the examples' small block_on.
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("macos_vm: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

#[cfg(not(any(all(target_os = "macos", target_arch = "aarch64"), arcbox_vz_sim)))]
fn main() {
    eprintln!("macos_vm needs a Mac with Apple silicon (or, on Linux, the arcbox-vz simulator)");
    std::process::exit(1);
}
