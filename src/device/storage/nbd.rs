//! `VZNetworkBlockDeviceStorageDeviceAttachment` (macOS 14): a Network Block Device client.

use super::*;

const NBD_URL: &str = "NBD URL";

const NBD_URL_FORMS: &str = "nbd://host[:port]/export, nbds://host[:port]/export, \
     nbd+unix:///export?socket=/path/to/socket or nbds+unix:///export?socket=/path/to/socket";

/// Checks the syntax of an NBD URI (<https://github.com/NetworkBlockDevice/nbd/blob/master/doc/uri.md>)
/// with the schemes Virtualization.framework supports. `Err` is the reason.
pub(super) fn check_nbd_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err(format!("the URL is empty; expected {NBD_URL_FORMS}"));
    }
    if url.contains('\0') {
        return Err(format!("{url:?} contains a NUL byte"));
    }
    if let Some(c) = url.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{url:?} contains {c:?}; percent-encode it"));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("{url:?} is not a URL; expected {NBD_URL_FORMS}"));
    };
    let unix = match scheme.to_ascii_lowercase().as_str() {
        "nbd" | "nbds" => false,
        "nbd+unix" | "nbds+unix" => true,
        _ => {
            return Err(format!(
                "{url:?} has the scheme {scheme:?}; an NBD URL uses nbd, nbds, nbd+unix or nbds+unix"
            ));
        }
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let query = tail
        .split_once('?')
        .map(|(_, q)| q.split_once('#').map_or(q, |(q, _)| q))
        .unwrap_or("");
    if unix {
        if !authority.is_empty() {
            return Err(format!(
                "{url:?} names a host, but a {scheme} URL takes none: give the socket as \
                 {scheme}:///export?socket=/path/to/socket"
            ));
        }
        let socket = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("socket="))
            .unwrap_or("");
        if socket.is_empty() {
            return Err(format!(
                "{url:?} has no socket path; add ?socket=/path/to/socket"
            ));
        }
        return Ok(());
    }
    if authority.contains('@') {
        return Err(format!(
            "{url:?} has user information, which NBD URLs do not take"
        ));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            return Err(format!(
                "{url:?} has an IPv6 address without its closing ']'"
            ));
        };
        if !after.is_empty() && !after.starts_with(':') {
            return Err(format!("{url:?} has text after the IPv6 address"));
        }
        (host, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{url:?} has no host; expected {NBD_URL_FORMS}"));
    }
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p != 0);
        if !valid {
            return Err(format!(
                "{url:?} has the port {port:?}; a port is a number from 1 to 65535 (NBD uses 10809)"
            ));
        }
    }
    Ok(())
}

/// Checks `url` in Rust, makes it an `NSURL` and asks
/// `+[VZNetworkBlockDeviceStorageDeviceAttachment validateURL:error:]`.
fn nbd_url(class: ClassRef, url: &str) -> Result<Id, VZError> {
    check_nbd_url(url).map_err(|reason| VZError::invalid_argument(NBD_URL, reason))?;
    let Some(ns_url) = foundation::url_from_string(url) else {
        return Err(VZError::invalid_argument(
            NBD_URL,
            format!("{url:?} is not a URL that NSURL can parse; percent-encode special characters"),
        ));
    };
    with_error(
        "+[VZNetworkBlockDeviceStorageDeviceAttachment validateURL:error:]",
        |error| nbd_validate_url(class, &ns_url, error).then_some(()),
    )
    .map_err(|e| VZError::invalid_argument(NBD_URL, format!("{url:?}: {}", e.description)))?;
    Ok(ns_url)
}

pub(super) fn nbd_class() -> Result<ClassRef, VZError> {
    class_since(
        class!("VZNetworkBlockDeviceStorageDeviceAttachment"),
        "network block device attachment",
        "14.0",
    )
}

/// The longest NBD timeout accepted: one day. The client reconnects after this long
/// without an answer, so a longer one only delays noticing a dead server; it also
/// keeps every accepted value exact in `NSTimeInterval` (f64 seconds).
pub(super) const NBD_MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// The timeout as `NSTimeInterval` seconds, refusing what the framework would not
/// read back unchanged: zero, more than [`NBD_MAX_TIMEOUT`], or a value that does not
/// survive the trip through f64 seconds.
pub(super) fn nbd_timeout_seconds(timeout: Duration) -> Result<f64, VZError> {
    const ARGUMENT: &str = "NBD timeout";
    if timeout.is_zero() {
        return Err(VZError::invalid_argument(
            ARGUMENT,
            "0 is not a positive duration; NBD clients commonly use a few seconds",
        ));
    }
    if timeout > NBD_MAX_TIMEOUT {
        return Err(VZError::invalid_argument(
            ARGUMENT,
            format!("{timeout:?} is longer than the limit of {NBD_MAX_TIMEOUT:?}"),
        ));
    }
    let seconds = timeout.as_secs_f64();
    if Duration::try_from_secs_f64(seconds).ok() != Some(timeout) {
        return Err(VZError::invalid_argument(
            ARGUMENT,
            format!(
                "{timeout:?} cannot be represented exactly as NSTimeInterval seconds; \
                 use whole milliseconds"
            ),
        ));
    }
    Ok(seconds)
}

