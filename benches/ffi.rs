//! Micro-benchmarks of the FFI layer against their physical floors, in the simulator.
//! Run them with `scripts/bench.sh` (which sets `--cfg arcbox_vz_bench`).

#[cfg(arcbox_vz_bench)]
use arcbox_vz_sim as _; // links the Linux simulator

#[cfg(arcbox_vz_bench)]
fn main() {
    use arcbox_vz::*;

    let dir = std::env::temp_dir().join(format!("arcbox-vz-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kernel = dir.join("vmlinux");
    std::fs::write(&kernel, b"\x7fELF\x02\x01\x01\0bench").unwrap();
    let mut config = VirtualMachineConfiguration::new().unwrap();
    config
        .set_cpu_count(2)
        .set_memory_size(512 << 20)
        .set_boot_loader(LinuxBootLoader::new(&kernel).unwrap())
        .set_socket_devices(vec![VirtioSocketDeviceConfiguration::new()]);
    let vm = config.build().unwrap();
    futures_executor::block_on(vm.start()).unwrap();
    print!("{}", arcbox_vz::__run_benchmarks(&vm));
    futures_executor::block_on(vm.stop()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(not(arcbox_vz_bench))]
fn main() {
    eprintln!("run the benchmarks with scripts/bench.sh (they need --cfg arcbox_vz_bench)");
}
