//! What happens to a running virtual machine: [`VmEvent`]s, [`StopReason`]s, and the
//! [`EventHub`] that the delegate, the `state` observer and completion handlers feed.
//!
//! # Rules
//!
//! - Every waiter (an event stream, a `wait_until_stopped` future) is registered
//!   under an id and removes itself when it is dropped, so memory is bounded by the
//!   waiters that are alive, not by how many were ever created.
//! - Wakers are user code: they are taken out under the lock and woken after it is
//!   released, one by one, each with its panic caught ([`bridge::wake`]).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};

use super::state::VirtualMachineState;
use crate::bridge;
use crate::error::FrameworkError;

/// Something that happened to a virtual machine, from
/// [`VirtualMachine::events`](crate::VirtualMachine::events).
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
        /// The device's index in
        /// [`VirtualMachine::network_devices`](crate::VirtualMachine::network_devices)
        /// (the order of the configuration).
        device_index: usize,
        /// Why it was disconnected.
        error: FrameworkError,
    },
    /// The guest opened a port of a virtio console device
    /// (`consoleDevice:didOpenPort:`, macOS 13).
    ConsolePortOpened {
        /// The device's index in
        /// [`VirtualMachine::console_devices`](crate::VirtualMachine::console_devices).
        device_index: usize,
        /// The port's index in the device (as in
        /// [`VirtioConsoleDevice::port`](crate::VirtioConsoleDevice::port)); `u32::MAX`
        /// if the framework's port array does not hold it.
        port_index: u32,
        /// The port's name, if it has one.
        name: Option<String>,
    },
    /// The guest closed a port of a virtio console device
    /// (`consoleDevice:didClosePort:`, macOS 13).
    ConsolePortClosed {
        /// The device's index, as in [`ConsolePortOpened`](Self::ConsolePortOpened).
        device_index: usize,
        /// The port's index, as in [`ConsolePortOpened`](Self::ConsolePortOpened).
        port_index: u32,
        /// The port's name, if it has one.
        name: Option<String>,
    },
    /// A [`NetworkBlockDeviceStorageDeviceAttachment`](crate::NetworkBlockDeviceStorageDeviceAttachment)
    /// connected to its server (`attachmentWasConnected:`, macOS 14): after the
    /// start, and again after each reconnection.
    ///
    /// NBD events come in the virtual machine's stream rather than from the
    /// attachment: the attachment has moved into the configuration by then, and this
    /// stream is where everything else about the running machine arrives.
    NetworkBlockDeviceConnected {
        /// The index of the storage device in
        /// [`VirtualMachineConfiguration::set_storage_devices`](crate::VirtualMachineConfiguration::set_storage_devices)
        /// (the configuration's `storageDevices`).
        device_index: usize,
    },
    /// A [`NetworkBlockDeviceStorageDeviceAttachment`](crate::NetworkBlockDeviceStorageDeviceAttachment)
    /// met an error it does not recover from (`attachment:didEncounterError:`, macOS
    /// 14), such as `VZErrorNetworkBlockDeviceNegotiationFailed` (20001) or
    /// `VZErrorNetworkBlockDeviceDisconnected` (20002): the guest's disk stops working.
    NetworkBlockDeviceError {
        /// The index of the storage device, as in
        /// [`NetworkBlockDeviceConnected`](Self::NetworkBlockDeviceConnected).
        device_index: usize,
        /// What went wrong.
        error: FrameworkError,
    },
    /// A display began to change its configuration, for example after
    /// [`GraphicsDisplay::reconfigure`](crate::GraphicsDisplay::reconfigure)
    /// (`displayDidBeginReconfiguration:`, macOS 14): frames at the new size are
    /// coming.
    DisplayReconfigurationBegan {
        /// The graphics device's index in
        /// [`VirtualMachine::graphics_devices`](crate::VirtualMachine::graphics_devices).
        device_index: usize,
        /// The display's index in
        /// [`GraphicsDevice::displays`](crate::GraphicsDevice::displays).
        display_index: usize,
    },
    /// A display finished changing its configuration (`displayDidEndReconfiguration:`,
    /// macOS 14): [`GraphicsDisplay::size_in_pixels`](crate::GraphicsDisplay::size_in_pixels)
    /// is now the new size.
    DisplayReconfigurationEnded {
        /// As in [`DisplayReconfigurationBegan`](Self::DisplayReconfigurationBegan).
        device_index: usize,
        /// As in [`DisplayReconfigurationBegan`](Self::DisplayReconfigurationBegan).
        display_index: usize,
    },
}

