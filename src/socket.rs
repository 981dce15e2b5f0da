//! vsock: the runtime `VZVirtioSocketDevice`, connections as [`VsockStream`]s, and
//! [`VsockListener`]s for connections from the guest.
//!
//! A connection's descriptor belongs to its `VZVirtioSocketConnection`, which closes
//! it when it goes away. Every stream here owns its own `dup` (close-on-exec), made
//! inside the framework's callback, so it outlives the connection object and a late
//! callback after its future was dropped closes it instead of leaking it.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::bridge;
use crate::configuration::base_class;
use crate::error::{FrameworkError, VZError};
use crate::ffi::block::{ObjectErrorArgs, RcBlock};
use crate::ffi::dispatch::QueueBound;
use crate::ffi::foundation;
use crate::ffi::runtime::{Allocated, Id, autoreleasepool, class, objc_methods};
use crate::vm::VirtualMachine;

objc_methods! {
    fn connect_raw(device: &Id, port: u32, handler: &RcBlock) = "connectToPort:completionHandler:";
    fn set_listener_raw(device: &Id, listener: &Id, port: u32) = "setSocketListener:forPort:";
    fn remove_listener_raw(device: &Id, port: u32) = "removeSocketListenerForPort:";
    fn listener_init(listener: Allocated) -> Option<Id> = "init";
    fn listener_set_delegate(listener: &Id, delegate: Option<&Id>) = "setDelegate:";
    fn connection_fd(connection: &Id) -> i32 = "fileDescriptor";
    fn connection_source_port(connection: &Id) -> u32 = "sourcePort";
    fn connection_destination_port(connection: &Id) -> u32 = "destinationPort";
}

/// The ports a virtual machine's vsock device listens on (a VM has at most one
/// vsock device).
#[derive(Debug, Default)]
pub(crate) struct ListenedPorts(Mutex<HashSet<u32>>);

impl ListenedPorts {
    fn lock(&self) -> MutexGuard<'_, HashSet<u32>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `VZVirtioSocketDevice`: the vsock device of a running virtual machine, from
/// [`VirtualMachine::socket_devices`]. It keeps the virtual machine alive.
///
/// ```no_run
/// # async fn demo(vm: arcbox_vz::VirtualMachine) -> Result<(), arcbox_vz::VZError> {
/// use std::io::{Read, Write};
///
/// let device = vm.socket_devices().into_iter().next().expect("a vsock device");
/// let mut stream = device.connect(1024).await?;
/// stream.write_all(b"ping")?;
/// let mut reply = [0; 4];
/// stream.read_exact(&mut reply)?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct VirtioSocketDevice {
    vm: VirtualMachine,
    device: Arc<QueueBound<Id>>,
}

impl VirtioSocketDevice {
    pub(crate) fn new(vm: VirtualMachine, device: QueueBound<Id>) -> Self {
        Self {
            vm,
            device: Arc::new(device),
        }
    }

    /// `-[VZVirtioSocketDevice connectToPort:completionHandler:]`: connects to a
    /// port the guest listens on.
    ///
    /// # Errors
    ///
    /// [`VZError::Io`] with [`io::ErrorKind::ConnectionReset`] when nothing in the
    /// guest listens on the port (common while the guest boots: retry), other
    /// [`VZError::Io`] errors for other POSIX errors, and [`VZError::Framework`] for
    /// the rest.
    pub async fn connect(&self, port: u32) -> Result<VsockStream, VZError> {
        let (tx, rx) = bridge::channel::<Result<VsockStream, VZError>>();
        let device = Arc::clone(&self.device);
        self.vm.queue().exec_async(move || {
            if tx.is_abandoned() {
                return; // cancelled before it began
            }
            let handler = RcBlock::once::<ObjectErrorArgs, _>(move |(connection, error)| {
                let result = match (connection, error) {
                    (Some(connection), _) => VsockStream::from_connection(&connection),
                    (None, Some(error)) => Err(connect_error(foundation::framework_error(&error))),
                    (None, None) => Err(VZError::Framework(FrameworkError::new(
                        "arcbox-vz",
                        0,
                        format!("connecting to vsock port {port} returned neither a connection nor an error"),
                    ))),
                };
                // If the future is gone, the stream comes back and is dropped here,
                // closing its descriptor.
                let _ = tx.complete(result);
            });
            connect_raw(device.get_on_queue(), port, &handler);
        });
        rx.await?
    }

