//! The text each project module is running: recorded when the module's code is executed (an audit
//! hook on `exec` sees every import), advanced after each applied save. A reload diffs the saved
//! file against this text, never against an older save or a guess. A save edits the running
//! text's index in place (`fever_core::reindex`), and the texts are shared with the undo history,
//! so a save of a big file copies neither.
//!
//! The text recorded is the one the import read, not the file as it is when its code runs: a
//! save between the two (a worker starting while the file is saved) would otherwise be taken
//! for the running text while the old code runs. The same hook sees what the import read: the
//! source it compiles (`compile` event), or, for code loaded from `__pycache__`, the source file
//! read when the cached code is opened (`open` event: the importer checked the cached code
//! against the source's size and time a moment before). The file is read when its code runs
//! only when neither was seen (a loader of its own).

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use fever_core::source::{from_import, FromImport};
use fever_core::{decode_source_owned, Index, Kind, Project, Reindexed, SourceError};
use pyo3::ffi::{self, PyObject};
use pyo3::prelude::*;

use crate::code_object::utf8;
use crate::compat;

/// A module's running text and its index.
#[derive(Debug, Clone)]
pub struct Source {
    pub text: Arc<String>,
    pub index: Index,
}

/// Shared, so a reload reads the running text without copying it.
static SOURCES: Mutex<Option<HashMap<String, Arc<Source>>>> = Mutex::new(None);
/// Whose modules are recorded.
static PROJECT: OnceLock<Project> = OnceLock::new();
/// Per file, a hash of the last saved bytes that were rejected (error already reported).
static REJECTED: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);
/// Set while fever executes code itself, so the audit hook ignores fever's own `exec` calls
/// (of the file being reloaded); modules that code imports are recorded like any other.
static APPLYING: AtomicBool = AtomicBool::new(false);
static APPLYING_FILE: Mutex<Option<String>> = Mutex::new(None);
/// Per file, what an import read of it, until its code runs.
static READ: Mutex<Option<HashMap<String, Read>>> = Mutex::new(None);

thread_local! {
    /// Set while fever compiles code of a project file itself (a save's definitions).
    static OWN_COMPILE: Cell<bool> = const { Cell::new(false) };
}

/// What an import read of a file, before its code runs.
enum Read {
    /// The source it compiled (`bytes` or `str`).
    Compiled(Py<PyAny>),
    /// The source file's bytes when the import opened its cached code.
    Cached(Vec<u8>),
}

fn read() -> std::sync::MutexGuard<'static, Option<HashMap<String, Read>>> {
    READ.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn sources() -> std::sync::MutexGuard<'static, Option<HashMap<String, Arc<Source>>>> {
    SOURCES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Installs the audit hook that records the text of each module of `project` as it is imported
/// (once per process).
pub fn install(py: Python<'_>, project: Project) -> PyResult<()> {
    if PROJECT.set(project).is_err() {
        return Ok(());
    }
    *sources() = Some(HashMap::new());
    // SAFETY: the hook has the signature CPython expects and never raises.
    if unsafe { compat::PySys_AddAuditHook(on_audit_event, std::ptr::null_mut()) } < 0 {
        return Err(PyErr::fetch(py));
    }
    Ok(())
}

/// Records the text of the project's modules imported before [`install`] (a forkserver's
/// preloaded modules, in a child that joins fever later); returns how many there were.
pub fn record_loaded(py: Python<'_>) -> PyResult<usize> {
    let Some(project) = PROJECT.get() else {
        return Ok(0);
    };
    let modules = py
        .import("sys")?
        .getattr("modules")?
        .call_method0("copy")?
        .call_method0("values")?;
    let mut found = 0;
    for module in modules.try_iter()? {
        let Ok(file) = module?
            .getattr(pyo3::intern!(py, "__file__"))
            .and_then(|f| f.extract::<String>())
        else {
            continue;
        };
        if !project.contains_file(&file) || get(&file).is_some() {
            continue;
        }
        if let Ok(bytes) = std::fs::read(&file) {
            if let Ok(text) = decode(py, bytes) {
                set(&file, text);
                found += 1;
            }
        }
    }
    Ok(found)
}

/// The running text of `file`, if it was recorded.
pub fn get(file: &str) -> Option<Arc<Source>> {
    sources().as_ref()?.get(file).cloned()
}

/// The length of the text `file` is running, if it was recorded.
pub fn running_len(file: &str) -> Option<usize> {
    Some(sources().as_ref()?.get(file)?.text.len())
}

