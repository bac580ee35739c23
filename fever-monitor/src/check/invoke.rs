//! Calling a user's function for `fever check`: with stdin empty (so `input()` raises
//! `EOFError` instead of waiting) and stdout and stderr discarded, restored afterwards whatever
//! the function did; within a time limit; the result or the exception snapshotted with the
//! trace's limits. A generator function's call is stepped through the values it yields
//! ([`call_generator`]).
//!
//! The time limit is a `SIGALRM` timer (on the main thread, where Python runs signal handlers)
//! whose handler raises [`CallTimedOut`], a `BaseException` so `except Exception` in the
//! user's code does not swallow it; the timer fires again every second until the call is over,
//! in case the code caught it anyway. Off the main thread, calls run without a limit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use fever_core::check::Outcome;
use pyo3::exceptions::{PyBaseException, PyKeyboardInterrupt, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};

use crate::snapshot::{snapshot_exception, snapshot_value, SnapshotLimits};

pyo3::create_exception!(
    fever,
    CallTimedOut,
    PyBaseException,
    "A call re-invoked by `fever check` ran past its time limit."
);

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

/// What a re-invoked call did.
pub enum Called {
    /// It returned or raised; what it returned.
    Finished(Outcome, Option<Py<PyAny>>),
    /// It was still running when its time limit passed.
    TimedOut,
}

/// How calls are made.
#[derive(Debug, Clone, Copy)]
pub struct Conditions<'a> {
    /// Snapshot limits for the outcome (the trace's).
    pub limits: &'a SnapshotLimits,
    /// Seconds the call may run (`None`: no limit).
    pub timeout: Option<f64>,
    /// Warnings raise, as under pytest's `-W error` (`filterwarnings = error`): the recording
    /// shows the call raised a warning.
    pub warnings_as_errors: bool,
}

/// What a re-invoked generator call yielded.
pub enum Stepped {
    /// The values it yielded (snapshots), then how it ended if it did within the steps taken
    /// (`Returned`: its `StopIteration` value).
    Finished(Vec<Vec<u8>>, Option<Outcome>),
    /// It was still running when its time limit passed.
    TimedOut,
}

/// Calls the generator function `function(*args, **kwargs)` isolated, under `conditions`,
/// and takes up to `steps` values from the generator (then closes it), snapshotting each and
/// how it ended. Err only for a `KeyboardInterrupt`.
pub fn call_generator(
    py: Python<'_>,
    function: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
    kwargs: &Bound<'_, PyDict>,
    conditions: Conditions<'_>,
    steps: usize,
) -> PyResult<Stepped> {
    let limits = conditions.limits;
    let ended = |err: PyErr| -> PyResult<Outcome> {
        if err.is_instance_of::<PyKeyboardInterrupt>(py) || err.is_instance_of::<CallTimedOut>(py) {
            return Err(err);
        }
        let mut out = Vec::new();
        if err.is_instance_of::<PyStopIteration>(py) {
            let value = err.value(py).getattr("value")?;
            // SAFETY: the GIL is held and `value` is alive for the call.
            unsafe { snapshot_value(value.as_ptr(), limits, &mut out) };
            return Ok(Outcome::Returned(out));
        }
        let exception = err.into_value(py);
        // SAFETY: the GIL is held and `exception` is alive for the call.
        unsafe { snapshot_exception(exception.as_ptr(), limits, &mut out) };
        Ok(Outcome::Raised(out))
    };
    let stepped = guarded(py, conditions, || {
        let generator = match function.call(args, Some(kwargs)) {
            Ok(generator) => generator,
            Err(err) => return Ok((Vec::new(), Some(ended(err)?))),
        };
        let mut yielded = Vec::new();
        let mut end = None;
        for _ in 0..steps {
            match generator.call_method0("__next__") {
                Ok(value) => {
                    let mut out = Vec::new();
                    // SAFETY: the GIL is held and `value` is alive for the call.
                    unsafe { snapshot_value(value.as_ptr(), limits, &mut out) };
                    yielded.push(out);
                }
                Err(err) => {
                    end = Some(ended(err)?);
                    break;
                }
            }
        }
        // Its `finally` blocks run now, isolated too; what they raise is not the call's.
        if let Err(err) = generator.call_method0("close") {
            if err.is_instance_of::<PyKeyboardInterrupt>(py)
                || err.is_instance_of::<CallTimedOut>(py)
            {
                return Err(err);
            }
        }
        Ok((yielded, end))
    })?;
    Ok(match stepped {
        Some(Ok((yielded, end))) => Stepped::Finished(yielded, end),
        Some(Err(err)) if err.is_instance_of::<PyKeyboardInterrupt>(py) => return Err(err),
        Some(Err(err)) if !err.is_instance_of::<CallTimedOut>(py) => {
            Stepped::Finished(Vec::new(), Some(ended(err)?))
        }
        Some(Err(_)) | None => Stepped::TimedOut,
    })
}

