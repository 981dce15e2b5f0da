//! The running virtual machine: `VZVirtualMachine`, its lifecycle, why it stopped, and
//! its runtime devices.
//!
//! # Threading
//!
//! Each [`VirtualMachine`] owns a private serial dispatch queue, and every call into
//! the framework (getters, setters, lifecycle, device control, the final release)
//! runs on that queue; Virtualization.framework traps on any other thread. The
//! handle itself is `Send + Sync` and cheap to clone, and every future it returns is
//! `Send` and works with any executor: completion handlers run on the VM queue and
//! wake the future through the crate's own waker bridge.
//!
//! # Cancellation
//!
//! Lifecycle futures are cancel-safe. Dropping one before it is first polled does
//! nothing. Dropping it after it was polled lets the operation finish on the VM queue;
//! its result is discarded and nothing leaks. The framework may never call a
//! completion handler (`stopWithCompletionHandler:` is known to hang on some guests),
//! so wrap lifecycle calls in your runtime's timeout when that matters.

use std::fmt;

/// `VZVirtualMachineState`: where a virtual machine is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VirtualMachineState {
    /// `VZVirtualMachineStateStopped` (0): not running; can start.
    #[doc(alias = "VZVirtualMachineStateStopped")]
    Stopped,
    /// `VZVirtualMachineStateRunning` (1).
    #[doc(alias = "VZVirtualMachineStateRunning")]
    Running,
    /// `VZVirtualMachineStatePaused` (2).
    #[doc(alias = "VZVirtualMachineStatePaused")]
    Paused,
    /// `VZVirtualMachineStateError` (3): stopped because of an error; can start again.
    #[doc(alias = "VZVirtualMachineStateError")]
    Error,
    /// `VZVirtualMachineStateStarting` (4).
    #[doc(alias = "VZVirtualMachineStateStarting")]
    Starting,
    /// `VZVirtualMachineStatePausing` (5).
    #[doc(alias = "VZVirtualMachineStatePausing")]
    Pausing,
    /// `VZVirtualMachineStateResuming` (6).
    #[doc(alias = "VZVirtualMachineStateResuming")]
    Resuming,
    /// `VZVirtualMachineStateStopping` (7, macOS 12).
    #[doc(alias = "VZVirtualMachineStateStopping")]
    Stopping,
    /// `VZVirtualMachineStateSaving` (8, macOS 14).
    #[doc(alias = "VZVirtualMachineStateSaving")]
    Saving,
    /// `VZVirtualMachineStateRestoring` (9, macOS 14).
    #[doc(alias = "VZVirtualMachineStateRestoring")]
    Restoring,
    /// A value this crate does not know (from a newer macOS).
    Unknown(isize),
}

impl VirtualMachineState {
    pub(crate) fn from_raw(raw: isize) -> Self {
        match raw {
            0 => Self::Stopped,
            1 => Self::Running,
            2 => Self::Paused,
            3 => Self::Error,
            4 => Self::Starting,
            5 => Self::Pausing,
            6 => Self::Resuming,
            7 => Self::Stopping,
            8 => Self::Saving,
            9 => Self::Restoring,
            other => Self::Unknown(other),
        }
    }
}

impl fmt::Display for VirtualMachineState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Stopped => "stopped",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Error => "stopped with an error",
            Self::Starting => "starting",
            Self::Pausing => "pausing",
            Self::Resuming => "resuming",
            Self::Stopping => "stopping",
            Self::Saving => "saving its state",
            Self::Restoring => "restoring its state",
            Self::Unknown(raw) => return write!(f, "in unknown state {raw}"),
        };
        f.write_str(name)
    }
}

use std::collections::VecDeque;
use std::future::poll_fn;
#[cfg(target_arch = "aarch64")]
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};

use crate::bridge::{self, Completer, Completion};
use crate::configuration::base_class;
use crate::error::{FrameworkError, VZError};
use crate::ffi::block::{ErrorArg, RcBlock};
use crate::ffi::dispatch::{Queue, QueueBound};
use crate::ffi::foundation::{self, with_error};
use crate::ffi::runtime::{
    Allocated, ClassRef, Id, NullPtr, autoreleasepool, class, objc_methods, sel,
};
use crate::socket::{ListenedPorts, VirtioSocketDevice};

