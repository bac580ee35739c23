//! A replay's forked child: it runs the start call again with its kept arguments and the code as
//! it is now, and when the end call returns or raises ([`end_reached`], from the tracer's hook)
//! it snapshots that frame's locals and its value, opens the debugger if asked (at the end with
//! `break_at_end`; post-mortem in the raising frame with `debug_on_raise`, first telling the
//! parent with a [`Response::Debugging`] frame so the front end hands over the keyboard), writes
//! the result to the parent over a pipe, and exits with `_exit` (no `atexit`, no cleanup of the
//! parent's state: everything here is a copy). If the start call ends without reaching the end
//! call, that is the result. Before the start call runs, it says it is ready
//! ([`Response::Pong`]): a child that never says so is stuck in fever's own preparation, and
//! the parent replaces it.

use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, RawFd};
use std::sync::Mutex;
use std::time::Instant;

use fever_core::control::{ArgNote, EndOutcome, ReplayRequest, ReplayResult, Response};
use fever_core::notice::Notice;
use pyo3::ffi::{self, PyObject};
use pyo3::prelude::*;

use super::kept;
use crate::notices;
use crate::snapshot::{snapshot_exception, snapshot_value, SnapshotLimits};

/// What the child needs when the end call is reached.
struct State {
    request: ReplayRequest,
    notes: Vec<ArgNote>,
    pipe: RawFd,
    started: Instant,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// Runs the replay in this (child) process; never returns.
pub fn run(py: Python<'_>, request: &ReplayRequest, pipe: RawFd, started: Instant) -> ! {
    super::hooks::stop_at(py, &request.end, end_reached);
    let call = match kept::prepare(py, &request.start) {
        Ok(call) => call,
        Err(reason) => finish(py, pipe, &Response::ReplayFailed { reason }),
    };
    *STATE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(State {
        request: request.clone(),
        notes: call.notes.clone(),
        pipe,
        started,
    });
    // Ready: the parent's watchdog (`fork.rs`) waits for this before the program's code runs.
    send(pipe, &Response::Pong);
    let driven = py
        .import("fever._replay")
        .and_then(|m| m.call_method1("drive", (call.function, call.args, call.kwargs)));
    // The start call ended without reaching the end call.
    let how = match &driven {
        Ok(value) => format!(
            "{} returned {}",
            request.start,
            render(py, value.as_ptr(), false)
        ),
        Err(err) => {
            if request.break_at_end || request.debug_on_raise {
                debug(
                    py,
                    pipe,
                    &request.debugger,
                    &At::Raise(err.value(py).clone().into_any()),
                );
            }
            format!(
                "{} raised {}",
                request.start,
                render(py, err.value(py).as_ptr(), true)
            )
        }
    };
    let result = ReplayResult {
        outcome: EndOutcome::NotReached { how },
        locals: Vec::new(),
        notes: call.notes,
        elapsed_ns: elapsed(started),
    };
    finish(py, pipe, &Response::ReplayDone(result))
}

/// The end call ends: snapshot its frame's locals and its value, debug if asked, report, exit.
///
/// # Safety
/// GIL held; the current frame is the end call's; `value` is live or NULL.
pub unsafe fn end_reached(raised: bool, value: *mut PyObject) -> ! {
    // SAFETY: guaranteed by the caller.
    let py = unsafe { Python::assume_attached() };
    let Some(State {
        request,
        notes,
        pipe,
        started,
    }) = STATE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
    else {
        // SAFETY: `_exit` never returns; no state to report to (never expected).
        unsafe { libc::_exit(3) }
    };
    let elapsed_ns = elapsed(started);
    // SAFETY: GIL held; a borrowed frame made owned.
    let frame = unsafe { Bound::from_borrowed_ptr(py, ffi::PyEval_GetFrame().cast::<PyObject>()) };
    let locals = locals_of(py, &frame);
    let limits = SnapshotLimits::default();
    let mut snapshot = Vec::new();
    let outcome = if raised {
        // SAFETY: GIL held; `value` is the live exception.
        unsafe { snapshot_exception(value, &limits, &mut snapshot) };
        // SAFETY: `value` is live (the callback's argument).
        let exc = unsafe { Bound::from_borrowed_ptr(py, value) };
        let traceback = formatted(py, &exc);
        if request.break_at_end || request.debug_on_raise {
            debug(py, pipe, &request.debugger, &At::Raise(exc));
        }
        EndOutcome::Raised {
            exception: snapshot,
            traceback,
        }
    } else {
        // SAFETY: GIL held; `value` is the live returned value (or NULL).
        unsafe { snapshot_value(value, &limits, &mut snapshot) };
        if request.break_at_end {
            debug(py, pipe, &request.debugger, &At::Return(frame));
        }
        EndOutcome::Returned(snapshot)
    };
    let result = ReplayResult {
        outcome,
        locals,
        notes,
        elapsed_ns,
    };
    finish(py, pipe, &Response::ReplayDone(result))
}

/// The frame's local variables, snapshotted, in the frame's order.
fn locals_of(py: Python<'_>, frame: &Bound<'_, PyAny>) -> Vec<(String, Vec<u8>)> {
    let limits = SnapshotLimits::default();
    let items = frame
        .getattr("f_locals")
        .and_then(|l| py.import("builtins")?.getattr("dict")?.call1((l,)))
        .and_then(|d| d.call_method0("items"))
        .and_then(|items| {
            items
                .try_iter()?
                .map(|item| item.and_then(|i| i.extract::<(String, Bound<'_, PyAny>)>()))
                .collect::<PyResult<Vec<_>>>()
        });
    match items {
        Ok(items) => items
            .into_iter()
            .map(|(name, value)| {
                let mut out = Vec::new();
                // SAFETY: GIL held; `value` is live.
                unsafe { snapshot_value(value.as_ptr(), &limits, &mut out) };
                (name, out)
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Where the debugger opens.
enum At<'py> {
    /// In this frame, at its return.
    Return(Bound<'py, PyAny>),
    /// Post-mortem, where this exception was raised (its traceback is printed first, as Python
    /// prints an uncaught one).
    Raise(Bound<'py, PyAny>),
}

/// Python's formatted traceback of `exc`.
fn formatted(py: Python<'_>, exc: &Bound<'_, PyAny>) -> String {
    py.import("traceback")
        .and_then(|t| t.call_method1("format_exception", (exc,)))
        .and_then(|lines| lines.extract::<Vec<String>>())
        .map(|lines| lines.concat())
        .unwrap_or_default()
}

/// Opens the debugger on the pty/terminal the program has, once the parent was told (on
/// `pipe`) that a debugger has the terminal.
fn debug(py: Python<'_>, pipe: RawFd, name: &str, at: &At<'_>) {
    send(pipe, &Response::Debugging);
    let (frame, tb) = match at {
        At::Return(frame) => (Some(frame.clone()), None),
        At::Raise(exc) => {
            if let Ok(stderr) = py.import("sys").and_then(|sys| sys.getattr("stderr")) {
                let _ = stderr.call_method1("write", (formatted(py, exc),));
                let _ = stderr.call_method0("flush");
            }
            (None, exc.getattr("__traceback__").ok())
        }
    };
    let opened = py
        .import("fever._replay")
        .and_then(|m| m.call_method1("debug", (name, frame, tb)));
    if let Err(err) = opened {
        notices::emit(&Notice::DebuggerFailed {
            name: name.to_string(),
            error: err.to_string(),
        });
    }
}

/// A short rendering of a value or exception, by its snapshot.
fn render(_py: Python<'_>, value: *mut PyObject, exception: bool) -> String {
    let mut out = Vec::new();
    let limits = SnapshotLimits::default();
    // SAFETY: GIL held (we have `py`); `value` is live.
    unsafe {
        if exception {
            snapshot_exception(value, &limits, &mut out);
        } else {
            snapshot_value(value, &limits, &mut out);
        }
    }
    fever_core::snapshot::render_short(&out, 200)
}

fn elapsed(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Sends `response` to the parent, flushes the program's output, and exits.
fn finish(py: Python<'_>, pipe: RawFd, response: &Response) -> ! {
    for stream in ["stdout", "stderr"] {
        if let Ok(s) = py.import("sys").and_then(|sys| sys.getattr(stream)) {
            let _ = s.call_method0("flush");
        }
    }
    let code = i32::from(!send(pipe, response));
    // SAFETY: ends this forked child at once, without running the parent's atexit handlers.
    unsafe { libc::_exit(code) }
}

/// Writes one frame to the parent; false if it could not.
fn send(pipe: RawFd, response: &Response) -> bool {
    // SAFETY: the pipe's write end is ours; it stays open (closed by `_exit`).
    let mut file = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(pipe) });
    response.send(&mut *file).is_ok() && file.flush().is_ok()
}
