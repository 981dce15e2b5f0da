//! The raw layer: every `unsafe` line that talks to Objective-C, blocks or libdispatch.
//!
//! # Safety
//!
//! Nothing outside this module calls `objc_msgSend`, `_Block_copy` or libdispatch
//! directly. The layers above use:
//! - [`runtime::objc_methods!`] declarations, whose selectors and types come from
//!   `vz-api.tsv` and are checked against the runtime in debug builds;
//! - [`runtime::Id`] for ownership, [`runtime::autoreleasepool`] around every entry;
//! - [`block::RcBlock`] for completion handlers;
//! - [`dispatch::QueueBound`] for everything tied to a virtual machine's queue.
//!
//! Every import from libobjc and the frameworks is `extern "C-unwind"`, so an
//! Objective-C exception is never undefined behaviour; it still ends the process,
//! which is why the layers above validate every input before it reaches the
//! framework. If one happens anyway, [`exception`] names it on stderr.
//!
//! # Files
//!
//! [`objc`] is the bottom: `Object`, `Sel`, `BOOL`, the raw libobjc functions,
//! `sel!` and autorelease pools, with no other import. [`encode`] (type encodings and
//! the argument tuples of a send) and [`exception`] build on it, [`runtime`] (message
//! sending, classes, `objc_methods!`) on those; [`foundation`], [`block`],
//! [`dispatch`], [`delegate`] (defining classes at run time, for the delegates in
//! `vm/` and `socket/`), [`appkit`], [`fd`] and [`vmnet`] on top. [`sys`], a leaf,
//! declares the few C library functions and constants the crate uses (there is no
//! `libc` dependency). The raw layer uses nothing of the crate outside it but the
//! errors (`tests/structure.rs`).

pub(crate) mod appkit;
pub(crate) mod block;
pub(crate) mod delegate;
pub(crate) mod dispatch;
pub(crate) mod encode;
pub(crate) mod exception;
pub(crate) mod fd;
pub(crate) mod foundation;
pub(crate) mod objc;
#[cfg(any(target_arch = "aarch64", arcbox_vz_sim))]
pub(crate) mod os_version;
pub(crate) mod runtime;
pub(crate) mod sys;
// Not in the loom build, which checks only the bridge.
#[cfg(all(test, arcbox_vz_sim, not(arcbox_vz_loom)))]
mod tests;
pub(crate) mod vmnet;

#[cfg_attr(
    target_vendor = "apple",
    link(name = "Virtualization", kind = "framework")
)]
unsafe extern "C-unwind" {}
