//! Checks on the paths users hand in, made before Virtualization.framework opens
//! anything.
//!
//! The framework opens files with a plain blocking `open`: a FIFO makes it wait
//! forever for a writer, and a device node where a file is expected (`/dev/null` as
//! an EFI variable store) is accepted and only fails, with a process abort, when the
//! virtual machine starts. So every path that must be a regular file is checked here
//! for its type, and every I/O error names the path.

use std::fs::{File, FileType, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::error::VZError;
use crate::ffi::foundation;
use crate::ffi::runtime::Id;

/// What a file type is, for messages: "a FIFO (named pipe)", "a directory", ...
pub(crate) fn file_type_name(kind: FileType) -> &'static str {
    if kind.is_file() {
        "a regular file"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// "1 byte", "2 bytes".
pub(crate) fn byte_count(n: u64) -> String {
    if n == 1 {
        "1 byte".to_owned()
    } else {
        format!("{n} bytes")
    }
}

/// An I/O error on a user's path, as an `InvalidArgument` that names the path.
pub(crate) fn path_error(
    argument: &'static str,
    path: &Path,
    doing: &str,
    e: &std::io::Error,
) -> VZError {
    if e.kind() == std::io::ErrorKind::NotFound {
        return VZError::invalid_argument(argument, format!("{} does not exist", path.display()));
    }
    VZError::invalid_argument(argument, format!("cannot {doing} {}: {e}", path.display()))
}

/// Refuses a file path that ends with `/`, which names a directory.
fn no_trailing_slash(path: &str, argument: &'static str) -> Result<(), VZError> {
    if path.len() > 1 && path.ends_with('/') {
        return Err(VZError::invalid_argument(
            argument,
            format!("{path} ends with '/', which names a directory; give the path of a file"),
        ));
    }
    Ok(())
}

/// Why a file of type `kind` at `path` cannot be used where a regular file is needed.
fn not_a_regular_file(argument: &'static str, path: &Path, kind: FileType) -> VZError {
    let why = if kind.is_fifo() {
        ": opening it would block until another process opens its other end, so \
         the virtual machine would hang"
    } else if kind.is_block_device() || kind.is_char_device() {
        ": a device node is not a file the framework can use here"
    } else {
        ""
    };
    VZError::invalid_argument(
        argument,
        format!(
            "{} is {}, not a regular file{why}",
            path.display(),
            file_type_name(kind)
        ),
    )
}

/// A file URL for `path`, which must be an existing regular file (symbolic links are
/// followed): not a directory, a FIFO, a socket or a device node.
pub(crate) fn existing_file(path: &Path, argument: &'static str) -> Result<Id, VZError> {
    let text = foundation::path_str(path, argument)?;
    no_trailing_slash(text, argument)?;
    let meta = std::fs::metadata(path).map_err(|e| path_error(argument, path, "read", &e))?;
    if !meta.is_file() {
        return Err(not_a_regular_file(argument, path, meta.file_type()));
    }
    foundation::file_url(path, argument)
}

/// A file URL for `path`, where the framework creates (or replaces) a file: the path
/// must not end with `/`, its directory must exist, and if something is already
/// there it must be a regular file.
pub(crate) fn file_to_create(path: &Path, argument: &'static str) -> Result<Id, VZError> {
    let text = foundation::path_str(path, argument)?;
    no_trailing_slash(text, argument)?;
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {}
        Ok(meta) => return Err(not_a_regular_file(argument, path, meta.file_type())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let absolute =
                std::path::absolute(path).map_err(|e| path_error(argument, path, "resolve", &e))?;
            match absolute.parent() {
                Some(parent) if parent.is_dir() => {}
                Some(parent) => {
                    return Err(VZError::invalid_argument(
                        argument,
                        format!(
                            "the directory {} does not exist; create it before {}",
                            parent.display(),
                            path.display()
                        ),
                    ));
                }
                None => {
                    return Err(VZError::invalid_argument(
                        argument,
                        format!("{} is not a file path", path.display()),
                    ));
                }
            }
        }
        Err(e) => return Err(path_error(argument, path, "read", &e)),
    }
    foundation::file_url(path, argument)
}

/// Reads at most `max` bytes from the start of the regular file at `path`: a bounded
/// read, since a file's size can be 0 while it has content (`/proc` files). It opens
/// without blocking and checks what it opened, so a path swapped for a FIFO after an
/// earlier check cannot make it hang.
pub(crate) fn read_head(
    path: &Path,
    argument: &'static str,
    max: usize,
) -> Result<Vec<u8>, VZError> {
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(crate::ffi::sys::O_NONBLOCK)
        .open(path)
        .map_err(|e| path_error(argument, path, "open", &e))?;
    let kind = file
        .metadata()
        .map_err(|e| path_error(argument, path, "read", &e))?
        .file_type();
    if !kind.is_file() {
        return Err(not_a_regular_file(argument, path, kind));
    }
    let mut head = Vec::with_capacity(max);
    file.take(max as u64)
        .read_to_end(&mut head)
        .map_err(|e| path_error(argument, path, "read", &e))?;
    Ok(head)
}
