//! The raw layer, run for real against the Linux simulator: GCC's libobjc through the
//! `objc_msgSend` trampoline, GNUstep Foundation, compiler-rt blocks invoked by
//! clang-compiled C, and the pthread libdispatch.
//!
//! Each test runs inside `sim::scenario`, which serializes them and checks that no
//! fake object, heap block or queue thread is left at the end.

use core::ffi::c_void;
use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arcbox_vz_sim as sim;

use super::block::{ErrorArg, ObjectErrorArgs, RcBlock};
use super::dispatch::{Queue, QueueBound};
use super::foundation::{self, with_error};
use super::runtime::{
    Allocated, AutoreleasePool, ClassBuilder, ClassRef, Id, autoreleasepool, class, objc_methods,
    sel, send_super,
};
use crate::bridge;
use crate::error::VZError;

objc_methods! {
    fn probe_new(class: ClassRef) -> Option<Id> = "new";
    fn probe_init(probe: Allocated) -> Option<Id> = "init";
    fn echo_object(probe: &Id, object: Option<&Id>) -> Option<Id> = "echoObject:";
    fn is_nil(probe: &Id, object: Option<&Id>) -> bool = "isNil:";
    fn add_unsigned(probe: &Id, a: usize, b: usize) -> usize = "addUnsigned:to:";
    fn negate_u64(probe: &Id, value: u64) -> u64 = "negateU64:";
    fn scale(probe: &Id, value: f64, factor: f64) -> f64 = "scale:by:";
    fn is_even(probe: &Id, value: isize) -> bool = "isEven:";
    fn sum6(probe: &Id, a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> usize =
        "sumA:b:c:d:e:f:";
    fn fail_with_code(probe: &Id, code: isize, error: &mut foundation::ErrorSlot) -> bool =
        "failWithCode:error:";
    fn fail_silently(probe: &Id, error: &mut foundation::ErrorSlot) -> bool = "failSilently:";
    fn describe_int(probe: &Id, value: i32) -> Option<Id> = "describeInt:";
    fn retain_count(object: &Id) -> usize = "retainCount";
    fn autorelease(object: &Id) -> Option<Id> = "autorelease";
}

fn probe() -> Id {
    probe_new(class!("SimProbe").unwrap()).unwrap()
}

// ---------------------------------------------------------------- runtime

#[test]
fn sends_every_argument_and_return_kind() {
    sim::scenario(|| {
        autoreleasepool(|| {
            let p = probe();
            let other = probe();
            assert!(echo_object(&p, Some(&other)).unwrap().is(&other));
            assert!(echo_object(&p, None).is_none());
            assert!(is_nil(&p, None));
            assert!(!is_nil(&p, Some(&other)));
            assert_eq!(add_unsigned(&p, usize::MAX - 1, 1), usize::MAX);
            assert_eq!(
                negate_u64(&p, 0x0123_4567_89ab_cdef),
                !0x0123_4567_89ab_cdef
            );
            assert_eq!(scale(&p, 1.5, -4.0), -6.0);
            assert!(is_even(&p, -4));
            assert!(!is_even(&p, 7));
            // a..d in registers after self and _cmd, e and f on the stack.
            assert_eq!(sum6(&p, 1, 2, 3, 4, 5, 6), 654_321);
            let text = describe_int(&p, -42).unwrap();
            assert_eq!(foundation::string_from(&text), "int -42");
        })
    });
}

#[test]
fn init_family_consumes_the_allocation() {
    sim::scenario(|| {
        let p = probe_init(class!("SimProbe").unwrap().alloc()).unwrap();
        assert_eq!(retain_count(&p), 1);
    });
}

#[test]
fn error_out_parameter_and_missing_error() {
    sim::scenario(|| {
        let p = probe();
        assert!(with_error("fail", |e| fail_with_code(&p, 0, e).then_some(())).is_ok());
        let err = with_error("fail", |e| fail_with_code(&p, 7, e).then_some(())).unwrap_err();
        assert_eq!(err.domain, "VZErrorDomain");
        assert_eq!(err.code, 7);
        assert_eq!(err.description, "the probe was asked to fail");
        assert_eq!(
            err.failure_reason.as_deref(),
            Some("the probe was asked to fail")
        );
        let err = with_error("-[SimProbe failSilently:]", |e| {
            fail_silently(&p, e).then_some(())
        })
        .unwrap_err();
        assert!(
            err.description.contains("-[SimProbe failSilently:] failed"),
            "{err}"
        );
    });
}

#[test]
fn retain_counts_return_to_where_they_started() {
    sim::scenario(|| {
        let p = probe();
        assert_eq!(retain_count(&p), 1);
        let clones: Vec<Id> = (0..5).map(|_| p.clone()).collect();
        assert_eq!(retain_count(&p), 6);
        drop(clones);
        assert_eq!(retain_count(&p), 1);
        // A +0 getter result is retained once and released once.
        let other = probe();
        for _ in 0..3 {
            autoreleasepool(|| drop(echo_object(&p, Some(&other))));
        }
        assert_eq!(retain_count(&other), 1);
    });
}

#[test]
fn autorelease_pool_releases_on_pop() {
    sim::scenario(|| {
        let before = sim::live_objects();
        {
            let _pool = AutoreleasePool::push();
            let p = probe();
            // -autorelease hands our +1 to the pool (its +0 result is retained and
            // released again by the Id it returns).
            drop(autorelease(&p));
            core::mem::forget(p);
            assert_eq!(sim::live_objects(), before + 1, "the pool keeps it alive");
        }
        assert_eq!(sim::live_objects(), before);
    });
}

#[test]
fn missing_class_is_an_error_value() {
    let err = class!("VZNoSuchClassAnywhere").unwrap_err();
    assert!(matches!(
        err,
        VZError::ClassNotFound {
            class: "VZNoSuchClassAnywhere"
        }
    ));
    assert!(err.to_string().contains("VZNoSuchClassAnywhere"));
}

#[test]
fn responds_to_selector() {
    sim::scenario(|| {
        let class = class!("SimProbe").unwrap();
        assert!(class.instances_respond_to(sel!("scale:by:")));
        assert!(!class.instances_respond_to(sel!("noSuchMethod")));
        assert!(class.responds_to(sel!("new")));
        assert!(!class.responds_to(sel!("scale:by:")));
        let p = probe();
        assert!(p.responds_to(sel!("isEven:")));
        assert!(!p.responds_to(sel!("setCPUCount:")));
    });
}

#[cfg(debug_assertions)]
mod debug_checks {
    use super::*;

    objc_methods! {
        fn wrong_return(probe: &Id, value: f64, factor: f64) -> usize = "scale:by:";
        fn wrong_argument(probe: &Id, value: u64, factor: f64) -> f64 = "scale:by:";
        fn misspelled(probe: &Id) -> usize = "CPUcount";
    }

    #[test]
    #[should_panic(
        expected = "invalid message send to -[SimProbe scale:by:]: expected the return type"
    )]
    fn wrong_return_type_panics_naming_the_method() {
        sim::scenario(|| wrong_return(&probe(), 1.0, 2.0));
    }

    #[test]
    #[should_panic(
        expected = "-[SimProbe scale:by:]: expected argument 0 to have type Int64, but found 'd'"
    )]
    fn wrong_argument_type_panics_naming_the_method() {
        sim::scenario(|| wrong_argument(&probe(), 1, 2.0));
    }

    #[test]
    #[should_panic(expected = "invalid message send to -[SimProbe CPUcount]: method not found")]
    fn misspelled_selector_panics_instead_of_raising() {
        sim::scenario(|| misspelled(&probe()));
    }
}