objc_methods! {
    fn vm_init(vm: Allocated, config: &Id, queue: &Queue) -> Option<Id> =
        "initWithConfiguration:queue:";
    fn vm_is_supported(class: ClassRef) -> bool = "isSupported";
    fn config_copy(config: &Id) -> Option<Id> = "copy";
    fn state_raw(vm: &Id) -> isize = "state";
    fn can_start_raw(vm: &Id) -> bool = "canStart";
    fn can_stop_raw(vm: &Id) -> bool = "canStop";
    fn can_pause_raw(vm: &Id) -> bool = "canPause";
    fn can_resume_raw(vm: &Id) -> bool = "canResume";
    fn can_request_stop_raw(vm: &Id) -> bool = "canRequestStop";
    fn set_delegate_raw(vm: &Id, delegate: Option<&Id>) = "setDelegate:";
    fn start_raw(vm: &Id, handler: &RcBlock) = "startWithCompletionHandler:";
    fn start_with_options_raw(vm: &Id, options: &Id, handler: &RcBlock) =
        "startWithOptions:completionHandler:";
    fn stop_raw(vm: &Id, handler: &RcBlock) = "stopWithCompletionHandler:";
    fn pause_raw(vm: &Id, handler: &RcBlock) = "pauseWithCompletionHandler:";
    fn resume_raw(vm: &Id, handler: &RcBlock) = "resumeWithCompletionHandler:";
    fn request_stop_raw(vm: &Id, error: &mut foundation::ErrorSlot) -> bool =
        "requestStopWithError:";
    pub(crate) fn socket_devices_raw(vm: &Id) -> Option<Id> = "socketDevices";
    pub(crate) fn memory_balloon_devices_raw(vm: &Id) -> Option<Id> = "memoryBalloonDevices";
    pub(crate) fn directory_sharing_devices_raw(vm: &Id) -> Option<Id> = "directorySharingDevices";
    pub(crate) fn network_devices_raw(vm: &Id) -> Option<Id> = "networkDevices";
    pub(crate) fn console_devices_raw(vm: &Id) -> Option<Id> = "consoleDevices";
    pub(crate) fn usb_controllers_raw(vm: &Id) -> Option<Id> = "usbControllers";
    fn add_observer_raw(object: &Id, observer: &Id, key_path: &Id, options: usize, context: NullPtr) =
        "addObserver:forKeyPath:options:context:";
    fn remove_observer_raw(object: &Id, observer: &Id, key_path: &Id) =
        "removeObserver:forKeyPath:";
    fn start_options_init(options: Allocated) -> Option<Id> = "init";
}

#[cfg(target_arch = "aarch64")]
objc_methods! {
    fn save_raw(vm: &Id, url: &Id, handler: &RcBlock) = "saveMachineStateToURL:completionHandler:";
    fn restore_raw(vm: &Id, url: &Id, handler: &RcBlock) =
        "restoreMachineStateFromURL:completionHandler:";
    fn validate_save_restore_raw(config: &Id, error: &mut foundation::ErrorSlot) -> bool =
        "validateSaveRestoreSupportWithError:";
    fn set_start_up_from_recovery_raw(options: &Id, recovery: bool) =
        "setStartUpFromMacOSRecovery:";
}

/// `NSKeyValueObservingOptionNew`.
const KVO_OPTION_NEW: usize = 1;

/// Whether this Mac can run virtual machines (`+[VZVirtualMachine isSupported]`):
/// false, for example, inside a virtual machine without nested virtualization.
pub fn is_supported() -> bool {
    autoreleasepool(|| vm_is_supported(base_class(class!("VZVirtualMachine"))))
}

fn state_of(vm: &Id) -> VirtualMachineState {
    VirtualMachineState::from_raw(state_raw(vm))
}

/// Something that happened to a virtual machine, from [`VirtualMachine::events`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VmEvent {
    /// The `state` property changed (observed with key-value observing).
    StateChanged(VirtualMachineState),
    /// The guest powered itself off (`guestDidStopVirtualMachine:`).
    GuestStopped,
    /// The virtual machine stopped because of an error
    /// (`virtualMachine:didStopWithError:`).
    StoppedWithError(FrameworkError),
    /// A network device lost its attachment
    /// (`virtualMachine:networkDevice:attachmentWasDisconnectedWithError:`); the
    /// device's attachment is now nil.
    NetworkAttachmentDisconnected {
        /// The device's index in [`VirtualMachine::network_devices`] (the order of the
        /// configuration).
        device_index: usize,
        /// Why it was disconnected.
        error: FrameworkError,
    },
}

/// Why a virtual machine stopped, from [`VirtualMachine::wait_until_stopped`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The guest shut itself down (after [`VirtualMachine::request_stop`], or on its
    /// own).
    GuestStopped,
    /// The host stopped it with [`VirtualMachine::stop`] (like pulling the plug).
    HostStopped,
    /// The virtual machine stopped because of an error.
    Error(FrameworkError),
    /// The last start failed with this error.
    StartFailed(FrameworkError),
    /// It has not run since it was created.
    NeverStarted,
}

/// Event subscribers, the last stop reason and stop waiters of one virtual machine.
/// Written on the VM queue by the delegate and by completion handlers.
#[derive(Debug, Default)]
pub(crate) struct EventHub {
    state: Mutex<HubState>,
}

#[derive(Debug, Default)]
struct HubState {
    subscribers: Vec<Weak<Subscription>>,
    last_stop: Option<StopReason>,
    stop_waiters: Vec<Completer<StopReason>>,
    /// A teardown waiting for the virtual machine to leave a transitional state.
    parked_teardown: Option<Parts>,
}

