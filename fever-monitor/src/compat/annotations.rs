//! Annotations, which 3.14 evaluates lazily (PEP 649/749): a `def` with annotations (a class
//! body, a module) gets a compiler-made `__annotate__` function that computes them when
//! something reads `__annotations__` (`typing.get_type_hints`, dataclasses, `inspect`).
//!
//! - [`is_generated`]: those functions are not calls the user made: the tracer and the call
//!   cache treat them as library code (not traced, cached or checked).
//! - [`copy`]: a reload hands a function its new annotations without evaluating them (on 3.14
//!   they may name what exists only under `TYPE_CHECKING`, or what is defined later).

use pyo3::ffi::{self, PyObject};
use pyo3::prelude::*;

/// Whether `code` is made by the compiler rather than written as a call by the user: the
/// `__annotate__` functions of 3.14+ (a module's, a class's, a function's). They run when
/// something reads annotations (`typing.get_type_hints`, dataclasses, `inspect`), so tracing,
/// caching or checking them would show calls the program never made. Before 3.14 no code has
/// this name (a dunder name is reserved to Python). Safety: GIL held, `code` a live object, no
/// exception set.
pub unsafe fn is_generated(code: *mut PyObject) -> bool {
    // SAFETY: guaranteed by the caller.
    unsafe {
        let name = ffi::PyObject_GetAttrString(code, c"co_name".as_ptr());
        if name.is_null() {
            ffi::PyErr_Clear();
            return false;
        }
        let generated = ffi::PyUnicode_Check(name) != 0
            && ffi::PyUnicode_CompareWithASCIIString(name, c"__annotate__".as_ptr()) == 0;
        ffi::Py_DECREF(name);
        generated
    }
}

/// Gives `function` the annotations of `fresh` (the same definition, just executed) without
/// evaluating them: its `__annotate__` where there is one (3.14+; setting it drops the dict cached
/// from the old one), else its `__annotations__` dict (3.12 and 3.13, and a module under
/// `from __future__ import annotations`, where `__annotate__` is None).
pub fn copy(fresh: &Bound<'_, PyAny>, function: &Bound<'_, PyAny>) -> PyResult<()> {
    if let Ok(annotate) = fresh.getattr("__annotate__") {
        if !annotate.is_none() {
            return function.setattr("__annotate__", annotate);
        }
    }
    function.setattr("__annotations__", fresh.getattr("__annotations__")?)
}
