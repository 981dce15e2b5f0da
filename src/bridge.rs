//! The completion bridge: a one-shot channel from an Objective-C completion handler,
//! running on a dispatch queue, to a [`Future`] polled by any executor.
//!
//! It has exactly one producer, a [`Completer`] moved into a completion block, and one
//! consumer, a [`Completion`] future. It needs no executor: the future stores the
//! [`Waker`] it was last polled with, and the completer wakes it.
//!
//! # Design
//!
//! Both halves share one `Mutex<State>`. That is the futures-channel shape rather
//! than oneshot's lock-free state machine: these completions happen a few times per
//! VM operation, and one short lock is far easier to audit than a hand-rolled atomic
//! protocol. No waker is ever woken or dropped while the lock is held.
//!
//! The guarantees, each covered by a test below (and run under Miri):
//! - the value is stored before the wake, under the lock, so no wake-up is lost;
//! - the stored waker is replaced when a different task polls, and kept (not
//!   re-cloned) when the same one does;
//! - a completer dropped without completing resolves the future to
//!   [`VZError::Cancelled`] (for example, a block released without being called);
//! - a completion that arrives after the future was dropped hands the value back, so
//!   the caller releases it (closes an fd); nothing leaks.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::error::VZError;

/// Wakes a user's waker from a callback of the framework. A waker is user code and
/// may panic: the panic is caught here (the panic hook has reported it), that one
/// wake-up is lost, and the process goes on. Never called with a lock held.
pub(crate) fn wake(waker: Waker) {
    let _ = catch_unwind(AssertUnwindSafe(move || waker.wake()));
}

/// Creates a connected completer and future.
pub(crate) fn channel<T>() -> (Completer<T>, Completion<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            value: None,
            waker: None,
            completer_gone: false,
            completion_gone: false,
        }),
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
    state: Mutex<State<T>>,
}

#[derive(Debug)]
struct State<T> {
    value: Option<T>,
    waker: Option<Waker>,
    /// The completer completed or was dropped: no value will come after this.
    completer_gone: bool,
    /// The future was dropped: nobody will take a value.
    completion_gone: bool,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // No code runs under the lock that could leave the state half-updated (no
        // user code, no wakes, no drops of user values), so a poisoned lock holds a
        // consistent state and is safe to keep using.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The producing half: completes the [`Completion`] once.
#[derive(Debug)]
pub(crate) struct Completer<T> {
    /// Taken by `complete`, so that `Drop` does not lock again: a second lock right
    /// after the wake would contend with the woken future's poll.
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
        let waker = {
            let mut state = shared.lock();
            if state.completion_gone {
                return Err(value);
            }
            state.value = Some(value);
            state.completer_gone = true;
            state.waker.take()
        };
        drop(shared);
        // Woken outside the lock: the future may be polled on another thread at once.
        if let Some(waker) = waker {
            wake(waker);
        }
        Ok(())
    }

    /// Whether the future has been dropped, so completing would be wasted work.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.shared
            .as_ref()
            .is_none_or(|shared| shared.lock().completion_gone)
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        let Some(shared) = self.shared.take() else {
            return; // completed
        };
        let waker = {
            let mut state = shared.lock();
            if state.completer_gone {
                return;
            }
            state.completer_gone = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            wake(waker);
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

impl<T> Future for Completion<T> {
    type Output = Result<T, VZError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let replaced = {
            let mut state = self.shared.lock();
            if let Some(value) = state.value.take() {
                return Poll::Ready(Ok(value));
            }
            if state.completer_gone {
                return Poll::Ready(Err(VZError::Cancelled));
            }
            match &state.waker {
                Some(waker) if waker.will_wake(cx.waker()) => None,
                _ => state.waker.replace(cx.waker().clone()),
            }
        };
        // The previous task's waker is dropped outside the lock.
        drop(replaced);
        Poll::Pending
    }
}

impl<T> Drop for Completion<T> {
    fn drop(&mut self) {
        let (value, waker) = {
            let mut state = self.shared.lock();
            state.completion_gone = true;
            (state.value.take(), state.waker.take())
        };
        // A value that was delivered but never taken is released here.
        drop(value);
        drop(waker);
    }
}

#[cfg(test)]
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

#[cfg(all(test, not(miri)))]
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
