//! [`Sources`]: the sources of nondeterminism `fever check` watches while calls run (random
//! without a fixed seed, the clock, `uuid`, `os.urandom`), implemented in `sources.py`, which
//! wraps those functions in their modules before the project is imported.

use pyo3::prelude::*;
use pyo3::types::PyModule;

/// The loaded `sources.py`.
pub struct Sources {
    module: Py<PyModule>,
}

impl Sources {
    /// Loads the watchers (once per process: loading again reuses the wrapped functions).
    pub fn load(py: Python<'_>) -> PyResult<Self> {
        let module = PyModule::from_code(
            py,
            c_str(include_str!("sources.py")).as_c_str(),
            c"<fever check: sources of nondeterminism>",
            c"_fever_check_sources",
        )?;
        Ok(Self {
            module: module.unbind(),
        })
    }

    /// Forgets what the previous call reached.
    pub fn reset(&self, py: Python<'_>) -> PyResult<()> {
        self.module.bind(py).call_method0("reset").map(drop)
    }

    /// What the call since [`reset`](Self::reset) reached, e.g. `uuid.uuid4`.
    pub fn reached(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.module.bind(py).call_method0("reached")?.extract()
    }
}

fn c_str(source: &str) -> std::ffi::CString {
    // The file is ours and holds no NUL.
    std::ffi::CString::new(source).unwrap_or_default()
}
