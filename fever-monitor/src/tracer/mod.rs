//! The tracer: sys.monitoring callbacks in Rust that record the project's calls into the live
//! ring buffer (see `fever_core::live`), and the switch that turns them on and off.
//!
//! - `callbacks.rs`: the seven C-level callbacks `CPython` calls (`PY_START`, `PY_RESUME`, `PY_RETURN`,
//!   `PY_YIELD`, `PY_THROW`, `RAISE`, `PY_UNWIND`); they do little more than append an event to the thread's batch.
//! - `codes.rs`: which code objects are the project's, their ids and parameter names.
//! - `clock.rs`: raw ticks in callbacks, nanoseconds in the drain.
//! - `recorder.rs`: the drain thread that turns ring records into a trace file.
//!
//! Library code (outside the project root) gets `sys.monitoring.DISABLE` the first time each of
//! its local events fires, so it runs at full speed after that. The tracer's state is only ever
//! touched with the GIL held (callbacks, start, stop), which is what makes the `static` sound;
//! a callback that finds the tracer busy (a snapshot running Python code) records nothing.

#[cfg(test)]
mod arg_cost;
mod callbacks;
pub mod clock;
mod codes;
pub mod recorder;

use std::cell::UnsafeCell;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fever_core::live::{EventBatch, LiveRecord, RawEvent};
use fever_core::ring::RingWriter;
use fever_core::settings::Snapshots;
use fever_core::trace::{CodeCalls, RunStats};
use fever_core::Project;
use pyo3::ffi::{self, PyObject};
use pyo3::prelude::*;
use rkyv::util::AlignedVec;

use crate::snapshot::SnapshotLimits;
use codes::CodeTable;

/// Events per batch before it is pushed into the ring.
const BATCH_EVENTS: usize = 1024;
/// How long the tracer sleeps while the drain catches up, and at most how many times per
/// record (a drain that stopped, e.g. on a full disk, must not hang the program).
const WAIT: std::time::Duration = std::time::Duration::from_micros(50);
const MAX_WAITS: u32 = 20_000;
/// Ticks (about 0.1–0.3 s of TSC) after which a thread's pending events are pushed and published
/// even if its batch is not full.
const FLUSH_TICKS: u64 = 1 << 28;
/// Snapshot bytes per batch before it is pushed into the ring.
const BATCH_SNAPSHOT_BYTES: usize = 256 * 1024;

/// What to record.
pub struct Settings {
    pub project: Project,
    pub snapshots: Snapshots,
    /// Calls recorded per code; 0 = all.
    pub max_calls: u64,
    pub limits: SnapshotLimits,
}

/// A call in progress on one thread.
struct Frame {
    entry: u32,
    recorded: bool,
    /// Arguments that may change during the call, kept to re-hash them when it ends.
    watched: Option<Box<Watched>>,
}

/// Mutable arguments of a recorded call and their structural hash at the start.
struct Watched {
    values: Vec<*mut PyObject>,
    hash: u64,
}

/// One Python thread's pending events and its stack of project calls.
struct ThreadState {
    ident: u64,
    batch: EventBatch,
    stack: Vec<Frame>,
}

/// Everything the callbacks use.
struct Tracer {
    codes: CodeTable,
    threads: Vec<ThreadState>,
    /// Index into `threads` of the thread that ran the last callback.
    last: usize,
    ring: RingWriter,
    /// The drain's read position in the ring (it publishes it after every read).
    drained: Arc<AtomicU64>,
    encoded: AlignedVec,
    settings: Settings,
    /// Scratch buffer for re-hashing arguments.
    scratch: Vec<u8>,
    busy: bool,
    /// Events pushed into the ring (the drain compares with what it wrote to count losses).
    pushed: u64,
    /// Ticks at the last flush forced by time.
    last_flush: u64,
}

/// The tracer, reachable from callbacks; `None` when not recording.
struct GilCell(UnsafeCell<Option<Tracer>>);

// SAFETY: the cell is only accessed with the GIL held (see the module docs), which serializes
// every access; no reference escapes a callback.
unsafe impl Sync for GilCell {}

static TRACER: GilCell = GilCell(UnsafeCell::new(None));

/// The running tracer. Safety: the GIL is held and no other reference from this function is
/// alive (callbacks take it once at entry and are not re-entered while they hold it, thanks to
/// `busy`).
#[inline]
unsafe fn tracer() -> Option<&'static mut Tracer> {
    // SAFETY: guaranteed by the caller.
    unsafe { (*TRACER.0.get()).as_mut() }
}