    /// Listens for connections from the guest to `port` on the host
    /// (`setSocketListener:forPort:`). The guest connects to CID 2.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] when this virtual machine already listens on
    /// `port` (the framework would silently replace that listener).
    pub fn listen(&self, port: u32) -> Result<VsockListener, VZError> {
        if !self.vm.listened_ports().lock().insert(port) {
            return Err(VZError::invalid_argument(
                "vsock port",
                format!(
                    "port {port} already has a listener on this virtual machine; close it first"
                ),
            ));
        }
        let shared = Arc::new(ListenerShared::default());
        let delegate = crate::delegate::listener_delegate(Arc::clone(&shared));
        let class = base_class(class!("VZVirtioSocketListener"));
        let Some(listener) = autoreleasepool(|| listener_init(class.alloc())) else {
            self.vm.listened_ports().lock().remove(&port);
            return Err(VZError::ClassNotFound {
                class: "VZVirtioSocketListener",
            });
        };
        let device = Arc::clone(&self.device);
        let objects = self.vm.queue().exec_sync(move || {
            listener_set_delegate(&listener, Some(&delegate));
            set_listener_raw(device.get_on_queue(), &listener, port);
            ListenerObjects {
                listener,
                _delegate: delegate,
            }
        });
        Ok(VsockListener {
            port,
            shared,
            objects: Some(QueueBound::new(self.vm.queue().clone(), objects)),
            device: self.clone(),
        })
    }
}

/// How a failed connect reads: POSIX errors become [`VZError::Io`].
fn connect_error(error: FrameworkError) -> VZError {
    if error.domain == FrameworkError::POSIX_ERROR_DOMAIN {
        if let Ok(code) = i32::try_from(error.code) {
            return VZError::Io(io::Error::from_raw_os_error(code));
        }
    }
    VZError::Framework(error)
}

/// A vsock connection: a stream socket with its own descriptor (close-on-exec,
/// blocking). Use it with `std::io`, or hand it to a reactor: it converts into a
/// [`UnixStream`] or an [`OwnedFd`], and implements [`AsFd`] and [`AsRawFd`].
///
/// ```no_run
/// # async fn demo(device: arcbox_vz::VirtioSocketDevice) -> Result<(), Box<dyn std::error::Error>> {
/// let stream = device.connect(1024).await?;
/// let std_stream: std::os::unix::net::UnixStream = stream.into();
/// std_stream.set_nonblocking(true)?;
/// // tokio::net::UnixStream::from_std(std_stream)?, or async_io::Async::new(std_stream)?
/// # Ok(()) }
/// ```
pub struct VsockStream {
    stream: UnixStream,
    source_port: u32,
    destination_port: u32,
}

impl VsockStream {
    /// Takes a `dup` of a connection's descriptor; must run while the connection is
    /// alive (inside the framework's callback).
    pub(crate) fn from_connection(connection: &Id) -> Result<Self, VZError> {
        let fd = crate::ffi::fd::dup_owned_by_object(connection_fd(connection))?;
        Ok(Self {
            stream: UnixStream::from(fd),
            source_port: connection_source_port(connection),
            destination_port: connection_destination_port(connection),
        })
    }

    /// The host side's port (`sourcePort`).
    pub fn source_port(&self) -> u32 {
        self.source_port
    }

    /// The destination port (`destinationPort`).
    pub fn destination_port(&self) -> u32 {
        self.destination_port
    }

