//! The cache's sys.monitoring callbacks: a per-thread stack of project calls, each with the set
//! of project code it reached (a bitset over code entries, merged into the caller's when a call
//! ends) and, for the first calls of each code in a run, its arguments captured at the start.
//! A call that turns out slow is then offered to the cache with its key, result and reached
//! code — the first run already fills the cache, before any trampoline exists.
//!
//! Library code gets `DISABLE` from `PY_START`, `PY_RESUME`, `PY_RETURN` and `PY_YIELD`.
//! Nothing here raises, panics or leaves an exception set.

use std::time::Duration;

use pyo3::ffi::{self, PyObject, Py_ssize_t};

use super::{offer_slow_call, state, Captured, SlowCall};
use crate::monitoring::{self, disable, none};
use crate::tracer::clock;

/// Calls of each code per run whose arguments are captured at their start.
const CAPTURES_PER_RUN: u32 = 8;

/// A project call in progress.
struct Frame {
    code: usize,
    /// Clock ticks at the start (see `tracer::clock`).
    start: u64,
    /// Arguments captured at the start (only for the first calls of a code in a run).
    captured: Option<Box<Captured>>,
    /// The call was made by the cache's trampoline (which does its own bookkeeping).
    dispatched: bool,
}

/// One thread's calls.
pub struct ThreadStack {
    ident: u64,
    frames: Vec<Frame>,
    /// `reached[d]`: the code entries reached by the call at depth `d` (bit per entry).
    reached: Vec<Vec<u64>>,
    /// Set by the trampoline just before it calls the original code of this entry.
    pub dispatching: Option<usize>,
    /// The reached set of the last dispatched call that returned: (entry, reached entries).
    pub last_dispatched: Option<(usize, Vec<usize>)>,
}

/// The calling thread's stack in `stacks` (created on first use).
#[inline]
pub fn thread_stack(stacks: &mut Vec<ThreadStack>) -> &mut ThreadStack {
    // SAFETY: only reads the calling thread's id.
    #[allow(clippy::useless_conversion)] // `c_ulong` is narrower than u64 on some targets
    let ident: u64 = unsafe { ffi::PyThread_get_thread_ident() }.into();
    // The first stack is the thread that ran most recently (moved there on a switch).
    if stacks.first().is_some_and(|t| t.ident == ident) {
        return &mut stacks[0];
    }
    let index = stacks
        .iter()
        .position(|t| t.ident == ident)
        .unwrap_or_else(|| {
            stacks.push(ThreadStack {
                ident,
                frames: Vec::new(),
                reached: Vec::new(),
                dispatching: None,
                last_dispatched: None,
            });
            stacks.len() - 1
        });
    stacks.swap(0, index);
    &mut stacks[0]
}

impl ThreadStack {
    fn push(&mut self, code: usize, captured: Option<Box<Captured>>, dispatched: bool) {
        let depth = self.frames.len();
        if self.reached.len() <= depth {
            self.reached.push(Vec::new());
        }
        self.reached[depth].fill(0);
        self.frames.push(Frame {
            code,
            start: clock::ticks(),
            captured,
            dispatched,
        });
    }

    /// Ends the innermost call of `code` (and any calls above it that never reported their
    /// end); returns it with the code entries it reached, itself included (as bits).
    fn pop(&mut self, code: usize) -> Option<(Frame, &[u64])> {
        let at = self.frames.iter().rposition(|f| f.code == code)?;
        while self.frames.len() > at + 1 {
            let depth = self.frames.len() - 1;
            if let Some(lost) = self.frames.pop() {
                set_bit(&mut self.reached[depth], lost.code);
            }
            self.merge_into_parent(depth);
        }
        let frame = self.frames.pop()?;
        let depth = self.frames.len();
        set_bit(&mut self.reached[depth], code);
        self.merge_into_parent(depth);
        Some((frame, &self.reached[depth]))
    }

    fn merge_into_parent(&mut self, depth: usize) {
        if depth == 0 {
            return;
        }
        let (parents, children) = self.reached.split_at_mut(depth);
        let (parent, child) = (&mut parents[depth - 1], &children[0]);
        if parent.len() < child.len() {
            parent.resize(child.len(), 0);
        }
        for (p, c) in parent.iter_mut().zip(child) {
            *p |= c;
        }
    }
}

