//! What every export shares: the names of the codes, thread ids and labels, the time origin.

use std::collections::HashMap;

use crate::analysis::spans::Thread;
use crate::analysis::text;
use crate::trace::{thread_process, CodeInfo, TraceReader};

/// How long shortened arguments and values may be in an export.
pub(super) const VALUE_CHARS: usize = 120;

/// The largest process or thread id viewers accept (Perfetto stores them as `int32`).
const MAX_ID: u32 = 0x7fff_ffff;

/// What an export needs to know about the trace besides its events.
pub(super) struct Context<'r> {
    /// The codes, in the trace's order; a code's position is its frame or name id.
    pub codes: &'r [CodeInfo],
    /// `module.qualname` of each code, by position.
    names: Vec<String>,
    /// Code id to position.
    positions: HashMap<u32, usize>,
    /// The recorded process id, within what viewers accept (an `int32` above 0).
    pub pid: u32,
    /// The main thread's ident, if the trace names it.
    pub main: Option<u64>,
    /// Timestamp of the first event: exported times count from it.
    pub origin: u64,
    /// The recorded command line (`python app.py --port 80`), `python` when unknown.
    pub command: String,
    /// The recorded `sys.argv`.
    pub argv: &'r [String],
}

impl<'r> Context<'r> {
    pub fn new(reader: &'r TraceReader) -> Self {
        let codes = reader.codes();
        Self {
            codes,
            names: codes.iter().map(CodeInfo::full_name).collect(),
            positions: codes.iter().enumerate().map(|(i, c)| (c.id, i)).collect(),
            pid: reader.header().pid.clamp(1, MAX_ID),
            main: text::main_thread(reader.header()),
            origin: reader.time_range().map_or(0, |(first, _)| first),
            argv: &reader.header().argv,
            command: std::iter::once("python")
                .chain(reader.header().argv.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// Position of code `id` (the reader guarantees every event's code is in the table).
    pub fn position(&self, id: u32) -> usize {
        self.positions.get(&id).copied().unwrap_or(0)
    }

    /// `module.qualname` of the code at `position`.
    pub fn name(&self, position: usize) -> &str {
        self.names.get(position).map_or("?", String::as_str)
    }

    /// Nanoseconds since the first event.
    pub fn time(&self, t_ns: u64) -> u64 {
        t_ns.saturating_sub(self.origin)
    }

    /// The process of `thread`: the recorded one, or a child of it (within what viewers accept).
    pub fn pid(&self, thread: Thread) -> u32 {
        thread_process(thread.ident).map_or(self.pid, |(pid, _)| pid.clamp(1, MAX_ID))
    }

    /// The thread id viewers show: the process id for the main thread (as an OS would), the
    /// process id plus 1 + the thread's position for the others; a child's threads count from
    /// its pid in the order they first recorded calls.
    pub fn tid(&self, thread: Thread) -> u32 {
        if let Some((pid, n)) = thread_process(thread.ident) {
            pid.saturating_add(n).min(MAX_ID)
        } else if self.main == Some(thread.ident) {
            self.pid
        } else {
            let offset = u32::try_from(thread.index).unwrap_or(u32::MAX - 1);
            self.pid
                .saturating_add(1)
                .saturating_add(offset)
                .min(MAX_ID)
        }
    }

    /// The name of the child process `thread` belongs to (`process 4242, child of 4200`), or
    /// `None` for a thread of the recorded process.
    pub fn child_name(&self, thread: Thread) -> Option<String> {
        thread_process(thread.ident).map(|(pid, _)| format!("process {pid}, child of {}", self.pid))
    }

    /// `thread 140234 (main)`.
    pub fn thread_label(&self, thread: Thread) -> String {
        text::thread_label(thread.ident, self.main)
    }
}
