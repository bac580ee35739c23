//! The profiler, an engine consumer of `fever attach` and `fever record --profile-only`: exact
//! counts and times of the project's functions, counted in the callbacks straight into the
//! shared region (`fever_core::profile`), with no per-event record. Each thread keeps a stack of the calls it saw start; a return pops its own call only
//! (calls already running at attach are not on the stack, so their returns pass by).
//! `fever record --profile-only` arms the same profiler for the whole run (`profile_only.rs`).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fever_core::profile::{Counters, RegionWriter};
use fever_core::trace::CodeInfo;
use pyo3::ffi::{self, PyObject};

use crate::code_object::{current_globals, int_attr, module_name, str_attr};
use crate::engine::{clock, At, Consumer, Event, Heard};

/// Functions the region has room for (32 bytes each: 2 MiB, pages used as touched).
pub const CAPACITY: u32 = 1 << 16;

/// A call in progress on one thread.
struct Frame {
    entry: u32,
    start: u64,
    /// Ticks spent in the calls it made (seen by the profiler).
    children: u64,
}

/// The profiler: its region, the names of its entries (read by the control thread), and each
/// thread's stack.
pub struct Profiler {
    region: RegionWriter,
    /// Nanoseconds per tick of the region's counters.
    ns_per_tick: f64,
    names: Arc<Mutex<Vec<String>>>,
    /// Each entry's code, by entry.
    codes: Vec<CodeInfo>,
    stacks: Vec<Vec<Frame>>,
    /// How many calls of each entry are running now (only the outermost adds to the total).
    running: Vec<u32>,
}

impl Profiler {
    /// A profiler counting into a fresh region at `path` (room for [`CAPACITY`] functions),
    /// its clock's rate measured now; `names` receives each entry's name.
    pub fn create(path: &Path, names: Arc<Mutex<Vec<String>>>) -> std::io::Result<Self> {
        let ns_per_tick = clock::quick_rate(Duration::from_millis(1));
        Ok(Self {
            region: RegionWriter::create(path, CAPACITY, ns_per_tick)?,
            ns_per_tick,
            names,
            codes: Vec::new(),
            stacks: Vec::new(),
            running: Vec::new(),
        })
    }

    /// Nanoseconds per tick of the counters.
    pub fn ns_per_tick(&self) -> f64 {
        self.ns_per_tick
    }

    /// Each entry's code (its id the entry) and counters so far.
    pub fn counted(&self) -> impl Iterator<Item = (&CodeInfo, Counters)> {
        self.codes.iter().zip(self.region.read(self.codes.len()))
    }

    fn push(&mut self, at: &At, now: u64) {
        self.running[at.entry as usize] += 1;
        at.of_thread(&mut self.stacks).push(Frame {
            entry: at.entry,
            start: now,
            children: 0,
        });
    }

    fn pop(&mut self, at: &At, now: u64) {
        let Some(stack) = self.stacks.get_mut(at.thread) else {
            return;
        };
        if stack.last().map(|f| f.entry) != Some(at.entry) {
            return;
        }
        let Some(frame) = stack.pop() else { return };
        let elapsed = now.saturating_sub(frame.start);
        let running = &mut self.running[frame.entry as usize];
        *running = running.saturating_sub(1);
        self.region.add_time(
            frame.entry,
            elapsed,
            elapsed.saturating_sub(frame.children),
            *running == 0,
        );
        if let Some(parent) = stack.last_mut() {
            parent.children += elapsed;
        }
    }
}

// SAFETY: `adopt` and `on` run no Python code and never raise (attribute reads and a lock only).
unsafe impl Consumer for Profiler {
    fn events(&self) -> u8 {
        Event::CALLS
    }

    unsafe fn adopt(&mut self, code: *mut PyObject) -> Option<u32> {
        let mut names = self
            .names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = u32::try_from(names.len())
            .ok()
            .filter(|&e| e < self.region.capacity())?;
        // SAFETY: the engine calls this in a callback: GIL held, the current frame the code's.
        let code_info = unsafe {
            let globals = current_globals();
            let module = module_name(globals);
            ffi::Py_XDECREF(globals);
            let qualname = str_attr(code, c"co_qualname").unwrap_or_default();
            let first_line = int_attr(code, c"co_firstlineno")
                .and_then(|line| u32::try_from(line).ok())
                .unwrap_or_default();
            CodeInfo {
                id: entry,
                module,
                qualname,
                file: str_attr(code, c"co_filename").unwrap_or_default(),
                first_line,
                code_hash: 0,
            }
        };
        // Lambdas and generator expressions share their name within a function: their first
        // line tells them apart (`app.f.<locals>.<lambda>:12`).
        let line = if code_info.qualname.ends_with('>') {
            format!(":{}", code_info.first_line)
        } else {
            String::new()
        };
        names.push(format!("{}.{}{line}", code_info.module, code_info.qualname));
        self.codes.push(code_info);
        self.running.push(0);
        Some(entry)
    }

    #[inline(always)]
    #[allow(clippy::inline_always)] // each event's handler is this, `event` a constant (engine)
    unsafe fn on(&mut self, event: Event, at: &At) -> Heard {
        let now = clock::ticks();
        match event {
            Event::Start => {
                self.region.count_call(at.entry);
                self.push(at, now);
            }
            Event::Resume | Event::Throw => self.push(at, now),
            Event::Return | Event::Yield | Event::Unwind => self.pop(at, now),
            Event::Raise => {}
        }
        Heard::Again
    }
}