fn set_bit(bits: &mut Vec<u64>, i: usize) {
    let word = i / 64;
    if bits.len() <= word {
        bits.resize(word + 1, 0);
    }
    bits[word] |= 1 << (i % 64);
}

/// The indices of the set bits.
pub fn bit_indices(bits: &[u64]) -> Vec<usize> {
    let mut out = Vec::new();
    for (w, &word) in bits.iter().enumerate() {
        let mut rest = word;
        while rest != 0 {
            let bit = rest.trailing_zeros() as usize;
            out.push(w * 64 + bit);
            rest &= rest - 1;
        }
    }
    out
}

/// `PY_START(code, offset)` and `PY_RESUME`/`PY_THROW` (`resumed`): a call (or a generator
/// step) of project code begins.
unsafe fn begin(args: *mut *mut PyObject, nargs: Py_ssize_t, resumed: bool) -> *mut PyObject {
    if nargs < 1 || super::busy() {
        return none();
    }
    // SAFETY: CPython passes `nargs` valid arguments, with the GIL held.
    let code = unsafe { *args };
    let Some(cache) = (unsafe { state() }) else {
        return none();
    };
    // SAFETY: GIL held, `code` live, no exception set in a callback.
    let Some(entry) = (unsafe { cache.codes.entry(code, &mut cache.index) }) else {
        return disable();
    };
    let stack = thread_stack(&mut cache.threads);
    let dispatched = stack.dispatching == Some(entry);
    if dispatched {
        stack.dispatching = None;
    }
    let info = &mut cache.codes.infos[entry];
    let capture =
        !resumed && !dispatched && info.never.is_none() && info.captured < CAPTURES_PER_RUN;
    let captured = if capture {
        info.captured += 1;
        // SAFETY: GIL held; the current frame is this call's.
        unsafe { capture_arguments(&info.arg_objects, &info.arg_names) }
    } else {
        None
    };
    stack.push(entry, captured, dispatched);
    none()
}

/// Reads and keys the current frame's arguments. Safety: GIL held, inside `PY_START`.
unsafe fn capture_arguments(names: &[*mut PyObject], strs: &[String]) -> Option<Box<Captured>> {
    // SAFETY: guaranteed by the caller.
    let frame = unsafe { ffi::PyEval_GetFrame() };
    if frame.is_null() {
        return None;
    }
    let values: Vec<*mut PyObject> = names
        .iter()
        .map(|&name| {
            // SAFETY: GIL held; `name` a live str; a new reference or NULL with an error set.
            let v = unsafe { ffi::PyFrame_GetVar(frame, name) };
            if v.is_null() {
                // SAFETY: GIL held.
                unsafe { ffi::PyErr_Clear() };
            }
            v
        })
        .collect();
    let names: Vec<&str> = strs.iter().map(String::as_str).collect();
    super::set_busy(true);
    // SAFETY: GIL held, values live or NULL.
    let key = unsafe { super::values::key(&names, &values) };
    super::set_busy(false);
    Some(Box::new(Captured {
        values,
        key,
        output: super::output::counters(),
    }))
}

/// `PY_RETURN(code, offset, value)`, `PY_YIELD` and `PY_UNWIND(code, offset, exception)`: a
/// call (or step) of project code ends. Only a real return offers a result to the cache.
unsafe fn end(args: *mut *mut PyObject, nargs: Py_ssize_t, returned: bool) -> Option<SlowCall> {
    if nargs < 1 || super::busy() {
        return None;
    }
    // SAFETY: CPython passes `nargs` valid arguments, with the GIL held.
    let code = unsafe { *args };
    // SAFETY: GIL held.
    let cache = unsafe { state() }?;
    // SAFETY: GIL held, `code` live.
    let super::codes::Lookup::Project(entry) = (unsafe { cache.codes.lookup(code) }) else {
        return None;
    };
    let (min_ticks, ns_per_tick) = (cache.min_ticks, cache.ns_per_tick);
    let stack = thread_stack(&mut cache.threads);
    let (frame, reached) = stack.pop(entry)?;
    let ticks = clock::ticks().saturating_sub(frame.start);
    if frame.dispatched {
        let reached = returned.then(|| (entry, bit_indices(reached)));
        stack.last_dispatched = reached;
        return None;
    }
    if !returned || ticks < min_ticks || nargs < 3 {
        return None;
    }
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let elapsed = Duration::from_nanos((ticks as f64 * ns_per_tick) as u64);
    let reached = bit_indices(reached);
    // SAFETY: CPython passes the returned value as the third argument.
    let value = unsafe { *args.add(2) };
    Some(SlowCall {
        code,
        entry,
        elapsed,
        captured: frame.captured,
        reached,
        // SAFETY: a new strong reference to the live return value.
        value: unsafe { ffi::Py_NewRef(value) },
    })
}

