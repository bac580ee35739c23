//! Facts about code objects read through the C API (GIL held, nothing raised): parameter
//! names, a content hash that ignores line numbers, names of things.

use fever_core::parameters::ParameterLayout;
use pyo3::ffi::{self, PyObject, Py_ssize_t};
use xxhash_rust::xxh3::Xxh3;

use crate::compat::{CO_VARARGS, CO_VARKEYWORDS};

/// The code's parameter names as owned references, in signature order: positional, `*args`,
/// keyword-only, `**kwargs` (`co_varnames` holds them as positional, keyword-only, `*args`,
/// `**kwargs`).
pub(crate) unsafe fn parameter_names(code: *mut PyObject) -> Vec<*mut PyObject> {
    // SAFETY: guaranteed by the caller.
    unsafe {
        let flags = int_attr(code, c"co_flags").unwrap_or(0);
        let count = |attr| usize::try_from(int_attr(code, attr).unwrap_or(0)).unwrap_or(0);
        let order = ParameterLayout {
            positional: count(c"co_argcount"),
            keyword_only: count(c"co_kwonlyargcount"),
            varargs: flags & CO_VARARGS != 0,
            varkw: flags & CO_VARKEYWORDS != 0,
            ..ParameterLayout::default()
        }
        .signature_order();
        let names = ffi::PyObject_GetAttrString(code, c"co_varnames".as_ptr());
        if names.is_null() {
            ffi::PyErr_Clear();
            return Vec::new();
        }
        let mut out = Vec::new();
        if ffi::PyTuple_Check(names) != 0 {
            let len = ffi::PyTuple_GET_SIZE(names);
            for i in order {
                let Ok(i) = Py_ssize_t::try_from(i) else {
                    break;
                };
                if i >= len {
                    break;
                }
                let name = ffi::PyTuple_GET_ITEM(names, i);
                ffi::Py_INCREF(name);
                out.push(name);
            }
        }
        ffi::Py_DECREF(names);
        out
    }
}

/// A content hash of the code that ignores where it sits (file, line numbers): bytecode, names,
/// and constants (nested code objects recursively).
pub(crate) unsafe fn code_hash(code: *mut PyObject) -> u64 {
    let mut h = Xxh3::new();
    // SAFETY: guaranteed by the caller.
    unsafe { hash_code_into(code, &mut h, 0) };
    h.digest()
}

pub(crate) unsafe fn hash_code_into(code: *mut PyObject, h: &mut Xxh3, depth: u32) {
    // SAFETY: guaranteed by the caller (GIL held, `code` a code object).
    unsafe {
        for attr in [
            c"co_code",
            c"co_names",
            c"co_varnames",
            c"co_freevars",
            c"co_consts",
        ] {
            let value = ffi::PyObject_GetAttrString(code, attr.as_ptr());
            if value.is_null() {
                ffi::PyErr_Clear();
                continue;
            }
            if ffi::PyBytes_Check(value) != 0 {
                let len = usize::try_from(ffi::PyBytes_Size(value)).unwrap_or(0);
                h.update(std::slice::from_raw_parts(
                    ffi::PyBytes_AsString(value).cast::<u8>(),
                    len,
                ));
            } else if ffi::PyTuple_Check(value) != 0 {
                for i in 0..ffi::PyTuple_GET_SIZE(value) {
                    let item = ffi::PyTuple_GET_ITEM(value, i);
                    if ffi::PyCode_Check(item) != 0 && depth < 16 {
                        hash_code_into(item, h, depth + 1);
                    } else if ffi::PyFrozenSet_Check(item) != 0 {
                        // Its order follows the str hashes, which differ between interpreters
                        // (PYTHONHASHSEED): the same code in a spawned child hashes the same.
                        for text in sorted_reprs(item) {
                            h.update(text.as_bytes());
                            h.update(&[0xfe]);
                        }
                    } else if let Some(text) = repr_of(item) {
                        h.update(text.as_bytes());
                    }
                    h.update(&[0xff]);
                }
            }
            ffi::Py_DECREF(value);
        }
    }
}

/// The reprs of the items of `set` (a frozenset), sorted. Safety: GIL held, `set` a frozenset.
unsafe fn sorted_reprs(set: *mut PyObject) -> Vec<String> {
    let mut out = Vec::new();
    // SAFETY: guaranteed by the caller; PyObject_GetIter returns a new reference, PyIter_Next
    // new references or NULL at the end.
    unsafe {
        let iter = ffi::PyObject_GetIter(set);
        if iter.is_null() {
            ffi::PyErr_Clear();
            return out;
        }
        loop {
            let item = ffi::PyIter_Next(iter);
            if item.is_null() {
                break;
            }
            if let Some(text) = repr_of(item) {
                out.push(text);
            }
            ffi::Py_DECREF(item);
        }
        ffi::PyErr_Clear();
        ffi::Py_DECREF(iter);
    }
    out.sort_unstable();
    out
}

