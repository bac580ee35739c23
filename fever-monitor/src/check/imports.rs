//! The recorded program's modules in this interpreter: imported by name as it imported them,
//! with `sys.path` as when it ran (the script's directory, and every directory under the root
//! that the recorded modules came from: [`Layout`]); a module whose name does not follow its
//! path (pytest's `importlib` import mode) is loaded from its recorded file under its recorded
//! name. The program's `__main__` is loaded from its file under
//! another name so its `if __name__ == "__main__":` block does not run. The classes and
//! functions it defines then say `__module__ == "__main__"`, as they did when recorded, its
//! `__name__` is `"__main__"` again (what it named at import, a logger, keeps the alias), and
//! `sys.modules["__main__"]` is that module, so snapshots and lookups agree with the trace.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use fever_core::check::{Layout, Relocation};
use fever_core::trace::{CodeInfo, TraceReader};
use pyo3::prelude::*;
use pyo3::types::{PyFunction, PyType};

use super::invoke::isolated;
use crate::rebuild::{self, Lookup};

/// The name the recorded `__main__` is loaded under (inside its package, for `-m pkg.mod`).
const MAIN_ALIAS: &str = "__fever_main__";

/// The recorded program's `__main__`.
struct Main {
    /// Its source file.
    file: PathBuf,
    /// `__package__` (the package of `-m pkg.mod`; empty for a script).
    package: String,
}

/// Modules imported so far, and why the others could not be.
pub struct Modules {
    main: Option<Main>,
    /// Recorded modules' files, for those `import` does not find.
    files: HashMap<String, PathBuf>,
    /// Modules whose code raised (not an `ImportError`) when imported: broken since recorded.
    broken: HashSet<String>,
    loaded: HashMap<String, Result<Py<PyAny>, String>>,
}

impl Modules {
    /// Prepares importing the modules of `reader`'s program from where the project is now
    /// (`relocation`): puts the directory it ran from (the script's, or the root for `-m`) first
    /// on `sys.path`.
    pub fn new(py: Python<'_>, reader: &TraceReader, relocation: &Relocation) -> PyResult<Self> {
        let header = reader.header();
        let main_file = reader
            .codes()
            .iter()
            .find(|c| c.module == "__main__")
            .map(|c| relocation.apply(&c.file));
        let module_name = header.argv.first().and_then(|a| a.strip_prefix("-m "));
        let path0 = match (module_name, &main_file) {
            (None, Some(file)) => file
                .canonicalize()
                .unwrap_or_else(|_| file.clone())
                .parent()
                .map(Path::to_path_buf),
            _ => Some(relocation.now.clone()),
        };
        let layout = Layout::of(reader.codes(), relocation);
        let path = py.import("sys")?.getattr("path")?;
        for (at, dir) in path0.iter().chain(&layout.search_path).enumerate() {
            let dir = dir.display().to_string();
            if !path.contains(&dir)? {
                path.call_method1("insert", (at, dir))?;
            }
        }
        let main = main_file.map(|file| Main {
            package: match module_name {
                Some(name) if file.file_name().is_some_and(|f| f == "__main__.py") => {
                    name.to_owned()
                }
                Some(name) => name.rsplit_once('.').map_or("", |p| p.0).to_owned(),
                None => String::new(),
            },
            file,
        });
        Ok(Self {
            main,
            files: layout.files,
            broken: HashSet::new(),
            loaded: HashMap::new(),
        })
    }

    /// The recorded `__main__`'s file where the project is now, if a call of it was recorded.
    pub fn main_file(&self) -> Option<&Path> {
        self.main.as_ref().map(|main| main.file.as_path())
    }

    /// The module recorded as `name` if the check has imported it already (never imports:
    /// a caller's module may be a script that does its work when run).
    pub fn imported<'py>(&self, py: Python<'py>, name: &str) -> Option<Bound<'py, PyAny>> {
        match self.loaded.get(name) {
            Some(Ok(module)) => Some(module.bind(py).clone()),
            _ => None,
        }
    }

    /// The module recorded as `name`, imported on first use (with stdio isolated, as calls
    /// are). Err: why it cannot be imported. A `KeyboardInterrupt` stops everything.
    fn module<'py>(
        &mut self,
        py: Python<'py>,
        name: &str,
    ) -> PyResult<Result<Bound<'py, PyAny>, String>> {
        if let Some(loaded) = self.loaded.get(name) {
            return Ok(loaded
                .as_ref()
                .map(|m| m.bind(py).clone())
                .map_err(Clone::clone));
        }
        let result = isolated(py, || match (name, &self.main) {
            ("__main__", Some(main)) => load_main(py, main),
            ("__main__", None) => Err(pyo3::exceptions::PyImportError::new_err(
                "the trace does not say which file __main__ was",
            )),
            _ => match py
                .import("importlib")?
                .call_method1("import_module", (name,))
            {
                Err(err) if err.is_instance_of::<pyo3::exceptions::PyImportError>(py) => {
                    match self.files.get(name).filter(|f| f.is_file()) {
                        Some(file) => load_file(py, name, file, None).map_err(|_| err),
                        None => Err(err),
                    }
                }
                imported => imported,
            },
        });
        let result = match result {
            Ok(module) => Ok(module),
            Err(err) if err.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) => {
                return Err(err)
            }
            Err(err) => {
                // Not found (moved, not installed) says nothing about the code.
                let missing = err.is_instance_of::<pyo3::exceptions::PyImportError>(py)
                    || err.is_instance_of::<pyo3::exceptions::PyOSError>(py);
                if !missing {
                    self.broken.insert(name.to_owned());
                }
                Err(format!("cannot import {name}: {}", describe(py, &err)))
            }
        };
        self.loaded.insert(
            name.to_owned(),
            result
                .as_ref()
                .map(|m| m.clone().unbind())
                .map_err(Clone::clone),
        );
        Ok(result)
    }

    /// Whether importing `module` raised an exception of its code (a `SyntaxError`, a
    /// `NameError`, ...), not an `ImportError` or `OSError` (a module or file not found).
    pub fn is_broken(&self, module: &str) -> bool {
        self.broken.contains(module)
    }

    /// The function whose code is `module.qualname`, unwrapped from `staticmethod`,
    /// `classmethod`, `property` and decorators (`__wrapped__`) down to the function running
    /// that code. Looked up in class namespaces, so a method is the plain function (its `self`
    /// or `cls` is its first recorded argument).
    pub fn function<'py>(
        &mut self,
        py: Python<'py>,
        module: &str,
        qualname: &str,
    ) -> PyResult<Result<Bound<'py, PyAny>, String>> {
        let object = match self.module(py, module)? {
            Ok(module) => module,
            Err(reason) => return Ok(Err(reason)),
        };
        Ok(rebuild::member(object, module, qualname)
            .map(|found| rebuild::unwrap(found, qualname, 0, &[])))
    }

    /// The function that ran `code`, called with arguments named `arguments`: as
    /// [`function`](Self::function), told from others of the same qualname (a property's
    /// getter and setter) by its first line and parameters.
    pub fn function_of<'py>(
        &mut self,
        py: Python<'py>,
        code: &CodeInfo,
        arguments: &[&str],
    ) -> PyResult<Result<Bound<'py, PyAny>, String>> {
        let object = match self.module(py, &code.module)? {
            Ok(module) => module,
            Err(reason) => return Ok(Err(reason)),
        };
        Ok(rebuild::member(object, &code.module, &code.qualname)
            .map(|found| rebuild::unwrap(found, &code.qualname, code.first_line, arguments)))
    }
}

