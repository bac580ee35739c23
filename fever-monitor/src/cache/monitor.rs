//! The cache's bookkeeping, the monitoring engine's consumer in [`Slot::Cache`]: a per-thread
//! stack of project calls, each with the set of project code it reached (a bitset over code
//! entries, merged into the caller's when a call ends) and, for the first calls of each code in
//! a run, its arguments captured at the start. A call that turns out slow is then offered to the
//! cache with its key, result and reached code — the first run already fills the cache, before
//! any trampoline exists. Nothing here raises, panics or leaves an exception set.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::time::Duration;

use pyo3::ffi::{self, PyObject};

use super::{offer_slow_call, state, Captured, SlowCall};
use crate::engine::{self, clock, At, Consumer, Event, Slot};

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
#[derive(Default)]
pub struct ThreadStack {
    frames: Vec<Frame>,
    /// `reached[d]`: the code entries reached by the call at depth `d` (bit per entry).
    reached: Vec<Vec<u64>>,
}

thread_local! {
    /// Set by the trampoline just before it calls the original code of this entry.
    static DISPATCHING: Cell<Option<usize>> = const { Cell::new(None) };
    /// The reached set of the last dispatched call that returned: (entry, reached entries).
    static LAST_DISPATCHED: RefCell<Option<(usize, Vec<usize>)>> = const { RefCell::new(None) };
}

/// The trampoline is about to call (`Some`) the original code of `entry`, or is done (`None`).
pub fn set_dispatching(entry: Option<usize>) {
    DISPATCHING.set(entry);
}

/// The reached set of the last dispatched call that returned on this thread, taken.
pub fn take_last_dispatched() -> Option<(usize, Vec<usize>)> {
    LAST_DISPATCHED.take()
}

/// The cache's consumer: one [`ThreadStack`] per engine thread.
#[derive(Default)]
pub struct Monitor {
    threads: Vec<ThreadStack>,
}

impl Monitor {
    /// The stack of the calling thread (created on first use).
    #[inline]
    fn stack(&mut self, at: &At) -> &mut ThreadStack {
        if self.threads.len() <= at.thread {
            self.threads
                .resize_with(at.thread + 1, ThreadStack::default);
        }
        &mut self.threads[at.thread]
    }
}

/// Arms the cache's bookkeeping on tool `tool_id`.
pub fn arm(
    py: pyo3::Python<'_>,
    tool_id: u8,
    project: &crate::project::Project,
) -> pyo3::PyResult<()> {
    engine::arm(py, tool_id, project, Slot::Cache, Box::<Monitor>::default())
}

/// Disarms it (its stacks and captured arguments are dropped).
pub fn disarm(py: pyo3::Python<'_>) -> pyo3::PyResult<()> {
    drop(engine::disarm::<Monitor>(py, Slot::Cache)?);
    Ok(())
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
unsafe fn begin(monitor: &mut Monitor, at: &At, resumed: bool) {
    if super::busy() {
        return;
    }
    // SAFETY: GIL held (a callback).
    let Some(cache) = (unsafe { state() }) else {
        return;
    };
    let entry = at.entry as usize;
    let dispatched = DISPATCHING.get() == Some(entry);
    if dispatched {
        DISPATCHING.set(None);
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
    monitor.stack(at).push(entry, captured, dispatched);
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
    engine::set_busy(true);
    // SAFETY: GIL held, values live or NULL.
    let key = unsafe { super::values::key(&names, &values) };
    engine::set_busy(false);
    super::set_busy(false);
    Some(Box::new(Captured {
        values,
        key,
        output: super::output::counters(),
    }))
}

/// `PY_RETURN(code, offset, value)`, `PY_YIELD` and `PY_UNWIND(code, offset, exception)`: a
/// call (or step) of project code ends. Only a real return offers a result to the cache.
unsafe fn end(monitor: &mut Monitor, at: &At, returned: bool) -> Option<SlowCall> {
    if super::busy() {
        return None;
    }
    // SAFETY: GIL held (a callback).
    let cache = unsafe { state() }?;
    let entry = at.entry as usize;
    let (min_ticks, ns_per_tick) = (cache.min_ticks, cache.ns_per_tick);
    let (frame, reached) = monitor.stack(at).pop(entry)?;
    let ticks = clock::ticks().saturating_sub(frame.start);
    if frame.dispatched {
        let reached = returned.then(|| (entry, bit_indices(reached)));
        LAST_DISPATCHED.set(reached);
        return None;
    }
    let value = at.value();
    if !returned || ticks < min_ticks || value.is_null() {
        return None;
    }
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let elapsed = Duration::from_nanos((ticks as f64 * ns_per_tick) as u64);
    let reached = bit_indices(reached);
    Some(SlowCall {
        code: at.code,
        entry,
        elapsed,
        captured: frame.captured,
        reached,
        // SAFETY: a new strong reference to the live return value.
        value: unsafe { ffi::Py_NewRef(value) },
    })
}

// SAFETY: Python code (keying arguments, storing a result) runs with the engine busy; nothing
// raises or leaves an exception set.
unsafe impl Consumer for Monitor {
    fn events(&self) -> u8 {
        Event::Start.bit()
            | Event::Resume.bit()
            | Event::Throw.bit()
            | Event::Return.bit()
            | Event::Yield.bit()
            | Event::Unwind.bit()
    }

    unsafe fn adopt(&mut self, code: *mut PyObject) -> Option<u32> {
        // SAFETY: GIL held (a callback).
        let cache = unsafe { state() }?;
        // SAFETY: GIL held, `code` live, no exception set.
        let entry = unsafe { cache.codes.classify(code, &mut cache.index) }?;
        u32::try_from(entry).ok()
    }

    unsafe fn on(&mut self, event: Event, at: &At) {
        // SAFETY: the engine calls this in a callback, with the GIL held.
        unsafe {
            match event {
                Event::Start => begin(self, at, false),
                Event::Resume | Event::Throw => begin(self, at, true),
                Event::Return => {
                    if let Some(slow) = end(self, at, true) {
                        engine::set_busy(true);
                        offer_slow_call(slow);
                        engine::set_busy(false);
                    }
                }
                Event::Yield | Event::Unwind => drop(end(self, at, false)),
                Event::Raise => {}
            }
        }
    }

    fn as_any(&mut self) -> &mut dyn Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reached_sets_merge_into_callers() {
        let mut stack = ThreadStack::default();
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
