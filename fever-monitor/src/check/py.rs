//! `fever._native.CheckSession`: the pytest plugin's handle on a [`Checker`], so each recorded
//! call becomes a test item checked exactly as `fever check` checks it.

use std::path::PathBuf;

use fever_core::check::{Options, Verdict, DEFAULT_REL_TOL};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::checker::{Checker, Settings};
use crate::errors::fever_error;

/// A trace opened for checking; see `_native.pyi`.
#[pyclass(unsendable, module = "fever._native")]
pub struct CheckSession {
    checker: Checker,
}

#[pymethods]
impl CheckSession {
    #[new]
    #[allow(clippy::needless_pass_by_value)] // pyo3 hands over owned arguments
    #[pyo3(signature = (trace, select = Vec::new(), depth = 0, rel_tol = DEFAULT_REL_TOL, root = None, timeout = None, twice = false))]
    #[allow(clippy::too_many_arguments)] // the plugin's options, one keyword each
    fn new(
        py: Python<'_>,
        trace: PathBuf,
        select: Vec<String>,
        depth: usize,
        rel_tol: f64,
        root: Option<PathBuf>,
        timeout: Option<f64>,
        twice: bool,
    ) -> PyResult<Self> {
        if !rel_tol.is_finite() || rel_tol < 0.0 {
            return Err(PyValueError::new_err(format!(
                "rel_tol must be a number >= 0, got {rel_tol}"
            )));
        }
        if timeout.is_some_and(|t| !t.is_finite() || t <= 0.0) {
            return Err(PyValueError::new_err(format!(
                "timeout must be a number of seconds > 0, got {}",
                timeout.unwrap_or_default()
            )));
        }
        let options = Options {
            patterns: select,
            depth,
            ..Options::default()
        };
        let settings = Settings {
            rel_tol,
            timeout,
            twice,
        };
        let checker = Checker::open(py, &trace, &options, settings, root.as_deref())
            .map_err(|err| fever_error(format!("{err:#}")))?;
        Ok(Self { checker })
    }

    /// `(id, file, line)` of every selected call, in order.
    fn cases(&self) -> Vec<(String, String, u32)> {
        self.checker
            .cases()
            .iter()
            .map(|c| (c.id.clone(), c.code.file.clone(), c.code.first_line))
            .collect()
    }

    /// Checks call `index`: `("passed", "")`, `("failed", diff)` or `("skipped", reason)`.
    fn run(&mut self, py: Python<'_>, index: usize) -> PyResult<(&'static str, String)> {
        Ok(match self.checker.check(py, index)?.verdict {
            Verdict::Passed => ("passed", String::new()),
            Verdict::Failed(report) => ("failed", report),
            Verdict::Skipped(reason) => ("skipped", reason),
        })
    }
}