unsafe extern "C" fn on_start(
    _slf: *mut PyObject,
    args: *mut *mut PyObject,
    nargs: Py_ssize_t,
) -> *mut PyObject {
    // SAFETY: called by CPython with the GIL held.
    unsafe { begin(args, nargs, false) }
}

unsafe extern "C" fn on_resume(
    _slf: *mut PyObject,
    args: *mut *mut PyObject,
    nargs: Py_ssize_t,
) -> *mut PyObject {
    // SAFETY: called by CPython with the GIL held.
    unsafe { begin(args, nargs, true) }
}

unsafe extern "C" fn on_throw(
    _slf: *mut PyObject,
    args: *mut *mut PyObject,
    nargs: Py_ssize_t,
) -> *mut PyObject {
    // PY_THROW cannot be disabled: only `None` may be returned.
    // SAFETY: called by CPython with the GIL held.
    let result = unsafe { begin(args, nargs, true) };
    // SAFETY: `result` is a new reference we own.
    unsafe { ffi::Py_DECREF(result) };
    none()
}

unsafe extern "C" fn on_return(
    _slf: *mut PyObject,
    args: *mut *mut PyObject,
    nargs: Py_ssize_t,
) -> *mut PyObject {
    // SAFETY: called by CPython with the GIL held.
    if let Some(slow) = unsafe { end(args, nargs, true) } {
        offer_slow_call(slow);
    }
    none()
}

unsafe extern "C" fn on_yield(
    _slf: *mut PyObject,
    args: *mut *mut PyObject,
    nargs: Py_ssize_t,
) -> *mut PyObject {
    // SAFETY: called by CPython with the GIL held.
    let _ = unsafe { end(args, nargs, false) };
    none()
}

unsafe extern "C" fn on_unwind(
    _slf: *mut PyObject,
    args: *mut *mut PyObject,
    nargs: Py_ssize_t,
) -> *mut PyObject {
    // SAFETY: called by CPython with the GIL held.
    let _ = unsafe { end(args, nargs, false) };
    none()
}

/// The callbacks and the `sys.monitoring.events` names they serve.
pub const CALLBACKS: [monitoring::Callback; 6] = [
    (c"fever_cache_py_start", "PY_START", on_start),
    (c"fever_cache_py_resume", "PY_RESUME", on_resume),
    (c"fever_cache_py_throw", "PY_THROW", on_throw),
    (c"fever_cache_py_return", "PY_RETURN", on_return),
    (c"fever_cache_py_yield", "PY_YIELD", on_yield),
    (c"fever_cache_py_unwind", "PY_UNWIND", on_unwind),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reached_sets_merge_into_callers() {
        let mut stack = ThreadStack {
            ident: 0,
            frames: Vec::new(),
            reached: Vec::new(),
            dispatching: None,
            last_dispatched: None,
        };
        stack.push(0, None, false);
        stack.push(70, None, false);
        stack.push(3, None, false);
        let (_, reached) = stack.pop(3).unwrap();
        assert_eq!(bit_indices(reached), [3]);
        let (_, reached) = stack.pop(70).unwrap();
        assert_eq!(bit_indices(reached), [3, 70]);
        stack.push(5, None, false);
        // A call whose end was never reported is closed with the one below it.
        stack.push(9, None, false);
        let (_, reached) = stack.pop(5).unwrap();
        assert_eq!(bit_indices(reached), [5, 9]);
        let (_, reached) = stack.pop(0).unwrap();
        assert_eq!(bit_indices(reached), [0, 3, 5, 9, 70]);
        assert!(stack.pop(0).is_none());
        // A reused depth starts empty.
        stack.push(1, None, false);
        assert_eq!(bit_indices(stack.pop(1).unwrap().1), [1]);
    }
}