    /// Shuts down the read half, the write half, or both.
    ///
    /// # Errors
    ///
    /// As `shutdown(2)`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.stream.shutdown(how)
    }

    /// Another handle to the same connection (a `dup`).
    ///
    /// # Errors
    ///
    /// As `dup(2)`.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(Self {
            stream: self.stream.try_clone()?,
            source_port: self.source_port,
            destination_port: self.destination_port,
        })
    }

    /// Switches the descriptor to non-blocking mode (for a reactor).
    ///
    /// # Errors
    ///
    /// As `fcntl(2)`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.stream.set_nonblocking(nonblocking)
    }
}

impl fmt::Debug for VsockStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VsockStream")
            .field("fd", &self.stream.as_raw_fd())
            .field("source_port", &self.source_port)
            .field("destination_port", &self.destination_port)
            .finish()
    }
}

impl Read for VsockStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl Read for &VsockStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.stream).read(buf)
    }
}

impl Write for VsockStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &VsockStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&self.stream).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for VsockStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

impl AsRawFd for VsockStream {
    fn as_raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}

impl IntoRawFd for VsockStream {
    fn into_raw_fd(self) -> RawFd {
        self.stream.into_raw_fd()
    }
}

impl From<VsockStream> for UnixStream {
    fn from(stream: VsockStream) -> Self {
        stream.stream
    }
}

impl From<VsockStream> for OwnedFd {
    fn from(stream: VsockStream) -> Self {
        stream.stream.into()
    }
}

/// What a listener delegate shares with its [`VsockListener`].
#[derive(Debug, Default)]
pub(crate) struct ListenerShared {
    state: Mutex<ListenerState>,
}

#[derive(Debug, Default)]
struct ListenerState {
    pending: VecDeque<VsockStream>,
    wakers: Vec<Waker>,
    closed: bool,
}

impl ListenerShared {
    fn lock(&self) -> MutexGuard<'_, ListenerState> {
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
            std::mem::take(&mut state.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
        true
    }

    fn close(&self) {
        let (wakers, pending) = {
            let mut state = self.lock();
            state.closed = true;
            (
                std::mem::take(&mut state.wakers),
                std::mem::take(&mut state.pending),
            )
        };
        // Connections that were never accepted are closed with the listener.
        drop(pending);
        wakers.into_iter().for_each(Waker::wake);
    }
}

#[derive(Debug)]
struct ListenerObjects {
    listener: Id,
    /// Kept alive here: the listener's `delegate` property is weak.
    _delegate: Id,
}

/// Listens for guest connections on one vsock port, from
/// [`VirtioSocketDevice::listen`].
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
    device: VirtioSocketDevice,
}

impl VsockListener {
    /// The port it listens on.
    pub fn port(&self) -> u32 {
        self.port
    }

    /// The next connection from the guest, or `None` once the listener is closed.
    pub async fn accept(&self) -> Option<VsockStream> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for the next connection, for hand-written futures and streams.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<Option<VsockStream>> {
        let mut state = self.shared.lock();
        if let Some(stream) = state.pending.pop_front() {
            return Poll::Ready(Some(stream));
        }
        if state.closed {
            return Poll::Ready(None);
        }
        if !state.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            state.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Stops listening. Pending and later [`accept`](Self::accept)s return `None`.
    pub fn close(&self) {
        let first = !self.shared.lock().closed;
        self.shared.close();
        if first {
            let port = self.port;
            let device = Arc::clone(&self.device.device);
            self.device.vm.queue().exec_async(move || {
                remove_listener_raw(device.get_on_queue(), port);
            });
            self.device.vm.listened_ports().lock().remove(&port);
        }
    }
}

impl Drop for VsockListener {
    fn drop(&mut self) {
        self.close();
        // The listener and its delegate are released on the VM queue after the
        // removal above (the queue is serial).
        drop(self.objects.take());
    }
}

impl Drop for ListenerObjects {
    fn drop(&mut self) {
        // On the VM queue (QueueBound): detach our delegate before it goes away.
        autoreleasepool(|| listener_set_delegate(&self.listener, None));
    }
}
