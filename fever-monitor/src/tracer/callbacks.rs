//! The sys.monitoring callbacks, as plain C functions with `METH_FASTCALL` (a `#[pyfunction]`
//! adds argument parsing and panic plumbing to every call), and their registration.
//!
//! Each callback: finds the tracer and the calling thread, looks the code up in its `co_extra`
//! slot, and appends one event. A library code gets `DISABLE` from the local events (`PY_START`,
//! `PY_RESUME`, `PY_RETURN`, `PY_YIELD`) and `None` from `PY_THROW`, `RAISE` and `PY_UNWIND`,
//! which cannot be disabled.
//! Nothing here raises, panics or leaves an exception set.

// Every call of the program runs these twice: the hot helpers are forced inline.
#![allow(clippy::inline_always)]

use fever_core::live::kind;
use fever_core::settings::Snapshots;
use fever_core::trace::MUTATED_ARGS;
use pyo3::ffi::{self, PyObject, Py_ssize_t};
use pyo3::prelude::*;

use fever_core::snapshot::Encoder;

use super::codes::{CodeEntry, Lookup};
use super::{release, tracer, Frame, Tracer, Watched};
use crate::monitoring::{self, disable, none};
use crate::snapshot::{snapshot_args, snapshot_exception, snapshot_value};

/// Largest snapshot kept as is (see [`cap_snapshot`]).
const MAX_SNAPSHOT_BYTES: usize = 4 << 20;

/// The project entry for `code`, classifying it on first sight. `None` for library code.
#[inline(always)]
unsafe fn entry_of(t: &mut Tracer, code: *mut PyObject) -> Option<usize> {
    // SAFETY: the caller holds the GIL and `code` is the callback's live argument.
    match unsafe { t.codes.lookup(code) } {
        Lookup::Project(i) => Some(i),
        Lookup::Other => None,
        Lookup::Unseen => {
            // SAFETY: as above; the current frame is the code's frame in these callbacks.
            let globals = unsafe {
                let frame = ffi::PyEval_GetFrame();
                if frame.is_null() {
                    std::ptr::null_mut()
                } else {
                    ffi::PyFrame_GetGlobals(frame)
                }
            };
            // SAFETY: as above.
            let classified = unsafe { t.codes.classify(code, globals) };
            // SAFETY: PyFrame_GetGlobals returned a new reference (or NULL).
            unsafe { ffi::Py_XDECREF(globals) };
            let (index, info) = classified?;
            t.announce(info);
            Some(index)
        }
    }
}

/// Common entry: the tracer (not busy) and the callback's code argument.
#[inline(always)]
unsafe fn enter(
    args: *mut *mut PyObject,
    nargs: Py_ssize_t,
) -> Option<(&'static mut Tracer, *mut PyObject)> {
    // SAFETY: callbacks run with the GIL held; `busy` keeps re-entered callbacks out.
    let t = unsafe { tracer() }?;
    if t.busy || nargs < 2 {
        return None;
    }
    // SAFETY: CPython passes `nargs` valid arguments.
    Some((t, unsafe { *args }))
}

/// `PY_START(code, offset)`: a new call.
unsafe extern "C" fn on_start(
    _slf: *mut PyObject,
    args: *mut *mut PyObject,
    nargs: Py_ssize_t,
) -> *mut PyObject {
    // SAFETY: called by CPython with the GIL held.
    let Some((t, code)) = (unsafe { enter(args, nargs) }) else {
        return none();
    };
    // SAFETY: as above.
    let Some(entry) = (unsafe { entry_of(t, code) }) else {
        return disable();
    };
    // SAFETY: GIL held; the current frame is this call's.
    unsafe { begin_call(t, entry) };
    if t.codes.entries[entry].replay != 0 {
        // SAFETY: as above.
        unsafe { replay_start(t, entry, code) };
    }
    none()
}

