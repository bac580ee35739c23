//! Which loaded modules run a file: `sys.modules` entries whose `__file__` is that file.

use std::path::{Path, PathBuf};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule, PyString};

/// A loaded module and the file name its code objects carry.
pub struct LoadedModule<'py> {
    pub name: String,
    pub module: Bound<'py, PyAny>,
    /// `__file__` as Python has it (the `co_filename` of the module's code).
    pub file: String,
}

impl<'py> LoadedModule<'py> {
    pub fn namespace(&self) -> PyResult<Bound<'py, PyDict>> {
        Ok(self.module.getattr("__dict__")?.cast_into::<PyDict>()?)
    }
}

/// The modules whose `__file__` is `path` (compared with symlinks resolved). Each entry's
/// `__file__` is read from its namespace (a module without one, such as a built-in, raises no
/// `AttributeError`) and compared by name before any allocation: a save is applied in every
/// process of the program, so this scan runs once per process per save.
pub fn running<'py>(py: Python<'py>, path: &Path) -> Vec<LoadedModule<'py>> {
    let Ok(target) = path.canonicalize() else {
        return Vec::new();
    };
    let Ok(modules) = py
        .import("sys")
        .and_then(|sys| sys.getattr("modules"))
        .and_then(|m| m.call_method0("copy"))
    else {
        return Vec::new();
    };
    let Ok(modules) = modules.cast_into::<PyDict>() else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for (name, module) in modules.iter() {
        let Some(file) = file_of(&module) else {
            continue;
        };
        let Ok(file) = file.to_str() else {
            continue;
        };
        if !file.ends_with(".py") {
            continue;
        }
        if same_file(file, path, &target) {
            let name = name.extract::<String>().unwrap_or_default();
            found.push(LoadedModule {
                name,
                module,
                file: file.to_owned(),
            });
        }
    }
    found
}

/// A module's `__file__`, when it is a string.
fn file_of<'py>(module: &Bound<'py, PyAny>) -> Option<Bound<'py, PyString>> {
    let key = pyo3::intern!(module.py(), "__file__");
    let file = match module.cast::<PyModule>() {
        Ok(module) => module.dict().get_item(key).ok()??,
        // Not a module object (a stand-in some programs put in `sys.modules`).
        Err(_) => module.getattr(key).ok()?,
    };
    file.cast_into::<PyString>().ok()
}

fn same_file(file: &str, path: &Path, target: &PathBuf) -> bool {
    let file = Path::new(file);
    if file == path || file == target.as_path() {
        return true;
    }
    file.file_name() == target.file_name() && file.canonicalize().is_ok_and(|f| &f == target)
}