/// The module-level `from m import ...` statements of the text `file` is running.
pub fn from_imports(file: &str) -> Vec<FromImport> {
    let guard = sources();
    let Some(source) = guard.as_ref().and_then(|map| map.get(file)) else {
        return Vec::new();
    };
    source
        .index
        .items
        .iter()
        .filter(|item| item.kind == Kind::Statement && item.keyword == "from")
        .filter_map(|item| from_import(item.text(&source.text)))
        .collect()
}

/// The shape hash ([`fever_core::Definition::shape_hash`]) of class `qualname` in the text
/// `file` is running (`None` when it has no such class or the text was not recorded).
pub fn class_shape(file: &str, qualname: &str) -> Option<u64> {
    let guard = sources();
    let source = guard.as_ref()?.get(file)?;
    let mut items = &source.index.items;
    let mut found = None;
    for name in qualname.split('.') {
        let class = items
            .iter()
            .find(|item| item.kind == Kind::Class && item.name == name)?;
        items = &class.children;
        found = Some(class.shape_hash());
    }
    found
}

/// Records `text` as what `file` is running now.
pub fn set(file: &str, text: String) {
    let index = Index::build(&text);
    let _ = accept(file);
    if let Some(map) = sources().as_mut() {
        map.insert(
            file.to_owned(),
            Arc::new(Source {
                text: Arc::new(text),
                index,
            }),
        );
    }
}

/// Records `text` as what `file` is running now, after a save applied: `running` (what
/// [`get`] gave) was running before, and `reindexed` turns its index into `text`'s.
pub fn advance(file: &str, running: Arc<Source>, text: Arc<String>, reindexed: Reindexed) {
    let _ = accept(file);
    let mut guard = sources();
    let Some(map) = guard.as_mut() else {
        return;
    };
    if map.get(file).is_some_and(|now| Arc::ptr_eq(now, &running)) {
        map.remove(file);
    }
    // Nobody else holds it (the usual case): its index is edited where it is.
    let mut index =
        Arc::try_unwrap(running).map_or_else(|shared| shared.index.clone(), |s| s.index);
    reindexed.apply(&mut index);
    map.insert(file.to_owned(), Arc::new(Source { text, index }));
}

/// Remembers that the bytes saved to `file` (their [`content_hash`]) were rejected; returns
/// false when the same bytes were already rejected last time (so the error is reported once, not
/// at every event of one save).
pub fn reject(file: &str, hash: u64) -> bool {
    let mut rejected = REJECTED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    rejected
        .get_or_insert_with(HashMap::new)
        .insert(file.to_owned(), hash)
        != Some(hash)
}

/// Forgets the rejected save of `file` (a good save applied); true when there was one.
pub fn accept(file: &str) -> bool {
    REJECTED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_mut()
        .is_some_and(|rejected| rejected.remove(file).is_some())
}

/// A hash of a save's bytes, to tell a rejected save seen again.
pub fn content_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// Decodes a source file's bytes as Python does (PEP 263); other encodings than UTF-8, ASCII and
/// Latin-1 go through Python's own decoder. UTF-8 bytes become the text without a copy.
pub fn decode(py: Python<'_>, bytes: Vec<u8>) -> Result<String, String> {
    match decode_source_owned(bytes) {
        Ok(text) => Ok(text),
        Err((SourceError::ForeignEncoding(_), bytes)) => py
            .import("importlib.util")
            .and_then(|util| {
                util.getattr("decode_source")?
                    .call1((pyo3::types::PyBytes::new(py, &bytes),))?
                    .extract()
            })
            .map_err(|err| err.value(py).to_string()),
        Err((err, _)) => Err(err.to_string()),
    }
}

/// Runs `f` with fever's own `exec` calls of code compiled from `file` hidden from the audit
/// hook.
pub fn applying<T>(file: &str, f: impl FnOnce() -> T) -> T {
    let mut slot = APPLYING_FILE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let previous = slot.replace(file.to_owned());
    drop(slot);
    let was = APPLYING.swap(true, Ordering::SeqCst);
    let result = f();
    APPLYING.store(was, Ordering::SeqCst);
    *APPLYING_FILE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = previous;
    result
}

/// Runs `f`, a compile of fever's own (of a save's definitions), unseen by the audit hook.
pub fn own_compile<T>(f: impl FnOnce() -> T) -> T {
    let was = OWN_COMPILE.replace(true);
    let result = f();
    OWN_COMPILE.set(was);
    result
}

