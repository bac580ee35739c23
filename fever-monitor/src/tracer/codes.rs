//! The tracer's table of the project's code objects: the id each has in the trace, what names
//! its parameters have, whether it is test code, and how often it was called. The engine decides which code is the
//! project's and keeps each code's entry index (`crate::engine::codes`).

use fever_core::check::is_test_file;
use fever_core::trace::CodeInfo;
use pyo3::ffi::{self, PyObject};

use crate::code_object::{code_hash, int_attr, module_name, parameter_names, str_attr, str_of};
use crate::compat::CO_SUSPENDS;

/// One project code object.
pub struct CodeEntry {
    /// Trace code id ([`super::ids`] in the recording program; in a child, its own number, which
    /// the drain renames).
    pub id: u32,
    /// Parameter names (interned `str` objects, owned references), for reading arguments.
    pub arg_objects: Vec<*mut PyObject>,
    /// The same names as Rust strings, for snapshots.
    pub arg_names: Vec<String>,
    /// Calls started (exact).
    pub calls: u64,
    /// Calls whose events were recorded.
    pub recorded: u64,
    /// A generator's, coroutine's or async generator's code: its calls suspend and resume.
    pub suspends: bool,
    /// Frames of it on the threads' stacks, counted for a generator's code only (see
    /// [`CodeEntry::muted`]).
    pub live: u32,
    /// Byte offset of the code's first `RESUME` instruction (where a call starts running).
    pub first_resume: Option<u32>,
    /// Test code ([`is_test_file`], as `fever check` decides it): its arguments are not
    /// snapshotted again at the end of a call to see whether they changed. They are the test
    /// runner's objects (a test method's `self`, fixtures), whose walk reaches the runner's
    /// object graph as deep as the depth limit allows, and `check` never replays test code.
    pub test: bool,
    /// What was announced of it (a forked child announces it again in its own ring).
    pub info: CodeInfo,
}

impl CodeEntry {
    /// Past its cap (`max`) with none of its frames on a stack, a generator's code is muted: its
    /// later calls are counted, not recorded nor sampled, nor pushed on a stack, and its steps'
    /// events (`PY_RESUME`, `PY_YIELD`, its `PY_RETURN`) are turned off where they happen. A
    /// suite's generator steps outnumber its calls 16 to 1, and each was an event. It stays
    /// muted: nothing pushes its frames any more. A step running on any thread (one blocked
    /// in `yield q.get()`) keeps the code unmuted everywhere.
    #[inline(always)]
    #[allow(clippy::inline_always)] // every generator event asks
    pub fn muted(&self, max: u64) -> bool {
        self.suspends && max != 0 && self.calls > max && self.live == 0
    }
}

/// Every project code object the tracer has seen.
pub struct CodeTable {
    /// `dis.opmap["RESUME"]` of this interpreter.
    resume_opcode: u8,
    /// The project root as the trace's header records it (for [`CodeEntry::test`]).
    root: String,
    pub entries: Vec<CodeEntry>,
    /// Whether ids come from the recording's shared numbering ([`super::ids`]), else from
    /// [`CodeTable::next_own`].
    shared: bool,
    /// The next id a table numbering its codes on its own gives (above every id it holds).
    next_own: u32,
}

impl CodeTable {
    pub fn new(resume_opcode: u8, root: String) -> Self {
        Self {
            resume_opcode,
            root,
            entries: Vec::new(),
            shared: true,
            next_own: 0,
        }
    }

    /// From now on, numbers new codes on its own (a child: the program's numbering is not its).
    pub fn number_on_own(&mut self) {
        self.shared = false;
    }

    /// Takes in a project code seen for the first time: returns its new entry and the
    /// [`CodeInfo`] to announce. `globals` is the frame's globals (for the module name), or
    /// NULL. Safety: GIL held, `code` a live code object, no exception set.
    pub unsafe fn classify(
        &mut self,
        code: *mut PyObject,
        globals: *mut PyObject,
    ) -> (usize, CodeInfo) {
        let index = self.entries.len();
        // SAFETY: guaranteed by the caller.
        let mut info = unsafe {
            CodeInfo {
                id: 0,
                module: module_name(globals),
                qualname: str_attr(code, c"co_qualname").unwrap_or_default(),
                file: str_attr(code, c"co_filename").unwrap_or_default(),
                first_line: int_attr(code, c"co_firstlineno")
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(0),
                code_hash: code_hash(code),
            }
        };
        let id = if self.shared {
            super::ids::id_of(&info)
        } else {
            self.next_own
        };
        info.id = id;
        self.next_own = self.next_own.max(id.saturating_add(1));
        // SAFETY: guaranteed by the caller.
        let arg_objects = unsafe { parameter_names(code) };
        let arg_names = arg_objects
            .iter()
            // SAFETY: each is a live str object we own a reference to.
            .map(|&name| unsafe { str_of(name) }.unwrap_or_default())
            .collect();
        // SAFETY: guaranteed by the caller.
        let first_resume = unsafe { first_instruction(code, self.resume_opcode) };
        // SAFETY: guaranteed by the caller.
        let flags = unsafe { int_attr(code, c"co_flags") }.unwrap_or(0);
        self.entries.push(CodeEntry {
            id,
            arg_objects,
            arg_names,
            calls: 0,
            recorded: 0,
            suspends: flags & CO_SUSPENDS != 0,
            live: 0,
            first_resume,
            test: is_test_file(&info.file, &self.root),
            info: info.clone(),
        });
        (index, info)
    }
}

impl Drop for CodeTable {
    fn drop(&mut self) {
        // The table is dropped with the GIL held (the tracer is disarmed from Python).
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
