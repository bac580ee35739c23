//! fever's sys.monitoring tool id: claimed at start (3, then 4), dormant (no events enabled),
//! released at exit. Ids held by other tools (debuggers, coverage, profilers) are never touched.
//! Also what every callback returns: `None` and `DISABLE`.

use std::sync::atomic::{AtomicPtr, Ordering};

use pyo3::ffi::{self, PyObject};
use pyo3::prelude::*;

use crate::compat::TOOL_IDS;

pub const TOOL_NAME: &str = "fever";

/// The id fever holds in this process already (one id per process: a spawned child's recording
/// and its control socket share it), else the first free id of [`TOOL_IDS`]; `None` when all
/// are taken.
pub fn claim(py: Python<'_>) -> PyResult<Option<u8>> {
    let monitoring = py.import("sys")?.getattr("monitoring")?;
    for id in TOOL_IDS {
        let holder = monitoring.call_method1("get_tool", (id,))?;
        if !holder.is_none() && holder.extract::<String>()? == TOOL_NAME {
            return Ok(Some(id));
        }
    }
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

/// `sys.monitoring.DISABLE`, an owned reference kept for the life of the process.
static DISABLE: AtomicPtr<PyObject> = AtomicPtr::new(std::ptr::null_mut());

/// A new reference to `None`: `None` itself, whose reference count an immortal object (3.12+)
/// never needs changed (`Py_INCREF` of it is a no-op that costs a load, a test and a branch
/// per event).
#[inline(always)]
#[allow(clippy::inline_always)] // every callback returns through it
pub fn none() -> *mut PyObject {
    // SAFETY: reading the address of a static object.
    unsafe { ffi::Py_None() }
}

/// A new reference to `sys.monitoring.DISABLE` (`None` before [`keep_disable`] ran).
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

/// Keeps `sys.monitoring.DISABLE` for [`disable`] (`monitoring` is `sys.monitoring`).
pub fn keep_disable(monitoring: &Bound<'_, PyAny>) -> PyResult<()> {
    if DISABLE.load(Ordering::Relaxed).is_null() {
        DISABLE.store(monitoring.getattr("DISABLE")?.into_ptr(), Ordering::Relaxed);
    }
    Ok(())
}
