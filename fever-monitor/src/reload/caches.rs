//! `functools.lru_cache` / `functools.cache` wrappers of a function whose code was replaced:
//! their stored results came from the old code, so they are cleared. The wrappers are found in
//! the function's module namespace and the classes defined there (also under `staticmethod` /
//! `classmethod`), by following `__wrapped__` to the function. What cannot be a cache is told by
//! its type alone and passed over without a lookup: plain functions (most of a module's names),
//! strings, numbers, containers, modules, descriptors, built-in functions and classes. A save of
//! one function in a module of thousands costs little here, in every process it reaches.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};

/// Clears every cache wrapping `function`; returns how many.
pub fn clear_wrappers(function: &Bound<'_, PyAny>) -> PyResult<usize> {
    let Ok(globals) = function.getattr("__globals__")?.cast_into::<PyDict>() else {
        return Ok(0);
    };
    let mut cleared = 0;
    for value in wrapping_candidates(&globals) {
        if let Ok(class) = value.cast::<PyType>() {
            if let Some(namespace) = class_namespace(class) {
                for member in wrapping_candidates(&namespace) {
                    cleared += clear_if_wrapping(member, function)?;
                }
            }
            continue;
        }
        cleared += clear_if_wrapping(value, function)?;
    }
    Ok(cleared)
}

/// The namespace of a class defined in Python (a heap type: a built-in class holds no cache of
/// the program's functions), read from the type without an attribute lookup.
fn class_namespace<'py>(class: &Bound<'py, PyType>) -> Option<Bound<'py, PyDict>> {
    let py = class.py();
    let ty = class.as_ptr().cast::<ffi::PyTypeObject>();
    // SAFETY: a live type object, GIL held; `PyType_GetDict` (3.12+) returns a new reference to
    // the type's dict (NULL, with no error set, when it has none).
    unsafe {
        if ffi::PyType_HasFeature(ty, ffi::Py_TPFLAGS_HEAPTYPE) == 0 {
            return None;
        }
        Bound::from_owned_ptr_or_opt(py, ffi::PyType_GetDict(ty))?
            .cast_into::<PyDict>()
            .ok()
    }
}

/// The values of `namespace` that could wrap a function (or, for a module's, classes that could
/// hold one), taken before any is looked at (looking may run Python code, which may change the
/// namespace).
fn wrapping_candidates<'py>(namespace: &Bound<'py, PyDict>) -> Vec<Bound<'py, PyAny>> {
    let py = namespace.py();
    let mut found = Vec::new();
    let mut position: ffi::Py_ssize_t = 0;
    let mut key = std::ptr::null_mut();
    let mut value = std::ptr::null_mut();
    // SAFETY: the GIL is held (a Bound proves it) and nothing runs while the dict is walked;
    // `value` is a borrowed reference, made a strong one before it is kept.
    unsafe {
        while ffi::PyDict_Next(
            namespace.as_ptr(),
            &raw mut position,
            &raw mut key,
            &raw mut value,
        ) != 0
        {
            if !cannot_wrap(value) {
                found.push(Bound::from_borrowed_ptr(py, value));
            }
        }
    }
    found
}

/// Clears `candidate` (or the function a `staticmethod` / `classmethod` holds) when it is a
/// cache wrapping `function`; returns 1 when it was.
fn clear_if_wrapping(candidate: Bound<'_, PyAny>, function: &Bound<'_, PyAny>) -> PyResult<usize> {
    let py = candidate.py();
    // A class nested in a class is no cache.
    if candidate.is_instance_of::<PyType>() {
        return Ok(0);
    }
    // Optional lookups: no AttributeError is raised for a missing attribute (Python 3.13+ skips
    // creating it).
    let wrapper = candidate
        .getattr_opt(pyo3::intern!(py, "__func__"))
        .ok()
        .flatten()
        .unwrap_or(candidate);
    if wrapper
        .getattr_opt(pyo3::intern!(py, "cache_clear"))
        .is_ok_and(|clear| clear.is_some())
        && wraps(&wrapper, function)
    {
        wrapper.call_method0(pyo3::intern!(py, "cache_clear"))?;
        return Ok(1);
    }
    Ok(0)
}

/// Can a live `object` not be a cache wrapping a function, by its type alone? A bare function
/// (with no attributes of its own: a cache written in Python keeps its `cache_clear` and
/// `__wrapped__` in the wrapper function's `__dict__`), or an instance of a built-in type that
/// has neither attribute and takes none (a subclass could: only the exact types are passed
/// over). Classes are not: their namespaces are looked into.
///
/// # Safety
/// `object` is a live object and the GIL is held.
unsafe fn cannot_wrap(object: *mut ffi::PyObject) -> bool {
    // SAFETY: guaranteed by the caller; `func_dict` is read only after the type check, from the
    // layout every supported Python shares (pyo3-ffi's); the type objects are the interpreter's
    // statics, compared by address.
    unsafe {
        if ffi::PyFunction_Check(object) != 0 {
            let dict = (*object.cast::<ffi::PyFunctionObject>()).func_dict;
            return dict.is_null() || ffi::PyDict_Size(dict) == 0;
        }
        let ty = ffi::Py_TYPE(object);
        ffi::Py_IsNone(object) != 0
            || [
                &raw mut ffi::PyUnicode_Type,
                &raw mut ffi::PyLong_Type,
                &raw mut ffi::PyBool_Type,
                &raw mut ffi::PyFloat_Type,
                &raw mut ffi::PyBytes_Type,
                &raw mut ffi::PyTuple_Type,
                &raw mut ffi::PyList_Type,
                &raw mut ffi::PyDict_Type,
                &raw mut ffi::PySet_Type,
                &raw mut ffi::PyFrozenSet_Type,
                &raw mut ffi::PyModule_Type,
                &raw mut ffi::PyCFunction_Type,
                &raw mut ffi::PyGetSetDescr_Type,
                &raw mut ffi::PyMemberDescr_Type,
                &raw mut ffi::PyProperty_Type,
            ]
            .contains(&ty)
    }
}

/// `wrapper.__wrapped__` (followed a few levels) is `function`.
fn wraps(wrapper: &Bound<'_, PyAny>, function: &Bound<'_, PyAny>) -> bool {
    let mut current = wrapper.clone();
    for _ in 0..8 {
        match current.getattr_opt(pyo3::intern!(wrapper.py(), "__wrapped__")) {
            Ok(Some(inner)) if inner.is(function) => return true,
            Ok(Some(inner)) => current = inner,
            _ => return false,
        }
    }
    false
}
