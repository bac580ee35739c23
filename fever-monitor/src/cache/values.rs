//! The values the cache handles: the key of a call's arguments (a snapshot whose hash covers
//! all of them), why arguments can't be keyed, copies of results (so callers can't change what
//! is stored), and a result's footprint (memory, and whether it holds the script's classes).

use std::cell::RefCell;
use std::collections::HashSet;

use pyo3::ffi::{self, PyObject};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::snapshot::{snapshot_args, snapshot_value, Snapped, SnapshotLimits};

/// Limits for keys: deep enough for real data, every item counted, strings and buffers longer
/// than 64 bytes content-hashed (so the hash still covers all of them) instead of copied.
fn key_limits() -> SnapshotLimits {
    SnapshotLimits {
        max_depth: 32,
        max_items: u32::MAX,
        max_str_bytes: 64,
        hash_over_bytes: 64,
        max_nodes: 0,
    }
}

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The key snapshot of arguments `names[i] = values[i]`: its hash identifies them when
/// `complete`. Safety: GIL held, values live (NULL ones are skipped).
pub unsafe fn key(names: &[&str], values: &[*mut PyObject]) -> Snapped {
    SCRATCH.with_borrow_mut(|out| {
        out.clear();
        // SAFETY: guaranteed by the caller.
        let snapped = unsafe { snapshot_args(names, values, &key_limits(), out) };
        out.clear();
        out.shrink_to(1 << 16);
        snapped
    })
}

/// Why the arguments can't be keyed: names the first argument whose snapshot is incomplete.
/// Safety: as [`key`].
pub unsafe fn unkeyable_reason(names: &[&str], values: &[*mut PyObject]) -> String {
    for (name, &value) in names.iter().zip(values) {
        if value.is_null() {
            continue;
        }
        let complete = SCRATCH.with_borrow_mut(|out| {
            out.clear();
            // SAFETY: guaranteed by the caller.
            let snapped = unsafe { snapshot_value(value, &key_limits(), out) };
            out.clear();
            snapped.complete
        });
        if !complete {
            // SAFETY: GIL held, live object.
            let type_name = unsafe { type_name(value) };
            return format!(
                "argument '{name}' ({type_name}) can't be snapshotted (an object fever does \
                 not look into, or nested too deep)"
            );
        }
    }
    "its arguments can't be snapshotted".into()
}

/// The name of `obj`'s type. Safety: GIL held, live object.
pub unsafe fn type_name(obj: *mut PyObject) -> String {
    // SAFETY: guaranteed by the caller; tp_name is a C string owned by the type.
    unsafe {
        let name = (*ffi::Py_TYPE(obj)).tp_name;
        std::ffi::CStr::from_ptr(name)
            .to_string_lossy()
            .into_owned()
    }
}

/// A deep copy of `value` (`copy.deepcopy`).
pub fn copy<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    static DEEPCOPY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let py = value.py();
    let deepcopy = DEEPCOPY.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("copy")?.getattr("deepcopy")?.unbind())
    })?;
    deepcopy.bind(py).call1((value,))
}

/// `(file, __qualname__)` of `class` when a module with a file defines it (the cache keeps
/// only those of project files, whose source it knows).
fn class_origin(class: &Bound<'_, PyAny>) -> Option<(String, String)> {
    let py = class.py();
    let module: String = class
        .getattr(pyo3::intern!(py, "__module__"))
        .ok()?
        .extract()
        .ok()?;
    let qualname: String = class
        .getattr(pyo3::intern!(py, "__qualname__"))
        .ok()?
        .extract()
        .ok()?;
    Some((module_file(py, &module)?, qualname))
}

/// `__file__` of loaded module `name`.
fn module_file(py: Python<'_>, name: &str) -> Option<String> {
    py.import("sys")
        .ok()?
        .getattr("modules")
        .ok()?
        .get_item(name)
        .ok()?
        .getattr("__file__")
        .ok()?
        .extract()
        .ok()
}

