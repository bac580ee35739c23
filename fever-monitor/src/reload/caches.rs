//! `functools.lru_cache` / `functools.cache` wrappers of a function whose code was replaced:
//! their stored results came from the old code, so they are cleared. The wrappers are found in
//! the function's module namespace and the classes defined there (also under `staticmethod` /
//! `classmethod`), by following `__wrapped__` to the function. Plain functions, most of a
//! module's names, are passed over without a lookup: a save of one function in a module of
//! thousands costs little here.

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
            if let Ok(namespace) = class.getattr("__dict__") {
                if let Ok(values) = namespace.call_method0("values") {
                    for member in values.try_iter()?.flatten() {
                        if !is_bare_function(&member) {
                            cleared += clear_if_wrapping(member, function)?;
                        }
                    }
                }
            }
        }
        cleared += clear_if_wrapping(value, function)?;
    }
    Ok(cleared)
}

/// The values of `namespace` that could wrap a function: all but the bare functions, taken
/// before any is looked at (looking may run Python code, which may change the namespace).
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
            if !is_bare_function_ptr(value) {
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

/// A function with no attributes of its own: it wraps nothing (a cache written in Python keeps
/// its `cache_clear` and `__wrapped__` in the wrapper function's `__dict__`).
fn is_bare_function(object: &Bound<'_, PyAny>) -> bool {
    // SAFETY: a Bound is a live object and proves the GIL is held.
    unsafe { is_bare_function_ptr(object.as_ptr()) }
}

/// [`is_bare_function`] of a live object, with the GIL held.
unsafe fn is_bare_function_ptr(object: *mut ffi::PyObject) -> bool {
    // SAFETY: guaranteed by the caller; `func_dict` is read only after the type check, from the
    // layout every supported Python shares (pyo3-ffi's).
    unsafe {
        if ffi::PyFunction_Check(object) == 0 {
            return false;
        }
        let dict = (*object.cast::<ffi::PyFunctionObject>()).func_dict;
        dict.is_null() || ffi::PyDict_Size(dict) == 0
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