/// `fever replay`'s hooks at the start of a call of a code it asked about (see
/// `crate::replay::hooks`): keep its arguments, or note the end call's frame.
#[cold]
unsafe fn replay_start(t: &mut Tracer, entry: usize, code: *mut PyObject) {
    let e = &t.codes.entries[entry];
    let (flags, id, names) = (e.replay, e.id, e.arg_objects.clone());
    t.busy = true;
    // SAFETY: GIL held (caller); the current frame is this call's.
    let flags = unsafe { crate::replay::hooks::at_start(flags, id, code, &names) };
    t.busy = false;
    t.codes.entries[entry].replay = flags;
}

/// A new call of project code `entry` on the calling thread: counted, recorded under the cap
/// (with its arguments' snapshot), pushed on the thread's stack.
#[inline(always)]
unsafe fn begin_call(t: &mut Tracer, entry: usize) {
    let th = t.thread();
    let max = t.settings.max_calls;
    let e = &mut t.codes.entries[entry];
    e.calls += 1;
    let recorded = max == 0 || e.recorded < max;
    let id = e.id;
    let mut watched = None;
    if recorded {
        e.recorded += 1;
        let snapshot_from = if t.settings.snapshots == Snapshots::None {
            None
        } else {
            let before = t.threads[th].batch.snapshots.len();
            t.busy = true;
            // SAFETY: GIL held (caller); the current frame is this call's.
            watched = unsafe { snapshot_call(t, th, entry) };
            t.busy = false;
            Some(before)
        };
        t.push(th, kind::CALL, id, 0, snapshot_from);
    }
    t.threads[th].stack.push(Frame {
        entry: id,
        recorded,
        watched,
    });
}

/// Snapshots the current frame's arguments into thread `th`'s batch; returns what to re-hash at
/// the end of the call when an argument is mutable.
unsafe fn snapshot_call(t: &mut Tracer, th: usize, entry: usize) -> Option<Box<Watched>> {
    // SAFETY: GIL held (caller).
    let frame = unsafe { ffi::PyEval_GetFrame() };
    let e = &t.codes.entries[entry];
    let mut values = Vec::with_capacity(e.arg_objects.len());
    for &name in &e.arg_objects {
        let v = if frame.is_null() {
            std::ptr::null_mut()
        } else {
            // SAFETY: GIL held; `name` is a live str; returns a new reference or NULL + error.
            unsafe { ffi::PyFrame_GetVar(frame, name) }
        };
        if v.is_null() {
            // SAFETY: GIL held.
            unsafe { ffi::PyErr_Clear() };
        }
        values.push(v);
    }
    let names: Vec<&str> = e.arg_names.iter().map(String::as_str).collect();
    let out = &mut t.threads[th].batch.snapshots;
    let before = out.len();
    // SAFETY: GIL held; `values` are live or NULL.
    let snapped = unsafe { snapshot_args(&names, &values, &t.settings.limits, out) };
    cap_snapshot(out, before, Some(names.len()));
    if snapped.mutable {
        Some(Box::new(Watched {
            values,
            hash: snapped.hash,
        }))
    } else {
        for v in values {
            if !v.is_null() {
                // SAFETY: new references from PyFrame_GetVar.
                unsafe { ffi::Py_DECREF(v) };
            }
        }
        None
    }
}

/// Replaces a snapshot (from `before` to the end of `out`) larger than [`MAX_SNAPSHOT_BYTES`]
/// by a marker: the arguments container with every argument left out (`args`: how many), or an
/// opaque value. Bounded items, depth and string sizes can still multiply into megabytes, and a
/// ring record must stay well under half the ring.
fn cap_snapshot(out: &mut Vec<u8>, before: usize, args: Option<usize>) {
    if out.len() - before <= MAX_SNAPSHOT_BYTES {
        return;
    }
    out.truncate(before);
    let mut enc = Encoder::new(out);
    match args {
        Some(n) => {
            enc.begin_args();
            enc.end(n as u64);
        }
        None => enc.opaque("snapshot over 4 MiB"),
    }
    enc.finish();
}

/// Pops thread `th`'s frames down to the one for `id`; `None` when the call started before
/// tracing (no frame for it).
fn pop_to(t: &mut Tracer, th: usize, id: u32) -> Option<Frame> {
    let stack = &mut t.threads[th].stack;
    if stack.last().is_some_and(|f| f.entry == id) {
        return stack.pop();
    }
    let at = stack.iter().rposition(|f| f.entry == id)?;
    let abandoned: Vec<Frame> = stack.drain(at + 1..).collect();
    let frame = stack.pop();
    for f in abandoned {
        release(t, f.watched);
    }
    frame
}

