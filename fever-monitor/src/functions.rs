//! The live code registry: `CPython`'s function watcher keeps a [`CodeRegistry`] of every function
//! whose code comes from a project file, so a reload finds all functions running an old code
//! object — closures and dynamically created functions included — without scanning the heap.
//! The same events go to the [`Subscriber`]s registered at start (the call cache's).
//!
//! Whether a code object is the project's (and its file's id in the registry, its first line)
//! is decided once per code object and kept in its own `co_extra` slot ([`ExtraSlot`]): a
//! generator expression or `lambda` evaluated a million times makes a million functions of one
//! code object, and its file's path is matched against the project once, not a million times.

use std::cell::Cell;
use std::ffi::c_int;
use std::sync::{Mutex, OnceLock};

use fever_core::{CodeRegistry, Project};
use pyo3::ffi::{self, PyObject, Py_ssize_t};
use pyo3::prelude::*;

use crate::compat;
use crate::engine::extra_slot::{ExtraSlot, Lookup};

static REGISTRY: Mutex<Option<CodeRegistry>> = Mutex::new(None);
static PROJECT: OnceLock<Project> = OnceLock::new();
/// The `co_extra` slot holding each code object's [`Place`], packed ([`pack`]).
static SLOT: OnceLock<ExtraSlot> = OnceLock::new();

/// Where a project code comes from: its file's id in the registry, and its first line.
type Place = (usize, usize);

thread_local! {
    /// While fever itself gives functions new code objects compiled for a project file the
    /// registry knows (a reload's swap): that file's id.
    static ASSIGNING: Cell<Option<usize>> = const { Cell::new(None) };
}

/// What a subscriber hears of the project's functions. Each runs in the function watcher, with
/// the GIL held and live objects, and must not raise.
#[derive(Clone, Copy)]
pub struct Subscriber {
    /// A function whose code is the project's was created (`func`, its code).
    pub created: unsafe fn(func: *mut PyObject, code: *mut PyObject),
    /// A function's code is about to become a project code (`func`, the new code).
    pub code_changed: unsafe fn(func: *mut PyObject, new_code: *mut PyObject),
    /// A function (any) is being destroyed.
    pub destroyed: fn(func: *mut PyObject),
    /// Is the subscriber changing a function's code itself right now? That change is then
    /// nobody's news: the registry keeps the function under its old code, and no subscriber
    /// hears of it.
    pub changing_code: fn() -> bool,
}

/// At most this many subscribers.
const SUBSCRIBERS: usize = 2;

static SUBSCRIBED: Mutex<[Option<Subscriber>; SUBSCRIBERS]> = Mutex::new([None; SUBSCRIBERS]);

/// Adds `subscriber` (once per process, before the program runs; later ones than
/// [`SUBSCRIBERS`] are ignored, never expected).
pub fn subscribe(subscriber: Subscriber) {
    let mut subscribed = SUBSCRIBED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(free) = subscribed.iter_mut().find(|s| s.is_none()) {
        *free = Some(subscriber);
    }
}

/// The subscribers (copied: they run without the lock, and may cause more events).
fn subscribers() -> impl Iterator<Item = Subscriber> {
    let subscribed = *SUBSCRIBED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    subscribed.into_iter().flatten()
}

/// Starts watching function creation for `project` (once per process).
pub fn install(py: Python<'_>, project: Project) -> PyResult<()> {
    static INDEX: OnceLock<Py_ssize_t> = OnceLock::new();
    if PROJECT.set(project).is_err() {
        return Ok(());
    }
    *lock() = Some(CodeRegistry::new());
    SLOT.get_or_init(|| ExtraSlot::reserve(&INDEX));
    // SAFETY: the callback is a plain extern "C" fn with the signature CPython expects.
    let id = unsafe { compat::PyFunction_AddWatcher(on_function_event) };
    if id < 0 {
        return Err(PyErr::fetch(py));
    }
    Ok(())
}

/// Registers the project's functions created before [`install`] (in a forkserver's child that
/// joins fever after its modules were imported): one heap scan.
pub fn adopt_existing(py: Python<'_>) -> PyResult<()> {
    let objects = py.import("gc")?.call_method0("get_objects")?;
    for object in objects.try_iter()? {
        let object = object?;
        // SAFETY: `object` is a live object and the GIL is held.
        unsafe {
            if ffi::PyFunction_Check(object.as_ptr()) == 0 {
                continue;
            }
            let code = ffi::PyFunction_GetCode(object.as_ptr());
            if let Some(registry) = lock().as_mut() {
                if let Some((file, first_line)) = place(registry, code) {
                    registry.add(object.as_ptr() as usize, code as usize, file, first_line);
                }
            }
        }
    }
    Ok(())
}

