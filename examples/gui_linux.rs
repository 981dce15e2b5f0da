//! A Linux guest in a window: a virtio-gpu display, a USB keyboard and a USB
//! pointing device, shown with `arcbox_vz::gui::run` on the main thread. Driven by a
//! `block_on` of a few lines: no async runtime.
//!
//! ```text
//! cargo run --example gui_linux -- --kernel Image --initrd initramfs.cpio.gz \
//!     [--cmdline "console=hvc0"] [--cpus 2] [--memory 2G] [--disk disk.img[,ro]]... \
//!     [--width 1280] [--height 800] [--console-log PATH]
//! ```
//!
//! - The guest draws on one virtio-gpu scanout of `--width` × `--height` pixels, and
//!   the window's content is as many points. The guest needs a virtio-gpu driver
//!   (`CONFIG_DRM_VIRTIO_GPU`) to show anything; a kernel without one still runs and
//!   shows a black window.
//! - The serial console (`hvc0`) goes to a log file, by default
//!   `$TMPDIR/gui_linux-console.log`. NAT networking and an entropy device are on.
//! - The exit status says how it ended: 0 the guest stopped cleanly (by itself, or
//!   when asked after the window was closed), 1 an error, 2 the window was closed and
//!   the guest had to be force-stopped. Anything but 0 comes with one line on stderr.
//! - Needs macOS 13 (the virtio-gpu device; the window itself needs macOS 12): before
//!   that it says so in one line and starts nothing.

#[cfg(arcbox_vz_sim)]
use arcbox_vz_sim as _; // links the Linux simulator

#[cfg(any(target_os = "macos", arcbox_vz_sim))]
mod common;

/// A complete executor: poll on this thread, park until woken.
#[cfg(any(target_os = "macos", arcbox_vz_sim))]
mod app {
    use std::path::PathBuf;

    use arcbox_vz::gui::{self, WindowOptions, WindowOutcome};
    use arcbox_vz::*;

    use crate::common::block_on;
    use crate::common::{Flags, base_configuration, parse_memory};

    const USAGE: &str = "usage: gui_linux --kernel PATH [--initrd PATH] [--cmdline TEXT] [--cpus N] \
        [--memory SIZE] [--disk PATH[,ro]]... [--width PIXELS] [--height PIXELS] [--console-log PATH]";

    /// How the run ended, for the exit status.
    pub(crate) enum Ending {
        /// The guest stopped cleanly: status 0.
        Clean,
        /// The window was closed and the guest ignored the stop request: status 2.
        Forced(String),
    }

    struct Args {
        kernel: String,
        initrd: Option<String>,
        cmdline: String,
        cpus: usize,
        memory: u64,
        disks: Vec<(String, bool)>,
        width: isize,
        height: isize,
        console_log: PathBuf,
    }

    fn pixels(flags: &Flags, name: &str, default: isize) -> Result<isize, String> {
        match flags.get(name)? {
            None => Ok(default),
            Some(text) => match text.parse::<isize>() {
                Ok(value) if value > 0 => Ok(value),
                _ => Err(format!(
                    "--{name} {text:?}: expected a positive number of pixels"
                )),
            },
        }
    }

    fn parse_args() -> Result<Args, String> {
        let flags = Flags::from_env();
        if flags.has("help") {
            return Err(USAGE.to_owned());
        }
        flags.check(&[
            "kernel",
            "initrd",
            "cmdline",
            "cpus",
            "memory",
            "disk",
            "width",
            "height",
            "console-log",
            "help",
        ])?;
        let kernel = flags.get("kernel")?.ok_or(
            "--kernel PATH is required: an uncompressed Linux kernel with a virtio-gpu \
             driver (an arm64 `Image` on Apple silicon); where to get one: README.md, \
             \"Running the examples on macOS\"",
        )?;
        Ok(Args {
            kernel,
            initrd: flags.get("initrd")?,
            cmdline: flags
                .get("cmdline")?
                .unwrap_or_else(|| "console=hvc0".to_owned()),
            cpus: match flags.get("cpus")? {
                Some(n) => n
                    .parse()
                    .map_err(|_| format!("--cpus {n:?}: not a number"))?,
                None => 2,
            },
            memory: parse_memory(&flags.get("memory")?.unwrap_or_else(|| "2G".to_owned()))?,
            disks: flags
                .all("disk")?
                .iter()
                .map(|d| match d.strip_suffix(",ro") {
                    Some(path) => (path.to_owned(), true),
                    None => (d.clone(), false),
                })
                .collect(),
            width: pixels(&flags, "width", 1280)?,
            height: pixels(&flags, "height", 800)?,
            console_log: flags.get("console-log")?.map_or_else(
                || std::env::temp_dir().join("gui_linux-console.log"),
                PathBuf::from,
            ),
        })
    }

