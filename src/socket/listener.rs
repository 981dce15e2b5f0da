//! [`VsockListener`]: connections from the guest to one host port.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use super::stream::VsockStream;
use crate::bridge;
use crate::ffi::dispatch::QueueBound;
use crate::ffi::runtime::{Id, in_pool, objc_methods};
use crate::vm::DeviceHandle;

objc_methods! {
    fn remove_listener_raw(device: &Id, port: u32) = "removeSocketListenerForPort:";
    pub(super) fn listener_set_delegate(listener: &Id, delegate: Option<&Id>) = "setDelegate:";
}

/// What a listener delegate shares with its [`VsockListener`].
#[derive(Debug, Default)]
pub(crate) struct ListenerShared {
    state: Mutex<ListenerState>,
}

#[derive(Debug, Default)]
struct ListenerState {
    pending: VecDeque<VsockStream>,
    next_id: u64,
    /// One entry per live [`Accept`] future that has been polled; each removes its
    /// own entry when it completes or is dropped.
    accepts: Vec<(u64, Option<Waker>)>,
    /// The waker of the latest [`VsockListener::poll_accept`] call.
    poll_waker: Option<Waker>,
    closed: bool,
}

impl ListenerState {
    fn take_wakers(&mut self) -> Vec<Waker> {
        let mut wakers: Vec<Waker> = self
            .accepts
            .iter_mut()
            .filter_map(|(_, w)| w.take())
            .collect();
        wakers.extend(self.poll_waker.take());
        wakers
    }
}

impl ListenerShared {
    fn lock(&self) -> MutexGuard<'_, ListenerState> {
        // Plain data only, and no user code runs under the lock: a poisoned one is
        // consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called by the delegate, on the VM queue, for each new connection: takes a
    /// `dup` of it and returns whether it was accepted. A closed listener refuses, so
    /// the framework closes the connection.
    pub(crate) fn offer(&self, connection: &Id) -> bool {
        let wakers = {
            let mut state = self.lock();
            if state.closed {
                return false;
            }
            match VsockStream::from_connection(connection) {
                Ok(stream) => state.pending.push_back(stream),
                Err(_) => return false,
            }
            state.take_wakers()
        };
        wakers.into_iter().for_each(bridge::wake);
        true
    }

    /// Closes it; false if it already was.
    fn close(&self) -> bool {
        let (wakers, pending, was_open) = {
            let mut state = self.lock();
            let was_open = !state.closed;
            state.closed = true;
            (
                state.take_wakers(),
                std::mem::take(&mut state.pending),
                was_open,
            )
        };
        // Connections that were never accepted are closed with the listener.
        drop(pending);
        wakers.into_iter().for_each(bridge::wake);
        was_open
    }

    fn poll_accept(&self, id: Option<u64>, cx: &mut Context<'_>) -> Poll<Option<VsockStream>> {
        let replaced = {
            let mut state = self.lock();
            if let Some(stream) = state.pending.pop_front() {
                return Poll::Ready(Some(stream));
            }
            if state.closed {
                return Poll::Ready(None);
            }
            let slot = match id {
                None => &mut state.poll_waker,
                Some(id) => {
                    let index = match bridge::index_of(&state.accepts, id) {
                        Some(index) => index,
                        None => {
                            state.accepts.push((id, None));
                            state.accepts.len() - 1
                        }
                    };
                    &mut state.accepts[index].1
                }
            };
            match slot {
                Some(w) if w.will_wake(cx.waker()) => None,
                _ => slot.replace(cx.waker().clone()),
            }
        };
        drop(replaced); // a replaced waker is dropped outside the lock
        Poll::Pending
    }

    fn new_accept_id(&self) -> u64 {
        let mut state = self.lock();
        state.next_id += 1;
        state.next_id
    }

    fn forget_accept(&self, id: u64) {
        let removed = {
            let mut state = self.lock();
            let index = bridge::index_of(&state.accepts, id);
            index.map(|i| state.accepts.swap_remove(i))
        };
        drop(removed);
    }
}

