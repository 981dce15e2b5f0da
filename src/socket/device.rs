//! [`VirtioSocketDevice`]: the runtime `VZVirtioSocketDevice`.

use std::io;
use std::sync::Arc;

use super::delegate::listener_delegate;
use super::listener::{ListenerObjects, ListenerShared, VsockListener, listener_set_delegate};
use super::stream::VsockStream;
use crate::bridge;
use crate::configuration::base_class;
use crate::error::{FrameworkError, VZError};
use crate::ffi::block::{ObjectErrorArgs, RcBlock};
use crate::ffi::dispatch::QueueBound;
use crate::ffi::foundation;
use crate::ffi::runtime::{Allocated, Id, class, in_pool, objc_methods};
use crate::vm::{DeviceHandle, VirtualMachineState};

objc_methods! {
    fn connect_raw(device: &Id, port: u32, handler: &RcBlock) = "connectToPort:completionHandler:";
    fn set_listener_raw(device: &Id, listener: &Id, port: u32) = "setSocketListener:forPort:";
    fn listener_init(listener: Allocated) -> Option<Id> = "init";
}

/// `VMADDR_PORT_ANY`: "any port" in the vsock address family, never a real port.
const VMADDR_PORT_ANY: u32 = u32::MAX;

/// `VZVirtioSocketDevice`: the vsock device of a running virtual machine, from
/// [`VirtualMachine::socket_devices`](crate::VirtualMachine::socket_devices). It
/// keeps the virtual machine alive.
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
    handle: DeviceHandle,
}

impl VirtioSocketDevice {
    pub(crate) fn new(handle: DeviceHandle) -> Self {
        Self { handle }
    }

    /// `-[VZVirtioSocketDevice connectToPort:completionHandler:]`: connects to a
    /// port the guest listens on.
    ///
    /// Dropping the future before the VM queue has sent the request makes no
    /// connection; dropping it later closes the connection when it arrives.
    ///
    /// # Errors
    ///
    /// - [`VZError::InvalidState`] unless the virtual machine is running or paused
    ///   (a connection needs a guest);
    /// - [`VZError::Io`] with [`io::ErrorKind::ConnectionReset`] when nothing in the
    ///   guest accepted the connection (common while the guest boots: retry); the
    ///   message names the port;
    /// - other [`VZError::Io`] errors for other POSIX errors, and
    ///   [`VZError::Framework`] for the rest.
    pub async fn connect(&self, port: u32) -> Result<VsockStream, VZError> {
        let (tx, rx) = bridge::channel::<Result<VsockStream, VZError>>();
        let device = self.handle.clone();
        // The work item owns the device handle, and so the virtual machine.
        self.handle.exec_async(move |object| {
            if tx.is_abandoned() {
                return; // cancelled before it began
            }
            let state = device.vm().state_on_queue();
            if !matches!(
                state,
                VirtualMachineState::Running | VirtualMachineState::Paused
            ) {
                let _ = tx.complete(Err(VZError::InvalidState {
                    operation: "connect over vsock to",
                    state,
                }));
                return;
            }
            // The handler owns only the completer: a handler the framework never
            // calls must not keep the virtual machine alive.
            let handler = RcBlock::once::<ObjectErrorArgs, _>(move |(connection, error)| {
                let result = match (connection, error) {
                    (Some(connection), _) => VsockStream::from_connection(&connection),
                    (None, Some(error)) => {
                        Err(connect_error(port, foundation::framework_error(&error)))
                    }
                    (None, None) => Err(VZError::Framework(FrameworkError::new(
                        "arcbox-vz",
                        0,
                        format!(
                            "connecting to vsock port {port} returned neither a connection nor an error"
                        ),
                    ))),
                };
                // If the future is gone, the stream comes back and is dropped here,
                // closing its descriptor.
                let _ = tx.complete(result);
            });
            in_pool!(connect_raw(object, port, &handler));
        });
        rx.await?
    }

    /// Listens for connections from the guest to `port` on the host
    /// (`setSocketListener:forPort:`). The guest connects to CID 2.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] when this virtual machine already listens on
    /// `port` (the framework would silently replace that listener), or for port
    /// `u32::MAX` (`VMADDR_PORT_ANY`, which no guest can connect to).
    pub fn listen(&self, port: u32) -> Result<VsockListener, VZError> {
        if port == VMADDR_PORT_ANY {
            return Err(VZError::invalid_argument(
                "vsock port",
                format!(
                    "port {port} is VMADDR_PORT_ANY, which means \"any port\" and cannot be listened on; choose a port below {VMADDR_PORT_ANY}"
                ),
            ));
        }
        if !self.handle.vm().claim_port(port) {
            return Err(VZError::invalid_argument(
                "vsock port",
                format!(
                    "port {port} already has a listener on this virtual machine; close it first"
                ),
            ));
        }
        let shared = Arc::new(ListenerShared::default());
        let delegate = listener_delegate(Arc::clone(&shared));
        let class = base_class(class!("VZVirtioSocketListener"));
        let Some(listener) = in_pool!(listener_init(class.alloc())) else {
            self.handle.vm().release_port(port);
            return Err(VZError::ClassNotFound {
                class: "VZVirtioSocketListener",
            });
        };
        let objects = self.handle.with(move |device| {
            listener_set_delegate(&listener, Some(&delegate));
            set_listener_raw(device, &listener, port);
            ListenerObjects {
                listener,
                _delegate: delegate,
            }
        });
        let objects = QueueBound::new(self.handle.queue().clone(), objects);
        Ok(VsockListener::new(
            port,
            shared,
            objects,
            self.handle.clone(),
        ))
    }
}

/// How a failed connect reads: POSIX errors become [`VZError::Io`] naming the port.
fn connect_error(port: u32, error: FrameworkError) -> VZError {
    if error.domain == FrameworkError::POSIX_ERROR_DOMAIN {
        if let Ok(code) = i32::try_from(error.code) {
            let os = io::Error::from_raw_os_error(code);
            let message = if os.kind() == io::ErrorKind::ConnectionReset {
                format!(
                    "vsock port {port}: nothing in the guest accepted the connection ({os}); the guest may still be starting its service, so retry"
                )
            } else {
                format!("vsock port {port}: {os}")
            };
            return VZError::Io(io::Error::new(os.kind(), message));
        }
    }
    VZError::Framework(error)
}
