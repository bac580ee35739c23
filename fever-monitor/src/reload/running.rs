//! Where a function fever just changed is still running: frames on any thread's stack, and
//! suspended generators, coroutines and async generators. Those calls go on with the code they
//! started with (this version's or an older one's); fever says so.
//!
//! Frames are matched by file and qualified name, so a call that started before several saves is
//! found too; a frame of code the function watcher already found outside the project (the
//! library frames of most stacks) is passed over without looking at its names. Thread stacks
//! come from `sys._current_frames()` (cheap: one walk per thread, from frame to code and caller
//! with the C API, no attribute lookups). A suspended frame is on no stack: for generator and
//! coroutine code only, its owners are found with `gc.get_referrers` of the code and its
//! functions (a heap walk, the last resort, paid only when such code changed).

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFrame, PyString};

use super::loaded;
use crate::functions;

/// `co_flags` of generator, coroutine and async generator code.
const SUSPENDABLE: u32 = 0x20 | 0x80 | 0x200;

/// Descriptions of the frames running a version of `codes` (run by `functions`) now:
/// `thread NAME at FILE:LINE`, `suspended coroutine at FILE:LINE`.
pub fn frames(
    py: Python<'_>,
    codes: &[Bound<'_, PyAny>],
    functions: &[Bound<'_, PyAny>],
) -> PyResult<Vec<String>> {
    let mut found = Vec::new();
    if codes.is_empty() {
        return Ok(found);
    }
    let mut names = Vec::new();
    for code in codes {
        names.push(name_of(code)?);
    }
    // A code the function watcher found outside the project has another file than these.
    let project = names.iter().all(|(file, _)| functions::in_project(file));
    // Compared without allocating: every frame of every thread is looked at.
    let runs = |code: &Bound<'_, PyAny>| {
        codes.iter().any(|c| c.is(code))
            || (!(project && functions::known_outside(code))
                && same_name(code, &names).unwrap_or(false))
    };
    let current = loaded::sys_attr(py, c"_current_frames")?.call0()?;
    let current = current.cast::<PyDict>()?;
    let mut running = Vec::new();
    for (ident, top) in current.iter() {
        let mut frame = Some(top.cast_into::<PyFrame>()?);
        while let Some(f) = frame {
            if runs(&code_of(&f)) {
                running.push((ident.clone(), location(&f)?));
            }
            frame = back_of(&f);
        }
    }
    if !running.is_empty() {
        let threads = thread_names(py)?;
        for (ident, location) in running {
            let thread = match threads.get_item(&ident)? {
                Some(name) => name.to_string(),
                // Without `threading`, the program's one thread is its main thread.
                None if current.len() == 1 => "MainThread".to_owned(),
                None => ident.to_string(),
            };
            found.push(format!("thread {thread} at {location}"));
        }
    }
    let suspendable = codes.iter().any(|c| {
        c.getattr(pyo3::intern!(py, "co_flags"))
            .and_then(|f| f.extract::<u32>())
            .is_ok_and(|flags| flags & SUSPENDABLE != 0)
    });
    if !suspendable {
        return Ok(found);
    }
    let types = loaded::module(py, "types")?;
    let kinds = [
        ("GeneratorType", "gi", "generator"),
        ("CoroutineType", "cr", "coroutine"),
        ("AsyncGeneratorType", "ag", "async generator"),
    ];
    let referrers =
        loaded::module(py, "gc")?
            .getattr("get_referrers")?
            .call1(pyo3::types::PyTuple::new(
                py,
                codes.iter().chain(functions).collect::<Vec<_>>(),
            )?)?;
    for owner in referrers.try_iter()? {
        let owner = owner?;
        for (type_name, prefix, kind) in kinds {
            if !owner.is_instance(&types.getattr(type_name)?)? {
                continue;
            }
            let frame = owner.getattr(format!("{prefix}_frame"))?;
            // A running one is on a thread's stack (found above).
            let running: bool = owner.getattr(format!("{prefix}_running"))?.extract()?;
            if let (Ok(frame), false) = (frame.cast::<PyFrame>(), running) {
                if runs(&code_of(frame)) {
                    found.push(format!("suspended {kind} at {}", location(frame)?));
                }
            }
        }
    }
    Ok(found)
}

/// Thread names by ident, when the program imported `threading` (importing it here, on fever's
/// thread, would make that thread its main thread on 3.12).
fn thread_names(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let threads = PyDict::new(py);
    if let Some(threading) = loaded::sys_modules(py)?.get_item("threading")? {
        for thread in threading.call_method0("enumerate")?.try_iter()? {
            let thread = thread?;
            threads.set_item(thread.getattr("ident")?, thread.getattr("name")?)?;
        }
    }
    Ok(threads)
}

/// Is `code` one of `names` (file, qualified name)?
fn same_name(code: &Bound<'_, PyAny>, names: &[(String, String)]) -> PyResult<bool> {
    let py = code.py();
    let file = code.getattr(pyo3::intern!(py, "co_filename"))?;
    let file = file.cast::<PyString>()?.to_str()?;
    if !names.iter().any(|(f, _)| f == file) {
        return Ok(false);
    }
    let qualname = code.getattr(pyo3::intern!(py, "co_qualname"))?;
    let qualname = qualname.cast::<PyString>()?.to_str()?;
    Ok(names.iter().any(|(f, q)| f == file && q == qualname))
}

/// The code a frame runs (the C API's, with no attribute lookup).
pub(super) fn code_of<'py>(frame: &Bound<'py, PyFrame>) -> Bound<'py, PyAny> {
    // SAFETY: a live frame object, GIL held; `PyFrame_GetCode` returns a new, non-NULL reference.
    unsafe {
        Bound::from_owned_ptr(
            frame.py(),
            ffi::PyFrame_GetCode(frame.as_ptr().cast()).cast(),
        )
    }
}

/// The frame that called `frame`, if any.
pub(super) fn back_of<'py>(frame: &Bound<'py, PyFrame>) -> Option<Bound<'py, PyFrame>> {
    // SAFETY: a live frame object, GIL held; `PyFrame_GetBack` returns a new reference or NULL
    // (no error set), and a frame's caller is a frame.
    unsafe {
        Bound::from_owned_ptr_or_opt(
            frame.py(),
            ffi::PyFrame_GetBack(frame.as_ptr().cast()).cast(),
        )
        .map(|back| back.cast_into_unchecked())
    }
}

/// A code object's file and qualified name.
fn name_of(code: &Bound<'_, PyAny>) -> PyResult<(String, String)> {
    let py = code.py();
    Ok((
        code.getattr(pyo3::intern!(py, "co_filename"))?.extract()?,
        code.getattr(pyo3::intern!(py, "co_qualname"))?.extract()?,
    ))
}

fn location(frame: &Bound<'_, PyFrame>) -> PyResult<String> {
    let file: String = code_of(frame)
        .getattr(pyo3::intern!(frame.py(), "co_filename"))?
        .extract()?;
    // SAFETY: a live frame object, GIL held.
    let line = unsafe { ffi::PyFrame_GetLineNumber(frame.as_ptr().cast()) };
    Ok(format!("{}:{line}", super::display_path(&file)))
}
