//! Serial ports (macOS 11): `VZVirtioConsoleDeviceSerialPortConfiguration` and its
//! attachments, `VZFileHandleSerialPortAttachment` and `VZFileSerialPortAttachment`.
//!
//! A Linux guest sees each serial port as `/dev/hvcN`; boot with `console=hvc0` to get
//! the kernel console on the first one.
//!
//! Apple's documentation: <https://developer.apple.com/documentation/virtualization/serial_ports>

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::configuration::{AsObject, base_class, file_to_create, file_type_name};
use crate::error::VZError;
use crate::ffi::fd;
use crate::ffi::foundation::{self, with_error};
use crate::ffi::runtime::{Allocated, Id, autoreleasepool, class, in_pool, objc_methods};

objc_methods! {
    fn file_handle_init(
        attachment: Allocated,
        read: Option<&Id>,
        write: Option<&Id>,
    ) -> Option<Id> = "initWithFileHandleForReading:fileHandleForWriting:";
    fn read_handle_raw(attachment: &Id) -> Option<Id> = "fileHandleForReading";
    fn write_handle_raw(attachment: &Id) -> Option<Id> = "fileHandleForWriting";
    fn file_init(
        attachment: Allocated,
        url: &Id,
        append: bool,
        error: &mut foundation::ErrorSlot,
    ) -> Option<Id> = "initWithURL:append:error:";
    fn file_url_raw(attachment: &Id) -> Option<Id> = "URL";
    fn file_append_raw(attachment: &Id) -> bool = "append";
    fn port_init(port: Allocated) -> Option<Id> = "init";
    fn set_port_attachment_raw(port: &Id, attachment: Option<&Id>) = "setAttachment:";
}

/// Refuses descriptors a serial port cannot stream through: a directory, a block
/// device, or a socket without a peer (a listening socket). Ttys and ptys, other
/// character devices, pipes and FIFOs, regular files and connected sockets are
/// accepted.
fn check_serial_fd(fd: BorrowedFd<'_>, argument: &'static str) -> Result<(), VZError> {
    let raw = fd.as_raw_fd();
    let unusable = |e: std::io::Error| {
        VZError::invalid_argument(
            argument,
            format!("file descriptor {raw} cannot be used: {e}"),
        )
    };
    let file = std::fs::File::from(fd.try_clone_to_owned().map_err(unusable)?);
    let kind = file.metadata().map_err(unusable)?.file_type();
    let refused = if kind.is_dir() || kind.is_block_device() {
        Some(file_type_name(kind))
    } else if kind.is_socket() && !fd::is_connected(fd).map_err(unusable)? {
        Some("a socket without a peer (a listening or unconnected socket)")
    } else {
        None
    };
    match refused {
        None => Ok(()),
        Some(what) => Err(VZError::invalid_argument(
            argument,
            format!(
                "file descriptor {raw} is {what}; a serial port needs a stream: a tty or \
                 pty, a pipe, a regular file or a connected socket"
            ),
        )),
    }
}

/// `VZFileHandleSerialPortAttachment`: connects a serial port to two file
/// descriptors, such as the ends of pipes or a pseudo-terminal.
///
/// The framework **reads** what it sends to the guest from `read` and **writes** the
/// guest's output to `write`. So to type into the guest, write into the other end of
/// the `read` pipe; to see its console, read the other end of the `write` pipe.
///
/// Both descriptors are duplicated (with close-on-exec): the attachment owns its
/// copies and closes them when it is dropped, and the caller keeps its own.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::os::fd::OwnedFd;
/// use arcbox_vz::{FileHandleSerialPortAttachment, VirtioConsoleDeviceSerialPortConfiguration};
///
/// // Guest output goes to this process's stdout; the guest gets no input.
/// let attachment = FileHandleSerialPortAttachment::new(None::<OwnedFd>, Some(std::io::stdout()))?;
/// let port = VirtioConsoleDeviceSerialPortConfiguration::new(attachment);
/// # let _ = port; Ok(()) }
/// ```
#[derive(Debug)]
pub struct FileHandleSerialPortAttachment {
    obj: Id,
}

impl FileHandleSerialPortAttachment {
    /// An attachment that reads guest input from `read` and writes guest output to
    /// `write` (`initWithFileHandleForReading:fileHandleForWriting:`). Either may be
    /// `None` (write `None::<std::os::fd::OwnedFd>` when the type cannot be inferred).
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (`"serial read file descriptor"` or `"serial
    /// write file descriptor"`) when a descriptor is closed, a directory, a block
    /// device or a socket without a peer (a listening socket); [`VZError::Io`] when a
    /// descriptor cannot be duplicated (for example, the process is out of
    /// descriptors).
    pub fn new(read: Option<impl AsFd>, write: Option<impl AsFd>) -> Result<Self, VZError> {
        let class = base_class(class!("VZFileHandleSerialPortAttachment"));
        if let Some(fd) = &read {
            check_serial_fd(fd.as_fd(), "serial read file descriptor")?;
        }
        if let Some(fd) = &write {
            check_serial_fd(fd.as_fd(), "serial write file descriptor")?;
        }
        autoreleasepool(|| {
            let read = read
                .map(|fd| foundation::file_handle(fd.as_fd()))
                .transpose()?;
            let write = write
                .map(|fd| foundation::file_handle(fd.as_fd()))
                .transpose()?;
            let obj = file_handle_init(class.alloc(), read.as_ref(), write.as_ref()).ok_or(
                VZError::ClassNotFound {
                    class: "VZFileHandleSerialPortAttachment",
                },
            )?;
            Ok(Self { obj })
        })
    }

