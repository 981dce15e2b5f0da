//! A window onto a running virtual machine: an AppKit window whose content is a
//! `VZVirtualMachineView`, with the application loop run on the main thread.
//!
//! ```no_run
//! # fn demo(vm: arcbox_vz::VirtualMachine) -> Result<(), arcbox_vz::VZError> {
//! // In `main`, on the main thread, with `vm` already running:
//! let outcome = arcbox_vz::gui::run(&vm, &arcbox_vz::gui::WindowOptions::default())?;
//! println!("{outcome:?}");
//! # Ok(()) }
//! ```
//!
//! # Which queue the virtual machine uses
//!
//! Every [`VirtualMachine`] of this crate lives on its own private serial queue, and
//! the window shows it from the main thread; there is no way to make one on the main
//! queue, so the other pattern cannot be mixed in by mistake. Why: Apple documents no
//! requirement that a viewed virtual machine use the main queue (its samples happen
//! to), and Code-Hex/vz ships exactly this pattern (a private queue, the view set on
//! the main thread). A main-queue machine would also turn every other call of this
//! crate into a hop onto the main thread, which is blocked in the application loop
//! while the window is open: the futures would only make progress from inside the
//! loop, and a blocking call from the main thread would deadlock.
//!
//! # Closing
//!
//! The call returns when the guest stops (the window is then closed) or when the user
//! closes the window. Closing asks the guest to stop (like the power button), waits
//! [`WindowOptions::stop_timeout`], then forces the stop. `VZVirtualMachineView`
//! needs macOS 12, which also has the force stop; on macOS 11 [`run`] returns
//! [`VZError::Unsupported`] and opens nothing.
//!
//! The application object is `NSApplication`'s shared one, left in place after
//! [`run`] returns (AppKit has no way to tear it down); `terminate:` is never used,
//! so Rust destructors run as usual.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crate::configuration::class_since;
use crate::error::VZError;
use crate::ffi::appkit::{main_queue_async, window_delegate};
use crate::ffi::encode::{CGPoint, CGRect, CGSize};
use crate::ffi::foundation::{check_string, ns_string};
use crate::ffi::runtime::{Allocated, ClassRef, Id, class, in_pool, objc_methods, sel};
use crate::vm::{StopReason, VirtualMachine, VirtualMachineState};

objc_methods! {
    fn shared_application(class: ClassRef) -> Option<Id> = "sharedApplication";
    fn set_activation_policy(app: &Id, policy: isize) -> bool = "setActivationPolicy:";
    fn activate_ignoring_other_apps(app: &Id, flag: bool) = "activateIgnoringOtherApps:";
    fn app_run(app: &Id) = "run";
    fn app_stop(app: &Id, sender: Option<&Id>) = "stop:";
    fn post_event(app: &Id, event: &Id, at_start: bool) = "postEvent:atStart:";
    #[allow(clippy::too_many_arguments)] // the selector's own nine
    fn other_event(
        class: ClassRef,
        kind: usize,
        location: CGPoint,
        modifier_flags: usize,
        timestamp: f64,
        window_number: isize,
        context: Option<&Id>,
        subtype: i16,
        data1: isize,
        data2: isize,
    ) -> Option<Id> =
        "otherEventWithType:location:modifierFlags:timestamp:windowNumber:context:subtype:data1:data2:";
    fn window_init(
        window: Allocated,
        rect: CGRect,
        style: usize,
        backing: usize,
        defer: bool,
    ) -> Option<Id> = "initWithContentRect:styleMask:backing:defer:";
    fn set_released_when_closed(window: &Id, flag: bool) = "setReleasedWhenClosed:";
    fn set_content_view(window: &Id, view: Option<&Id>) = "setContentView:";
    fn set_title(window: &Id, title: &Id) = "setTitle:";
    fn center(window: &Id) = "center";
    fn set_delegate(object: &Id, delegate: Option<&Id>) = "setDelegate:";
    fn make_key_and_order_front(window: &Id, sender: Option<&Id>) = "makeKeyAndOrderFront:";
    fn close(window: &Id) = "close";
    fn view_init(view: Allocated) -> Option<Id> = "init";
    fn set_virtual_machine(view: &Id, vm: Option<&Id>) = "setVirtualMachine:";
    fn set_captures_system_keys(view: &Id, flag: bool) = "setCapturesSystemKeys:";
    fn set_automatically_reconfigures_display(view: &Id, flag: bool) =
        "setAutomaticallyReconfiguresDisplay:";
}

