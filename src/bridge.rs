//! The completion bridge: a one-shot channel from an Objective-C completion handler,
//! running on a dispatch queue, to a [`Future`] polled by any executor.
//!
//! It has exactly one producer, a [`Completer`] moved into a completion block, and one
//! consumer, a [`Completion`] future. It needs no executor: the future stores the
//! [`Waker`] it was last polled with, and the completer wakes it.
//!
//! # Design
//!
//! A lock-free one-shot state machine in the style of the `oneshot` crate: one atomic
//! state byte, a value slot and a waker slot. Each slot has one owner at a time, and
//! the state says who:
//!
//! | state | value slot | waker slot |
//! |---|---|---|
//! | `EMPTY` | completer (writes it before publishing) | future |
//! | `WAITING` | completer | completer, once it swaps the state; until then the future may take it back with a compare-exchange to `EMPTY` |
//! | `READY` | future (takes it, then `TAKEN`) | whoever swapped the state last out of `WAITING`, which is the completer |
//! | `TX_GONE`, `TAKEN` | nobody (empty) | nobody (empty) |
//! | `RX_GONE` | completer (takes its value back) | nobody (empty) |
//!
//! The completer moves the state with one `swap` (to `READY` or `TX_GONE`), the
//! future with compare-exchanges (`EMPTY` ⇄ `WAITING`) and one `swap` on drop
//! (`RX_GONE`). No lock is taken anywhere, so nothing is ever woken with a lock held,
//! and a completion costs one atomic swap and the executor's own wake-up.
//!
//! The guarantees, each covered by a test below (run under Miri) and explored
//! exhaustively by the `loom` model checker (`RUSTFLAGS="--cfg arcbox_vz_sim --cfg
//! arcbox_vz_loom" cargo test --release --lib bridge::loom_tests`):
//! - the value is published before the wake, so no wake-up is lost;
//! - the stored waker is replaced when a different task polls, and kept (not
//!   re-cloned) when the same one does;
//! - a completer dropped without completing resolves the future to
//!   [`VZError::Cancelled`] (for example, a block released without being called);
//! - a completion that arrives after the future was dropped hands the value back, so
//!   the caller releases it (closes an fd); nothing leaks and nothing is dropped twice.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::error::VZError;
use sync::{Arc, AtomicU8, Ordering, UnsafeCell};

/// The atomics and cells of the bridge: `std`'s, or `loom`'s under
/// `--cfg arcbox_vz_loom`, with one API (closures over raw pointers, as
/// `loom::cell::UnsafeCell` has).
mod sync {
    #[cfg(arcbox_vz_loom)]
    pub(super) use loom::cell::UnsafeCell;
    #[cfg(arcbox_vz_loom)]
    pub(super) use loom::sync::Arc;
    #[cfg(arcbox_vz_loom)]
    pub(super) use loom::sync::atomic::{AtomicU8, Ordering};
    #[cfg(not(arcbox_vz_loom))]
    pub(super) use std::sync::Arc;
    #[cfg(not(arcbox_vz_loom))]
    pub(super) use std::sync::atomic::{AtomicU8, Ordering};

