//! The lifecycle of a virtual machine: start, stop, pause, resume, save and restore,
//! the `can…` checks, and start options.
//!
//! # Cancellation
//!
//! Every lifecycle future follows one contract. The operation is sent to the
//! framework by a work item on the VM queue:
//! - dropped before that work item runs (never polled, or polled and dropped while
//!   the queue is busy), the future **cancels** the operation: it is not sent;
//! - dropped after it ran, the operation goes on in the framework and **completes**;
//!   only its result is discarded, and nothing leaks.
//!
//! So a `start()` that was polled once and dropped at once usually leaves the virtual
//! machine stopped, and one dropped after [`VmEvent::StateChanged`]`(Starting)`
//! leaves it running. The framework may never call a completion handler
//! (`stopWithCompletionHandler:` is known to hang on some guests), so wrap lifecycle
//! calls in your runtime's timeout when that matters: dropping the future is then
//! safe.
//!
//! [`VmEvent::StateChanged`]: crate::VmEvent::StateChanged

#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
use std::path::Path;
use std::sync::Arc;

use super::events::StopReason;
use super::handle::VirtualMachine;
use super::machine::{
    Parts, can_pause_raw, can_request_stop_raw, can_resume_raw, can_start_raw, can_stop_raw,
    state_of, stop_raw,
};
use super::state::VirtualMachineState;
use crate::bridge::{self, Completion};
use crate::error::VZError;
use crate::ffi::block::{ErrorArg, RcBlock};
use crate::ffi::foundation::{self, with_error};
use crate::ffi::runtime::{Allocated, Id, class, in_pool, objc_methods, sel};

objc_methods! {
    fn start_raw(vm: &Id, handler: &RcBlock) = "startWithCompletionHandler:";
    fn start_with_options_raw(vm: &Id, options: &Id, handler: &RcBlock) =
        "startWithOptions:completionHandler:";
    fn pause_raw(vm: &Id, handler: &RcBlock) = "pauseWithCompletionHandler:";
    fn resume_raw(vm: &Id, handler: &RcBlock) = "resumeWithCompletionHandler:";
    fn request_stop_raw(vm: &Id, error: &mut foundation::ErrorSlot) -> bool =
        "requestStopWithError:";
    fn start_options_init(options: Allocated) -> Option<Id> = "init";
}

#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
objc_methods! {
    fn save_raw(vm: &Id, url: &Id, handler: &RcBlock) = "saveMachineStateToURL:completionHandler:";
    fn restore_raw(vm: &Id, url: &Id, handler: &RcBlock) =
        "restoreMachineStateFromURL:completionHandler:";
    fn validate_save_restore_raw(config: &Id, error: &mut foundation::ErrorSlot) -> bool =
        "validateSaveRestoreSupportWithError:";
    fn set_start_up_from_recovery_raw(options: &Id, recovery: bool) =
        "setStartUpFromMacOSRecovery:";
}

/// `validateSaveRestoreSupportWithError:` of the framework's copy of the
/// configuration (on the VM queue, where that copy lives).
#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
fn validate_save_restore(config: &Id) -> Result<(), VZError> {
    crate::configuration::method_since(
        config,
        sel!("validateSaveRestoreSupportWithError:"),
        "saving and restoring virtual machine state",
        "14.0",
    )?;
    with_error(
        "-[VZVirtualMachineConfiguration validateSaveRestoreSupportWithError:]",
        |error| validate_save_restore_raw(config, error).then_some(()),
    )
    .map_err(VZError::InvalidConfiguration)
}

/// The refusal of a lifecycle operation while macOS is being installed.
pub(super) fn installing(operation: &'static str) -> VZError {
    VZError::invalid_argument(
        "virtual machine",
        format!(
            "macOS is being installed on it: {operation} it once MacOSInstaller::install has \
             finished (or cancel the install)"
        ),
    )
}

