//! The start calls a replay can re-run: for each kept call, the function object that ran it
//! and the very argument objects it got (strong references, so open files, locks, sockets,
//! generators, cycles and arrays are passed as they are), with a [`Probe`] of each taken when
//! the call started. At most [`MAX_KEPT`] calls are kept; the references live until the program
//! side exits (holding them keeps those objects alive: a kept file is not closed by the garbage
//! collector, for instance).

use std::sync::Mutex;

use fever_core::control::ArgNote;
use fever_core::replay::{CallRef, Difference, Probe};
use pyo3::ffi::{self, PyObject};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::code_object::{int_attr, str_of};
use crate::compat::{CO_VARARGS, CO_VARKEYWORDS};
use crate::snapshot::{snapshot_value, SnapshotLimits};

/// Calls kept at most (each holds references to its arguments).
pub const MAX_KEPT: usize = 4096;

/// How a parameter is passed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Positional,
    VarArgs,
    KeywordOnly,
    VarKeywords,
}

struct Param {
    name: String,
    kind: Kind,
    /// `None`: unbound when the call started (never expected for a parameter).
    value: Option<Py<PyAny>>,
    probe: Option<Probe>,
    /// The value's snapshot when the call started, when it can rebuild the value.
    snapshot: Option<Vec<u8>>,
}

/// One kept call.
pub struct Kept {
    function: Py<PyAny>,
    params: Vec<Param>,
}

static KEPT: Mutex<Vec<(CallRef, Kept)>> = Mutex::new(Vec::new());

fn lock() -> std::sync::MutexGuard<'static, Vec<(CallRef, Kept)>> {
    KEPT.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Keeps `call` (running `code` in the current frame, parameters named `params`).
///
/// # Safety
/// GIL held; the current frame is the call's, just started; `code` and `params` are live.
pub unsafe fn offer(call: CallRef, code: *mut PyObject, params: &[*mut PyObject]) {
    if lock().len() >= MAX_KEPT {
        return;
    }
    // SAFETY: guaranteed by the caller.
    let py = unsafe { Python::assume_attached() };
    // SAFETY: `code` is live; a borrowed reference becomes an owned one.
    let code = unsafe { Bound::from_borrowed_ptr(py, code) };
    // SAFETY: GIL held; the frame is the call's.
    let frame = unsafe { ffi::PyEval_GetFrame() };
    if frame.is_null() {
        return;
    }
    let Some(function) = function_of(py, &code) else {
        return;
    };
    // SAFETY: `code` is a live code object.
    let (positional, keyword_only, flags) = unsafe {
        (
            int_attr(code.as_ptr(), c"co_argcount").unwrap_or(0),
            int_attr(code.as_ptr(), c"co_kwonlyargcount").unwrap_or(0),
            int_attr(code.as_ptr(), c"co_flags").unwrap_or(0),
        )
    };
    // `params` is in signature order: positional, *args, keyword-only, **kwargs.
    let mut kinds = Vec::new();
    kinds.extend(std::iter::repeat_n(
        Kind::Positional,
        usize::try_from(positional).unwrap_or(0),
    ));
    if flags & CO_VARARGS != 0 {
        kinds.push(Kind::VarArgs);
    }
    kinds.extend(std::iter::repeat_n(
        Kind::KeywordOnly,
        usize::try_from(keyword_only).unwrap_or(0),
    ));
    if flags & CO_VARKEYWORDS != 0 {
        kinds.push(Kind::VarKeywords);
    }
    let mut kept = Vec::with_capacity(params.len());
    for (&name, kind) in params.iter().zip(kinds) {
        // SAFETY: GIL held; `name` is a live str; a new reference or NULL with an error.
        let value = unsafe { ffi::PyFrame_GetVar(frame, name) };
        let value = if value.is_null() {
            // SAFETY: GIL held.
            unsafe { ffi::PyErr_Clear() };
            None
        } else {
            // SAFETY: a new reference we own.
            Some(unsafe { Bound::from_owned_ptr(py, value) })
        };
        let (probe, snapshot) = match value.as_ref().map(|v| probe(py, v)) {
            Some((probe, snapshot)) => (Some(probe), snapshot),
            None => (None, None),
        };
        kept.push(Param {
            // SAFETY: a live str.
            name: unsafe { str_of(name) }.unwrap_or_default(),
            kind,
            probe,
            snapshot,
            value: value.map(Bound::unbind),
        });
    }
    lock().push((
        call,
        Kept {
            function: function.unbind(),
            params: kept,
        },
    ));
}

/// The function object running `code`: the only one, or (closures) the first; `None` when the
/// code registry knows none.
fn function_of<'py>(py: Python<'py>, code: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
    crate::functions::functions_of(py, code).into_iter().next()
}

