//! What the tracer does at each of the engine's events (it is the engine's consumer in
//! [`Slot::Tracer`](crate::engine::Slot)): a call's start, its end, a generator's step, an
//! exception; each appends one event to the thread's run, with a snapshot when asked.
//! Nothing here raises, panics or leaves an exception set.

// Every call of the program runs these twice: the hot helpers are forced inline.
#![allow(clippy::inline_always)]

use fever_core::settings::Snapshots;
use fever_core::trace::{EventKind, MUTATED_ARGS};
use pyo3::ffi::{self, PyObject};

use fever_core::snapshot::Encoder;

use super::codes::CodeEntry;
use super::{release, Frame, Th, Tracer, Watched};
use crate::code_object::current_globals;
use crate::engine::{self, clock, At, Consumer, Event, Heard};
use crate::snapshot::{args_summary, snapshot_args, snapshot_exception, snapshot_value};

/// Largest snapshot kept as is (see [`cap_snapshot`]).
const MAX_SNAPSHOT_BYTES: usize = 4 << 20;

// SAFETY: every method runs Python code (snapshots) only with the engine busy, parks the
// arguments it lets go of (`release`), and none raises or leaves an exception set.
unsafe impl Consumer for Tracer {
    fn events(&self) -> u8 {
        Event::ALL
    }

    unsafe fn adopt(&mut self, code: *mut PyObject) -> Option<u32> {
        // SAFETY: the engine calls this in a callback: the current frame is the code's.
        let globals = unsafe { current_globals() };
        // SAFETY: GIL held, `code` live, no exception set.
        let classified = unsafe { self.codes.classify(code, globals) };
        // SAFETY: PyFrame_GetGlobals returned a new reference (or NULL).
        unsafe { ffi::Py_XDECREF(globals) };
        let (index, info) = classified;
        self.announce(info);
        u32::try_from(index).ok()
    }

    #[inline(always)]
    #[allow(clippy::inline_always)] // each event's handler is this, `event` a constant (engine)
    unsafe fn on(&mut self, event: Event, at: &At) -> Heard {
        let entry = at.entry as usize;
        // SAFETY: the engine calls this in a callback, with the GIL held.
        unsafe {
            match event {
                Event::Start => begin_call(self, entry, at),
                Event::Resume => return on_continue(self, entry, at, false),
                Event::Throw => return on_continue(self, entry, at, true),
                Event::Return => return on_end(self, entry, at, EventKind::Return),
                Event::Yield => return on_end(self, entry, at, EventKind::Yield),
                Event::Unwind => return on_end(self, entry, at, EventKind::Unwind),
                Event::Raise => on_raise(self, entry, at),
            }
        }
        Heard::Again
    }
}

/// A new call of project code `entry` on the calling thread: counted, recorded under the cap
/// (with its arguments' snapshot), pushed on the thread's stack (unless its code is
/// [muted](super::codes::CodeEntry::muted)).
#[inline(always)]
unsafe fn begin_call(t: &mut Tracer, entry: usize, at: &At) {
    let early = early_ticks(t);
    let th = t.thread(at);
    let max = t.settings.max_calls;
    let e = &mut t.codes.entries[entry];
    e.calls += 1;
    let suspends = e.suspends;
    let recorded = if suspends {
        let Some(recorded) = generator_start(e, max) else {
            return;
        };
        recorded
    } else {
        fever_core::settings::records_call(e.calls, max)
    };
    let id = e.id;
    let mut watched = None;
    if recorded {
        e.recorded += 1;
        let snapshot = t.settings.snapshots != Snapshots::None;
        if snapshot {
            engine::set_busy(true);
            // SAFETY: GIL held (caller); the current frame is this call's.
            watched = unsafe { snapshot_call(t, th, entry) };
            engine::set_busy(false);
        }
        t.push(th, EventKind::Call, id, 0, snapshot, early);
    }
    t.state(th).stack.push(Frame {
        entry: at.entry,
        id,
        recorded,
        suspends,
        watched,
    });
}

/// [`begin_call`] of a generator's or coroutine's code: whether the call is recorded, `None`
/// when the code is muted (the call is only counted, no frame pushed).
#[cold]
fn generator_start(e: &mut CodeEntry, max: u64) -> Option<bool> {
    if e.muted(max) {
        return None;
    }
    e.live += 1;
    // A generator's calls past the cap are not sampled: their steps are not recorded either.
    Some(max == 0 || e.calls <= max)
}

