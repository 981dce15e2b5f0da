//! Foundation: `NSString`, `NSURL`, `NSArray`, `NSDictionary`, `NSData`, `NSError`,
//! `NSFileHandle` and `NSUUID`, converted to and from Rust values.

use core::ffi::{CStr, c_char, c_void};
use std::os::fd::{BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::runtime::{
    ClassRef, Id, IntoArg, Object, Receiver, autoreleasepool, class, in_pool, objc_methods, sel,
    send,
};
use crate::error::{FrameworkError, VZError};

#[cfg_attr(target_vendor = "apple", link(name = "Foundation", kind = "framework"))]
unsafe extern "C-unwind" {}

/// `NSStringEncoding` is `NSUInteger` on Apple; GNUstep (the simulator) declares it
/// as an `unsigned int` enum. Either way `NSUTF8StringEncoding` is 4.
#[cfg(target_vendor = "apple")]
type NSStringEncoding = usize;
#[cfg(not(target_vendor = "apple"))]
type NSStringEncoding = u32;
const NS_UTF8_STRING_ENCODING: NSStringEncoding = 4;

/// A Foundation class. Foundation is always linked, so a missing class means a broken
/// process, not an old OS.
fn foundation_class(class: Result<ClassRef, VZError>) -> ClassRef {
    class.unwrap_or_else(|e| panic!("Foundation is not linked into this process: {e}"))
}

objc_methods! {
    fn string_utf8(string: &Id) -> *const c_char = "UTF8String";
    fn url_file_with_path(class: ClassRef, path: &Id) -> Option<Id> = "fileURLWithPath:";
    fn url_with_string(class: ClassRef, string: &Id) -> Option<Id> = "URLWithString:";
    fn url_path_string(url: &Id) -> Option<Id> = "path";
    fn url_absolute_string(url: &Id) -> Option<Id> = "absoluteString";
    fn url_is_file(url: &Id) -> bool = "isFileURL";
    fn array_count(array: &Id) -> usize = "count";
    fn array_object_at(array: &Id, index: usize) -> Option<Id> = "objectAtIndex:";
    fn dictionary_all_keys(dictionary: &Id) -> Option<Id> = "allKeys";
    fn dictionary_object_for_key(dictionary: &Id, key: &Id) -> Option<Id> = "objectForKey:";
    fn data_length(data: &Id) -> usize = "length";
    fn data_bytes_ptr(data: &Id) -> *const c_void = "bytes";
    fn error_domain(error: &Id) -> Option<Id> = "domain";
    fn error_code(error: &Id) -> isize = "code";
    fn error_localized_description(error: &Id) -> Option<Id> = "localizedDescription";
    fn error_localized_failure_reason(error: &Id) -> Option<Id> = "localizedFailureReason";
    fn file_handle_init(
        handle: super::runtime::Allocated,
        fd: i32,
        close_on_dealloc: bool,
    ) -> Option<Id> = "initWithFileDescriptor:closeOnDealloc:";
    fn file_handle_descriptor(handle: &Id) -> i32 = "fileDescriptor";
    fn uuid_string(uuid: &Id) -> Option<Id> = "UUIDString";
    fn uuid_init_with_string(uuid: super::runtime::Allocated, string: &Id) -> Option<Id> =
        "initWithUUIDString:";
}

/// `-[NSString initWithBytes:length:encoding:]` with UTF-8: copies `s`.
///
/// Callers check user strings first ([`check_string`]): Objective-C code reads most
/// strings as C strings and would silently cut them short at a NUL, and a leading
/// U+FEFF may be dropped by the conversion.
pub(crate) fn ns_string(s: &str) -> Id {
    let alloc = foundation_class(class!("NSString")).alloc();
    // SAFETY: -[NSString initWithBytes:(const void *) length:(NSUInteger)
    // encoding:(NSStringEncoding)] -> instancetype (+1); the bytes are valid for
    // `len` and copied before it returns.
    let string: *mut Object = unsafe {
        send(
            alloc.receiver_ptr(),
            sel!("initWithBytes:length:encoding:"),
            (
                s.as_ptr().cast::<c_void>(),
                s.len(),
                NS_UTF8_STRING_ENCODING,
            ),
        )
    };
    // SAFETY: an init method returns +1 or nil.
    unsafe { Id::from_owned(string) }.expect("NSString allocation failed: out of memory")
}

/// Copies an `NSString` into a Rust `String` (`UTF8String`, copied out at once).
pub(crate) fn string_from(string: &Id) -> String {
    autoreleasepool(|| {
        let utf8 = string_utf8(string);
        if utf8.is_null() {
            return String::new();
        }
        // SAFETY: UTF8String returns a NUL-terminated buffer that lives until the pool
        // pops or the string dies; both outlive this copy.
        unsafe { CStr::from_ptr(utf8) }
            .to_string_lossy()
            .into_owned()
    })
}

/// Checks a string before it becomes an `NSString` for the framework, naming the
/// argument when it refuses it:
///
/// - a NUL byte: Objective-C code reads most strings as C strings and would silently
///   cut them short;
/// - a leading U+FEFF (ZERO WIDTH NO-BREAK SPACE, the byte order mark): GNUstep's
///   `initWithBytes:length:encoding:` drops it, and CoreFoundation treats a leading
///   BOM as an encoding mark in some conversions, so the framework could see a
///   different string than the caller gave (a share name "\u{FEFF}a" becoming "a", a
///   duplicate of "a"). Refusing it means the framework always sees exactly the
///   string the caller passed.
pub(crate) fn check_string(s: &str, argument: &'static str) -> Result<(), VZError> {
    if s.contains('\0') {
        return Err(VZError::invalid_argument(
            argument,
            format!("{s:?} contains a NUL byte"),
        ));
    }
    if s.starts_with('\u{FEFF}') {
        return Err(VZError::invalid_argument(
            argument,
            format!(
                "{s:?} starts with U+FEFF (a byte order mark), which the NSString conversion \
                 may drop, so the framework would see a different string; remove it"
            ),
        ));
    }
    Ok(())
}

/// The path as UTF-8 without NUL bytes, or why not.
pub(crate) fn path_str<'a>(path: &'a Path, argument: &'static str) -> Result<&'a str, VZError> {
    let Some(s) = path.to_str() else {
        return Err(VZError::invalid_argument(
            argument,
            format!(
                "{} is not valid UTF-8; Virtualization.framework takes UTF-8 paths only",
                path.display()
            ),
        ));
    };
    check_string(s, argument)?;
    if s.is_empty() {
        return Err(VZError::invalid_argument(argument, "the path is empty"));
    }
    Ok(s)
}

/// `+[NSURL fileURLWithPath:]` for an absolute version of `path`.
///
/// Rejects non-UTF-8 paths and paths with NUL bytes with
/// [`VZError::InvalidArgument`] naming `argument`. Every URL handed to
/// Virtualization.framework is made here, so it is always a file URL.
pub(crate) fn file_url(path: &Path, argument: &'static str) -> Result<Id, VZError> {
    path_str(path, argument)?;
    let absolute = std::path::absolute(path).map_err(|e| {
        VZError::invalid_argument(
            argument,
            format!("cannot make {} absolute: {e}", path.display()),
        )
    })?;
    let absolute = path_str(&absolute, argument)?;
    autoreleasepool(|| {
        let string = ns_string(absolute);
        let url = url_file_with_path(foundation_class(class!("NSURL")), &string)
            .expect("+[NSURL fileURLWithPath:] returned nil for an absolute path");
        debug_assert!(url_is_file(&url));
        Ok(url)
    })
}

/// `+[NSURL URLWithString:]`; `None` when the string is not a URL.
pub(crate) fn url_from_string(s: &str) -> Option<Id> {
    in_pool!(url_with_string(
        foundation_class(class!("NSURL")),
        &ns_string(s)
    ))
}

/// `-[NSURL path]` of a file URL.
pub(crate) fn url_path(url: &Id) -> PathBuf {
    in_pool!({
        url_path_string(url)
            .map(|s| PathBuf::from(string_from(&s)))
            .unwrap_or_default()
    })
}

/// `-[NSURL absoluteString]`.
pub(crate) fn url_string(url: &Id) -> String {
    in_pool!({
        url_absolute_string(url)
            .as_ref()
            .map(string_from)
            .unwrap_or_default()
    })
}

/// `+[NSArray arrayWithObjects:count:]`; the array retains the items.
pub(crate) fn ns_array(items: &[Id]) -> Id {
    let class = foundation_class(class!("NSArray"));
    in_pool!({
        // SAFETY: +arrayWithObjects:(const id *) count:(NSUInteger) -> instancetype
        // (+0). `Id` is a transparent non-null object pointer, so the slice is a valid
        // `const id *` of `len` objects.
        let array: *mut Object = unsafe {
            send(
                class.as_nonnull(),
                sel!("arrayWithObjects:count:"),
                (items.as_ptr().cast::<c_void>(), items.len()),
            )
        };
        // SAFETY: a +0 result, alive until the pool pops.
        unsafe { Id::retain(array) }.expect("NSArray allocation failed: out of memory")
    })
}

/// The items of an `NSArray`.
pub(crate) fn array_items(array: &Id) -> Vec<Id> {
    in_pool!({
        (0..array_count(array))
            .filter_map(|i| array_object_at(array, i))
            .collect()
    })
}

/// `+[NSDictionary dictionaryWithObjects:forKeys:count:]` with string keys.
pub(crate) fn ns_dictionary(entries: &[(&str, &Id)]) -> Id {
    let class = foundation_class(class!("NSDictionary"));
    let keys: Vec<Id> = entries.iter().map(|(k, _)| ns_string(k)).collect();
    let values: Vec<*mut Object> = entries.iter().map(|(_, v)| v.as_ptr()).collect();
    in_pool!({
        // SAFETY: +dictionaryWithObjects:(const id *) forKeys:(const id *)
        // count:(NSUInteger) -> instancetype (+0); both buffers hold `len` live objects.
        let dictionary: *mut Object = unsafe {
            send(
                class.as_nonnull(),
                sel!("dictionaryWithObjects:forKeys:count:"),
                (
                    values.as_ptr().cast::<c_void>(),
                    keys.as_ptr().cast::<c_void>(),
                    entries.len(),
                ),
            )
        };
        // SAFETY: a +0 result, alive until the pool pops.
        unsafe { Id::retain(dictionary) }.expect("NSDictionary allocation failed: out of memory")
    })
}

/// The entries of an `NSDictionary` whose keys are strings, sorted by key.
pub(crate) fn dictionary_entries(dictionary: &Id) -> Vec<(String, Id)> {
    autoreleasepool(|| {
        let keys = dictionary_all_keys(dictionary).as_ref().map(array_items);
        let mut entries: Vec<(String, Id)> = Vec::new();
        for key in keys.unwrap_or_default() {
            if let Some(value) = dictionary_object_for_key(dictionary, &key) {
                entries.push((string_from(&key), value));
            }
        }
        sort_by_key(&mut entries);
        entries
    })
}

/// Sorts entries with distinct keys by key: a heapsort written out for this one type,
/// because the standard library's generic sort would add about 2,000 lines of LLVM IR
/// to every build of the crate for it.
fn sort_by_key(entries: &mut [(String, Id)]) {
    fn sift_down(entries: &mut [(String, Id)], mut root: usize, end: usize) {
        loop {
            let mut child = 2 * root + 1;
            if child >= end {
                return;
            }
            if child + 1 < end && entries[child].0 < entries[child + 1].0 {
                child += 1;
            }
            if entries[root].0 >= entries[child].0 {
                return;
            }
            entries.swap(root, child);
            root = child;
        }
    }
    let len = entries.len();
    for root in (0..len / 2).rev() {
        sift_down(entries, root, len);
    }
    for end in (1..len).rev() {
        entries.swap(0, end);
        sift_down(entries, 0, end);
    }
}

/// `+[NSData dataWithBytes:length:]`: copies `bytes`.
pub(crate) fn ns_data(bytes: &[u8]) -> Id {
    let class = foundation_class(class!("NSData"));
    in_pool!({
        // SAFETY: +dataWithBytes:(const void *) length:(NSUInteger) -> instancetype
        // (+0); the bytes are valid for `len` and copied.
        let data: *mut Object = unsafe {
            send(
                class.as_nonnull(),
                sel!("dataWithBytes:length:"),
                (bytes.as_ptr().cast::<c_void>(), bytes.len()),
            )
        };
        // SAFETY: a +0 result, alive until the pool pops.
        unsafe { Id::retain(data) }.expect("NSData allocation failed: out of memory")
    })
}

/// Copies the bytes of an `NSData`.
pub(crate) fn data_to_vec(data: &Id) -> Vec<u8> {
    let len = data_length(data);
    let bytes = data_bytes_ptr(data);
    if len == 0 || bytes.is_null() {
        return Vec::new();
    }
    // SAFETY: -bytes points to `length` bytes owned by `data`, which outlives the copy.
    unsafe { core::slice::from_raw_parts(bytes.cast::<u8>(), len) }.to_vec()
}

/// Copies an `NSError` into a [`FrameworkError`].
pub(crate) fn framework_error(error: &Id) -> FrameworkError {
    in_pool!({
        let text = |s: Option<Id>| s.as_ref().map(string_from);
        FrameworkError {
            domain: text(error_domain(error)).unwrap_or_default(),
            code: error_code(error),
            description: text(error_localized_description(error)).unwrap_or_default(),
            failure_reason: text(error_localized_failure_reason(error)),
        }
    })
}

/// The `NSError **` out-parameter of a method, initially nil.
#[derive(Debug)]
pub(crate) struct ErrorSlot(*mut Object);

impl IntoArg for &mut ErrorSlot {
    type Raw = *mut *mut Object;
    fn into_arg(self) -> *mut *mut Object {
        &raw mut self.0
    }
}

impl ErrorSlot {
    /// The error the method stored, or a stand-in naming `what` when it failed
    /// without one.
    fn take(&mut self, what: &str) -> FrameworkError {
        // SAFETY: the slot is nil or an autoreleased NSError (+0) from the method we
        // just called, alive until the enclosing pool pops.
        match unsafe { Id::retain(core::mem::replace(&mut self.0, core::ptr::null_mut())) } {
            Some(error) => framework_error(&error),
            None => FrameworkError::new(
                "arcbox-vz",
                0,
                format!("{what} failed, and Virtualization.framework gave no reason"),
            ),
        }
    }
}

/// Calls a method with an `NSError **` out-parameter inside an autorelease pool.
/// `call` returns `None` for failure (nil or NO); the error is then copied out,
/// or made up from `what` when the method failed without setting one.
pub(crate) fn with_error<T>(
    what: &str,
    call: impl FnOnce(&mut ErrorSlot) -> Option<T>,
) -> Result<T, FrameworkError> {
    autoreleasepool(|| {
        let mut slot = ErrorSlot(core::ptr::null_mut());
        call(&mut slot).ok_or_else(|| slot.take(what))
    })
}

/// An `NSFileHandle` that owns a `dup` (with close-on-exec) of `fd` and closes it on
/// dealloc. The caller keeps its own descriptor.
pub(crate) fn file_handle(fd: BorrowedFd<'_>) -> Result<Id, VZError> {
    let dup = fd.try_clone_to_owned()?;
    let class = foundation_class(class!("NSFileHandle"));
    let raw = dup.into_raw_fd();
    // GNUstep autoreleases inside this init; Foundation may too.
    match in_pool!(file_handle_init(class.alloc(), raw, true)) {
        Some(handle) => Ok(handle),
        None => {
            // SAFETY: the init failed, so no handle took the descriptor; it is ours.
            drop(unsafe { OwnedFd::from_raw_fd(raw) });
            Err(VZError::Io(std::io::Error::other(
                "NSFileHandle refused the file descriptor",
            )))
        }
    }
}

/// The descriptor an `NSFileHandle` wraps (still owned by the handle).
pub(crate) fn file_handle_fd(handle: &Id) -> i32 {
    file_handle_descriptor(handle)
}

/// `-[NSUUID UUIDString]`.
pub(crate) fn uuid_to_string(uuid: &Id) -> String {
    in_pool!({
        uuid_string(uuid)
            .as_ref()
            .map(string_from)
            .unwrap_or_default()
    })
}

/// `-[NSUUID initWithUUIDString:]`; `None` when the string is not a UUID.
pub(crate) fn uuid_from_string(s: &str) -> Option<Id> {
    let class = foundation_class(class!("NSUUID"));
    in_pool!(uuid_init_with_string(class.alloc(), &ns_string(s)))
}
