//! The engine's sys.monitoring callbacks and their registration. Each callback is an object of
//! a small heap type of our own that implements vectorcall (`Py_TPFLAGS_HAVE_VECTORCALL`, the
//! function pointer in the object): `CPython` calls the plain C function directly, where a
//! `PyCFunction` with `METH_FASTCALL` goes through the builtin-function call path (its checks
//! cost about 57 instructions per event) and a `#[pyfunction]` adds argument parsing and panic
//! plumbing on top.
//!
//! Each callback: finds the code's row through its `co_extra` slot and the calling thread,
//! then hands the event to each armed consumer subscribed to it (classifying the code for a
//! consumer that meets it for the first time), then releases what they parked (`parked.rs`).
//! Library code gets `DISABLE` from the local events
//! (`PY_START`, `PY_RESUME`, `PY_RETURN`, `PY_YIELD`) and `None` from `PY_THROW`, `RAISE` and
//! `PY_UNWIND`, which cannot be disabled. Nothing here raises, panics or leaves an exception set.

use std::any::TypeId;
use std::ffi::{c_int, c_uint};
use std::mem::{offset_of, size_of};
use std::ptr::NonNull;
use std::sync::OnceLock;

use pyo3::ffi::{self, PyObject, Py_ssize_t};
use pyo3::prelude::*;

use super::codes::{self, Own, Row};
use super::{
    busy, end_of_callback, engine, hot, hot_thread, Armed, At, Consumer, Engine, Event, Heard, Slot,
};
use crate::monitoring::{disable, none};

/// A project code's event, as a callback found it.
struct Found {
    e: &'static mut Engine,
    code: *mut PyObject,
    /// The code's row (it lives for the process).
    row: NonNull<Row>,
    args: *const *mut PyObject,
    nargs: Py_ssize_t,
}

impl Found {
    /// The event as a consumer sees it: on thread `(index, ident)`, its own `entry`.
    #[inline(always)]
    #[allow(clippy::inline_always)] // every callback makes one
    fn at(&self, (thread, ident): (usize, u64), entry: u32) -> At {
        At {
            thread,
            ident,
            entry,
            code: self.code,
            args: self.args,
            nargs: self.nargs,
        }
    }
}

/// The start of every callback: the engine, and the code's row; `Err` with what to return when
/// the event is nobody's (busy, library code).
#[inline(always)]
#[allow(clippy::inline_always)] // every callback starts with it
unsafe fn enter(
    args: *const *mut PyObject,
    nargs: Py_ssize_t,
    event: Event,
) -> Result<Found, *mut PyObject> {
    if nargs < 2 || (busy() && !super::wait_out_busy()) {
        return Err(none());
    }
    // SAFETY: called by CPython with the GIL held; not busy, so no consumer is borrowed.
    let Some(e) = (unsafe { engine() }) else {
        return Err(none());
    };
    // SAFETY: CPython passes `nargs` valid arguments; `code` is live.
    let code = unsafe { *args };
    // SAFETY: as above; no exception is set in a callback.
    let Some(row) = (unsafe { codes::row(code) }) else {
        return Err(match event {
            Event::Start | Event::Resume | Event::Return | Event::Yield => disable(),
            Event::Throw | Event::Raise | Event::Unwind => none(),
        });
    };
    #[cfg(feature = "local-events")]
    if event == Event::Start {
        // SAFETY: rows live for the process; GIL held.
        e.arm_code(unsafe { &mut *row.as_ptr() }, code);
    }
    Ok(Found {
        e,
        code,
        row,
        args,
        nargs,
    })
}

/// The entry the consumer in `slot` has for the code, adopting the code on first sight; `None`
/// when it is not its code.
/// Safety: GIL held, in a callback of the code, the slot armed.
#[inline(always)]
#[allow(clippy::inline_always)] // every callback asks, for each consumer
unsafe fn own(f: &mut Found, slot: Slot) -> Option<u32> {
    // SAFETY: rows live for the process; GIL held; no reference to it is kept across `adopt`.
    match unsafe { (*f.row.as_ptr()).own(slot) } {
        Own::Entry(own) => Some(own),
        Own::NotMine => None,
        Own::Unseen => {
            // SAFETY: guaranteed by the caller.
            let adopted = unsafe { adopt(f.e, slot, f.code) };
            // SAFETY: as above.
            unsafe { (*f.row.as_ptr()).set(slot, adopted) };
            adopted
        }
    }
}

