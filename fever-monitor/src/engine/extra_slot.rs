//! What the engine made of a code object (library code, or its engine entry), kept in the code
//! object's own `co_extra` slot (`PyUnstable_Code_SetExtra`): a callback finds its entry with one
//! C call and no hashing, and a code object that dies takes its slot value with it (no stale
//! address can ever be mistaken for a new code). Slot values: NULL = never seen, 1 = not the
//! project's, `i + 2` = entry `i`.

use std::ffi::c_void;
use std::sync::OnceLock;

use pyo3::ffi::{self, PyObject, Py_ssize_t};

use crate::compat::{
    PyUnstable_Code_GetExtra, PyUnstable_Code_SetExtra, PyUnstable_Eval_RequestCodeExtraIndex,
};

const NOT_PROJECT: usize = 1;

/// What a code object is to a table.
pub enum Lookup {
    /// A project code: its entry index.
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
            slot => Lookup::Project(slot - 2),
        }
    }

    /// Records `code` as entry `entry`, or as not the project's (`None`); false if that failed.
    /// Safety: GIL held, `code` a live object, no exception set.
    pub unsafe fn mark(self, code: *mut PyObject, entry: Option<usize>) -> bool {
        let value = entry.map_or(NOT_PROJECT, |i| i + 2);
        // SAFETY: guaranteed by the caller; the slot value is an integer, never dereferenced.
        if unsafe { PyUnstable_Code_SetExtra(code, self.index, value as *mut c_void) } != 0 {
            // SAFETY: GIL held.
            unsafe { ffi::PyErr_Clear() };
            return false;
        }
        true
    }
}