impl EventHub {
    fn lock(&self) -> MutexGuard<'_, HubState> {
        // Only plain data is updated under this lock; a poisoned one is consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Delivers an event to every live subscriber.
    pub(crate) fn emit(&self, event: VmEvent) {
        let subscribers: Vec<Arc<Subscription>> = {
            let mut state = self.lock();
            state.subscribers.retain(|s| s.strong_count() > 0);
            state.subscribers.iter().filter_map(Weak::upgrade).collect()
        };
        for subscription in subscribers {
            subscription.push(event.clone());
        }
    }

    /// Records why the virtual machine stopped and wakes every `wait_until_stopped`.
    pub(crate) fn record_stop(&self, reason: StopReason) {
        let waiters = {
            let mut state = self.lock();
            state.last_stop = Some(reason.clone());
            std::mem::take(&mut state.stop_waiters)
        };
        for waiter in waiters {
            let _ = waiter.complete(reason.clone());
        }
    }

    fn reset_stop(&self) {
        self.lock().last_stop = None;
    }

    fn subscribe(&self) -> VmEvents {
        let subscription = Arc::new(Subscription::default());
        self.lock().subscribers.push(Arc::downgrade(&subscription));
        VmEvents { subscription }
    }

    /// Ends every event stream: the virtual machine is gone.
    fn close(&self) {
        let subscribers: Vec<Weak<Subscription>> = std::mem::take(&mut self.lock().subscribers);
        for subscription in subscribers.iter().filter_map(Weak::upgrade) {
            subscription.close();
        }
    }

    /// Called by the delegate on every state change: resumes a parked teardown.
    pub(crate) fn state_changed(&self, state: VirtualMachineState) {
        self.emit(VmEvent::StateChanged(state));
        if is_stable(state) {
            let parked = self.lock().parked_teardown.take();
            if let Some(parts) = parked {
                // Not from inside the framework's own notification: on the next turn.
                let queue = parts.queue.clone();
                queue.exec_async(move || teardown(parts));
            }
        }
    }
}

#[derive(Debug, Default)]
struct Subscription {
    state: Mutex<SubscriptionState>,
}

#[derive(Debug, Default)]
struct SubscriptionState {
    events: VecDeque<VmEvent>,
    waker: Option<Waker>,
    closed: bool,
}

