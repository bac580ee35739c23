//! Reading a `str` in place. Up to 3.13 pyo3-ffi reads the `state` bit field of `PyASCIIObject`
//! (`PyUnicode_IS_ASCII`); from 3.14 it no longer does (the field's layout is `CPython`'s to
//! change). One test works on every version without the bit field: a compact ASCII string keeps
//! its characters right after its `PyASCIIObject` header, which no other string form does.

use pyo3::ffi::{self, PyASCIIObject, PyObject};

/// The text of `obj` read in place, if it is a compact ASCII str (whose characters are their
/// own UTF-8, at [`ffi::PyUnicode_DATA`]). Legacy strings (instances of str subclasses) say no
/// even when they are ASCII: their data lives elsewhere.
///
/// # Safety
/// The GIL is held and `obj` is a live str that outlives the result.
#[inline]
pub unsafe fn compact_ascii<'a>(obj: *mut PyObject) -> Option<&'a str> {
    // SAFETY: guaranteed by the caller; the pointer arithmetic stays one past the header, and
    // ASCII bytes are valid UTF-8.
    unsafe {
        let data = ffi::PyUnicode_DATA(obj);
        if data != obj.cast::<PyASCIIObject>().add(1).cast() {
            return None;
        }
        let len = usize::try_from(ffi::PyUnicode_GET_LENGTH(obj)).unwrap_or(0);
        Some(std::str::from_utf8_unchecked(std::slice::from_raw_parts(
            data.cast::<u8>(),
            len,
        )))
    }
}
