//! The [`VirtualMachine`] handle: what it owns, how calls reach its queue, its event
//! streams and stop waiters, and the handles of its runtime devices.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use super::events::{EventHub, StopReason, VmEvents};
use super::machine::{Machine, Parts, state_of, vm_is_supported};
use super::state::VirtualMachineState;
use crate::configuration::base_class;
use crate::error::VZError;
use crate::ffi::dispatch::{Queue, QueueBound};
use crate::ffi::foundation;
use crate::ffi::runtime::{Id, Sel, class, in_pool};

/// Whether this Mac can run virtual machines (`+[VZVirtualMachine isSupported]`):
/// false, for example, inside a virtual machine without nested virtualization.
pub fn is_supported() -> bool {
    in_pool!(vm_is_supported(base_class(class!("VZVirtualMachine"))))
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
/// half-released machine. macOS 11 has no force stop: there a running or paused
/// virtual machine is released as it is (once settled). To shut a guest down cleanly, call
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
    /// Dropped last of all handles: the teardown, a work item of its own.
    machine: QueueBound<Machine>,
    hub: Arc<EventHub>,
    /// The vsock ports with a listener (a virtual machine has at most one vsock
    /// device), sorted.
    vsock_ports: Mutex<Vec<u32>>,
}

impl VirtualMachine {
    pub(crate) fn from_configuration(config: &Id) -> Result<Self, VZError> {
        let queue = Queue::new_serial("dev.arcbox-vz.virtual-machine");
        let hub = Arc::new(EventHub::default());
        let class = base_class(class!("VZVirtualMachine"));
        let (q, hub2, config) = (queue.clone(), Arc::clone(&hub), config.clone());
        // Everything, init included, on the VM queue.
        let machine =
            queue.exec_sync(move || Parts::new(class, &config, &q, hub2).map(Machine::new))?;
        Ok(Self {
            inner: Arc::new(Inner {
                machine: QueueBound::new(queue, machine),
                hub,
                vsock_ports: Mutex::default(),
            }),
        })
    }