impl Subscription {
    fn lock(&self) -> MutexGuard<'_, SubscriptionState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, event: VmEvent) {
        let waker = {
            let mut state = self.lock();
            state.events.push_back(event);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn close(&self) {
        let waker = {
            let mut state = self.lock();
            state.closed = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// A stream of [`VmEvent`]s, from [`VirtualMachine::events`]. It sees the events
/// that happen after it was created, in order, and ends (`None`) once the virtual
/// machine is gone. It does not keep the virtual machine alive.
#[derive(Debug)]
pub struct VmEvents {
    subscription: Arc<Subscription>,
}

impl VmEvents {
    /// The next event; `None` when the virtual machine is gone.
    ///
    /// ```no_run
    /// # async fn demo(vm: arcbox_vz::VirtualMachine) {
    /// let mut events = vm.events();
    /// while let Some(event) = events.next().await {
    ///     println!("{event:?}");
    /// }
    /// # }
    /// ```
    pub async fn next(&mut self) -> Option<VmEvent> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Polls for the next event, for use in hand-written futures and streams.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<VmEvent>> {
        let replaced = {
            let mut state = self.subscription.lock();
            if let Some(event) = state.events.pop_front() {
                return Poll::Ready(Some(event));
            }
            if state.closed {
                return Poll::Ready(None);
            }
            match &state.waker {
                Some(w) if w.will_wake(cx.waker()) => None,
                _ => state.waker.replace(cx.waker().clone()),
            }
        };
        drop(replaced);
        Poll::Pending
    }

    /// The next event if one is already waiting, without blocking.
    pub fn try_next(&mut self) -> Option<VmEvent> {
        self.subscription.lock().events.pop_front()
    }
}

fn is_stable(state: VirtualMachineState) -> bool {
    matches!(
        state,
        VirtualMachineState::Stopped
            | VirtualMachineState::Running
            | VirtualMachineState::Paused
            | VirtualMachineState::Error
    )
}

/// What a virtual machine is made of on its queue.
#[derive(Debug)]
struct Parts {
    vm: Id,
    delegate: Id,
    /// The framework's copy of the configuration, for save/restore validation.
    #[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
    config: Id,
    hub: Arc<EventHub>,
    queue: Queue,
}

impl Parts {
    /// Detaches our delegate and observer and releases everything, on the queue.
    fn finish(self) {
        autoreleasepool(|| {
            remove_observer_raw(&self.vm, &self.delegate, &foundation::ns_string("state"));
            set_delegate_raw(&self.vm, None);
        });
        self.hub.close();
    }
}

/// The release of the last handle, on the VM queue: a running or paused virtual
/// machine is stopped first (a force stop), one in a transitional state is stopped
/// as soon as it settles, and only then is everything released.
fn teardown(parts: Parts) {
    let state = state_of(&parts.vm);
    if matches!(
        state,
        VirtualMachineState::Stopped | VirtualMachineState::Error
    ) {
        return parts.finish();
    }
    if !is_stable(state) {
        let hub = Arc::clone(&parts.hub);
        hub.lock().parked_teardown = Some(parts);
        return;
    }
    if !parts.vm.responds_to(sel!("stopWithCompletionHandler:")) || !can_stop_raw(&parts.vm) {
        // macOS 11 has no force stop: release it as it is.
        return parts.finish();
    }
    let vm = parts.vm.clone();
    let block = RcBlock::once::<ErrorArg, _>(move |_error| {
        parts.hub.record_stop(StopReason::HostStopped);
        parts.finish();
    });
    stop_raw(&vm, &block);
}

/// The queue-bound part of a virtual machine; dropping it starts the teardown.
#[derive(Debug)]
struct Machine(Option<Parts>);

impl Machine {
    /// The parts; only the teardown takes them, when the last handle is gone.
    fn parts(&self) -> &Parts {
        self.0
            .as_ref()
            .expect("a virtual machine is torn down only after its last handle")
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        // QueueBound drops us on the VM queue.
        if let Some(parts) = self.0.take() {
            teardown(parts);
        }
    }
}

/// A virtual machine, created by
/// [`VirtualMachineConfiguration::build`](crate::VirtualMachineConfiguration::build).
///
/// The handle is `Send + Sync` and cheap to clone: clones share one virtual machine,
/// so a clone can move into a spawned task. Runtime device handles keep it alive too.
///
/// # Dropping
///
/// When the last handle (including device handles) goes away, the virtual machine
/// is released on its queue. If it is still running or paused it is first stopped
/// with a force stop, like pulling the plug, and if it is starting, pausing or
/// resuming it is stopped as soon as it settles; the process is never left with a
/// half-released machine. To shut a guest down cleanly, call
/// [`request_stop`](Self::request_stop) and await
/// [`wait_until_stopped`](Self::wait_until_stopped) before dropping it.
///
/// ```no_run
/// # async fn demo(config: arcbox_vz::VirtualMachineConfiguration) -> Result<(), arcbox_vz::VZError> {
/// let vm = config.build()?;
/// vm.start().await?;
/// vm.request_stop()?;
/// let reason = vm.wait_until_stopped().await;
/// println!("stopped: {reason:?}");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct VirtualMachine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    machine: QueueBound<Machine>,
    hub: Arc<EventHub>,
    vsock_ports: ListenedPorts,
}

/// A lifecycle operation, run on the VM queue.
#[derive(Debug)]
enum Op {
    Start,
    StartWithOptions(Id),
    Pause,
    Resume,
    Stop,
    #[cfg(target_arch = "aarch64")]
    Save(Id),
    #[cfg(target_arch = "aarch64")]
    Restore(Id),
}

impl Op {
    /// How the operation reads in "cannot … a virtual machine that is …".
    fn name(&self) -> &'static str {
        match self {
            Self::Start | Self::StartWithOptions(_) => "start",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Stop => "stop",
            #[cfg(target_arch = "aarch64")]
            Self::Save(_) => "save the state of",
            #[cfg(target_arch = "aarch64")]
            Self::Restore(_) => "restore the state of",
        }
    }

    /// `Unsupported` when this macOS lacks the method.
    fn check_available(&self, vm: &Id) -> Result<(), VZError> {
        let (sel, feature, min_macos) = match self {
            Self::Stop => (sel!("stopWithCompletionHandler:"), "force stop", "12.0"),
            Self::StartWithOptions(_) => (
                sel!("startWithOptions:completionHandler:"),
                "start options",
                "13.0",
            ),
            #[cfg(target_arch = "aarch64")]
            Self::Save(_) => (
                sel!("saveMachineStateToURL:completionHandler:"),
                "saving virtual machine state",
                "14.0",
            ),
            #[cfg(target_arch = "aarch64")]
            Self::Restore(_) => (
                sel!("restoreMachineStateFromURL:completionHandler:"),
                "restoring virtual machine state",
                "14.0",
            ),
            _ => return Ok(()),
        };
        crate::configuration::method_since(vm, sel, feature, min_macos)
    }

    /// Whether the current state allows it (the `can…` properties; save needs Paused,
    /// restore needs Stopped).
    fn allowed(&self, vm: &Id) -> bool {
        match self {
            Self::Start | Self::StartWithOptions(_) => can_start_raw(vm),
            Self::Pause => can_pause_raw(vm),
            Self::Resume => can_resume_raw(vm),
            Self::Stop => can_stop_raw(vm),
            #[cfg(target_arch = "aarch64")]
            Self::Save(_) => state_of(vm) == VirtualMachineState::Paused,
            #[cfg(target_arch = "aarch64")]
            Self::Restore(_) => state_of(vm) == VirtualMachineState::Stopped,
        }
    }

    fn send(&self, vm: &Id, handler: &RcBlock) {
        match self {
            Self::Start => start_raw(vm, handler),
            Self::StartWithOptions(options) => start_with_options_raw(vm, options, handler),
            Self::Pause => pause_raw(vm, handler),
            Self::Resume => resume_raw(vm, handler),
            Self::Stop => stop_raw(vm, handler),
            #[cfg(target_arch = "aarch64")]
            Self::Save(url) => save_raw(vm, url, handler),
            #[cfg(target_arch = "aarch64")]
            Self::Restore(url) => restore_raw(vm, url, handler),
        }
    }

    fn is_start(&self) -> bool {
        matches!(self, Self::Start | Self::StartWithOptions(_))
    }
}

/// `VZVirtualMachineStartOptions` (macOS 13).
#[derive(Debug)]
pub struct StartOptions {
    obj: Id,
}

impl StartOptions {
    /// Default start options. On Apple silicon, macOS guests use
    /// `VZMacOSVirtualMachineStartOptions`; Linux guests need nothing more.
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 13.
    pub fn new() -> Result<Self, VZError> {
        let class = crate::configuration::class_since(
            class!("VZVirtualMachineStartOptions"),
            "start options",
            "13.0",
        )?;
        autoreleasepool(|| start_options_init(class.alloc()))
            .map(|obj| Self { obj })
            .ok_or(VZError::ClassNotFound {
                class: "VZVirtualMachineStartOptions",
            })
    }

    /// Options for a macOS guest that boot into macOS Recovery
    /// (`VZMacOSVirtualMachineStartOptions.startUpFromMacOSRecovery`, Apple silicon).
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 13.
    #[cfg(target_arch = "aarch64")]
    pub fn macos_recovery() -> Result<Self, VZError> {
        let class = crate::configuration::class_since(
            class!("VZMacOSVirtualMachineStartOptions"),
            "macOS start options",
            "13.0",
        )?;
        let obj = autoreleasepool(|| start_options_init(class.alloc())).ok_or(
            VZError::ClassNotFound {
                class: "VZMacOSVirtualMachineStartOptions",
            },
        )?;
        autoreleasepool(|| set_start_up_from_recovery_raw(&obj, true));
        Ok(Self { obj })
    }
}

impl VirtualMachine {
    pub(crate) fn from_configuration(config: &Id) -> Result<Self, VZError> {
        let queue = Queue::new_serial("dev.arcbox-vz.virtual-machine");
        let hub = Arc::new(EventHub::default());
        let class = base_class(class!("VZVirtualMachine"));
        let (q, hub2, config) = (queue.clone(), Arc::clone(&hub), config.clone());
        // Everything, init included, on the VM queue.
        let machine = queue.exec_sync(move || -> Result<Machine, VZError> {
            // The framework copies the configuration too; keep our own copy for later
            // validation (save/restore).
            let config = config_copy(&config).ok_or(VZError::ClassNotFound {
                class: "VZVirtualMachineConfiguration",
            })?;
            let vm = vm_init(class.alloc(), &config, &q).ok_or(VZError::ClassNotFound {
                class: "VZVirtualMachine",
            })?;
            let delegate = crate::delegate::vm_delegate(Arc::clone(&hub2));
            set_delegate_raw(&vm, Some(&delegate));
            add_observer_raw(
                &vm,
                &delegate,
                &foundation::ns_string("state"),
                KVO_OPTION_NEW,
                NullPtr,
            );
            Ok(Machine(Some(Parts {
                vm,
                delegate,
                config,
                hub: hub2,
                queue: q,
            })))
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                machine: QueueBound::new(queue, machine),
                hub,
                vsock_ports: ListenedPorts::default(),
            }),
        })
    }