#[test]
fn classes_defined_at_run_time_with_super_sends() {
    use std::ffi::CStr;
    objc_methods! {
        fn add(probe: &Id, a: usize, b: usize) -> usize = "addUnsigned:to:";
    }
    extern "C" fn add_plus_one(
        this: *mut super::runtime::Object,
        cmd: super::runtime::Sel,
        a: usize,
        b: usize,
    ) -> usize {
        let class = class!("SimProbe").unwrap();
        let this = core::ptr::NonNull::new(this).unwrap();
        // SAFETY: -[SimProbe addUnsigned:to:] takes two NSUInteger and returns one.
        let sum: usize = unsafe { send_super(this, class, cmd, (a, b)) };
        sum + 1
    }
    sim::scenario(|| {
        let name: &CStr = c"ArcboxVzTestSubclass";
        let class = match class!("ArcboxVzTestSubclass") {
            Ok(class) => class,
            Err(_) => {
                let mut builder = ClassBuilder::new(name, class!("SimProbe").unwrap()).unwrap();
                assert!(builder.add_pointer_ivar(c"rustState"));
                // SAFETY: the function has the C signature "Q32@0:8Q16Q24" describes.
                assert!(unsafe {
                    builder.add_method(
                        sel!("addUnsigned:to:"),
                        add_plus_one as *const c_void,
                        c"Q32@0:8Q16Q24",
                    )
                });
                builder.add_protocol(c"NoSuchProtocolHere");
                builder.register()
            }
        };
        assert!(super::runtime::ivar_offset(class, c"rustState").unwrap() >= 8);
        let object = probe_new(class).unwrap();
        assert_eq!(add(&object, 2, 3), 6);
    });
}