/// `NSApplicationActivationPolicyRegular`: a Dock icon, a menu bar and key focus.
const ACTIVATION_POLICY_REGULAR: isize = 0;
/// `NSWindowStyleMask` Titled | Closable | Miniaturizable | Resizable.
const STYLE_MASK: usize = 1 | 2 | 4 | 8;
/// `NSBackingStoreBuffered`.
const BACKING_BUFFERED: usize = 2;
/// `NSEventTypeApplicationDefined`, for the event that wakes the loop after `stop:`.
const EVENT_APPLICATION_DEFINED: usize = 15;

/// How the window looks and behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowOptions {
    /// The size of the window's content, in points. Default 1024 x 768.
    pub width: f64,
    /// See [`width`](Self::width).
    pub height: f64,
    /// The window title. Default `"Virtual Machine"`.
    pub title: String,
    /// Send system shortcuts such as Cmd-Tab to the guest
    /// (`capturesSystemKeys`). Default false.
    pub captures_system_keys: bool,
    /// Resize the guest's display with the window
    /// (`automaticallyReconfiguresDisplay`, macOS 14; the guest must support it).
    /// Default false; true before macOS 14 is [`VZError::Unsupported`].
    pub automatically_reconfigures_display: bool,
    /// How long a closed window waits for the guest to stop before forcing it.
    /// Default 10 s.
    pub stop_timeout: Duration,
}

impl Default for WindowOptions {
    fn default() -> Self {
        Self {
            width: 1024.0,
            height: 768.0,
            title: "Virtual Machine".to_string(),
            captures_system_keys: false,
            automatically_reconfigures_display: false,
            stop_timeout: Duration::from_secs(10),
        }
    }
}

/// Why [`run`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WindowOutcome {
    /// The virtual machine stopped while the window was open; the window was closed.
    VmStopped(StopReason),
    /// The user closed the window and the virtual machine then stopped.
    WindowClosed {
        /// Why it stopped.
        reason: StopReason,
        /// Whether the guest ignored the stop request for
        /// [`WindowOptions::stop_timeout`] and was force-stopped.
        forced: bool,
    },
}

/// Whether the calling thread is the process's main thread (the one running `main`),
/// the only one [`run`] accepts.
pub fn is_main_thread() -> bool {
    crate::ffi::appkit::is_main_thread()
}