/// `VZNetworkBlockDeviceStorageDeviceAttachment` (macOS 14): a disk served by a
/// Network Block Device server, reached by an NBD URL such as
/// `nbd://localhost:10809/disk` or `nbd+unix:///disk?socket=/tmp/nbd.sock`.
///
/// The framework connects when the virtual machine starts, not here, and reconnects
/// after recoverable errors. A sandboxed app needs the
/// `com.apple.security.network.client` entitlement.
///
/// # Events
///
/// Once the virtual machine runs, the attachment's delegate
/// (`VZNetworkBlockDeviceStorageDeviceAttachmentDelegate`) reports in
/// [`VirtualMachine::events`](crate::VirtualMachine::events), not on this value (which
/// has moved into the configuration by then):
/// [`VmEvent::NetworkBlockDeviceConnected`](crate::VmEvent::NetworkBlockDeviceConnected)
/// when the client connects (and reconnects), and
/// [`VmEvent::NetworkBlockDeviceError`](crate::VmEvent::NetworkBlockDeviceError) for an
/// error it does not recover from, each naming the storage device by its index in the
/// configuration's storage devices. The delegate is installed when the virtual machine
/// is made, for the attachments of its storage devices (not those of USB devices
/// listed in an XHCI controller or hot-plugged), and owned by the virtual machine; an
/// attachment shared by two virtual machines reports to the one made last.
#[derive(Debug)]
pub struct NetworkBlockDeviceStorageDeviceAttachment {
    obj: Id,
}

impl AsObject for NetworkBlockDeviceStorageDeviceAttachment {
    fn as_object(&self) -> &Id {
        &self.obj
    }
}

impl NetworkBlockDeviceStorageDeviceAttachment {
    /// `-[VZNetworkBlockDeviceStorageDeviceAttachment
    /// initWithURL:timeout:forcedReadOnly:synchronizationMode:error:]`: a client of the
    /// NBD server at `url`. After `timeout` without an answer the client reconnects;
    /// `forced_read_only` makes the disk read-only even if the server allows writes.
    ///
    /// # Errors
    ///
    /// [`VZError::InvalidArgument`] (`"NBD URL"`) when `url` is not an NBD URL (scheme
    /// nbd, nbds, nbd+unix or nbds+unix; a host, or for the `+unix` schemes a
    /// `?socket=` path) or `+validateURL:error:` refuses it; (`"NBD timeout"`) when
    /// `timeout` is zero, longer than one day, or not exact in `NSTimeInterval` (f64
    /// seconds), since the framework would read back a different value; [`VZError::Unsupported`] before macOS 14;
    /// [`VZError::Framework`] when the framework refuses the attachment.
    pub fn new(
        url: &str,
        timeout: Duration,
        forced_read_only: bool,
        synchronization_mode: DiskSynchronizationMode,
    ) -> Result<Self, VZError> {
        let class = nbd_class()?;
        let seconds = nbd_timeout_seconds(timeout)?;
        let ns_url = in_pool!(nbd_url(class, url))?;
        let obj = with_error(
            "-[VZNetworkBlockDeviceStorageDeviceAttachment initWithURL:timeout:forcedReadOnly:synchronizationMode:error:]",
            |error| nbd_init(class.alloc(), &ns_url, seconds, forced_read_only, synchronization_mode.raw(), error),
        )
        .map_err(VZError::Framework)?;
        Ok(Self { obj })
    }

    /// `-[VZNetworkBlockDeviceStorageDeviceAttachment initWithURL:error:]`: a client of
    /// the NBD server at `url` with the framework's default timeout, read-only and
    /// synchronization settings (read them back with the getters).
    ///
    /// # Errors
    ///
    /// As for [`new`](Self::new), without the timeout.
    pub fn with_url(url: &str) -> Result<Self, VZError> {
        let class = nbd_class()?;
        let ns_url = in_pool!(nbd_url(class, url))?;
        let obj = with_error(
            "-[VZNetworkBlockDeviceStorageDeviceAttachment initWithURL:error:]",
            |error| nbd_init_with_url(class.alloc(), &ns_url, error),
        )
        .map_err(VZError::Framework)?;
        Ok(Self { obj })
    }

    /// `URL`, as a string (`absoluteString`).
    pub fn url(&self) -> String {
        in_pool!({
            url_raw(&self.obj)
                .as_ref()
                .map(foundation::url_string)
                .unwrap_or_default()
        })
    }

    /// `timeout`: how long the client waits before reconnecting.
    pub fn timeout(&self) -> Duration {
        Duration::try_from_secs_f64(in_pool!(timeout_raw(&self.obj))).unwrap_or_default()
    }

    /// `isForcedReadOnly`: whether the disk is read-only whatever the server allows.
    pub fn is_forced_read_only(&self) -> bool {
        in_pool!(is_forced_read_only_raw(&self.obj))
    }

    /// `synchronizationMode`.
    pub fn synchronization_mode(&self) -> DiskSynchronizationMode {
        DiskSynchronizationMode::from_raw(in_pool!(synchronization_mode_raw(&self.obj)))
            .unwrap_or_default()
    }
}