// ---------------------------------------------------------------- foundation

#[test]
fn strings_round_trip() {
    sim::scenario(|| {
        // Strings with NUL bytes never get here: UTF8String would cut them short, so the
        // builders reject them (see the bad-input table tests).
        for s in ["", "hvc0", "console=hvc0 root=/dev/vda", "ünïcødé ✓ 🚀"] {
            assert_eq!(foundation::string_from(&foundation::ns_string(s)), s);
        }
    });
}

#[test]
fn file_urls_are_absolute_and_validated() {
    sim::scenario(|| {
        let url = foundation::file_url(Path::new("/tmp/kernel"), "kernel path").unwrap();
        assert_eq!(foundation::url_path(&url), Path::new("/tmp/kernel"));
        assert_eq!(foundation::url_string(&url), "file:///tmp/kernel");
        let relative = foundation::file_url(Path::new("relative/disk.img"), "disk").unwrap();
        let expected = std::env::current_dir().unwrap().join("relative/disk.img");
        assert_eq!(foundation::url_path(&relative), expected);

        let bad = Path::new(OsStr::from_bytes(b"/tmp/\xff\xfe"));
        let err = foundation::file_url(bad, "kernel path").unwrap_err();
        assert!(
            matches!(&err, VZError::InvalidArgument { argument: "kernel path", reason } if reason.contains("UTF-8")),
            "{err}"
        );
        let nul = Path::new("/tmp/a\0b");
        let err = foundation::file_url(nul, "initrd path").unwrap_err();
        assert!(
            matches!(&err, VZError::InvalidArgument { argument: "initrd path", reason } if reason.contains("NUL")),
            "{err}"
        );
        assert!(foundation::url_from_string("nbd://localhost:10809/export").is_some());
    });
}

#[test]
fn arrays_dictionaries_and_data() {
    sim::scenario(|| {
        let items: Vec<Id> = (0..3).map(|_| probe()).collect();
        let array = foundation::ns_array(&items);
        assert_eq!(retain_count(&items[0]), 2, "the array retains its items");
        let back = foundation::array_items(&array);
        assert_eq!(back.len(), 3);
        assert!(back.iter().zip(&items).all(|(a, b)| a.is(b)));
        drop(back);
        drop(array);
        assert_eq!(retain_count(&items[0]), 1);

        let empty = foundation::ns_array(&[]);
        assert!(foundation::array_items(&empty).is_empty());

        let dict = foundation::ns_dictionary(&[("b", &items[1]), ("a", &items[0])]);
        let entries = foundation::dictionary_entries(&dict);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].0, "a");
        assert!(entries[0].1.is(&items[0]));
        assert!(entries[1].1.is(&items[1]));

        // Many keys in a scrambled order, some not ASCII: the entries come back in
        // `str` order (byte order), each key with its own value.
        for count in [0_usize, 1, 2, 3, 7, 64, 1000] {
            let names: Vec<String> = (0..count)
                .map(|i| match (i * 7919) % count.max(1) {
                    n if n % 5 == 0 => format!("é{n}"),
                    n => format!("k{n}"),
                })
                .collect();
            let values: Vec<Id> = names.iter().map(|n| foundation::ns_string(n)).collect();
            let pairs: Vec<(&str, &Id)> = names.iter().map(|n| n.as_str()).zip(&values).collect();
            let entries = foundation::dictionary_entries(&foundation::ns_dictionary(&pairs));
            let mut expected = names.clone();
            expected.sort();
            let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(keys, expected, "{count} keys");
            for (key, value) in &entries {
                assert_eq!(&foundation::string_from(value), key, "{count} keys");
            }
        }

        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(foundation::data_to_vec(&foundation::ns_data(&bytes)), bytes);
        assert!(foundation::data_to_vec(&foundation::ns_data(&[])).is_empty());
    });
}

