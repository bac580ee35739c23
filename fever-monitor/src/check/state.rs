//! [`State`]: for a re-invoked call that differs from its recording, the module state it
//! depended on, when that explains the difference (implemented in `state.py`): it returned an
//! object a module holds (a module-level object whose caches earlier calls filled), or it reads
//! a module-level table that the test that made the call changes.

use pyo3::prelude::*;
use pyo3::types::PyModule;

use super::sources::embedded;

/// The loaded `state.py`.
pub struct State {
    module: Py<PyModule>,
}

impl State {
    /// Loads the helpers.
    pub fn load(py: Python<'_>) -> PyResult<Self> {
        Ok(Self {
            module: embedded(
                py,
                include_str!("state.py"),
                c"<fever check: module state>",
                c"_fever_check_state",
            )?,
        })
    }

    /// Why a call of `function` that returned `returned` (made from `callers`, innermost
    /// first) may differ because of the state of a module, not its code; `None` if nothing
    /// says so.
    pub fn explain(
        &self,
        py: Python<'_>,
        function: &Bound<'_, PyAny>,
        returned: Option<&Py<PyAny>>,
        callers: &[Bound<'_, PyAny>],
    ) -> PyResult<Option<String>> {
        let module = self.module.bind(py);
        if let Some(value) = returned {
            let held: Option<String> = module.call_method1("module_object", (value,))?.extract()?;
            if let Some(name) = held {
                return Ok(Some(format!(
                    "depends on module state: it returns {name}, an object the module holds \
                     (not one the call made), whose state differs from its state when recorded \
                     (earlier calls change it, e.g. caches)"
                )));
            }
        }
        let changed: Option<(String, String)> = module
            .call_method1("changed_by_callers", (function, callers.to_vec()))?
            .extract()?;
        Ok(changed.map(|(name, caller)| {
            format!(
                "depends on module state: it reads {name}, which {caller} (that made this call) \
                 changes, so {name} was not what it is now when the call was recorded"
            )
        }))
    }
}