/// The globals of the frame running now, a new reference (NULL when there is no frame).
///
/// # Safety
/// GIL held.
pub(crate) unsafe fn current_globals() -> *mut PyObject {
    // SAFETY: GIL held (caller); PyFrame_GetGlobals returns a new reference.
    unsafe {
        let frame = ffi::PyEval_GetFrame();
        if frame.is_null() {
            std::ptr::null_mut()
        } else {
            ffi::PyFrame_GetGlobals(frame)
        }
    }
}

/// `module.qualname` of `code`, run by the current frame (its module from the frame's
/// globals).
///
/// # Safety
/// GIL held; `code` live; the current frame runs it.
pub(crate) unsafe fn running_name(code: *mut PyObject) -> String {
    // SAFETY: guaranteed by the caller.
    unsafe {
        let globals = current_globals();
        let module = module_name(globals);
        ffi::Py_XDECREF(globals);
        let qualname = str_attr(code, c"co_qualname").unwrap_or_default();
        format!("{module}.{qualname}")
    }
}

/// `globals["__name__"]`, or `?` when unknown.
pub(crate) unsafe fn module_name(globals: *mut PyObject) -> String {
    if globals.is_null() {
        return "?".to_owned();
    }
    // SAFETY: guaranteed by the caller; PyDict_GetItemString returns a borrowed reference.
    unsafe {
        if ffi::PyDict_Check(globals) == 0 {
            return "?".to_owned();
        }
        let name = ffi::PyDict_GetItemString(globals, c"__name__".as_ptr());
        if name.is_null() {
            return "?".to_owned();
        }
        str_of(name).unwrap_or_else(|| "?".to_owned())
    }
}

pub(crate) unsafe fn str_attr(obj: *mut PyObject, name: &std::ffi::CStr) -> Option<String> {
    // SAFETY: guaranteed by the caller.
    unsafe {
        let value = ffi::PyObject_GetAttrString(obj, name.as_ptr());
        if value.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let s = str_of(value);
        ffi::Py_DECREF(value);
        s
    }
}

pub(crate) unsafe fn int_attr(obj: *mut PyObject, name: &std::ffi::CStr) -> Option<i64> {
    // SAFETY: guaranteed by the caller.
    unsafe {
        let value = ffi::PyObject_GetAttrString(obj, name.as_ptr());
        if value.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let n = ffi::PyLong_AsLongLong(value);
        ffi::Py_DECREF(value);
        if n == -1 && !ffi::PyErr_Occurred().is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        Some(n)
    }
}

/// A `str` object's text (None for other objects).
pub(crate) unsafe fn str_of(obj: *mut PyObject) -> Option<String> {
    // SAFETY: guaranteed by the caller.
    unsafe {
        if ffi::PyUnicode_Check(obj) == 0 {
            return None;
        }
        let mut size: Py_ssize_t = 0;
        let data = ffi::PyUnicode_AsUTF8AndSize(obj, &raw mut size);
        if data.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let bytes =
            std::slice::from_raw_parts(data.cast::<u8>(), usize::try_from(size).unwrap_or(0));
        Some(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// The UTF-8 of a str (exact or subclass); `None` (error cleared) for anything else.
///
/// # Safety
/// GIL held; `s` is NULL or a live object that outlives `'a`.
pub(crate) unsafe fn utf8<'a>(s: *mut PyObject) -> Option<&'a str> {
    // SAFETY: GIL held; `s` checked before use.
    unsafe {
        if s.is_null() || ffi::PyUnicode_Check(s) == 0 {
            return None;
        }
        let mut len: ffi::Py_ssize_t = 0;
        let data = ffi::PyUnicode_AsUTF8AndSize(s, &raw mut len);
        if data.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let bytes = std::slice::from_raw_parts(data.cast::<u8>(), usize::try_from(len).ok()?);
        // CPython's UTF-8 is valid UTF-8.
        Some(std::str::from_utf8_unchecked(bytes))
    }
}

/// `repr(obj)` for a code constant (literals, tuples and frozensets of them: C reprs).
pub(crate) unsafe fn repr_of(obj: *mut PyObject) -> Option<String> {
    // SAFETY: guaranteed by the caller.
    unsafe {
        let r = ffi::PyObject_Repr(obj);
        if r.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let s = str_of(r);
        ffi::Py_DECREF(r);
        s
    }
}
