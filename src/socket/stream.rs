//! [`VsockStream`]: one vsock connection, as a stream socket with its own descriptor.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use crate::error::VZError;
use crate::ffi::runtime::{Id, objc_methods};

objc_methods! {
    fn connection_fd(connection: &Id) -> i32 = "fileDescriptor";
    fn connection_source_port(connection: &Id) -> u32 = "sourcePort";
    fn connection_destination_port(connection: &Id) -> u32 = "destinationPort";
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
