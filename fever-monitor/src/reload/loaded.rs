//! What the reload path needs from the interpreter, taken straight from where it is kept instead
//! of through an import statement: a loaded module from `sys.modules`, `sys.modules` itself, an
//! attribute of `sys`. An import of a loaded module still goes through the import machinery
//! (`__import__`, the module's spec); a save applied in every process of a program pays that for
//! each lookup, in each process.

use std::ffi::CStr;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The module `name` from `sys.modules`, imported only when it is not loaded yet.
pub fn module<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    match sys_modules(py)?.get_item(name)? {
        Some(module) if !module.is_none() => Ok(module),
        _ => Ok(py.import(name)?.into_any()),
    }
}

/// `sys.modules`.
pub fn sys_modules(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    // SAFETY: the GIL is held; a borrowed reference to the interpreter's `sys.modules`.
    let modules = unsafe { Bound::from_borrowed_ptr_or_err(py, ffi::PyImport_GetModuleDict())? };
    Ok(modules.cast_into::<PyDict>()?)
}

/// `sys.<name>`.
pub fn sys_attr<'py>(py: Python<'py>, name: &CStr) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: the GIL is held; a borrowed reference, or NULL (no error set) when it is missing.
    match unsafe { Bound::from_borrowed_ptr_or_opt(py, ffi::PySys_GetObject(name.as_ptr())) } {
        Some(value) => Ok(value),
        None => Err(pyo3::exceptions::PyAttributeError::new_err(format!(
            "sys has no attribute {}",
            name.to_string_lossy()
        ))),
    }
}