/// Is `file` the one fever is applying a save of?
fn is_applying(file: &str) -> bool {
    APPLYING.load(Ordering::Relaxed)
        && APPLYING_FILE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_deref()
            == Some(file)
}

unsafe extern "C" fn on_audit_event(
    event: *const c_char,
    args: *mut PyObject,
    _data: *mut c_void,
) -> c_int {
    // SAFETY: CPython passes a NUL-terminated event name and a tuple, with the GIL held.
    unsafe {
        let event = CStr::from_ptr(event).to_bytes();
        if !matches!(event, b"exec" | b"compile" | b"open") {
            return 0;
        }
        if ffi::PyTuple_Check(args) == 0 || ffi::PyTuple_Size(args) < 1 {
            return 0;
        }
        let first = ffi::PyTuple_GetItem(args, 0);
        if first.is_null() {
            return 0;
        }
        let pending = ffi::PyErr_GetRaisedException();
        let py = Python::assume_attached();
        match event {
            b"exec" if ffi::PyCode_Check(first) != 0 => {
                record_module_code(py, &Bound::from_borrowed_ptr(py, first));
            }
            b"compile" if ffi::PyTuple_Size(args) >= 2 => {
                let filename = ffi::PyTuple_GetItem(args, 1);
                if let Some(file) = utf8(filename) {
                    record_compiled(&Bound::from_borrowed_ptr(py, first), file);
                }
            }
            b"open" => {
                if let Some(path) = utf8(first).filter(|p| p.ends_with(".pyc")) {
                    record_cached_read(path);
                }
            }
            _ => {}
        }
        if !pending.is_null() {
            ffi::PyErr_SetRaisedException(pending);
        }
    }
    0
}

fn in_project(file: &str) -> bool {
    PROJECT
        .get()
        .is_some_and(|project| project.contains_file(file))
}

/// A `compile` of `source` as `file`: an import compiling the source it read (kept until the
/// module's code runs), unless fever compiles.
fn record_compiled(source: &Bound<'_, PyAny>, file: &str) {
    if OWN_COMPILE.get() || !in_project(file) {
        return;
    }
    let mut read = read();
    let read = read.get_or_insert_with(HashMap::new);
    if source.is_instance_of::<pyo3::types::PyBytes>()
        || source.is_instance_of::<pyo3::types::PyString>()
    {
        read.insert(file.to_owned(), Read::Compiled(source.clone().unbind()));
    } else {
        // An AST: what it was parsed from is unknown here.
        read.remove(file);
    }
}

/// An `open` of `path`, a `.pyc`: when it is the cached code of a project file
/// (`DIR/__pycache__/NAME.TAG.pyc` of `DIR/NAME.py`), the import checked it against the source
/// file a moment ago, and runs it if it matched: the source is read now.
fn record_cached_read(path: &str) {
    let pyc = Path::new(path);
    let Some(cache) = pyc.parent() else { return };
    if cache.file_name().is_none_or(|name| name != "__pycache__") {
        return;
    }
    let (Some(dir), Some(name)) = (cache.parent(), pyc.file_name().and_then(|n| n.to_str())) else {
        return;
    };
    let Some(stem) = name.split('.').next() else {
        return;
    };
    let Some(file) = dir.join(format!("{stem}.py")).to_str().map(str::to_owned) else {
        return;
    };
    if !in_project(&file) {
        return;
    }
    if let Ok(bytes) = std::fs::read(&file) {
        read()
            .get_or_insert_with(HashMap::new)
            .insert(file, Read::Cached(bytes));
    }
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
    let Ok(file) = code
        .getattr(pyo3::intern!(py, "co_filename"))
        .and_then(|f| f.extract::<String>())
    else {
        return;
    };
    if !in_project(&file) {
        return;
    }
    crate::watched::module_ran(&file);
    if is_applying(&file) {
        return;
    }
    let read = read().as_mut().and_then(|read| read.remove(&file));
    let text = match read {
        Some(Read::Compiled(source)) => {
            let source = source.into_bound(py);
            match source.cast::<pyo3::types::PyBytes>() {
                Ok(bytes) => decode(py, bytes.as_bytes().to_vec()),
                Err(_) => source.extract::<String>().map_err(|e| e.to_string()),
            }
        }
        Some(Read::Cached(bytes)) => decode(py, bytes),
        None => std::fs::read(&file)
            .map_err(|e| e.to_string())
            .and_then(|bytes| decode(py, bytes)),
    };
    if let Ok(text) = text {
        set(&file, text);
    }
}