    /// `std::cell::UnsafeCell` with loom's access API.
    #[cfg(not(arcbox_vz_loom))]
    #[derive(Debug)]
    pub(super) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    #[cfg(not(arcbox_vz_loom))]
    impl<T> UnsafeCell<T> {
        pub(super) fn new(value: T) -> Self {
            Self(std::cell::UnsafeCell::new(value))
        }
        pub(super) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

/// No value, no waker.
const EMPTY: u8 = 0;
/// The future's waker is in its slot.
const WAITING: u8 = 1;
/// The value is in its slot.
const READY: u8 = 2;
/// The completer was dropped without a value.
const TX_GONE: u8 = 3;
/// The future took the value.
const TAKEN: u8 = 4;
/// The future was dropped.
const RX_GONE: u8 = 5;

/// Wakes a user's waker from a callback of the framework. A waker is user code and
/// may panic: the panic is caught here (the panic hook has reported it), that one
/// wake-up is lost, and the process goes on. Never called with a lock held.
pub(crate) fn wake(waker: Waker) {
    let _ = catch_unwind(AssertUnwindSafe(move || waker.wake()));
}

/// Where the registration `id` is in a list of waiters or streams kept by id (the
/// lists are short; a plain loop is compiled once per element type).
pub(crate) fn index_of<T>(entries: &[(u64, T)], id: u64) -> Option<usize> {
    for (index, (entry, _)) in entries.iter().enumerate() {
        if *entry == id {
            return Some(index);
        }
    }
    None
}

/// Creates a connected completer and future.
pub(crate) fn channel<T>() -> (Completer<T>, Completion<T>) {
    let shared = Arc::new(Shared {
        state: AtomicU8::new(EMPTY),
        value: UnsafeCell::new(None),
        waker: UnsafeCell::new(None),
    });
    (
        Completer {
            shared: Some(Arc::clone(&shared)),
        },
        Completion { shared },
    )
}

#[derive(Debug)]
struct Shared<T> {
    state: AtomicU8,
    value: UnsafeCell<Option<T>>,
    waker: UnsafeCell<Option<Waker>>,
}

// SAFETY: the slots are reached only by the half that owns them in the current state
// (the table in the module docs), and every hand-over is an atomic Release/Acquire
// pair on `state`: the value crosses threads (T: Send) and so do wakers (Send).
unsafe impl<T: Send> Sync for Shared<T> {}
// SAFETY: as above; moving the whole state moves a T and a Waker, both Send.
unsafe impl<T: Send> Send for Shared<T> {}

impl<T> Shared<T> {
    /// Takes the value out of its slot.
    ///
    /// # Safety
    ///
    /// The caller owns the value slot in the current state.
    unsafe fn take_value(&self) -> Option<T> {
        // SAFETY: exclusive access by the caller's contract.
        self.value.with_mut(|slot| unsafe { (*slot).take() })
    }

    /// Takes the waker out of its slot.
    ///
    /// # Safety
    ///
    /// The caller owns the waker slot in the current state.
    unsafe fn take_waker(&self) -> Option<Waker> {
        // SAFETY: exclusive access by the caller's contract.
        self.waker.with_mut(|slot| unsafe { (*slot).take() })
    }
}

/// The producing half: completes the [`Completion`] once.
#[derive(Debug)]
pub(crate) struct Completer<T> {
    /// Taken by `complete`, so that `Drop` knows it has nothing left to do.
    shared: Option<Arc<Shared<T>>>,
}

impl<T> Completer<T> {
    /// Stores `value` and wakes the future.
    ///
    /// Returns `Err(value)` when the future is already gone, so the caller can release
    /// what the value holds (dropping it is enough for owned types).
    pub(crate) fn complete(mut self, value: T) -> Result<(), T> {
        let Some(shared) = self.shared.take() else {
            return Err(value);
        };
        // ORDERING: Acquire pairs with the future's Release when it dropped; nothing
        // of the future's is read here, the load only saves work.
        if shared.state.load(Ordering::Acquire) == RX_GONE {
            return Err(value);
        }
        // SAFETY: before the completer's swap, the value slot is the completer's in
        // every state (module docs).
        shared.value.with_mut(|slot| unsafe { *slot = Some(value) });
        // ORDERING: Release publishes the value to the future, which loads READY with
        // Acquire; Acquire takes over the waker the future published with Release.
        match shared.state.swap(READY, Ordering::AcqRel) {
            WAITING => {
                // SAFETY: the future stored its waker and gave the slot up by moving
                // to WAITING; our swap made the slot ours.
                if let Some(waker) = unsafe { shared.take_waker() } {
                    drop(shared);
                    wake(waker);
                }
                Ok(())
            }
            RX_GONE => {
                // The future is gone: nobody reads the slot again, take the value back.
                // ORDERING: only this thread uses the state from here on.
                shared.state.store(RX_GONE, Ordering::Relaxed);
                // SAFETY: the future dropped; the value slot is ours.
                let value = unsafe { shared.take_value() };
                Err(value.expect("the value just stored"))
            }
            _ => Ok(()),
        }
    }