/// A lifecycle operation, run on the VM queue.
#[derive(Debug)]
enum Op {
    Start,
    StartWithOptions(Id),
    Pause,
    Resume,
    Stop,
    #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
    Save(Id),
    #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
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
            #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
            Self::Save(_) => "save the state of",
            #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
            Self::Restore(_) => "restore the state of",
        }
    }

    /// `Unsupported` when this macOS lacks the method; for save and restore, also
    /// `InvalidConfiguration` when the configuration cannot be saved (the framework
    /// raises if asked anyway). On the VM queue, in the hop that sends the operation.
    fn check_available(&self, parts: &Parts) -> Result<(), VZError> {
        #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
        if matches!(self, Self::Save(_) | Self::Restore(_)) {
            validate_save_restore(&parts.config)?;
        }
        let (sel, feature, min_macos) = match self {
            Self::Stop => (sel!("stopWithCompletionHandler:"), "force stop", "12.0"),
            Self::StartWithOptions(_) => (
                sel!("startWithOptions:completionHandler:"),
                "start options",
                "13.0",
            ),
            #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
            Self::Save(_) => (
                sel!("saveMachineStateToURL:completionHandler:"),
                "saving virtual machine state",
                "14.0",
            ),
            #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
            Self::Restore(_) => (
                sel!("restoreMachineStateFromURL:completionHandler:"),
                "restoring virtual machine state",
                "14.0",
            ),
            _ => return Ok(()),
        };
        crate::configuration::method_since(&parts.vm, sel, feature, min_macos)
    }

    /// Whether the current state allows it (the `can…` properties; save needs Paused,
    /// restore needs Stopped).
    fn allowed(&self, vm: &Id) -> bool {
        match self {
            Self::Start | Self::StartWithOptions(_) => can_start_raw(vm),
            Self::Pause => can_pause_raw(vm),
            Self::Resume => can_resume_raw(vm),
            Self::Stop => can_stop_raw(vm),
            #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
            Self::Save(_) => state_of(vm) == VirtualMachineState::Paused,
            #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
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
            #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
            Self::Save(url) => save_raw(vm, url, handler),
            #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
            Self::Restore(url) => restore_raw(vm, url, handler),
        }
    }

    /// The state a start or a restore puts the virtual machine in: both begin a new
    /// run, whose stop needs its own reason. `None` for the other operations.
    fn run_begins(&self) -> Option<VirtualMachineState> {
        match self {
            Self::Start | Self::StartWithOptions(_) => Some(VirtualMachineState::Starting),
            #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
            Self::Restore(_) => Some(VirtualMachineState::Restoring),
            _ => None,
        }
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
        in_pool!(start_options_init(class.alloc()))
            .map(|obj| Self { obj })
            .ok_or(VZError::ClassNotFound {
                class: "VZVirtualMachineStartOptions",
            })
    }

    /// Options for a macOS guest that boot into macOS Recovery
    /// (`VZMacOSVirtualMachineStartOptions.startUpFromMacOSRecovery`; Apple silicon only,
    /// also compiled for the Linux test simulator).
    ///
    /// # Errors
    ///
    /// [`VZError::Unsupported`] before macOS 13.
    #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
    pub fn macos_recovery() -> Result<Self, VZError> {
        let class = crate::configuration::class_since(
            class!("VZMacOSVirtualMachineStartOptions"),
            "macOS start options",
            "13.0",
        )?;
        let obj = in_pool!(start_options_init(class.alloc())).ok_or(VZError::ClassNotFound {
            class: "VZMacOSVirtualMachineStartOptions",
        })?;
        in_pool!(set_start_up_from_recovery_raw(&obj, true));
        Ok(Self { obj })
    }
}

impl VirtualMachine {
    /// Starts `op` on the queue and returns its completion. The work item owns a
    /// handle to the virtual machine; the completion handler owns only the hub and
    /// the completer (a handler the framework never calls must not keep the virtual
    /// machine alive).
    fn run(&self, op: Op) -> Completion<Result<(), VZError>> {
        let (tx, rx) = bridge::channel();
        let vm = self.clone();
        self.queue().exec_async(move || {
            if tx.is_abandoned() {
                return; // cancelled before it began
            }
            vm.with_parts_on_queue(|parts| {
                let object = &parts.vm;
                if let Err(e) = op.check_available(parts) {
                    let _ = tx.complete(Err(e));
                    return;
                }
                if parts.installing.get() {
                    let _ = tx.complete(Err(installing(op.name())));
                    return;
                }
                if !op.allowed(object) {
                    let state = state_of(object);
                    let _ = tx.complete(Err(VZError::InvalidState {
                        operation: op.name(),
                        state,
                    }));
                    return;
                }
                let hub = Arc::clone(vm.hub());
                if let Some(state) = op.run_begins() {
                    hub.start_began(state);
                }
                let (begins_run, is_stop) = (op.run_begins().is_some(), matches!(op, Op::Stop));
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
                            if begins_run {
                                hub.record_stop(StopReason::StartFailed(error.clone()));
                            }
                            Err(VZError::Framework(error))
                        }
                    };
                    let _ = tx.complete(result);
                });
                op.send(object, &handler);
            });
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
    /// Apple silicon only; also compiled for the Linux test simulator): saves a paused
    /// virtual machine to `path`, after checking `validateSaveRestoreSupportWithError:`.
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
    #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
    pub async fn save_machine_state(&self, path: impl AsRef<Path>) -> Result<(), VZError> {
        let url = crate::configuration::file_to_create(path.as_ref(), "saved state path")?;
        self.run_to_end(Op::Save(url)).await
    }

    /// `-[VZVirtualMachine restoreMachineStateFromURL:completionHandler:]` (macOS 14,
    /// Apple silicon only; also compiled for the Linux test simulator): restores a
    /// stopped virtual machine from a file written by
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
    #[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
    pub async fn restore_machine_state(&self, path: impl AsRef<Path>) -> Result<(), VZError> {
        let url = crate::configuration::existing_file(path.as_ref(), "saved state path")?;
        self.run_to_end(Op::Restore(url)).await
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
        self.with_parts(|parts| {
            let vm = &parts.vm;
            if parts.installing.get() {
                return Err(installing("request a stop of"));
            }
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
}
