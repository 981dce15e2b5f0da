//! Blocks, written by hand from clang's Block-ABI-Apple specification.
//!
//! The only blocks we make are one-shot completion handlers carrying a Rust
//! `FnOnce`. They follow the "copy once yourself" pattern:
//!
//! 1. build the block on the stack, with an empty copy helper, a dispose helper that
//!    drops the closure if it never ran, and a signature;
//! 2. `_Block_copy` it once: the runtime `memmove`s it to the heap, which moves the
//!    closure with it (the stack original holds it in `MaybeUninit`, so it is never
//!    dropped there);
//! 3. pass the heap block to the framework, which takes its own reference, and drop
//!    ours ([`RcBlock`]).
//!
//! Later copies of a heap block only bump its reference count and never call the copy
//! helper, so the closure has exactly one owner. It runs at most once (an atomic flag),
//! it is dropped exactly once (by `invoke` after running, or by `dispose` if it never
//! ran), and `dispose` runs on whichever thread does the last `_Block_release`.

use core::cell::UnsafeCell;
use core::ffi::{CStr, c_char, c_void};
use core::marker::PhantomData;
use core::mem::{MaybeUninit, size_of};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, Ordering};
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::encode::RawBlock;
use super::exception::{Site, Unwinding};
use super::runtime::{Id, IntoArg, Object, autoreleasepool};

#[cfg_attr(target_vendor = "apple", link(name = "System", kind = "dylib"))]
unsafe extern "C-unwind" {
    /// `void *_NSConcreteStackBlock[32]`: the isa of a block on the stack.
    static _NSConcreteStackBlock: [*const c_void; 32];
    fn _Block_copy(block: *const c_void) -> *mut c_void;
    fn _Block_release(block: *const c_void);
}

/// The block has copy and dispose helpers (`BLOCK_HAS_COPY_DISPOSE`).
const BLOCK_HAS_COPY_DISPOSE: i32 = 1 << 25;
/// The descriptor carries a signature (`BLOCK_HAS_SIGNATURE`).
const BLOCK_HAS_SIGNATURE: i32 = 1 << 30;

/// `struct Block_layout` without the captures: 32 bytes on 64-bit.
#[doc(alias = "Block_layout")]
#[repr(C)]
struct BlockHeader {
    /// `&_NSConcreteStackBlock` for a stack block; the runtime changes it on copy.
    isa: *const c_void,
    /// `BLOCK_*` flags; the runtime keeps the reference count here. Never read it.
    flags: i32,
    /// Zero.
    reserved: i32,
    /// `R (*)(block, args...)`: the C function the caller of the block calls.
    invoke: *const c_void,
    /// A descriptor in static memory (callers may assume it outlives the block).
    descriptor: *const c_void,
}

/// `Block_descriptor_1` + `_2` + `_3`, packed as the flags announce.
#[doc(alias = "Block_descriptor")]
#[repr(C)]
struct Descriptor {
    /// Zero.
    reserved: usize,
    /// The size of the whole block, captures included (`_Block_copy` mallocs this).
    size: usize,
    /// Called by `_Block_copy` after moving a stack block to the heap.
    copy: unsafe extern "C" fn(dst: *mut c_void, src: *const c_void),
    /// Called on the last `_Block_release`.
    dispose: unsafe extern "C" fn(block: *const c_void),
    /// The Objective-C type encoding of `invoke`.
    signature: *const c_char,
    /// Extended layout: none.
    layout: *const c_char,
}

/// The argument list of a completion handler.
pub(crate) trait Shape: 'static {
    /// What the Rust closure receives.
    type Args;
    /// The block signature (`BLOCK_HAS_SIGNATURE`), block pointer first.
    const SIGNATURE: &'static CStr;
    /// The `invoke` function for closure type `F`.
    fn invoke<F: FnOnce(Self::Args) + Send + 'static>() -> *const c_void;
}

/// `void (^)(NSError *)`: the closure gets the error (nil on success), retained.
#[derive(Debug)]
pub(crate) struct ErrorArg;

/// `void (^)(id, NSError *)`: the closure gets the object and the error, retained.
#[derive(Debug)]
pub(crate) struct ObjectErrorArgs;

impl Shape for ErrorArg {
    type Args = Option<Id>;
    const SIGNATURE: &'static CStr = c"v16@?0@8";
    fn invoke<F: FnOnce(Self::Args) + Send + 'static>() -> *const c_void {
        invoke_error::<F> as *const c_void
    }
}

