//! What the engine made of a code object (library code, or the address of its row), kept in the
//! code object's own `co_extra` slot (`PyUnstable_Code_SetExtra`): a callback finds its row with
//! one C call and no hashing, and a code object that dies takes its slot value with it (no stale
//! value can ever be mistaken for a new code's). Slot values: NULL = never seen, 1 = not the
//! project's, anything else = the project code's row (an address, never 0 or 1).
//!
//! Callbacks read the slot without the C call: `PyUnstable_Code_GetExtra` only follows the code
//! object's `co_extra` pointer to an array (`_PyCodeObjectExtra`: a size, then the values), but a
//! call into libpython and its checks cost more than the rest of the look-up. Where `co_extra`
//! sits in the code object differs between versions, so it is found once, by watching which word
//! of a fresh code object `PyUnstable_Code_SetExtra` fills, and checked through the array; when
//! that fails, the C call is used.

use std::ffi::c_void;
use std::mem::size_of;
use std::sync::OnceLock;

use pyo3::ffi::{self, PyObject, Py_ssize_t};

use crate::compat::{
    PyUnstable_Code_GetExtra, PyUnstable_Code_SetExtra, PyUnstable_Eval_RequestCodeExtraIndex,
};

const NOT_PROJECT: usize = 1;

/// What a code object is to a table.
pub enum Lookup {
    /// A project code: the value recorded for it (never 0 or 1).
    Project(usize),
    /// Library code (outside the root), or not a code object.
    Other,
    /// Never seen before: classify it.
    Unseen,
}

/// `_PyCodeObjectExtra` (Objects/codeobject.c, the same from 3.6 to 3.15): what a code
/// object's `co_extra` points to.
#[repr(C)]
struct CodeExtra {
    size: Py_ssize_t,
    /// `size` values (declared with one).
    values: [*mut c_void; 1],
}

/// One table's `co_extra` index.
#[derive(Clone, Copy)]
pub struct ExtraSlot {
    index: Py_ssize_t,
    /// Byte offset of `co_extra` in a code object, 0 when unknown (the C call is used).
    offset: usize,
}

impl ExtraSlot {
    /// No slot: read directly, it holds nothing (a placeholder until the table's is known).
    pub const UNSET: Self = Self {
        index: 0,
        offset: 0,
    };

    /// The slot kept in `cell` (reserved on first use: `CPython` never gives indexes back, so
    /// each table reserves one per process). Call with the GIL held.
    pub fn reserve(cell: &OnceLock<Py_ssize_t>) -> Self {
        // SAFETY: called with the GIL held (tables are made from Python).
        let index = *cell.get_or_init(|| unsafe { PyUnstable_Eval_RequestCodeExtraIndex(None) });
        // SAFETY: as above.
        let offset = unsafe { find_offset(index) };
        Self { index, offset }
    }

    /// Whether callbacks read the slot without the C call.
    #[cfg(test)]
    pub fn reads_directly(self) -> bool {
        self.offset != 0
    }

    /// The slot value of `code` read without the C call; `None` when `code` is not a code
    /// object or the slot cannot be read directly.
    /// Safety: GIL held, `code` a live object.
    #[inline(always)]
    #[allow(clippy::inline_always)] // twice per call of the program
    unsafe fn read_direct(self, code: *mut PyObject) -> Option<*mut c_void> {
        // SAFETY: guaranteed by the caller; `PyCode_Type` is a static.
        let is_code = unsafe { ffi::Py_TYPE(code) } == &raw mut ffi::PyCode_Type;
        if self.offset == 0 || !is_code {
            return None;
        }
        // SAFETY: `code` is a code object, whose `co_extra` is at `offset` (`find_offset`),
        // NULL or an array of `size` values.
        Some(unsafe {
            let extra = code
                .cast::<u8>()
                .add(self.offset)
                .cast::<*const CodeExtra>()
                .read_unaligned();
            if extra.is_null() || (*extra).size <= self.index {
                std::ptr::null_mut()
            } else {
                *(&raw const (*extra).values)
                    .cast::<*mut c_void>()
                    .offset(self.index)
            }
        })
    }

    /// The slot value of `code`, or `None` when `code` is not a code object.
    /// Safety: GIL held, `code` a live object.
    #[inline(always)]
    #[allow(clippy::inline_always)] // twice per call of the program
    unsafe fn read(self, code: *mut PyObject) -> Option<*mut c_void> {
        // SAFETY: guaranteed by the caller.
        if let Some(value) = unsafe { self.read_direct(code) } {
            return Some(value);
        }
        let mut extra: *mut c_void = std::ptr::null_mut();
        // SAFETY: guaranteed by the caller; GetExtra fails (-1) for non-code objects.
        if unsafe { PyUnstable_Code_GetExtra(code, self.index, &raw mut extra) } != 0 {
            // SAFETY: GIL held.
            unsafe { ffi::PyErr_Clear() };
            return None;
        }
        Some(extra)
    }