/// Why a virtual machine stopped, from
/// [`VirtualMachine::wait_until_stopped`](crate::VirtualMachine::wait_until_stopped).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The guest shut itself down (after
    /// [`request_stop`](crate::VirtualMachine::request_stop), or on its own).
    GuestStopped,
    /// The host stopped it with [`stop`](crate::VirtualMachine::stop) (like pulling
    /// the plug), or dropping the last handle stopped it.
    HostStopped,
    /// The virtual machine stopped because of an error.
    Error(FrameworkError),
    /// The last start, or the last restore of a saved state, failed with this error.
    StartFailed(FrameworkError),
    /// It has not run since it was created.
    NeverStarted,
}

/// Event subscribers, the last stop reason and the stop waiters of one virtual
/// machine. Fed from the VM queue by the delegate and by completion handlers, and
/// from whatever thread the framework posts `state` notifications on.
#[derive(Debug, Default)]
pub(crate) struct EventHub {
    state: Mutex<HubState>,
}

#[derive(Default)]
struct HubState {
    next_id: u64,
    subscribers: Vec<(u64, Arc<Subscription>)>,
    /// Why the virtual machine last stopped; cleared when a start begins.
    last_stop: Option<StopReason>,
    /// A start has begun at least once.
    ever_started: bool,
    /// The latest state known here (from `state` notifications and queue reads).
    state: Option<VirtualMachineState>,
    stop_waiters: Vec<(u64, StopWaiter)>,
    /// Run once the virtual machine reaches a stable state: a teardown that found it
    /// starting, pausing or resuming.
    on_settled: Option<Box<dyn FnOnce() + Send>>,
    /// The virtual machine is gone: new streams end at once.
    closed: bool,
}

impl std::fmt::Debug for HubState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubState")
            .field("subscribers", &self.subscribers.len())
            .field("last_stop", &self.last_stop)
            .field("stop_waiters", &self.stop_waiters.len())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl HubState {
    /// The reason a stop waiter resolves with now, if it can.
    fn stopped_because(&self) -> Option<StopReason> {
        if !self.state.is_some_and(is_stopped) {
            return None;
        }
        match (&self.last_stop, self.ever_started) {
            (Some(reason), _) => Some(reason.clone()),
            (None, false) => Some(StopReason::NeverStarted),
            (None, true) => None, // stopped; the reason is on its way
        }
    }

    /// Resolves every armed waiter if the virtual machine is stopped and why is
    /// known; returns the wakers to wake once the lock is released.
    fn resolve_waiters(&mut self) -> Vec<Waker> {
        let Some(reason) = self.stopped_because() else {
            return Vec::new();
        };
        self.stop_waiters
            .iter_mut()
            .filter(|(_, w)| w.armed && w.reason.is_none())
            .filter_map(|(_, w)| {
                w.reason = Some(reason.clone());
                w.waker.take()
            })
            .collect()
    }
}

#[derive(Debug, Default)]
struct StopWaiter {
    /// The VM queue has checked the state: the waiter now waits for a stop.
    armed: bool,
    reason: Option<StopReason>,
    waker: Option<Waker>,
}

fn is_stopped(state: VirtualMachineState) -> bool {
    matches!(
        state,
        VirtualMachineState::Stopped | VirtualMachineState::Error
    )
}

/// Whether the state is one the virtual machine rests in (not a transition).
pub(crate) fn is_stable(state: VirtualMachineState) -> bool {
    is_stopped(state)
        || matches!(
            state,
            VirtualMachineState::Running | VirtualMachineState::Paused
        )
}

impl EventHub {
    fn lock(&self) -> MutexGuard<'_, HubState> {
        // Only plain data is updated under this lock, and no user code runs under it,
        // so a poisoned one is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Delivers an event to every live subscriber.
    pub(crate) fn emit(&self, event: &VmEvent) {
        let subscribers: Vec<Arc<Subscription>> = self
            .lock()
            .subscribers
            .iter()
            .map(|(_, s)| Arc::clone(s))
            .collect();
        for subscription in subscribers {
            subscription.push(event.clone());
        }
    }

