//! What the tracer asks `fever replay` at the project's calls. The tracer keeps a flags byte per
//! code ([`flags_for`] when it first sees the code); only codes with flags pay anything:
//! - [`KEEP`]: the program side keeps the arguments of this function's next calls (the policy
//!   of `Keep`: one given call, or the first N calls of every function), counted by function
//!   name across edited versions;
//! - [`STOP`]: in a replay's child, the end function: [`at_start`] notes the frame of its
//!   wanted call, and [`at_end`] ends the replay when that frame returns or raises.
//!
//! Inactive (every code gets 0) unless [`activate`] ran: `fever run`, `record` and `watch` are
//! untouched. Called with the GIL held, from the tracer's callbacks with its `busy` flag set.

use std::collections::HashMap;
use std::sync::Mutex;

use fever_core::replay::{same_function, CallRef};
use fever_core::settings::Keep;
use fever_core::trace::CodeInfo;
use pyo3::ffi::{self, PyObject};

/// Keep the arguments of calls of this code.
pub const KEEP: u8 = 1;
/// The end function of the replay running in this (child) process.
pub const STOP: u8 = 2;

struct Hooks {
    /// `module.qualname` of every project code, by trace code id.
    names: HashMap<u32, String>,
    keep: Keep,
    /// Calls started, by function name (only of functions with KEEP).
    counts: HashMap<String, u32>,
    stop: Option<Stop>,
    /// The script's module name (it runs as `__main__`): names asked with it match.
    script_module: Option<String>,
}

/// The end of the replay running in this process.
struct Stop {
    call: CallRef,
    started: u32,
    /// The wanted call's frame (an address, only compared), once it started.
    frame: Option<usize>,
}

static HOOKS: Mutex<Option<Hooks>> = Mutex::new(None);

fn lock() -> std::sync::MutexGuard<'static, Option<Hooks>> {
    HOOKS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Turns the hooks on for this process, keeping calls by `keep`; `script_module` is the
/// script's file name without `.py` (see `fever_core::replay::same_function`).
pub fn activate(keep: Keep, script_module: Option<String>) {
    *lock() = Some(Hooks {
        names: HashMap::new(),
        keep,
        counts: HashMap::new(),
        stop: None,
        script_module,
    });
}

/// Does the recorded function `recorded` answer to the name `asked`?
pub fn answers_to(recorded: &str, asked: &str) -> bool {
    let guard = lock();
    let module = guard.as_ref().and_then(|h| h.script_module.as_deref());
    same_function(recorded, asked, module)
}

impl Hooks {
    fn answers(&self, recorded: &str, asked: &str) -> bool {
        same_function(recorded, asked, self.script_module.as_deref())
    }

    fn flags(&self, name: &str) -> u8 {
        let mut flags = 0;
        let keep = match &self.keep {
            Keep::Call(call) => {
                self.answers(name, &call.function)
                    && self.counts.get(name).copied().unwrap_or(0) < call.number
            }
            Keep::First(n) => self.counts.get(name).copied().unwrap_or(0) < *n,
        };
        if keep {
            flags |= KEEP;
        }
        if self
            .stop
            .as_ref()
            .is_some_and(|s| self.answers(name, &s.call.function))
        {
            flags |= STOP;
        }
        flags
    }
}

/// The flags of a code the tracer sees for the first time (and its name, remembered).
pub fn flags_for(info: &CodeInfo) -> u8 {
    let mut guard = lock();
    let Some(hooks) = guard.as_mut() else {
        return 0;
    };
    let name = format!("{}.{}", info.module, info.qualname);
    let flags = hooks.flags(&name);
    hooks.names.insert(info.id, name);
    flags
}

/// In a replay's child: stop at the end of `end`, keep nothing more. Returns the new flags of
/// each code id, for the tracer's table.
pub fn stop_at(end: &CallRef) -> impl Fn(u32) -> u8 {
    let mut guard = lock();
    let names = guard.as_ref().map(|h| h.names.clone()).unwrap_or_default();
    let module = guard.as_ref().and_then(|h| h.script_module.clone());
    if let Some(hooks) = guard.as_mut() {
        hooks.keep = Keep::First(0);
        hooks.stop = Some(Stop {
            call: end.clone(),
            started: 0,
            frame: None,
        });
    }
    let function = end.function.clone();
    move |id| {
        if names
            .get(&id)
            .is_some_and(|name| same_function(name, &function, module.as_deref()))
        {
            STOP
        } else {
            0
        }
    }
}

/// A call of a flagged code starts (code id `id`, code object `code`, parameter names
/// `params`); returns the code's flags from now on.
///
/// # Safety
/// GIL held; the current frame is the starting call's; `code` and `params` are live.
pub unsafe fn at_start(flags: u8, id: u32, code: *mut PyObject, params: &[*mut PyObject]) -> u8 {
    let mut guard = lock();
    let Some(hooks) = guard.as_mut() else {
        return 0;
    };
    let Some(name) = hooks.names.get(&id).cloned() else {
        return 0;
    };
    let mut keep_call = None;
    if flags & KEEP != 0 {
        let n = hooks.counts.entry(name.clone()).or_insert(0);
        *n += 1;
        let number = *n;
        let wanted = match &hooks.keep {
            Keep::Call(call) => call.number == number,
            Keep::First(first) => number <= *first,
        };
        if wanted {
            keep_call = CallRef::new(&name, number).ok();
        }
    }
    if flags & STOP != 0 {
        if let Some(stop) = hooks.stop.as_mut() {
            stop.started += 1;
            if stop.started == stop.call.number {
                // SAFETY: GIL held (caller).
                stop.frame = Some(unsafe { ffi::PyEval_GetFrame() } as usize);
            }
        }
    }
    let new_flags = hooks.flags(&name) & flags;
    drop(guard);
    if let Some(call) = keep_call {
        // SAFETY: guaranteed by the caller.
        unsafe { super::kept::offer(call, code, params) };
    }
    new_flags
}

/// A call of the end function ends (`raised`: by an exception; `value`: the returned value or
/// the exception). If it is the replay's end call, the replay ends here and the process exits.
///
/// # Safety
/// GIL held; the current frame is the ending call's; `value` is live or NULL.
pub unsafe fn at_end(raised: bool, value: *mut PyObject) {
    let reached = {
        let guard = lock();
        // SAFETY: GIL held (caller).
        let frame = unsafe { ffi::PyEval_GetFrame() } as usize;
        guard
            .as_ref()
            .and_then(|h| h.stop.as_ref())
            .is_some_and(|s| s.frame == Some(frame))
    };
    if reached {
        // SAFETY: guaranteed by the caller.
        unsafe { super::child::end_reached(raised, value) };
    }
}
