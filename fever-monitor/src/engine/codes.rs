//! The engine's per-code decision, kept in each code object's `co_extra` slot (see
//! `extra_slot.rs`): library code (outside the project root, or the compiler's own), or a
//! project code with its [`Row`], which holds each consumer's own entry for it. The slot holds
//! the row's address, so a callback reaches a consumer's entry with one look-up.
//!
//! The decision is made once per code object, the first time any callback (or a consumer,
//! [`resolve`]) meets it, and lasts as long as the code: library code gets `DISABLE` from the
//! local events and is never seen again. A consumer's entries are forgotten when it is disarmed.

use std::cell::UnsafeCell;
use std::ptr::NonNull;
use std::sync::OnceLock;

use pyo3::ffi::{PyObject, Py_ssize_t};

use super::extra_slot::{ExtraSlot, Lookup};
use super::{Slot, SLOTS};
use crate::code_object::str_attr;
use crate::compat;
use fever_core::Project;

/// A consumer has not seen the code yet.
const UNSEEN: u32 = u32::MAX;
/// A consumer does not care about the code.
const NOT_MINE: u32 = u32::MAX - 1;

/// A project code's entry in each consumer's own table (or [`UNSEEN`], [`NOT_MINE`]), by slot.
/// Rows are never freed: a code object's `co_extra` slot may point to its row as long as the
/// code lives.
pub struct Row {
    owners: [u32; SLOTS],
    /// The local events set on the code (`benches/engine.py`'s comparison only).
    #[cfg(feature = "local-events")]
    pub local: u32,
}

/// What a code object is to one consumer.
pub enum Own {
    /// Its entry.
    Entry(u32),
    /// It does not care about it.
    NotMine,
    /// It never saw this project code: adopt it, then [`Row::set`].
    Unseen,
}

impl Row {
    /// What the code is to the consumer in `slot`.
    #[inline(always)]
    #[allow(clippy::inline_always)] // every callback asks, for each consumer
    pub fn own(&self, slot: Slot) -> Own {
        match self.owners[slot as usize] {
            UNSEEN => Own::Unseen,
            NOT_MINE => Own::NotMine,
            own => Own::Entry(own),
        }
    }

    /// The entry of the consumer in `slot`, when it has one (`None`: not its code, or not seen
    /// yet), in one test.
    #[inline(always)]
    #[allow(clippy::inline_always)] // every solo callback asks
    pub fn entry(&self, slot: Slot) -> Option<u32> {
        let own = self.owners[slot as usize];
        (own < NOT_MINE).then_some(own)
    }

    /// Records what the consumer in `slot` made of the code (`None`: not its code).
    pub fn set(&mut self, slot: Slot, own: Option<u32>) {
        self.owners[slot as usize] = own.filter(|&i| i < NOT_MINE).unwrap_or(NOT_MINE);
    }
}

struct Codes {
    slot: ExtraSlot,
    project: Project,
    /// Every row (`Box::leak`ed), to forget a consumer's entries.
    rows: Vec<NonNull<Row>>,
}

struct GilCell(UnsafeCell<Option<Codes>>);

// SAFETY: only accessed with the GIL held, and never borrowed across Python code (each function
// here takes and drops its borrow), which serializes every access.
unsafe impl Sync for GilCell {}

static CODES: GilCell = GilCell(UnsafeCell::new(None));

/// The table. Safety: GIL held, and the borrow ends before any Python code runs.
#[inline(always)]
#[allow(clippy::inline_always)] // every callback looks a code up
unsafe fn codes() -> Option<&'static mut Codes> {
    // SAFETY: guaranteed by the caller.
    unsafe { (*CODES.0.get()).as_mut() }
}

/// Sets the project whose code the engine watches (the first call decides). GIL held.
pub fn install(project: &Project) {
    static INDEX: OnceLock<Py_ssize_t> = OnceLock::new();
    // SAFETY: GIL held (callers arm from Python); no other borrow is alive.
    let cell = unsafe { &mut *CODES.0.get() };
    if cell.is_none() {
        *cell = Some(Codes {
            slot: ExtraSlot::reserve(&INDEX),
            project: project.clone(),
            rows: Vec::new(),
        });
    }
}

/// The `co_extra` slot the table keeps its decisions in (`None` before [`install`]).
pub fn extra_slot() -> Option<ExtraSlot> {
    // SAFETY: GIL held (callers arm from Python); the borrow ends here.
    unsafe { codes() }.map(|c| c.slot)
}

