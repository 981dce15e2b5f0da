//! [`VZError`], the one error type of the crate.

use std::fmt;

use crate::error_code::VZErrorCode;
use crate::vm::state::VirtualMachineState;

/// Everything that can go wrong, as one matchable enum.
///
/// Bad input is caught in Rust before Virtualization.framework sees it, so it never
/// raises an Objective-C exception (which would abort the process); it comes back as
/// [`VZError::InvalidArgument`]. Errors the framework reports keep their `NSError`
/// domain, code and messages in a [`FrameworkError`].
///
/// ```
/// # #[cfg(any(target_os = "macos", arcbox_vz_sim))]
/// # fn demo() {
/// use arcbox_vz::VZError;
///
/// fn explain(err: &VZError) -> &'static str {
///     match err {
///         VZError::InvalidArgument { .. } => "fix the input",
///         VZError::Unsupported { .. } => "upgrade macOS",
///         VZError::Cancelled => "retry",
///         _ => "see the message",
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum VZError {
    /// An argument was rejected before reaching the framework.
    InvalidArgument {
        /// Which argument, for example `"kernel path"`.
        argument: &'static str,
        /// Why, in words a person can act on.
        reason: String,
    },
    /// `-[VZVirtualMachineConfiguration validateWithError:]` (or a similar
    /// validation) refused the configuration.
    InvalidConfiguration(FrameworkError),
    /// The virtual machine is in a state that does not allow the operation.
    InvalidState {
        /// The operation that was refused, for example `"start"`.
        operation: &'static str,
        /// The state the virtual machine was in.
        state: VirtualMachineState,
    },
    /// The feature needs a newer macOS (or Apple silicon) than this one.
    Unsupported {
        /// The feature, for example `"EFI boot loader"`.
        feature: &'static str,
        /// The first macOS version that has it, for example `"13.0"`.
        min_macos: &'static str,
    },
    /// The framework reported an `NSError`.
    Framework(FrameworkError),
    /// The operation ended without a result: its completion handler was released
    /// without being called (for example, the virtual machine was torn down).
    Cancelled,
    /// An operating-system call failed.
    Io(std::io::Error),
    /// An Objective-C class does not exist in this process: it is newer than the
    /// running macOS, or exists only on Apple silicon.
    ClassNotFound {
        /// The class name, for example `"VZEFIBootLoader"`.
        class: &'static str,
    },
    /// A vmnet function (macOS 26 vmnet networks) returned a `vmnet_return_t` other
    /// than `VMNET_SUCCESS`: which function, and the status with its C name.
    Vmnet(crate::device::VmnetError),
    /// The call must be made on the process's main thread (the one running `main`),
    /// as AppKit requires, and was made on another; nothing was done.
    NotMainThread {
        /// What was refused, for example `"open a virtual machine window"`.
        operation: &'static str,
    },
    /// [`gui::run`](crate::gui::run) was called while another `gui::run` is still
    /// running on the main thread (for example, from work on the main queue that the
    /// first one's application loop executes). AppKit's application loop does not
    /// nest, so nothing was done: open the second window after the first `run`
    /// returns.
    WindowAlreadyOpen,
}

impl VZError {
    pub(crate) fn invalid_argument(argument: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            argument,
            reason: reason.into(),
        }
    }

    /// The `NSError` details, for the variants that carry one.
    pub fn framework_error(&self) -> Option<&FrameworkError> {
        match self {
            Self::InvalidConfiguration(e) | Self::Framework(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for VZError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidArgument { argument, reason } => write!(f, "invalid {argument}: {reason}"),
            Self::InvalidConfiguration(e) => write!(f, "invalid virtual machine configuration: {e}"),
            Self::InvalidState { operation, state } => {
                write!(f, "cannot {operation} a virtual machine that is {state}")
            }
            Self::Unsupported { feature, min_macos } => {
                write!(f, "{feature} is not supported here: it needs macOS {min_macos} or later")
            }
            Self::Framework(e) => e.fmt(f),
            Self::Cancelled => f.write_str(
                "the operation was cancelled: its completion handler was released without being called",
            ),
            Self::Io(e) => write!(f, "I/O error: {e}"),
            Self::ClassNotFound { class } => write!(
                f,
                "the Objective-C class {class} is not available: this macOS is too old, \
                 or the class exists only on Apple silicon"
            ),
            Self::Vmnet(e) => e.fmt(f),
            Self::NotMainThread { operation } => write!(
                f,
                "cannot {operation} from this thread: only the process's main thread may"
            ),
            Self::WindowAlreadyOpen => f.write_str(
                "a virtual machine window is already open on the main thread: gui::run does \
                 not nest; open another window after the running gui::run returns",
            ),
        }
    }
}

impl std::error::Error for VZError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::InvalidConfiguration(e) | Self::Framework(e) => Some(e),
            Self::Vmnet(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for VZError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// An `NSError` from the framework, copied out into Rust strings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FrameworkError {
    /// The error domain, for example `"VZErrorDomain"` or `"NSPOSIXErrorDomain"`.
    pub domain: String,
    /// The error code within the domain (for `VZErrorDomain`, a `VZErrorCode`: see
    /// [`vz_code`](Self::vz_code)).
    pub code: isize,
    /// `localizedDescription`.
    pub description: String,
    /// `localizedFailureReason`, when the error has one.
    pub failure_reason: Option<String>,
}

