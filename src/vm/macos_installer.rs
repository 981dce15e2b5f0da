//! Installing macOS into a virtual machine: `VZMacOSInstaller` (macOS 12, Apple
//! silicon), its `NSProgress` and the key-value observer that turns the progress into
//! [`InstallProgress`].
//!
//! # Threading
//!
//! The installer is made and told to install on the VM queue (the framework asserts
//! the queue and traps otherwise), and its completion handler runs there. The
//! progress is a thread-safe `NSProgress` that the framework updates from threads of
//! its own, so the observer never messages the progress: it reads the new value from
//! the change dictionary. The observer is registered when the installer is made and
//! removed on the VM queue when the install ends or the installer is released,
//! whichever comes first; it lives until then (key-value observing does not retain
//! observers).

use std::cell::Cell;
use std::ffi::c_void;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};

use super::handle::VirtualMachine;
use super::state::VirtualMachineState;
use crate::bridge;
use crate::error::VZError;
use crate::ffi::block::{ErrorArg, RcBlock};
use crate::ffi::delegate::{Method, define, enter, instantiate, kvo_new_double};
use crate::ffi::dispatch::QueueBound;
use crate::ffi::foundation;
use crate::ffi::runtime::{
    Allocated, ClassRef, Id, NullPtr, Object, Sel, class, in_pool, objc_methods, sel,
};

objc_methods! {
    fn installer_init(installer: Allocated, vm: &Id, url: &Id) -> Option<Id> =
        "initWithVirtualMachine:restoreImageURL:";
    fn install_raw(installer: &Id, handler: &RcBlock) = "installWithCompletionHandler:";
    fn progress_of(installer: &Id) -> Option<Id> = "progress";
    fn progress_fraction(progress: &Id) -> f64 = "fractionCompleted";
    fn progress_cancel(progress: &Id) = "cancel";
    fn platform_of(config: &Id) -> Option<Id> = "platform";
    fn is_kind_of(object: &Id, class: ClassRef) -> bool = "isKindOfClass:";
    fn add_observer_raw(object: &Id, observer: &Id, key_path: &Id, options: usize, context: NullPtr) =
        "addObserver:forKeyPath:options:context:";
    fn remove_observer_raw(object: &Id, observer: &Id, key_path: &Id) =
        "removeObserver:forKeyPath:";
}

/// `NSKeyValueObservingOptionNew | NSKeyValueObservingOptionInitial`: the change
/// carries the new value, and one notification comes at once with the current one.
const KVO_NEW_AND_INITIAL: usize = 1 | 4;

/// The observed key of the progress.
const FRACTION_KEY: &str = "fractionCompleted";

/// Where an installer is in its one install.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    #[default]
    NotStarted,
    Installing,
    Finished,
}

/// What the install future, the observer, `cancel` and the progress streams share.
#[derive(Debug, Default)]
struct Shared {
    inner: Mutex<SharedInner>,
}

#[derive(Debug, Default)]
struct SharedInner {
    phase: Phase,
    cancel_requested: bool,
    /// The last fraction the progress reported.
    fraction: f64,
    /// The wakers of pending [`InstallProgress::next`] calls, by stream.
    watchers: Vec<(u64, Waker)>,
    next_watcher: u64,
}

