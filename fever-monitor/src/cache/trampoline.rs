//! Trampolines: a cached function's `__code__` is replaced by code with the same parameters
//! (generated from fever-core's [`Signature`] source) whose body calls
//! `builtins.__fever_cache_call__(token, *parameters)`. The token names a [`Handler`]: the
//! function's original code, wrapped in a function with the same globals and closure, and how
//! to pass the parameters back to it. Every reference to the function keeps working; nothing
//! wraps it.
//!
//! A call through the trampoline keys its arguments; a hit returns a copy of the stored
//! result, a miss runs the original code (the monitor records what it reached) and stores the
//! result when the call was slow and left its arguments unchanged.

use std::cell::Cell;
use std::collections::HashMap;
use std::time::Instant;

use fever_core::cache::{trampoline, Key};
use fever_core::notice::Notice;
use pyo3::ffi::PyObject;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use super::{hit, monitor, output, quietly, store, take_copy, tell, values, with, Held};
use crate::errors::fever_error;
use crate::notices;

/// File name the trampoline source is compiled under (its code then takes the function's own
/// file and first line, so tracebacks and `inspect.getsource` point at the real `def`).
const FILENAME: &str = "<fever call cache>";

thread_local! {
    static INSTALLING: Cell<bool> = const { Cell::new(false) };
}

/// The cache is assigning a `__code__` on this thread.
pub fn is_installing() -> bool {
    INSTALLING.get()
}

/// How to call a function's original code with the trampoline's parameters.
struct Handler {
    /// The function (borrowed: the handler is forgotten when the function dies).
    function: *mut PyObject,
    /// Its original code.
    code: Held,
    /// A function running the original code with the cached function's globals and closure,
    /// made at the first call (a new closure gets its cells only after it is created).
    original: Option<Held>,
    /// The code's entry in the cache's table.
    entry: usize,
    /// Parameters passed positionally (positional-only and positional-or-keyword).
    positional: usize,
    varargs: bool,
    keyword_only: Vec<Py<PyString>>,
    varkw: bool,
}

/// Every trampoline given out: token → handler, and which function has which token.
#[derive(Default)]
pub struct Trampolines {
    handlers: Vec<Option<Handler>>,
    by_function: HashMap<usize, usize>,
}

impl Trampolines {
    /// `func` lost its trampoline (its code was replaced, or it died); true if it had one.
    pub fn forget(&mut self, func: *mut PyObject) -> bool {
        match self.by_function.remove(&(func as usize)) {
            Some(token) => {
                self.handlers[token] = None;
                true
            }
            None => false,
        }
    }
}

/// Puts the trampolines' entry point into `builtins`.
pub fn install_dispatch(py: Python<'_>) -> PyResult<()> {
    py.import("builtins")?
        .setattr(trampoline::DISPATCH, wrap_pyfunction!(dispatch, py)?)
}

/// Gives `func` a trampoline if its code's calls are cached and it has none yet.
pub fn install_if_cached(py: Python<'_>, func: &Bound<'_, PyAny>) {
    if let Err(err) = quietly(|| install(py, func)) {
        notices::emit(&Notice::CacheSetupFailed {
            error: err.value(py).to_string(),
        });
    }
}

