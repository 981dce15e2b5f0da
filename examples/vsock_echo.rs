//! The host connects to a port the guest listens on, sends lines and prints the
//! replies: vsock from the host side, with tokio.
//!
//! ```text
//! cargo run --example vsock_echo -- --kernel Image --initrd initramfs.cpio.gz [--port 1024]
//! ```
//!
//! In the guest, run an echo service on the port first, for example
//! `socat VSOCK-LISTEN:1024,fork EXEC:cat`. The simulator's fake guest echoes on
//! port 1024. Connecting while the guest still boots fails with ECONNRESET, so the
//! example retries.

#[cfg(arcbox_vz_sim)]
use arcbox_vz_sim as _; // links the Linux simulator

#[cfg(any(target_os = "macos", arcbox_vz_sim))]
mod common;

#[cfg(any(target_os = "macos", arcbox_vz_sim))]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use std::time::Duration;

    use arcbox_vz::VZError;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let flags = common::Flags::from_env();
    flags.check(&["kernel", "initrd", "port"])?;
    let port: u32 = flags.get("port")?.map_or(Ok(1024), |p| p.parse())?;
    let (config, console_log) = common::logged_configuration(&flags, "vsock_echo")?;
    let vm = config.build()?;
    vm.start().await?;
    println!("started; guest console in {}", console_log.display());

    let device = vm.socket_devices().remove(0);
    let stream = loop {
        match device.connect(port).await {
            Ok(stream) => break stream,
            // Nothing listens yet: the guest is still booting.
            Err(VZError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    println!(
        "connected to guest port {port} from host port {}",
        stream.source_port()
    );

    // A VsockStream is a plain socket: hand it to tokio's reactor.
    let std_stream: std::os::unix::net::UnixStream = stream.into();
    std_stream.set_nonblocking(true)?;
    let stream = tokio::net::UnixStream::from_std(std_stream)?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    for message in ["hello from the host", "vsock through tokio", "bye"] {
        write.write_all(format!("{message}\n").as_bytes()).await?;
        let reply = lines.next_line().await?.unwrap_or_default();
        println!("sent {message:?}, got back {reply:?}");
    }

    println!("stopped: {:?}", common::stop(&vm).await?);
    Ok(())
}

#[cfg(not(any(target_os = "macos", arcbox_vz_sim)))]
fn main() {
    eprintln!("vsock_echo needs macOS (or, on Linux, the arcbox-vz simulator: see the README)");
    std::process::exit(1);
}
