//! The queue side of a virtual machine: the `VZVirtualMachine` with its delegate and
//! `state` observer, its raw messages, and the one teardown path.
//!
//! # Teardown
//!
//! Releasing a `VZVirtualMachine` (with its delegate and observer) is always a work
//! item of its own on the VM queue, queued when the last handle drops, behind all
//! work already queued. It never runs inline where the last reference happened to
//! drop: not in a waker, a completion handler, a delegate method or another work
//! item. [`QueueBound`](crate::ffi::dispatch::QueueBound) guarantees the first hop;
//! the force stop's completion handler and a parked teardown each queue the rest
//! again, so the framework is never released from inside its own callback.

use std::sync::Arc;

use super::events::{EventHub, StopReason, is_stable};
use super::state::VirtualMachineState;
use crate::error::VZError;
use crate::ffi::block::{ErrorArg, RcBlock};
use crate::ffi::dispatch::Queue;
use crate::ffi::foundation;
use crate::ffi::runtime::{Allocated, ClassRef, Id, NullPtr, in_pool, objc_methods, sel};

objc_methods! {
    fn vm_init(vm: Allocated, config: &Id, queue: &Queue) -> Option<Id> =
        "initWithConfiguration:queue:";
    pub(super) fn vm_is_supported(class: ClassRef) -> bool = "isSupported";
    fn config_copy(config: &Id) -> Option<Id> = "copy";
    fn state_raw(vm: &Id) -> isize = "state";
    pub(super) fn can_start_raw(vm: &Id) -> bool = "canStart";
    pub(super) fn can_stop_raw(vm: &Id) -> bool = "canStop";
    pub(super) fn can_pause_raw(vm: &Id) -> bool = "canPause";
    pub(super) fn can_resume_raw(vm: &Id) -> bool = "canResume";
    pub(super) fn can_request_stop_raw(vm: &Id) -> bool = "canRequestStop";
    fn set_delegate_raw(vm: &Id, delegate: Option<&Id>) = "setDelegate:";
    pub(super) fn stop_raw(vm: &Id, handler: &RcBlock) = "stopWithCompletionHandler:";
    fn add_observer_raw(object: &Id, observer: &Id, key_path: &Id, options: usize, context: NullPtr) =
        "addObserver:forKeyPath:options:context:";
    fn remove_observer_raw(object: &Id, observer: &Id, key_path: &Id) =
        "removeObserver:forKeyPath:";
}

/// `NSKeyValueObservingOptionNew`: the change dictionary carries the new value.
const KVO_OPTION_NEW: usize = 1;

/// The state of `vm` (`state`; on the VM queue).
pub(crate) fn state_of(vm: &Id) -> VirtualMachineState {
    VirtualMachineState::from_raw(state_raw(vm))
}

/// What a virtual machine is made of on its queue.
#[derive(Debug)]
pub(super) struct Parts {
    pub(super) vm: Id,
    delegate: Id,
    /// The console devices (macOS 13) and our delegate on each.
    console_delegates: Vec<(Id, Id)>,
    /// The delegates of the NBD attachments (macOS 14), owned here.
    nbd_delegates: super::nbd_delegate::NbdDelegates,
    /// The observers of the displays (macOS 14), owned here.
    display_observers: super::display_observer::DisplayObservers,
    /// The framework's copy of the configuration, for save/restore validation.
    #[cfg_attr(not(any(target_arch = "aarch64", arcbox_vz_sim)), allow(dead_code))]
    pub(super) config: Id,
    hub: Arc<EventHub>,
    queue: Queue,
    /// What [`keep_alive`](super::VirtualMachine::keep_alive) was given (the vmnet
    /// networks of the VM's attachments): released with the VM, after it (fields drop
    /// in order).
    pub(super) kept_alive: std::sync::Mutex<Vec<Box<dyn std::any::Any + Send>>>,
    /// Whether a `MacOSInstaller` is installing onto this machine: the lifecycle
    /// operations are refused meanwhile (Apple leaves their effect undefined).
    pub(super) installing: std::cell::Cell<bool>,
}