/// Opens a window showing the running `vm` and runs the application loop on this
/// thread (which must be the main thread) until the window closes or the virtual
/// machine stops. See the [module documentation](self).
///
/// # Errors
///
/// - [`VZError::NotMainThread`] when called from any thread but the process's main
///   thread: AppKit is main-thread only. Nothing is sent to AppKit.
/// - [`VZError::WindowAlreadyOpen`] when called while another `run` is running (from
///   work its application loop executes, such as main-queue work or a delegate):
///   the loop does not nest. Nothing is sent to AppKit.
/// - [`VZError::Unsupported`] before macOS 12 (`VZVirtualMachineView`), and when
///   [`WindowOptions::automatically_reconfigures_display`] is set before macOS 14.
/// - [`VZError::InvalidArgument`] for a size that is not finite and positive, or a
///   title with a NUL byte.
/// - [`VZError::InvalidState`] when `vm` is not running.
/// - After the window closed: the error of the force stop, if it failed.
///
/// # Panics
///
/// When AppKit returns nil for the application, the window or the view (out of
/// memory).
pub fn run(vm: &VirtualMachine, options: &WindowOptions) -> Result<WindowOutcome, VZError> {
    if !is_main_thread() {
        return Err(VZError::NotMainThread {
            operation: "open a virtual machine window",
        });
    }
    // Held until this call returns: a `run` from inside this one is refused.
    let _open = OpenWindow::enter()?;
    let view_class = class_since(
        class!("VZVirtualMachineView"),
        "virtual machine view",
        "12.0",
    )?;
    if options.automatically_reconfigures_display
        && !view_class.instances_respond_to(sel!("setAutomaticallyReconfiguresDisplay:"))
    {
        return Err(VZError::Unsupported {
            feature: "automatically reconfiguring the display",
            min_macos: "14.0",
        });
    }
    for (value, argument) in [
        (options.width, "window width"),
        (options.height, "window height"),
    ] {
        if !(value.is_finite() && value > 0.0) {
            return Err(VZError::InvalidArgument {
                argument,
                reason: format!("{value} is not a positive, finite number of points"),
            });
        }
    }
    check_string(&options.title, "window title")?;
    let state = vm.state();
    if state != VirtualMachineState::Running {
        return Err(VZError::InvalidState {
            operation: "open a window onto",
            state,
        });
    }

    let ended = in_pool!(show_and_run(vm, options, view_class))?;
    if ended == Ended::VmStopped {
        return Ok(WindowOutcome::VmStopped(block_on(vm.wait_until_stopped())));
    }
    // The window was closed (or the loop was left by someone else, and we closed it):
    // ask the guest, then force.
    let _ = vm.request_stop(); // refused only when no longer running
    let deadline = Instant::now() + options.stop_timeout;
    if let Some(reason) = wait_until(vm.wait_until_stopped(), deadline) {
        return Ok(WindowOutcome::WindowClosed {
            reason,
            forced: false,
        });
    }
    match block_on(vm.stop()) {
        Ok(()) => {}
        // The guest stopped on its own in the meantime.
        Err(VZError::InvalidState { .. }) => {}
        Err(e) => return Err(e),
    }
    let reason = block_on(vm.wait_until_stopped());
    let forced = reason == StopReason::HostStopped;
    Ok(WindowOutcome::WindowClosed { reason, forced })
}

/// Whether a [`run`] is in progress. Only the main thread runs one, so only the main
/// thread reads or writes this; an atomic keeps it a plain `static`.
static WINDOW_OPEN: AtomicBool = AtomicBool::new(false);

/// A [`run`] in progress; dropping it (also while unwinding) ends it.
struct OpenWindow;

impl OpenWindow {
    /// Marks a `run` as in progress, or refuses a nested one.
    fn enter() -> Result<Self, VZError> {
        if WINDOW_OPEN.swap(true, Ordering::SeqCst) {
            return Err(VZError::WindowAlreadyOpen);
        }
        Ok(Self)
    }
}

impl Drop for OpenWindow {
    fn drop(&mut self) {
        WINDOW_OPEN.store(false, Ordering::SeqCst);
    }
}

/// Why the application loop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    /// The watcher saw the virtual machine stop.
    VmStopped,
    /// The user closed the window, or something else left the loop.
    Closed,
}

