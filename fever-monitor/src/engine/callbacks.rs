//! The engine's sys.monitoring callbacks, as plain C functions with `METH_FASTCALL` (a
//! `#[pyfunction]` adds argument parsing and panic plumbing to every call), and their
//! registration.
//!
//! Each callback: finds the code's engine entry in its `co_extra` slot and the calling thread,
//! then hands the event to each armed consumer subscribed to it (classifying the code for a
//! consumer that meets it for the first time). Library code gets `DISABLE` from the local events
//! (`PY_START`, `PY_RESUME`, `PY_RETURN`, `PY_YIELD`) and `None` from `PY_THROW`, `RAISE` and
//! `PY_UNWIND`, which cannot be disabled. Nothing here raises, panics or leaves an exception set.

use std::ffi::c_char;

use pyo3::ffi::{self, PyObject, Py_ssize_t};
use pyo3::prelude::*;

use super::codes::{self, Own};
use super::{busy, engine, At, Event, Slot, SLOTS};
use crate::monitoring::{disable, none};

const SLOT_OF: [Slot; SLOTS] = [Slot::Tracer, Slot::Cache, Slot::Checkpoints, Slot::Profiler];

/// One event: every subscribed consumer hears of it.
#[inline(always)]
#[allow(clippy::inline_always)] // every callback is this
unsafe fn dispatch(args: *mut *mut PyObject, nargs: Py_ssize_t, event: Event) -> *mut PyObject {
    if busy() || nargs < 2 {
        return none();
    }
    // SAFETY: called by CPython with the GIL held; not busy, so no consumer is borrowed.
    let Some(e) = (unsafe { engine() }) else {
        return none();
    };
    // SAFETY: CPython passes `nargs` valid arguments; `code` is live.
    let code = unsafe { *args };
    // SAFETY: as above; no exception is set in a callback.
    let Some((entry, owners)) = (unsafe { codes::entry_and_owners(code) }) else {
        return match event {
            Event::Start | Event::Resume | Event::Return | Event::Yield => disable(),
            Event::Throw | Event::Raise | Event::Unwind => none(),
        };
    };
    #[cfg(feature = "local-events")]
    if event == Event::Start {
        e.arm_code(entry, code);
    }
    let (thread, ident) = e.thread();
    for (i, slot) in SLOT_OF.into_iter().enumerate() {
        if e.wants[i] & event.bit() == 0 {
            continue;
        }
        let Some(consumer) = e.consumers[i].as_mut() else {
            continue;
        };
        let own = match Own::of(owners[i], entry) {
            Own::Entry(own) => own,
            Own::NotMine => continue,
            Own::Unseen(entry) => {
                // SAFETY: GIL held; the current frame is the code's in these callbacks.
                let adopted = unsafe { consumer.adopt(code) };
                codes::set(entry, slot, adopted);
                let Some(own) = adopted else { continue };
                own
            }
        };
        let at = At {
            thread,
            ident,
            entry: own,
            code,
            args,
            nargs,
        };
        // SAFETY: GIL held; `at` is this callback's.
        unsafe { consumer.on(event, &at) };
    }
    none()
}

/// A `METH_FASTCALL` callback `$name` for `$event`.
macro_rules! callback {
    ($name:ident => $event:expr) => {
        unsafe extern "C" fn $name(
            _slf: *mut PyObject,
            args: *mut *mut PyObject,
            nargs: Py_ssize_t,
        ) -> *mut PyObject {
            // SAFETY: called by CPython with the GIL held and `nargs` valid arguments.
            unsafe { dispatch(args, nargs, $event) }
        }
    };
}

callback!(on_start => Event::Start);
callback!(on_resume => Event::Resume);
callback!(on_throw => Event::Throw);
callback!(on_return => Event::Return);
callback!(on_yield => Event::Yield);
callback!(on_raise => Event::Raise);
callback!(on_unwind => Event::Unwind);

/// The callbacks with their C names, in [`Event`] order.
const CALLBACKS: [(&std::ffi::CStr, ffi::PyCFunctionFast); 7] = [
    (c"fever_py_start", on_start),
    (c"fever_py_resume", on_resume),
    (c"fever_py_throw", on_throw),
    (c"fever_py_return", on_return),
    (c"fever_py_yield", on_yield),
    (c"fever_raise", on_raise),
    (c"fever_py_unwind", on_unwind),
];

/// Registers the callbacks for `tool_id` (no event enabled yet); returns each [`Event`]'s bit.
pub fn register(py: Python<'_>, tool_id: u8) -> PyResult<[u32; 7]> {
    let monitoring = py.import("sys")?.getattr("monitoring")?;
    crate::monitoring::keep_disable(&monitoring)?;
    let events = monitoring.getattr("events")?;
    let mut bits = [0u32; 7];
    for (event, (name, function)) in Event::EVERY.into_iter().zip(CALLBACKS) {
        let def = Box::leak(Box::new(ffi::PyMethodDef {
            ml_name: name.as_ptr().cast::<c_char>(),
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunctionFast: function,
            },
            ml_flags: ffi::METH_FASTCALL,
            ml_doc: std::ptr::null(),
        }));
        // SAFETY: `def` lives for the rest of the process; the GIL is held.
        let callable = unsafe {
            Bound::from_owned_ptr_or_err(
                py,
                ffi::PyCFunction_NewEx(def, std::ptr::null_mut(), std::ptr::null_mut()),
            )?
        };
        let bit: u32 = events.getattr(event.name())?.extract()?;
        monitoring.call_method1("register_callback", (tool_id, bit, callable))?;
        bits[event as usize] = bit;
    }
    Ok(bits)
}