#[test]
fn uuids_round_trip() {
    sim::scenario(|| {
        let text = "E621E1F8-C36C-495A-93FC-0C247A3E6E5F";
        let uuid = foundation::uuid_from_string(text).unwrap();
        assert_eq!(foundation::uuid_to_string(&uuid), text);
        assert!(foundation::uuid_from_string("not-a-uuid").is_none());
    });
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn file_handles_own_a_dup_and_close_it() {
    sim::scenario(|| {
        let file = std::fs::File::open("/dev/null").unwrap();
        // The first NSFileHandle makes GNUstep set up state of its own; count after it.
        drop(foundation::file_handle(file.as_fd()).unwrap());
        let before = open_fds();
        let handle = foundation::file_handle(file.as_fd()).unwrap();
        let dup = foundation::file_handle_fd(&handle);
        assert_ne!(dup, file.as_raw_fd());
        assert_eq!(open_fds(), before + 1);
        // SAFETY: reads the descriptor flags of the handle's own fd.
        let flags = unsafe { libc::fcntl(dup, libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        drop(handle);
        assert_eq!(open_fds(), before, "closeOnDealloc closed the dup");
        // SAFETY: F_GETFD on our own, still open, descriptor.
        assert_ne!(unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFD) }, -1);
    });
}

// ---------------------------------------------------------------- blocks

struct Counted(Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        // ORDERING: test counter, read after the C side joined its thread.
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counters() -> (Arc<AtomicUsize>, Arc<AtomicUsize>) {
    (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)))
}

/// Calls a Rust block from clang-compiled C on a new thread.
fn call_from_c(block: &RcBlock, arg: Option<&Id>, times: i32, copies: i32) {
    let arg = arg.map_or(core::ptr::null_mut(), |a| a.as_ptr().cast::<c_void>());
    // SAFETY: the block is a live `void (^)(id)`; the C side copies, calls and
    // releases it, and joins its thread before returning.
    unsafe { sim::raw::sim_call_block1_on_thread(block.as_ptr(), arg, times, copies) }
}

#[test]
fn rust_blocks_run_once_on_a_c_thread_and_drop_once() {
    sim::scenario(|| {
        for (times, copies) in [(1, 1), (3, 1), (1, 2), (5, 3)] {
            let (runs, drops) = counters();
            let state = Counted(Arc::clone(&drops));
            let seen = Arc::clone(&runs);
            let caller = std::thread::current().id();
            let block = RcBlock::once::<ErrorArg, _>(move |error| {
                let _keep = &state;
                assert!(error.is_some());
                assert_ne!(std::thread::current().id(), caller, "runs on the C thread");
                seen.fetch_add(1, Ordering::SeqCst);
            });
            let p = probe();
            call_from_c(&block, Some(&p), times, copies);
            assert_eq!(
                runs.load(Ordering::SeqCst),
                1,
                "times={times} copies={copies}"
            );
            assert_eq!(
                drops.load(Ordering::SeqCst),
                1,
                "dropped right after running"
            );
            drop(block);
            assert_eq!(drops.load(Ordering::SeqCst), 1, "and never again");
        }
    });
}

