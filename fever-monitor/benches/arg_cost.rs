//! A measurement: what it costs a `PY_START` callback to read the called frame's arguments, for
//! each way the C API offers, on the interpreter `PYO3_PYTHON` names. Run with
//! `cargo bench -p fever-monitor --bench arg_cost` (with `PYO3_PYTHON` and `LD_LIBRARY_PATH` as
//! in the Makefile's test-rust target; `benches/callcost.py` does it for every Python); the
//! tracer uses the cheapest (`PyFrame_GetVar` with the names interned once per code object).

use std::ffi::CString;
use std::sync::atomic::{AtomicUsize, Ordering};

use pyo3::ffi::{self, PyObject, Py_ssize_t};
use pyo3::prelude::*;

/// Which way the callback reads the two arguments `a` and `b`.
static METHOD: AtomicUsize = AtomicUsize::new(0);
/// Interned `"a"` and `"b"`.
static NAMES: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

const METHODS: [&str; 5] = [
    "empty callback (baseline)",
    "PyEval_GetFrame only (materializes the frame object)",
    "PyEval_GetFrame + PyFrame_GetVar (interned names)",
    "PyEval_GetFrame + PyFrame_GetVarString",
    "PyEval_GetFrame + PyFrame_GetLocals + PyObject_GetItem",
];

unsafe fn drop_ref(obj: *mut PyObject) {
    if obj.is_null() {
        // SAFETY: GIL held by the callback.
        unsafe { ffi::PyErr_Clear() };
    } else {
        // SAFETY: a new reference we own.
        unsafe { ffi::Py_DECREF(obj) };
    }
}

unsafe extern "C" fn on_start(
    _slf: *mut PyObject,
    _args: *mut *mut PyObject,
    _nargs: Py_ssize_t,
) -> *mut PyObject {
    // SAFETY: called by CPython with the GIL held; the current frame is the called function's.
    unsafe {
        let method = METHOD.load(Ordering::Relaxed);
        if method > 0 {
            let frame = ffi::PyEval_GetFrame();
            match method {
                1 => {}
                2 => {
                    for name in &NAMES {
                        let name = name.load(Ordering::Relaxed) as *mut PyObject;
                        drop_ref(ffi::PyFrame_GetVar(frame, name));
                    }
                }
                3 => {
                    for name in [c"a", c"b"] {
                        drop_ref(ffi::PyFrame_GetVarString(frame, name.as_ptr().cast_mut()));
                    }
                }
                _ => {
                    let locals = ffi::PyFrame_GetLocals(frame);
                    for name in &NAMES {
                        let name = name.load(Ordering::Relaxed) as *mut PyObject;
                        drop_ref(ffi::PyObject_GetItem(locals, name));
                    }
                    drop_ref(locals);
                }
            }
        }
        ffi::Py_NewRef(ffi::Py_None())
    }
}

fn main() {
    Python::initialize();
    Python::attach(|py| {
        for (slot, name) in NAMES.iter().zip(["a", "b"]) {
            let s = pyo3::types::PyString::intern(py, name).clone().unbind();
            slot.store(s.into_ptr() as usize, Ordering::Relaxed);
        }
        let def = Box::leak(Box::new(ffi::PyMethodDef {
            ml_name: c"arg_cost".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunctionFast: on_start,
            },
            ml_flags: ffi::METH_FASTCALL,
            ml_doc: std::ptr::null(),
        }));
        // SAFETY: `def` is leaked, so it outlives the function object.
        let callback = unsafe {
            Bound::from_owned_ptr(
                py,
                ffi::PyCFunction_NewEx(def, std::ptr::null_mut(), std::ptr::null_mut()),
            )
        };
        let code = CString::new(
            "import sys, time\n\
             def f(a, b):\n    return a\n\
             def loop(n):\n    t = time.perf_counter()\n    for i in range(n):\n        f(i, 'x')\n    return time.perf_counter() - t\n\
             m = sys.monitoring\n",
        )
        .unwrap();
        let globals = pyo3::types::PyDict::new(py);
        py.run(&code, Some(&globals), None).unwrap();
        let loop_ = globals.get_item("loop").unwrap().unwrap();
        let monitoring = py.import("sys").unwrap().getattr("monitoring").unwrap();
        monitoring
            .call_method1("use_tool_id", (3, "arg_cost"))
            .unwrap();
        let start: u32 = monitoring
            .getattr("events")
            .unwrap()
            .getattr("PY_START")
            .unwrap()
            .extract()
            .unwrap();
        monitoring
            .call_method1("register_callback", (3, start, &callback))
            .unwrap();
        let f_code = globals
            .get_item("f")
            .unwrap()
            .unwrap()
            .getattr("__code__")
            .unwrap();
        let time_loop = |events: u32| -> f64 {
            monitoring
                .call_method1("set_local_events", (3, &f_code, events))
                .unwrap();
            loop_.call1((1_000_000,)).unwrap().extract::<f64>().unwrap()
        };
        // Rounds interleave every variant with the plain call, so drifting machine load hits
        // them alike; the best of each is kept.
        let mut plain = f64::MAX;
        let mut best = [f64::MAX; METHODS.len()];
        for _ in 0..7 {
            plain = plain.min(time_loop(0));
            for (i, b) in best.iter_mut().enumerate() {
                METHOD.store(i, Ordering::Relaxed);
                *b = b.min(time_loop(start));
            }
        }
        let version: String = py
            .import("sys")
            .unwrap()
            .getattr("version")
            .unwrap()
            .extract()
            .unwrap();
        println!(
            "Python {}",
            version.split_whitespace().next().unwrap_or("?")
        );
        println!("plain call: {:.1} ns", plain * 1e3);
        for (name, b) in METHODS.iter().zip(best) {
            println!("{name}: +{:.1} ns per call", (b - plain) * 1e3);
        }
        monitoring
            .call_method1("set_local_events", (3, &f_code, 0))
            .unwrap();
        monitoring.call_method1("free_tool_id", (3,)).unwrap();
    });
}