fn lock() -> std::sync::MutexGuard<'static, Option<CodeRegistry>> {
    REGISTRY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Strong references to the code objects of `file` that some function runs.
pub fn codes_in<'py>(py: Python<'py>, file: &str) -> Vec<Bound<'py, PyAny>> {
    let guard = lock();
    let Some(registry) = guard.as_ref() else {
        return Vec::new();
    };
    registry
        .codes_in(file)
        .into_iter()
        // SAFETY: a code id in the registry is a live code object (some live function holds it),
        // and we hold the GIL, so nothing can free it before the reference is taken.
        .map(|code| unsafe { Bound::from_borrowed_ptr(py, code as *mut PyObject) })
        .collect()
}

/// Strong references to the code objects of `file` starting at `first_line` that some function
/// runs.
pub fn codes_at<'py>(py: Python<'py>, file: &str, first_line: usize) -> Vec<Bound<'py, PyAny>> {
    let guard = lock();
    let Some(registry) = guard.as_ref() else {
        return Vec::new();
    };
    registry
        .codes_at(file, first_line)
        .into_iter()
        // SAFETY: as in `codes_in`.
        .map(|code| unsafe { Bound::from_borrowed_ptr(py, code as *mut PyObject) })
        .collect()
}

/// Strong references to the functions running `code`.
pub fn functions_of<'py>(py: Python<'py>, code: &Bound<'py, PyAny>) -> Vec<Bound<'py, PyAny>> {
    let guard = lock();
    let Some(registry) = guard.as_ref() else {
        return Vec::new();
    };
    registry
        .functions_of(code.as_ptr() as usize)
        .iter()
        // SAFETY: registered functions are alive until their DESTROY event removes them.
        .map(|&f| unsafe { Bound::from_borrowed_ptr(py, f as *mut PyObject) })
        .collect()
}

/// Is `code` known not to be the project's: its file was matched against the project, and is
/// not one of it, when a function was first made of it? False when that was never decided.
pub fn known_outside(code: &Bound<'_, PyAny>) -> bool {
    let Some(slot) = SLOT.get() else {
        return false;
    };
    // SAFETY: a live object (a `Bound` holds it), with the GIL held; a failed read (not a code
    // object) clears only the error it raised.
    matches!(unsafe { slot.lookup(code.as_ptr()) }, Lookup::Other)
}

/// Is `file`, a `co_filename`, one of the project's, as the watcher decides for each code?
pub fn in_project(file: &str) -> bool {
    PROJECT
        .get()
        .is_some_and(|project| project.contains_file(file))
}

/// Runs `assign`, which gives functions new code objects compiled for `file` (and only those):
/// the watcher then places them in `file`, when the registry knows it, without matching each
/// code's file against the project again (the answer it would get).
pub fn assigning<R>(file: &str, assign: impl FnOnce() -> R) -> R {
    /// Puts back what was assigning before, however `assign` ends.
    struct Restore(Option<usize>);
    impl Drop for Restore {
        fn drop(&mut self) {
            ASSIGNING.set(self.0);
        }
    }
    let id = lock()
        .as_ref()
        .and_then(|registry| registry.known_file(file));
    let _restore = Restore(ASSIGNING.replace(id));
    assign()
}

/// A [`Place`] as a slot value: never 0 or 1 (the file id is stored plus one, above the line's
/// 32 bits); `None` when it does not fit.
fn pack((file, line): Place) -> Option<usize> {
    let file = u32::try_from(file).ok()?.checked_add(1)?;
    let line = u32::try_from(line).ok()?;
    usize::try_from((u64::from(file) << 32) | u64::from(line)).ok()
}

/// The [`Place`] [`pack`] made `value` of.
#[allow(clippy::cast_possible_truncation)] // both halves are 32 bits
fn unpack(value: usize) -> Place {
    let value = value as u64;
    ((value >> 32) as usize - 1, (value & 0xffff_ffff) as usize)
}

/// Where `code` comes from, when it is a project code: decided on first sight and kept in the
/// code's slot.
///
/// # Safety
/// `code` must be a live object and the GIL must be held, with no exception set.
unsafe fn place(registry: &mut CodeRegistry, code: *mut PyObject) -> Option<Place> {
    // SAFETY: guaranteed by the caller.
    unsafe {
        place_with(code, || {
            project_file(code).map(|(file, first_line)| (registry.file_id(&file), first_line))
        })
    }
}

/// [`place`] for a code compiled for the registry's file `file`.
///
/// # Safety
/// As for [`place`].
unsafe fn place_in(file: usize, code: *mut PyObject) -> Option<Place> {
    // SAFETY: guaranteed by the caller.
    unsafe { place_with(code, || first_line(code).map(|line| (file, line))) }
}