#[test]
fn a_block_never_called_drops_its_closure_on_the_last_release() {
    sim::scenario(|| {
        let (runs, drops) = counters();
        let state = Counted(Arc::clone(&drops));
        let block = RcBlock::once::<ErrorArg, _>(move |_| {
            let _keep = &state;
            runs.fetch_add(1, Ordering::SeqCst);
        });
        call_from_c(&block, None, 0, 2);
        assert_eq!(drops.load(Ordering::SeqCst), 0, "we still hold a reference");
        drop(block);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn two_argument_blocks_get_both_objects() {
    sim::scenario(|| {
        let a = probe();
        let b = probe();
        let (a2, b2) = (a.clone(), b.clone());
        let (runs, _) = counters();
        let seen = Arc::clone(&runs);
        let block = RcBlock::once::<ObjectErrorArgs, _>(move |(object, error)| {
            assert!(object.unwrap().is(&a2));
            assert!(error.unwrap().is(&b2));
            seen.fetch_add(1, Ordering::SeqCst);
        });
        // SAFETY: a live `void (^)(id, id)`; the C side joins before returning.
        unsafe {
            sim::raw::sim_call_block2_on_thread(
                block.as_ptr(),
                a.as_ptr().cast(),
                b.as_ptr().cast(),
                2,
                1,
            )
        };
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn blocks_carry_their_signature_and_real_size() {
    sim::scenario(|| {
        let big = [7u64; 9];
        let block = RcBlock::once::<ErrorArg, _>(move |_| assert_eq!(big[8], 7));
        // SAFETY: reads the descriptor of a live block.
        let (signature, size) = unsafe {
            (
                std::ffi::CStr::from_ptr(sim::raw::sim_block_signature(block.as_ptr())),
                sim::raw::sim_block_descriptor_size(block.as_ptr()),
            )
        };
        assert_eq!(signature, c"v16@?0@8");
        assert_eq!(
            size as usize,
            32 + 8 + 72,
            "header + flag (padded) + captures"
        );
        let two = RcBlock::once::<ObjectErrorArgs, _>(|_| {});
        let signature =
            // SAFETY: as above.
            unsafe { std::ffi::CStr::from_ptr(sim::raw::sim_block_signature(two.as_ptr())) };
        assert_eq!(signature, c"v24@?0@8@16");
    });
}

#[test]
fn a_panic_inside_a_block_never_unwinds_into_c() {
    sim::scenario(|| {
        let (_, drops) = counters();
        let state = Counted(Arc::clone(&drops));
        let block = RcBlock::once::<ErrorArg, _>(move |_| {
            let _keep = &state;
            panic!("deliberate panic inside a completion handler");
        });
        call_from_c(&block, None, 1, 1);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "state dropped while unwinding"
        );
    });
}

#[test]
fn clang_blocks_invoked_from_rust() {
    sim::scenario(|| {
        let mut total: core::ffi::c_long = 0;
        // SAFETY: the helper returns a heap `long (^)(long)` capturing `&mut total`,
        // which outlives it.
        let block = unsafe { sim::raw::sim_make_adder_block(&raw mut total, 100) };
        assert_eq!(sim::live_blocks(), 1);
        #[repr(C)]
        struct Header {
            isa: *const c_void,
            flags: i32,
            reserved: i32,
            invoke: unsafe extern "C" fn(*mut c_void, core::ffi::c_long) -> core::ffi::c_long,
        }
        let results: Vec<_> = (1..=3)
            // SAFETY: a clang block starts with the ABI header; invoke takes the block
            // and the declared argument.
            .map(|x| unsafe { ((*block.cast::<Header>()).invoke)(block, x) })
            .collect();
        assert_eq!(results, [101, 203, 306]);
        drop(RcBlockFromC(block));
        assert_eq!(sim::live_blocks(), 0);
    });
}

/// Releases a block made by C.
struct RcBlockFromC(*mut c_void);
impl Drop for RcBlockFromC {
    fn drop(&mut self) {
        unsafe extern "C-unwind" {
            fn _Block_release(block: *const c_void);
        }
        // SAFETY: we own the reference the C helper returned.
        unsafe { _Block_release(self.0) }
    }
}

// ---------------------------------------------------------------- dispatch

#[test]
fn sync_and_async_work_in_order() {
    sim::scenario(|| {
        let queue = Queue::new_serial("arcbox-vz.test.order");
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        for i in 0..100 {
            let log = Arc::clone(&log);
            queue.exec_async(move || log.lock().unwrap().push(i));
        }
        let len = queue.exec_sync(|| log.lock().unwrap().len());
        assert_eq!(len, 100, "sync work runs after earlier async work");
        assert_eq!(*log.lock().unwrap(), (0..100).collect::<Vec<_>>());
        assert!(!queue.is_current());
        assert!(queue.exec_sync(|| queue.is_current()));
    });
}

#[test]
fn sync_from_inside_the_same_queue_runs_inline() {
    sim::scenario(|| {
        let queue = Queue::new_serial("arcbox-vz.test.reentrant");
        let depth = queue.exec_sync(|| queue.exec_sync(|| queue.exec_sync(|| 3)));
        assert_eq!(depth, 3);
        let (tx, rx) = bridge::channel();
        let q2 = queue.clone();
        queue.exec_async(move || {
            let inner = q2.exec_sync(|| 42);
            let _ = tx.complete(inner);
        });
        assert_eq!(futures_executor::block_on(rx).unwrap(), 42);
    });
}

#[test]
fn a_panic_in_sync_work_resumes_on_the_caller() {
    sim::scenario(|| {
        let queue = Queue::new_serial("arcbox-vz.test.panic");
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            queue.exec_sync(|| panic!("deliberate panic on the queue"))
        }));
        let payload = caught.expect_err("the panic reached the caller");
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"deliberate panic on the queue"),
            "the caller gets the panic's own payload"
        );
        assert_eq!(queue.exec_sync(|| 1), 1, "the queue keeps working");

        // The same from a nested call, which runs inline on the queue: the panic
        // leaves the inner call, then the outer work item, then reaches the caller.
        let reached_outer = std::sync::atomic::AtomicBool::new(false);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            queue.exec_sync(|| {
                let inner = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    queue.exec_sync(|| -> u8 { panic!("deliberate nested panic") })
                }));
                reached_outer.store(inner.is_err(), std::sync::atomic::Ordering::Relaxed);
                std::panic::resume_unwind(inner.expect_err("the inner call panicked"))
            })
        }));
        assert!(reached_outer.load(std::sync::atomic::Ordering::Relaxed));
        let payload = caught.expect_err("the nested panic reached the caller");
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"deliberate nested panic")
        );
        assert_eq!(queue.exec_sync(|| 2), 2, "the queue keeps working");
    });
}