fn install(py: Python<'_>, func: &Bound<'_, PyAny>) -> PyResult<()> {
    if !func.is_instance_of::<pyo3::types::PyFunction>() {
        return Ok(());
    }
    let code = func.getattr("__code__")?;
    let plan = with(py, |c| {
        if c.trampolines
            .by_function
            .contains_key(&(func.as_ptr() as usize))
        {
            return None;
        }
        // SAFETY: GIL held, live code object, no exception set.
        let entry = unsafe { c.cached_entry(code.as_ptr()) }?;
        let signature = c.codes.infos[entry].signature.clone();
        Some((entry, signature, c.trampolines.handlers.len()))
    })
    .flatten();
    let Some((entry, mut signature, token)) = plan else {
        return Ok(());
    };
    // A closure seen at its creation has no cells yet (they are set right after), so Python
    // wants code without free variables; the cells reach the original code at the first call.
    if func.getattr("__closure__")?.is_none() {
        signature.freevars.clear();
    }
    let builtins = py.import("builtins")?;
    let namespace = PyDict::new(py);
    namespace.set_item("__builtins__", &builtins)?;
    let compiled = builtins.getattr("compile")?.call1((
        signature.trampoline_source(token as u64),
        FILENAME,
        "exec",
    ))?;
    builtins.getattr("exec")?.call1((compiled, &namespace))?;
    let factory = namespace
        .get_item(trampoline::FACTORY)?
        .ok_or_else(|| fever_error("no trampoline factory"))?;
    let replace = PyDict::new(py);
    replace.set_item("co_qualname", code.getattr("co_qualname")?)?;
    replace.set_item("co_firstlineno", code.getattr("co_firstlineno")?)?;
    replace.set_item("co_filename", code.getattr("co_filename")?)?;
    let trampoline_code =
        factory
            .call0()?
            .getattr("__code__")?
            .call_method("replace", (), Some(&replace))?;
    INSTALLING.set(true);
    let assigned = func.setattr("__code__", trampoline_code);
    INSTALLING.set(false);
    assigned?;
    let keyword_only = signature
        .keyword_only
        .iter()
        .map(|name| PyString::intern(py, name).unbind())
        .collect();
    with(py, |c| {
        c.trampolines.handlers.push(Some(Handler {
            function: func.as_ptr(),
            code: Held::new(code.unbind()),
            original: None,
            entry,
            positional: signature.positional_only.len() + signature.positional.len(),
            varargs: signature.varargs.is_some(),
            keyword_only,
            varkw: signature.varkw.is_some(),
        }));
        c.trampolines
            .by_function
            .insert(func.as_ptr() as usize, token);
    });
    Ok(())
}

/// What a trampoline call needs, copied out of the cache.
struct Call {
    original: Py<PyAny>,
    /// The contents of the function's closure cells (part of the key).
    cells: Vec<Py<PyAny>>,
    entry: usize,
    hash: u64,
    names: Vec<String>,
    positional: usize,
    varargs: bool,
    keyword_only: Vec<Py<PyString>>,
    varkw: bool,
}

/// The trampolines' entry point: `__fever_cache_call__(token, *parameters)`.
#[pyfunction]
#[pyo3(signature = (token, *params))]
fn dispatch(py: Python<'_>, token: usize, params: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
    let runner = original(py, token)?;
    let cells = closure_contents(runner.bind(py));
    let call = with(py, |c| {
        let h = c.trampolines.handlers.get(token)?.as_ref()?;
        let info = &c.codes.infos[h.entry];
        Some(Call {
            original: runner.clone_ref(py),
            cells,
            entry: h.entry,
            hash: info.hash,
            names: info.arg_names.clone(),
            positional: h.positional,
            varargs: h.varargs,
            keyword_only: h.keyword_only.iter().map(|n| n.clone_ref(py)).collect(),
            varkw: h.varkw,
        })
    })
    .flatten()
    .ok_or_else(|| fever_error("fever: this cached function's trampoline is gone"))?;
    let values: Vec<*mut PyObject> = params
        .iter()
        .map(|p| p.as_ptr())
        .chain(call.cells.iter().map(Py::as_ptr))
        .collect();
    let names: Vec<&str> = call.names.iter().map(String::as_str).collect();
    // SAFETY: GIL held; the values are items of `params`, alive for this call.
    let key = quietly(|| unsafe { values::key(&names, &values) });
    if !key.complete {
        // SAFETY: as above.
        let reason = quietly(|| unsafe { values::unkeyable_reason(&names, &values) });
        with(py, |c| tell(c, call.entry, &reason));
        return call_original(py, &call, params);
    }
    let lookup = Key {
        code: call.hash,
        args: key.hash,
    };
    if let Some((found, warning)) = hit(py, &lookup) {
        if let Some(warning) = warning {
            notices::emit(&warning);
        }
        if let Some(copy) = take_copy(py, &lookup, found) {
            return Ok(copy.unbind());
        }
    }
    let before = output::counters();
    monitor::set_dispatching(Some(call.entry));
    let started = Instant::now();
    let result = call_original(py, &call, params);
    let elapsed = started.elapsed();
    monitor::set_dispatching(None);
    let reached = monitor::take_last_dispatched();
    let result = result?;
    let min = with(py, |c| c.settings.min_duration).unwrap_or_default();
    let Some((entry, reached)) = reached.filter(|(e, _)| *e == call.entry) else {
        return Ok(result);
    };
    if elapsed >= min {
        if key.mutable {
            // SAFETY: as above.
            let now = quietly(|| unsafe { values::key(&names, &values) });
            if now.hash != key.hash {
                with(py, |c| tell(c, entry, "it changes its arguments"));
                return Ok(result);
            }
        }
        store(
            py,
            entry,
            key.hash,
            result.bind(py),
            &reached,
            elapsed,
            before,
        );
    }
    Ok(result)
}