impl Shape for ObjectErrorArgs {
    type Args = (Option<Id>, Option<Id>);
    const SIGNATURE: &'static CStr = c"v24@?0@8@16";
    fn invoke<F: FnOnce(Self::Args) + Send + 'static>() -> *const c_void {
        invoke_object_error::<F> as *const c_void
    }
}

/// A block carrying a one-shot closure.
#[repr(C)]
struct OnceBlock<S, F> {
    header: BlockHeader,
    taken: AtomicBool,
    closure: UnsafeCell<MaybeUninit<F>>,
    _shape: PhantomData<S>,
}

impl<S: Shape, F: FnOnce(S::Args) + Send + 'static> OnceBlock<S, F> {
    const DESCRIPTOR: Descriptor = Descriptor {
        reserved: 0,
        size: size_of::<Self>(),
        copy: copy_moves,
        dispose: Self::dispose,
        signature: S::SIGNATURE.as_ptr(),
        layout: ptr::null(),
    };

    /// The block, for the stack: `isa` is `&_NSConcreteStackBlock`.
    fn new(isa: *const c_void, f: F) -> Self {
        let descriptor: &'static Descriptor = &Self::DESCRIPTOR;
        Self {
            header: BlockHeader {
                isa,
                flags: BLOCK_HAS_COPY_DISPOSE | BLOCK_HAS_SIGNATURE,
                reserved: 0,
                invoke: S::invoke::<F>(),
                descriptor: ptr::from_ref(descriptor).cast(),
            },
            taken: AtomicBool::new(false),
            closure: UnsafeCell::new(MaybeUninit::new(f)),
            _shape: PhantomData,
        }
    }

    /// Takes the closure out, once. `None` if it was already taken.
    ///
    /// # Safety
    ///
    /// `block` is a live heap block of this type.
    unsafe fn take(block: *const c_void) -> Option<F> {
        // SAFETY: guaranteed by the caller.
        let taken = unsafe { Self::taken(block) };
        // ORDERING: AcqRel makes the swap a single point of decision between racing
        // invokers; the closure's bytes were published to this thread by whatever
        // handed it the block pointer (a queue or a thread spawn), which synchronizes.
        if taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: we won the swap, so the closure is initialized and nobody else reads
        // it; dispose will see `taken` and leave it alone. The block is live (caller).
        Some(unsafe { Self::closure(block).read().assume_init() })
    }

    /// The `taken` flag of the block at `block`.
    ///
    /// The block is only ever reached field by field through raw pointers: a
    /// reference to the whole block would cover the header's `flags`, which the
    /// blocks runtime updates atomically from other threads (the reference count), and
    /// a Rust reference asserts that nothing else writes the bytes it covers.
    ///
    /// # Safety
    ///
    /// `block` points to a live block of this type, which outlives `'a`.
    unsafe fn taken<'a>(block: *const c_void) -> &'a AtomicBool {
        let block = block.cast::<Self>();
        // The place `(*block).taken` is a projection through the raw pointer: no
        // reference to the whole block (whose `flags` the runtime mutates) is made.
        // SAFETY: the field is in bounds of the live block (caller), and the reference
        // covers the AtomicBool alone, which is only ever accessed atomically.
        unsafe { &(*block).taken }
    }

    /// A pointer to the closure slot of the block at `block`, without a reference to
    /// the block (see [`taken`](Self::taken)).
    ///
    /// # Safety
    ///
    /// `block` points to a live block of this type.
    unsafe fn closure(block: *const c_void) -> *mut MaybeUninit<F> {
        let block = block.cast::<Self>();
        // SAFETY: a pointer to a field in bounds of the live block (caller); the
        // UnsafeCell makes writing through it allowed.
        UnsafeCell::raw_get(unsafe { &raw const (*block).closure })
    }

    /// The dispose helper: drops the closure if it never ran.
    unsafe extern "C" fn dispose(block: *const c_void) {
        // SAFETY: the runtime calls dispose once, on the last release of a live block.
        let taken = unsafe { Self::taken(block) };
        // ORDERING: Acquire pairs with the invoker's AcqRel swap; the last release also
        // synchronizes with every earlier one through the runtime's reference count.
        if !taken.load(Ordering::Acquire) {
            // SAFETY: not taken, so still initialized, and this is the final owner of
            // the live block.
            let closure = unsafe { Self::closure(block).read().assume_init() };
            // Dropping captured state may run arbitrary code; never unwind into the
            // blocks runtime.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(closure)));
        }
    }
}