    /// Runs `f` with the `VZVirtualMachine` on its queue.
    pub(crate) fn with_vm<R: Send>(&self, f: impl FnOnce(&Id) -> R + Send) -> R {
        self.inner.machine.with(|m| f(&m.parts().vm))
    }

    pub(crate) fn queue(&self) -> &Queue {
        self.inner.machine.queue()
    }

    /// Starts `op` on the queue and returns its completion.
    fn run(&self, op: Op) -> Completion<Result<(), VZError>> {
        let (tx, rx) = bridge::channel();
        let inner = Arc::clone(&self.inner);
        self.queue().exec_async(move || {
            if tx.is_abandoned() {
                return; // cancelled before it began
            }
            let machine = inner.machine.get_on_queue();
            let vm = &machine.parts().vm;
            if let Err(e) = op.check_available(vm) {
                let _ = tx.complete(Err(e));
                return;
            }
            if !op.allowed(vm) {
                let state = state_of(vm);
                let _ = tx.complete(Err(VZError::InvalidState {
                    operation: op.name(),
                    state,
                }));
                return;
            }
            if op.is_start() {
                inner.hub.reset_stop();
            }
            let hub = Arc::clone(&inner.hub);
            let (is_start, is_stop) = (op.is_start(), matches!(op, Op::Stop));
            let handler = RcBlock::once::<ErrorArg, _>(move |error| {
                let result = match error {
                    None => {
                        if is_stop {
                            hub.record_stop(StopReason::HostStopped);
                        }
                        Ok(())
                    }
                    Some(error) => {
                        let error = foundation::framework_error(&error);
                        if is_start {
                            hub.record_stop(StopReason::StartFailed(error.clone()));
                        }
                        Err(VZError::Framework(error))
                    }
                };
                let _ = tx.complete(result);
            });
            op.send(vm, &handler);
        });
        rx
    }