    /// Keeps `objects` alive until the `VZVirtualMachine` is released: the vmnet
    /// networks of attachments given to the framework (whether it retains them is
    /// undocumented). Any type, so that the running VM does not depend on the devices.
    pub(crate) fn keep_alive<T: Send + 'static>(&self, objects: Vec<T>) {
        if objects.is_empty() {
            return;
        }
        self.inner.machine.with(move |m| {
            m.parts()
                .kept_alive
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend(
                    objects
                        .into_iter()
                        .map(|o| Box::new(o) as Box<dyn std::any::Any + Send>),
                );
        });
    }

    /// Runs `f` with the `VZVirtualMachine` on its queue.
    pub(crate) fn with_vm<R: Send>(&self, f: impl FnOnce(&Id) -> R + Send) -> R {
        self.inner.machine.with(|m| f(&m.parts().vm))
    }

    /// Runs `f` with the parts on the VM queue.
    pub(super) fn with_parts<R: Send>(&self, f: impl FnOnce(&Parts) -> R + Send) -> R {
        self.inner.machine.with(|m| f(m.parts()))
    }

    /// Runs `f` with the parts, from code already running on the VM queue.
    pub(super) fn with_parts_on_queue<R>(&self, f: impl FnOnce(&Parts) -> R) -> R {
        f(self.inner.machine.get_on_queue().parts())
    }

    /// The `VZVirtualMachine`, from code already running on the VM queue.
    pub(crate) fn vm_on_queue(&self) -> &Id {
        &self.inner.machine.get_on_queue().parts().vm
    }

    /// The state, from code already running on the VM queue.
    pub(crate) fn state_on_queue(&self) -> VirtualMachineState {
        state_of(self.vm_on_queue())
    }

    pub(crate) fn queue(&self) -> &Queue {
        self.inner.machine.queue()
    }

    pub(super) fn hub(&self) -> &Arc<EventHub> {
        &self.inner.hub
    }

    /// Records a listener on vsock `port`; false when the port already has one.
    pub(crate) fn claim_port(&self, port: u32) -> bool {
        let mut ports = self.vsock_ports();
        match ports.binary_search(&port) {
            Ok(_) => false,
            Err(slot) => {
                ports.insert(slot, port);
                true
            }
        }
    }

    /// Forgets the listener on vsock `port`.
    pub(crate) fn release_port(&self, port: u32) {
        let mut ports = self.vsock_ports();
        if let Ok(slot) = ports.binary_search(&port) {
            ports.remove(slot);
        }
    }

    fn vsock_ports(&self) -> MutexGuard<'_, Vec<u32>> {
        // Plain data only; a poisoned lock is consistent.
        self.inner
            .vsock_ports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A stream of everything that happens to the virtual machine from now on: state
    /// changes, the guest stopping, errors, network disconnections. Dropping the
    /// stream unsubscribes it.
    pub fn events(&self) -> VmEvents {
        self.inner.hub.subscribe()
    }

    /// Resolves once the virtual machine is stopped (or in the error state), with
    /// the reason. If it is not running, resolves at once with the reason of the last
    /// stop ([`StopReason::NeverStarted`] if it never ran). No polling: the delegate
    /// and completion handlers wake it.
    ///
    /// The framework does not order its `state` notification, its delegate call and
    /// its completion handler, so a virtual machine already stopped whose reason has
    /// not been delivered yet is waited for until it is: the result is never a
    /// guess. The future is `Send`; dropping it removes its waiter at once.
    ///
    /// ```no_run
    /// # async fn demo(vm: arcbox_vz::VirtualMachine) {
    /// match vm.wait_until_stopped().await {
    ///     arcbox_vz::StopReason::GuestStopped => println!("clean shutdown"),
    ///     other => eprintln!("stopped: {other:?}"),
    /// }
    /// # }
    /// ```
    pub fn wait_until_stopped(&self) -> WaitUntilStopped<'_> {
        WaitUntilStopped { vm: self, id: None }
    }

    /// The runtime devices in an array property of the virtual machine, each made by
    /// `wrap` from its handle.
    pub(crate) fn devices<D>(
        &self,
        property: Sel,
        get: fn(&Id) -> Option<Id>,
        wrap: fn(DeviceHandle) -> D,
    ) -> Vec<D> {
        // Plain loops here and below: an iterator chain per device type would be
        // compiled once per type, several hundred lines of LLVM IR each.
        let objects = self.device_objects(property, get);
        let mut devices = Vec::with_capacity(objects.len());
        for object in objects {
            devices.push(wrap(DeviceHandle {
                vm: self.clone(),
                object: Arc::new(object),
            }));
        }
        devices
    }

    /// The runtime objects in an array property, or none when this macOS lacks the
    /// property (it then cannot have such devices, or, for network devices before
    /// macOS 12, gives no handle to them).
    pub(crate) fn device_objects(
        &self,
        property: Sel,
        get: fn(&Id) -> Option<Id>,
    ) -> Vec<QueueBound<Id>> {
        let objects = self.with_vm(move |vm| {
            if !vm.responds_to(property) {
                return Vec::new();
            }
            get(vm)
                .as_ref()
                .map(foundation::array_items)
                .unwrap_or_default()
        });
        let mut bound = Vec::with_capacity(objects.len());
        for object in objects {
            bound.push(QueueBound::new(self.queue().clone(), object));
        }
        bound
    }
}

/// The future of [`VirtualMachine::wait_until_stopped`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct WaitUntilStopped<'a> {
    vm: &'a VirtualMachine,
    /// The waiter's id in the hub, once registered (at the first poll).
    id: Option<u64>,
}

impl Future for WaitUntilStopped<'_> {
    type Output = StopReason;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<StopReason> {
        let hub = Arc::clone(self.vm.hub());
        let id = match self.id {
            Some(id) => id,
            None => {
                let id = hub.add_stop_waiter();
                self.id = Some(id);
                // The state is read on the VM queue; the work item owns a handle.
                let vm = self.vm.clone();
                self.vm.queue().exec_async(move || {
                    let state = state_of(vm.vm_on_queue());
                    vm.hub().arm_stop_waiter(id, state);
                });
                id
            }
        };
        let poll = hub.poll_stop_waiter(id, cx);
        if poll.is_ready() {
            self.id = None; // the hub removed it
        }
        poll
    }
}

impl Drop for WaitUntilStopped<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.vm.hub().remove_stop_waiter(id);
        }
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

    /// Runs `f` with the device on the VM queue, later. The work item owns a handle
    /// to the virtual machine, so the device cannot be torn down under it.
    pub(crate) fn exec_async(&self, f: impl FnOnce(&Id) + Send + 'static) {
        let this = self.clone();
        self.vm
            .queue()
            .exec_async(move || f(this.object.get_on_queue()));
    }

    /// The virtual machine the device belongs to.
    pub(crate) fn vm(&self) -> &VirtualMachine {
        &self.vm
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