/// The copy helper: nothing to do, because `_Block_copy` moved the closure with the
/// rest of the block and the stack original never drops it.
unsafe extern "C" fn copy_moves(_dst: *mut c_void, _src: *const c_void) {}

/// Runs a closure taken from a block. A panic is caught: it never unwinds into the
/// caller of the block. The panic hook has already reported it, and the closure's
/// captured state was dropped while unwinding, so a waiting future sees cancellation.
fn run_caught(f: impl FnOnce()) {
    // Only this shim is compiled once per closure type; the rest is shared.
    let mut f = Some(f);
    run_caught_dyn(&mut || {
        if let Some(f) = f.take() {
            f();
        }
    });
}

/// The non-generic part of [`run_caught`].
fn run_caught_dyn(f: &mut dyn FnMut()) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let guard = Unwinding::new(Site::Callback("running an arcbox-vz completion handler"));
        autoreleasepool(f);
        guard.done();
    }));
}

unsafe extern "C" fn invoke_error<F: FnOnce(Option<Id>) + Send + 'static>(
    block: *mut c_void,
    error: *mut Object,
) {
    // SAFETY: the caller of a block passes the block itself, alive for the call.
    let Some(f) = (unsafe { OnceBlock::<ErrorArg, F>::take(block) }) else {
        return;
    };
    // SAFETY: the argument is nil or an object alive for the duration of the call.
    let error = unsafe { Id::retain(error) };
    run_caught(move || f(error));
}

unsafe extern "C" fn invoke_object_error<F: FnOnce((Option<Id>, Option<Id>)) + Send + 'static>(
    block: *mut c_void,
    object: *mut Object,
    error: *mut Object,
) {
    // SAFETY: as in invoke_error.
    let Some(f) = (unsafe { OnceBlock::<ObjectErrorArgs, F>::take(block) }) else {
        return;
    };
    // SAFETY: both are nil or objects alive for the duration of the call.
    let args = unsafe { (Id::retain(object), Id::retain(error)) };
    run_caught(move || f(args));
}

/// An owned reference to a heap block; `Drop` calls `_Block_release`.
#[derive(Debug)]
pub(crate) struct RcBlock(NonNull<c_void>);

// SAFETY: the only blocks we make carry `Send` closures, and the blocks runtime's
// reference counting is thread-safe.
unsafe impl Send for RcBlock {}

impl RcBlock {
    /// A one-shot completion handler of shape `S` running `f` at most once.
    pub(crate) fn once<S: Shape, F: FnOnce(S::Args) + Send + 'static>(f: F) -> Self {
        let stack = OnceBlock::<S, F>::new((&raw const _NSConcreteStackBlock).cast(), f);
        // _Block_copy moves the block, closure included, to the heap; the stack
        // original keeps the closure in MaybeUninit, so it is never dropped twice, and
        // nothing reads it again.
        // SAFETY: `stack` is a complete block whose static descriptor has its real size.
        let heap = unsafe { _Block_copy((&raw const stack).cast()) };
        Self(NonNull::new(heap).expect("_Block_copy failed: out of memory"))
    }

    /// The block pointer, for the simulator tests' C callers.
    #[cfg(all(test, arcbox_vz_sim))]
    pub(crate) fn as_ptr(&self) -> *mut c_void {
        self.0.as_ptr()
    }
}

#[cfg(arcbox_vz_bench)]
impl RcBlock {
    /// A new reference (`_Block_copy`) for a C callee that releases it.
    pub(crate) fn copied_for_c(&self) -> *mut c_void {
        // SAFETY: copying a live heap block only bumps its reference count.
        unsafe { _Block_copy(self.0.as_ptr()) }
    }
}

impl Drop for RcBlock {
    fn drop(&mut self) {
        // SAFETY: we own one reference to a heap block.
        unsafe { _Block_release(self.0.as_ptr()) }
    }
}

