//! Micro-benchmarks of the raw layer against their physical floors, side by side in one
//! run (simulator only). Built only with `--cfg arcbox_vz_bench` and run by
//! `cargo bench --bench ffi` through `scripts/bench.sh`.
//!
//! At the top of the crate, not in `ffi/`: they drive a whole virtual machine and its
//! vsock device, and the raw layer must not depend on what is built on it.
//!
//! Each pair is measured in alternating rounds and the best round of each side is
//! kept, which cancels most of the noise of a shared machine; the figure reported is
//! the ratio of the best times. The thread hand-off, whose time is mostly a thread's
//! sleep and wake-up, interleaves the two sides message by message instead and
//! reports the ratio of their medians.

use core::ffi::{c_int, c_long, c_void};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::bridge;
use crate::ffi::block::{ErrorArg, RcBlock};
use crate::ffi::dispatch::Queue;
use crate::ffi::runtime::{Allocated, Id, class, objc_methods};

unsafe extern "C" {
    fn sim_bench_msgsend_cpu_count(object: *mut c_void, n: c_long) -> usize;
    fn sim_bench_invoke_on_queue(queue: *mut c_void, heap_block: *mut c_void);
    fn sim_bench_c_block_round_trip(queue: *mut c_void, n: c_long, counter: *mut c_long);
    fn read(fd: c_int, buf: *mut c_void, len: usize) -> isize;
    fn write(fd: c_int, buf: *const c_void, len: usize) -> isize;
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

/// Ping-pong between two threads, the two sides interleaved message by message: a
/// round trip through the completion bridge, then one through the floor (or the other
/// way round, every other message), on the same two threads and executors. Each round
/// trip is timed on its own and each side's figure is its median, so a slow stretch of
/// the machine lands on both sides alike instead of on whichever round it hit.
fn hand_off() -> Pair {
    const N: usize = 20_000;
    const NONE: usize = usize::MAX;
    /// Whether message `i` goes through the floor first.
    fn floor_first(i: usize) -> bool {
        i % 2 == 0
    }
    /// A future that is ready once its atomic holds a value.
    struct Slot<'a>(&'a AtomicUsize);
    impl std::future::Future for Slot<'_> {
        type Output = usize;
        fn poll(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<usize> {
            // ORDERING: Acquire pairs with the producer's Release store.
            match self.0.load(Ordering::Acquire) {
                NONE => std::task::Poll::Pending,
                v => std::task::Poll::Ready(v),
            }
        }
    }
    fn slots() -> Arc<Vec<AtomicUsize>> {
        Arc::new((0..N).map(|_| AtomicUsize::new(NONE)).collect())
    }

    // Ours: one bridge channel per message and direction. The floor: one atomic per
    // message and direction, and a bare `Waker` of the other side's executor, held from
    // the start. What is left between the two is the bridge: creating nothing (the
    // channels exist before the clock starts), registering the waker, the state
    // machine, and dropping the channel.
    let (ping_tx, ping_rx): (Vec<_>, Vec<_>) = (0..N).map(|_| bridge::channel::<usize>()).unzip();
    let (pong_tx, pong_rx): (Vec<_>, Vec<_>) = (0..N).map(|_| bridge::channel::<usize>()).unzip();
    let (ping, pong) = (slots(), slots());
    let main = Executor::new();
    let wake_main = main.waker();
    let (echo_waker_tx, echo_waker_rx) = std::sync::mpsc::channel();
    let echo = std::thread::spawn({
        let (ping, pong) = (Arc::clone(&ping), Arc::clone(&pong));
        move || {
            pin_to_cpu(1);
            let executor = Executor::new();
            echo_waker_tx
                .send(executor.waker())
                .expect("main thread waits");
            for (i, (rx, tx)) in ping_rx.into_iter().zip(pong_tx).enumerate() {
                let floor = || {
                    let v = executor.block_on(Slot(&ping[i]));
                    // ORDERING: Release publishes the value to the main thread's Acquire.
                    pong[i].store(v, Ordering::Release);
                    wake_main.wake_by_ref();
                };
                if floor_first(i) {
                    floor();
                }
                let _ = tx.complete(executor.block_on(rx).expect("sent"));
                if !floor_first(i) {
                    floor();
                }
            }
        }
    });
    let wake_echo = echo_waker_rx.recv().expect("echo thread started");
    pin_to_cpu(0);
    let (mut ours, mut floor) = (Vec::with_capacity(N), Vec::with_capacity(N));
    for (i, (tx, rx)) in ping_tx.into_iter().zip(pong_rx).enumerate() {
        let mut floor_trip = || {
            let start = Instant::now();
            // ORDERING: Release publishes the value to the echo thread's Acquire.
            ping[i].store(i, Ordering::Release);
            wake_echo.wake_by_ref();
            assert_eq!(main.block_on(Slot(&pong[i])), i);
            floor.push(start.elapsed());
        };
        if floor_first(i) {
            floor_trip();
        }
        let start = Instant::now();
        let _ = tx.complete(i);
        assert_eq!(main.block_on(rx).expect("sent"), i);
        ours.push(start.elapsed());
        if !floor_first(i) {
            floor_trip();
        }
    }
    unpin();
    echo.join().expect("echo thread");
    Pair {
        name: "completion -> future ready (round trip, median)",
        unit: "ns/round trip",
        ours: median_ns(&mut ours),
        floor: median_ns(&mut floor),
        target: "<= 1.1",
    }
}