    /// Whether the future has been dropped, so completing would be wasted work.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.shared.as_ref().is_none_or(|shared| {
            // ORDERING: a hint; Relaxed would do, Acquire keeps it simple to reason.
            shared.state.load(Ordering::Acquire) == RX_GONE
        })
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        let Some(shared) = self.shared.take() else {
            return; // completed
        };
        // ORDERING: Release publishes "no value will come"; Acquire takes over the
        // waker the future published.
        if shared.state.swap(TX_GONE, Ordering::AcqRel) == WAITING {
            // SAFETY: as in `complete`: our swap out of WAITING made the slot ours.
            if let Some(waker) = unsafe { shared.take_waker() } {
                drop(shared);
                wake(waker);
            }
        }
    }
}

/// The consuming half: a future that resolves to the completed value, or to
/// [`VZError::Cancelled`] if the completer goes away first.
#[derive(Debug)]
#[must_use = "a completion does nothing unless awaited"]
pub(crate) struct Completion<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Completion<T> {
    /// The result, in a state where the completer has acted (READY, TX_GONE) or the
    /// value was taken (TAKEN).
    fn finished(&self, state: u8) -> Result<T, VZError> {
        if state != READY {
            return Err(VZError::Cancelled);
        }
        // SAFETY: READY gives the value slot to the future.
        let value = unsafe { self.shared.take_value() };
        // ORDERING: after READY only this half moves the state (its drop); Relaxed
        // is enough to remember the value is gone.
        self.shared.state.store(TAKEN, Ordering::Relaxed);
        value.ok_or(VZError::Cancelled)
    }
}

impl<T> Future for Completion<T> {
    type Output = Result<T, VZError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let shared = &self.shared;
        // ORDERING: Acquire pairs with the completer's Release swap (the value).
        let mut state = shared.state.load(Ordering::Acquire);
        if state == WAITING {
            // Take the waker slot back before looking at it: in WAITING the completer
            // may take the waker at any moment.
            // ORDERING: Acquire on success (the slot is ours again) and on failure (the
            // completer moved the state; read its value).
            state = match shared.state.compare_exchange(
                WAITING,
                EMPTY,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => EMPTY,
                Err(now) => now,
            };
        }
        if state == EMPTY {
            // SAFETY: in EMPTY the waker slot is the future's.
            let replaced = shared.waker.with_mut(|slot| unsafe {
                match &*slot {
                    // The same task polled again: keep its waker, no new clone.
                    Some(waker) if waker.will_wake(cx.waker()) => None,
                    _ => (*slot).replace(cx.waker().clone()),
                }
            });
            // The previous task's waker is dropped before publishing, by its owner.
            drop(replaced);
            // ORDERING: Release publishes the waker to the completer (which swaps with
            // Acquire); Acquire on failure reads the completer's value.
            match shared
                .state
                .compare_exchange(EMPTY, WAITING, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Poll::Pending,
                Err(now) => {
                    // The completer acted in between and saw EMPTY, so it left the
                    // waker slot alone: it is still ours; empty it.
                    // SAFETY: the completer takes the waker only after swapping out of
                    // WAITING, which the state never was since we emptied it.
                    drop(unsafe { shared.take_waker() });
                    state = now;
                }
            }
        }
        // Every state but READY, TX_GONE and TAKEN returned or moved on above.
        Poll::Ready(self.finished(state))
    }
}

impl<T> Drop for Completion<T> {
    fn drop(&mut self) {
        // ORDERING: Release tells the completer it may take its value back; Acquire
        // reads a value the completer published, to drop it here.
        match self.shared.state.swap(RX_GONE, Ordering::AcqRel) {
            // A value delivered but never taken is released here.
            // SAFETY: READY gives the value slot to the future.
            READY => drop(unsafe { self.shared.take_value() }),
            // Our own waker, which the completer will not touch after seeing RX_GONE.
            // SAFETY: the completer takes the waker only after swapping out of
            // WAITING, and it now finds RX_GONE instead.
            WAITING => drop(unsafe { self.shared.take_waker() }),
            _ => {}
        }
    }
}