impl IntoArg for &RcBlock {
    type Raw = RawBlock;
    fn into_arg(self) -> RawBlock {
        RawBlock(self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A closure that counts how often its captured state is dropped.
    fn counted(drops: &Arc<AtomicUsize>) -> impl FnOnce(Option<Id>) + Send + 'static {
        struct Counted(Arc<AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                // ORDERING: a test counter, read after the thread that drops is joined.
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let state = Counted(Arc::clone(drops));
        move |_| drop(state)
    }

    struct SendPtr(*mut i32);
    // SAFETY: the pointer is only used for atomic operations.
    unsafe impl Send for SendPtr {}

    /// Runs `body` with a heap block (allocated by Rust, as the blocks runtime would
    /// `malloc` it) while another thread updates its `flags` word atomically, as the
    /// runtime's reference counting does (`_Block_copy`/`_Block_release` on other
    /// threads). Under Miri, any reference that covers the header while that happens
    /// is reported.
    fn with_busy_refcount(drops: &Arc<AtomicUsize>, body: impl FnOnce(*const c_void)) {
        type Block = OnceBlock<ErrorArg, Box<dyn FnOnce(Option<Id>) + Send>>;
        let f: Box<dyn FnOnce(Option<Id>) + Send> = Box::new(counted(drops));
        let heap = Box::into_raw(Box::new(Block::new(ptr::null(), f)));
        // SAFETY: a field of the live allocation, reached without a reference.
        let flags = SendPtr(unsafe { &raw mut (*heap).header.flags });
        let refcount = std::thread::spawn(move || {
            let flags = flags;
            for _ in 0..50 {
                // SAFETY: `flags` is aligned and stays allocated until the join below;
                // every access to it while this thread runs is atomic.
                let flags = unsafe { core::sync::atomic::AtomicI32::from_ptr(flags.0) };
                // ORDERING: Relaxed, like a reference-count increment.
                flags.fetch_add(2, Ordering::Relaxed);
                std::thread::yield_now();
            }
        });
        for _ in 0..20 {
            std::thread::yield_now();
        }
        body(heap.cast_const().cast());
        refcount.join().unwrap();
        // SAFETY: allocated above; the closure was moved out or dropped by `body`, and
        // OnceBlock never drops it itself.
        drop(unsafe { Box::from_raw(heap) });
    }

    #[test]
    fn take_runs_once_without_a_reference_to_the_header() {
        type Block = OnceBlock<ErrorArg, Box<dyn FnOnce(Option<Id>) + Send>>;
        let drops = Arc::new(AtomicUsize::new(0));
        with_busy_refcount(&drops, |block| {
            // SAFETY: a live block of this type.
            let f = unsafe { Block::take(block) }.expect("the first take gets the closure");
            // SAFETY: as above.
            assert!(unsafe { Block::take(block) }.is_none());
            // ORDERING: test counter.
            assert_eq!(drops.load(Ordering::Relaxed), 0);
            drop(f);
            // SAFETY: the last release of a live block; the closure is taken.
            unsafe { Block::dispose(block) };
        });
        // ORDERING: test counter, after the join.
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn dispose_drops_a_closure_that_never_ran() {
        type Block = OnceBlock<ErrorArg, Box<dyn FnOnce(Option<Id>) + Send>>;
        let drops = Arc::new(AtomicUsize::new(0));
        with_busy_refcount(&drops, |block| {
            // SAFETY: the last release of a live block whose closure never ran.
            unsafe { Block::dispose(block) };
        });
        // ORDERING: test counter, after the join.
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn layout_matches_the_abi() {
        use core::mem::offset_of;
        assert_eq!(size_of::<BlockHeader>(), 32);
        assert_eq!(
            [
                offset_of!(BlockHeader, isa),
                offset_of!(BlockHeader, flags),
                offset_of!(BlockHeader, reserved),
                offset_of!(BlockHeader, invoke),
                offset_of!(BlockHeader, descriptor),
            ],
            [0, 8, 12, 16, 24]
        );
        assert_eq!(size_of::<Descriptor>(), 48);
        assert_eq!(
            [
                offset_of!(Descriptor, reserved),
                offset_of!(Descriptor, size),
                offset_of!(Descriptor, copy),
                offset_of!(Descriptor, dispose),
                offset_of!(Descriptor, signature),
                offset_of!(Descriptor, layout),
            ],
            [0, 8, 16, 24, 32, 40]
        );
        type Block = OnceBlock<ErrorArg, Box<dyn FnOnce(Option<Id>) + Send>>;
        // The closure follows the header without a gap the runtime could misread.
        assert_eq!(core::mem::offset_of!(Block, taken), 32);
        assert_eq!(
            size_of::<Block>(),
            core::mem::offset_of!(Block, closure) + size_of::<Box<dyn FnOnce(Option<Id>) + Send>>()
        );
    }
}