    /// The attachment's own descriptor for guest input (`fileHandleForReading`), a
    /// duplicate of the one passed to [`new`](Self::new). It stays open while the
    /// attachment lives; do not close it.
    pub fn read_fd(&self) -> Option<RawFd> {
        in_pool!(
            read_handle_raw(&self.obj)
                .as_ref()
                .map(foundation::file_handle_fd)
        )
    }

    /// The attachment's own descriptor for guest output (`fileHandleForWriting`), a
    /// duplicate of the one passed to [`new`](Self::new). It stays open while the
    /// attachment lives; do not close it.
    pub fn write_fd(&self) -> Option<RawFd> {
        in_pool!(
            write_handle_raw(&self.obj)
                .as_ref()
                .map(foundation::file_handle_fd)
        )
    }
}

/// `VZFileSerialPortAttachment`: writes the guest's serial output to a file. It is
/// output only: the guest gets no input through it.
#[derive(Debug)]
pub struct FileSerialPortAttachment {
    obj: Id,
}

impl FileSerialPortAttachment {
    /// An attachment that writes guest output to the file at `path`
    /// (`initWithURL:append:error:`). The framework creates the file if needed; an
    /// existing file is appended to when `append` is true, else truncated.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (`"serial log path"`) when the path is empty, not
    /// UTF-8, contains a NUL byte or starts with U+FEFF, ends with `/`, its directory
    /// does not exist, or something other than a regular file is there (a directory;
    /// a FIFO, which would hang the framework's `open`; a socket; a device node);
    /// [`VZError::Framework`] when the framework cannot open the file (for example,
    /// permission denied); its description names the path.
    pub fn new(path: impl AsRef<Path>, append: bool) -> Result<Self, VZError> {
        let path = path.as_ref();
        let url = file_to_create(path, "serial log path")?;
        let class = base_class(class!("VZFileSerialPortAttachment"));
        let obj = with_error(
            "-[VZFileSerialPortAttachment initWithURL:append:error:]",
            |error| file_init(class.alloc(), &url, append, error),
        )
        .map_err(|mut error| {
            // Whatever the framework's message says, the error names the file.
            let shown = path.display().to_string();
            if !error.description.contains(&shown) {
                error.description = format!("{shown}: {}", error.description);
            }
            VZError::Framework(error)
        })?;
        Ok(Self { obj })
    }

    /// The file (`URL`), made absolute.
    pub fn path(&self) -> PathBuf {
        in_pool!({
            file_url_raw(&self.obj)
                .as_ref()
                .map(foundation::url_path)
                .unwrap_or_default()
        })
    }

    /// Whether output is appended to an existing file (`append`) rather than replacing
    /// it.
    pub fn append(&self) -> bool {
        in_pool!(file_append_raw(&self.obj))
    }
}

/// A `VZSerialPortAttachment`: where a serial or console port's data goes.
#[derive(Debug)]
#[non_exhaustive]
pub enum SerialPortAttachment {
    /// File descriptors for input and output.
    FileHandle(FileHandleSerialPortAttachment),
    /// A log file for output.
    File(FileSerialPortAttachment),
}

impl AsObject for SerialPortAttachment {
    fn as_object(&self) -> &Id {
        match self {
            Self::FileHandle(a) => &a.obj,
            Self::File(a) => &a.obj,
        }
    }
}

impl From<FileHandleSerialPortAttachment> for SerialPortAttachment {
    fn from(a: FileHandleSerialPortAttachment) -> Self {
        Self::FileHandle(a)
    }
}

impl From<FileSerialPortAttachment> for SerialPortAttachment {
    fn from(a: FileSerialPortAttachment) -> Self {
        Self::File(a)
    }
}

/// `VZVirtioConsoleDeviceSerialPortConfiguration`: a serial port that the guest sees
/// as a virtio console (`/dev/hvc0` for the first one). Add it with
/// [`VirtualMachineConfiguration::set_serial_ports`](crate::VirtualMachineConfiguration::set_serial_ports).
#[derive(Debug)]
pub struct VirtioConsoleDeviceSerialPortConfiguration {
    obj: Id,
    attachment: SerialPortAttachment,
}

impl AsObject for VirtioConsoleDeviceSerialPortConfiguration {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

impl VirtioConsoleDeviceSerialPortConfiguration {
    /// A serial port connected to `attachment` (`init`, then `setAttachment:`).
    ///
    /// # Panics
    ///
    /// Only if the framework returns nil from `init` (out of memory).
    pub fn new(attachment: impl Into<SerialPortAttachment>) -> Self {
        let attachment = attachment.into();
        let class = base_class(class!("VZVirtioConsoleDeviceSerialPortConfiguration"));
        let obj = autoreleasepool(|| {
            let obj = port_init(class.alloc())
                .expect("-[VZVirtioConsoleDeviceSerialPortConfiguration init] returned nil");
            set_port_attachment_raw(&obj, Some(attachment.as_object()));
            obj
        });
        Self { obj, attachment }
    }

    /// The attachment (`attachment`).
    pub fn attachment(&self) -> &SerialPortAttachment {
        &self.attachment
    }
}
