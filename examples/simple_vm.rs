//! A small virtual machine runner: boots a Linux kernel with its serial console on
//! this terminal. Runs on tokio.
//!
//! ```text
//! cargo run --example simple_vm -- --kernel Image --initrd initramfs.cpio.gz \
//!     [--cmdline "console=hvc0"] [--cpus 2] [--memory 512M] \
//!     [--disk disk.img[,ro]]... [--share TAG=PATH[,ro]]... [--vsock-port 5000]
//! ```
//!
//! - The terminal is in raw mode while the guest runs and is restored on exit, even
//!   after an error.
//! - Ctrl-C asks the guest to power off; if it has not stopped after 10 seconds (or on
//!   a second Ctrl-C) the virtual machine is force-stopped (macOS 11 has no force
//!   stop: there the example exits, which ends the virtual machine).
//! - `--vsock-port P` listens on host vsock port P and echoes what the guest sends
//!   there (in the guest: `socat - VSOCK-CONNECT:2:P`).
//! - The exit status says why it stopped: 0 the guest powered off, 1 an error,
//!   130 force-stopped after Ctrl-C.
//! - On Linux (the simulator) `--kernel` may be left out: `cargo run --example
//!   simple_vm` boots the simulator's fake guest from a stand-in kernel file, written
//!   to a directory of its own under the temp dir and removed at exit. On macOS a
//!   missing `--kernel` is an error that says where to get one.

#[cfg(arcbox_vz_sim)]
use arcbox_vz_sim as _; // links the Linux simulator

#[cfg(any(target_os = "macos", arcbox_vz_sim))]
mod common;

#[cfg(any(target_os = "macos", arcbox_vz_sim))]
mod app {
    use std::io::{Read, Write};
    use std::process::ExitCode;
    use std::time::Duration;

    use arcbox_vz::*;

    #[cfg(not(arcbox_vz_sim))]
    use crate::common::kernel_flag;
    use crate::common::{Flags, base_configuration, parse_memory};

    const USAGE: &str = "usage: simple_vm --kernel PATH [--initrd PATH] [--cmdline TEXT] [--cpus N] \
        [--memory SIZE] [--disk PATH[,ro]]... [--share TAG=PATH[,ro]]... [--vsock-port PORT]";

    struct Args {
        kernel: String,
        /// Keeps the stand-in kernel (on the simulator, without `--kernel`) until exit.
        _stand_in: StandIn,
        initrd: Option<String>,
        cmdline: String,
        cpus: usize,
        memory: u64,
        disks: Vec<(String, bool)>,
        shares: Vec<(String, String, bool)>,
        vsock_port: Option<u32>,
    }

