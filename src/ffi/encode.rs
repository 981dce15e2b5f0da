//! Objective-C type encodings of the Rust types we pass and return, and the
//! debug-build check that compares them with what the runtime says a method takes.
//!
//! On the first send of each (class, selector) in a debug build, [`verify`] looks the
//! method up with `class_getInstanceMethod` and compares its `method_getTypeEncoding`
//! with the Rust signature. A missing method or a different argument or return type
//! panics with a message naming `-[Class selector]` and what differs. Release builds
//! skip it entirely, so there nothing here is read.
#![cfg_attr(not(debug_assertions), allow(dead_code))]

use core::ffi::c_void;
use core::ptr::NonNull;

use super::objc::{Bool, Object, Sel};

/// The kinds of argument and return value we send, with the type codes each accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// `void` (`v`), returns only.
    Void,
    /// An object (`@`), including a dispatch queue, which is an object on Apple.
    Object,
    /// A block (`@?`).
    Block,
    /// A class (`#`).
    Class,
    /// A selector (`:`).
    Sel,
    /// `BOOL`: `B` on arm64, `c` on x86_64 macOS, `C` on GCC's runtime.
    Bool,
    /// A 64-bit integer of either sign (`q`/`Q`; `long` is `q` on LP64).
    Int64,
    /// A 32-bit integer of either sign (`i`/`I`).
    Int32,
    /// `double` (`d`).
    Double,
    /// `NSError **` (`^@`).
    ErrorOut,
    /// A C string (`*` or `r*`).
    CString,
    /// Any other pointer (`^...`), for `const void *` buffers.
    Pointer,
    /// A struct of two doubles by value (`{CGSize=dd}`; GNUstep's `{_NSSize=dd}`).
    Size,
    /// A 16-bit integer of either sign (`s`/`S`).
    Int16,
    /// A rectangle of two two-double structs by value
    /// (`{CGRect={CGPoint=dd}{CGSize=dd}}`; GNUstep's `{_NSRect=...}`).
    Rect,
}

impl Encoding {
    /// Whether one type from a method's type encoding (qualifiers and offsets already
    /// stripped) is acceptable for this Rust type.
    fn accepts(self, code: &str) -> bool {
        let first = code.as_bytes().first().copied();
        match self {
            Self::Void => code == "v",
            // `@"NSString"` is an object too; a block is also an object.
            Self::Object => first == Some(b'@') && !code.starts_with("@?"),
            Self::Block => code.starts_with("@?") || code == "@",
            Self::Class => code == "#",
            Self::Sel => code == ":",
            Self::Bool => code == BOOL_CODE,
            Self::Int64 => matches!(code, "q" | "Q"),
            Self::Int32 => matches!(code, "i" | "I"),
            Self::Double => code == "d",
            Self::ErrorOut => code == "^@",
            Self::CString => code == "*",
            Self::Pointer => first == Some(b'^') || code == "*",
            Self::Size => first == Some(b'{') && code.ends_with("=dd}") && !code.contains("}{"),
            Self::Int16 => matches!(code, "s" | "S"),
            Self::Rect => first == Some(b'{') && code.matches("=dd}").count() == 2,
        }
    }
}

#[cfg(all(target_vendor = "apple", target_arch = "aarch64"))]
const BOOL_CODE: &str = "B";
#[cfg(all(target_vendor = "apple", target_arch = "x86_64"))]
const BOOL_CODE: &str = "c";
#[cfg(not(target_vendor = "apple"))]
const BOOL_CODE: &str = "C";

/// A Rust type that is ABI-identical to an Objective-C type.
///
/// # Safety
///
/// `ENCODING` must describe the type exactly, and the type must be passed and returned
/// by the C ABI like the Objective-C type it stands for.
pub(crate) unsafe trait Encode: Copy {
    /// The encoding of this type.
    const ENCODING: Encoding;
}

/// A type that can be returned by a message send: [`Encode`] types and `()`.
///
/// # Safety
///
/// As for [`Encode`].
pub(crate) unsafe trait EncodeReturn {
    /// The encoding of this return type.
    const ENCODING: Encoding;
}

macro_rules! encode {
    ($($ty:ty => $enc:ident),* $(,)?) => {$(
        // SAFETY: the type has the C ABI of the Objective-C type named by the encoding.
        unsafe impl Encode for $ty {
            const ENCODING: Encoding = Encoding::$enc;
        }
    )*};
}

