//! `compile(source, file, "exec", dont_inherit=True)` for a module's source bytes, without the
//! built-in `compile`.
//!
//! The built-in's first call in a process creates the `ast` module's types (`PyAST_Check`), about
//! 11 M instructions, a tenth of a `fever record` of a tiny script, though fever never passes it
//! an AST. `Py_CompileStringObject` is what the built-in calls after that check, with the same
//! flags here: the same code object, the same `compile` audit event (raised by the parser,
//! which `sources` relies on), the same errors. Source with a NUL byte goes to the built-in,
//! for its own error.

use std::ffi::CString;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::compat::PY_CF_SOURCE_IS_UTF8;

/// The code object of the module whose source is `source`, named `file`.
pub fn compile<'py>(py: Python<'py>, source: &[u8], file: &str) -> PyResult<Bound<'py, PyAny>> {
    let Ok(text) = CString::new(source) else {
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("dont_inherit", true)?;
        return py.import("builtins")?.getattr("compile")?.call(
            (pyo3::types::PyBytes::new(py, source), file, "exec"),
            Some(&kwargs),
        );
    };
    let filename = PyString::new(py, file);
    // The built-in's flags for a bytes source with `dont_inherit=True`.
    let mut flags = ffi::PyCompilerFlags {
        cf_flags: PY_CF_SOURCE_IS_UTF8,
        cf_feature_version: py.version_info().minor.into(),
    };
    // SAFETY: GIL held; a NUL-terminated source, a live str filename, flags on the stack;
    // a new reference or NULL with an exception set.
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::Py_CompileStringObject(
                text.as_ptr(),
                filename.as_ptr(),
                ffi::Py_file_input,
                &raw mut flags,
                -1,
            ),
        )
    }
}