/// The function that runs `token`'s original code, made on first use.
fn original(py: Python<'_>, token: usize) -> PyResult<Py<PyAny>> {
    enum Found<'py> {
        Made(Py<PyAny>),
        ToMake(Bound<'py, PyAny>, Py<PyAny>),
    }
    let found = with(py, |c| {
        let h = c.trampolines.handlers.get(token)?.as_ref()?;
        Some(match &h.original {
            Some(original) => Found::Made(original.clone_ref(py)),
            // SAFETY: the handler exists, so its function is alive.
            None => Found::ToMake(
                unsafe { Bound::from_borrowed_ptr(py, h.function) },
                h.code.clone_ref(py),
            ),
        })
    })
    .flatten()
    .ok_or_else(|| fever_error("fever: a cached function's trampoline is gone"))?;
    let (function, code) = match found {
        Found::Made(original) => return Ok(original),
        Found::ToMake(function, code) => (function, code),
    };
    let original = quietly(|| {
        py.import("types")?.getattr("FunctionType")?.call1((
            code,
            function.getattr("__globals__")?,
            function.getattr("__name__")?,
            py.None(),
            function.getattr("__closure__")?,
        ))
    })?
    .unbind();
    with(py, |c| {
        if let Some(Some(h)) = c.trampolines.handlers.get_mut(token) {
            h.original = Some(Held::new(original.clone_ref(py)));
        }
    });
    Ok(original)
}

/// The contents of `function`'s closure cells, in order (an empty cell as `None`).
fn closure_contents(function: &Bound<'_, PyAny>) -> Vec<Py<PyAny>> {
    let Ok(closure) = function.getattr("__closure__") else {
        return Vec::new();
    };
    let Ok(cells) = closure.try_iter() else {
        return Vec::new();
    };
    cells
        .flatten()
        .map(|cell| {
            cell.getattr("cell_contents")
                .map_or_else(|_| function.py().None(), Bound::unbind)
        })
        .collect()
}

/// Calls the original code with the trampoline's parameters.
fn call_original(py: Python<'_>, call: &Call, params: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
    let mut items = params.iter();
    let mut positional: Vec<Bound<'_, PyAny>> = items.by_ref().take(call.positional).collect();
    if call.varargs {
        if let Some(rest) = items.next() {
            positional.extend(rest.try_iter()?.collect::<PyResult<Vec<_>>>()?);
        }
    }
    let kwargs = PyDict::new(py);
    for name in &call.keyword_only {
        if let Some(value) = items.next() {
            kwargs.set_item(name.bind(py), value)?;
        }
    }
    if call.varkw {
        if let Some(extra) = items.next() {
            kwargs.update(extra.cast::<pyo3::types::PyMapping>()?)?;
        }
    }
    let args = PyTuple::new(py, positional)?;
    Ok(call.original.bind(py).call(args, Some(&kwargs))?.unbind())
}