    async fn run_to_end(&self, op: Op) -> Result<(), VZError> {
        self.run(op).await?
    }

    /// `-[VZVirtualMachine startWithCompletionHandler:]`: starts the virtual machine
    /// and resolves once it is running.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidState`] unless it is stopped or in the error state;
    /// [`VZError::Framework`] when the framework fails to start it.
    ///
    /// ```no_run
    /// # async fn demo(vm: arcbox_vz::VirtualMachine) -> Result<(), arcbox_vz::VZError> {
    /// vm.start().await?;
    /// assert_eq!(vm.state(), arcbox_vz::VirtualMachineState::Running);
    /// # Ok(()) }
    /// ```
    pub async fn start(&self) -> Result<(), VZError> {
        self.run_to_end(Op::Start).await
    }

    /// `-[VZVirtualMachine startWithOptions:completionHandler:]` (macOS 13).
    ///
    /// # Errors
    ///
    /// As for [`start`](Self::start), and [`VZError::Unsupported`] before macOS 13.
    ///
    /// ```no_run
    /// # async fn demo(vm: arcbox_vz::VirtualMachine) -> Result<(), arcbox_vz::VZError> {
    /// vm.start_with_options(arcbox_vz::StartOptions::new()?).await?;
    /// # Ok(()) }
    /// ```
    pub async fn start_with_options(&self, options: StartOptions) -> Result<(), VZError> {
        self.run_to_end(Op::StartWithOptions(options.obj)).await
    }

    /// `-[VZVirtualMachine stopWithCompletionHandler:]` (macOS 12): stops the virtual
    /// machine at once, without asking the guest (like pulling the plug).
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidState`] unless it is running or paused;
    /// [`VZError::Unsupported`] before macOS 12.
    ///
    /// ```no_run
    /// # async fn demo(vm: arcbox_vz::VirtualMachine) -> Result<(), arcbox_vz::VZError> {
    /// vm.stop().await?;
    /// # Ok(()) }
    /// ```
    pub async fn stop(&self) -> Result<(), VZError> {
        self.run_to_end(Op::Stop).await
    }

    /// `-[VZVirtualMachine pauseWithCompletionHandler:]`.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidState`] unless it is running.
    ///
    /// ```no_run
    /// # async fn demo(vm: arcbox_vz::VirtualMachine) -> Result<(), arcbox_vz::VZError> {
    /// vm.pause().await?;
    /// vm.resume().await?;
    /// # Ok(()) }
    /// ```
    pub async fn pause(&self) -> Result<(), VZError> {
        self.run_to_end(Op::Pause).await
    }

    /// `-[VZVirtualMachine resumeWithCompletionHandler:]`.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidState`] unless it is paused.
    ///
    /// ```no_run
    /// # async fn demo(vm: arcbox_vz::VirtualMachine) -> Result<(), arcbox_vz::VZError> {
    /// vm.resume().await?;
    /// # Ok(()) }
    /// ```
    pub async fn resume(&self) -> Result<(), VZError> {
        self.run_to_end(Op::Resume).await
    }

    /// `-[VZVirtualMachine saveMachineStateToURL:completionHandler:]` (macOS 14,
    /// Apple silicon): saves a paused virtual machine to `path`, after checking
    /// `validateSaveRestoreSupportWithError:`.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidState`] unless it is paused; [`VZError::InvalidConfiguration`]
    /// when the configuration does not support saving; [`VZError::Unsupported`]
    /// before macOS 14; [`VZError::Framework`] when saving fails.
    ///
    /// ```no_run
    /// # async fn demo(vm: arcbox_vz::VirtualMachine) -> Result<(), arcbox_vz::VZError> {
    /// vm.pause().await?;
    /// vm.save_machine_state("/tmp/vm.state").await?;
    /// # Ok(()) }
    /// ```
    #[cfg(target_arch = "aarch64")]
    pub async fn save_machine_state(&self, path: impl AsRef<Path>) -> Result<(), VZError> {
        let url = foundation::file_url(path.as_ref(), "saved state path")?;
        self.validate_save_restore()?;
        self.run_to_end(Op::Save(url)).await
    }

