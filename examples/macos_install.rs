//! Installs macOS from a restore image (IPSW) into a new bundle directory, with a
//! progress bar on the terminal (Apple silicon, macOS 12 or later).
//!
//! ```text
//! # the newest image for this Mac: its URL, then download it yourself
//! cargo run --example macos_install -- --latest
//! curl --fail --location --output restore.ipsw "$URL"
//! cargo run --example macos_install -- --ipsw restore.ipsw --bundle macOS.bundle [--cpus 4] [--memory 8G] [--disk 64G]
//! cargo run --example macos_vm -- --bundle macOS.bundle
//! ```
//!
//! The bundle holds the disk image, auxiliary storage, hardware model and machine
//! identifier (`MacOSBundle`). Ctrl-C cancels the install; a bundle this run created
//! is then removed, as it is when the install fails. Exit status: 0 installed, 1 an
//! error, 130 cancelled.

#[cfg(arcbox_vz_sim)]
use arcbox_vz_sim as _; // links the Linux simulator

#[cfg(any(all(target_os = "macos", target_arch = "aarch64"), arcbox_vz_sim))]
mod common;

#[cfg(any(all(target_os = "macos", target_arch = "aarch64"), arcbox_vz_sim))]
mod app {
    use std::io::{IsTerminal, Write};
    use std::path::PathBuf;
    use std::process::ExitCode;

    use arcbox_vz::*;

    use super::common;

    const USAGE: &str = "usage: macos_install --ipsw PATH --bundle DIR [--cpus N] [--memory SIZE] [--disk SIZE] | --latest";

    /// One line of the bar: `[#########           ]  45%`.
    fn bar(fraction: f64) -> String {
        const WIDTH: usize = 40;
        let fraction = fraction.clamp(0.0, 1.0);
        let filled = (fraction * WIDTH as f64).round() as usize;
        format!(
            "[{}{}] {:3.0}%",
            "#".repeat(filled),
            " ".repeat(WIDTH - filled),
            fraction * 100.0
        )
    }

    /// Draws the progress until the install ends: a redrawn bar on a terminal, a line
    /// per tenth otherwise (logs, CI).
    async fn show(mut progress: InstallProgress) {
        let tty = std::io::stderr().is_terminal();
        let mut last_tenth = None;
        while let Some(fraction) = progress.next().await {
            if tty {
                eprint!("\r{}", bar(fraction));
                let _ = std::io::stderr().flush();
            } else {
                let tenth = (fraction * 10.0).floor() as u32;
                if last_tenth != Some(tenth) {
                    last_tenth = Some(tenth);
                    eprintln!("installing: {}", bar(fraction));
                }
            }
        }
        if tty {
            eprintln!();
        }
    }

    pub(super) async fn run() -> Result<ExitCode, Box<dyn std::error::Error>> {
        let flags = common::Flags::from_env();
        flags.check(&["ipsw", "bundle", "cpus", "memory", "disk", "latest", "help"])?;
        if flags.has("help") {
            println!("{USAGE}");
            return Ok(ExitCode::SUCCESS);
        }
        if flags.has("latest") {
            let image = MacOSRestoreImage::fetch_latest_supported().await?;
            println!(
                "macOS {} ({}): {}",
                image.operating_system_version(),
                image.build_version(),
                image.url()
            );
            println!(
                "download it with: curl --fail --location --output restore.ipsw '{}'",
                image.url()
            );
            return Ok(ExitCode::SUCCESS);
        }
        let ipsw = PathBuf::from(
            flags
                .get("ipsw")?
                .ok_or(format!("--ipsw is required ({USAGE})"))?,
        );
        let dir = PathBuf::from(
            flags
                .get("bundle")?
                .ok_or(format!("--bundle is required ({USAGE})"))?,
        );

        let image = MacOSRestoreImage::load(&ipsw).await?;
        let requirements = image.most_featureful_supported_configuration().ok_or(format!(
            "this Mac cannot install macOS {} ({}): it needs a newer Mac or a newer macOS on the host",
            image.operating_system_version(),
            image.build_version()
        ))?;
        let mut options = MacOSBundleOptions::new();
        if let Some(cpus) = flags.get("cpus")? {
            options = options.cpu_count(cpus.parse().map_err(|_| format!("bad --cpus {cpus:?}"))?);
        }
        if let Some(memory) = flags.get("memory")? {
            options = options.memory_size(common::parse_memory(&memory)?);
        }
        if let Some(disk) = flags.get("disk")? {
            options = options.disk_size(common::parse_memory(&disk)?);
        }
        let existed = dir.exists();
        let bundle = MacOSBundle::create(&dir, &requirements, options)?;
        println!(
            "installing macOS {} ({}) into {}: {} CPUs, {} MiB, {} GiB disk",
            image.operating_system_version(),
            image.build_version(),
            dir.display(),
            bundle.cpu_count(),
            bundle.memory_size() >> 20,
            bundle.disk_size() >> 30
        );
        let vm = bundle.configuration()?.build()?;
        let installer = MacOSInstaller::new(&vm, &ipsw)?;
        let bar = tokio::spawn(show(installer.progress()));
        let install = installer.install();
        tokio::pin!(install);
        let result = tokio::select! {
            result = &mut install => result,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("\ncancelling the install");
                match installer.cancel() {
                    Ok(()) => install.await,
                    Err(_) => Err(VZError::Cancelled), // not begun: dropping it is enough
                }
            }
        };
        let _ = bar.await;
        match result {
            Ok(()) => {
                println!(
                    "installed; boot it with: cargo run --example macos_vm -- --bundle {}",
                    dir.display()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                drop((installer, vm));
                // Remove only what this run made: the bundle's files, and the
                // directory if it did not exist before.
                for file in [
                    bundle.disk_image_path(),
                    bundle.auxiliary_storage_path(),
                    bundle.hardware_model_path(),
                    bundle.machine_identifier_path(),
                    bundle.manifest_path(),
                ] {
                    let _ = std::fs::remove_file(file);
                }
                if !existed {
                    let _ = std::fs::remove_dir(&dir);
                }
                if matches!(e, VZError::Cancelled) {
                    eprintln!("macos_install: cancelled; {} removed", dir.display());
                    return Ok(ExitCode::from(130));
                }
                Err(format!("{e} ({} removed)", dir.display()).into())
            }
        }
    }
}

#[cfg(any(all(target_os = "macos", target_arch = "aarch64"), arcbox_vz_sim))]
#[tokio::main]
async fn main() -> std::process::ExitCode {
    match app::run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("macos_install: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

#[cfg(not(any(all(target_os = "macos", target_arch = "aarch64"), arcbox_vz_sim)))]
fn main() {
    eprintln!(
        "macos_install needs a Mac with Apple silicon (or, on Linux, the arcbox-vz simulator)"
    );
    std::process::exit(1);
}
