//! [`Caller`]: a re-invoked call made from a frame whose globals are its recorded caller's
//! module, so code that reads its caller's frame (`sys._getframe(1).f_globals['__name__']`, as
//! `collections.namedtuple`-like factories do to name a class's module) sees a plausible caller,
//! not fever.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::sources::embedded;

/// The function that makes callers.
pub struct Caller {
    make: Py<PyAny>,
}

const SOURCE: &str = r#"
import types

def make(function, globals):
    """A function calling `function` whose frame has `globals` (nothing is added to them)."""
    def call(*args, **kwargs):
        return function(*args, **kwargs)
    return types.FunctionType(call.__code__, globals, call.__name__, None, call.__closure__)
"#;

impl Caller {
    /// Loads the maker.
    pub fn load(py: Python<'_>) -> PyResult<Self> {
        let module = embedded(
            py,
            SOURCE,
            c"<fever check: the recorded caller>",
            c"_fever_check_caller",
        )?;
        Ok(Self {
            make: module.bind(py).getattr("make")?.unbind(),
        })
    }

    /// `function`, called from a frame whose globals are those of `module` (the recorded
    /// caller's), else of `function` itself.
    pub fn of<'py>(
        &self,
        py: Python<'py>,
        function: &Bound<'py, PyAny>,
        module: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let globals = match module.and_then(|m| m.getattr("__dict__").ok()) {
            Some(globals) => globals,
            None => function.getattr("__globals__")?,
        };
        if !globals.is_instance_of::<PyDict>() {
            return Ok(function.clone());
        }
        self.make.bind(py).call1((function, globals))
    }
}
