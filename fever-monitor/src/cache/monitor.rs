//! The cache's bookkeeping, the monitoring engine's consumer in [`Slot::Cache`]: a per-thread
//! stack of project calls, each with the set of project code it reached (a bitset over code
//! entries, merged into the caller's when a call ends) and, for the first calls of each code in
//! a run, its arguments captured at the start. A call that turns out slow is then offered to the
//! cache with its key, result and reached code — the first run already fills the cache, before
//! any trampoline exists. Nothing here raises, panics or leaves an exception set.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use pyo3::ffi::{self, PyObject};

use fever_core::cache::reached::{bit_indices, ReachedStack};

use super::{offer_slow_call, state, Captured, SlowCall};
use crate::engine::{self, clock, At, Consumer, Event, Heard, Slot};

/// Calls of each code per run whose arguments are captured at their start.
const CAPTURES_PER_RUN: u32 = 8;

/// A project call in progress.
struct Frame {
    /// Clock ticks at the start (see `engine::clock`).
    start: u64,
    /// Arguments captured at the start (only for the first calls of a code in a run).
    captured: Option<Box<Captured>>,
    /// The call was made by the cache's trampoline (which does its own bookkeeping).
    dispatched: bool,
}

thread_local! {
    /// Set by the trampoline just before it calls the original code of this entry.
    static DISPATCHING: Cell<Option<usize>> = const { Cell::new(None) };
    /// The reached set of the last dispatched call that returned: (entry, reached entries).
    static LAST_DISPATCHED: RefCell<Option<(usize, Vec<usize>)>> = const { RefCell::new(None) };
}

/// How many threads have `DISPATCHING` set: while none has, a call's start skips reading the
/// thread-local (a call into the TLS resolver in a shared library).
static DISPATCHING_THREADS: AtomicU32 = AtomicU32::new(0);

/// The trampoline is about to call (`Some`) the original code of `entry`, or is done (`None`).
pub fn set_dispatching(entry: Option<usize>) {
    let was = DISPATCHING.replace(entry);
    match (was.is_some(), entry.is_some()) {
        (false, true) => DISPATCHING_THREADS.fetch_add(1, Ordering::Relaxed),
        (true, false) => DISPATCHING_THREADS.fetch_sub(1, Ordering::Relaxed),
        _ => 0,
    };
}

/// Is the trampoline calling the original code of `entry` on this thread? (It then no longer
/// is: the call has started.)
#[inline(always)]
#[allow(clippy::inline_always)] // every call of the program asks
fn dispatched(entry: usize) -> bool {
    DISPATCHING_THREADS.load(Ordering::Relaxed) != 0 && dispatched_here(entry)
}

/// [`dispatched`] once a thread is dispatching. Out of line: inlined, the compiler computes the
/// thread-local's address (a call) before testing `DISPATCHING_THREADS`.
#[cold]
#[inline(never)]
fn dispatched_here(entry: usize) -> bool {
    if DISPATCHING.get() != Some(entry) {
        return false;
    }
    set_dispatching(None);
    true
}

/// The reached set of the last dispatched call that returned on this thread, taken.
pub fn take_last_dispatched() -> Option<(usize, Vec<usize>)> {
    LAST_DISPATCHED.take()
}

/// The cache's consumer: one stack of calls per engine thread.
#[derive(Default)]
pub struct Monitor {
    threads: Vec<ReachedStack<Frame>>,
}

impl Monitor {
    /// The stack of the calling thread (created on first use).
    #[inline]
    fn stack(&mut self, at: &At) -> &mut ReachedStack<Frame> {
        at.of_thread(&mut self.threads)
    }
}

/// Arms the cache's bookkeeping on tool `tool_id`.
pub fn arm(py: pyo3::Python<'_>, tool_id: u8, project: &fever_core::Project) -> pyo3::PyResult<()> {
    engine::arm(py, tool_id, project, Slot::Cache, Box::<Monitor>::default())
}

/// Disarms it (its stacks and captured arguments are dropped).
pub fn disarm(py: pyo3::Python<'_>) -> pyo3::PyResult<()> {
    drop(engine::disarm::<Monitor>(py, Slot::Cache)?);
    Ok(())
}

/// `PY_START(code, offset)` and `PY_RESUME`/`PY_THROW` (`resumed`): a call (or a generator
/// step) of project code begins.
#[inline(always)]
#[allow(clippy::inline_always)] // every call of the program runs it
unsafe fn begin(monitor: &mut Monitor, at: &At, resumed: bool) {
    if super::busy() {
        return;
    }
    // SAFETY: GIL held (a callback).
    let Some(cache) = (unsafe { state() }) else {
        return;
    };
    let entry = at.entry as usize;
    let dispatched = dispatched(entry);
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
    monitor.stack(at).push(
        entry,
        Frame {
            start: clock::ticks(),
            captured,
            dispatched,
        },
    );
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
#[inline(always)]
#[allow(clippy::inline_always)] // every call of the program runs it
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
    let elapsed = Duration::from_nanos(fever_core::clock::ticks_to_ns(ticks, ns_per_tick));
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
        Event::CALLS
    }

    unsafe fn adopt(&mut self, code: *mut PyObject) -> Option<u32> {
        // SAFETY: GIL held (a callback).
        let cache = unsafe { state() }?;
        // SAFETY: GIL held, `code` live, no exception set.
        let entry = unsafe { cache.codes.classify(code, &mut cache.index) }?;
        u32::try_from(entry).ok()
    }

    #[inline(always)]
    #[allow(clippy::inline_always)] // each event's handler is this, `event` a constant (engine)
    unsafe fn on(&mut self, event: Event, at: &At) -> Heard {
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
        Heard::Again
    }
}
