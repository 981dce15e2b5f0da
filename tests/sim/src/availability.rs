//! Makes selectors missing, as on an older macOS (`csrc/sim_availability.m`).
//!
//! A hidden selector behaves like one the running macOS lacks: `respondsToSelector:`,
//! `instancesRespondToSelector:` and `class_respondsToSelector` answer NO, and sending
//! it raises `NSInvalidArgumentException`, which aborts the process. Hiding lasts for
//! the rest of the process: only hide in a test body that runs alone in a child
//! process.

use std::ffi::{CString, c_char, c_int};

unsafe extern "C" {
    fn sim_hide_selector(name: *const c_char);
    fn sim_instance_responds(class_name: *const c_char, selector: *const c_char) -> c_int;
    fn sim_send_nil_argument(class_name: *const c_char, selector: *const c_char);
    fn sim_class_responds(class_name: *const c_char, selector: *const c_char, meta: c_int)
    -> c_int;
    fn sim_versions_hidden_rows() -> std::ffi::c_long;
}

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL in a selector or class name")
}

/// Makes `selector` (for example `"setConsoleDevices:"`) missing in every class.
pub fn hide_selector(selector: &str) {
    let selector = c(selector);
    // SAFETY: a valid C string, copied by the hook.
    unsafe { sim_hide_selector(selector.as_ptr()) }
}

/// `-respondsToSelector:` of a new instance of `class`; `None` when the class is
/// missing.
pub fn instance_responds(class: &str, selector: &str) -> Option<bool> {
    let (class, selector) = (c(class), c(selector));
    // SAFETY: valid C strings; the hook makes and releases its own instance.
    match unsafe { sim_instance_responds(class.as_ptr(), selector.as_ptr()) } {
        -1 => None,
        answer => Some(answer != 0),
    }
}

/// Sends `selector` with a nil argument to a new instance of `class`. A hidden
/// selector raises there, which aborts the process: call it in a child process.
pub fn send_nil_argument(class: &str, selector: &str) {
    let (class, selector) = (c(class), c(selector));
    // SAFETY: valid C strings; the hook makes and releases its own instance.
    unsafe { sim_send_nil_argument(class.as_ptr(), selector.as_ptr()) }
}

/// Whether instances of `class` (or, with `class_method`, the class itself) respond to
/// `selector`, asked the way the crate asks; `None` when the class is missing.
///
/// # Panics
///
/// When `+instancesRespondToSelector:`/`+respondsToSelector:` and
/// `class_respondsToSelector()` disagree.
pub fn class_responds(class: &str, selector: &str, class_method: bool) -> Option<bool> {
    let (class, selector) = (c(class), c(selector));
    // SAFETY: valid C strings; the hook only asks the runtime.
    match unsafe {
        sim_class_responds(class.as_ptr(), selector.as_ptr(), c_int::from(class_method))
    } {
        -1 => None,
        -2 => panic!("the runtime and the messages disagree about {selector:?}"),
        answer => Some(answer != 0),
    }
}

/// How many rows of the API table are newer than the release played.
pub fn hidden_rows() -> i64 {
    // SAFETY: applies the release once, then reads a counter.
    unsafe { sim_versions_hidden_rows() }
}