impl Tracer {
    /// Index of the calling thread's state.
    #[inline(always)]
    #[allow(clippy::inline_always)] // twice per call of the program
    fn thread(&mut self) -> usize {
        // SAFETY: only reads the calling thread's id.
        #[allow(clippy::useless_conversion)] // `c_ulong` is narrower than u64 on some targets
        let ident: u64 = unsafe { ffi::PyThread_get_thread_ident() }.into();
        if let Some(t) = self.threads.get(self.last) {
            if t.ident == ident {
                return self.last;
            }
        }
        let index = self
            .threads
            .iter()
            .position(|t| t.ident == ident)
            .unwrap_or_else(|| {
                self.threads.push(ThreadState {
                    ident,
                    batch: EventBatch {
                        thread: ident,
                        events: Vec::with_capacity(BATCH_EVENTS),
                        snapshots: Vec::new(),
                    },
                    stack: Vec::new(),
                });
                self.threads.len() - 1
            });
        self.last = index;
        index
    }

    /// Appends an event to thread `t`'s batch; `snapshot_from` is where this event's snapshot
    /// bytes start in the batch (`None`: no snapshot).
    #[inline(always)]
    #[allow(clippy::inline_always)] // twice per call of the program
    fn push(&mut self, t: usize, kind: u8, entry: u32, flags: u8, snapshot_from: Option<usize>) {
        let ticks = clock::ticks();
        let batch = &mut self.threads[t].batch;
        let snapshot_len = snapshot_from.map_or(0, |from| {
            u32::try_from(batch.snapshots.len() - from + 1).unwrap_or(0)
        });
        batch.events.push(RawEvent {
            ticks,
            code: entry,
            snapshot_len,
            kind,
            flags,
        });
        if batch.events.len() >= BATCH_EVENTS || batch.snapshots.len() >= BATCH_SNAPSHOT_BYTES {
            self.flush_thread(t);
        } else if ticks.wrapping_sub(self.last_flush) > FLUSH_TICKS {
            // A quiet thread's events reach the file within a fraction of a second, so a
            // program killed later loses none of them.
            self.flush_thread(t);
            self.ring.flush();
            self.last_flush = ticks;
        }
    }

    /// Pushes thread `t`'s batch into the ring.
    fn flush_thread(&mut self, t: usize) {
        let state = &mut self.threads[t];
        if state.batch.events.is_empty() {
            return;
        }
        self.pushed += state.batch.events.len() as u64;
        let record = LiveRecord::Events(std::mem::take(&mut state.batch));
        // A batch that cannot be encoded (never expected) is counted lost by the drain.
        if record.encode_into(&mut self.encoded).is_ok() {
            self.push_record();
        }
        let LiveRecord::Events(mut batch) = record else {
            unreachable!("built as Events above")
        };
        batch.events.clear();
        batch.snapshots.clear();
        self.threads[t].batch = batch;
    }

    /// Announces a new code in the ring (before any batch can refer to it).
    fn announce(&mut self, info: fever_core::trace::CodeInfo) {
        // A code that cannot be encoded (never expected) loses its events in the drain.
        if LiveRecord::Code(info)
            .encode_into(&mut self.encoded)
            .is_ok()
        {
            self.push_record();
        }
    }

    /// Pushes `self.encoded` into the ring, first waiting while the drain is more than half a
    /// ring behind: a recording slows the program down rather than lose events to the
    /// ring's overwrite-oldest rule. (The drain needs no GIL, so waiting with it is safe; a drain
    /// that ended, e.g. on a full disk, sets `drained` to `u64::MAX` and is never waited for.)
    fn push_record(&mut self) {
        let window = self.ring.capacity() / 2;
        let behind = |t: &Self| {
            t.ring
                .position()
                .saturating_sub(t.drained.load(Ordering::Acquire))
        };
        if behind(self) > window {
            // The drain can only read what is published; the ring publishes every 64 records.
            self.ring.flush();
        }
        let mut waited = 0u32;
        while behind(self) > window && waited < MAX_WAITS {
            std::thread::sleep(WAIT);
            waited += 1;
        }
        self.ring.push(&self.encoded);
    }
}

/// What recording produced, for the summary line.
pub struct Finished {
    pub stats: RunStats,
    /// Events pushed into the ring.
    pub pushed: u64,
    pub ring: RingWriter,
}

/// Starts recording: installs the callbacks for `tool_id` and enables their events globally.
/// `drained` is the drain's read position in the ring (see [`recorder::Recorder::start`]).
pub fn start(
    py: Python<'_>,
    tool_id: u8,
    settings: Settings,
    ring: RingWriter,
    drained: Arc<AtomicU64>,
) -> PyResult<()> {
    let resume_opcode: u8 = py
        .import("dis")?
        .getattr("opmap")?
        .get_item("RESUME")?
        .extract()?;
    let tracer = Tracer {
        codes: CodeTable::new(settings.project.clone(), resume_opcode),
        threads: Vec::new(),
        last: 0,
        ring,
        drained,
        encoded: AlignedVec::new(),
        settings,
        scratch: Vec::new(),
        busy: false,
        pushed: 0,
        last_flush: clock::ticks(),
    };
    // SAFETY: the GIL is held (we have `py`); no callback runs before the events are enabled.
    unsafe { *TRACER.0.get() = Some(tracer) };
    callbacks::register(py, tool_id)
}

