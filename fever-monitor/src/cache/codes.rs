//! The call cache's table of project code objects: content hash, name, parameters, whether
//! calls of it can be cached, and how many of its calls this run had their arguments captured.
//!
//! The monitoring engine decides which code is the project's and keeps the cache's entry index
//! for each (`crate::engine::codes`).

use fever_core::cache::trampoline::DISPATCH;
use fever_core::cache::{CacheIndex, CodeSlot, Signature};
use pyo3::ffi::{self, PyObject};

use crate::code_object::{code_hash, int_attr, parameter_names, str_attr, str_of};
use crate::compat::{CO_SUSPENDS, CO_VARARGS, CO_VARKEYWORDS};
use crate::engine::{codes, Slot};

/// `co_flags` of function bodies (module and class bodies lack it).
const CO_OPTIMIZED: i64 = 0x0001;

/// One project code object.
pub struct CodeInfo {
    /// The (file, qualified name) the cache index follows it by.
    pub slot: CodeSlot,
    /// Content hash (ignores line numbers).
    pub hash: u64,
    pub qualname: String,
    /// What a call's result depends on besides global state, as names to read from its frame
    /// (owned `str` objects): the parameters in signature order, then the free variables
    /// (a closure's cells are arguments the caller does not see).
    pub arg_objects: Vec<*mut PyObject>,
    /// The same names as Rust strings.
    pub arg_names: Vec<String>,
    /// `co_names`: the global (and attribute) names its code reads.
    pub reads: Vec<String>,
    /// The parameters as the trampoline needs them.
    pub signature: Signature,
    /// Why its calls can't be cached at all (a generator...), if so.
    pub never: Option<&'static str>,
    /// Module or class body code: never cached, and not worth a word.
    pub body: bool,
    /// Calls this run whose arguments were captured at their start.
    pub captured: u32,
}

/// Every project code object the cache has seen.
#[derive(Default)]
pub struct Codes {
    pub infos: Vec<CodeInfo>,
}

impl Codes {
    /// The entry of `code`, classifying it on first sight; `None` for library code.
    /// Safety: GIL held, `code` a live object, no exception set.
    pub unsafe fn entry<V>(
        &mut self,
        code: *mut PyObject,
        index: &mut CacheIndex<V>,
    ) -> Option<usize> {
        // SAFETY: guaranteed by the caller.
        let own = unsafe {
            codes::resolve(code, Slot::Cache, || {
                self.classify(code, index)
                    .and_then(|i| u32::try_from(i).ok())
            })
        };
        own.map(|i| i as usize)
    }

    /// Takes in a project code seen for the first time: its new entry, or `None` for the
    /// cache's own trampolines. Safety: GIL held, `code` a live code object, no exception set.
    pub unsafe fn classify<V>(
        &mut self,
        code: *mut PyObject,
        index: &mut CacheIndex<V>,
    ) -> Option<usize> {
        // SAFETY: guaranteed by the caller.
        let file = unsafe { str_attr(code, c"co_filename") }.unwrap_or_default();
        let i = self.infos.len();
        // SAFETY: guaranteed by the caller.
        let reads = unsafe { names_of(code, c"co_names") };
        // A trampoline carries its function's file name but is the cache's own code.
        if reads.iter().any(|name| name == DISPATCH) {
            return None;
        }
        // SAFETY: guaranteed by the caller.
        let (qualname, hash, flags, mut arg_objects, signature) = unsafe {
            (
                str_attr(code, c"co_qualname").unwrap_or_default(),
                code_hash(code),
                int_attr(code, c"co_flags").unwrap_or(0),
                parameter_names(code),
                signature(code),
            )
        };
        for name in &signature.freevars {
            // SAFETY: GIL held; a new reference to an interned str (or NULL on failure).
            let object = unsafe {
                ffi::PyUnicode_InternFromString(
                    std::ffi::CString::new(name.as_str())
                        .unwrap_or_default()
                        .as_ptr(),
                )
            };
            if object.is_null() {
                // SAFETY: GIL held.
                unsafe { ffi::PyErr_Clear() };
            } else {
                arg_objects.push(object);
            }
        }
        let arg_names = arg_objects
            .iter()
            // SAFETY: each is a live str we own a reference to.
            .map(|&name| unsafe { str_of(name) }.unwrap_or_default())
            .collect();
        let never = if flags & CO_SUSPENDS != 0 {
            Some("it is a generator or coroutine")
        } else if flags & CO_OPTIMIZED == 0 {
            Some("it is module or class body code")
        } else if signature.name.starts_with('<') {
            Some("it is a lambda")
        } else {
            None
        };
        let slot = index.slot(&file, &qualname);
        index.code_seen(slot, hash);
        self.infos.push(CodeInfo {
            slot,
            hash,
            qualname,
            arg_objects,
            arg_names,
            reads,
            signature,
            never,
            body: flags & CO_OPTIMIZED == 0,
            captured: 0,
        });
        Some(i)
    }
}

impl Drop for Codes {
    fn drop(&mut self) {
        // Dropped with the GIL held (the cache stops from Python).
        for info in &self.infos {
            for &name in &info.arg_objects {
                // SAFETY: we own these references; the GIL is held.
                unsafe { ffi::Py_DECREF(name) };
            }
        }
    }
}

/// The strings of a code object's tuple attribute (`co_names`, `co_varnames`...).
/// Safety: GIL held, `code` a code object.
unsafe fn names_of(code: *mut PyObject, attr: &std::ffi::CStr) -> Vec<String> {
    // SAFETY: guaranteed by the caller.
    unsafe {
        let tuple = ffi::PyObject_GetAttrString(code, attr.as_ptr());
        if tuple.is_null() {
            ffi::PyErr_Clear();
            return Vec::new();
        }
        let mut out = Vec::new();
        if ffi::PyTuple_Check(tuple) != 0 {
            for i in 0..ffi::PyTuple_GET_SIZE(tuple) {
                out.push(str_of(ffi::PyTuple_GET_ITEM(tuple, i)).unwrap_or_default());
            }
        }
        ffi::Py_DECREF(tuple);
        out
    }
}

/// The code's parameters split by kind, and its free variables.
unsafe fn signature(code: *mut PyObject) -> Signature {
    // SAFETY: guaranteed by the caller (GIL held, `code` a code object).
    unsafe {
        let names = |attr: &std::ffi::CStr| names_of(code, attr);
        let count =
            |attr: &std::ffi::CStr| usize::try_from(int_attr(code, attr).unwrap_or(0)).unwrap_or(0);
        let flags = int_attr(code, c"co_flags").unwrap_or(0);
        let varnames = names(c"co_varnames");
        let (posonly, positional, kwonly) = (
            count(c"co_posonlyargcount"),
            count(c"co_argcount"),
            count(c"co_kwonlyargcount"),
        );
        let take = |from: usize, n: usize| -> Vec<String> {
            varnames.iter().skip(from).take(n).cloned().collect()
        };
        let mut next = positional + kwonly;
        let varargs = (flags & CO_VARARGS != 0).then(|| {
            next += 1;
            varnames.get(next - 1).cloned().unwrap_or_default()
        });
        let varkw =
            (flags & CO_VARKEYWORDS != 0).then(|| varnames.get(next).cloned().unwrap_or_default());
        Signature {
            name: str_attr(code, c"co_name").unwrap_or_default(),
            positional_only: take(0, posonly),
            positional: take(posonly, positional.saturating_sub(posonly)),
            varargs,
            keyword_only: take(positional, kwonly),
            varkw,
            freevars: names(c"co_freevars"),
        }
    }
}
