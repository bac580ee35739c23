//! `CPython` C-API pieces that pyo3-ffi 0.30 does not declare. All of them exist with the same
//! signature and meaning in 3.12, 3.13, 3.14 and 3.15 (checked against each version's headers).

use std::ffi::{c_char, c_int, c_void};

use pyo3::ffi::PyObject;

/// `PyFunction_WatchEvent` (Include/cpython/funcobject.h): the order of `PY_FOREACH_FUNC_EVENT`.
/// Later events (`MODIFY_DEFAULTS`, `MODIFY_KWDEFAULTS`, and 3.15's `MODIFY_QUALNAME`) are ignored.
pub const FUNC_EVENT_CREATE: c_int = 0;
pub const FUNC_EVENT_DESTROY: c_int = 1;
pub const FUNC_EVENT_MODIFY_CODE: c_int = 2;

/// `PyFunction_WatchCallback`.
pub type FunctionWatchCallback =
    unsafe extern "C" fn(event: c_int, func: *mut PyObject, new_value: *mut PyObject) -> c_int;

/// `PyDict_WatchCallback` (the event is a `PyDict_WatchEvent`).
pub type DictWatchCallback = unsafe extern "C" fn(
    event: c_int,
    dict: *mut PyObject,
    key: *mut PyObject,
    new_value: *mut PyObject,
) -> c_int;

/// `Py_AuditHookFunction`.
pub type AuditHook =
    unsafe extern "C" fn(event: *const c_char, args: *mut PyObject, data: *mut c_void) -> c_int;

unsafe extern "C" {
    /// Registers a function watcher; returns its id or -1 with an exception set.
    pub fn PyFunction_AddWatcher(callback: FunctionWatchCallback) -> c_int;
    /// Registers a dict watcher; returns its id or -1 with an exception set.
    pub fn PyDict_AddWatcher(callback: DictWatchCallback) -> c_int;
    /// Adds a C audit hook (cannot be removed).
    pub fn PySys_AddAuditHook(hook: AuditHook, data: *mut c_void) -> c_int;
}

/// `freefunc`: what `CPython` calls with a code object's extra slot value when the code dies.
pub type FreeFunc = unsafe extern "C" fn(*mut c_void);

unsafe extern "C" {
    /// Reserves a per-code-object extra slot (`co_extra`) for this process; returns its index.
    pub fn PyUnstable_Eval_RequestCodeExtraIndex(free: Option<FreeFunc>) -> pyo3::ffi::Py_ssize_t;
    /// Reads a code object's extra slot (NULL when never set); 0 on success.
    pub fn PyUnstable_Code_GetExtra(
        code: *mut PyObject,
        index: pyo3::ffi::Py_ssize_t,
        extra: *mut *mut c_void,
    ) -> c_int;
    /// Sets a code object's extra slot; 0 on success, -1 with an exception set.
    pub fn PyUnstable_Code_SetExtra(
        code: *mut PyObject,
        index: pyo3::ffi::Py_ssize_t,
        extra: *mut c_void,
    ) -> c_int;
}

/// `PyCF_SOURCE_IS_UTF8` (Include/cpython/compile.h): set by the built-in `compile` on every call.
pub const PY_CF_SOURCE_IS_UTF8: c_int = 0x0100;

/// `co_flags` bits that add a parameter after the positional and keyword-only ones
/// (Include/cpython/code.h).
pub const CO_VARARGS: i64 = 0x0004;
pub const CO_VARKEYWORDS: i64 = 0x0008;

/// `co_flags` of generators, coroutines and async generators (`CO_GENERATOR`,
/// `CO_COROUTINE`, `CO_ITERABLE_COROUTINE`, `CO_ASYNC_GENERATOR`): their calls suspend and
/// resume.
pub const CO_SUSPENDS: i64 = 0x0020 | 0x0080 | 0x0100 | 0x0200;
