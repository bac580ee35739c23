//! Noticing what a call did besides returning: writes to `sys.stdout`/`sys.stderr` (counted by
//! thin wrappers fever puts in their place while `fever watch` runs) and files opened for
//! writing (an audit hook on `open`). A cache hit skips both, so the cache warns about them.
//! The same hook sees a debugger start (`breakpoint()`, `sys.settrace`): such a call's time is
//! the user's, and a hit would skip the breakpoint, so the cache keeps none of it.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use pyo3::ffi::{self, PyObject};
use pyo3::prelude::*;

use crate::compat;

static WRITES: AtomicU64 = AtomicU64::new(0);
static FILE_OPENS: AtomicU64 = AtomicU64::new(0);
static DEBUGGER_STARTS: AtomicU64 = AtomicU64::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

/// What the program did so far besides computing. Compare two readings to learn what happened
/// in between.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Activity {
    /// Writes to stdout/stderr.
    pub writes: u64,
    /// Files opened for writing.
    pub file_opens: u64,
    /// `breakpoint()` calls and `sys.settrace` changes (debuggers starting or stopping).
    pub debugger: u64,
}

/// The counters now.
pub fn counters() -> Activity {
    Activity {
        writes: WRITES.load(Ordering::Relaxed),
        file_opens: FILE_OPENS.load(Ordering::Relaxed),
        debugger: DEBUGGER_STARTS.load(Ordering::Relaxed),
    }
}

/// A text stream that counts `write` calls and forwards everything to the stream it wraps.
#[pyclass(module = "fever", name = "CountingStream")]
pub struct CountingStream {
    inner: Py<PyAny>,
}

#[pymethods]
impl CountingStream {
    fn write(&self, py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        WRITES.fetch_add(1, Ordering::Relaxed);
        self.inner.call_method1(py, "write", (text,))
    }

    fn writelines(&self, py: Python<'_>, lines: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        WRITES.fetch_add(1, Ordering::Relaxed);
        self.inner.call_method1(py, "writelines", (lines,))
    }

    fn __getattr__(&self, py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
        self.inner.getattr(py, name)
    }

    fn __iter__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self.inner.bind(py).try_iter()?.into_any().unbind())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.inner.bind(py).repr()?.to_string())
    }
}

/// Puts counting wrappers in place of `sys.stdout` and `sys.stderr`, and starts counting file
/// opens (the audit hook is added once per process).
pub fn install(py: Python<'_>) -> PyResult<()> {
    static HOOKED: std::sync::Once = std::sync::Once::new();
    let sys = py.import("sys")?;
    for name in ["stdout", "stderr"] {
        let stream = sys.getattr(name)?;
        if !stream.is_none() && !stream.is_instance_of::<CountingStream>() {
            sys.setattr(
                name,
                Py::new(
                    py,
                    CountingStream {
                        inner: stream.unbind(),
                    },
                )?,
            )?;
        }
    }
    HOOKED.call_once(|| {
        // SAFETY: a plain extern "C" hook; GIL held.
        unsafe { compat::PySys_AddAuditHook(on_audit_event, std::ptr::null_mut()) };
    });
    COUNTING.store(true, Ordering::Relaxed);
    Ok(())
}

/// Puts the original streams back (where the program did not replace them itself).
pub fn uninstall(py: Python<'_>) -> PyResult<()> {
    COUNTING.store(false, Ordering::Relaxed);
    let sys = py.import("sys")?;
    for name in ["stdout", "stderr"] {
        let stream = sys.getattr(name)?;
        if let Ok(counting) = stream.cast::<CountingStream>() {
            let inner = counting.borrow().inner.clone_ref(py);
            sys.setattr(name, inner)?;
        }
    }
    Ok(())
}

/// `open(path, mode, flags)` audit events: counts opens for writing; `builtins.breakpoint` and
/// `sys.settrace`: counts debuggers.
unsafe extern "C" fn on_audit_event(
    event: *const c_char,
    args: *mut PyObject,
    _data: *mut c_void,
) -> c_int {
    if !COUNTING.load(Ordering::Relaxed) {
        return 0;
    }
    // SAFETY: CPython passes a C string and a tuple, with the GIL held.
    unsafe {
        let event = CStr::from_ptr(event).to_bytes();
        if event == b"builtins.breakpoint" || event == b"sys.settrace" {
            DEBUGGER_STARTS.fetch_add(1, Ordering::Relaxed);
            return 0;
        }
        if event != b"open" || ffi::PyTuple_Check(args) == 0 {
            return 0;
        }
        if ffi::PyTuple_GET_SIZE(args) < 3 {
            return 0;
        }
        let mode = ffi::PyTuple_GET_ITEM(args, 1);
        let flags = ffi::PyTuple_GET_ITEM(args, 2);
        let writes = if ffi::PyUnicode_Check(mode) != 0 {
            let mut size: ffi::Py_ssize_t = 0;
            let data = ffi::PyUnicode_AsUTF8AndSize(mode, &raw mut size);
            if data.is_null() {
                ffi::PyErr_Clear();
                false
            } else {
                std::slice::from_raw_parts(data.cast::<u8>(), usize::try_from(size).unwrap_or(0))
                    .iter()
                    .any(|c| b"wax+".contains(c))
            }
        } else if ffi::PyLong_Check(flags) != 0 {
            let flags = ffi::PyLong_AsLong(flags);
            if flags == -1 && !ffi::PyErr_Occurred().is_null() {
                ffi::PyErr_Clear();
            }
            flags & libc::c_long::from(libc::O_WRONLY | libc::O_RDWR) != 0
        } else {
            false
        };
        if writes {
            FILE_OPENS.fetch_add(1, Ordering::Relaxed);
        }
    }
    0
}