/// Every interleaving of the two halves, explored by `loom`.
#[cfg(all(test, arcbox_vz_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicUsize;
    use std::task::Wake;

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &std::sync::Arc<Self>) {
            // ORDERING: read after the threads are joined.
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll<T>(rx: &mut Completion<T>, waker: &Waker) -> Poll<Result<T, VZError>> {
        Pin::new(rx).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn a_completion_racing_a_poll_is_never_lost() {
        loom::model(|| {
            let (tx, mut rx) = channel::<u32>();
            let producer = loom::thread::spawn(move || tx.complete(7));
            let count = std::sync::Arc::new(Count::default());
            let waker = Waker::from(std::sync::Arc::clone(&count));
            let first = poll(&mut rx, &waker);
            assert_eq!(producer.join().unwrap(), Ok(()));
            match first {
                Poll::Ready(value) => assert_eq!(value.unwrap(), 7),
                Poll::Pending => {
                    // Pending means the waker was stored before the completion: it
                    // must have been woken, and the value must be there now.
                    assert_eq!(count.0.load(Ordering::SeqCst), 1);
                    assert!(matches!(poll(&mut rx, &waker), Poll::Ready(Ok(7))));
                }
            }
        });
    }

    #[test]
    fn a_new_waker_racing_the_completion_is_woken_or_sees_the_value() {
        loom::model(|| {
            let (tx, mut rx) = channel::<u32>();
            let (a, b) = (
                std::sync::Arc::new(Count::default()),
                std::sync::Arc::new(Count::default()),
            );
            let (wa, wb) = (Waker::from(a.clone()), Waker::from(b.clone()));
            assert!(poll(&mut rx, &wa).is_pending());
            let producer = loom::thread::spawn(move || tx.complete(1));
            let second = poll(&mut rx, &wb);
            producer.join().unwrap().unwrap();
            if second.is_pending() {
                assert_eq!(b.0.load(Ordering::SeqCst), 1, "the new task was not woken");
                assert!(matches!(poll(&mut rx, &wb), Poll::Ready(Ok(1))));
            }
            assert!(a.0.load(Ordering::SeqCst) + b.0.load(Ordering::SeqCst) <= 1);
        });
    }

    #[test]
    fn a_drop_racing_the_completion_drops_the_value_once() {
        loom::model(|| {
            let drops = std::sync::Arc::new(AtomicUsize::new(0));
            struct Payload(std::sync::Arc<AtomicUsize>);
            impl Drop for Payload {
                fn drop(&mut self) {
                    // ORDERING: read after join.
                    self.0.fetch_add(1, Ordering::SeqCst);
                }
            }
            let (tx, mut rx) = channel::<Payload>();
            let payload = Payload(std::sync::Arc::clone(&drops));
            let producer = loom::thread::spawn(move || {
                // A value handed back is released by the caller: dropped here.
                drop(tx.complete(payload));
            });
            let waker = Waker::noop();
            drop(poll(&mut rx, waker));
            drop(rx);
            producer.join().unwrap();
            assert_eq!(drops.load(Ordering::SeqCst), 1);
        });
    }

    #[test]
    fn a_dropped_completer_racing_a_poll_cancels() {
        loom::model(|| {
            let (tx, mut rx) = channel::<u32>();
            let producer = loom::thread::spawn(move || drop(tx));
            let count = std::sync::Arc::new(Count::default());
            let waker = Waker::from(std::sync::Arc::clone(&count));
            let first = poll(&mut rx, &waker);
            producer.join().unwrap();
            if first.is_pending() {
                assert_eq!(count.0.load(Ordering::SeqCst), 1);
            }
            assert!(matches!(
                poll(&mut rx, &waker),
                Poll::Ready(Err(VZError::Cancelled))
            ));
        });
    }
}

#[cfg(all(test, not(arcbox_vz_loom)))]
pub(crate) mod tests {
    //! Runs under Miri: `cargo +nightly miri test --lib bridge::tests`.
    use super::*;
    use std::ptr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;
    use std::thread;

    /// A waker that counts wakes and clones.
    #[derive(Default)]
    struct CountingWaker {
        wakes: AtomicUsize,
    }

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            // ORDERING: a test counter read after joins; Relaxed is enough.
            self.wakes.fetch_add(1, Ordering::Relaxed);
        }
    }

    impl CountingWaker {
        fn wakes(&self) -> usize {
            // ORDERING: see wake_by_ref.
            self.wakes.load(Ordering::Relaxed)
        }
    }

    /// Counts drops of a payload.
    struct Payload(Arc<AtomicUsize>);
    impl Drop for Payload {
        fn drop(&mut self) {
            // ORDERING: test counter, read after the drop on the same or a joined thread.
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll_once<T>(f: &mut Completion<T>, waker: &Waker) -> Poll<Result<T, VZError>> {
        Pin::new(f).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn value_sent_before_poll_is_ready() {
        let (tx, mut rx) = channel();
        tx.complete(7).unwrap();
        let waker = Waker::noop();
        assert!(matches!(poll_once(&mut rx, waker), Poll::Ready(Ok(7))));
    }

    #[test]
    fn completion_wakes_the_stored_waker_once() {
        let (tx, mut rx) = channel();
        let counting = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&counting));
        assert!(poll_once(&mut rx, &waker).is_pending());
        tx.complete("done").unwrap();
        assert_eq!(counting.wakes(), 1);
        assert!(matches!(
            poll_once(&mut rx, &waker),
            Poll::Ready(Ok("done"))
        ));
    }

    #[test]
    fn a_new_task_replaces_the_waker_and_the_old_one_is_not_woken() {
        let (tx, mut rx) = channel::<u8>();
        let first = Arc::new(CountingWaker::default());
        let second = Arc::new(CountingWaker::default());
        assert!(poll_once(&mut rx, &Waker::from(Arc::clone(&first))).is_pending());
        assert!(poll_once(&mut rx, &Waker::from(Arc::clone(&second))).is_pending());
        // The first waker's clone was dropped when it was replaced.
        assert_eq!(Arc::strong_count(&first), 1);
        tx.complete(1).unwrap();
        assert_eq!(first.wakes(), 0);
        assert_eq!(second.wakes(), 1);
    }

    /// A waker that counts how often it is cloned. `Wake` cannot observe clones, so
    /// this one is built from a raw vtable.
    #[allow(unsafe_code)]
    fn clone_counting_waker(clones: &'static AtomicUsize) -> Waker {
        use std::task::{RawWaker, RawWakerVTable};
        fn clone(data: *const ()) -> RawWaker {
            // SAFETY: `data` is the &'static AtomicUsize given to Waker::from_raw.
            let clones = unsafe { &*data.cast::<AtomicUsize>() };
            // ORDERING: test counter, read on the same thread.
            clones.fetch_add(1, Ordering::Relaxed);
            RawWaker::new(data, &VTABLE)
        }
        fn noop(_: *const ()) {}
        static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
        // SAFETY: the vtable functions do nothing with `data` but count, and the
        // counter is 'static.
        unsafe { Waker::from_raw(RawWaker::new(ptr::from_ref(clones).cast(), &VTABLE)) }
    }

    #[test]
    fn the_same_task_polling_again_keeps_its_waker() {
        static CLONES: AtomicUsize = AtomicUsize::new(0);
        let (_tx, mut rx) = channel::<u8>();
        let waker = clone_counting_waker(&CLONES);
        for _ in 0..3 {
            assert!(poll_once(&mut rx, &waker).is_pending());
        }
        // ORDERING: see clone_counting_waker.
        assert_eq!(
            CLONES.load(Ordering::Relaxed),
            1,
            "cloned for the first poll only"
        );
    }

    #[test]
    fn dropped_completer_cancels_and_wakes() {
        let (tx, mut rx) = channel::<u8>();
        let counting = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&counting));
        assert!(poll_once(&mut rx, &waker).is_pending());
        drop(tx);
        assert_eq!(counting.wakes(), 1);
        assert!(matches!(
            poll_once(&mut rx, &waker),
            Poll::Ready(Err(VZError::Cancelled))
        ));
    }

    #[test]
    fn late_completion_after_drop_returns_the_value_to_release() {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = channel();
        assert!(!tx.is_abandoned());
        drop(rx);
        assert!(tx.is_abandoned());
        let refused = tx.complete(Payload(Arc::clone(&drops))).unwrap_err();
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(refused);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn delivered_but_untaken_value_is_dropped_with_the_future() {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = channel();
        tx.complete(Payload(Arc::clone(&drops)))
            .unwrap_or_else(|_| panic!("refused"));
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(rx);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn every_payload_is_dropped_exactly_once_across_threads() {
        let drops = Arc::new(AtomicUsize::new(0));
        let rounds = if cfg!(miri) { 20 } else { 2000 };
        for i in 0..rounds {
            let (tx, mut rx) = channel();
            let payload = Payload(Arc::clone(&drops));
            let sender = thread::spawn(move || {
                let _ = tx.complete(payload);
            });
            match i % 3 {
                0 => drop(rx),
                1 => {
                    let waker = Waker::noop();
                    let _ = poll_once(&mut rx, waker);
                    drop(rx);
                }
                _ => {
                    sender.join().unwrap();
                    assert!(matches!(
                        poll_once(&mut rx, Waker::noop()),
                        Poll::Ready(Ok(_))
                    ));
                    continue;
                }
            }
            sender.join().unwrap();
        }
        assert_eq!(drops.load(Ordering::SeqCst), rounds);
    }

    #[test]
    fn a_wake_from_another_thread_is_never_lost() {
        let rounds = if cfg!(miri) { 10 } else { 1000 };
        for _ in 0..rounds {
            let (tx, rx) = channel::<u32>();
            let sender = thread::spawn(move || tx.complete(5).unwrap());
            assert_eq!(block_on(rx).unwrap(), 5);
            sender.join().unwrap();
        }
    }

    #[test]
    fn halves_are_send() {
        fn assert_send<T: Send>() {}
        assert_send::<Completer<std::os::fd::OwnedFd>>();
        assert_send::<Completion<std::os::fd::OwnedFd>>();
    }

    /// The hand-written executor used here and in the executor tests: park the thread
    /// until the waker unparks it.
    pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
        struct Unparker(thread::Thread);
        impl Wake for Unparker {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unparker(thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
            thread::park();
        }
    }
}

#[cfg(all(test, not(miri), not(arcbox_vz_loom)))]
mod executor_tests {
    //! The same completion, sent from a plain thread, awaited by each executor.
    use super::channel;
    use super::tests::block_on;
    use std::thread;
    use std::time::Duration;

    fn send_later(value: u32) -> super::Completion<u32> {
        let (tx, rx) = channel();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(5));
            tx.complete(value).unwrap();
        });
        rx
    }

    #[test]
    fn hand_written_block_on() {
        assert_eq!(block_on(send_later(1)).unwrap(), 1);
    }

    #[test]
    fn futures_executor() {
        assert_eq!(futures_executor::block_on(send_later(2)).unwrap(), 2);
    }

    #[test]
    fn smol() {
        assert_eq!(smol::block_on(send_later(3)).unwrap(), 3);
    }

    #[test]
    fn tokio_multi_thread_spawned_task() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let out = rt.block_on(async { tokio::spawn(send_later(4)).await.unwrap() });
        assert_eq!(out.unwrap(), 4);
    }

    #[test]
    fn tokio_current_thread() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(send_later(5)).unwrap(), 5);
    }
}