encode! {
    usize => Int64,
    isize => Int64,
    u64 => Int64,
    i64 => Int64,
    u32 => Int32,
    i32 => Int32,
    f64 => Double,
    Bool => Bool,
    Sel => Sel,
    *mut Object => Object,
    *mut *mut Object => ErrorOut,
    *const core::ffi::c_char => CString,
    *const c_void => Pointer,
}

// SAFETY: every `Encode` type is also a valid return type with the same encoding.
unsafe impl<T: Encode> EncodeReturn for T {
    const ENCODING: Encoding = T::ENCODING;
}

// SAFETY: `()` is returned like C `void`.
unsafe impl EncodeReturn for () {
    const ENCODING: Encoding = Encoding::Void;
}

/// `CGSize`: two `double`s, passed and returned by value. 16 bytes: in registers on
/// both architectures (d0/d1 on arm64, an HFA; xmm0/xmm1 on x86_64), so through plain
/// `objc_msgSend`, never `_stret`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub(crate) struct CGSize {
    pub(crate) width: f64,
    pub(crate) height: f64,
}

encode! { CGSize => Size }

/// `CGPoint` (`NSPoint`): two `double`s by value, passed like [`CGSize`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub(crate) struct CGPoint {
    pub(crate) x: f64,
    pub(crate) y: f64,
}

encode! { CGPoint => Size }

/// `CGRect` (`NSRect`): an origin and a size, 32 bytes, passed BY VALUE. On arm64 it
/// is a homogeneous aggregate of four doubles (d0-d3); on x86_64 it is class MEMORY
/// and copied onto the stack. A Rust `extern "C-unwind"` signature taking this
/// `#[repr(C)]` struct does both, and plain `objc_msgSend` is right on both
/// architectures: `_stret` only concerns struct RETURNS, and we never return one.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub(crate) struct CGRect {
    pub(crate) origin: CGPoint,
    pub(crate) size: CGSize,
}

encode! { CGRect => Rect, i16 => Int16 }

/// A class object, passed as `Class` (`#`).
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub(crate) struct RawClass(pub(crate) NonNull<Object>);

encode! { RawClass => Class }

/// A block pointer, passed as `id` (`@?`).
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub(crate) struct RawBlock(pub(crate) NonNull<c_void>);

encode! { RawBlock => Block }

/// Splits a method type encoding such as `v24@0:8@16` into its types, without
/// qualifiers (`r n N o O R V`) or frame offsets: `["v", "@", ":", "@"]`.
pub(crate) fn split_types(encoding: &str) -> Vec<&str> {
    let bytes = encoding.as_bytes();
    let mut types = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && b"rnNoORV".contains(&bytes[i]) {
            i += 1;
        }
        let start = i;
        i = skip_one_type(bytes, i);
        if i > start {
            types.push(&encoding[start..i]);
        }
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'-') {
            i += 1;
        }
        if i == start {
            // Not a type we understand: stop rather than loop forever.
            break;
        }
    }
    types
}

/// Returns the index just past the type that starts at `i`.
fn skip_one_type(bytes: &[u8], mut i: usize) -> usize {
    let Some(&c) = bytes.get(i) else { return i };
    i += 1;
    match c {
        b'@' => match bytes.get(i) {
            Some(b'?') => i + 1,
            Some(b'"') => bytes[i + 1..]
                .iter()
                .position(|&b| b == b'"')
                .map_or(bytes.len(), |p| i + 1 + p + 1),
            _ => i,
        },
        b'^' => {
            while i < bytes.len() && b"rnNoORV".contains(&bytes[i]) {
                i += 1;
            }
            skip_one_type(bytes, i)
        }
        b'{' | b'(' | b'[' => {
            let (open, close) = match c {
                b'{' => (b'{', b'}'),
                b'(' => (b'(', b')'),
                _ => (b'[', b']'),
            };
            let mut depth = 1;
            while i < bytes.len() && depth > 0 {
                if bytes[i] == open {
                    depth += 1;
                } else if bytes[i] == close {
                    depth -= 1;
                }
                i += 1;
            }
            i
        }
        b'b' => {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            i
        }
        b'0'..=b'9' | b'-' => i - 1,
        _ => i,
    }
}