/// Objects visited by [`footprint`] before it stops counting.
const MAX_VISITED: usize = 1 << 21;

/// What a result holds, for the cache: its estimated size, and whether it holds classes,
/// functions or instances defined by the script (`__main__`), which each run defines afresh.
pub struct Footprint {
    /// Estimated bytes it keeps alive: `__sizeof__` of it and of everything it holds (built-in
    /// containers, instance `__dict__`s), each object counted once.
    pub bytes: u64,
    /// It holds something of the script's.
    pub from_script: bool,
    /// The classes it holds instances of (or holds): `(file, __qualname__)`.
    pub classes: Vec<(String, String)>,
}

/// The [`Footprint`] of `value`.
pub fn footprint(value: &Bound<'_, PyAny>) -> Footprint {
    let py = value.py();
    let mut seen: HashSet<usize> = HashSet::new();
    let mut pending = vec![value.clone()];
    let mut found = Footprint {
        bytes: 0,
        from_script: false,
        classes: Vec::new(),
    };
    let mut types_seen: HashSet<usize> = HashSet::new();
    let of_script = |obj: &Bound<'_, PyAny>| {
        obj.getattr(pyo3::intern!(py, "__module__"))
            .is_ok_and(|m| m.extract::<&str>().is_ok_and(|m| m == "__main__"))
    };
    let mut note_class = |class: &Bound<'_, PyAny>, classes: &mut Vec<(String, String)>| {
        if types_seen.insert(class.as_ptr() as usize) {
            if let Some(named) = class_origin(class) {
                classes.push(named);
            }
        }
    };
    while let Some(obj) = pending.pop() {
        if seen.len() >= MAX_VISITED || !seen.insert(obj.as_ptr() as usize) {
            continue;
        }
        found.bytes += obj
            .call_method0(pyo3::intern!(py, "__sizeof__"))
            .and_then(|n| n.extract::<u64>())
            .unwrap_or(64);
        let children: Vec<Bound<'_, PyAny>> = if let Ok(dict) = obj.cast::<pyo3::types::PyDict>() {
            if !obj.is_exact_instance_of::<pyo3::types::PyDict>() {
                found.from_script |= of_script(obj.get_type().as_any());
                note_class(obj.get_type().as_any(), &mut found.classes);
            }
            dict.iter().flat_map(|(k, v)| [k, v]).collect()
        } else if obj.is_instance_of::<pyo3::types::PyList>()
            || obj.is_instance_of::<pyo3::types::PyTuple>()
            || obj.is_instance_of::<pyo3::types::PySet>()
            || obj.is_instance_of::<pyo3::types::PyFrozenSet>()
        {
            found.from_script |= of_script(obj.get_type().as_any());
            note_class(obj.get_type().as_any(), &mut found.classes);
            obj.try_iter()
                .map(|items| items.flatten().collect())
                .unwrap_or_default()
        } else if obj.is_instance_of::<pyo3::types::PyString>()
            || obj.is_instance_of::<pyo3::types::PyBytes>()
        {
            Vec::new()
        } else if obj.is_instance_of::<pyo3::types::PyType>()
            || obj.is_instance_of::<pyo3::types::PyModule>()
            || obj.is_instance_of::<pyo3::types::PyFunction>()
        {
            // Shared program structure, not data the result owns.
            found.from_script |= of_script(&obj);
            if obj.is_instance_of::<pyo3::types::PyType>() {
                note_class(&obj, &mut found.classes);
            }
            Vec::new()
        } else {
            found.from_script |= of_script(obj.get_type().as_any());
            note_class(obj.get_type().as_any(), &mut found.classes);
            obj.getattr(pyo3::intern!(py, "__dict__"))
                .ok()
                .filter(PyAnyMethods::is_instance_of::<pyo3::types::PyDict>)
                .into_iter()
                .collect()
        };
        pending.extend(children);
    }
    found
}