    /// `-[VZVirtualMachine restoreMachineStateFromURL:completionHandler:]` (macOS 14,
    /// Apple silicon): restores a stopped virtual machine from a file written by
    /// [`save_machine_state`](Self::save_machine_state); it is then paused.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] when the file does not exist;
    /// [`VZError::InvalidState`] unless it is stopped; otherwise as for
    /// [`save_machine_state`](Self::save_machine_state).
    ///
    /// ```no_run
    /// # async fn demo(vm: arcbox_vz::VirtualMachine) -> Result<(), arcbox_vz::VZError> {
    /// vm.restore_machine_state("/tmp/vm.state").await?;
    /// vm.resume().await?;
    /// # Ok(()) }
    /// ```
    #[cfg(target_arch = "aarch64")]
    pub async fn restore_machine_state(&self, path: impl AsRef<Path>) -> Result<(), VZError> {
        let url = crate::configuration::existing_file(path.as_ref(), "saved state path")?;
        self.validate_save_restore()?;
        self.run_to_end(Op::Restore(url)).await
    }

    #[cfg(target_arch = "aarch64")]
    fn validate_save_restore(&self) -> Result<(), VZError> {
        self.inner.machine.with(|m| {
            let parts = m.parts();
            crate::configuration::method_since(
                &parts.config,
                sel!("validateSaveRestoreSupportWithError:"),
                "saving and restoring virtual machine state",
                "14.0",
            )?;
            with_error("validateSaveRestoreSupportWithError:", |error| {
                validate_save_restore_raw(&parts.config, error).then_some(())
            })
            .map_err(VZError::InvalidConfiguration)
        })
    }

    /// `-[VZVirtualMachine requestStopWithError:]`: asks the guest to shut down, like
    /// pressing the power button. The guest stops later;
    /// [`wait_until_stopped`](Self::wait_until_stopped) tells when and why.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidState`] unless it is running (checked in the same hop as the
    /// call); [`VZError::Framework`] when the framework refuses.
    ///
    /// ```no_run
    /// # async fn demo(vm: arcbox_vz::VirtualMachine) -> Result<(), arcbox_vz::VZError> {
    /// vm.request_stop()?;
    /// vm.wait_until_stopped().await;
    /// # Ok(()) }
    /// ```
    pub fn request_stop(&self) -> Result<(), VZError> {
        self.with_vm(|vm| {
            if !can_request_stop_raw(vm) {
                return Err(VZError::InvalidState {
                    operation: "request a stop of",
                    state: state_of(vm),
                });
            }
            with_error("-[VZVirtualMachine requestStopWithError:]", |error| {
                request_stop_raw(vm, error).then_some(())
            })
            .map_err(VZError::Framework)
        })
    }

    /// The current state (`state`).
    pub fn state(&self) -> VirtualMachineState {
        self.with_vm(state_of)
    }

    /// Whether [`start`](Self::start) is allowed now (`canStart`).
    pub fn can_start(&self) -> bool {
        self.with_vm(can_start_raw)
    }

    /// Whether [`stop`](Self::stop) is allowed now (`canStop`; false before macOS 12).
    pub fn can_stop(&self) -> bool {
        self.with_vm(|vm| vm.responds_to(sel!("canStop")) && can_stop_raw(vm))
    }

    /// Whether [`pause`](Self::pause) is allowed now (`canPause`).
    pub fn can_pause(&self) -> bool {
        self.with_vm(can_pause_raw)
    }

    /// Whether [`resume`](Self::resume) is allowed now (`canResume`).
    pub fn can_resume(&self) -> bool {
        self.with_vm(can_resume_raw)
    }

    /// Whether [`request_stop`](Self::request_stop) is allowed now (`canRequestStop`).
    pub fn can_request_stop(&self) -> bool {
        self.with_vm(can_request_stop_raw)
    }

    /// A stream of everything that happens to the virtual machine from now on: state
    /// changes, the guest stopping, errors, network disconnections.
    pub fn events(&self) -> VmEvents {
        self.inner.hub.subscribe()
    }

    /// Resolves once the virtual machine is stopped (or in the error state), with
    /// the reason. If it is not running, resolves at once with the reason of the last
    /// stop ([`StopReason::NeverStarted`] if it never ran). No polling: the delegate
    /// and completion handlers wake it.
    ///
    /// ```no_run
    /// # async fn demo(vm: arcbox_vz::VirtualMachine) {
    /// match vm.wait_until_stopped().await {
    ///     arcbox_vz::StopReason::GuestStopped => println!("clean shutdown"),
    ///     other => eprintln!("stopped: {other:?}"),
    /// }
    /// # }
    /// ```
    pub async fn wait_until_stopped(&self) -> StopReason {
        let (tx, rx) = bridge::channel();
        let inner = Arc::clone(&self.inner);
        self.queue().exec_async(move || {
            let machine = inner.machine.get_on_queue();
            let vm = &machine.parts().vm;
            let state = state_of(vm);
            let mut hub = inner.hub.lock();
            if matches!(
                state,
                VirtualMachineState::Stopped | VirtualMachineState::Error
            ) {
                let reason = hub.last_stop.clone().unwrap_or(StopReason::NeverStarted);
                drop(hub);
                let _ = tx.complete(reason);
            } else {
                hub.stop_waiters.push(tx);
            }
        });
        // The hub outlives every handle, so the completer is never dropped unsent
        // while we wait; fall back to the last reason if it ever is.
        match rx.await {
            Ok(reason) => reason,
            Err(_) => self
                .inner
                .hub
                .lock()
                .last_stop
                .clone()
                .unwrap_or(StopReason::NeverStarted),
        }
    }

