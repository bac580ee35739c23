//! Running the user's program exactly as `python SCRIPT ARGS` / `python -m MODULE ARGS` would, in
//! this interpreter: `sys.argv`, a fresh `__main__` module, `sys.path[0]`, and the exit code
//! (`sys.exit`, 1 after the normal traceback, 130 after Ctrl-C).

use std::path::Path;

use fever_core::settings::Target;
use pyo3::exceptions::{PyKeyboardInterrupt, PySystemExit};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// How a run of the program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It ran to the end, or called `sys.exit` with this code (0 for the end).
    Exited(i32),
    /// An exception ended it (its traceback was printed): exit code 1.
    Raised,
    /// Ctrl-C (`KeyboardInterrupt`, traceback printed): exit code 130.
    Interrupted,
}

impl Ended {
    /// The exit code `python` would give.
    pub fn code(self) -> i32 {
        match self {
            Ended::Exited(code) => code,
            Ended::Raised => 1,
            Ended::Interrupted => 130,
        }
    }
}

/// Runs `target` with `args` as `sys.argv[1:]` in a fresh `__main__`; says how it ended.
pub fn run_once(py: Python<'_>, target: &Target, args: &[String]) -> PyResult<Ended> {
    let result = match target {
        Target::Script(path) => run_script(py, path, args),
        Target::Module(name) => run_module(py, name, args),
    };
    match result {
        Ok(()) => Ok(Ended::Exited(0)),
        Err(err) => ended(py, &err),
    }
}

fn run_script(py: Python<'_>, path: &Path, args: &[String]) -> PyResult<()> {
    let os_path = py.import("os.path")?;
    let given = path.to_string_lossy().into_owned();
    if has_importer(py, &given)? {
        // A directory or a zipapp, as `python PATH` runs it: `PATH` first on `sys.path`, then
        // `runpy` finds `__main__` there ("can't find '__main__' module" otherwise).
        let path0 = os_path.call_method1("abspath", (&given,))?;
        set_argv_and_path(py, given, args, &path0)?;
        return run_as_main(py, "__main__", false);
    }
    let file: String = os_path.call_method1("abspath", (&given,))?.extract()?;
    let source =
        std::fs::read(&file).map_err(|e| pyo3::exceptions::PyOSError::new_err(e.to_string()))?;
    let builtins = py.import("builtins")?;
    let main = fresh_main(py)?;
    let globals = main.getattr("__dict__")?.cast_into::<PyDict>()?;
    globals.set_item("__file__", &file)?;
    globals.set_item("__cached__", py.None())?;
    globals.set_item("__builtins__", &builtins)?;
    // `importlib.machinery.SourceFileLoader` as the interpreter has it frozen, as `python
    // SCRIPT` takes it: importing `importlib.machinery` cost every run ~2 ms.
    let loader = py
        .import("_frozen_importlib_external")?
        .getattr("SourceFileLoader")?
        .call1(("__main__", &file))?;
    globals.set_item("__loader__", loader)?;
    let real_dir =
        os_path.call_method1("dirname", (os_path.call_method1("realpath", (&file,))?,))?;
    set_argv_and_path(py, given, args, &real_dir)?;
    // Watched before it compiles: a script with a syntax error reloads once it is fixed.
    crate::watched::module_ran(&file);
    let code = crate::module_code::compile(py, &source, &file)?;
    builtins.getattr("exec")?.call1((code, globals))?;
    Ok(())
}

/// Can `path` go on `sys.path` (a directory, a zip file such as a zipapp)? Asked as `python PATH`
/// asks it: some hook of `sys.path_hooks` takes the path (for a plain file every one refuses).
fn has_importer(py: Python<'_>, path: &str) -> PyResult<bool> {
    for hook in py.import("sys")?.getattr("path_hooks")?.try_iter()? {
        match hook?.call1((path,)) {
            Ok(_) => return Ok(true),
            Err(err) if err.is_instance_of::<pyo3::exceptions::PyImportError>(py) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(false)
}

fn run_module(py: Python<'_>, name: &str, args: &[String]) -> PyResult<()> {
    let cwd = py.import("os")?.call_method0("getcwd")?;
    set_argv_and_path(py, name.to_owned(), args, &cwd)?;
    run_as_main(py, name, true)
}

/// `runpy._run_module_as_main(name, alter_argv)` in a fresh `__main__`, as `python -m name`
/// (`alter_argv`: `sys.argv[0]` becomes the module's file) and `python DIR` run it.
fn run_as_main(py: Python<'_>, name: &str, alter_argv: bool) -> PyResult<()> {
    fresh_main(py)?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("alter_argv", alter_argv)?;
    py.import("runpy")?
        .getattr("_run_module_as_main")?
        .call((name,), Some(&kwargs))?;
    Ok(())
}

/// Installs an empty module as `sys.modules["__main__"]` (fever's own `__main__` stays untouched).
fn fresh_main(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    // `types.ModuleType("__main__")` without importing `types` (~1 M instructions a start).
    let main = pyo3::types::PyModule::new(py, "__main__")?.into_any();
    py.import("sys")?
        .getattr("modules")?
        .set_item("__main__", &main)?;
    Ok(main)
}

fn set_argv_and_path(
    py: Python<'_>,
    argv0: String,
    args: &[String],
    path0: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let sys = py.import("sys")?;
    let argv = PyList::new(py, std::iter::once(argv0).chain(args.iter().cloned()))?;
    sys.setattr("argv", argv)?;
    let path = sys.getattr("path")?.cast_into::<PyList>()?;
    if path.is_empty() {
        path.insert(0, path0)?;
    } else {
        path.set_item(0, path0)?;
    }
    Ok(())
}

/// How an exception ended the program (printing what Python prints).
fn ended(py: Python<'_>, err: &PyErr) -> PyResult<Ended> {
    let sys = py.import("sys")?;
    if err.is_instance_of::<PySystemExit>(py) {
        let code = err.value(py).getattr("code")?;
        if code.is_none() {
            return Ok(Ended::Exited(0));
        }
        if let Ok(n) = code.extract::<i32>() {
            return Ok(Ended::Exited(n));
        }
        let stderr = sys.getattr("stderr")?;
        stderr.call_method1("write", (format!("{}\n", code.str()?),))?;
        stderr.call_method0("flush")?;
        return Ok(Ended::Exited(1));
    }
    let value = err.value(py);
    // As the interpreter does for an uncaught exception (`pdb.pm()` and post-mortem use them).
    sys.setattr("last_type", value.get_type())?;
    sys.setattr("last_value", value)?;
    sys.setattr("last_traceback", err.traceback(py))?;
    sys.setattr("last_exc", value)?;
    sys.getattr("excepthook")?
        .call1((value.get_type(), value, err.traceback(py)))?;
    Ok(if err.is_instance_of::<PyKeyboardInterrupt>(py) {
        Ended::Interrupted
    } else {
        Ended::Raised
    })
}