/// The row of project code `code`, read directly from its `co_extra` slot `extra` (a copy of
/// the table's, see [`extra_slot`]); `None` for any other code, or one not decided yet, or when
/// the slot cannot be read directly: then [`row`] knows.
/// Safety: GIL held, `code` a live object.
#[inline(always)]
#[allow(clippy::inline_always)] // every solo callback looks its code up
pub unsafe fn known_row(extra: ExtraSlot, code: *mut PyObject) -> Option<NonNull<Row>> {
    // SAFETY: guaranteed by the caller.
    let address = unsafe { extra.project_direct(code) }?;
    // SAFETY: the slot holds a row's address (`decide`), never 0.
    Some(unsafe { NonNull::new_unchecked(address as *mut Row) })
}

/// The row of `code`, deciding on first sight; `None` for library code (and before
/// [`install`]). The row lives for the rest of the process; touch it with the GIL held only,
/// and hold no reference to it across Python code.
/// Safety: GIL held, `code` a live object, no exception set.
#[inline(always)]
#[allow(clippy::inline_always)] // every callback looks a code up
pub unsafe fn row(code: *mut PyObject) -> Option<NonNull<Row>> {
    // SAFETY: guaranteed by the caller.
    let c = unsafe { codes() }?;
    // SAFETY: guaranteed by the caller.
    match unsafe { c.slot.lookup(code) } {
        // SAFETY: the slot holds a row's address (`decide`), never 0 (`Lookup::Unseen`).
        Lookup::Project(address) => Some(unsafe { NonNull::new_unchecked(address as *mut Row) }),
        Lookup::Other => None,
        // SAFETY: guaranteed by the caller.
        Lookup::Unseen => unsafe { decide(c, code) },
    }
}

#[cold]
unsafe fn decide(c: &mut Codes, code: *mut PyObject) -> Option<NonNull<Row>> {
    // SAFETY: guaranteed by the caller (no Python code of the program runs: attribute reads).
    let file = unsafe { str_attr(code, c"co_filename") }.unwrap_or_default();
    // 3.14's `__annotate__` functions are the compiler's, never calls the user made.
    let project = !file.is_empty()
        && c.project.contains_file(&file)
        // SAFETY: guaranteed by the caller.
        && !unsafe { compat::annotations::is_generated(code) };
    if !project {
        // SAFETY: guaranteed by the caller.
        unsafe { c.slot.mark(code, None) };
        return None;
    }
    let row = NonNull::from(Box::leak(Box::new(Row {
        owners: [UNSEEN; SLOTS],
        #[cfg(feature = "local-events")]
        local: 0,
    })));
    // SAFETY: guaranteed by the caller.
    if !unsafe { c.slot.mark(code, Some(row.as_ptr() as usize)) } {
        // SAFETY: just leaked, referred to by nothing.
        drop(unsafe { Box::from_raw(row.as_ptr()) });
        return None;
    }
    c.rows.push(row);
    Some(row)
}

/// The entry the consumer in `slot` has for `code`, adopting it with `adopt` on first sight:
/// for a consumer that meets code outside the callbacks (the call cache meets functions as
/// they are created). Safety: GIL held, `code` a live object, no exception set.
pub unsafe fn resolve(
    code: *mut PyObject,
    slot: Slot,
    adopt: impl FnOnce() -> Option<u32>,
) -> Option<u32> {
    // SAFETY: guaranteed by the caller.
    let row = unsafe { row(code) }?.as_ptr();
    // SAFETY: rows live for the process; the GIL is held; no reference to it is held across
    // `adopt` (it is read before and written after).
    match unsafe { (*row).own(slot) } {
        Own::Entry(i) => Some(i),
        Own::NotMine => None,
        Own::Unseen => {
            let adopted = adopt();
            // SAFETY: as above.
            unsafe { (*row).set(slot, adopted) };
            adopted
        }
    }
}

/// Forgets every entry of the consumer in `slot` (it was disarmed; a new one starts afresh).
pub fn forget(slot: Slot) {
    // SAFETY: GIL held (callers hold `Python`); the borrow ends here.
    if let Some(c) = unsafe { codes() } {
        for row in &c.rows {
            // SAFETY: rows live for the process; no other reference is alive (GIL held, no
            // callback inside a consumer while it is disarmed).
            unsafe { (*row.as_ptr()).owners[slot as usize] = UNSEEN };
        }
    }
}
