//! Shared by the examples: flag parsing and the configuration they all start from.
#![allow(dead_code)] // each example uses a different part

use arcbox_vz::{
    LinuxBootLoader, SerialPortAttachment, StopReason, VZError,
    VirtioConsoleDeviceSerialPortConfiguration, VirtioEntropyDeviceConfiguration,
    VirtioSocketDeviceConfiguration, VirtualMachine, VirtualMachineConfiguration,
};

/// `--name value` and `--name=value` flags, std only.
pub(crate) struct Flags {
    args: Vec<String>,
}

impl Flags {
    pub(crate) fn from_env() -> Self {
        Self {
            args: std::env::args().skip(1).collect(),
        }
    }

    /// Every value given for `--name`, in order.
    pub(crate) fn all(&self, name: &str) -> Result<Vec<String>, String> {
        let long = format!("--{name}");
        let prefix = format!("--{name}=");
        let mut values = Vec::new();
        let mut i = 0;
        while i < self.args.len() {
            let arg = &self.args[i];
            if let Some(value) = arg.strip_prefix(&prefix) {
                values.push(value.to_owned());
            } else if *arg == long {
                let value = self
                    .args
                    .get(i + 1)
                    .ok_or(format!("{long} needs a value"))?;
                values.push(value.clone());
                i += 1;
            }
            i += 1;
        }
        Ok(values)
    }

    /// The last value given for `--name`, if any.
    pub(crate) fn get(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.all(name)?.pop())
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.args.iter().any(|a| a == &format!("--{name}"))
    }

    /// Refuses flags that are not in `known`.
    pub(crate) fn check(&self, known: &[&str]) -> Result<(), String> {
        let mut i = 0;
        while i < self.args.len() {
            let arg = &self.args[i];
            let Some(name) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument {arg:?}"));
            };
            let name = name.split('=').next().unwrap_or_default();
            if !known.contains(&name) {
                return Err(format!("unknown flag --{name}"));
            }
            if !arg.contains('=') && !matches!(name, "help") {
                i += 1; // skip the value
            }
            i += 1;
        }
        Ok(())
    }
}

/// `512`, `512M`, `2G` (MiB when there is no unit) as bytes.
pub(crate) fn parse_memory(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "M"),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("bad memory size {text:?}"))?;
    let scale = match unit
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return Err(format!("bad memory unit in {text:?} (use M or G)")),
    };
    value
        .checked_mul(scale)
        .ok_or(format!("memory size {text:?} is too large"))
}

/// The configuration every example starts from: kernel, optional initrd, command
/// line, CPUs, memory, a serial console, entropy and a vsock device.
pub(crate) fn base_configuration(
    kernel: &str,
    initrd: Option<&str>,
    command_line: &str,
    cpus: usize,
    memory: u64,
    console: impl Into<SerialPortAttachment>,
) -> Result<VirtualMachineConfiguration, VZError> {
    let mut boot = LinuxBootLoader::new(kernel)?;
    if let Some(initrd) = initrd {
        boot.set_initial_ramdisk(initrd)?;
    }
    boot.set_command_line(command_line)?;
    let mut config = VirtualMachineConfiguration::new()?;
    config
        .set_cpu_count(cpus)
        .set_memory_size(memory)
        .set_boot_loader(boot)
        // Always a console: some guests spin and never boot without one.
        .set_serial_ports(vec![VirtioConsoleDeviceSerialPortConfiguration::new(
            console,
        )])
        .set_entropy_devices(vec![VirtioEntropyDeviceConfiguration::new()])
        .set_socket_devices(vec![VirtioSocketDeviceConfiguration::new()]);
    Ok(config)
}

/// The configuration of the vsock and virtiofs examples: `--kernel` and `--initrd`
/// from `flags`, 2 CPUs, 512 MiB, and the guest console written to
/// `$TMPDIR/<name>-console.log`, whose path comes back too.
pub(crate) fn logged_configuration(
    flags: &Flags,
    name: &str,
) -> Result<(VirtualMachineConfiguration, std::path::PathBuf), Box<dyn std::error::Error>> {
    let console_log = std::env::temp_dir().join(format!("{name}-console.log"));
    let config = base_configuration(
        &kernel_flag(flags)?,
        flags.get("initrd")?.as_deref(),
        "console=hvc0",
        2,
        512 << 20,
        arcbox_vz::FileSerialPortAttachment::new(&console_log, false)?,
    )?;
    Ok((config, console_log))
}

/// Stops a running virtual machine and returns why it stopped: with a force stop
/// where there is one (macOS 12 or later); on macOS 11, which has none, by asking the
/// guest to power off, which needs a guest that handles the power button.
pub(crate) async fn stop(vm: &VirtualMachine) -> Result<StopReason, VZError> {
    match vm.stop().await {
        Err(VZError::Unsupported { .. }) => {
            println!("no force stop before macOS 12: asking the guest to power off");
            vm.request_stop()?;
        }
        result => result?,
    }
    Ok(vm.wait_until_stopped().await)
}

/// The kernel path from `--kernel`, with a hint when it is missing.
pub(crate) fn kernel_flag(flags: &Flags) -> Result<String, String> {
    flags.get("kernel")?.ok_or_else(|| {
        "--kernel PATH is required: an uncompressed Linux kernel (an arm64 `Image` on Apple silicon); see the README"
            .to_owned()
    })
}

/// Runs a future to completion on this thread: the few awaits of the examples that
/// keep the main thread for a window (or need no runtime at all). Any executor works
/// as well; this one shows that the crate needs none.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}