/// Flags for the end of a recorded call: did a watched argument change?
fn end_flags(t: &mut Tracer, entry: usize, watched: Option<&Watched>) -> u8 {
    let Some(w) = watched else { return 0 };
    let e = &t.codes.entries[entry];
    let names: Vec<&str> = e.arg_names.iter().map(String::as_str).collect();
    t.busy = true;
    t.scratch.clear();
    // SAFETY: GIL held (callers are callbacks); the values are owned references.
    let hash = unsafe { snapshot_args(&names, &w.values, &t.settings.limits, &mut t.scratch) }.hash;
    t.busy = false;
    if hash == w.hash {
        0
    } else {
        u8::try_from(MUTATED_ARGS).unwrap_or(1)
    }
}

/// `PY_RETURN` / `PY_YIELD` / `PY_UNWIND`: the call (or the span of a generator) ends.
#[inline(always)]
unsafe fn on_end(
    args: *mut *mut PyObject,
    nargs: Py_ssize_t,
    event: u8,
    local: bool,
) -> *mut PyObject {
    // SAFETY: called by CPython with the GIL held.
    let Some((t, code)) = (unsafe { enter(args, nargs) }) else {
        return none();
    };
    // SAFETY: as above.
    let Some(entry) = (unsafe { entry_of(t, code) }) else {
        return if local { disable() } else { none() };
    };
    let th = t.thread();
    let id = t.codes.entries[entry].id;
    if t.codes.entries[entry].replay & crate::replay::hooks::STOP != 0 && event != kind::YIELD {
        // The replay may end here (the process then exits): nothing may re-enter the tracer.
        t.busy = true;
        let value = if nargs >= 3 {
            // SAFETY: CPython passes `nargs` valid arguments.
            unsafe { *args.add(2) }
        } else {
            std::ptr::null_mut()
        };
        // SAFETY: GIL held; the current frame is the ending call's.
        unsafe { crate::replay::hooks::at_end(event == kind::UNWIND, value) };
        t.busy = false;
    }
    let Some(frame) = pop_to(t, th, id) else {
        return none();
    };
    if frame.recorded {
        let flags = if event == kind::YIELD {
            0
        } else {
            end_flags(t, entry, frame.watched.as_deref())
        };
        let snapshot_from =
            if t.settings.snapshots == Snapshots::All && event != kind::UNWIND && nargs >= 3 {
                let out = &mut t.threads[th].batch.snapshots;
                let before = out.len();
                t.busy = true;
                // SAFETY: GIL held; args[2] is the returned or yielded value.
                unsafe { snapshot_value(*args.add(2), &t.settings.limits, out) };
                cap_snapshot(out, before, None);
                t.busy = false;
                Some(before)
            } else {
                None
            };
        t.push(th, event, id, flags, snapshot_from);
    }
    release(t, frame.watched);
    none()
}

/// `PY_RESUME` / `PY_THROW`: a generator or coroutine continues (`PY_THROW`: by `throw()`, as
/// asyncio does to deliver a cancellation or a failed future; the exception then shows as a
/// `RAISE` in the resumed span).
#[inline(always)]
unsafe fn on_continue(args: *mut *mut PyObject, nargs: Py_ssize_t, local: bool) -> *mut PyObject {
    // SAFETY: called by CPython with the GIL held.
    let Some((t, code)) = (unsafe { enter(args, nargs) }) else {
        return none();
    };
    // SAFETY: as above.
    let Some(entry) = (unsafe { entry_of(t, code) }) else {
        return if local { disable() } else { none() };
    };
    if !local && throws_before_start(&t.codes.entries[entry], args) {
        // `throw()` into a coroutine that never ran (asyncio cancelling a task before its first
        // step): CPython starts the frame without a PY_START, so this is the call's start.
        // SAFETY: GIL held; the current frame is the coroutine's.
        unsafe { begin_call(t, entry) };
        return none();
    }
    let th = t.thread();
    let max = t.settings.max_calls;
    let e = &t.codes.entries[entry];
    let recorded = max == 0 || e.calls <= max;
    let id = e.id;
    if recorded {
        t.push(th, kind::RESUME, id, 0, None);
    }
    t.threads[th].stack.push(Frame {
        entry: id,
        recorded,
        watched: None,
    });
    none()
}