impl SharedInner {
    /// Removes the waker of stream `id`, if it has one.
    fn take_watcher(&mut self, id: u64) -> Option<Waker> {
        let index = self.watchers.iter().position(|(w, _)| *w == id)?;
        Some(self.watchers.swap_remove(index).1)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SharedInner> {
        // Plain data, left consistent by every holder: a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new fraction from the observer (any thread). Ignored once finished.
    fn report(&self, fraction: f64) {
        if !fraction.is_finite() {
            return;
        }
        let wakers = {
            let mut inner = self.lock();
            if inner.phase == Phase::Finished || inner.fraction.to_bits() == fraction.to_bits() {
                return;
            }
            inner.fraction = fraction;
            std::mem::take(&mut inner.watchers)
        };
        // Woken after the lock is released (a waker may run the task inline), each
        // with its panic caught: this runs in a framework callback.
        for (_, waker) in wakers {
            bridge::wake(waker);
        }
    }

    /// The install ended (or will never report again): the streams end after the
    /// last fraction. Returns whether a cancel was asked for.
    fn finish(&self, last_fraction: Option<f64>) -> bool {
        let (wakers, cancelled) = {
            let mut inner = self.lock();
            if let Some(fraction) = last_fraction.filter(|f| f.is_finite()) {
                if inner.phase != Phase::Finished {
                    inner.fraction = fraction;
                }
            }
            inner.phase = Phase::Finished;
            (std::mem::take(&mut inner.watchers), inner.cancel_requested)
        };
        for (_, waker) in wakers {
            bridge::wake(waker);
        }
        cancelled
    }
}

/// What the completion handler owns besides the installer's objects. When the handler
/// is released, called or not, the progress streams end, and the machine accepts
/// lifecycle calls again: a handler the framework drops without calling must not
/// leave either behind.
struct InstallGuard {
    shared: Arc<Shared>,
    /// Taken by the handler, which clears the flag itself on the VM queue.
    vm: Option<VirtualMachine>,
}

impl Drop for InstallGuard {
    fn drop(&mut self) {
        self.shared.finish(None);
        if let Some(vm) = self.vm.take() {
            let queue = vm.queue().clone();
            queue.exec_async(move || vm.with_parts_on_queue(|p| p.installing.set(false)));
        }
    }
}

/// `observeValueForKeyPath:ofObject:change:context:` for the progress's
/// `fractionCompleted`, on whatever thread the framework changed it.
extern "C" fn observe_fraction(
    this: *mut Object,
    _cmd: Sel,
    _key_path: *mut Object,
    _object: *mut Object,
    change: *mut Object,
    _context: *mut c_void,
) {
    // SAFETY: the runtime calls this method on a live instance of the class below;
    // KVO passes a change dictionary alive for the duration of the call, which we
    // retain.
    unsafe {
        enter(this, (), |shared: Arc<Shared>| {
            if let Some(fraction) = Id::retain(change).as_ref().and_then(kvo_new_double) {
                shared.report(fraction);
            }
        });
    }
}

fn observer_class() -> ClassRef {
    static CLASS: OnceLock<ClassRef> = OnceLock::new();
    *CLASS.get_or_init(|| {
        let methods = [Method {
            sel: sel!("observeValueForKeyPath:ofObject:change:context:"),
            imp: observe_fraction as *const c_void,
            types: c"v48@0:8@16@24@32^v40",
        }];
        // SAFETY: the implementation is an extern "C" function whose signature is its
        // type encoding, and reads its receiver's state as a Shared.
        unsafe { define::<Shared>("InstallProgressObserver", c"", &methods) }
    })
}

/// The installer's objects, on the VM queue.
#[derive(Debug)]
struct Parts {
    installer: Id,
    progress: Id,
    observer: Id,
    /// Whether `observer` is still registered on `progress`.
    observing: Cell<bool>,
}

impl Parts {
    /// Removes the observer (once; on the VM queue).
    fn stop_observing(&self) {
        if self.observing.replace(false) {
            in_pool!({
                remove_observer_raw(
                    &self.progress,
                    &self.observer,
                    &foundation::ns_string(FRACTION_KEY),
                );
            });
        }
    }
}

impl Drop for Parts {
    fn drop(&mut self) {
        self.stop_observing();
    }
}

/// `VZMacOSInstaller` (macOS 12, Apple silicon; also compiled for the Linux test
/// simulator): installs macOS from a local restore image (IPSW) onto the disk of a
/// stopped virtual machine whose platform is a
/// [`MacPlatformConfiguration`](crate::MacPlatformConfiguration).
///
/// One installer makes one install attempt. The handle is cheap to clone (clones
/// share the installer), so one task can await [`install`](Self::install) while
/// another watches [`progress`](Self::progress) or calls [`cancel`](Self::cancel).
/// While it installs, the virtual machine's lifecycle calls (start, stop, pause,
/// `request_stop`...) are refused with [`VZError::InvalidArgument`]: Apple leaves
/// their effect undefined. The install keeps the virtual machine alive until it ends,
/// even when every handle has been dropped.
///
/// ```no_run
/// # async fn demo(vm: arcbox_vz::VirtualMachine) -> Result<(), arcbox_vz::VZError> {
/// use arcbox_vz::MacOSInstaller;
///
/// let installer = MacOSInstaller::new(&vm, "UniversalMac_26.0_Restore.ipsw")?;
/// let mut progress = installer.progress();
/// let watcher = async move {
///     while let Some(fraction) = progress.next().await {
///         eprint!("\rinstalling: {:3.0}%", fraction * 100.0);
///     }
/// };
/// // Run `watcher` on your executor (or join it with the install), then:
/// installer.install().await?;
/// # drop(watcher); Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MacOSInstaller {
    /// Released on the VM queue, in a work item of its own, after the last clone and
    /// the completion handler are gone.
    parts: Arc<QueueBound<Parts>>,
    shared: Arc<Shared>,
    vm: VirtualMachine,
    restore_image: PathBuf,
}

impl MacOSInstaller {
    /// Makes an installer for `vm` from the restore image at `restore_image`
    /// (`initWithVirtualMachine:restoreImageURL:`, on the VM queue).
    ///
    /// # Errors
    ///
    /// - [`VZError::InvalidArgument`] when `restore_image` is not an existing regular
    ///   file that starts like an IPSW (a zip archive), or when the virtual machine's
    ///   platform is not a `MacPlatformConfiguration` (the framework would raise);
    /// - [`VZError::Unsupported`] before macOS 12 or on an Intel Mac.
    pub fn new(vm: &VirtualMachine, restore_image: impl AsRef<Path>) -> Result<Self, VZError> {
        let class = crate::configuration::class_since(
            class!("VZMacOSInstaller"),
            "macOS installer",
            "12.0",
        )?;
        let mac_platform = crate::configuration::class_since(
            class!("VZMacPlatformConfiguration"),
            "macOS installer",
            "12.0",
        )?;
        let restore_image = restore_image.as_ref().to_path_buf();
        let url = crate::configuration::restore_image_url(&restore_image)?;
        let shared = Arc::new(Shared::default());
        let observed = Arc::clone(&shared);
        let queue = vm.queue().clone();
        let parts = vm.with_parts(move |parts| {
            let is_mac = in_pool!({
                platform_of(&parts.config).is_some_and(|p| is_kind_of(&p, mac_platform))
            });
            if !is_mac {
                return Err(VZError::invalid_argument(
                    "virtual machine",
                    "its platform is not a MacPlatformConfiguration: only a macOS guest \
                     configuration (MacPlatformConfiguration with MacOSBootLoader) can be installed",
                ));
            }
            let installer = in_pool!(installer_init(class.alloc(), &parts.vm, &url))
                .ok_or(VZError::ClassNotFound {
                    class: "VZMacOSInstaller",
                })?;
            let progress = in_pool!(progress_of(&installer)).ok_or(
                VZError::ClassNotFound {
                    class: "NSProgress",
                },
            )?;
            let observer = instantiate(observer_class(), observed);
            in_pool!({
                add_observer_raw(
                    &progress,
                    &observer,
                    &foundation::ns_string(FRACTION_KEY),
                    KVO_NEW_AND_INITIAL,
                    NullPtr,
                );
            });
            let parts = Parts {
                installer,
                progress,
                observer,
                observing: Cell::new(true),
            };
            Ok(QueueBound::new(queue, parts))
        })?;
        Ok(Self {
            parts: Arc::new(parts),
            shared,
            vm: vm.clone(),
            restore_image,
        })
    }