    /// The value recorded for project code `code` (never 0 or 1), read without the C call;
    /// `None` for anything else, and when the slot cannot be read directly.
    /// Safety: GIL held, `code` a live object.
    #[inline(always)]
    #[allow(clippy::inline_always)] // twice per call of the program
    pub unsafe fn project_direct(self, code: *mut PyObject) -> Option<usize> {
        // SAFETY: guaranteed by the caller.
        let value = unsafe { self.read_direct(code) }? as usize;
        (value > NOT_PROJECT).then_some(value)
    }

    /// What `code` is. Safety: GIL held, `code` a live object.
    #[inline(always)]
    #[allow(clippy::inline_always)] // twice per call of the program
    pub unsafe fn lookup(self, code: *mut PyObject) -> Lookup {
        // SAFETY: guaranteed by the caller.
        let Some(extra) = (unsafe { self.read(code) }) else {
            return Lookup::Other;
        };
        match extra as usize {
            0 => Lookup::Unseen,
            NOT_PROJECT => Lookup::Other,
            value => Lookup::Project(value),
        }
    }

    /// Records `code` as a project code with `value` (never 0 or 1), or as not the project's
    /// (`None`); false if that failed. Safety: GIL held, `code` a live object, no exception set.
    pub unsafe fn mark(self, code: *mut PyObject, value: Option<usize>) -> bool {
        let value = value.unwrap_or(NOT_PROJECT);
        // SAFETY: guaranteed by the caller; the slot value is an integer, never dereferenced.
        if unsafe { PyUnstable_Code_SetExtra(code, self.index, value as *mut c_void) } != 0 {
            // SAFETY: GIL held.
            unsafe { ffi::PyErr_Clear() };
            return false;
        }
        true
    }
}

/// The byte offset of `co_extra` in a code object (0 when not found): the one pointer-sized word
/// of a fresh code object that `PyUnstable_Code_SetExtra` turns from NULL into an array holding
/// the value set at `index`. Safety: GIL held, `index` reserved, no exception set.
unsafe fn find_offset(index: Py_ssize_t) -> usize {
    // A value no real slot holds, never dereferenced.
    const PROBE: usize = 0xfe7e_5107;
    // SAFETY: GIL held (caller); a new code object or NULL with an exception set.
    let code = unsafe {
        ffi::Py_CompileString(c"0".as_ptr(), c"<fever probe>".as_ptr(), ffi::Py_eval_input)
    };
    if code.is_null() {
        // SAFETY: GIL held.
        unsafe { ffi::PyErr_Clear() };
        return 0;
    }
    // SAFETY: `code` is a live object; its type's basic size covers `co_extra`.
    let words = usize::try_from(unsafe { (*ffi::Py_TYPE(code)).tp_basicsize }).unwrap_or(0)
        / size_of::<usize>();
    let base = code.cast::<usize>().cast_const();
    // SAFETY: the first `words` words are the object's own.
    let before: Vec<usize> = (0..words).map(|i| unsafe { *base.add(i) }).collect();
    let mut offset = 0;
    // SAFETY: GIL held, `code` a live code object, `index` reserved.
    if unsafe { PyUnstable_Code_SetExtra(code, index, PROBE as *mut c_void) } == 0 {
        // SAFETY: as above; nothing but `co_extra` changed (no Python code ran).
        let changed: Vec<usize> = (0..words)
            .filter(|&i| unsafe { *base.add(i) } != before[i])
            .collect();
        if let [i] = changed[..] {
            let candidate = i * size_of::<usize>();
            let slot = ExtraSlot {
                index,
                offset: candidate,
            };
            // SAFETY: the word changed from NULL (asserted) to what SetExtra allocated; `read`
            // follows it as `co_extra`, which the comparison with the C call checks.
            let fast = (before[i] == 0)
                .then(|| unsafe { slot.read(code) })
                .flatten();
            if fast == Some(PROBE as *mut c_void) {
                offset = candidate;
            }
        }
        // SAFETY: as above (no free function: the value is an integer).
        unsafe { PyUnstable_Code_SetExtra(code, index, std::ptr::null_mut()) };
    } else {
        // SAFETY: GIL held.
        unsafe { ffi::PyErr_Clear() };
    }
    // SAFETY: our new reference.
    unsafe { ffi::Py_DECREF(code) };
    offset
}