/// The median of `samples`, in nanoseconds.
fn median_ns(samples: &mut [Duration]) -> f64 {
    samples.sort_unstable();
    samples[samples.len() / 2].as_nanos() as f64
}

/// The bridge's own work per completion, without any thread switch: poll (the
/// waker is registered), complete (the waker is woken), poll (the value is taken),
/// drop. The floor does the same with a bare waker and one atomic per message. What
/// the round trip above adds on top is the executor's own sleep and wake-up.
fn bridge_own_cost() -> Pair {
    const N: usize = 200_000;
    #[derive(Default)]
    struct Count(AtomicUsize);
    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            // ORDERING: a counter read after the loop on this thread.
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn poll<F: std::future::Future + Unpin>(
        f: &mut F,
        waker: &Waker,
    ) -> std::task::Poll<F::Output> {
        std::pin::Pin::new(f).poll(&mut std::task::Context::from_waker(waker))
    }
    let count = Arc::new(Count::default());
    let waker = Waker::from(Arc::clone(&count));
    let ours = |n: usize| {
        let channels: Vec<_> = (0..n).map(|_| bridge::channel::<usize>()).collect();
        timed(|| {
            for (i, (tx, mut rx)) in channels.into_iter().enumerate() {
                assert!(poll(&mut rx, &waker).is_pending());
                let _ = tx.complete(i);
                assert!(matches!(poll(&mut rx, &waker), std::task::Poll::Ready(Ok(v)) if v == i));
            }
        })
    };
    let floor = |n: usize| {
        let slots: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(usize::MAX)).collect();
        timed(|| {
            for (i, slot) in slots.iter().enumerate() {
                // ORDERING: one thread; Acquire/Release as a real hand-off would use.
                assert_eq!(slot.load(Ordering::Acquire), usize::MAX);
                slot.store(i, Ordering::Release);
                waker.wake_by_ref();
                assert_eq!(slot.load(Ordering::Acquire), i);
            }
        })
    };
    let (ours, floor) = best_of(9, || ours(N), || floor(N));
    Pair {
        name: "bridge's own cost per completion (no switch)",
        unit: "ns/completion",
        ours: per_op(ours, N),
        floor: per_op(floor, N),
        target: "context: the round trip is ~1000x",
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
                                write(
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
                        unsafe { read(reader.as_raw_fd(), buf.as_mut_ptr().cast(), CHUNK) };
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
    let connect = || {
        Executor::new()
            .block_on(device.connect(1024))
            .expect("connect")
    };
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

/// Pins the calling thread to one CPU, so that both sides of a two-thread benchmark
/// run with the same placement (each thread on its own core) instead of whatever the
/// scheduler picks per run, the largest source of noise on a 2-vCPU machine.
fn pin_to_cpu(cpu: usize) {
    let mut set = [0u64; CPU_SET_WORDS];
    set[cpu / 64] |= 1 << (cpu % 64);
    set_affinity(&set);
}

/// Lets the calling thread run on every CPU again.
fn unpin() {
    set_affinity(&[u64::MAX; CPU_SET_WORDS]);
}

/// glibc's `cpu_set_t`: 1024 bits.
const CPU_SET_WORDS: usize = 1024 / 64;

fn set_affinity(set: &[u64; CPU_SET_WORDS]) {
    unsafe extern "C" {
        fn sched_setaffinity(
            pid: core::ffi::c_int,
            size: usize,
            set: *const u64,
        ) -> core::ffi::c_int;
    }
    // SAFETY: `set` is a whole cpu_set_t (1024 bits), valid for reads of `size`
    // bytes; pid 0 is the calling thread, and the call only reads the set. A failure
    // leaves the placement as it was, which only makes the benchmark noisier.
    unsafe { sched_setaffinity(0, size_of_val(set), set.as_ptr()) };
}

/// A minimal executor for one thread: a Mutex + Condvar signal (as pollster uses),
/// made once and reused for every `block_on`, so that both sides of the hand-off
/// benchmark pay the same wake-up and nothing else.
struct Executor {
    signal: Arc<Signal>,
}

#[derive(Default)]
struct Signal {
    woken: Mutex<bool>,
    cond: Condvar,
}

impl std::task::Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        *self.woken.lock().expect("no poison") = true;
        self.cond.notify_one();
    }
}

impl Executor {
    fn new() -> Self {
        Self {
            signal: Arc::new(Signal::default()),
        }
    }

    fn waker(&self) -> Waker {
        Waker::from(Arc::clone(&self.signal))
    }

    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        // A wake-up left over from an earlier future (one that was ready before it
        // slept) must not cost this one a spurious poll; the first poll below sees
        // anything that happened before.
        *self.signal.woken.lock().expect("no poison") = false;
        let waker = self.waker();
        let mut cx = std::task::Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
            let mut woken = self.signal.woken.lock().expect("no poison");
            while !*woken {
                woken = self.signal.cond.wait(woken).expect("no poison");
            }
            *woken = false;
        }
    }
}

/// Runs every benchmark and returns the report, one line per pair.
pub fn run(vm: &crate::VirtualMachine) -> String {
    let device = &vm.socket_devices()[0];
    let pairs = [
        message_send(),
        block_round_trip(),
        hand_off(),
        bridge_own_cost(),
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
