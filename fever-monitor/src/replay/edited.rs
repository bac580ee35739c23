//! The code a reload left in changed functions, as the front end compares it with the recording:
//! each function named `module.qualname` is looked up in `sys.modules` and its `__code__`
//! hashed like the tracer hashes the code it records (`code_object::code_hash`), so a node is
//! marked edited only while its code differs from the recorded one (an undo, or an edit taken
//! back, clears the mark).

use fever_core::control::FunctionCode;
use fever_core::ReloadEvent;
use pyo3::prelude::*;

use crate::code_object::code_hash;

/// The functions `events` changed, redefined, added or removed, with their code now.
pub fn changed(py: Python<'_>, events: &[ReloadEvent]) -> Vec<FunctionCode> {
    events
        .iter()
        .filter_map(|event| match event {
            ReloadEvent::Reloaded { name, .. }
            | ReloadEvent::Added { name }
            | ReloadEvent::Deleted { name }
            | ReloadEvent::Redefined { name, .. } => Some(FunctionCode {
                name: name.clone(),
                code_hash: current_hash(py, name),
            }),
            _ => None,
        })
        .collect()
}

/// The code hash of the function `module.qualname` as the program has it now.
fn current_hash(py: Python<'_>, name: &str) -> Option<u64> {
    let modules = py.import("sys").ok()?.getattr("modules").ok()?;
    // The module is the longest dotted prefix that is loaded.
    let mut split = name.len();
    while let Some(dot) = name[..split].rfind('.') {
        split = dot;
        let Ok(mut object) = modules.get_item(&name[..dot]) else {
            continue;
        };
        for part in name[dot + 1..].split('.') {
            object = object.getattr(part).ok()?;
        }
        let function = object.getattr("__func__").unwrap_or(object);
        let code = function.getattr("__code__").ok()?;
        if !code.is_instance_of::<pyo3::types::PyCode>() {
            return None;
        }
        // SAFETY: GIL held; `code` is a live code object.
        return Some(unsafe { code_hash(code.as_ptr()) });
    }
    None
}
