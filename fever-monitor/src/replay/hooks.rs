//! `fever replay`'s checkpoints: the engine's consumer in [`Slot::Checkpoints`], which watches
//! the project's calls for the program side. It keeps a flags byte per code (from its name, when
//! it first sees the code); only codes with flags pay anything:
//! - [`KEEP`]: keep the arguments of this function's next calls (`kept.rs`; the policy of
//!   `Keep`: one given call, or the first N calls of every function), counted by function name
//!   across edited versions;
//! - [`STOP`]: in a replay's child, the end function: its wanted call's frame is noted when it
//!   starts, and the replay ends (the child's callback, given to [`stop_at`]) when that frame
//!   returns or raises.
//!
//! Armed by [`activate`] only: `fever run`, `record` and `watch` are untouched.

use std::collections::HashMap;

use fever_core::replay::CallRef;
use fever_core::settings::Keep;
use fever_core::Project;
use pyo3::ffi::{self, PyObject};
use pyo3::prelude::*;

use super::{kept, names};
use crate::code_object::{parameter_names, running_name};
use crate::engine::{self, At, Consumer, Event, Heard, Slot};

/// Keep the arguments of calls of this code.
const KEEP: u8 = 1;
/// The end function of the replay running in this (child) process.
const STOP: u8 = 2;

/// What ends the replay when its end call ends (`raised`: by an exception; `value`: the
/// returned value or the exception). Safety: GIL held, the current frame the end call's.
pub type Reached = unsafe fn(raised: bool, value: *mut PyObject) -> !;

/// The checkpoints' state.
pub struct Checkpoints {
    /// `module.qualname` and flags of every project code, by entry.
    codes: Vec<(String, u8)>,
    keep: Keep,
    /// Calls started, by function name (only of functions with KEEP).
    counts: HashMap<String, u32>,
    stop: Option<Stop>,
}

/// The end of the replay running in this process.
struct Stop {
    call: CallRef,
    started: u32,
    /// The wanted call's frame (an address, only compared), once it started.
    frame: Option<usize>,
    reached: Reached,
}

/// Arms the checkpoints on tool `tool_id` for `project`, keeping calls by `keep`;
/// `script_module` is the script's file name without `.py` (see [`names`]).
pub fn activate(
    py: Python<'_>,
    tool_id: u8,
    project: &Project,
    keep: Keep,
    script_module: Option<String>,
) -> PyResult<()> {
    names::set_script_module(script_module);
    let checkpoints = Checkpoints {
        codes: Vec::new(),
        keep,
        counts: HashMap::new(),
        stop: None,
    };
    engine::arm(
        py,
        tool_id,
        project,
        Slot::Checkpoints,
        Box::new(checkpoints),
    )
}

/// In a replay's child: stop at the end of `end` (calling `reached` there), keep nothing more.
pub fn stop_at(py: Python<'_>, end: &CallRef, reached: Reached) {
    engine::with(py, Slot::Checkpoints, |c: &mut Checkpoints| {
        c.keep = Keep::First(0);
        c.stop = Some(Stop {
            call: end.clone(),
            started: 0,
            frame: None,
            reached,
        });
        let module = names::script_module();
        for (name, flags) in &mut c.codes {
            *flags = if fever_core::replay::same_function(name, &end.function, module.as_deref()) {
                STOP
            } else {
                0
            };
        }
    });
}

impl Checkpoints {
    fn flags(&self, name: &str) -> u8 {
        let mut flags = 0;
        let keep = match &self.keep {
            Keep::Call(call) => {
                names::answers_to(name, &call.function)
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
            .is_some_and(|s| names::answers_to(name, &s.call.function))
        {
            flags |= STOP;
        }
        flags
    }

    /// A call of flagged code `entry` starts.
    ///
    /// # Safety
    /// GIL held; the current frame is the starting call's; `code` is live.
    #[cold]
    unsafe fn at_start(&mut self, entry: usize, code: *mut PyObject) {
        let (name, flags) = self.codes[entry].clone();
        let mut keep_call = None;
        if flags & KEEP != 0 {
            let n = self.counts.entry(name.clone()).or_insert(0);
            *n += 1;
            let number = *n;
            let wanted = match &self.keep {
                Keep::Call(call) => call.number == number,
                Keep::First(first) => number <= *first,
            };
            if wanted {
                keep_call = CallRef::new(&name, number).ok();
            }
        }
        if flags & STOP != 0 {
            if let Some(stop) = self.stop.as_mut() {
                stop.started += 1;
                if stop.started == stop.call.number {
                    // SAFETY: GIL held (caller).
                    stop.frame = Some(unsafe { ffi::PyEval_GetFrame() } as usize);
                }
            }
        }
        self.codes[entry].1 = self.flags(&name) & flags;
        if let Some(call) = keep_call {
            engine::set_busy(true);
            // SAFETY: guaranteed by the caller.
            unsafe {
                let params = parameter_names(code);
                kept::offer(call, code, &params);
                for name in params {
                    ffi::Py_DECREF(name);
                }
            }
            engine::set_busy(false);
        }
    }

    /// A call of the end function ends: if it is the replay's end call, the replay ends here
    /// and the process exits.
    ///
    /// # Safety
    /// GIL held; the current frame is the ending call's; `value` is live or NULL.
    #[cold]
    unsafe fn at_end(&self, raised: bool, value: *mut PyObject) {
        // SAFETY: GIL held (caller).
        let frame = unsafe { ffi::PyEval_GetFrame() } as usize;
        if let Some(stop) = self.stop.as_ref().filter(|s| s.frame == Some(frame)) {
            // Nothing may re-enter the consumers from here on.
            engine::set_busy(true);
            // SAFETY: guaranteed by the caller.
            unsafe { (stop.reached)(raised, value) };
        }
    }
}

// SAFETY: Python code (keeping a call, ending the replay) runs with the engine busy; nothing
// raises or leaves an exception set.
unsafe impl Consumer for Checkpoints {
    fn events(&self) -> u8 {
        Event::Start.bit() | Event::Return.bit() | Event::Unwind.bit()
    }

    unsafe fn adopt(&mut self, code: *mut PyObject) -> Option<u32> {
        // SAFETY: the engine calls this in a callback: the current frame is the code's.
        let name = unsafe { running_name(code) };
        let entry = u32::try_from(self.codes.len()).ok()?;
        let flags = self.flags(&name);
        self.codes.push((name, flags));
        Some(entry)
    }

    #[inline(always)]
    #[allow(clippy::inline_always)] // each event's handler is this, `event` a constant (engine)
    unsafe fn on(&mut self, event: Event, at: &At) -> Heard {
        let entry = at.entry as usize;
        let flags = self.codes[entry].1;
        if flags == 0 {
            return Heard::Again;
        }
        // SAFETY: the engine calls this in a callback, with the GIL held.
        unsafe {
            match event {
                Event::Start => self.at_start(entry, at.code),
                Event::Return | Event::Unwind if flags & STOP != 0 => {
                    self.at_end(event == Event::Unwind, at.value());
                }
                _ => {}
            }
        }
        Heard::Again
    }
}
