//! References a consumer let go of inside a callback, released once its callback's consumers
//! are done with the event ([`park`], [`release_after`]).
//!
//! Dropping the last reference to an object runs its `__del__`: project code, which may block
//! (sleep, wait for a lock). Run inside a busy section ([`super::set_busy`]), it would stall
//! every other thread's events, and past `BUSY_WAIT` lose them; so a consumer parks the
//! references instead, and the callback drops them after the consumers' handlers returned:
//! nothing is borrowed, nothing is busy, other threads' events go on as usual. (`CPython` fires
//! no events on a thread inside a callback, so the `__del__`'s own calls pass unrecorded, as
//! before.) Each pass takes the whole list, so a reference is released once; a release begun
//! from inside another on the same thread (a `__del__` that stops the recording) leaves what is
//! parked to the pass running.

use std::cell::{Cell, UnsafeCell};

use pyo3::ffi::{self, PyObject};
use pyo3::Python;

use super::{hot, Event, GilCell};

/// The parked references (owned; NULLs allowed); `Hot::parked` says when it is not empty.
static PARKED: GilCell<Vec<*mut PyObject>> = GilCell(UnsafeCell::new(Vec::new()));

thread_local! {
    /// This thread is releasing parked references (a release from a `__del__` leaves them to it).
    static RELEASING: Cell<bool> = const { Cell::new(false) };
}

/// Hands the owned references `values` over, to be released at the end of the running
/// callback (or by [`release`]). Call with the GIL held, from a handler of `PY_RETURN`,
/// `PY_YIELD` or `PY_UNWIND` (the callbacks of the other events do not look), or outside any
/// callback before [`release`].
pub fn park(values: Vec<*mut PyObject>) {
    // SAFETY: GIL held; no reference to the list is kept across Python code.
    let parked = unsafe { &mut *PARKED.0.get() };
    if parked.is_empty() {
        // Usually one call's worth: take its vector rather than copy it.
        *parked = values;
    } else {
        parked.extend(values);
    }
    hot().parked.set(!parked.is_empty());
}

/// At the end of a callback for `event` (every consumer done with it): releases what was
/// parked meanwhile. Consumers park only at the end of a call (a constant `event` folds the
/// test away for the others).
#[inline(always)]
#[allow(clippy::inline_always)] // at the end of every callback
pub(super) fn release_after(event: Event) {
    if matches!(event, Event::Return | Event::Yield | Event::Unwind) && hot().parked.get() {
        release_parked();
    }
}

/// Releases every parked reference (outside any callback: when a consumer is disarmed).
pub fn release(_py: Python<'_>) {
    if hot().parked.get() {
        release_parked();
    }
}

/// Releases the parked references, pass after pass, unless this thread is at it already (the
/// pass running takes what was parked meanwhile). Call with the GIL held and no consumer
/// borrowed.
#[cold]
#[inline(never)]
fn release_parked() {
    if RELEASING.replace(true) {
        return;
    }
    loop {
        // SAFETY: GIL held; the list is taken before any Python code runs.
        let batch = std::mem::take(unsafe { &mut *PARKED.0.get() });
        hot().parked.set(false);
        if batch.is_empty() {
            break;
        }
        for v in batch {
            // SAFETY: an owned reference (or NULL), taken out of the list: released once.
            unsafe { ffi::Py_XDECREF(v) };
        }
    }
    RELEASING.set(false);
}
