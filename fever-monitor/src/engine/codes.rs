//! The engine's per-code decision, kept in each code object's `co_extra` slot (see
//! `extra_slot.rs`): library code (outside the project root, or the compiler's own), or a
//! project code with an engine entry that holds each consumer's own entry for it.
//!
//! The decision is made once per code object, the first time any callback (or a consumer,
//! [`resolve`]) meets it, and lasts as long as the code: library code gets `DISABLE` from the
//! local events and is never seen again. A consumer's entries are forgotten when it is disarmed.

use std::cell::UnsafeCell;
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

/// What a code object is to one consumer.
pub enum Own {
    /// Its entry.
    Entry(u32),
    /// It does not care about it, or the code is library code.
    NotMine,
    /// It never saw this project code (engine entry given): adopt it, then [`set`].
    Unseen(usize),
}

struct Codes {
    slot: ExtraSlot,
    project: Project,
    /// Each consumer's entry, by engine entry.
    entries: Vec<[u32; SLOTS]>,
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
            entries: Vec::new(),
        });
    }
}

/// The engine entry of `code`, deciding on first sight; `None` for library code (and before
/// [`install`]). Safety: GIL held, `code` a live object, no exception set.
pub unsafe fn entry(code: *mut PyObject) -> Option<usize> {
    // SAFETY: guaranteed by the caller.
    unsafe { entry_and_owners(code) }.map(|(entry, _)| entry)
}

/// [`entry`], with what each consumer has for it ([`Own::of`]).
/// Safety: GIL held, `code` a live object, no exception set.
#[inline(always)]
#[allow(clippy::inline_always)] // every callback looks a code up
pub unsafe fn entry_and_owners(code: *mut PyObject) -> Option<(usize, [u32; SLOTS])> {
    // SAFETY: guaranteed by the caller.
    let c = unsafe { codes() }?;
    // SAFETY: guaranteed by the caller.
    let entry = match unsafe { c.slot.lookup(code) } {
        Lookup::Project(i) => i,
        Lookup::Other => return None,
        // SAFETY: guaranteed by the caller.
        Lookup::Unseen => unsafe { decide(c, code) }?,
    };
    Some((entry, *c.entries.get(entry)?))
}

#[cold]
unsafe fn decide(c: &mut Codes, code: *mut PyObject) -> Option<usize> {
    // SAFETY: guaranteed by the caller (no Python code of the program runs: attribute reads).
    let file = unsafe { str_attr(code, c"co_filename") }.unwrap_or_default();
    let index = c.entries.len();
    // 3.14's `__annotate__` functions are the compiler's, never calls the user made.
    let project = !file.is_empty()
        && c.project.contains_file(&file)
        && u32::try_from(index).is_ok()
        // SAFETY: guaranteed by the caller.
        && !unsafe { compat::annotations::is_generated(code) };
    // SAFETY: guaranteed by the caller.
    if !unsafe { c.slot.mark(code, project.then_some(index)) } || !project {
        return None;
    }
    c.entries.push([UNSEEN; SLOTS]);
    Some(index)
}

impl Own {
    /// What a consumer's value `owner` (from [`entry_and_owners`]) for engine entry `entry`
    /// means.
    #[inline(always)]
    #[allow(clippy::inline_always)] // every callback asks, for each consumer
    pub fn of(owner: u32, entry: usize) -> Self {
        match owner {
            UNSEEN => Self::Unseen(entry),
            NOT_MINE => Self::NotMine,
            own => Self::Entry(own),
        }
    }
}

/// What engine entry `entry` is to the consumer in `slot`.
pub fn own(entry: usize, slot: Slot) -> Own {
    // SAFETY: GIL held (callers hold `Python` or run in the function watcher); the borrow ends
    // here.
    let Some(c) = (unsafe { codes() }) else {
        return Own::NotMine;
    };
    c.entries
        .get(entry)
        .map_or(Own::NotMine, |e| Own::of(e[slot as usize], entry))
}

/// Records what the consumer in `slot` made of engine entry `entry` (`None`: not its code).
pub fn set(entry: usize, slot: Slot, own: Option<u32>) {
    // SAFETY: as in `own`.
    if let Some(e) = unsafe { codes() }.and_then(|c| c.entries.get_mut(entry)) {
        e[slot as usize] = own.filter(|&i| i < NOT_MINE).unwrap_or(NOT_MINE);
    }
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
    let entry = unsafe { entry(code) }?;
    match own(entry, slot) {
        Own::Entry(i) => Some(i),
        Own::NotMine => None,
        Own::Unseen(e) => {
            let adopted = adopt();
            set(e, slot, adopted);
            adopted
        }
    }
}

/// Forgets every entry of the consumer in `slot` (it was disarmed; a new one starts afresh).
pub fn forget(slot: Slot) {
    // SAFETY: as in `own`.
    if let Some(c) = unsafe { codes() } {
        for e in &mut c.entries {
            e[slot as usize] = UNSEEN;
        }
    }
}
