//! [`Argv`]: the recorded program's `sys.argv` while the check imports its modules and runs its
//! calls, so that code reading it (a profile of the process, an argument parser at import)
//! sees what it saw when recorded; the check's own `sys.argv` is back when it is dropped.

use std::path::{Path, PathBuf};

use fever_core::check::Relocation;
use pyo3::prelude::*;
use pyo3::types::PyList;

/// `sys.argv` as the recorded program had it: its script as given (moved with the project), or
/// for `-m module` the file `runpy` put first, which is the recorded `__main__`'s (`main_file`,
/// already relocated; nothing is imported to find it) or, when the trace has no call of it,
/// the file [`module_file`] finds. `None` when the trace names no program, or the file of a
/// `-m` run is not known.
pub fn recorded(
    argv: &[String],
    main_file: Option<&Path>,
    relocation: &Relocation,
) -> Option<Vec<String>> {
    let (first, rest) = argv.split_first()?;
    let first = match first.strip_prefix("-m ") {
        Some(_) => main_file?.display().to_string(),
        None => relocation.apply(first).display().to_string(),
    };
    Some(std::iter::once(first).chain(rest.iter().cloned()).collect())
}

/// The file a recorded `-m module` run put first in `sys.argv` (the module's, or a package's
/// `__main__.py`), found on `sys.path` by the path finder, which imports nothing: for a module
/// outside the project (`-m pytest`), whose `__main__` the trace has no call of. `None` for a
/// script, or a module the path finder does not find.
pub fn module_file(py: Python<'_>, argv: &[String]) -> Option<PathBuf> {
    let module = argv.first()?.strip_prefix("-m ")?;
    let finder = py
        .import("importlib.machinery")
        .and_then(|m| m.getattr("PathFinder"))
        .ok()?;
    let mut name = String::new();
    let mut search: Option<Bound<'_, PyAny>> = None;
    let mut origin: Option<PathBuf> = None;
    for part in module.split('.') {
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(part);
        let spec = finder
            .call_method1("find_spec", (name.as_str(), search.as_ref()))
            .ok()
            .filter(|spec| !spec.is_none())?;
        origin = spec.getattr("origin").and_then(|o| o.extract()).ok();
        search = spec
            .getattr("submodule_search_locations")
            .ok()
            .filter(|locations| !locations.is_none());
    }
    if let Some(locations) = search {
        // A package: `python -m` runs its `__main__`, in whichever portion of a namespace
        // package holds it.
        name.push_str(".__main__");
        let spec = finder
            .call_method1("find_spec", (name.as_str(), locations))
            .ok()
            .filter(|spec| !spec.is_none())?;
        origin = spec.getattr("origin").and_then(|o| o.extract()).ok();
    }
    origin.filter(|file| file.is_file())
}

/// `sys.argv` replaced until dropped.
pub struct Argv<'py> {
    sys: Option<Bound<'py, PyAny>>,
    previous: Option<Bound<'py, PyAny>>,
}

impl<'py> Argv<'py> {
    /// `sys.argv` is `argv` (a new list) until the guard is dropped; nothing changes for `None`.
    pub fn enter(py: Python<'py>, argv: Option<&[String]>) -> Self {
        let unchanged = Self {
            sys: None,
            previous: None,
        };
        let (Some(argv), Ok(sys)) = (argv, py.import("sys")) else {
            return unchanged;
        };
        let previous = sys.getattr("argv").ok();
        match PyList::new(py, argv).and_then(|list| sys.setattr("argv", list)) {
            Ok(()) => Self {
                sys: Some(sys.into_any()),
                previous,
            },
            Err(_) => unchanged,
        }
    }
}

impl Drop for Argv<'_> {
    fn drop(&mut self) {
        if let (Some(sys), Some(previous)) = (&self.sys, &self.previous) {
            let _ = sys.setattr("argv", previous);
        }
    }
}
