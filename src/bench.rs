//! Micro-benchmarks of the raw layer against their physical floors, side by side in one
//! run (simulator only). Built only with `--cfg arcbox_vz_bench` and run by
//! `cargo bench --bench ffi` through `scripts/bench.sh`.
//!
//! At the top of the crate, not in `ffi/`: they drive a whole virtual machine and its
//! vsock device, and the raw layer must not depend on what is built on it.
//!
//! Each pair is measured in alternating rounds and the best round of each side is
//! kept, which cancels most of the noise of a shared machine; the figure reported is
//! the ratio of the best times.

use core::ffi::{c_long, c_void};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::bridge;
use crate::ffi::block::{ErrorArg, RcBlock};
use crate::ffi::dispatch::Queue;
use crate::ffi::runtime::{Allocated, Id, class, objc_methods};

unsafe extern "C" {
    fn sim_bench_msgsend_cpu_count(object: *mut c_void, n: c_long) -> usize;
    fn sim_bench_invoke_on_queue(queue: *mut c_void, heap_block: *mut c_void);
    fn sim_bench_c_block_round_trip(queue: *mut c_void, n: c_long, counter: *mut c_long);
}

objc_methods! {
    fn config_init(config: Allocated) -> Option<Id> = "init";
    fn cpu_count(config: &Id) -> usize = "CPUCount";
}

/// One line of the report.
struct Pair {
    name: &'static str,
    unit: &'static str,
    ours: f64,
    floor: f64,
    target: &'static str,
}