    /// `VALUE[,ro]`
    fn read_only_suffix(value: &str) -> (String, bool) {
        match value.strip_suffix(",ro") {
            Some(rest) => (rest.to_owned(), true),
            None => (value.to_owned(), false),
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
            "share",
            "vsock-port",
            "help",
        ])?;
        let shares = flags
            .all("share")?
            .iter()
            .map(|s| {
                let (spec, ro) = read_only_suffix(s);
                let (tag, path) = spec
                    .split_once('=')
                    .ok_or(format!("--share {s:?}: expected TAG=PATH[,ro]"))?;
                Ok((tag.to_owned(), path.to_owned(), ro))
            })
            .collect::<Result<_, String>>()?;
        let mut args = Args {
            kernel: String::new(), // below
            _stand_in: StandIn::default(),
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
            memory: parse_memory(&flags.get("memory")?.unwrap_or_else(|| "512M".to_owned()))?,
            disks: flags
                .all("disk")?
                .iter()
                .map(|d| read_only_suffix(d))
                .collect(),
            shares,
            vsock_port: match flags.get("vsock-port")? {
                Some(p) => Some(
                    p.parse()
                        .map_err(|_| format!("--vsock-port {p:?}: not a port number"))?,
                ),
                None => None,
            },
        };
        // Last, once every other flag is known good: a stand-in is only made for a run.
        (args.kernel, args._stand_in) = kernel_arg(&flags)?;
        Ok(args)
    }

    /// Nothing to keep on macOS, where `--kernel` is required.
    #[cfg(not(arcbox_vz_sim))]
    type StandIn = ();

    #[cfg(not(arcbox_vz_sim))]
    fn kernel_arg(flags: &Flags) -> Result<(String, StandIn), String> {
        Ok((kernel_flag(flags)?, ()))
    }

    #[cfg(arcbox_vz_sim)]
    type StandIn = Option<StandInKernel>;

    /// `--kernel`, or without it a stand-in kernel for the simulator's fake guest.
    #[cfg(arcbox_vz_sim)]
    fn kernel_arg(flags: &Flags) -> Result<(String, StandIn), String> {
        if let Some(kernel) = flags.get("kernel")? {
            return Ok((kernel, None));
        }
        let stand_in = StandInKernel::create()
            .map_err(|e| format!("cannot write a stand-in kernel for the simulator: {e}"))?;
        let path = stand_in.path().display().to_string();
        eprintln!(
            "[simple_vm] no --kernel: running the simulator's fake guest (stand-in kernel {path})"
        );
        Ok((path, Some(stand_in)))
    }

    /// A stand-in for an uncompressed kernel, for the simulator (which never runs it):
    /// an ELF header in `$TMPDIR/simple_vm-<pid>/vmlinux`. The directory is removed
    /// when this is dropped, at exit (also after an error or a panic).
    #[cfg(arcbox_vz_sim)]
    struct StandInKernel(std::path::PathBuf);

    #[cfg(arcbox_vz_sim)]
    impl StandInKernel {
        fn create() -> std::io::Result<Self> {
            let dir = std::env::temp_dir().join(format!("simple_vm-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let this = Self(dir); // removes the directory if the write fails
            std::fs::write(
                this.path(),
                b"\x7fELF\x02\x01\x01\0stand-in kernel for the arcbox-vz simulator",
            )?;
            Ok(this)
        }

        fn path(&self) -> std::path::PathBuf {
            self.0.join("vmlinux")
        }
    }

    #[cfg(arcbox_vz_sim)]
    impl Drop for StandInKernel {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn configuration(args: &Args) -> Result<VirtualMachineConfiguration, VZError> {
        // The console is this terminal: the framework reads the guest's input from
        // stdin and writes its output to stdout (each dup'd).
        let console =
            FileHandleSerialPortAttachment::new(Some(std::io::stdin()), Some(std::io::stdout()))?;
        let mut config = base_configuration(
            &args.kernel,
            args.initrd.as_deref(),
            &args.cmdline,
            args.cpus,
            args.memory,
            console,
        )?;
        let disks = args
            .disks
            .iter()
            .map(|(path, ro)| {
                let disk = DiskImageStorageDeviceAttachment::new(path, *ro)?;
                Ok(VirtioBlockDeviceConfiguration::new(disk)?.into())
            })
            .collect::<Result<Vec<StorageDeviceConfiguration>, VZError>>()?;
        let shares = args
            .shares
            .iter()
            .map(|(tag, path, ro)| {
                let share = SingleDirectoryShare::new(SharedDirectory::new(path, *ro)?);
                VirtioFileSystemDeviceConfiguration::new(tag, share)
            })
            .collect::<Result<Vec<_>, VZError>>()?;
        config
            .set_storage_devices(disks)
            .set_directory_sharing_devices(shares)
            .set_network_devices(vec![VirtioNetworkDeviceConfiguration::new(
                NATNetworkDeviceAttachment::new(),
            )]);
        Ok(config)
    }

    /// Raw mode for the guest's console, restored when dropped (also on errors and
    /// panics). ISIG stays on, so Ctrl-C still reaches us as SIGINT.
    struct RawTerminal(Option<libc::termios>);

    impl RawTerminal {
        fn enable() -> Self {
            // SAFETY: isatty/tcgetattr/tcsetattr on fd 0 with a valid termios buffer.
            unsafe {
                if libc::isatty(0) != 1 {
                    return Self(None);
                }
                let mut original: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(0, &raw mut original) != 0 {
                    return Self(None);
                }
                let mut raw = original;
                libc::cfmakeraw(&raw mut raw);
                raw.c_lflag |= libc::ISIG;
                libc::tcsetattr(0, libc::TCSANOW, &raw const raw);
                Self(Some(original))
            }
        }
    }

    impl Drop for RawTerminal {
        fn drop(&mut self) {
            if let Some(original) = self.0 {
                // SAFETY: restores the settings read in enable().
                unsafe { libc::tcsetattr(0, libc::TCSANOW, &raw const original) };
            }
        }
    }

    /// A status line on the terminal, which is in raw mode.
    fn say(text: &str) {
        eprint!("\r\n[simple_vm] {text}\r\n");
    }

    fn echo_listener(device: &VirtioSocketDevice, port: u32) -> Result<(), VZError> {
        let listener = device.listen(port)?;
        say(&format!(
            "listening on vsock port {port}: echoing what the guest sends"
        ));
        tokio::spawn(async move {
            while let Some(mut stream) = listener.accept().await {
                // Blocking echo on a thread of its own; the stream is a plain fd.
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n @ 1..) = stream.read(&mut buf) {
                        if stream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Ok(())
    }

    pub(crate) async fn run() -> Result<ExitCode, Box<dyn std::error::Error>> {
        let args = parse_args()?;
        let vm = configuration(&args)?.build()?;
        // Catch Ctrl-C before anything else, so it never kills us with the terminal
        // still in raw mode.
        let mut interrupts =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        let _terminal = RawTerminal::enable();
        vm.start().await?;
        if let Some(port) = args.vsock_port {
            echo_listener(&vm.socket_devices()[0], port)?;
        }
        let mut forced = false;
        let reason = tokio::select! {
            reason = vm.wait_until_stopped() => reason,
            _ = interrupts.recv() => {
                say("Ctrl-C: asking the guest to power off (Ctrl-C again or 10 s to force)");
                if let Err(e) = vm.request_stop() {
                    say(&format!("cannot request a stop: {e}"));
                }
                tokio::select! {
                    reason = vm.wait_until_stopped() => reason,
                    _ = async {
                        tokio::select! {
                            _ = interrupts.recv() => {}
                            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                        }
                    } => {
                        say("forcing a stop");
                        forced = true;
                        match vm.stop().await {
                            // Stopped, or it was stopping already.
                            Ok(()) | Err(VZError::InvalidState { .. }) => {}
                            Err(VZError::Unsupported { .. }) => {
                                say("no force stop before macOS 12: exiting ends the virtual machine");
                                return Ok(ExitCode::from(130));
                            }
                            Err(e) => return Err(e.into()),
                        }
                        vm.wait_until_stopped().await
                    }
                }
            }
        };
        let code = match reason {
            StopReason::GuestStopped => 0,
            StopReason::HostStopped if forced => 130,
            StopReason::HostStopped => 0,
            ref other => {
                say(&format!("stopped: {other:?}"));
                1
            }
        };
        say(&format!("the virtual machine stopped ({reason:?})"));
        Ok(ExitCode::from(code))
    }
}

#[cfg(any(target_os = "macos", arcbox_vz_sim))]
#[tokio::main]
async fn main() -> std::process::ExitCode {
    match app::run().await {
        Ok(code) => code,
        Err(e) => {
            // One readable line, never a panic.
            eprintln!("simple_vm: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

#[cfg(not(any(target_os = "macos", arcbox_vz_sim)))]
fn main() {
    eprintln!("simple_vm needs macOS (or, on Linux, the arcbox-vz simulator: see the README)");
    std::process::exit(1);
}
