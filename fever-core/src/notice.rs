//! What the engine tells the user, as typed [`Notice`]s: reloads, call-cache hits and evictions,
//! a recording's summary, warnings. The engine (`fever-monitor`) emits them and never prints;
//! the command line turns them into words on stderr.

use std::path::PathBuf;
use std::time::Duration;

use crate::events::{ChildOutcome, ReloadEvent};
use crate::settings::Target;

/// One thing the engine has to say.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// The watcher watches the directories of `root`'s modules as they are imported.
    Watching { root: PathBuf },
    /// A project file was removed; its running code stays.
    Removed { path: PathBuf },
    /// What one save did here and in the child processes that answered (`busy` ones did not
    /// in time) (`verbose`: every event, not only the notable ones), in `elapsed`.
    Reloaded {
        events: Vec<ReloadEvent>,
        children: Vec<ChildOutcome>,
        busy: Vec<u32>,
        verbose: bool,
        elapsed: Duration,
    },
    /// Cached calls of `function` answered `count` times, saving `saved`.
    CacheHit {
        function: String,
        count: u32,
        saved: Duration,
    },
    /// A cache hit of `function` skipped an effect the call had when it ran (once per entry).
    CacheHitSkips { function: String, effect: Effect },
    /// The cache was full: the entry of `function`, `bytes` big, made room.
    CacheEvicted { function: String, bytes: u64 },
    /// A changed top-level statement of `file` dropped `count` cached calls that depend on it.
    CacheDropped { count: usize, file: String },
    /// Calls of `function` are not cached, for `reason`.
    NotCaching { function: String, reason: String },
    /// The persisted call cache at `path` could not be read and was discarded.
    CacheDiscarded { path: PathBuf, error: String },
    /// The persisted call cache cannot be written: it is kept in memory only.
    CacheInMemoryOnly { error: String },
    /// The call cache could not give a function its trampoline.
    CacheSetupFailed { error: String },
    /// sys.monitoring has no free tool id: the program runs without `without`.
    NoToolId { without: Without },
    /// `fever watch`: the program exited with a non-zero `code`.
    ProgramExited { code: i32 },
    /// `fever watch`: the run ended; the next save starts another.
    WaitingForChanges,
    /// `fever watch`: a save calls for running `target` again.
    Rerunning { target: Target },
    /// `fever replay`: the program's first run ended; it stays warm for replays.
    StaysWarm,
    /// The trace writer did not catch up with the program in time.
    TraceBehind,
    /// A thread was still inside the tracer at exit: the trace has no summary.
    TracerBusyAtExit,
    /// The control socket could not be opened: `fever ps` and `fever attach` cannot reach this
    /// process (it runs on).
    NoControlSocket { error: String },
    /// The trace writer fell behind and `count` events were lost.
    EventsLost { count: u64 },
    /// `count` records read back from the live rings were corrupt (a writer that crashed, or
    /// garbage) and skipped: the trace holds everything else, their events are missing.
    CorruptRecordsSkipped { count: u64 },
    /// A recording was written: `calls` calls of `functions` functions to `path`, `bytes` big.
    Recorded {
        calls: u64,
        functions: usize,
        path: PathBuf,
        bytes: u64,
    },
    /// The trace could not be completed.
    RecordingFailed { error: String },
    /// The last reload of `file` was undone: `functions` run their previous code (none named:
    /// only its statements changed); the file on disk is left as it is.
    Undone {
        file: String,
        functions: Vec<String>,
    },
    /// A replay could not open the debugger `name`.
    DebuggerFailed { name: String, error: String },
    /// The program did `what` to fever's sys.monitoring tool `tool_id`: the calls after that
    /// are missing from what fever saw.
    ToolAltered { tool_id: u8, what: Alteration },
}

/// What a program did to fever's sys.monitoring tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alteration {
    /// Freed it (`sys.monitoring.free_tool_id`).
    Freed,
    /// Freed it, and another tool holds the id now.
    Taken,
    /// Changed its events (`sys.monitoring.set_events`).
    EventsChanged,
    /// Replaced its callbacks (`sys.monitoring.register_callback`).
    CallbacksReplaced,
}

/// What a cache hit does not do again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The call printed output.
    Output,
    /// The call wrote files.
    Files,
}

/// What a program runs without when sys.monitoring has no tool id for fever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Without {
    /// `fever run`: tracing.
    Tracing,
    /// `fever watch`: the call cache.
    CallCache,
}