    /// Records why the virtual machine stopped and wakes the stop waiters that can
    /// now resolve.
    pub(crate) fn record_stop(&self, reason: StopReason) {
        let wakers = {
            let mut hub = self.lock();
            hub.last_stop = Some(reason);
            hub.resolve_waiters()
        };
        wakers.into_iter().for_each(bridge::wake);
    }

    /// A start or a restore is about to be sent, and the virtual machine will be
    /// `state` (starting or restoring): the last stop reason no longer applies. A
    /// restored machine runs again like a started one, so its next stop needs a new
    /// reason (and a failed restore gives one: `StartFailed`).
    pub(crate) fn start_began(&self, state: VirtualMachineState) {
        let mut hub = self.lock();
        hub.last_stop = None;
        hub.ever_started = true;
        hub.state = Some(state);
    }

    /// A new event stream that sees what happens from now on.
    pub(crate) fn subscribe(self: &Arc<Self>) -> VmEvents {
        let subscription = Arc::new(Subscription::default());
        let mut state = self.lock();
        if state.closed {
            subscription.lock().closed = true;
        }
        let id = state.next_id;
        state.next_id += 1;
        state.subscribers.push((id, Arc::clone(&subscription)));
        drop(state);
        VmEvents {
            subscription,
            hub: Arc::downgrade(self),
            id,
        }
    }

    fn unsubscribe(&self, id: u64) {
        let removed = {
            let mut state = self.lock();
            let index = bridge::index_of(&state.subscribers, id);
            index.map(|i| state.subscribers.swap_remove(i))
        };
        drop(removed);
    }

    /// Ends every event stream: the virtual machine is gone.
    pub(crate) fn close(&self) {
        let subscribers = {
            let mut state = self.lock();
            state.closed = true;
            std::mem::take(&mut state.subscribers)
        };
        for (_, subscription) in subscribers {
            subscription.close();
        }
    }

    /// Called for every `state` change: emits it and, once the state is stable, runs
    /// a parked teardown.
    pub(crate) fn state_changed(&self, state: VirtualMachineState) {
        let wakers = {
            let mut hub = self.lock();
            hub.state = Some(state);
            hub.resolve_waiters()
        };
        self.emit(&VmEvent::StateChanged(state));
        wakers.into_iter().for_each(bridge::wake);
        if is_stable(state) {
            let settled = self.lock().on_settled.take();
            if let Some(settled) = settled {
                settled();
            }
        }
    }

    /// Runs `f` when the virtual machine next reaches a stable state.
    pub(crate) fn on_settled(&self, f: Box<dyn FnOnce() + Send>) {
        self.lock().on_settled = Some(f);
    }

    /// A new stop waiter, not yet armed.
    pub(crate) fn add_stop_waiter(&self) -> u64 {
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.stop_waiters.push((id, StopWaiter::default()));
        id
    }

    /// On the VM queue, with the state read there: from now on the waiter resolves as
    /// soon as the virtual machine is stopped *and* why is known (or it never
    /// started). Apple does not order the `state` notification, the delegate call and
    /// the completion handler, so the waiter waits for both, whichever comes last:
    /// when it resolves, the reason is the real one and the virtual machine can be
    /// started again at once.
    pub(crate) fn arm_stop_waiter(&self, id: u64, state_now: VirtualMachineState) {
        let wakers = {
            let mut hub = self.lock();
            hub.state = Some(state_now);
            let Some(index) = bridge::index_of(&hub.stop_waiters, id) else {
                return; // its future is gone
            };
            let waiter = &mut hub.stop_waiters[index].1;
            waiter.armed = true;
            hub.resolve_waiters()
        };
        wakers.into_iter().for_each(bridge::wake);
    }