#[test]
fn queue_bound_values_are_used_and_dropped_on_their_queue() {
    sim::scenario(|| {
        let queue = Queue::new_serial("arcbox-vz.test.bound");
        struct OnlyOnQueue(Queue, Arc<AtomicUsize>);
        impl Drop for OnlyOnQueue {
            fn drop(&mut self) {
                assert!(self.0.is_current(), "dropped off its queue");
                self.1.fetch_add(1, Ordering::SeqCst);
            }
        }
        let drops = Arc::new(AtomicUsize::new(0));
        let bound = Arc::new(QueueBound::new(
            queue.clone(),
            OnlyOnQueue(queue.clone(), Arc::clone(&drops)),
        ));
        assert!(bound.with(|v| v.0.is_current()));
        let b2 = Arc::clone(&bound);
        let (tx, rx) = bridge::channel();
        queue.exec_async(move || {
            let on_queue = b2.get_on_queue().0.is_current();
            // Not the last reference: `bound` below is, and its drop is queued.
            drop(b2);
            let _ = tx.complete(on_queue);
        });
        assert!(futures_executor::block_on(rx).unwrap());
        drop(bound);
        // Dropping from this thread schedules the drop on the queue.
        queue.exec_sync(|| ());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn async_work_items_drain_their_autorelease_pool() {
    sim::scenario(|| {
        let queue = Queue::new_serial("arcbox-vz.test.pool");
        let (tx, rx) = bridge::channel();
        queue.exec_async(move || {
            let p = probe();
            drop(autorelease(&p));
            core::mem::forget(p); // the pool owns it now
            let _ = tx.complete(sim::live_objects());
        });
        let inside = futures_executor::block_on(rx).unwrap();
        assert_eq!(inside, 1, "alive in the item's pool");
        queue.exec_sync(|| ());
        assert_eq!(sim::live_objects(), 0, "released when the item finished");
    });
}

#[test]
fn completion_from_a_queue_thread_wakes_every_executor() {
    fn complete_later(queue: &Queue, value: u32) -> bridge::Completion<u32> {
        let (tx, rx) = bridge::channel();
        let block = RcBlock::once::<ErrorArg, _>(move |_| {
            let _ = tx.complete(value);
        });
        // The queue thread plays the framework: it invokes the handler and releases it.
        let p = probe();
        queue.exec_async(move || {
            call_from_c(&block, Some(&p), 1, 1);
            drop(block);
        });
        rx
    }
    sim::scenario(|| {
        let queue = Queue::new_serial("arcbox-vz.test.executors");
        assert_eq!(
            crate::bridge::tests::block_on(complete_later(&queue, 1)).unwrap(),
            1
        );
        assert_eq!(
            futures_executor::block_on(complete_later(&queue, 2)).unwrap(),
            2
        );
        assert_eq!(smol::block_on(complete_later(&queue, 3)).unwrap(), 3);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let rx = complete_later(&queue, 4);
        assert_eq!(
            rt.block_on(async { tokio::spawn(rx).await.unwrap() })
                .unwrap(),
            4
        );
        drop(rt);
        // A handler released without being called cancels its future.
        let (tx, rx) = bridge::channel::<u32>();
        let block = RcBlock::once::<ErrorArg, _>(move |_| {
            let _ = tx.complete(0);
        });
        queue.exec_async(move || drop(block));
        assert!(matches!(smol::block_on(rx), Err(VZError::Cancelled)));
    });
}

// ---------------------------------------------------------------- exceptions

/// An Objective-C exception that reaches the crate is named on stderr. Each test runs
/// its body in a child process (this test binary, run again for that one test),
/// because an exception that reaches Rust ends the process.
mod exceptions {
    use core::ffi::{c_int, c_long};
    use std::time::Duration;

    use super::*;
    use crate::ffi::exception;

    unsafe extern "C-unwind" {
        /// How many exceptions reached the simulator's stand-in for Foundation's
        /// preprocessor (the one installed before ours).
        fn sim_exceptions_preprocessed() -> c_long;
        /// Raises and catches inside Objective-C; 1 when caught.
        fn sim_raise_and_catch() -> c_int;
        /// Raises NSInternalInconsistencyException from C, uncaught.
        fn sim_raise_uncaught();
    }

    objc_methods! {
        fn exception_probe_new(class: ClassRef) -> Option<Id> = "new";
        fn raise_invalid_argument(probe: &Id) = "raiseInvalidArgument";
        fn raise_from_class(class: ClassRef) = "raiseFromClass";
        fn raise_and_catch(probe: &Id) -> bool = "raiseAndCatch";
    }

    fn exception_probe() -> Id {
        exception_probe_new(class!("SimExceptionProbe").unwrap()).unwrap()
    }

    /// How a send of `method` is named: `-[Class selector]` in debug builds, the
    /// selector alone in release builds.
    fn sent(method: &str) -> String {
        if cfg!(debug_assertions) {
            method.to_owned()
        } else {
            let selector = method.split_once(' ').unwrap().1;
            selector.trim_end_matches(']').to_owned()
        }
    }

    use sim::child::ChildOutcome as Child;

    /// What the exception tests read from a child.
    trait ExceptionReports {
        fn reports(&self) -> Vec<&str>;
        fn assert_died(&self);
        fn assert_reported_once(&self, method: &str, reason: &str);
    }

    impl ExceptionReports for Child {
        /// The lines the crate printed (the child's own output aside).
        fn reports(&self) -> Vec<&str> {
            self.stderr
                .lines()
                .filter(|l| l.starts_with("arcbox-vz:"))
                .collect()
        }

        #[track_caller]
        fn assert_died(&self) {
            assert!(
                self.status.is_some_and(|s| !s.success()),
                "the child should have been ended by the exception ({:?}):\n{}",
                self.status,
                self.stderr
            );
        }

        /// The child died after exactly one report naming `method` and `reason`.
        #[track_caller]
        fn assert_reported_once(&self, method: &str, reason: &str) {
            self.assert_died();
            assert_eq!(
                self.reports(),
                [format!(
                    "arcbox-vz: Objective-C exception NSInvalidArgumentException while \
                     sending {}: {reason}",
                    sent(method)
                )],
                "{}",
                self.stderr
            );
        }
    }

    /// Runs `body` alone in a child process: this binary with only the test `name`
    /// (in this module). In the child it never returns.
    fn in_child(name: &str, body: impl FnOnce()) -> Child {
        let test = format!("ffi::tests::exceptions::{name}");
        sim::child::isolated(&test, Duration::from_secs(60), body)
    }

    #[test]
    fn a_raise_in_a_send_is_named_with_its_reason_and_method() {
        let child = in_child(
            "a_raise_in_a_send_is_named_with_its_reason_and_method",
            || {
                let probe = exception_probe();
                raise_invalid_argument(&probe);
            },
        );
        child.assert_reported_once(
            "-[SimExceptionProbe raiseInvalidArgument]",
            "the probe was asked to raise (42)",
        );
    }

    #[test]
    fn a_raise_in_a_class_method_names_the_class() {
        let child = in_child("a_raise_in_a_class_method_names_the_class", || {
            raise_from_class(class!("SimExceptionProbe").unwrap());
        });
        child.assert_reported_once(
            "+[SimExceptionProbe raiseFromClass]",
            "the probe class was asked to raise",
        );
    }

    /// On a queue thread the dispatch trampoline's `catch_unwind` is what hides the
    /// runtime's own report; the send inside still names itself, once.
    #[test]
    fn a_raise_in_queue_work_is_reported_once() {
        let child = in_child("a_raise_in_queue_work_is_reported_once", || {
            let queue = Queue::new_serial("arcbox-vz.test.exceptions");
            queue.exec_sync(|| {
                let probe = exception_probe();
                raise_invalid_argument(&probe);
            });
        });
        child.assert_reported_once(
            "-[SimExceptionProbe raiseInvalidArgument]",
            "the probe was asked to raise (42)",
        );
    }

    /// An exception that does not come from a send (C code called from a completion
    /// handler) is named with the callback it crossed.
    #[test]
    fn a_raise_in_a_completion_handler_names_the_handler() {
        let child = in_child("a_raise_in_a_completion_handler_names_the_handler", || {
            // Any class lookup sets the crate up.
            let _ = class!("SimExceptionProbe").unwrap();
            let block = RcBlock::once::<ErrorArg, _>(|_| {
                // SAFETY: a C function without arguments; it raises, and C-unwind
                // lets the exception unwind through this frame.
                unsafe { sim_raise_uncaught() }
            });
            call_from_c(&block, None, 1, 1);
        });
        child.assert_died();
        assert_eq!(
            child.reports(),
            [
                "arcbox-vz: Objective-C exception NSInternalInconsistencyException while \
                 running an arcbox-vz completion handler: raised by C code"
            ],
            "{}",
            child.stderr
        );
    }

    /// Raised and caught inside Objective-C, during a send or not: the preprocessor
    /// records it and chains to the one it replaced, and nothing is printed.
    #[test]
    fn an_exception_caught_inside_objective_c_prints_nothing() {
        let child = in_child(
            "an_exception_caught_inside_objective_c_prints_nothing",
            || {
                sim::scenario(|| {
                    let probe = exception_probe();
                    // SAFETY: reads a counter.
                    let before = unsafe { sim_exceptions_preprocessed() };
                    assert!(raise_and_catch(&probe));
                    assert_eq!(
                        exception::pending(),
                        Some((
                            "NSInvalidArgumentException".to_owned(),
                            "raised and caught inside Objective-C".to_owned()
                        ))
                    );
                    // SAFETY: raises and catches inside Objective-C.
                    assert_eq!(unsafe { sim_raise_and_catch() }, 1);
                    // SAFETY: reads a counter.
                    let after = unsafe { sim_exceptions_preprocessed() };
                    assert_eq!(after, before + 2, "the previous preprocessor is chained");
                });
                println!("child finished");
            },
        );
        assert!(
            child.status.is_some_and(|s| s.success()),
            "{:?}\n{}",
            child.status,
            child.stderr
        );
        assert!(child.stdout.contains("child finished"), "{}", child.stdout);
        assert_eq!(child.reports(), Vec::<&str>::new(), "{}", child.stderr);
    }
}