/// A probe of `value` (see `fever_core::replay::Probe`), and for a plain value its snapshot
/// when that can rebuild it.
pub fn probe(py: Python<'_>, value: &Bound<'_, PyAny>) -> (Probe, Option<Vec<u8>>) {
    let kind = py
        .import("fever._replay")
        .and_then(|m| m.call_method1("probe_kind", (value,)));
    match kind {
        Ok(kind) if !kind.is_none() => {
            let what: String = kind
                .get_item(0)
                .and_then(|k| k.extract())
                .unwrap_or_default();
            let position: Option<i64> = kind.get_item(1).and_then(|p| p.extract()).unwrap_or(None);
            let probe = if what == "file" {
                let closed: bool = kind.get_item(2).and_then(|c| c.extract()).unwrap_or(false);
                Probe::File { position, closed }
            } else {
                let state = kind.get_item(2).map_or(0, |locals| snapshot(&locals).0);
                Probe::Generator { position, state }
            };
            (probe, None)
        }
        other => {
            if other.is_err() {
                // A probe that fails (never expected) falls back to the value's hash.
                // SAFETY: GIL held.
                unsafe { ffi::PyErr_Clear() };
            }
            let (hash, bytes) = snapshot(value);
            (Probe::Value { hash }, bytes)
        }
    }
}

/// Buffers up to this size are copied into a kept argument's snapshot, so a replay can rebuild
/// one its call changed: these snapshots are kept in memory for a replay, not written at every
/// call like a trace's (whose `--snapshot-bytes` default is smaller).
const KEPT_BYTES: usize = 1 << 20;

/// The structural hash of `value`'s snapshot, and the snapshot if it can rebuild the value.
fn snapshot(value: &Bound<'_, PyAny>) -> (u64, Option<Vec<u8>>) {
    let mut bytes = Vec::new();
    let limits = SnapshotLimits {
        hash_over_bytes: KEPT_BYTES,
        ..SnapshotLimits::default()
    };
    // SAFETY: the GIL is held (we have a Bound); `value` is live.
    let snapped = unsafe { snapshot_value(value.as_ptr(), &limits, &mut bytes) };
    (snapped.hash, snapped.faithful.then_some(bytes))
}

/// What a replay of a kept call needs.
pub struct Call<'py> {
    pub function: Bound<'py, PyAny>,
    pub args: Bound<'py, PyTuple>,
    pub kwargs: Bound<'py, PyDict>,
    /// Arguments that may not be what the call first got.
    pub notes: Vec<ArgNote>,
}

/// The kept `call`, ready to run again: its function, positional and keyword arguments, and the
/// notes from probing each argument again now. `Err`: why it cannot be replayed.
pub fn prepare<'py>(py: Python<'py>, call: &CallRef) -> Result<Call<'py>, String> {
    let guard = lock();
    let answers = |c: &CallRef| super::names::answers_to(&c.function, &call.function);
    let Some((_, kept)) = guard
        .iter()
        .find(|(c, _)| c.number == call.number && answers(c))
    else {
        let kept: Vec<String> = guard
            .iter()
            .filter(|(c, _)| answers(c))
            .map(|(c, _)| format!("#{}", c.number))
            .collect();
        return Err(if kept.is_empty() {
            format!("the arguments of {call} were not kept (it was not called, or its function object was not found)")
        } else {
            format!(
                "the arguments of {call} were not kept (kept calls: {})",
                kept.join(", ")
            )
        });
    };
    let function = kept.function.bind(py).clone();
    let mut args = Vec::new();
    let kwargs = PyDict::new(py);
    let mut notes = Vec::new();
    for param in &kept.params {
        let Some(mut value) = param.value.as_ref().map(|v| v.bind(py).clone()) else {
            notes.push(ArgNote {
                name: param.name.clone(),
                reason: "it had no value when the call started; left out".into(),
            });
            continue;
        };
        if let Some(then) = &param.probe {
            if let Some(difference) = then.difference(&probe(py, &value).0) {
                let rebuilt = match (difference, &param.snapshot) {
                    (Difference::Changed, Some(snapshot)) => {
                        crate::cache::disk::rebuild(py, snapshot).ok()
                    }
                    _ => None,
                };
                let reason = if let Some(rebuilt) = rebuilt {
                    value = rebuilt;
                    "it was changed after the call started; the replay gets a copy rebuilt from its snapshot at the call's start".to_owned()
                } else {
                    difference.to_string()
                };
                notes.push(ArgNote {
                    name: param.name.clone(),
                    reason,
                });
            }
        }
        let added = match param.kind {
            Kind::Positional => {
                args.push(value);
                Ok(())
            }
            Kind::VarArgs => value
                .try_iter()
                .and_then(|mut items| items.try_for_each(|item| item.map(|i| args.push(i)))),
            Kind::KeywordOnly => kwargs.set_item(&param.name, value),
            Kind::VarKeywords => value
                .cast::<PyDict>()
                .map_err(PyErr::from)
                .and_then(|d| kwargs.update(d.as_mapping())),
        };
        added.map_err(|err| format!("cannot pass argument {}: {err}", param.name))?;
    }
    let args = PyTuple::new(py, args).map_err(|err| err.to_string())?;
    Ok(Call {
        function,
        args,
        kwargs,
        notes,
    })
}