    pub(crate) fn listened_ports(&self) -> &ListenedPorts {
        &self.inner.vsock_ports
    }

    /// The virtio-vsock devices (`socketDevices`; at most one).
    pub fn socket_devices(&self) -> Vec<VirtioSocketDevice> {
        self.device_objects(sel!("socketDevices"), socket_devices_raw)
            .into_iter()
            .map(|device| VirtioSocketDevice::new(self.clone(), device))
            .collect()
    }

    /// The memory balloon devices (`memoryBalloonDevices`; at most one).
    pub fn memory_balloon_devices(&self) -> Vec<crate::VirtioTraditionalMemoryBalloonDevice> {
        self.devices(sel!("memoryBalloonDevices"), memory_balloon_devices_raw)
            .into_iter()
            .map(crate::VirtioTraditionalMemoryBalloonDevice::new)
            .collect()
    }

    /// The virtiofs devices (`directorySharingDevices`, macOS 12), in configuration
    /// order.
    pub fn directory_sharing_devices(&self) -> Vec<crate::VirtioFileSystemDevice> {
        self.devices(
            sel!("directorySharingDevices"),
            directory_sharing_devices_raw,
        )
        .into_iter()
        .map(crate::VirtioFileSystemDevice::new)
        .collect()
    }

    /// The network devices (`networkDevices`, macOS 12), in configuration order.
    pub fn network_devices(&self) -> Vec<crate::NetworkDevice> {
        self.devices(sel!("networkDevices"), network_devices_raw)
            .into_iter()
            .map(crate::NetworkDevice::new)
            .collect()
    }

    /// The virtio console devices (`consoleDevices`, macOS 13), in configuration
    /// order.
    pub fn console_devices(&self) -> Vec<crate::VirtioConsoleDevice> {
        self.devices(sel!("consoleDevices"), console_devices_raw)
            .into_iter()
            .map(crate::VirtioConsoleDevice::new)
            .collect()
    }

    /// The USB controllers (`usbControllers`, macOS 15), in configuration order.
    pub fn usb_controllers(&self) -> Vec<crate::USBController> {
        self.devices(sel!("usbControllers"), usb_controllers_raw)
            .into_iter()
            .map(crate::USBController::new)
            .collect()
    }

    fn devices(
        &self,
        property: crate::ffi::runtime::Sel,
        get: fn(&Id) -> Option<Id>,
    ) -> Vec<DeviceHandle> {
        self.device_objects(property, get)
            .into_iter()
            .map(|object| DeviceHandle {
                vm: self.clone(),
                object: Arc::new(object),
            })
            .collect()
    }

    /// The runtime objects in an array property, or none when this macOS lacks the
    /// property (it then cannot have such devices).
    pub(crate) fn device_objects(
        &self,
        property: crate::ffi::runtime::Sel,
        get: fn(&Id) -> Option<Id>,
    ) -> Vec<QueueBound<Id>> {
        let objects = self.with_vm(move |vm| {
            if !vm.responds_to(property) {
                return Vec::new();
            }
            get(vm)
                .map(|array| foundation::array_items(&array))
                .unwrap_or_default()
        });
        objects
            .into_iter()
            .map(|object| QueueBound::new(self.queue().clone(), object))
            .collect()
    }
}

/// A runtime device (or one of its parts) of a virtual machine. It keeps the virtual
/// machine alive, and every call hops onto the VM queue.
#[derive(Clone, Debug)]
pub(crate) struct DeviceHandle {
    vm: VirtualMachine,
    object: Arc<QueueBound<Id>>,
}

impl DeviceHandle {
    /// Runs `f` with the device on the VM queue and returns its result.
    pub(crate) fn with<R: Send>(&self, f: impl FnOnce(&Id) -> R + Send) -> R {
        self.object.with(f)
    }

    /// Runs `f` with the device on the VM queue, later.
    pub(crate) fn exec_async(&self, f: impl FnOnce(&Id) + Send + 'static) {
        let object = Arc::clone(&self.object);
        self.vm.queue().exec_async(move || f(object.get_on_queue()));
    }

    /// A handle to another object of the same virtual machine (a console port), made
    /// on the VM queue from this device.
    pub(crate) fn related(&self, object: QueueBound<Id>) -> Self {
        Self {
            vm: self.vm.clone(),
            object: Arc::new(object),
        }
    }

    pub(crate) fn queue(&self) -> &Queue {
        self.vm.queue()
    }
}
