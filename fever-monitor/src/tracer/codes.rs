//! The tracer's table of code objects: which are the project's, the id each has in the trace,
//! what names its parameters have, and how often it was called.
//!
//! A code object's entry index is kept in its `co_extra` slot (see `extra_slot`).

use fever_core::trace::CodeInfo;
use fever_core::Project;
use pyo3::ffi::{self, PyObject, Py_ssize_t};

use crate::code_object::{code_hash, int_attr, module_name, parameter_names, str_attr, str_of};
use crate::compat;
use crate::extra_slot::ExtraSlot;
pub use crate::extra_slot::Lookup;

/// One project code object.
pub struct CodeEntry {
    /// Trace code id (the entry's index).
    pub id: u32,
    /// Parameter names (interned `str` objects, owned references), for reading arguments.
    pub arg_objects: Vec<*mut PyObject>,
    /// The same names as Rust strings, for snapshots.
    pub arg_names: Vec<String>,
    /// Calls started (exact).
    pub calls: u64,
    /// Calls whose events were recorded.
    pub recorded: u64,
    /// Byte offset of the code's first `RESUME` instruction (where a call starts running).
    pub first_resume: Option<u32>,
    /// What `fever replay` wants at this code's calls (`crate::replay::hooks`); 0 almost always.
    pub replay: u8,
}

/// Every code object the tracer has seen.
pub struct CodeTable {
    slot: ExtraSlot,
    /// `dis.opmap["RESUME"]` of this interpreter.
    resume_opcode: u8,
    project: Project,
    pub entries: Vec<CodeEntry>,
}

impl CodeTable {
    /// A table for code under `project`. The `co_extra` index is reserved once per process
    /// (`CPython` never gives indexes back), so later tables reuse it.
    pub fn new(project: Project, resume_opcode: u8) -> Self {
        static INDEX: std::sync::OnceLock<Py_ssize_t> = std::sync::OnceLock::new();
        Self {
            slot: ExtraSlot::reserve(&INDEX),
            resume_opcode,
            project,
            entries: Vec::new(),
        }
    }

    /// What `code` is. Safety: GIL held, `code` a live object.
    #[inline(always)]
    #[allow(clippy::inline_always)] // twice per call of the program
    pub unsafe fn lookup(&self, code: *mut PyObject) -> Lookup {
        // SAFETY: guaranteed by the caller.
        unsafe { self.slot.lookup(code) }
    }

    /// Classifies a code seen for the first time; for a project code, returns its new entry and
    /// the [`CodeInfo`] to announce. `globals` is the frame's globals (for the module name), or
    /// NULL. Safety: GIL held, `code` a live code object, no exception set.
    pub unsafe fn classify(
        &mut self,
        code: *mut PyObject,
        globals: *mut PyObject,
    ) -> Option<(usize, CodeInfo)> {
        // SAFETY: guaranteed by the caller.
        let file = unsafe { str_attr(code, c"co_filename") }.unwrap_or_default();
        let index = self.entries.len();
        // 3.14's `__annotate__` functions are the compiler's, never calls the user made.
        let project = !file.is_empty()
            && self.project.contains_file(&file)
            && u32::try_from(index).is_ok()
            // SAFETY: guaranteed by the caller.
            && !unsafe { compat::annotations::is_generated(code) };
        // SAFETY: guaranteed by the caller.
        if !unsafe { self.slot.mark(code, project.then_some(index)) } {
            return None;
        }
        if !project {
            return None;
        }
        let id = u32::try_from(index).ok()?;
        // SAFETY: guaranteed by the caller.
        let info = unsafe {
            CodeInfo {
                id,
                module: module_name(globals),
                qualname: str_attr(code, c"co_qualname").unwrap_or_default(),
                file,
                first_line: int_attr(code, c"co_firstlineno")
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(0),
                code_hash: code_hash(code),
            }
        };
        // SAFETY: guaranteed by the caller.
        let arg_objects = unsafe { parameter_names(code) };
        let arg_names = arg_objects
            .iter()
            // SAFETY: each is a live str object we own a reference to.
            .map(|&name| unsafe { str_of(name) }.unwrap_or_default())
            .collect();
        // SAFETY: guaranteed by the caller.
        let first_resume = unsafe { first_instruction(code, self.resume_opcode) };
        let replay = crate::replay::hooks::flags_for(&info);
        self.entries.push(CodeEntry {
            id,
            arg_objects,
            arg_names,
            calls: 0,
            recorded: 0,
            first_resume,
            replay,
        });
        Some((index, info))
    }
}

impl Drop for CodeTable {
    fn drop(&mut self) {
        // The table is dropped with the GIL held (the tracer stops from Python).
        for entry in &self.entries {
            for &name in &entry.arg_objects {
                // SAFETY: we own these references; the GIL is held.
                unsafe { ffi::Py_DECREF(name) };
            }
        }
    }
}

/// Byte offset of the first `opcode` instruction in the code's bytecode (`co_code`: 2-byte code
/// units, inline caches as opcode 0).
unsafe fn first_instruction(code: *mut PyObject, opcode: u8) -> Option<u32> {
    // SAFETY: guaranteed by the caller.
    unsafe {
        let bytes = ffi::PyObject_GetAttrString(code, c"co_code".as_ptr());
        if bytes.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let found = if ffi::PyBytes_Check(bytes) == 0 {
            None
        } else {
            let len = usize::try_from(ffi::PyBytes_Size(bytes)).unwrap_or(0);
            let data = std::slice::from_raw_parts(ffi::PyBytes_AsString(bytes).cast::<u8>(), len);
            data.chunks_exact(2)
                .position(|unit| unit[0] == opcode)
                .and_then(|i| u32::try_from(i * 2).ok())
        };
        ffi::Py_DECREF(bytes);
        found
    }
}