/// Compares a method's type encoding with the Rust signature of a send.
///
/// Returns a description of the first difference, or `None` when they agree.
pub(crate) fn mismatch(encoding: &str, args: &[Encoding], ret: Encoding) -> Option<String> {
    let types = split_types(encoding);
    let expected = args.len() + 3; // return, self, _cmd, args
    if types.len() != expected {
        return Some(format!(
            "the method takes {} argument(s) but the Rust signature passes {} \
             (method type encoding '{encoding}')",
            types.len().saturating_sub(3),
            args.len(),
        ));
    }
    if !ret.accepts(types[0]) {
        return Some(format!(
            "expected the return type to be {ret:?}, but found '{}'",
            types[0]
        ));
    }
    for (i, (want, found)) in args.iter().zip(&types[3..]).enumerate() {
        if !want.accepts(found) {
            return Some(format!(
                "expected argument {i} to have type {want:?}, but found '{found}'"
            ));
        }
    }
    None
}

#[cfg(debug_assertions)]
pub(crate) use checked::verify;

#[cfg(debug_assertions)]
mod checked {
    use core::ptr::NonNull;
    use std::sync::{Mutex, PoisonError};

    use super::{Encoding, mismatch};
    use crate::ffi::objc::{Object, Sel, raw};

    /// The (class, selector) pairs checked so far, sorted. A few hundred at most: one
    /// per method the crate sends to each class it meets.
    static VERIFIED: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

    /// Panics when `-[class(receiver) sel]` does not exist or its types differ from
    /// the Rust signature. Checks each (class, selector) pair once.
    #[track_caller]
    pub(crate) fn verify(receiver: NonNull<Object>, sel: Sel, args: &[Encoding], ret: Encoding) {
        let class = raw::object_class(receiver);
        let key = (class.as_ptr() as usize, sel.as_ptr() as usize);
        let verified = || VERIFIED.lock().unwrap_or_else(PoisonError::into_inner);
        if verified().binary_search(&key).is_ok() {
            return;
        }
        let name = || {
            let (prefix, class_name) = raw::class_display(class);
            format!("{prefix}[{class_name} {}]", raw::sel_name(sel))
        };
        let Some(encoding) = raw::method_encoding(class, sel) else {
            panic!(
                "invalid message send to {}: method not found (misspelled selector, \
                 wrong receiver, or a member newer than this OS)",
                name()
            );
        };
        let encoding = encoding.to_string_lossy();
        if let Some(what) = mismatch(&encoding, args, ret) {
            panic!("invalid message send to {}: {what}", name());
        }
        let mut verified = verified();
        if let Err(slot) = verified.binary_search(&key) {
            verified.insert(slot, key);
        }
    }
}

/// The arguments of a message send: tuples of [`Encode`] types.
///
/// # Safety
///
/// `invoke` must call `imp` with exactly these arguments after the receiver and the
/// selector, and `ENCODINGS` must list them in order.
pub(crate) unsafe trait MessageArgs: Sized {
    /// Read by the debug-build checks only.
    #[cfg_attr(not(debug_assertions), allow(dead_code))]
    const ENCODINGS: &'static [Encoding];

    /// # Safety
    ///
    /// `imp` is `objc_msgSend` and the method named by `sel` takes these arguments
    /// and returns `R`.
    unsafe fn invoke<R: EncodeReturn>(
        imp: unsafe extern "C-unwind" fn(),
        receiver: *mut Object,
        sel: Sel,
        args: Self,
    ) -> R;
}

macro_rules! message_args {
    ($($arg:ident),*) => {
        // SAFETY: `invoke` passes the tuple's fields in order, as ENCODINGS lists them.
        unsafe impl<$($arg: Encode),*> MessageArgs for ($($arg,)*) {
            const ENCODINGS: &'static [Encoding] = &[$($arg::ENCODING),*];

            #[inline]
            #[allow(non_snake_case)]
            unsafe fn invoke<R: EncodeReturn>(
                imp: unsafe extern "C-unwind" fn(),
                receiver: *mut Object,
                sel: Sel,
                ($($arg,)*): Self,
            ) -> R {
                type Imp<R $(, $arg)*> = unsafe extern "C-unwind" fn(*mut Object, Sel $(, $arg)*) -> R;
                // SAFETY: objc_msgSend has no prototype of its own; it jumps to the
                // method with the caller's registers untouched, so calling it through
                // the method's exact non-variadic signature is its documented use.
                let imp = unsafe { core::mem::transmute::<unsafe extern "C-unwind" fn(), Imp<R $(, $arg)*>>(imp) };
                // SAFETY: the caller guarantees the method has this signature.
                unsafe { imp(receiver, sel $(, $arg)*) }
            }
        }
    };
}