impl Lookup for Modules {
    fn lookup<'py>(
        &mut self,
        py: Python<'py>,
        module: &str,
        qualname: &str,
    ) -> Result<Bound<'py, PyAny>, String> {
        let object = self.module(py, module).map_err(|e| e.to_string())??;
        rebuild::member(object, module, qualname)
    }
}

/// Loads the recorded `__main__` from its file as [`MAIN_ALIAS`] (inside its package, so
/// relative imports resolve: `__package__` is the spec's parent), makes it
/// `sys.modules["__main__"]`, names `__main__` as the module of what it defines, and then
/// (its `if __name__ == "__main__":` block not run) names itself `__main__` again.
fn load_main<'py>(py: Python<'py>, main: &Main) -> PyResult<Bound<'py, PyAny>> {
    let alias = if main.package.is_empty() {
        MAIN_ALIAS.to_owned()
    } else {
        format!("{}.{MAIN_ALIAS}", main.package)
    };
    if let Some(zip) = main.file.ancestors().skip(1).find(|p| p.is_file()) {
        return Err(pyo3::exceptions::PyImportError::new_err(format!(
            "it ran from the zipapp {}, whose files fever check does not load",
            zip.display()
        )));
    }
    let module = load_file(py, &alias, &main.file, Some("__main__"))?;
    adopt(&module, &alias, &mut Vec::new())?;
    module.setattr("__name__", "__main__")?;
    Ok(module)
}

/// Loads `file` as module `name` (a module `import` cannot find by that name), in
/// `sys.modules` under that name and `also` while it runs and after (unless it raises).
fn load_file<'py>(
    py: Python<'py>,
    name: &str,
    file: &Path,
    also: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    let util = py.import("importlib.util")?;
    let spec = util.call_method1(
        "spec_from_file_location",
        (name, file.display().to_string()),
    )?;
    if spec.is_none() {
        return Err(pyo3::exceptions::PyImportError::new_err(format!(
            "cannot load {}",
            file.display()
        )));
    }
    let module = util.call_method1("module_from_spec", (&spec,))?;
    let modules = py.import("sys")?.getattr("modules")?;
    modules.set_item(name, &module)?;
    if let Some(also) = also {
        modules.set_item(also, &module)?;
    }
    if let Err(err) = spec
        .getattr("loader")?
        .call_method1("exec_module", (&module,))
    {
        let _ = modules.del_item(name);
        return Err(err);
    }
    Ok(module)
}

/// Sets `__module__` to `"__main__"` on the classes and functions of `namespace` (a module or
/// class) that the module loaded as `alias` defined, recursively into classes.
fn adopt(namespace: &Bound<'_, PyAny>, alias: &str, seen: &mut Vec<usize>) -> PyResult<()> {
    let dict = namespace.getattr("__dict__")?;
    let values: Vec<Bound<'_, PyAny>> = dict
        .call_method0("values")?
        .try_iter()?
        .collect::<PyResult<_>>()?;
    for value in values {
        let is_class = value.is_instance_of::<PyType>();
        if !is_class && !value.is_instance_of::<PyFunction>() {
            continue;
        }
        let ours = value
            .getattr("__module__")
            .and_then(|m| m.extract::<String>())
            .is_ok_and(|m| m == alias);
        if !ours {
            continue;
        }
        value.setattr("__module__", "__main__")?;
        let id = value.as_ptr() as usize;
        if is_class && !seen.contains(&id) {
            seen.push(id);
            adopt(&value, alias, seen)?;
        }
    }
    Ok(())
}

/// `Type: message` of an exception.
pub fn describe(py: Python<'_>, err: &PyErr) -> String {
    let value = err.value(py);
    let name = value
        .get_type()
        .name()
        .map_or_else(|_| "exception".to_owned(), |n| n.to_string());
    match value.str() {
        Ok(message) if !message.to_string().is_empty() => format!("{name}: {message}"),
        _ => name,
    }
}
