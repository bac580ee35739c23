//! `functools.lru_cache` / `functools.cache` wrappers of a function whose code was replaced:
//! their stored results came from the old code, so they are cleared. The wrappers are found in
//! the function's module namespace and the classes defined there (also under `staticmethod` /
//! `classmethod`), by following `__wrapped__` to the function.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};

/// Clears every cache wrapping `function`; returns how many.
pub fn clear_wrappers(function: &Bound<'_, PyAny>) -> PyResult<usize> {
    let py = function.py();
    let Ok(globals) = function.getattr("__globals__")?.cast_into::<PyDict>() else {
        return Ok(0);
    };
    let mut candidates: Vec<Bound<'_, PyAny>> = Vec::new();
    for value in globals.values() {
        if let Ok(class) = value.cast::<PyType>() {
            if let Ok(namespace) = class.getattr("__dict__") {
                if let Ok(values) = namespace.call_method0("values") {
                    candidates.extend(values.try_iter()?.flatten());
                }
            }
        }
        candidates.push(value);
    }
    let mut cleared = 0;
    // Optional lookups: a module of thousands of plain functions raises no AttributeError per
    // function (Python 3.13+ skips creating it), so this costs little per save.
    for candidate in candidates {
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
            cleared += 1;
        }
    }
    Ok(cleared)
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
