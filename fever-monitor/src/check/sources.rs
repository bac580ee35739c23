//! [`Sources`]: the sources of nondeterminism `fever check` watches while calls run (random
//! without a fixed seed, the clock, `uuid`, `os.urandom`, the caller's frame and the exception
//! it was handling), implemented in `sources.py`, which wraps those functions in their
//! modules before the project is imported.

use pyo3::prelude::*;
use pyo3::types::PyModule;

/// The loaded `sources.py`.
pub struct Sources {
    module: Py<PyModule>,
}

impl Sources {
    /// Loads the watchers (once per process: loading again reuses the wrapped functions).
    pub fn load(py: Python<'_>) -> PyResult<Self> {
        Ok(Self {
            module: embedded(
                py,
                include_str!("sources.py"),
                c"<fever check: sources of nondeterminism>",
                c"_fever_check_sources",
            )?,
        })
    }

    /// Forgets what the previous call reached; the function whose code is `called` is about
    /// to run (what it reads above its own frame is its caller's).
    pub fn reset(&self, py: Python<'_>, called: &Bound<'_, PyAny>) -> PyResult<()> {
        self.module
            .bind(py)
            .call_method1("reset", (called,))
            .map(drop)
    }

    /// What the call since [`reset`](Self::reset) reached, e.g. `uuid.uuid4`.
    pub fn reached(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.module.bind(py).call_method0("reached")?.extract()
    }
}

/// Runs one of fever check's own Python modules (`source`, included in the binary).
pub(super) fn embedded(
    py: Python<'_>,
    source: &str,
    file: &std::ffi::CStr,
    name: &std::ffi::CStr,
) -> PyResult<Py<PyModule>> {
    // The file is ours and holds no NUL.
    let source = std::ffi::CString::new(source).unwrap_or_default();
    Ok(PyModule::from_code(py, source.as_c_str(), file, name)?.unbind())
}
