//! libdispatch: private serial queues, and values that may only be touched on one.
//!
//! Virtualization.framework asserts that a virtual machine and its runtime devices
//! are used on the VM's serial queue (`dispatch_assert_queue`, a SIGTRAP otherwise).
//! [`QueueBound`] makes that the only way to reach them.

use core::ffi::{c_char, c_ulong, c_void};
use core::mem::ManuallyDrop;
use core::ptr::{self, NonNull};
use std::ffi::CString;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use super::exception::{Site, Unwinding};
use super::runtime::{IntoArg, Object, autoreleasepool};

#[cfg_attr(target_vendor = "apple", link(name = "System", kind = "dylib"))]
unsafe extern "C-unwind" {
    fn dispatch_queue_create(label: *const c_char, attr: *const c_void) -> *mut c_void;
    fn dispatch_queue_attr_make_with_autorelease_frequency(
        attr: *const c_void,
        frequency: c_ulong,
    ) -> *const c_void;
    fn dispatch_async_f(queue: *mut c_void, context: *mut c_void, work: extern "C" fn(*mut c_void));
    fn dispatch_sync_f(queue: *mut c_void, context: *mut c_void, work: extern "C" fn(*mut c_void));
    fn dispatch_retain(object: *mut c_void);
    fn dispatch_release(object: *mut c_void);
    fn dispatch_queue_set_specific(
        queue: *mut c_void,
        key: *const c_void,
        context: *mut c_void,
        destructor: Option<extern "C" fn(*mut c_void)>,
    );
    fn dispatch_get_specific(key: *const c_void) -> *mut c_void;
}

/// `DISPATCH_AUTORELEASE_FREQUENCY_WORK_ITEM`: a pool around every async work item.
const AUTORELEASE_FREQUENCY_WORK_ITEM: c_ulong = 1;

/// The key under which each of our queues stores its own address, so a thread can
/// tell whether it is running on a given queue. Its address is what matters.
static QUEUE_KEY: u8 = 0;

fn queue_key() -> *const c_void {
    ptr::from_ref(&QUEUE_KEY).cast()
}

/// An owned (+1) reference to a serial dispatch queue.
#[derive(Debug)]
pub(crate) struct Queue(NonNull<c_void>);

// SAFETY: dispatch queues are thread-safe objects; every function used here may be
// called from any thread.
unsafe impl Send for Queue {}
// SAFETY: as above.
unsafe impl Sync for Queue {}

impl Queue {
    /// A new serial queue that drains an autorelease pool after each async work item.
    pub(crate) fn new_serial(label: &str) -> Self {
        let label = CString::new(label.replace('\0', "")).expect("NUL bytes were removed");
        // SAFETY: NULL is DISPATCH_QUEUE_SERIAL; WORK_ITEM is a valid frequency
        // (macOS 10.12+). The label is copied by dispatch_queue_create.
        let queue = unsafe {
            let attr = dispatch_queue_attr_make_with_autorelease_frequency(
                ptr::null(),
                AUTORELEASE_FREQUENCY_WORK_ITEM,
            );
            dispatch_queue_create(label.as_ptr(), attr)
        };
        let queue = NonNull::new(queue).expect("dispatch_queue_create failed: out of memory");
        // SAFETY: the context is the queue's own address, only ever compared, never
        // dereferenced, so it needs no destructor.
        unsafe { dispatch_queue_set_specific(queue.as_ptr(), queue_key(), queue.as_ptr(), None) };
        Self(queue)
    }

    /// The `dispatch_queue_t`, for the benchmarks' C floors.
    #[cfg(arcbox_vz_bench)]
    pub(crate) fn as_raw(&self) -> *mut c_void {
        self.0.as_ptr()
    }

    /// Whether the calling thread is running a work item of this queue.
    pub(crate) fn is_current(&self) -> bool {
        // SAFETY: dispatch_get_specific may be called from any thread.
        unsafe { dispatch_get_specific(queue_key()) == self.0.as_ptr() }
    }

