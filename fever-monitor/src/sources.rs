//! The text each project module is running: recorded when the module's code is executed (an audit
//! hook on `exec` sees every import), replaced after each applied save. A reload diffs the saved
//! file against this text, never against an older save or a guess.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use fever_core::{decode_source, Error as SourceError, Index};
use pyo3::ffi::{self, PyObject};
use pyo3::prelude::*;

use crate::compat;

/// A module's running text and its index.
#[derive(Debug, Clone)]
pub struct Source {
    pub text: String,
    pub index: Index,
}

static SOURCES: Mutex<Option<HashMap<String, Source>>> = Mutex::new(None);
/// Per file, a hash of the last saved bytes that were rejected (error already reported).
static REJECTED: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);
/// Set while fever executes code itself, so the audit hook ignores fever's own `exec` calls.
static APPLYING: AtomicBool = AtomicBool::new(false);

fn sources() -> std::sync::MutexGuard<'static, Option<HashMap<String, Source>>> {
    SOURCES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Installs the audit hook that records the text of each project module as it is imported.
pub fn install(py: Python<'_>) -> PyResult<()> {
    *sources() = Some(HashMap::new());
    // SAFETY: the hook has the signature CPython expects and never raises.
    if unsafe { compat::PySys_AddAuditHook(on_audit_event, std::ptr::null_mut()) } < 0 {
        return Err(PyErr::fetch(py));
    }
    Ok(())
}

/// The running text of `file`, if it was recorded.
pub fn get(file: &str) -> Option<Source> {
    sources().as_ref()?.get(file).cloned()
}

/// Records `text` as what `file` is running now.
pub fn set(file: &str, text: String) {
    accept(file);
    let index = Index::build(&text);
    if let Some(map) = sources().as_mut() {
        map.insert(file.to_owned(), Source { text, index });
    }
}

/// Remembers that `bytes` saved to `file` were rejected; returns false when the same bytes were
/// already rejected last time (so the error is reported once, not at every event of one save).
pub fn reject(file: &str, bytes: &[u8]) -> bool {
    let hash = content_hash(bytes);
    let mut rejected = REJECTED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    rejected
        .get_or_insert_with(HashMap::new)
        .insert(file.to_owned(), hash)
        != Some(hash)
}

/// Forgets the rejected save of `file` (a good save applied).
pub fn accept(file: &str) {
    if let Some(rejected) = REJECTED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_mut()
    {
        rejected.remove(file);
    }
}

fn content_hash(bytes: &[u8]) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

/// Decodes a source file's bytes as Python does (PEP 263); other encodings than UTF-8, ASCII and
/// Latin-1 go through Python's own decoder.
pub fn decode(py: Python<'_>, bytes: &[u8]) -> Result<String, String> {
    match decode_source(bytes) {
        Ok(text) => Ok(text),
        Err(SourceError::ForeignEncoding(_)) => py
            .import("importlib.util")
            .and_then(|util| {
                util.getattr("decode_source")?
                    .call1((pyo3::types::PyBytes::new(py, bytes),))?
                    .extract()
            })
            .map_err(|err| err.value(py).to_string()),
        Err(err) => Err(err.to_string()),
    }
}

/// Runs `f` with fever's own `exec` calls hidden from the audit hook.
pub fn applying<T>(f: impl FnOnce() -> T) -> T {
    let was = APPLYING.swap(true, Ordering::SeqCst);
    let result = f();
    APPLYING.store(was, Ordering::SeqCst);
    result
}

unsafe extern "C" fn on_audit_event(
    event: *const c_char,
    args: *mut PyObject,
    _data: *mut c_void,
) -> c_int {
    // SAFETY: CPython passes a NUL-terminated event name and a tuple, with the GIL held.
    unsafe {
        if CStr::from_ptr(event).to_bytes() != b"exec" || APPLYING.load(Ordering::Relaxed) {
            return 0;
        }
        if ffi::PyTuple_Check(args) == 0 || ffi::PyTuple_Size(args) < 1 {
            return 0;
        }
        let code = ffi::PyTuple_GetItem(args, 0);
        if code.is_null() || ffi::PyCode_Check(code) == 0 {
            return 0;
        }
        let pending = ffi::PyErr_GetRaisedException();
        let py = Python::assume_attached();
        record_module_code(py, &Bound::from_borrowed_ptr(py, code));
        if !pending.is_null() {
            ffi::PyErr_SetRaisedException(pending);
        }
    }
    0
}

fn record_module_code(py: Python<'_>, code: &Bound<'_, PyAny>) {
    let Ok(name) = code
        .getattr(pyo3::intern!(py, "co_name"))
        .and_then(|n| n.extract::<String>())
    else {
        return;
    };
    if name != "<module>" {
        return;
    }
    let Some(file) = crate::functions::project_file_of(code) else {
        return;
    };
    if let Ok(bytes) = std::fs::read(&file) {
        if let Ok(text) = decode(py, &bytes) {
            set(&file, text);
        }
    }
}
