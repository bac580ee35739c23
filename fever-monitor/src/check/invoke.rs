//! Calling a user's function for `fever check`: with stdin empty (so `input()` raises
//! `EOFError` instead of waiting) and stdout and stderr discarded, restored afterwards whatever
//! the function did; the result or the exception snapshotted with the trace's limits.

use fever_core::check::Outcome;
use pyo3::exceptions::PyKeyboardInterrupt;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::snapshot::{snapshot_exception, snapshot_value, SnapshotLimits};

/// Runs `f` with `sys.stdin` empty and `sys.stdout`/`sys.stderr` discarded.
pub fn isolated<T>(py: Python<'_>, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    let sys = py.import("sys")?;
    let io = py.import("io")?;
    let saved = [
        sys.getattr("stdin")?,
        sys.getattr("stdout")?,
        sys.getattr("stderr")?,
    ];
    sys.setattr("stdin", io.getattr("StringIO")?.call1(("",))?)?;
    sys.setattr("stdout", io.getattr("StringIO")?.call0()?)?;
    sys.setattr("stderr", io.getattr("StringIO")?.call0()?)?;
    let result = f();
    for (name, stream) in ["stdin", "stdout", "stderr"].into_iter().zip(saved) {
        sys.setattr(name, stream)?;
    }
    result
}

/// Calls `function(*args, **kwargs)` isolated and snapshots what it returned or raised
/// (`SystemExit` included). Err only for a `KeyboardInterrupt`, which stops the check.
pub fn call(
    py: Python<'_>,
    function: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
    kwargs: &Bound<'_, PyDict>,
    limits: &SnapshotLimits,
) -> PyResult<Outcome> {
    let result = isolated(py, || Ok(function.call(args, Some(kwargs))))?;
    let mut out = Vec::new();
    match result {
        Ok(value) => {
            // SAFETY: the GIL is held and `value` is alive for the call.
            unsafe { snapshot_value(value.as_ptr(), limits, &mut out) };
            Ok(Outcome::Returned(out))
        }
        Err(err) if err.is_instance_of::<PyKeyboardInterrupt>(py) => Err(err),
        Err(err) => {
            let exception = err.into_value(py);
            // SAFETY: the GIL is held and `exception` is alive for the call.
            unsafe { snapshot_exception(exception.as_ptr(), limits, &mut out) };
            Ok(Outcome::Raised(out))
        }
    }
}
