//! The errors fever raises into Python, in one place: [`FeverError`] (exported as
//! `fever._native.FeverError`) for fever's own failures: a trace the pytest plugin cannot open,
//! a cached function whose trampoline is gone. Errors of the user's code stay what Python
//! raised; invalid argument values are `ValueError`s, as Python's own functions raise.

pyo3::create_exception!(
    fever,
    FeverError,
    pyo3::exceptions::PyException,
    "An error of fever itself, raised into the program or the pytest plugin."
);

/// A [`FeverError`] with `message`.
pub fn fever_error(message: impl Into<String>) -> pyo3::PyErr {
    FeverError::new_err(message.into())
}
