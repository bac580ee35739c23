//! Snapshots of live Python objects (call arguments, return and yielded values, exceptions)
//! in fever-core's value model ([`fever_core::snapshot`]), written straight into the tracer's
//! buffers from inside `sys.monitoring` callbacks.
//!
//! # API (all with the GIL held; objects are borrowed)
//! - [`snapshot_args`]`(names, values, limits, out) -> Snapped`: a call's arguments, in order;
//!   NULL values (unbound locals) are skipped.
//! - [`args_summary`]`(names, values, limits) -> Snapped`: what `snapshot_args` would return,
//!   with nothing written (re-hashing arguments after a call).
//! - [`snapshot_value`]`(obj, limits, out) -> Snapped`: one value.
//! - [`snapshot_exception`]`(exc, limits, out) -> Snapped`: an exception (type, args, message).
//!
//! Each appends one whole snapshot to `out` and returns [`Snapped`]: the structural hash,
//! whether the value holds anything mutable (worth re-hashing after the call: [`args_summary`]
//! of the same arguments, and compare hashes), and whether it is faithful (can
//! rebuild the value; only then does the hash cover all of it).
//!
//! # Rules
//! - Never raise, never leave an error set: a pending exception is saved on entry and
//!   restored on exit, and every failed C-API call is cleared where it happens. A panic is
//!   caught and recorded as `<snapshot failed>`.
//! - Never run user Python code where avoidable: built-in values are read through the
//!   concrete C API (exact type checks first, so subclass overrides never run); instances of
//!   Python classes by their `__dict__` and `__slots__` (no `__repr__`, `__eq__`, `__iter__`,
//!   properties or `__getattr__`); `repr()` only for types whose `tp_repr` is C code, and a
//!   repr that raises is recorded as `<unrepresentable T>`. (A C repr may still call the
//!   reprs of objects it contains, as `deque`'s does.)
//! - Bounded: [`SnapshotLimits`] caps depth, items per container, values walked in all (the
//!   node budget), str bytes, and the size of buffers copied (bigger ones are content-hashed);
//!   cycles are recorded as such.
//!
//! # Contents
//! - `scalar.rs`: the fast path for `None`, bools, small ints, floats, ASCII strs, and
//!   arguments made of them: the same bytes and summary as the walk, without its setup.
//! - `walker.rs`: the walk itself, built-in values, containers, depth and cycles, C reprs.
//! - `objects.rs`: references, enum members, exceptions, instances of classes.
//! - `buffer.rs`: numpy arrays and memoryviews through the buffer protocol.
//! - `pytype.rs`: facts about types read without running Python code.
//! - `typefacts.rs`: what the walker decides about a C type, cached per type and version.
//! - `classfacts.rs`: what the walker needs to record a Python class's instances, cached the
//!   same way.

mod buffer;
mod classfacts;
mod objects;
mod pytype;
mod scalar;
#[cfg(test)]
mod tests;
mod typefacts;
mod walker;

use std::panic::{catch_unwind, AssertUnwindSafe};

pub use fever_core::settings::SnapshotLimits;
pub use fever_core::snapshot::Snapped;
use fever_core::snapshot::{Encoder, HashOnly, Sink};
use pyo3::ffi::{self, PyObject};

use walker::Walker;

/// Deepest [`SnapshotLimits::max_depth`] honoured (the decoder accepts 64 levels).
const MAX_DEPTH: usize = 32;

/// Appends the snapshot of a call's arguments, `names[i] = values[i]` in order (NULL values are
/// skipped), to `out`.
///
/// # Safety
/// The GIL is held; every non-NULL value is a live object.
pub unsafe fn snapshot_args<N: AsRef<str>>(
    names: &[N],
    values: &[*mut PyObject],
    limits: &SnapshotLimits,
    out: &mut Vec<u8>,
) -> Snapped {
    // SAFETY: GIL held, live values (caller).
    unsafe { args_into(names, values, limits, out) }
}

/// What [`snapshot_args`] would return, with no snapshot written: the same walk, its output
/// dropped as it goes (the end-of-call check of arguments that may have changed).
///
/// # Safety
/// The GIL is held; every non-NULL value is a live object.
pub unsafe fn args_summary<N: AsRef<str>>(
    names: &[N],
    values: &[*mut PyObject],
    limits: &SnapshotLimits,
) -> Snapped {
    // SAFETY: GIL held, live values (caller).
    unsafe { args_into(names, values, limits, &mut HashOnly) }
}

/// [`snapshot_args`] into any sink.
unsafe fn args_into<N: AsRef<str>, S: Sink>(
    names: &[N],
    values: &[*mut PyObject],
    limits: &SnapshotLimits,
    out: &mut S,
) -> Snapped {
    // SAFETY: GIL held, live values (caller).
    unsafe {
        if let Some(snapped) = scalar::args(names, values, limits, out) {
            return snapped;
        }
        guarded(out, limits, |w| {
            w.enc.begin_args();
            for (name, &value) in names.iter().zip(values) {
                if !value.is_null() {
                    w.enc.field(name.as_ref());
                    w.value(value);
                }
            }
            w.enc.end(0);
        })
    }
}

/// Appends the snapshot of one value (return value, yielded value) to `out`.
///
/// # Safety
/// The GIL is held; `obj` is a live object (NULL is recorded as an opaque `NULL`).
pub unsafe fn snapshot_value(
    obj: *mut PyObject,
    limits: &SnapshotLimits,
    out: &mut Vec<u8>,
) -> Snapped {
    // SAFETY: GIL held, live object (caller).
    unsafe {
        if let Some(snapped) = scalar::value(obj, limits, out) {
            return snapped;
        }
        guarded(out, limits, |w| w.value(obj))
    }
}

/// Appends the snapshot of an exception (type, args, message) to `out`; anything that is not
/// an exception instance is recorded as a value.
///
/// # Safety
/// The GIL is held; `exc` is a live object.
pub unsafe fn snapshot_exception(
    exc: *mut PyObject,
    limits: &SnapshotLimits,
    out: &mut Vec<u8>,
) -> Snapped {
    // SAFETY: GIL held, live object (caller).
    unsafe { guarded(out, limits, |w| w.value(exc)) }
}

/// Runs `write` on a fresh walker over `out`, with any pending exception set aside and restored
/// after, no error left behind, and a panic recorded as `<snapshot failed>`.
unsafe fn guarded<S: Sink>(
    out: &mut S,
    limits: &SnapshotLimits,
    write: impl FnOnce(&mut Walker<'_, '_, S>),
) -> Snapped {
    // SAFETY: GIL held (caller).
    let pending = unsafe { ffi::PyErr_GetRaisedException() };
    let start = out.written();
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: GIL held (caller).
        let mut walker = unsafe { Walker::new(out, limits) };
        write(&mut walker);
        walker.enc.finish()
    }));
    // SAFETY: GIL held; `pending` is ours to give back.
    unsafe {
        if !ffi::PyErr_Occurred().is_null() {
            ffi::PyErr_Clear();
        }
        if !pending.is_null() {
            ffi::PyErr_SetRaisedException(pending);
        }
    }
    result.unwrap_or_else(|_| {
        out.rewind(start);
        let mut enc = Encoder::new(out);
        enc.opaque("<snapshot failed>");
        enc.finish()
    })
}