/// Now, when every event is recorded and no snapshot can come before its record (`--snapshots
/// none --max-calls-per-function 0`): read first, so the clock's latency overlaps the event's
/// other work. `None` otherwise: the record reads the clock itself, after the snapshots (their
/// time belongs to the caller's side), and an event past the cap reads no clock at all.
#[inline(always)]
fn early_ticks(t: &Tracer) -> Option<u64> {
    t.early.then(clock::ticks)
}

/// Snapshots the current frame's arguments into thread `th`'s snapshot buffer; returns what to
/// re-hash at the end of the call when an argument is mutable (and the code is not test code:
/// [`CodeEntry::test`]). The values are gathered in the tracer's reused [`Tracer::args`]; the
/// frame is not asked for when the code takes no arguments (asking makes the interpreter create
/// its frame object).
unsafe fn snapshot_call(t: &mut Tracer, th: Th, entry: usize) -> Option<Box<Watched>> {
    let e = &t.codes.entries[entry];
    let frame = if e.arg_objects.is_empty() {
        std::ptr::null_mut()
    } else {
        // SAFETY: GIL held (caller).
        unsafe { ffi::PyEval_GetFrame() }
    };
    let mut values = std::mem::take(&mut t.args);
    values.clear();
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
    let out = &mut t.threads[th.0].snapshot;
    let before = out.len();
    // SAFETY: GIL held; `values` are live or NULL.
    let snapped = unsafe { snapshot_args(&e.arg_names, &values, &t.settings.limits, out) };
    cap_snapshot(out, before, Some(e.arg_names.len()));
    if snapped.mutable && !e.test {
        // The call keeps the buffer; the next snapshot makes another.
        Some(Box::new(Watched {
            values,
            hash: snapped.hash,
        }))
    } else {
        for v in values.drain(..) {
            if !v.is_null() {
                // SAFETY: new references from PyFrame_GetVar.
                unsafe { ffi::Py_DECREF(v) };
            }
        }
        t.args = values;
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

/// Pops thread `th`'s frames down to the one of code `entry`; `None` when the call started
/// before tracing (no frame for it). The usual case, the call's frame on top, gives its frame
/// without an `Option` to test again.
#[inline(always)]
fn pop_to(t: &mut Tracer, th: Th, entry: usize) -> Result<Frame, Option<Frame>> {
    // SAFETY: `th` is in range (made by `Tracer::thread`, which makes room; never removed).
    let stack = &mut unsafe { t.threads.get_unchecked_mut(th.0) }.stack;
    if stack.last().is_some_and(|f| f.entry as usize == entry) {
        // SAFETY: the stack has a last frame.
        let frame = unsafe { stack.pop().unwrap_unchecked() };
        if frame.suspends {
            t.codes.entries[entry].live -= 1;
        }
        return Ok(frame);
    }
    Err(pop_abandoned(stack, &mut t.codes.entries, entry))
}

/// [`pop_to`] when frames above the call's were abandoned (calls that ended without an event).
#[cold]
fn pop_abandoned(stack: &mut Vec<Frame>, entries: &mut [CodeEntry], entry: usize) -> Option<Frame> {
    let at = stack.iter().rposition(|f| f.entry as usize == entry)?;
    let abandoned: Vec<Frame> = stack.drain(at + 1..).collect();
    let frame = stack.pop();
    for f in abandoned.iter().chain(&frame) {
        if f.suspends {
            entries[f.entry as usize].live -= 1;
        }
    }
    for f in abandoned {
        release(f.watched);
    }
    frame
}

/// Flags for the end of a recorded call: did a watched argument change?
#[inline(always)]
fn end_flags(t: &mut Tracer, entry: usize, watched: Option<&Watched>) -> u32 {
    match watched {
        None => 0,
        Some(w) => watched_flags(t, entry, w),
    }
}

/// [`end_flags`] of a call whose arguments are watched.
#[cold]
fn watched_flags(t: &mut Tracer, entry: usize, w: &Watched) -> u32 {
    let names = &t.codes.entries[entry].arg_names;
    engine::set_busy(true);
    // SAFETY: GIL held (callers are callbacks); the values are owned references.
    let hash = unsafe { args_summary(names, &w.values, &t.settings.limits) }.hash;
    engine::set_busy(false);
    if hash == w.hash {
        0
    } else {
        MUTATED_ARGS
    }
}

/// `PY_RETURN` / `PY_YIELD` / `PY_UNWIND`: the call (or the span of a generator) ends.
#[inline(always)]
unsafe fn on_end(t: &mut Tracer, entry: usize, at: &At, event: EventKind) -> Heard {
    let early = early_ticks(t);
    let th = t.thread(at);
    let (Ok(frame) | Err(Some(frame))) = pop_to(t, th, entry) else {
        // A muted code has no frame on any stack: only here is it asked about.
        return if t.codes.entries[entry].muted(t.settings.max_calls) {
            Heard::Enough
        } else {
            Heard::Again
        };
    };
    let id = frame.id;
    if frame.recorded {
        let flags = if event == EventKind::Yield {
            0
        } else {
            end_flags(t, entry, frame.watched.as_deref())
        };
        let value = if t.snap_values && event != EventKind::Unwind {
            at.value()
        } else {
            std::ptr::null_mut()
        };
        let snapshot = !value.is_null();
        if snapshot {
            let out = &mut t.threads[th.0].snapshot;
            let before = out.len();
            engine::set_busy(true);
            // SAFETY: GIL held; `value` is the returned or yielded value.
            unsafe { snapshot_value(value, &t.settings.limits, out) };
            cap_snapshot(out, before, None);
            engine::set_busy(false);
        }
        t.push(th, event, id, flags, snapshot, early);
    }
    release(frame.watched);
    Heard::Again
}

/// `PY_RESUME` / `PY_THROW`: a generator or coroutine continues (`PY_THROW`: by `throw()`, as
/// asyncio does to deliver a cancellation or a failed future; the exception then shows as a
/// `RAISE` in the resumed span).
#[inline(always)]
unsafe fn on_continue(t: &mut Tracer, entry: usize, at: &At, thrown: bool) -> Heard {
    if thrown && throws_before_start(&t.codes.entries[entry], at) {
        // `throw()` into a coroutine that never ran (asyncio cancelling a task before its first
        // step): CPython starts the frame without a PY_START, so this is the call's start.
        // SAFETY: GIL held; the current frame is the coroutine's.
        unsafe { begin_call(t, entry, at) };
        return Heard::Again;
    }
    let early = early_ticks(t);
    let max = t.settings.max_calls;
    let e = &mut t.codes.entries[entry];
    if e.muted(max) {
        return Heard::Enough;
    }
    let recorded = max == 0 || e.calls <= max;
    let suspends = e.suspends;
    e.live += u32::from(suspends);
    let id = e.id;
    let th = t.thread(at);
    if recorded {
        t.push(th, EventKind::Resume, id, 0, false, early);
    }
    t.state(th).stack.push(Frame {
        entry: at.entry,
        id,
        recorded,
        suspends,
        watched: None,
    });
    Heard::Again
}

/// Is this `PY_THROW` (arguments `code, offset, exception`) aimed at a frame that has not
/// reached its first `RESUME` yet, i.e. never started?
fn throws_before_start(entry: &CodeEntry, at: &At) -> bool {
    let offset = at.offset();
    offset >= 0
        && entry
            .first_resume
            .is_some_and(|first| offset.unsigned_abs() < u64::from(first))
}

/// `RAISE(code, offset, exception)`: an exception was raised in a project function.
#[inline(always)]
unsafe fn on_raise(t: &mut Tracer, entry: usize, at: &At) {
    let th = t.thread(at);
    let id = t.codes.entries[entry].id;
    let top_recorded = t
        .state(th)
        .stack
        .last()
        .is_some_and(|f| f.entry as usize == entry && f.recorded);
    if top_recorded {
        let value = at.value();
        let snapshot = t.snap_values && !value.is_null();
        if snapshot {
            let out = &mut t.threads[th.0].snapshot;
            let before = out.len();
            engine::set_busy(true);
            // SAFETY: GIL held; `value` is the exception.
            unsafe { snapshot_exception(value, &t.settings.limits, out) };
            cap_snapshot(out, before, None);
            engine::set_busy(false);
        }
        t.push(th, EventKind::Raise, id, 0, snapshot, None);
    }
}