/// Builds the window (flows.md (b) order) and runs the loop until it ends; the window
/// is closed on return. On the main thread, in an autorelease pool.
fn show_and_run(
    vm: &VirtualMachine,
    options: &WindowOptions,
    view_class: ClassRef,
) -> Result<Ended, VZError> {
    let app_class = class!("NSApplication")?;
    let window_class = class!("NSWindow")?;
    let event_class = class!("NSEvent")?;
    let app = shared_application(app_class).expect("+[NSApplication sharedApplication]");
    set_activation_policy(&app, ACTIVATION_POLICY_REGULAR);

    let rect = CGRect {
        origin: CGPoint { x: 0.0, y: 0.0 },
        size: CGSize {
            width: options.width,
            height: options.height,
        },
    };
    let window = window_init(
        window_class.alloc(),
        rect,
        STYLE_MASK,
        BACKING_BUFFERED,
        false,
    )
    .expect("-[NSWindow initWithContentRect:styleMask:backing:defer:]");
    // We own the +1; a window made in code would otherwise release itself on close.
    set_released_when_closed(&window, false);
    let view = view_init(view_class.alloc()).expect("-[VZVirtualMachineView init]");
    // The view retains the VZVirtualMachine; it is set here on the main thread while
    // the machine lives on its own queue (see the module documentation).
    let machine = vm.with_vm(Id::clone);
    set_virtual_machine(&view, Some(&machine));
    set_captures_system_keys(&view, options.captures_system_keys);
    if options.automatically_reconfigures_display {
        set_automatically_reconfigures_display(&view, true);
    }
    set_content_view(&window, Some(&view));
    set_title(&window, &ns_string(&options.title));
    center(&window);

    // Leaves the loop: from the window delegate when the window closes, or from a
    // main-queue work item when the virtual machine stops; so only on the main thread.
    let stopper = Arc::new(Mutex::new(Stopper {
        app: app.clone(),
        event_class,
        active: true,
    }));
    // The virtual machine stopping (seen on a watcher thread) leaves the loop too; a
    // stop seen before `run` is queued and ends the loop as soon as it starts. Spawned
    // before the window is shown, so a failure leaves nothing on screen.
    let cancel = Arc::new(AtomicBool::new(false));
    let vm_stopped = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (vm, cancel, stopper) = (vm.clone(), Arc::clone(&cancel), Arc::clone(&stopper));
        let vm_stopped = Arc::clone(&vm_stopped);
        std::thread::Builder::new()
            .name("arcbox-vz-window".into())
            .spawn(move || {
                if wait_unless(vm.wait_until_stopped(), &cancel).is_some() {
                    vm_stopped.store(true, Ordering::SeqCst);
                    main_queue_async(Box::new(move || lock(&stopper).stop()));
                }
            })
            .map_err(VZError::Io)?
    };

    let stopper2 = Arc::clone(&stopper);
    let delegate = window_delegate(Box::new(move || lock(&stopper2).stop()));
    set_delegate(&window, Some(&delegate));
    make_key_and_order_front(&window, None);
    // Activation works once the application has finished launching, which `run` does
    // first: so from the main queue, which `run` services (Code-Hex/vz activates from
    // applicationDidFinishLaunching:, the same moment).
    let app2 = app.clone();
    main_queue_async(Box::new(move || activate_ignoring_other_apps(&app2, true)));

    app_run(&app);
    // A stop still queued on the main queue (the guest stopping just as the window
    // closed) must not end a later window's loop.
    lock(&stopper).active = false;

    cancel.store(true, Ordering::SeqCst);
    watcher.thread().unpark();
    let _ = watcher.join();
    // Uninstall the delegate before closing, so a close by us is not the user's.
    set_delegate(&window, None);
    close(&window);
    set_virtual_machine(&view, None);
    set_content_view(&window, None);
    drop(machine);
    Ok(if vm_stopped.load(Ordering::SeqCst) {
        Ended::VmStopped
    } else {
        Ended::Closed
    })
}

/// Leaves `-[NSApplication run]`: `stop:` takes effect after the next event, so post
/// an application-defined one.
struct Stopper {
    app: Id,
    event_class: ClassRef,
    /// False once this window's loop has returned.
    active: bool,
}

impl Stopper {
    /// On the main thread only.
    fn stop(&self) {
        debug_assert!(is_main_thread());
        if !self.active {
            return;
        }
        let app = &self.app;
        app_stop(app, None);
        let event = other_event(
            self.event_class,
            EVENT_APPLICATION_DEFINED,
            CGPoint { x: 0.0, y: 0.0 },
            0,
            0.0,
            0,
            None,
            0,
            0,
            0,
        );
        if let Some(event) = event {
            post_event(app, &event, true);
        }
    }
}

fn lock(stopper: &Mutex<Stopper>) -> MutexGuard<'_, Stopper> {
    // No invariant spans a panic: a poisoned lock is consistent.
    stopper.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Wakes a parked thread.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Drives `future` on this thread until it is ready.
fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        std::thread::park();
    }
}

/// Drives `future` on this thread until it is ready, or `None` once `deadline` passes.
fn wait_until<F: Future>(future: F, deadline: Instant) -> Option<F::Output> {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return Some(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::park_timeout(deadline - now);
    }
}

/// Drives `future` on this thread until it is ready, or `cancel` is set (and this
/// thread unparked).
fn wait_unless<F: Future>(future: F, cancel: &AtomicBool) -> Option<F::Output> {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if cancel.load(Ordering::SeqCst) {
            return None;
        }
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return Some(value);
        }
        std::thread::park();
    }
}
