//! What the program did to fever's sys.monitoring tool behind the engine's back, looked at
//! each time the engine changes its events (arming, disarming: at the latest when a recording
//! ends): freed (`sys.monitoring.free_tool_id`, from a `__del__` or anywhere), given to another
//! tool, its events changed (`set_events`) or its callbacks replaced (`register_callback`).
//! A freed id is claimed again (nobody holds it) so the engine can turn its events off; an id
//! another tool holds now is never touched. The first thing noticed is kept, for the session
//! to tell ([`super::altered`]).

use fever_core::notice::Alteration;
use pyo3::prelude::*;

use crate::monitoring::TOOL_NAME;

/// Where fever's tool stands, as [`check`] found it.
pub enum Standing {
    /// Still fever's (or claimed again): `reinstall` when its callbacks must be registered
    /// again (the id was freed, or they were replaced).
    Ours { reinstall: bool },
    /// Another tool holds the id: leave it alone.
    Taken,
}

/// Looks at tool `tool_id`, whose events were last set to `mask` with `callables` registered
/// for `bits`; what changed is recorded in `altered` (the first thing only).
pub fn check(
    monitoring: &Bound<'_, PyAny>,
    tool_id: u8,
    mask: u32,
    bits: &[u32; 7],
    callables: &[Py<PyAny>; 7],
    altered: &mut Option<Alteration>,
) -> PyResult<Standing> {
    let holder = monitoring.call_method1("get_tool", (tool_id,))?;
    if holder.is_none() {
        altered.get_or_insert(Alteration::Freed);
        monitoring.call_method1("use_tool_id", (tool_id, TOOL_NAME))?;
        return Ok(Standing::Ours { reinstall: true });
    }
    if holder.extract::<String>().ok().as_deref() != Some(TOOL_NAME) {
        altered.get_or_insert(Alteration::Taken);
        return Ok(Standing::Taken);
    }
    let events: u32 = monitoring
        .call_method1("get_events", (tool_id,))?
        .extract()?;
    if events != mask {
        altered.get_or_insert(Alteration::EventsChanged);
    }
    // `register_callback` hands back the callable it replaces: put ours back to see it.
    let mut replaced = false;
    for (bit, callable) in bits.iter().zip(callables) {
        let callable = callable.bind(monitoring.py());
        let before = monitoring.call_method1("register_callback", (tool_id, *bit, callable))?;
        replaced |= !before.is(callable);
    }
    if replaced {
        altered.get_or_insert(Alteration::CallbacksReplaced);
    }
    Ok(Standing::Ours { reinstall: false })
}