/// One event: every subscribed consumer hears of it, through its handler.
#[inline(always)]
#[allow(clippy::inline_always)] // every shared callback is this
unsafe fn dispatch(args: *const *mut PyObject, nargs: Py_ssize_t, event: Event) -> *mut PyObject {
    // SAFETY: guaranteed by the caller (CPython).
    let mut f = match unsafe { enter(args, nargs, event) } {
        Ok(f) => f,
        Err(result) => return result,
    };
    let armed = &raw const f.e.armed[event as usize];
    let thread = f.e.thread();
    // `Enough` only when every consumer that heard it says so.
    let mut heard = Heard::Enough;
    let mut told = false;
    let mut i = 0;
    // SAFETY: `armed` never moves (made with room for every slot); a consumer's Python code
    // that disarms meanwhile only shortens it, so it is read afresh at each step.
    while let Some(&Armed {
        slot,
        consumer,
        handler,
        ..
    }) = unsafe { (&*armed).get(i) }
    {
        i += 1;
        // SAFETY: GIL held, in a callback of the code; the slot is armed.
        let Some(entry) = (unsafe { own(&mut f, slot) }) else {
            continue;
        };
        let at = f.at(thread, entry);
        // SAFETY: GIL held; `at` is this callback's; the consumer is armed (live) and no other
        // reference to it is alive.
        if unsafe { handler(consumer, &at) } == Heard::Again {
            heard = Heard::Again;
        }
        told = true;
    }
    end_of_callback(event, if told { heard } else { Heard::Again })
}

/// One event while `C` is the only armed consumer (see [`solo_callbacks`]), the callback
/// called as `callable`: when its gate is open ([`Hot::gates`](super::Hot): `C` armed alone
/// with its own callbacks registered, not busy) and the code is a project code `C` has an entry
/// for, straight to `C`'s [`Consumer::on`] (inlined): one gate, the code's row, the thread;
/// anything else takes [`solo_full`].
#[inline(always)]
#[allow(clippy::inline_always)] // every solo callback is this
unsafe fn solo<C: Consumer>(
    callable: *mut PyObject,
    args: *const *mut PyObject,
    nargs: Py_ssize_t,
    event: Event,
) -> *mut PyObject {
    let hot = hot();
    if hot.gates[event as usize].get() == callable && nargs >= 2 {
        // SAFETY: CPython passes `nargs` valid arguments.
        let code = unsafe { *args };
        // SAFETY: GIL held (a callback); `code` is live.
        let row = unsafe { codes::known_row(hot.extra.get(), code) };
        // SAFETY: rows live for the process; GIL held; the reference ends here.
        if let Some(entry) = row.and_then(|row| unsafe { row.as_ref() }.entry(hot.slot.get())) {
            // SAFETY: GIL held; no reference to the engine is alive.
            let (thread, ident) = unsafe { hot_thread() };
            let at = At {
                thread,
                ident,
                entry,
                code,
                args,
                nargs,
            };
            let consumer = hot.solo.get().cast::<C>();
            // SAFETY: the gate is open, so the consumer armed alone is live and unborrowed
            // (not busy), and of type `C`: the callback running is the registered one for its
            // type, whose callbacks are `C`'s own (`solo_callback`).
            let heard = unsafe { (*consumer).on(event, &at) };
            return end_of_callback(event, heard);
        }
    }
    // SAFETY: guaranteed by the caller (CPython).
    unsafe { solo_full::<C>(args, nargs, event) }
}

/// [`solo`] past a closed gate, or for code the short path does not know: the same as
/// [`dispatch`], with `C`'s [`Consumer::on`] inlined.
#[cold]
#[inline(never)]
unsafe fn solo_full<C: Consumer>(
    args: *const *mut PyObject,
    nargs: Py_ssize_t,
    event: Event,
) -> *mut PyObject {
    // SAFETY: guaranteed by the caller (CPython).
    let mut f = match unsafe { enter(args, nargs, event) } {
        Ok(f) => f,
        Err(result) => return result,
    };
    let Some(armed) = f.e.armed[event as usize].first() else {
        return none();
    };
    if armed.kind != TypeId::of::<C>() {
        let armed = *armed;
        // SAFETY: guaranteed by the caller (CPython); `f` is this callback's.
        return unsafe { shared_solo(f, armed, event) };
    }
    let (slot, consumer) = (armed.slot, armed.consumer);
    // SAFETY: GIL held, in a callback of the code; the slot is armed.
    let Some(entry) = (unsafe { own(&mut f, slot) }) else {
        return none();
    };
    let thread = f.e.thread();
    // SAFETY: GIL held; the event is this callback's; the consumer is armed (live), of type
    // `C` (`kind` says so), and no other reference to it is alive.
    let heard = unsafe { (*consumer.cast::<C>().as_ptr()).on(event, &f.at(thread, entry)) };
    end_of_callback(event, heard)
}

