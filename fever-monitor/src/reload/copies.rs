//! `from m import NAME` copies. When a save rebinds a module-level name of `m`, the project's
//! modules that imported it by name (a module-level `from m import NAME [as ALIAS]` in the text
//! they run) and still hold the old object (compared by identity) get the new one; a copy that
//! was rebound since is left alone.

use fever_core::ReloadEvent;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::loaded;
use super::modules::LoadedModule;
use crate::sources;

/// Updates the copies of `module`'s names whose values were `before` (name, old value) and
/// changed since; returns what was done.
pub fn update(
    py: Python<'_>,
    module: &LoadedModule<'_>,
    before: &[(String, Bound<'_, PyAny>)],
) -> PyResult<Vec<ReloadEvent>> {
    let mut events = Vec::new();
    if before.is_empty() || module.name == "__main__" {
        return Ok(events);
    }
    let globals = module.namespace()?;
    let mut changed = Vec::new();
    for (name, old) in before {
        if let Some(new) = globals.get_item(name)? {
            if !new.is(old) {
                changed.push((name.as_str(), old, new));
            }
        }
    }
    if changed.is_empty() {
        return Ok(events);
    }
    let modules = loaded::sys_modules(py)?.copy()?;
    for (other_name, other) in modules.iter() {
        if other.is(&module.module) {
            continue;
        }
        let Ok(Ok(file)) = other.getattr("__file__").map(|f| f.extract::<String>()) else {
            continue;
        };
        // Only project modules have a recorded text, hence imports to look at.
        let imports = sources::from_imports(&file);
        if imports.is_empty() {
            continue;
        }
        let package: String = other
            .getattr("__package__")
            .and_then(|p| p.extract())
            .unwrap_or_default();
        let Ok(namespace) = other.getattr("__dict__")?.cast_into::<PyDict>() else {
            continue;
        };
        for import in imports {
            if import.absolute_module(&package).as_deref() != Some(module.name.as_str()) {
                continue;
            }
            for (name, old, new) in &changed {
                let alias = if import.star {
                    Some(*name).filter(|n| !n.starts_with('_'))
                } else {
                    import
                        .names
                        .iter()
                        .find(|(imported, _)| imported == name)
                        .map(|(_, alias)| alias.as_str())
                };
                let Some(alias) = alias else {
                    continue;
                };
                let Some(copy) = namespace.get_item(alias)? else {
                    continue;
                };
                let name = format!("{}.{name}", module.name);
                let copy_name = format!("{other_name}.{alias}");
                if copy.is(*old) {
                    namespace.set_item(alias, new)?;
                    events.push(ReloadEvent::CopyUpdated {
                        name,
                        copy: copy_name,
                    });
                } else if !copy.is(new) {
                    events.push(ReloadEvent::CopyKept {
                        name,
                        copy: copy_name,
                    });
                }
            }
        }
    }
    Ok(events)
}
