//! fever's sys.monitoring tool id: claimed at start (3, then 4), dormant (no events enabled),
//! released at exit. Ids held by other tools (debuggers, coverage, profilers) are never touched.

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

/// Frees `id` if fever still holds it.
pub fn release(py: Python<'_>, id: u8) -> PyResult<()> {
    let monitoring = py.import("sys")?.getattr("monitoring")?;
    let holder = monitoring.call_method1("get_tool", (id,))?;
    if !holder.is_none() && holder.extract::<String>()? == TOOL_NAME {
        monitoring.call_method1("free_tool_id", (id,))?;
    }
    Ok(())
}