/// [`solo`] when the only armed consumer is not of the callback's type (between arming and the
/// registration of its own callbacks): through its handler.
/// Safety: GIL held, in a callback of `f`'s code for `event`; `armed` is the event's only armed
/// slot.
#[cold]
unsafe fn shared_solo(mut f: Found, armed: Armed, event: Event) -> *mut PyObject {
    // SAFETY: guaranteed by the caller.
    let Some(entry) = (unsafe { own(&mut f, armed.slot) }) else {
        return none();
    };
    let thread = f.e.thread();
    // SAFETY: GIL held; the consumer is armed (live) and no other reference to it is alive.
    let heard = unsafe { (armed.handler)(armed.consumer, &f.at(thread, entry)) };
    end_of_callback(event, heard)
}

/// The entry the consumer in `slot` makes of `code`, met for the first time.
/// Safety: GIL held, in a callback of `code`, the slot armed.
#[cold]
unsafe fn adopt(e: &mut Engine, slot: Slot, code: *mut PyObject) -> Option<u32> {
    let held = e.consumers[slot as usize].as_ref()?;
    // SAFETY: guaranteed by the caller.
    unsafe { (*held.consumer.as_ptr()).adopt(code) }
}

/// The number of positional arguments in a vectorcall's `nargsf`.
#[inline(always)]
#[allow(clippy::inline_always)] // every callback starts with it
fn nargs(nargsf: usize) -> Py_ssize_t {
    // Fewer than 2^63 arguments: the cast is exact.
    #[allow(clippy::cast_possible_wrap)]
    let n = (nargsf & !ffi::PY_VECTORCALL_ARGUMENTS_OFFSET) as Py_ssize_t;
    n
}

/// A vectorcall callback `$name` for `$event`.
macro_rules! callback {
    ($name:ident => $event:expr) => {
        unsafe extern "C" fn $name(
            _callable: *mut PyObject,
            args: *const *mut PyObject,
            nargsf: usize,
            _kwnames: *mut PyObject,
        ) -> *mut PyObject {
            // SAFETY: called by CPython with the GIL held and `nargs` valid arguments.
            unsafe { dispatch(args, nargs(nargsf), $event) }
        }
    };
}

callback!(on_start => Event::Start);
callback!(on_resume => Event::Resume);
callback!(on_throw => Event::Throw);
callback!(on_return => Event::Return);
callback!(on_yield => Event::Yield);
callback!(on_raise => Event::Raise);
callback!(on_unwind => Event::Unwind);

/// `C`'s own callback for event number `E` (see [`solo`]).
unsafe extern "C" fn solo_callback<C: Consumer, const E: u8>(
    callable: *mut PyObject,
    args: *const *mut PyObject,
    nargsf: usize,
    _kwnames: *mut PyObject,
) -> *mut PyObject {
    // SAFETY: called by CPython with the GIL held and `nargs` valid arguments.
    unsafe { solo::<C>(callable, args, nargs(nargsf), Event::EVERY[E as usize]) }
}

/// The shared callbacks, in [`Event`] order: every armed consumer hears of each event.
pub const SHARED: [ffi::vectorcallfunc; 7] = [
    on_start, on_resume, on_throw, on_return, on_yield, on_raise, on_unwind,
];

/// `C`'s own callbacks, in [`Event`] order: for when it is the only armed consumer.
pub fn solo_callbacks<C: Consumer>() -> [ffi::vectorcallfunc; 7] {
    [
        solo_callback::<C, 0>,
        solo_callback::<C, 1>,
        solo_callback::<C, 2>,
        solo_callback::<C, 3>,
        solo_callback::<C, 4>,
        solo_callback::<C, 5>,
        solo_callback::<C, 6>,
    ]
}

/// A callback object: the object header, then the function `CPython` calls (the type's
/// vectorcall offset points at it).
#[repr(C)]
struct Callback {
    ob_base: PyObject,
    /// `None` only between allocation and [`callables`] setting it.
    vectorcall: Option<ffi::vectorcallfunc>,
}

/// The callback type (`fever.callback`), made once per process: its address.
static CALLBACK_TYPE: OnceLock<usize> = OnceLock::new();

