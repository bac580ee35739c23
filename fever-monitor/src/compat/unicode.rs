//! Reading a `str` in place. Up to 3.13 pyo3-ffi reads the `state` bit field of `PyASCIIObject`
//! (`PyUnicode_IS_ASCII`); from 3.14 it no longer does (the field's layout is `CPython`'s to
//! change). One test works on every version without the bit field: a compact ASCII string keeps
//! its characters right after its `PyASCIIObject` header, which no other string form does.

use pyo3::ffi::{self, PyASCIIObject, PyObject};

/// Whether `obj` is a compact ASCII str, whose characters are their own UTF-8 and can be read
/// in place at [`ffi::PyUnicode_DATA`]. Legacy strings (instances of str subclasses) say no even
/// when they are ASCII: their data lives elsewhere. Safety: GIL held, `obj` a live str.
#[inline]
pub unsafe fn is_compact_ascii(obj: *mut PyObject) -> bool {
    // SAFETY: guaranteed by the caller; the pointer arithmetic stays one past the header.
    unsafe { ffi::PyUnicode_DATA(obj) == obj.cast::<PyASCIIObject>().add(1).cast() }
}
