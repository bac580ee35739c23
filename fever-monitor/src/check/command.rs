//! `fever check TRACE` in this interpreter: the trace opened for the command line, which checks
//! its calls one by one and decides what to print and the exit code.

use fever_core::check::Options;
use fever_core::settings::CheckConfig;
use pyo3::prelude::*;

use super::checker::{Checker, Settings};

/// Opens the trace of `config` with the project's modules imported; `None` after Ctrl-C while
/// they were imported.
pub fn open(py: Python<'_>, config: &CheckConfig) -> anyhow::Result<Option<Checker>> {
    let options = Options {
        patterns: config.select.clone(),
        depth: config.depth,
        ..Options::default()
    };
    let settings = Settings {
        rel_tol: config.rel_tol,
        timeout: config.timeout,
        twice: config.twice,
    };
    match Checker::open(
        py,
        &config.trace,
        &options,
        settings,
        config.root.as_deref(),
    ) {
        Ok(checker) => Ok(Some(checker)),
        Err(err)
            if err
                .downcast_ref::<PyErr>()
                .is_some_and(|e| is_interrupt(py, e)) =>
        {
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

/// Whether `err` is Ctrl-C.
pub fn is_interrupt(py: Python<'_>, err: &PyErr) -> bool {
    err.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py)
}