/// Runs `ours` and `floor` in `rounds` alternating rounds and keeps the best of each.
fn best_of(
    rounds: usize,
    mut ours: impl FnMut() -> Duration,
    mut floor: impl FnMut() -> Duration,
) -> (Duration, Duration) {
    let (mut best_ours, mut best_floor) = (Duration::MAX, Duration::MAX);
    for _ in 0..rounds {
        best_ours = best_ours.min(ours());
        best_floor = best_floor.min(floor());
    }
    (best_ours, best_floor)
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn per_op(d: Duration, n: usize) -> f64 {
    d.as_nanos() as f64 / n as f64
}

fn message_send() -> Pair {
    const N: usize = 2_000_000;
    let config = crate::ffi::runtime::autoreleasepool(|| {
        config_init(
            class!("VZVirtualMachineConfiguration")
                .expect("the simulator")
                .alloc(),
        )
    })
    .expect("a configuration");
    let (ours, floor) = best_of(
        15,
        || {
            timed(|| {
                let mut sum = 0usize;
                for _ in 0..N {
                    sum = sum.wrapping_add(cpu_count(&config));
                }
                std::hint::black_box(sum);
            })
        },
        || {
            timed(|| {
                let count =
                    // SAFETY: a live VZVirtualMachineConfiguration, whose -CPUCount the
                    // C side calls through objc_msgSend with its exact signature.
                    unsafe { sim_bench_msgsend_cpu_count(config.as_ptr().cast(), N as c_long) };
                std::hint::black_box(count);
            })
        },
    );
    Pair {
        name: "message send (-CPUCount)",
        unit: "ns/send",
        ours: per_op(ours, N),
        floor: per_op(floor, N),
        target: "<= 1.05",
    }
}

fn block_round_trip() -> Pair {
    const N: usize = 20_000;
    let queue = Queue::new_serial("arcbox-vz.bench.blocks");
    let counter = Arc::new(AtomicUsize::new(0));
    let mut c_counter: c_long = 0;
    let (ours, floor) = best_of(
        9,
        || {
            timed(|| {
                for _ in 0..N {
                    let seen = Arc::clone(&counter);
                    let block = RcBlock::once::<ErrorArg, _>(move |_| {
                        // ORDERING: a benchmark counter, read after the run.
                        seen.fetch_add(1, Ordering::Relaxed);
                    });
                    // The C side takes a reference of its own, like a framework method.
                    let heap = block.copied_for_c();
                    drop(block);
                    // SAFETY: `heap` is a heap `void (^)(id)` reference the callee
                    // invokes on the queue and releases.
                    unsafe { sim_bench_invoke_on_queue(queue.as_raw(), heap) };
                }
            })
        },
        || {
            // SAFETY: the C loop makes, copies, invokes and releases its own blocks on
            // the live queue; `c_counter` outlives the call.
            timed(|| unsafe {
                sim_bench_c_block_round_trip(queue.as_raw(), N as c_long, &raw mut c_counter)
            })
        },
    );
    // ORDERING: all increments happened before the synchronous dispatches returned.
    assert_eq!(counter.load(Ordering::Relaxed), 9 * N);
    Pair {
        name: "completion block round trip",
        unit: "ns/block",
        ours: per_op(ours, N),
        floor: per_op(floor, N),
        target: "(floor is clang's block)",
    }
}

/// Ping-pong between two threads: through the completion bridge (park/unpark via the
/// waker) versus a Mutex + Condvar slot per message.
fn hand_off() -> Pair {
    const N: usize = 20_000;
    fn bridge_round(n: usize) -> Duration {
        let (ping_tx, ping_rx): (Vec<_>, Vec<_>) =
            (0..n).map(|_| bridge::channel::<usize>()).unzip();
        let (pong_tx, pong_rx): (Vec<_>, Vec<_>) =
            (0..n).map(|_| bridge::channel::<usize>()).unzip();
        let echo = std::thread::spawn(move || {
            for (rx, tx) in ping_rx.into_iter().zip(pong_tx) {
                let v = block_on(rx).expect("sent");
                let _ = tx.complete(v);
            }
        });
        let d = timed(|| {
            for (i, (tx, rx)) in ping_tx.into_iter().zip(pong_rx).enumerate() {
                let _ = tx.complete(i);
                assert_eq!(block_on(rx).expect("sent"), i);
            }
        });
        echo.join().expect("echo thread");
        d
    }
    fn condvar_round(n: usize) -> Duration {
        type Slot = Arc<(Mutex<Option<usize>>, Condvar)>;
        let slot = || -> Slot { Arc::new((Mutex::new(None), Condvar::new())) };
        let send = |s: &Slot, v: usize| {
            *s.0.lock().expect("no poison") = Some(v);
            s.1.notify_one();
        };
        let recv = |s: &Slot| {
            let mut guard = s.0.lock().expect("no poison");
            loop {
                if let Some(v) = guard.take() {
                    return v;
                }
                guard = s.1.wait(guard).expect("no poison");
            }
        };
        let ping: Vec<Slot> = (0..n).map(|_| slot()).collect();
        let pong: Vec<Slot> = (0..n).map(|_| slot()).collect();
        let (ping2, pong2) = (ping.clone(), pong.clone());
        let echo = std::thread::spawn(move || {
            for (rx, tx) in ping2.iter().zip(&pong2) {
                let v = recv(rx);
                send(tx, v);
            }
        });
        let d = timed(|| {
            for (i, (tx, rx)) in ping.iter().zip(&pong).enumerate() {
                send(tx, i);
                assert_eq!(recv(rx), i);
            }
        });
        echo.join().expect("echo thread");
        d
    }
    let (ours, floor) = best_of(9, || bridge_round(N), || condvar_round(N));
    Pair {
        name: "completion -> future ready (round trip)",
        unit: "ns/round trip",
        ours: per_op(ours, N),
        floor: per_op(floor, N),
        target: "<= 1.1",
    }
}

/// Echo throughput through a `VsockStream` versus raw `read`/`write` on the same kind
/// of descriptor (a connection to the fake guest's echo service).
fn vsock_throughput(device: &crate::VirtioSocketDevice) -> Pair {
    const TOTAL: usize = 64 << 20;
    const CHUNK: usize = 64 << 10;
    fn run(stream: crate::VsockStream, raw: bool) -> Duration {
        let mut writer = stream.try_clone().expect("dup");
        let chunk = vec![0x5au8; CHUNK];
        timed(move || {
            let sender = std::thread::spawn(move || {
                for _ in 0..TOTAL / CHUNK {
                    if raw {
                        let mut off = 0;
                        while off < CHUNK {
                            // SAFETY: writes from a live buffer to our own descriptor.
                            let n = unsafe {
                                libc::write(
                                    writer.as_raw_fd(),
                                    chunk[off..].as_ptr().cast(),
                                    CHUNK - off,
                                )
                            };
                            assert!(n > 0, "write failed");
                            off += n as usize;
                        }
                    } else {
                        writer.write_all(&chunk).expect("write");
                    }
                }
            });
            let mut buf = vec![0u8; CHUNK];
            let mut got = 0;
            let mut reader = stream;
            while got < TOTAL {
                let n = if raw {
                    let n =
                        // SAFETY: reads into a live buffer from our own descriptor.
                        unsafe { libc::read(reader.as_raw_fd(), buf.as_mut_ptr().cast(), CHUNK) };
                    assert!(n > 0, "read failed");
                    n as usize
                } else {
                    reader.read(&mut buf).expect("read")
                };
                got += n;
            }
            sender.join().expect("sender");
        })
    }
    let connect = || block_on(device.connect(1024)).expect("connect");
    let (ours, floor) = best_of(5, || run(connect(), false), || run(connect(), true));
    let mib_s = |d: Duration| (TOTAL as f64 / (1 << 20) as f64) / d.as_secs_f64();
    Pair {
        name: "vsock echo throughput (64 MiB)",
        unit: "MiB/s",
        ours: mib_s(ours),
        floor: mib_s(floor),
        target: "1.0 (floor/ours)",
    }
}

/// Blocks this thread until the future is ready, sleeping on a Mutex + Condvar
/// signal (as pollster does), so the hand-off benchmark compares the bridge with the
/// same primitive as its floor.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    #[derive(Default)]
    struct Signal {
        woken: Mutex<bool>,
        cond: Condvar,
    }
    impl Wake for Signal {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            *self.woken.lock().expect("no poison") = true;
            self.cond.notify_one();
        }
    }
    let signal = Arc::new(Signal::default());
    let waker = Waker::from(Arc::clone(&signal));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        let mut woken = signal.woken.lock().expect("no poison");
        while !*woken {
            woken = signal.cond.wait(woken).expect("no poison");
        }
        *woken = false;
    }
}

/// Runs every benchmark and returns the report, one line per pair.
pub fn run(vm: &crate::VirtualMachine) -> String {
    let device = &vm.socket_devices()[0];
    let pairs = [
        message_send(),
        block_round_trip(),
        hand_off(),
        vsock_throughput(device),
    ];
    let mut report = String::new();
    for p in pairs {
        let ratio = if p.unit == "MiB/s" {
            p.floor / p.ours
        } else {
            p.ours / p.floor
        };
        report.push_str(&format!(
            "{:<42} ours {:>10.1} {:<13} floor {:>10.1}   ratio {:.3}   target {}\n",
            p.name, p.ours, p.unit, p.floor, ratio, p.target
        ));
    }
    report
}
