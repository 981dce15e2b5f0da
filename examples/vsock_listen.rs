//! The host listens on a vsock port and the guest connects: vsock from the guest
//! side, with smol.
//!
//! ```text
//! cargo run --example vsock_listen -- --kernel Image --initrd initramfs.cpio.gz [--port 5000]
//! ```
//!
//! In the guest: `echo hello | socat - VSOCK-CONNECT:2:5000` (CID 2 is the host).
//! In the simulator, set `ARCBOX_VZ_SIM_GUEST_CONNECT=5000` and the fake guest
//! connects by itself after boot.

#[cfg(arcbox_vz_sim)]
use arcbox_vz_sim as _; // links the Linux simulator

#[cfg(any(target_os = "macos", arcbox_vz_sim))]
mod common;

#[cfg(any(target_os = "macos", arcbox_vz_sim))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use std::io::{BufRead, BufReader, Write};

    let flags = common::Flags::from_env();
    flags.check(&["kernel", "initrd", "port"])?;
    let port: u32 = flags.get("port")?.map_or(Ok(5000), |p| p.parse())?;
    let (config, console_log) = common::logged_configuration(&flags, "vsock_listen")?;
    smol::block_on(async {
        let vm = config.build()?;
        vm.start().await?;
        println!("started; guest console in {}", console_log.display());
        let listener = vm.socket_devices()[0].listen(port)?;
        println!("listening on vsock port {port}; in the guest: socat - VSOCK-CONNECT:2:{port}");

        let stream = listener.accept().await.ok_or("the listener closed")?;
        println!("the guest connected from its port {}", stream.source_port());
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line)?;
        println!("the guest says {:?}", line.trim_end());
        (&stream).write_all(b"hello from the host\n")?;

        listener.close();
        println!("stopped: {:?}", common::stop(&vm).await?);
        Ok(())
    })
}

#[cfg(not(any(target_os = "macos", arcbox_vz_sim)))]
fn main() {
    eprintln!("vsock_listen needs macOS (or, on Linux, the arcbox-vz simulator: see the README)");
    std::process::exit(1);
}