/// The framework's listener object and our delegate, released on the VM queue.
#[derive(Debug)]
pub(super) struct ListenerObjects {
    pub(super) listener: Id,
    /// Kept alive here: the listener's `delegate` property is weak.
    pub(super) _delegate: Id,
}

impl Drop for ListenerObjects {
    fn drop(&mut self) {
        // On the VM queue (QueueBound): detach our delegate before it goes away.
        in_pool!(listener_set_delegate(&self.listener, None));
    }
}

/// Listens for guest connections on one vsock port, from
/// [`VirtioSocketDevice::listen`](crate::VirtioSocketDevice::listen). It keeps the
/// virtual machine alive.
///
/// Closing or dropping it removes the listener (`removeSocketListenerForPort:`),
/// ends pending [`accept`](Self::accept)s with `None`, and closes connections that
/// were never accepted; a connection that arrives later is refused and closed by the
/// framework.
///
/// ```no_run
/// # async fn demo(device: arcbox_vz::VirtioSocketDevice) -> Result<(), arcbox_vz::VZError> {
/// let listener = device.listen(5000)?;
/// while let Some(stream) = listener.accept().await {
///     println!("guest connected from port {}", stream.source_port());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct VsockListener {
    port: u32,
    shared: Arc<ListenerShared>,
    objects: Option<QueueBound<ListenerObjects>>,
    /// The vsock device; keeps the virtual machine alive.
    device: DeviceHandle,
}

impl VsockListener {
    pub(super) fn new(
        port: u32,
        shared: Arc<ListenerShared>,
        objects: QueueBound<ListenerObjects>,
        device: DeviceHandle,
    ) -> Self {
        Self {
            port,
            shared,
            objects: Some(objects),
            device,
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u32 {
        self.port
    }

    /// The next connection from the guest, or `None` once the listener is closed.
    ///
    /// Several tasks may accept at once; each connection goes to one of them.
    /// Dropping the future takes nothing: a connection that arrives later waits for
    /// the next `accept`, and the future's waker is forgotten at once.
    pub fn accept(&self) -> Accept<'_> {
        Accept {
            shared: &self.shared,
            id: None,
        }
    }

    /// Polls for the next connection, for hand-written futures and streams. Only the
    /// waker of the latest call is kept (as with a single task polling in a loop);
    /// use [`accept`](Self::accept) to accept from several tasks at once.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<Option<VsockStream>> {
        self.shared.poll_accept(None, cx)
    }

    /// Stops listening. Pending and later [`accept`](Self::accept)s return `None`.
    pub fn close(&self) {
        if self.shared.close() {
            let port = self.port;
            // The work item owns a handle to the virtual machine (DeviceHandle).
            self.device
                .exec_async(move |device| in_pool!(remove_listener_raw(device, port)));
            self.device.vm().release_port(port);
        }
    }
}

impl Drop for VsockListener {
    fn drop(&mut self) {
        self.close();
        // The listener and its delegate are released on the VM queue after the
        // removal above (the queue is serial), and before the virtual machine, whose
        // handle (`device`) is dropped after this.
        drop(self.objects.take());
    }
}

/// The future of [`VsockListener::accept`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Accept<'a> {
    shared: &'a Arc<ListenerShared>,
    id: Option<u64>,
}

impl Future for Accept<'_> {
    type Output = Option<VsockStream>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<VsockStream>> {
        let id = match self.id {
            Some(id) => id,
            None => {
                let id = self.shared.new_accept_id();
                self.id = Some(id);
                id
            }
        };
        let poll = self.shared.poll_accept(Some(id), cx);
        if poll.is_ready() {
            self.shared.forget_accept(id);
            self.id = None;
        }
        poll
    }
}

impl Drop for Accept<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.shared.forget_accept(id);
        }
    }
}
