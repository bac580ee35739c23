//! What the engine made of a code object (library code, or the address of its row), kept in the
//! code object's own `co_extra` slot (`PyUnstable_Code_SetExtra`): a callback finds its row with
//! one C call and no hashing, and a code object that dies takes its slot value with it (no stale
//! value can ever be mistaken for a new code's). Slot values: NULL = never seen, 1 = not the
//! project's, anything else = the project code's row (an address, never 0 or 1).

use std::ffi::c_void;
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

/// One table's `co_extra` index.
#[derive(Clone, Copy)]
pub struct ExtraSlot {
    index: Py_ssize_t,
}

impl ExtraSlot {
    /// The slot kept in `cell` (reserved on first use: `CPython` never gives indexes back, so
    /// each table reserves one per process). Call with the GIL held.
    pub fn reserve(cell: &OnceLock<Py_ssize_t>) -> Self {
        // SAFETY: called with the GIL held (tables are made from Python).
        let index = *cell.get_or_init(|| unsafe { PyUnstable_Eval_RequestCodeExtraIndex(None) });
        Self { index }
    }

    /// What `code` is. Safety: GIL held, `code` a live object.
    #[inline(always)]
    #[allow(clippy::inline_always)] // twice per call of the program
    pub unsafe fn lookup(self, code: *mut PyObject) -> Lookup {
        let mut extra: *mut c_void = std::ptr::null_mut();
        // SAFETY: guaranteed by the caller; GetExtra fails (-1) for non-code objects.
        if unsafe { PyUnstable_Code_GetExtra(code, self.index, &raw mut extra) } != 0 {
            // SAFETY: GIL held.
            unsafe { ffi::PyErr_Clear() };
            return Lookup::Other;
        }
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