    /// Installs macOS (`installWithCompletionHandler:`, on the VM queue) and resolves
    /// when the install ends. The virtual machine must be stopped; it is stopped
    /// again afterwards, ready to [`start`](VirtualMachine::start).
    ///
    /// Dropped before the VM queue reaches it, the install is not sent and the
    /// installer can still be used; dropped after, the install goes on in the
    /// framework and only its result is discarded.
    ///
    /// # Errors
    ///
    /// - [`VZError::InvalidState`] when the virtual machine is not stopped, and
    ///   [`VZError::InvalidArgument`] when another installer is installing onto it;
    /// - [`VZError::InvalidArgument`] when this installer has already installed (or
    ///   tried to): make a new one for another attempt;
    /// - [`VZError::Cancelled`] when [`cancel`](Self::cancel) stopped it;
    /// - [`VZError::Framework`] when the install fails (for example
    ///   `VZErrorInstallationFailed` 10007, or `VZErrorInstallationRequiresUpdate`
    ///   10006 when this Mac must be updated first).
    pub fn install(&self) -> impl Future<Output = Result<(), VZError>> + Send + 'static {
        let (tx, rx) = bridge::channel::<Result<(), VZError>>();
        let (parts, shared, vm) = (
            Arc::clone(&self.parts),
            Arc::clone(&self.shared),
            self.vm.clone(),
        );
        self.vm.queue().exec_async(move || {
            if tx.is_abandoned() {
                return; // dropped before it began: not sent
            }
            if vm.with_parts_on_queue(|p| p.installing.get()) {
                let _ = tx.complete(Err(super::lifecycle::installing("install macOS on")));
                return;
            }
            let state = vm.state_on_queue();
            if state != VirtualMachineState::Stopped {
                let _ = tx.complete(Err(VZError::InvalidState {
                    operation: "install macOS on",
                    state,
                }));
                return;
            }
            {
                let mut inner = shared.lock();
                if inner.phase != Phase::NotStarted {
                    drop(inner);
                    let _ = tx.complete(Err(VZError::invalid_argument(
                        "installer",
                        "this installer has already been used: one MacOSInstaller makes one \
                         install attempt; make a new one to try again",
                    )));
                    return;
                }
                inner.phase = Phase::Installing;
            }
            vm.with_parts_on_queue(|p| p.installing.set(true));
            let mut guard = InstallGuard {
                shared: Arc::clone(&shared),
                vm: Some(vm),
            };
            let held = Arc::clone(&parts);
            let handler = RcBlock::once::<ErrorArg, _>(move |error| {
                if let Some(vm) = guard.vm.take() {
                    vm.with_parts_on_queue(|p| p.installing.set(false));
                }
                let objects = held.get_on_queue();
                objects.stop_observing();
                let last = progress_fraction(&objects.progress);
                let cancelled = guard.shared.finish(Some(last));
                let result = match error {
                    None => Ok(()),
                    Some(_) if cancelled => Err(VZError::Cancelled),
                    Some(error) => Err(VZError::Framework(foundation::framework_error(&error))),
                };
                let _ = tx.complete(result);
                // `held` goes with the handler; as a QueueBound, its release is a work
                // item of its own, never this callback.
            });
            let objects = parts.get_on_queue();
            in_pool!(install_raw(&objects.installer, &handler));
        });
        async move { rx.await? }
    }