impl FrameworkError {
    /// The domain of Virtualization.framework's own errors.
    pub const VZ_ERROR_DOMAIN: &'static str = "VZErrorDomain";
    /// The domain of POSIX `errno` values.
    pub const POSIX_ERROR_DOMAIN: &'static str = "NSPOSIXErrorDomain";

    pub(crate) fn new(domain: &str, code: isize, description: impl Into<String>) -> Self {
        Self {
            domain: domain.to_owned(),
            code,
            description: description.into(),
            failure_reason: None,
        }
    }

    /// Whether this is a `VZErrorDomain` error with the given code.
    pub fn is_vz(&self, code: isize) -> bool {
        self.domain == Self::VZ_ERROR_DOMAIN && self.code == code
    }

    /// The code as a [`VZErrorCode`] when the domain is `VZErrorDomain`; `None` for
    /// any other domain (`NSPOSIXErrorDomain`, `NSOSStatusErrorDomain`,
    /// `NSCocoaErrorDomain`, ...). A `VZErrorDomain` code this crate does not name
    /// is [`VZErrorCode::Other`].
    ///
    /// ```
    /// # #[cfg(any(target_os = "macos", arcbox_vz_sim))]
    /// # fn demo(err: &arcbox_vz::VZError) -> &'static str {
    /// use arcbox_vz::VZErrorCode;
    ///
    /// match err.framework_error().and_then(|e| e.vz_code()) {
    ///     Some(VZErrorCode::InvalidVirtualMachineConfiguration) => "check the entitlement",
    ///     Some(VZErrorCode::OutOfDiskSpace) => "free some disk space",
    ///     _ => "see the message",
    /// }
    /// # }
    /// ```
    pub fn vz_code(&self) -> Option<VZErrorCode> {
        (self.domain == Self::VZ_ERROR_DOMAIN).then(|| VZErrorCode::from_raw(self.code))
    }
}

impl fmt::Display for FrameworkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} code {})",
            self.description, self.domain, self.code
        )?;
        match &self.failure_reason {
            Some(reason) if *reason != self.description => write!(f, ": {reason}"),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for FrameworkError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nested_window_says_what_to_do() {
        let message = VZError::WindowAlreadyOpen.to_string();
        assert!(message.contains("already open"), "{message}");
        assert!(
            message.contains("after the running gui::run returns"),
            "{message}"
        );
    }

    #[test]
    fn messages_name_what_to_fix() {
        let e = VZError::invalid_argument("kernel path", "/nope does not exist");
        assert_eq!(e.to_string(), "invalid kernel path: /nope does not exist");
        let e = VZError::Unsupported {
            feature: "EFI boot loader",
            min_macos: "13.0",
        };
        assert!(e.to_string().contains("needs macOS 13.0"));
        let mut fe =
            FrameworkError::new("VZErrorDomain", 2, "Invalid virtual machine configuration.");
        fe.failure_reason = Some("The memory size is too small.".into());
        assert!(fe.is_vz(2));
        assert_eq!(
            VZError::InvalidConfiguration(fe).to_string(),
            "invalid virtual machine configuration: Invalid virtual machine configuration. \
             (VZErrorDomain code 2): The memory size is too small."
        );
        let e = VZError::InvalidState {
            operation: "pause",
            state: VirtualMachineState::Stopped,
        };
        assert_eq!(
            e.to_string(),
            "cannot pause a virtual machine that is stopped"
        );
    }

    #[test]
    fn vz_code_only_for_the_vz_domain() {
        let fe = |domain: &str, code| FrameworkError::new(domain, code, "x");
        assert_eq!(
            fe(FrameworkError::VZ_ERROR_DOMAIN, 2).vz_code(),
            Some(VZErrorCode::InvalidVirtualMachineConfiguration)
        );
        assert_eq!(
            fe(FrameworkError::VZ_ERROR_DOMAIN, 30002).vz_code(),
            Some(VZErrorCode::DeviceAlreadyAttached)
        );
        for &code in VZErrorCode::ALL {
            assert_eq!(
                fe(FrameworkError::VZ_ERROR_DOMAIN, code.raw()).vz_code(),
                Some(code)
            );
        }
        // A code from a newer macOS is kept.
        assert_eq!(
            fe(FrameworkError::VZ_ERROR_DOMAIN, 77).vz_code(),
            Some(VZErrorCode::Other(77))
        );
        // Other domains share the numbers but not the meaning.
        for domain in [
            FrameworkError::POSIX_ERROR_DOMAIN,
            "NSOSStatusErrorDomain",
            "NSCocoaErrorDomain",
            "vzerrordomain",
            "",
        ] {
            assert_eq!(fe(domain, 2).vz_code(), None, "{domain}");
        }
        let e = VZError::Framework(fe(FrameworkError::VZ_ERROR_DOMAIN, 8));
        assert_eq!(
            e.framework_error().and_then(FrameworkError::vz_code),
            Some(VZErrorCode::OutOfDiskSpace)
        );
    }

    #[test]
    fn io_errors_keep_their_source() {
        use std::error::Error;
        let e = VZError::from(std::io::Error::from_raw_os_error(libc::EBADF));
        assert!(e.source().is_some());
    }
}
