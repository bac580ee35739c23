//! Which loaded modules run a file: `sys.modules` entries whose `__file__` is that file. A save
//! is applied in every process of the program, so the answer is kept per file until
//! `sys.modules` changes (a dict watcher counts its changes): a process that did not import
//! anything since the last save of the file does not scan `sys.modules` again.

use std::collections::HashMap;
use std::ffi::{c_int, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use pyo3::ffi::PyObject;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule, PyString};

use crate::compat;

/// Changes made to a watched `sys.modules` so far.
static CHANGES: AtomicU64 = AtomicU64::new(0);

/// What [`running`] found for a path: when (`sys.modules`, and [`CHANGES`] then), and which
/// modules (name, module, file).
struct Found {
    modules: usize,
    changes: u64,
    running: Vec<(String, Py<PyAny>, String)>,
}

static FOUND: Mutex<Option<HashMap<PathBuf, Found>>> = Mutex::new(None);

/// Counts every change of a watched dict (only `sys.modules` is watched).
unsafe extern "C" fn on_modules_changed(
    _event: c_int,
    _dict: *mut PyObject,
    _key: *mut PyObject,
    _new_value: *mut PyObject,
) -> c_int {
    CHANGES.fetch_add(1, Ordering::SeqCst);
    0
}

/// Watches `modules` (the current `sys.modules`) for changes; false when no dict watcher is
/// free (then nothing is kept).
fn watch(py: Python<'_>, modules: &Bound<'_, PyDict>) -> bool {
    static WATCHER: PyOnceLock<Option<c_int>> = PyOnceLock::new();
    let Some(id) = *WATCHER.get_or_init(py, || {
        // SAFETY: a plain extern "C" callback with the signature CPython expects; GIL held.
        let id = unsafe { compat::PyDict_AddWatcher(on_modules_changed) };
        if id < 0 {
            let _ = PyErr::take(py);
            return None;
        }
        Some(id)
    }) else {
        return false;
    };
    // SAFETY: a valid watcher id and a live dict; watching one twice is allowed. GIL held.
    if unsafe { pyo3::ffi::PyDict_Watch(id, modules.as_ptr()) } < 0 {
        let _ = PyErr::take(py);
        return false;
    }
    true
}

fn found() -> std::sync::MutexGuard<'static, Option<HashMap<PathBuf, Found>>> {
    FOUND
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

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

    /// Is the module still being imported (`__spec__._initializing`): in `sys.modules`, its
    /// code perhaps not even read yet, and a thread of this process goes on with the import (a
    /// forked child may hold a copy of its parent's that never ends)?
    pub fn is_importing(&self) -> bool {
        let py = self.module.py();
        self.module
            .getattr(pyo3::intern!(py, "__spec__"))
            .and_then(|spec| spec.getattr(pyo3::intern!(py, "_initializing")))
            .and_then(|initializing| initializing.is_truthy())
            .unwrap_or(false)
            && super::importing::goes_on(py, &self.file)
    }
}

/// The modules whose `__file__` is `path` (compared with symlinks resolved): as found at the
/// last call for `path` when `sys.modules` did not change since and each still has that
/// `__file__`, else by a scan.
pub fn running<'py>(py: Python<'py>, path: &Path) -> Vec<LoadedModule<'py>> {
    let Ok(modules) = super::loaded::sys_modules(py) else {
        return Vec::new();
    };
    // Watched before the changes are counted, so none is missed.
    let watching = watch(py, &modules);
    let changes = CHANGES.load(Ordering::SeqCst);
    let key = modules.as_ptr() as usize;
    if let Some(kept) = kept(py, path, key, changes).filter(|_| watching) {
        return kept;
    }
    let loaded = scan(path, &modules);
    if watching {
        found().get_or_insert_with(HashMap::new).insert(
            path.to_path_buf(),
            Found {
                modules: key,
                changes,
                running: loaded
                    .iter()
                    .map(|m| (m.name.clone(), m.module.clone().unbind(), m.file.clone()))
                    .collect(),
            },
        );
    }
    loaded
}

/// What the last call found for `path`, if `sys.modules` (at address `modules`) has not
/// changed since and each module still runs the same file.
fn kept<'py>(
    py: Python<'py>,
    path: &Path,
    modules: usize,
    changes: u64,
) -> Option<Vec<LoadedModule<'py>>> {
    // Copied out first: reading `__file__` may run Python code (and another thread this).
    let kept: Vec<(String, Bound<'py, PyAny>, String)> = {
        let guard = found();
        let kept = guard.as_ref()?.get(path)?;
        if kept.modules != modules || kept.changes != changes {
            return None;
        }
        kept.running
            .iter()
            .map(|(name, module, file)| (name.clone(), module.bind(py).clone(), file.clone()))
            .collect()
    };
    let mut loaded = Vec::with_capacity(kept.len());
    for (name, module, file) in kept {
        if file_of(&module)?.to_str().ok()? != file {
            return None;
        }
        loaded.push(LoadedModule { name, module, file });
    }
    Some(loaded)
}