/// Runs `f` isolated, under `conditions`: `None` if its time limit passed meanwhile.
fn guarded<T>(
    py: Python<'_>,
    conditions: Conditions<'_>,
    f: impl FnOnce() -> PyResult<T>,
) -> PyResult<Option<PyResult<T>>> {
    let Conditions {
        timeout,
        warnings_as_errors,
        ..
    } = conditions;
    let filters = if warnings_as_errors {
        let filters = py.import("warnings")?.call_method0("catch_warnings")?;
        filters.call_method0("__enter__")?;
        py.import("warnings")?
            .call_method1("simplefilter", ("error",))?;
        Some(filters)
    } else {
        None
    };
    let alarm = match timeout {
        Some(seconds) => Alarm::arm(py, seconds)?,
        None => None,
    };
    let result = isolated(py, || Ok(f()));
    let fired = match alarm {
        Some(alarm) => alarm.disarm(py)?,
        None => false,
    };
    if let Some(filters) = filters {
        filters.call_method1("__exit__", (py.None(), py.None(), py.None()))?;
    }
    let result = result?;
    Ok((!fired).then_some(result))
}

/// Calls `function(*args, **kwargs)` isolated, under `conditions`, and snapshots what it
/// returned or raised (`SystemExit` included). Err only for a `KeyboardInterrupt`, which stops
/// the check.
pub fn call(
    py: Python<'_>,
    function: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
    kwargs: &Bound<'_, PyDict>,
    conditions: Conditions<'_>,
) -> PyResult<Called> {
    let limits = conditions.limits;
    let Some(result) = guarded(py, conditions, || Ok(function.call(args, Some(kwargs))))? else {
        return Ok(Called::TimedOut);
    };
    let result = result?;
    let mut out = Vec::new();
    match result {
        Ok(value) => {
            // SAFETY: the GIL is held and `value` is alive for the call.
            unsafe { snapshot_value(value.as_ptr(), limits, &mut out) };
            Ok(Called::Finished(
                Outcome::Returned(out),
                Some(value.unbind()),
            ))
        }
        Err(err) if err.is_instance_of::<PyKeyboardInterrupt>(py) => Err(err),
        Err(err) => {
            let exception = err.into_value(py);
            // SAFETY: the GIL is held and `exception` is alive for the call.
            unsafe { snapshot_exception(exception.as_ptr(), limits, &mut out) };
            Ok(Called::Finished(Outcome::Raised(out), None))
        }
    }
}

/// A `SIGALRM` timer armed for one call, and the handler it replaced.
struct Alarm<'py> {
    signal: Bound<'py, PyModule>,
    previous: Bound<'py, PyAny>,
    fired: Arc<AtomicBool>,
}

impl<'py> Alarm<'py> {
    /// Arms the timer; `None` where signals cannot be handled (not the main thread).
    fn arm(py: Python<'py>, seconds: f64) -> PyResult<Option<Self>> {
        let signal = py.import("signal")?;
        let fired = Arc::new(AtomicBool::new(false));
        let noted = Arc::clone(&fired);
        let handler = PyCFunction::new_closure(
            py,
            None,
            None,
            move |_args: &Bound<'_, PyTuple>,
                  _kwargs: Option<&Bound<'_, PyDict>>|
                  -> PyResult<()> {
                noted.store(true, Ordering::Relaxed);
                Err(CallTimedOut::new_err(
                    "the call ran past fever check's --timeout",
                ))
            },
        )?;
        let sigalrm = signal.getattr("SIGALRM")?;
        let previous = match signal.call_method1("signal", (&sigalrm, handler)) {
            // None: a handler set from C, which Python cannot put back; the default it is.
            Ok(previous) if previous.is_none() => signal.getattr("SIG_DFL")?,
            Ok(previous) => previous,
            // ValueError: not the main thread.
            Err(_) => return Ok(None),
        };
        let timer = signal.getattr("ITIMER_REAL")?;
        signal.call_method1("setitimer", (timer, seconds, 1.0))?;
        Ok(Some(Self {
            signal,
            previous,
            fired,
        }))
    }

    /// Stops the timer and puts the previous handler back; whether it fired. A last alarm
    /// delivered while this runs is dropped.
    fn disarm(self, py: Python<'py>) -> PyResult<bool> {
        let timer = self.signal.getattr("ITIMER_REAL")?;
        for _ in 0..8 {
            match self.signal.call_method1("setitimer", (&timer, 0.0)) {
                Ok(_) => break,
                Err(err) if err.is_instance_of::<CallTimedOut>(py) => {}
                Err(err) => return Err(err),
            }
        }
        let sigalrm = self.signal.getattr("SIGALRM")?;
        self.signal
            .call_method1("signal", (sigalrm, &self.previous))?;
        Ok(self.fired.load(Ordering::Relaxed))
    }
}
