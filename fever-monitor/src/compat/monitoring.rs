//! The sys.monitoring facts fever relies on, and what each version changed:
//!
//! - Event bits are read by name from `sys.monitoring.events`, never hard-coded: 3.14 inserted
//!   `BRANCH_LEFT`/`BRANCH_RIGHT` and moved the bits of the events after them (`PY_UNWIND` is
//!   0x1000 on 3.13, 0x2000 on 3.14). fever enables no branch event on any version.
//! - Freeing: on 3.12 and 3.13 `free_tool_id` only forgets the name; events and callbacks stay
//!   registered, so fever clears its own first (`monitoring::unregister`). 3.14 added
//!   `clear_tool_id`, and its `free_tool_id` clears too; [`free_tool`] does the same on each.
//! - Debuggers: 3.14's `pdb` (its `monitoring` backend, and `python -m pdb`) claims tool id 0;
//!   fever's ids are 3 and 4 ([`TOOL_IDS`]), so both run side by side.
//! - `DISABLE`: fever returns it only from local events (`PY_START`, `PY_RESUME`, `PY_RETURN`,
//!   `PY_YIELD`) of code that is not the project's. On 3.15 `PY_UNWIND` became a local event
//!   too (gh-142186) and a `DISABLE` returned from `RAISE`/`PY_UNWIND` is ignored, where 3.12 to
//!   3.14 raise `ValueError`; fever returns `None` from those on every version, and a `DISABLE`d
//!   `PY_START` still leaves `PY_UNWIND` firing for that code on all four.

use pyo3::prelude::*;

/// sys.monitoring tool ids fever may claim, in order of preference (0 debuggers, 1 coverage,
/// 2 profilers such as cProfile, 5 optimizers are taken by convention).
pub const TOOL_IDS: [u8; 2] = [3, 4];

/// Frees `id` with its events and callbacks (`clear_tool_id` where it exists, 3.14+).
pub fn free_tool(monitoring: &Bound<'_, PyAny>, id: u8) -> PyResult<()> {
    if monitoring.hasattr("clear_tool_id")? {
        monitoring.call_method1("clear_tool_id", (id,))?;
    }
    monitoring.call_method1("free_tool_id", (id,))?;
    Ok(())
}