message_args!();
message_args!(A);
message_args!(A, B);
message_args!(A, B, C);
message_args!(A, B, C, D);
message_args!(A, B, C, D, E);
message_args!(A, B, C, D, E, F);
message_args!(A, B, C, D, E, F, G);
message_args!(A, B, C, D, E, F, G, H);
message_args!(A, B, C, D, E, F, G, H, I);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_apple_style_encodings() {
        assert_eq!(split_types("v24@0:8@16"), ["v", "@", ":", "@"]);
        assert_eq!(
            split_types("B40@0:8@16@24@32"),
            ["B", "@", ":", "@", "@", "@"]
        );
        assert_eq!(split_types("c24@0:8^@16"), ["c", "@", ":", "^@"]);
        assert_eq!(split_types("r*16@0:8"), ["*", "@", ":"]);
        assert_eq!(split_types("v32@0:8@?16Q24"), ["v", "@", ":", "@?", "Q"]);
        assert_eq!(
            split_types("@\"NSString\"16@0:8"),
            ["@\"NSString\"", "@", ":"]
        );
        assert_eq!(
            split_types("{_NSRange=QQ}16@0:8"),
            ["{_NSRange=QQ}", "@", ":"]
        );
        assert_eq!(split_types("Vv16@0:8"), ["v", "@", ":"]);
        assert_eq!(split_types("@32@0:8^r@16Q24"), ["@", "@", ":", "^r@", "Q"]);
    }

    #[test]
    fn compares_arguments_and_return() {
        use Encoding::*;
        assert_eq!(mismatch("v24@0:8@16", &[Object], Void), None);
        assert_eq!(mismatch("Q16@0:8", &[], Int64), None);
        let wrong_ret = mismatch("d16@0:8", &[], Int64).unwrap();
        assert!(wrong_ret.contains("return type"), "{wrong_ret}");
        let wrong_arg = mismatch("v24@0:8@16", &[Int64], Void).unwrap();
        assert!(wrong_arg.contains("argument 0"), "{wrong_arg}");
        let wrong_count = mismatch("v24@0:8@16", &[], Void).unwrap();
        assert!(wrong_count.contains("takes 1 argument"), "{wrong_count}");
        assert_eq!(mismatch("v24@0:8@?16", &[Block], Void), None);
        assert!(mismatch("v24@0:8@?16", &[Object], Void).is_some());
        assert_eq!(
            mismatch("c32@0:8^@16q24", &[ErrorOut, Int64], Bool).is_none(),
            BOOL_CODE == "c"
        );
        assert_eq!(mismatch("{CGSize=dd}16@0:8", &[], Size), None);
        assert_eq!(
            mismatch("v40@0:8{_NSSize=dd}16^@32", &[Size, ErrorOut], Void),
            None
        );
        assert!(mismatch("{_NSRange=QQ}16@0:8", &[], Size).is_some());
        // NSRect by value (Apple's and GNUstep's spellings), never mistaken for a size.
        let init = format!("@64@0:8{{CGRect={{CGPoint=dd}}{{CGSize=dd}}}}16Q48Q56{BOOL_CODE}64");
        assert_eq!(mismatch(&init, &[Rect, Int64, Int64, Bool], Object), None);
        let gnustep = "@52@0:8{_NSRect={_NSPoint=dd}{_NSSize=dd}}16Q48";
        assert_eq!(mismatch(gnustep, &[Rect, Int64], Object), None);
        assert!(mismatch(gnustep, &[Size, Int64], Object).is_some());
        assert!(mismatch("v24@0:8{CGSize=dd}16", &[Rect], Void).is_some());
        assert_eq!(mismatch("v20@0:8s16", &[Int16], Void), None);
    }
}