/// Is this `PY_THROW` (arguments `code, offset, exception`) aimed at a frame that has not
/// reached its first `RESUME` yet, i.e. never started?
fn throws_before_start(entry: &CodeEntry, args: *mut *mut PyObject) -> bool {
    // SAFETY: PY_THROW passes three arguments; the offset is an int.
    let offset = unsafe { ffi::PyLong_AsLong(*args.add(1)) };
    if offset < 0 {
        // SAFETY: GIL held; an overflow error (never expected) must not stay set.
        unsafe { ffi::PyErr_Clear() };
        return false;
    }
    entry
        .first_resume
        .is_some_and(|first| offset.unsigned_abs() < u64::from(first))
}

/// A `METH_FASTCALL` callback `$name` that hands its arguments to `$body` with fixed extras.
macro_rules! callback {
    ($name:ident => $body:ident($($extra:expr),*)) => {
        unsafe extern "C" fn $name(
            _slf: *mut PyObject,
            args: *mut *mut PyObject,
            nargs: Py_ssize_t,
        ) -> *mut PyObject {
            // SAFETY: called by CPython with the GIL held and `nargs` valid arguments.
            unsafe { $body(args, nargs, $($extra),*) }
        }
    };
}

callback!(on_return => on_end(kind::RETURN, true));
callback!(on_yield => on_end(kind::YIELD, true));
callback!(on_unwind => on_end(kind::UNWIND, false));
callback!(on_resume => on_continue(true));
callback!(on_throw => on_continue(false));

/// `RAISE(code, offset, exception)`: an exception was raised in a project function.
unsafe extern "C" fn on_raise(
    _slf: *mut PyObject,
    args: *mut *mut PyObject,
    nargs: Py_ssize_t,
) -> *mut PyObject {
    // SAFETY: called by CPython with the GIL held.
    let Some((t, code)) = (unsafe { enter(args, nargs) }) else {
        return none();
    };
    // SAFETY: as above.
    let Some(entry) = (unsafe { entry_of(t, code) }) else {
        return none();
    };
    let th = t.thread();
    let id = t.codes.entries[entry].id;
    let top_recorded = t.threads[th]
        .stack
        .last()
        .is_some_and(|f| f.entry == id && f.recorded);
    if top_recorded {
        let snapshot_from = if t.settings.snapshots == Snapshots::All && nargs >= 3 {
            let out = &mut t.threads[th].batch.snapshots;
            let before = out.len();
            t.busy = true;
            // SAFETY: GIL held; args[2] is the exception.
            unsafe { snapshot_exception(*args.add(2), &t.settings.limits, out) };
            cap_snapshot(out, before, None);
            t.busy = false;
            Some(before)
        } else {
            None
        };
        t.push(th, kind::RAISE, id, 0, snapshot_from);
    }
    none()
}

/// The callbacks and the `sys.monitoring.events` names they serve.
const CALLBACKS: [monitoring::Callback; 7] = [
    (c"fever_py_start", "PY_START", on_start),
    (c"fever_py_resume", "PY_RESUME", on_resume),
    (c"fever_py_throw", "PY_THROW", on_throw),
    (c"fever_py_return", "PY_RETURN", on_return),
    (c"fever_py_yield", "PY_YIELD", on_yield),
    (c"fever_raise", "RAISE", on_raise),
    (c"fever_py_unwind", "PY_UNWIND", on_unwind),
];

/// Registers the callbacks for `tool_id` and enables their events for all code.
pub fn register(py: Python<'_>, tool_id: u8) -> PyResult<()> {
    monitoring::register(py, tool_id, &CALLBACKS)
}

/// Disables fever's events and removes its callbacks (other tools are not touched).
pub fn unregister(py: Python<'_>, tool_id: u8) -> PyResult<()> {
    monitoring::unregister(py, tool_id, &CALLBACKS)
}