    fn configuration(args: &Args) -> Result<VirtualMachineConfiguration, VZError> {
        // The devices a window needs come first: before macOS 13 this is where it
        // stops, in one line, with nothing started.
        let mut gpu = VirtioGraphicsDeviceConfiguration::new()?;
        gpu.set_scanouts(vec![VirtioGraphicsScanoutConfiguration::new(
            args.width,
            args.height,
        )?]);
        let keyboard = USBKeyboardConfiguration::new()?;
        let pointer = USBScreenCoordinatePointingDeviceConfiguration::new()?;
        let mut config = base_configuration(
            &args.kernel,
            args.initrd.as_deref(),
            &args.cmdline,
            args.cpus,
            args.memory,
            FileSerialPortAttachment::new(&args.console_log, false)?,
        )?;
        let disks = args
            .disks
            .iter()
            .map(|(path, ro)| {
                let disk = DiskImageStorageDeviceAttachment::new(path, *ro)?;
                Ok(VirtioBlockDeviceConfiguration::new(disk)?.into())
            })
            .collect::<Result<Vec<StorageDeviceConfiguration>, VZError>>()?;
        config
            .set_graphics_devices(vec![gpu])
            .set_keyboards(vec![keyboard])
            .set_pointing_devices(vec![pointer])
            .set_storage_devices(disks)
            .set_network_devices(vec![VirtioNetworkDeviceConfiguration::new(
                NATNetworkDeviceAttachment::new(),
            )]);
        Ok(config)
    }

    /// On the simulator: what its fake AppKit window was given.
    #[cfg(arcbox_vz_sim)]
    fn report_fake_window() {
        let window = arcbox_vz_sim::gui::window();
        println!(
            "simulator window: {}x{} points, title {:?}, showing a virtual machine: {}",
            window.rect[2], window.rect[3], window.title, window.has_vm
        );
    }

    pub(crate) fn run() -> Result<Ending, Box<dyn std::error::Error>> {
        let args = parse_args()?;
        let vm = configuration(&args)?.build()?;
        block_on(vm.start())?;
        println!("started; guest console in {}", args.console_log.display());
        let options = WindowOptions {
            width: args.width as f64,
            height: args.height as f64,
            title: "Linux (arcbox-vz)".to_owned(),
            ..WindowOptions::default()
        };
        // `main` runs this, so this is the main thread, as AppKit requires.
        let outcome = match gui::run(&vm, &options) {
            Ok(outcome) => outcome,
            Err(e) => {
                // No window: stop the guest before saying why.
                let _ = block_on(crate::common::stop(&vm));
                return Err(e.into());
            }
        };
        #[cfg(arcbox_vz_sim)]
        report_fake_window();
        match outcome {
            WindowOutcome::VmStopped(StopReason::Error(e)) => {
                Err(format!("the guest stopped with an error: {e}").into())
            }
            WindowOutcome::VmStopped(reason) => {
                println!("ended: the guest stopped ({reason:?}); the window was closed");
                Ok(Ending::Clean)
            }
            WindowOutcome::WindowClosed {
                reason: StopReason::Error(e),
                ..
            } => Err(format!("the window was closed; the guest then failed: {e}").into()),
            WindowOutcome::WindowClosed { reason, forced } => {
                println!("ended: the window was closed; the guest stopped ({reason:?})");
                Ok(if forced {
                    Ending::Forced(format!(
                        "the guest did not stop within {:?} of the window closing: force-stopped",
                        options.stop_timeout
                    ))
                } else {
                    Ending::Clean
                })
            }
            other => Err(format!("ended in a way this example does not know: {other:?}").into()),
        }
    }
}

#[cfg(any(target_os = "macos", arcbox_vz_sim))]
fn main() -> std::process::ExitCode {
    use std::process::ExitCode;
    match app::run() {
        Ok(app::Ending::Clean) => ExitCode::SUCCESS,
        Ok(app::Ending::Forced(why)) => {
            eprintln!("gui_linux: {why}");
            ExitCode::from(2)
        }
        Err(e) => {
            // One readable line, never a panic.
            eprintln!("gui_linux: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(any(target_os = "macos", arcbox_vz_sim)))]
fn main() {
    eprintln!("gui_linux needs macOS (or, on Linux, the arcbox-vz simulator: see the README)");
    std::process::exit(1);
}