/// The callback type. Call with the GIL held.
fn callback_type(py: Python<'_>) -> PyResult<*mut ffi::PyTypeObject> {
    if let Some(&tp) = CALLBACK_TYPE.get() {
        return Ok(tp as *mut ffi::PyTypeObject);
    }
    // Heap types give their vectorcall offset as this read-only member (3.12-3.15).
    let members = Box::leak(Box::new([
        ffi::PyMemberDef {
            name: c"__vectorcalloffset__".as_ptr(),
            type_code: ffi::Py_T_PYSSIZET,
            #[allow(clippy::cast_possible_wrap)] // a small struct's field offset
            offset: offset_of!(Callback, vectorcall) as Py_ssize_t,
            flags: ffi::Py_READONLY,
            doc: std::ptr::null(),
        },
        // The end of the list.
        ffi::PyMemberDef::default(),
    ]));
    let slots = Box::leak(Box::new([
        ffi::PyType_Slot {
            slot: ffi::Py_tp_call,
            pfunc: ffi::PyVectorcall_Call as *mut std::ffi::c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_members,
            pfunc: members.as_mut_ptr().cast(),
        },
        ffi::PyType_Slot {
            slot: 0,
            pfunc: std::ptr::null_mut(),
        },
    ]));
    let flags = ffi::Py_TPFLAGS_DEFAULT
        | ffi::Py_TPFLAGS_HAVE_VECTORCALL
        | ffi::Py_TPFLAGS_DISALLOW_INSTANTIATION
        | ffi::Py_TPFLAGS_IMMUTABLETYPE;
    let spec = Box::leak(Box::new(ffi::PyType_Spec {
        name: c"fever.callback".as_ptr(),
        basicsize: c_int::try_from(size_of::<Callback>()).unwrap_or(c_int::MAX),
        itemsize: 0,
        flags: c_uint::try_from(flags).unwrap_or(0),
        slots: slots.as_mut_ptr(),
    }));
    // SAFETY: the spec and what it points to live for the rest of the process; GIL held.
    let tp = unsafe { ffi::PyType_FromSpec(spec) };
    if tp.is_null() {
        return Err(PyErr::fetch(py));
    }
    Ok(*CALLBACK_TYPE.get_or_init(|| tp as usize) as *mut ffi::PyTypeObject)
}

/// Python callables for `functions` (in [`Event`] order), to register.
pub fn callables(py: Python<'_>, functions: [ffi::vectorcallfunc; 7]) -> PyResult<[Py<PyAny>; 7]> {
    let tp = callback_type(py)?;
    let mut made = Vec::with_capacity(7);
    for function in functions {
        // SAFETY: `tp` is the callback type (a live heap type); GIL held. `PyType_GenericAlloc`
        // returns a zeroed object of `Callback`'s size (or NULL with an exception set), whose
        // function is set before anything can call it.
        let callable = unsafe {
            let object = ffi::PyType_GenericAlloc(tp, 0);
            if !object.is_null() {
                (*object.cast::<Callback>()).vectorcall = Some(function);
            }
            Bound::from_owned_ptr_or_err(py, object)?
        };
        made.push(callable.unbind());
    }
    Ok(made
        .try_into()
        .unwrap_or_else(|_| unreachable!("seven callables")))
}

/// Registers `callables` (in [`Event`] order) for `tool_id`, with each event's `bits`.
pub fn install(
    py: Python<'_>,
    tool_id: u8,
    bits: &[u32; 7],
    callables: &[Py<PyAny>; 7],
) -> PyResult<()> {
    let monitoring = py.import("sys")?.getattr("monitoring")?;
    for (bit, callable) in bits.iter().zip(callables) {
        monitoring.call_method1("register_callback", (tool_id, *bit, callable.bind(py)))?;
    }
    Ok(())
}

/// Registers the shared callbacks for `tool_id` (no event enabled yet); returns each
/// [`Event`]'s bit and the callables.
pub fn register(py: Python<'_>, tool_id: u8) -> PyResult<([u32; 7], [Py<PyAny>; 7])> {
    let monitoring = py.import("sys")?.getattr("monitoring")?;
    crate::monitoring::keep_disable(&monitoring)?;
    let events = monitoring.getattr("events")?;
    let mut bits = [0u32; 7];
    for event in Event::EVERY {
        bits[event as usize] = events.getattr(event.name())?.extract()?;
    }
    let shared = callables(py, SHARED)?;
    install(py, tool_id, &bits, &shared)?;
    Ok((bits, shared))
}