/// Stops recording: disables the events, flushes every thread's batch and hands back the ring
/// writer and the exact call counts.
///
/// `Ok(None)` when there is nothing to finish: not recording, or another thread is still inside a
/// callback (it ran Python code that let go of the GIL, e.g. a `__del__`), in which case the
/// tracer is left in place for it, untouched, and the trace ends without its summary.
pub fn stop(py: Python<'_>, tool_id: u8) -> PyResult<Option<Finished>> {
    callbacks::unregister(py, tool_id)?;
    // SAFETY: the GIL is held; only a callback suspended inside Python code can hold the state.
    if unsafe { (*TRACER.0.get()).as_ref() }.is_some_and(|t| t.busy) {
        return Ok(None);
    }
    // SAFETY: as above, and no callback is inside the tracer.
    let Some(mut tracer) = (unsafe { (*TRACER.0.get()).take() }) else {
        return Ok(None);
    };
    for t in 0..tracer.threads.len() {
        tracer.flush_thread(t);
        for frame in std::mem::take(&mut tracer.threads[t].stack) {
            release(&mut tracer, frame.watched);
        }
    }
    let calls = tracer
        .codes
        .entries
        .iter()
        .filter(|e| e.calls > 0)
        .map(|e| CodeCalls {
            code: e.id,
            calls: e.calls,
            recorded: e.recorded,
        })
        .collect();
    let Tracer { ring, pushed, .. } = tracer;
    Ok(Some(Finished {
        stats: RunStats {
            calls,
            lost_events: 0,
        },
        pushed,
        ring,
    }))
}

/// Pushes every thread's pending events into the ring and publishes them, so the drain can
/// write everything the program did so far (the program side of `fever replay` does this when
/// its first run ends).
pub fn flush(_py: Python<'_>) {
    // SAFETY: the GIL is held (we have `py`); a callback busy inside Python code keeps its events.
    let Some(t) = (unsafe { tracer() }) else {
        return;
    };
    if t.busy {
        return;
    }
    for th in 0..t.threads.len() {
        t.flush_thread(th);
    }
    t.ring.flush();
}

/// In a replay's forked child: keeps tracing with the same code table (the codes' `co_extra`
/// slots point into it) but into a private ring nobody drains, so nothing reaches the parent's
/// ring or trace. The parent's pending events and stacks are dropped (the parent has them).
pub fn rehome_in_child(_py: Python<'_>) -> std::io::Result<()> {
    // SAFETY: the GIL is held; right after fork no callback is running in this process.
    let Some(t) = (unsafe { tracer() }) else {
        return Ok(());
    };
    let path = ring_path().with_extension("replay");
    let ring = RingWriter::create(&path, 1 << 20).map_err(std::io::Error::other)?;
    let _ = std::fs::remove_file(&path);
    // Dropping the parent's writer would publish into its ring.
    std::mem::forget(std::mem::replace(&mut t.ring, ring));
    t.drained = Arc::new(AtomicU64::new(u64::MAX));
    for state in &mut t.threads {
        state.batch.events.clear();
        state.batch.snapshots.clear();
        // The frames' argument references are the parent's too; they stay alive, unused.
        std::mem::forget(std::mem::take(&mut state.stack));
    }
    Ok(())
}

/// Sets every known code's replay flags to `flags(id)` (a replay's child changes what it wants).
pub fn reflag(_py: Python<'_>, flags: impl Fn(u32) -> u8) {
    // SAFETY: the GIL is held and no callback is inside the tracer (we run from Python code).
    if let Some(t) = unsafe { tracer() } {
        for entry in &mut t.codes.entries {
            entry.replay = flags(entry.id);
        }
    }
}

/// Turns the tracer off without a trace of it: for a forked child, whose ring is the parent's.
pub fn abandon(py: Python<'_>, tool_id: u8) -> PyResult<()> {
    callbacks::unregister(py, tool_id)?;
    // SAFETY: the GIL is held and callbacks can no longer run.
    if let Some(tracer) = unsafe { (*TRACER.0.get()).take() } {
        // Dropping would publish into and close the parent's ring.
        std::mem::forget(tracer);
    }
    Ok(())
}

/// Drops the references a finished call kept to its arguments.
/// With `busy` set: dropping an argument can run a `__del__` of the project's, whose callbacks
/// must not touch the state the caller is using.
fn release(t: &mut Tracer, watched: Option<Box<Watched>>) {
    if let Some(w) = watched {
        t.busy = true;
        for v in w.values {
            // SAFETY: we own these references (or NULL); callers hold the GIL.
            unsafe { ffi::Py_XDECREF(v) };
        }
        t.busy = false;
    }
}

/// A temporary path for the live ring: on tmpfs when there is one, so the kernel never writes
/// its pages to disk.
pub fn ring_path() -> std::path::PathBuf {
    let dir = Path::new("/dev/shm");
    let dir = if dir.is_dir() {
        dir.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("fever-ring-{}", std::process::id()))
}