    /// Cancels a running install (`-[NSProgress cancel]`, sent from the VM queue):
    /// [`install`](Self::install) then fails with [`VZError::Cancelled`] (or
    /// succeeds, if the install finished first). After the install has ended this
    /// does nothing.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] when the install has not started: the framework
    /// raises when a progress cancelled before the install is installed, so this is
    /// refused and nothing is sent.
    pub fn cancel(&self) -> Result<(), VZError> {
        let shared = Arc::clone(&self.shared);
        self.parts.with(move |parts| {
            let mut inner = shared.lock();
            match inner.phase {
                Phase::NotStarted => Err(VZError::invalid_argument(
                    "installer",
                    "the install has not started; cancel only after install() has begun \
                     (drop the install future instead to keep it from starting)",
                )),
                Phase::Installing => {
                    inner.cancel_requested = true;
                    drop(inner);
                    in_pool!(progress_cancel(&parts.progress));
                    Ok(())
                }
                Phase::Finished => Ok(()),
            }
        })
    }

    /// A stream of the completed fraction (0.0 to 1.0, as the framework reports it),
    /// which ends when the install ends. Each stream starts with the current value.
    pub fn progress(&self) -> InstallProgress {
        let id = {
            let mut inner = self.shared.lock();
            inner.next_watcher += 1;
            inner.next_watcher
        };
        InstallProgress {
            shared: Arc::clone(&self.shared),
            id,
            seen: None,
            ended: false,
        }
    }

    /// The completed fraction last reported.
    pub fn fraction_completed(&self) -> f64 {
        self.shared.lock().fraction
    }

    /// The virtual machine it installs into.
    pub fn virtual_machine(&self) -> &VirtualMachine {
        &self.vm
    }

    /// The restore image it installs from.
    pub fn restore_image_path(&self) -> &Path {
        &self.restore_image
    }
}

/// The progress of a [`MacOSInstaller`]: each new completed fraction, then `None`
/// once the install has ended. Values are coalesced: a stream polled slowly gets the
/// latest fraction, not every step. Dropping it leaves nothing behind.
#[derive(Debug)]
pub struct InstallProgress {
    shared: Arc<Shared>,
    id: u64,
    /// The bits of the last fraction returned.
    seen: Option<u64>,
    ended: bool,
}

impl InstallProgress {
    /// The next completed fraction, or `None` when the install has ended.
    pub async fn next(&mut self) -> Option<f64> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Polls for the next completed fraction, for use in a hand-written stream.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<f64>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let mut inner = self.shared.lock();
        // This stream's previous waker is user code: dropped after the lock.
        let previous = inner.take_watcher(self.id);
        let ready = if self.seen != Some(inner.fraction.to_bits()) {
            self.seen = Some(inner.fraction.to_bits());
            Poll::Ready(Some(inner.fraction))
        } else if inner.phase == Phase::Finished {
            self.ended = true;
            Poll::Ready(None)
        } else {
            inner.watchers.push((self.id, cx.waker().clone()));
            Poll::Pending
        };
        drop(inner);
        drop(previous);
        ready
    }
}

impl Drop for InstallProgress {
    fn drop(&mut self) {
        let previous = self.shared.lock().take_watcher(self.id);
        drop(previous); // after the lock
    }
}