/// The [`Place`] kept in `code`'s slot, or `unseen`'s answer kept there.
///
/// # Safety
/// As for [`place`].
unsafe fn place_with(code: *mut PyObject, unseen: impl FnOnce() -> Option<Place>) -> Option<Place> {
    let slot = SLOT.get()?;
    // SAFETY: guaranteed by the caller.
    match unsafe { slot.lookup(code) } {
        Lookup::Project(value) => Some(unpack(value)),
        Lookup::Other => None,
        Lookup::Unseen => {
            let found = unseen();
            // A place too big to pack is decided again next time (never seen).
            if let Some(value) = found.map_or(Some(None), |p| pack(p).map(Some)) {
                // SAFETY: guaranteed by the caller; `lookup` found a code object.
                unsafe { slot.mark(code, value) };
            }
            found
        }
    }
}

/// The project file a code object comes from, if any, and the code's first line.
///
/// # Safety
/// `code` must be a valid code object and the GIL must be held.
unsafe fn project_file(code: *mut PyObject) -> Option<(String, usize)> {
    let project = PROJECT.get()?;
    // SAFETY: guaranteed by the caller.
    unsafe {
        let py = Python::assume_attached();
        let filename = ffi::PyObject_GetAttr(code, pyo3::intern!(py, "co_filename").as_ptr());
        if filename.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let mut size: ffi::Py_ssize_t = 0;
        let data = ffi::PyUnicode_AsUTF8AndSize(filename, &raw mut size);
        let result = if data.is_null() {
            ffi::PyErr_Clear();
            None
        } else {
            let bytes =
                std::slice::from_raw_parts(data.cast::<u8>(), usize::try_from(size).unwrap_or(0));
            std::str::from_utf8(bytes)
                .ok()
                .filter(|f| project.contains_file(f))
                .map(str::to_owned)
        };
        ffi::Py_DECREF(filename);
        Some((result?, first_line(code)?))
    }
}

/// A code object's first line.
///
/// # Safety
/// `code` must be a valid code object and the GIL must be held.
unsafe fn first_line(code: *mut PyObject) -> Option<usize> {
    // SAFETY: guaranteed by the caller.
    unsafe {
        let py = Python::assume_attached();
        let line = ffi::PyObject_GetAttr(code, pyo3::intern!(py, "co_firstlineno").as_ptr());
        if line.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let first_line = ffi::PyLong_AsSsize_t(line);
        ffi::Py_DECREF(line);
        let Ok(first_line) = usize::try_from(first_line) else {
            ffi::PyErr_Clear();
            return None;
        };
        Some(first_line)
    }
}

unsafe extern "C" fn on_function_event(
    event: c_int,
    func: *mut PyObject,
    new_value: *mut PyObject,
) -> c_int {
    // Never let an exception escape into the interpreter: save and restore any pending one.
    // SAFETY: CPython calls watchers with the GIL held and valid objects.
    unsafe {
        let pending = ffi::PyErr_GetRaisedException();
        match event {
            compat::FUNC_EVENT_CREATE => {
                let code = ffi::PyFunction_GetCode(func);
                let project = lock().as_mut().and_then(|registry| {
                    let (file, first_line) = place(registry, code)?;
                    registry.add(func as usize, code as usize, file, first_line);
                    Some(())
                });
                if project.is_some() {
                    for s in subscribers() {
                        (s.created)(func, code);
                    }
                }
            }
            compat::FUNC_EVENT_DESTROY => {
                if let Some(registry) = lock().as_mut() {
                    registry.remove(func as usize);
                }
                for s in subscribers() {
                    (s.destroyed)(func);
                }
            }
            compat::FUNC_EVENT_MODIFY_CODE if !subscribers().any(|s| (s.changing_code)()) => {
                let project = lock().as_mut().and_then(|registry| {
                    let found = match ASSIGNING.get() {
                        Some(file) => place_in(file, new_value),
                        None => place(registry, new_value),
                    };
                    if found.is_some() || registry.contains(func as usize) {
                        registry.code_changed(func as usize, new_value as usize, found);
                    }
                    found
                });
                if project.is_some() {
                    for s in subscribers() {
                        (s.code_changed)(func, new_value);
                    }
                }
            }
            _ => {}
        }
        if !pending.is_null() {
            ffi::PyErr_SetRaisedException(pending);
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::{pack, unpack};

    #[test]
    fn a_place_packs_into_a_slot_value() {
        for place in [
            (0, 0),
            (0, 1),
            (7, 123),
            (u32::MAX as usize - 1, u32::MAX as usize),
        ] {
            let value = pack(place).expect("fits");
            assert!(
                value > 1,
                "{value} would read as unseen or not the project's"
            );
            assert_eq!(unpack(value), place);
        }
        assert_eq!(pack((u32::MAX as usize, 1)), None);
        assert_eq!(pack((0, u32::MAX as usize + 1)), None);
    }
}