/// Scans `modules` (`sys.modules`). Each entry's `__file__` is read from its namespace (a
/// module without one, such as a built-in, raises no `AttributeError`) and compared by name
/// before any allocation: its last component first (a byte comparison), and as a path only when
/// that is the saved file's name.
fn scan<'py>(path: &Path, modules: &Bound<'py, PyDict>) -> Vec<LoadedModule<'py>> {
    let Ok(target) = path.canonicalize() else {
        return Vec::new();
    };
    let Ok(modules) = modules.copy() else {
        return Vec::new();
    };
    let names = [path.file_name(), target.file_name()];
    let mut found = Vec::new();
    for (name, module) in modules.iter() {
        let Some(file) = file_of(&module) else {
            continue;
        };
        let Ok(file) = file.to_str() else {
            continue;
        };
        if !file.ends_with(".py") || !names.iter().flatten().any(|name| named(file, name)) {
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

/// Is `name` (a `file_name`: no `/`) the last component of `file`, a path ending in `.py` (whose
/// `file_name` is what follows its last `/`)? [`same_file`] is true only when the last
/// component is the `file_name` of `path` or of `target` (equal paths have equal last
/// components), so the other modules are passed over with a byte comparison.
fn named(file: &str, name: &OsStr) -> bool {
    let (file, name) = (file.as_bytes(), name.as_bytes());
    file.ends_with(name) && (file.len() == name.len() || file[file.len() - name.len() - 1] == b'/')
}

fn same_file(file: &str, path: &Path, target: &PathBuf) -> bool {
    let file = Path::new(file);
    if file == path || file == target.as_path() {
        return true;
    }
    file.file_name() == target.file_name() && file.canonicalize().is_ok_and(|f| &f == target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(py: Python<'_>, path: &Path) -> Vec<String> {
        let mut names: Vec<String> = running(py, path).into_iter().map(|m| m.name).collect();
        names.sort();
        names
    }

    #[test]
    fn a_file_is_named_by_its_file_name_only() {
        let files = [
            "/a/b/mod.py",
            "mod.py",
            "./mod.py",
            "/a//b/mod.py",
            "/a/b/./mod.py",
            "/a/b/xmod.py",
            "/a/mod.py/mod.py",
            "../x/.py",
            "/a/b/..py",
            "/a/b c/é.py",
        ];
        let names = ["mod.py", "xmod.py", ".py", "..py", "é.py", "od.py"];
        for file in files {
            for name in names.iter().map(OsStr::new) {
                assert_eq!(
                    named(file, name),
                    Path::new(file).file_name() == Some(name),
                    "{file} {name:?}"
                );
            }
        }
    }

    #[test]
    fn a_module_is_found_through_a_symlink_of_another_name() {
        let dir = std::env::temp_dir().join(format!("fever-modules-link-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let real = dir.join("real_mod.py");
        let link = dir.join("link_mod.py");
        std::fs::write(&real, "X = 1\n").unwrap();
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&real, &link).unwrap();
        Python::initialize();
        Python::attach(|py| {
            let module = PyModule::new(py, "fever_linked").unwrap();
            module
                .setattr(
                    "__file__",
                    real.canonicalize().unwrap().display().to_string(),
                )
                .unwrap();
            let sys_modules = py.import("sys").unwrap().getattr("modules").unwrap();
            sys_modules.set_item("fever_linked", &module).unwrap();
            assert_eq!(names(py, &link), ["fever_linked"]);
            assert_eq!(names(py, &real), ["fever_linked"]);
            sys_modules.del_item("fever_linked").unwrap();
        });
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn what_is_kept_follows_sys_modules() {
        let dir = std::env::temp_dir().join(format!("fever-modules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kept_mod.py");
        std::fs::write(&path, "X = 1\n").unwrap();
        Python::initialize();
        Python::attach(|py| {
            let ns = PyDict::new(py);
            py.run(
                c"import importlib.util, sys
def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
",
                Some(&ns),
                None,
            )
            .unwrap();
            let load = ns.get_item("load").unwrap().unwrap();
            let sys_modules = py.import("sys").unwrap().getattr("modules").unwrap();
            let file = path.display().to_string();
            assert!(names(py, &path).is_empty());
            load.call1(("fever_kept_a", &file)).unwrap();
            assert_eq!(names(py, &path), ["fever_kept_a"]);
            assert_eq!(names(py, &path), ["fever_kept_a"]);
            load.call1(("fever_kept_b", &file)).unwrap();
            assert_eq!(names(py, &path), ["fever_kept_a", "fever_kept_b"]);
            sys_modules.del_item("fever_kept_a").unwrap();
            assert_eq!(names(py, &path), ["fever_kept_b"]);
            // A kept module that no longer runs the file.
            sys_modules
                .get_item("fever_kept_b")
                .unwrap()
                .setattr("__file__", "/elsewhere.py")
                .unwrap();
            assert!(names(py, &path).is_empty());
            sys_modules.del_item("fever_kept_b").unwrap();
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
}