    /// Runs `f` on the queue later. A panic in `f` is caught at the queue boundary
    /// (libdispatch cannot unwind); the panic hook reports it and the state `f`
    /// captured is dropped while unwinding.
    pub(crate) fn exec_async<F: FnOnce() + Send + 'static>(&self, f: F) {
        self.exec_async_boxed(Box::new(f));
    }

    /// The non-generic part of [`exec_async`](Self::exec_async): one trampoline for
    /// every closure type.
    fn exec_async_boxed(&self, f: Box<dyn FnOnce() + Send>) {
        let context = Box::into_raw(Box::new(f));
        // SAFETY: the queue is alive (we hold a reference) and retains itself while the
        // item is pending; the trampoline takes ownership of `context`.
        unsafe { dispatch_async_f(self.0.as_ptr(), context.cast(), async_trampoline) }
    }

    /// Runs `f` on the queue and waits for its result. Called from a work item of this
    /// same queue, it runs `f` inline instead of deadlocking. A panic in `f` resumes
    /// on the calling thread.
    pub(crate) fn exec_sync<R: Send, F: FnOnce() -> R + Send>(&self, f: F) -> R {
        // Only this shim is compiled once per closure type; the rest is shared.
        let mut f = Some(f);
        let mut result = None;
        self.exec_sync_dyn(&mut || {
            if let Some(f) = f.take() {
                result = Some(f());
            }
        });
        result.expect("dispatch_sync_f ran the work item")
    }

    /// The non-generic part of [`exec_sync`](Self::exec_sync).
    pub(crate) fn exec_sync_dyn(&self, f: &mut (dyn FnMut() + Send)) {
        if self.is_current() {
            return autoreleasepool(f);
        }
        let mut context = SyncContext { f, result: Ok(()) };
        // SAFETY: the queue is alive; dispatch_sync_f returns only after the trampoline
        // has run, so `context` outlives its use. We checked above that we are not on
        // this queue, so this cannot deadlock on it.
        unsafe {
            dispatch_sync_f(
                self.0.as_ptr(),
                ptr::addr_of_mut!(context).cast(),
                sync_trampoline,
            )
        };
        if let Err(panic) = context.result {
            resume_unwind(panic);
        }
    }
}

/// The work function of every [`Queue::exec_async`] item: runs the boxed closure.
extern "C" fn async_trampoline(context: *mut c_void) {
    // SAFETY: `context` is the Box leaked by exec_async_boxed, handed over exactly once.
    let f = unsafe { Box::from_raw(context.cast::<Box<dyn FnOnce() + Send>>()) };
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let guard = Unwinding::new(Site::Callback(
            "running a work item on an arcbox-vz dispatch queue",
        ));
        (*f)();
        guard.done();
    }));
}

/// What [`Queue::exec_sync`] hands to its work item: the closure, and the result of
/// running it (a panic is carried back to the caller).
struct SyncContext<'a> {
    f: &'a mut (dyn FnMut() + Send),
    result: std::thread::Result<()>,
}