    pub(crate) fn poll_stop_waiter(&self, id: u64, cx: &mut Context<'_>) -> Poll<StopReason> {
        let replaced = {
            let mut hub = self.lock();
            let Some(index) = bridge::index_of(&hub.stop_waiters, id) else {
                unreachable!("a stop waiter is removed only by its own future");
            };
            let waiter = &mut hub.stop_waiters[index].1;
            if let Some(reason) = waiter.reason.take() {
                drop(hub);
                self.remove_stop_waiter(id);
                return Poll::Ready(reason);
            }
            match &waiter.waker {
                Some(w) if w.will_wake(cx.waker()) => None,
                _ => waiter.waker.replace(cx.waker().clone()),
            }
        };
        drop(replaced);
        Poll::Pending
    }

    pub(crate) fn remove_stop_waiter(&self, id: u64) {
        let removed = {
            let mut hub = self.lock();
            let index = bridge::index_of(&hub.stop_waiters, id);
            index.map(|i| hub.stop_waiters.swap_remove(i))
        };
        drop(removed); // a stored waker is dropped outside the lock
    }

    /// How many waiters and streams are registered (for the tests of boundedness).
    #[cfg(test)]
    pub(crate) fn registered(&self) -> (usize, usize) {
        let hub = self.lock();
        (hub.subscribers.len(), hub.stop_waiters.len())
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
            bridge::wake(waker);
        }
    }

    fn close(&self) {
        let waker = {
            let mut state = self.lock();
            state.closed = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            bridge::wake(waker);
        }
    }
}

/// A stream of [`VmEvent`]s, from
/// [`VirtualMachine::events`](crate::VirtualMachine::events). It sees the events that
/// happen after it was created, in order, and ends (`None`) once the virtual machine
/// is gone. It does not keep the virtual machine alive, and dropping it unsubscribes
/// it at once.
#[derive(Debug)]
pub struct VmEvents {
    subscription: Arc<Subscription>,
    hub: Weak<EventHub>,
    id: u64,
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

impl Drop for VmEvents {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.unsubscribe(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    #[test]
    fn dropped_streams_and_waiters_leave_nothing_registered() {
        let hub = Arc::new(EventHub::default());
        for _ in 0..10_000 {
            drop(hub.subscribe());
            let id = hub.add_stop_waiter();
            let mut cx = Context::from_waker(Waker::noop());
            hub.arm_stop_waiter(id, VirtualMachineState::Running);
            assert!(hub.poll_stop_waiter(id, &mut cx).is_pending());
            hub.remove_stop_waiter(id);
        }
        assert_eq!(hub.registered(), (0, 0));
    }

    #[test]
    fn a_reason_that_comes_before_the_state_waits_for_the_state() {
        let hub = Arc::new(EventHub::default());
        hub.start_began(VirtualMachineState::Starting);
        let id = hub.add_stop_waiter();
        let mut cx = Context::from_waker(Waker::noop());
        hub.arm_stop_waiter(id, VirtualMachineState::Running);
        hub.record_stop(StopReason::GuestStopped);
        // Still running: a `start` now would be refused.
        assert!(hub.poll_stop_waiter(id, &mut cx).is_pending());
        hub.state_changed(VirtualMachineState::Stopped);
        assert_eq!(
            hub.poll_stop_waiter(id, &mut cx),
            Poll::Ready(StopReason::GuestStopped)
        );
    }

    #[test]
    fn a_stopped_state_whose_reason_is_late_waits_for_it() {
        let hub = Arc::new(EventHub::default());
        hub.start_began(VirtualMachineState::Starting);
        let id = hub.add_stop_waiter();
        let mut cx = Context::from_waker(Waker::noop());
        // The state notification came first: stopped, but why is not known yet.
        hub.arm_stop_waiter(id, VirtualMachineState::Stopped);
        assert!(hub.poll_stop_waiter(id, &mut cx).is_pending());
        hub.record_stop(StopReason::GuestStopped);
        assert_eq!(
            hub.poll_stop_waiter(id, &mut cx),
            Poll::Ready(StopReason::GuestStopped)
        );
    }

    #[test]
    fn never_started_only_when_it_never_started() {
        let hub = Arc::new(EventHub::default());
        let id = hub.add_stop_waiter();
        let mut cx = Context::from_waker(Waker::noop());
        hub.arm_stop_waiter(id, VirtualMachineState::Stopped);
        assert_eq!(
            hub.poll_stop_waiter(id, &mut cx),
            Poll::Ready(StopReason::NeverStarted)
        );
    }
}