impl Parts {
    /// On the VM queue: makes the `VZVirtualMachine` for `config`, with our delegate
    /// and `state` observer feeding `hub`.
    pub(super) fn new(
        class: ClassRef,
        config: &Id,
        queue: &Queue,
        hub: Arc<EventHub>,
    ) -> Result<Self, VZError> {
        // The framework copies the configuration too; keep our own copy for later
        // validation (save/restore).
        let config = config_copy(config).ok_or(VZError::ClassNotFound {
            class: "VZVirtualMachineConfiguration",
        })?;
        // Before the init, in case the framework reads the attachments' delegates
        // there (Apple does not say when it does).
        let mut nbd_delegates = super::nbd_delegate::NbdDelegates::install(&config, &hub);
        let Some(vm) = vm_init(class.alloc(), &config, queue) else {
            nbd_delegates.uninstall();
            return Err(VZError::ClassNotFound {
                class: "VZVirtualMachine",
            });
        };
        let delegate = super::delegate::vm_delegate(Arc::clone(&hub));
        set_delegate_raw(&vm, Some(&delegate));
        add_observer_raw(
            &vm,
            &delegate,
            &foundation::ns_string("state"),
            KVO_OPTION_NEW,
            NullPtr,
        );
        let console_delegates = super::console_delegate::install(&vm, &hub);
        let display_observers = super::display_observer::DisplayObservers::install(&vm, &hub);
        Ok(Self {
            vm,
            delegate,
            console_delegates,
            nbd_delegates,
            display_observers,
            config,
            hub,
            queue: queue.clone(),
            kept_alive: std::sync::Mutex::default(),
            installing: std::cell::Cell::new(false),
        })
    }

    /// Detaches our delegate and observer, ends the event streams, and releases
    /// everything; a work item of its own.
    fn finish(mut self) {
        in_pool!({
            self.nbd_delegates.uninstall();
            self.display_observers.uninstall();
            remove_observer_raw(&self.vm, &self.delegate, &foundation::ns_string("state"));
            set_delegate_raw(&self.vm, None);
        });
        super::console_delegate::uninstall(&self.console_delegates);
        self.hub.close();
        drop(self);
    }

    /// Queues `f(self)` as a work item of its own.
    fn later(self, f: fn(Self)) {
        let queue = self.queue.clone();
        queue.exec_async(move || f(self));
    }
}

/// The release of the last handle, in a work item of its own: a running or paused
/// virtual machine is stopped first (a force stop), one in a transitional state is
/// stopped as soon as it settles, and only then is everything released.
fn teardown(parts: Parts) {
    let state = state_of(&parts.vm);
    if matches!(
        state,
        VirtualMachineState::Stopped | VirtualMachineState::Error
    ) {
        return parts.finish();
    }
    if !is_stable(state) {
        // Resumed by the next stable `state` notification, as a new work item.
        let hub = Arc::clone(&parts.hub);
        hub.on_settled(Box::new(move || parts.later(teardown)));
        return;
    }
    if !parts.vm.responds_to(sel!("stopWithCompletionHandler:")) || !can_stop_raw(&parts.vm) {
        // macOS 11 has no force stop: release it as it is.
        return parts.finish();
    }
    let vm = parts.vm.clone();
    let block = RcBlock::once::<ErrorArg, _>(move |_error| {
        parts.hub.record_stop(StopReason::HostStopped);
        // Not inside the framework's own completion handler: a work item of its own.
        parts.later(Parts::finish);
    });
    stop_raw(&vm, &block);
}

/// The queue-bound part of a virtual machine; dropping it (always in a work item of
/// its own, see [`QueueBound`](crate::ffi::dispatch::QueueBound)) starts the teardown.
#[derive(Debug)]
pub(super) struct Machine(Option<Parts>);

impl Machine {
    pub(super) fn new(parts: Parts) -> Self {
        Self(Some(parts))
    }

    /// The parts; only the teardown takes them, when the last handle is gone.
    pub(super) fn parts(&self) -> &Parts {
        self.0
            .as_ref()
            .expect("a virtual machine is torn down only after its last handle")
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if let Some(parts) = self.0.take() {
            teardown(parts);
        }
    }
}
