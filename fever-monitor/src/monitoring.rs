//! fever's sys.monitoring tool id: claimed at start (3, then 4), dormant (no events enabled),
//! released at exit. Ids held by other tools (debuggers, coverage, profilers) are never touched.
//! Also the registration of C-level callbacks (`METH_FASTCALL` functions, no pyo3 trampoline)
//! shared by the tracer and the call cache, and `DISABLE`.

use std::ffi::{c_char, CStr};
use std::sync::atomic::{AtomicPtr, Ordering};

use pyo3::ffi::{self, PyObject};
use pyo3::prelude::*;

use crate::compat::TOOL_IDS;

const TOOL_NAME: &str = "fever";

/// Claims the first free id of [`TOOL_IDS`]; `None` when all are taken.
pub fn claim(py: Python<'_>) -> PyResult<Option<u8>> {
    let monitoring = py.import("sys")?.getattr("monitoring")?;
    for id in TOOL_IDS {
        if monitoring.call_method1("get_tool", (id,))?.is_none() {
            monitoring.call_method1("use_tool_id", (id, TOOL_NAME))?;
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// Frees `id` (with its events and callbacks) if fever still holds it.
pub fn release(py: Python<'_>, id: u8) -> PyResult<()> {
    let monitoring = py.import("sys")?.getattr("monitoring")?;
    let holder = monitoring.call_method1("get_tool", (id,))?;
    if !holder.is_none() && holder.extract::<String>()? == TOOL_NAME {
        crate::compat::monitoring::free_tool(&monitoring, id)?;
    }
    Ok(())
}

/// A callback: its C name, the `sys.monitoring.events` name it serves, the function.
pub type Callback = (&'static CStr, &'static str, ffi::PyCFunctionFast);

/// `sys.monitoring.DISABLE`, an owned reference kept for the life of the process.
static DISABLE: AtomicPtr<PyObject> = AtomicPtr::new(std::ptr::null_mut());

/// A new reference to `None`.
#[inline(always)]
#[allow(clippy::inline_always)] // every callback returns through it
pub fn none() -> *mut PyObject {
    // SAFETY: `Py_None` is immortal; taking a new reference is always valid with the GIL held.
    unsafe { ffi::Py_NewRef(ffi::Py_None()) }
}

/// A new reference to `sys.monitoring.DISABLE` (`None` before [`register`] ran).
#[inline(always)]
#[allow(clippy::inline_always)] // every callback for library code returns through it
pub fn disable() -> *mut PyObject {
    let d = DISABLE.load(Ordering::Relaxed);
    if d.is_null() {
        none()
    } else {
        // SAFETY: owned for the life of the process; the GIL is held in callbacks.
        unsafe { ffi::Py_NewRef(d) }
    }
}

/// Registers `callbacks` for `tool_id` and enables their events for all code.
pub fn register(py: Python<'_>, tool_id: u8, callbacks: &[Callback]) -> PyResult<()> {
    let monitoring = py.import("sys")?.getattr("monitoring")?;
    let disable = monitoring.getattr("DISABLE")?;
    if DISABLE.load(Ordering::Relaxed).is_null() {
        DISABLE.store(disable.into_ptr(), Ordering::Relaxed);
    }
    let events = monitoring.getattr("events")?;
    let mut mask = 0u32;
    for &(name, event, function) in callbacks {
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
        let bit: u32 = events.getattr(event)?.extract()?;
        monitoring.call_method1("register_callback", (tool_id, bit, callable))?;
        mask |= bit;
    }
    monitoring.call_method1("set_events", (tool_id, mask))?;
    Ok(())
}

/// Disables fever's events and removes `callbacks` (other tools are not touched).
pub fn unregister(py: Python<'_>, tool_id: u8, callbacks: &[Callback]) -> PyResult<()> {
    let monitoring = py.import("sys")?.getattr("monitoring")?;
    monitoring.call_method1("set_events", (tool_id, 0))?;
    let events = monitoring.getattr("events")?;
    for &(_, event, _) in callbacks {
        let bit: u32 = events.getattr(event)?.extract()?;
        monitoring.call_method1("register_callback", (tool_id, bit, py.None()))?;
    }
    Ok(())
}
