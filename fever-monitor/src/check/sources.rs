//! [`Sources`]: the sources of nondeterminism `fever check` watches while calls run (random
//! without a fixed seed, the clock, `uuid`, `os.urandom`, the caller's frame and the exception
//! it was handling), implemented in `sources.py`, which wraps those functions in their
//! modules before the project is imported. What the project's imports read is noted too:
//! [`Sources::made_at_import`] gives the module-level values made from it.

use fever_core::check::MadeAtImport;
use fever_core::snapshot::decode;
use pyo3::prelude::*;
use pyo3::types::PyModule;

use crate::snapshot::{snapshot_value, SnapshotLimits};

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

    /// The project's modules are imported: what reads a source from now on is a call's.
    pub fn imported(&self, py: Python<'_>) -> PyResult<()> {
        self.module.bind(py).call_method0("imported").map(drop)
    }

    /// The module-level values that the project's imports made while reading a source (a
    /// random id, a start time), snapshotted.
    pub fn made_at_import(
        &self,
        py: Python<'_>,
        limits: &SnapshotLimits,
    ) -> PyResult<Vec<MadeAtImport>> {
        let made: Vec<(String, String, Vec<Bound<'_, PyAny>>)> = self
            .module
            .bind(py)
            .call_method0("made_at_import")?
            .extract()?;
        Ok(made
            .into_iter()
            .map(|(name, source, values)| MadeAtImport {
                name,
                source,
                values: values
                    .iter()
                    .filter_map(|value| {
                        let mut out = Vec::new();
                        // SAFETY: the GIL is held and `value` is alive for the call.
                        unsafe { snapshot_value(value.as_ptr(), limits, &mut out) };
                        decode(&out).ok()
                    })
                    .collect(),
            })
            .collect())
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