/// The work function of every [`Queue::exec_sync`] item.
extern "C" fn sync_trampoline(context: *mut c_void) {
    // SAFETY: `context` points to the SyncContext on the waiting caller's stack, which
    // dispatch_sync_f keeps alive and untouched until we return.
    let context = unsafe { &mut *context.cast::<SyncContext<'_>>() };
    let f = &mut *context.f;
    context.result = catch_unwind(AssertUnwindSafe(|| {
        let guard = Unwinding::new(Site::Callback(
            "running synchronous work on an arcbox-vz dispatch queue",
        ));
        autoreleasepool(f);
        guard.done();
    }));
}

/// The addresses of every work function this crate hands to libdispatch (the queues'
/// async and sync trampolines, and the main queue's), so the simulator can count the
/// work items that are this crate's own (`tests/idle.rs`). Not API: simulator builds
/// only.
#[cfg(arcbox_vz_sim)]
pub fn work_functions() -> [extern "C" fn(*mut c_void); 3] {
    [
        async_trampoline,
        sync_trampoline,
        super::appkit::main_queue_trampoline,
    ]
}

impl Clone for Queue {
    fn clone(&self) -> Self {
        // SAFETY: we own a reference, so the queue is alive.
        unsafe { dispatch_retain(self.0.as_ptr()) };
        Self(self.0)
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: we own exactly one reference, given up here. Pending work keeps the
        // queue alive until it has run.
        unsafe { dispatch_release(self.0.as_ptr()) }
    }
}

/// A `dispatch_queue_t` argument (an Objective-C object on Apple, encoded `@`).
impl IntoArg for &Queue {
    type Raw = *mut Object;
    fn into_arg(self) -> *mut Object {
        self.0.as_ptr().cast()
    }
}

/// A value that may only be used on one serial queue: a virtual machine or one of its
/// runtime devices.
///
/// It is reached only through [`with`](Self::with) (a hop onto the queue) or
/// [`get_on_queue`](Self::get_on_queue) (already on it), and it is dropped on the
/// queue, in a work item of its own. That makes it `Send + Sync` even though the value is neither thread-safe
/// nor allowed off the queue.
#[derive(Debug)]
pub(crate) struct QueueBound<T: Send + 'static> {
    queue: Queue,
    value: ManuallyDrop<T>,
}

// SAFETY: the value is only touched on the serial queue, one work item at a time
// (`with`, `get_on_queue`, `Drop`), so sharing the wrapper shares no unsynchronized
// access. `T: Send` lets it be dropped on the queue's thread.
unsafe impl<T: Send + 'static> Sync for QueueBound<T> {}

/// Moves a borrow onto the queue for the duration of a synchronous hop.
struct OnQueue<'a, T>(&'a T);

impl<T> Clone for OnQueue<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for OnQueue<'_, T> {}

// SAFETY: only used by `QueueBound::with`, whose caller blocks until the queue has
// finished with the borrow; the serial queue runs one item at a time, so the value is
// never used from two threads at once.
unsafe impl<T> Send for OnQueue<'_, T> {}

impl<T: Send + 'static> QueueBound<T> {
    /// Binds `value` to `queue`. Call it on the queue, or before the value has been
    /// shared with anything that uses it there.
    pub(crate) fn new(queue: Queue, value: T) -> Self {
        Self {
            queue,
            value: ManuallyDrop::new(value),
        }
    }

    pub(crate) fn queue(&self) -> &Queue {
        &self.queue
    }

    /// Runs `f` with the value on the queue and returns its result (inline when
    /// already on the queue).
    pub(crate) fn with<R: Send>(&self, f: impl FnOnce(&T) -> R + Send) -> R {
        // Straight to the shared part of exec_sync: one closure per call site, not two.
        let value = OnQueue(&*self.value);
        let (mut f, mut result) = (Some(f), None);
        let (f_slot, result_slot) = (&mut f, &mut result);
        self.queue.exec_sync_dyn(&mut move || {
            let value = value; // the whole wrapper (Send), not its field
            if let Some(f) = f_slot.take() {
                *result_slot = Some(f(value.0));
            }
        });
        result.expect("dispatch_sync_f ran the work item")
    }

    /// The value, from code already running on the queue (completion handlers,
    /// delegate callbacks, async work items).
    ///
    /// # Panics
    ///
    /// When called off the queue: that is a bug in this crate, caught here before the
    /// framework would trap.
    #[track_caller]
    pub(crate) fn get_on_queue(&self) -> &T {
        assert!(
            self.queue.is_current(),
            "arcbox-vz bug: a queue-bound object was used off its queue"
        );
        &self.value
    }
}

/// The value is dropped in a work item of its own on the queue, always, even when the
/// last reference goes away on the queue itself: inline, its release could run in the
/// middle of a completion handler, a delegate method or another work item, ahead of
/// work already queued that still uses it.
impl<T: Send + 'static> Drop for QueueBound<T> {
    fn drop(&mut self) {
        // SAFETY: dropped once, here; the field is never used again.
        let value = unsafe { ManuallyDrop::take(&mut self.value) };
        self.queue.exec_async(move || drop(value));
    }
}
