//! The tracer: the engine's consumer that records the project's calls into the live ring buffer
//! (see `fever_core::live`), and the switch that arms and disarms it.
//!
//! - `callbacks.rs`: what it does at each event (`PY_START`, `PY_RESUME`, `PY_RETURN`, `PY_YIELD`,
//!   `PY_THROW`, `RAISE`, `PY_UNWIND`): little more than append an event to the thread's run (encoded as the trace stores it).
//! - `codes.rs`: the project's code objects as the tracer knows them: ids, parameter names.
//! - `recorder.rs`: the drain thread that turns ring records into a trace file.
//!
//! The engine (`crate::engine`) owns the callbacks, the per-code decision and the thread
//! lookup; the tracer's state is touched with the GIL held only (its events, start, stop).

mod callbacks;
mod codes;
pub mod recorder;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fever_core::clock::TickConverter;
use fever_core::live::LiveRecord;
use fever_core::ring::RingWriter;
use fever_core::settings::Snapshots;
use fever_core::trace::{CodeCalls, EventKind, EventRun, RunStats};
use fever_core::Project;
use pyo3::ffi::{self, PyObject};
use pyo3::prelude::*;
use rkyv::util::AlignedVec;

use crate::engine::{self, clock, Slot};
use crate::snapshot::SnapshotLimits;
use codes::CodeTable;

/// Bytes of a thread's run of events (snapshots included) before it is pushed into the ring.
const RUN_BYTES: usize = 64 * 1024;
/// How long the tracer sleeps while the drain catches up, and at most how many times per
/// record (a drain that stopped, e.g. on a full disk, must not hang the program).
const WAIT: std::time::Duration = std::time::Duration::from_micros(50);
const MAX_WAITS: u32 = 20_000;
/// Ticks (about 0.1–0.3 s of TSC) after which a thread's pending events are pushed and published
/// even if its run is not full.
const FLUSH_TICKS: u64 = 1 << 28;

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
    /// Its id (`threading.get_ident()`).
    ident: u64,
    /// Its events not yet pushed into the ring.
    run: EventRun,
    /// The snapshot of the event being made (appended to `run` with it).
    snapshot: Vec<u8>,
    stack: Vec<Frame>,
}

/// Everything the tracer's events use.
pub struct Tracer {
    codes: CodeTable,
    /// By the engine's thread index.
    threads: Vec<ThreadState>,
    ring: RingWriter,
    /// The drain's read position in the ring (it publishes it after every read).
    drained: Arc<AtomicU64>,
    encoded: AlignedVec,
    settings: Settings,
    /// Ticks to monotonic nanoseconds.
    to_ns: TickConverter,
    /// Scratch buffer for re-hashing arguments.
    scratch: Vec<u8>,
    /// Events pushed into the ring (the drain compares with what it wrote to count losses).
    pushed: u64,
    /// Ticks at the last flush forced by time.
    last_flush: u64,
}

impl Tracer {
    /// Index of the calling thread's state (created on first use; the engine's thread indexes
    /// are never reused, so an index in range is this thread's).
    #[inline(always)]
    #[allow(clippy::inline_always)] // twice per call of the program
    fn thread(&mut self, at: &engine::At) -> usize {
        let index = at.thread;
        if index >= self.threads.len() {
            self.new_thread(index, at.ident);
        }
        index
    }

    /// Makes room for the engine's thread `index`, whose id is `ident`.
    #[cold]
    fn new_thread(&mut self, index: usize, ident: u64) {
        while self.threads.len() <= index {
            self.threads.push(ThreadState {
                ident: 0,
                run: EventRun::default(),
                snapshot: Vec::new(),
                stack: Vec::new(),
            });
        }
        self.threads[index].ident = ident;
    }

    /// Appends an event to thread `t`'s run, with the snapshot in its `snapshot` buffer when
    /// `snapshot` is true.
    #[inline(always)]
    #[allow(clippy::inline_always)] // twice per call of the program
    fn push(&mut self, t: usize, kind: EventKind, entry: u32, flags: u32, snapshot: bool) {
        let ticks = clock::ticks();
        let t_ns = self.to_ns.to_ns(ticks);
        let state = &mut self.threads[t];
        let bytes = snapshot.then_some(state.snapshot.as_slice());
        state
            .run
            .push(kind, (state.ident, entry, t_ns), flags, bytes);
        if snapshot {
            state.snapshot.clear();
        }
        if state.run.byte_len() >= RUN_BYTES {
            self.flush_thread(t);
        } else if ticks.wrapping_sub(self.last_flush) > FLUSH_TICKS {
            // A quiet thread's events reach the file within a fraction of a second, so a
            // program killed later loses none of them.
            self.flush_thread(t);
            self.ring.flush();
            self.last_flush = ticks;
        }
    }

    /// Pushes thread `t`'s run into the ring.
    fn flush_thread(&mut self, t: usize) {
        let state = &mut self.threads[t];
        if state.run.is_empty() {
            return;
        }
        self.pushed += u64::from(state.run.len());
        let record = LiveRecord::Events(std::mem::take(&mut state.run));
        // A run that cannot be encoded (never expected) is counted lost by the drain.
        if record.encode_into(&mut self.encoded).is_ok() {
            self.push_record();
        }
        let LiveRecord::Events(mut run) = record else {
            unreachable!("built as Events above")
        };
        run.clear();
        self.threads[t].run = run;
    }

    /// Announces a new code in the ring (before any run can refer to it).
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

/// Starts recording: arms the tracer on the engine (tool `tool_id`).
/// `drained` is the drain's read position in the ring (see [`recorder::Recorder::start`]).
pub fn start(
    py: Python<'_>,
    tool_id: u8,
    settings: Settings,
    to_ns: TickConverter,
    ring: RingWriter,
    drained: Arc<AtomicU64>,
) -> PyResult<()> {
    let resume_opcode: u8 = py
        .import("dis")?
        .getattr("opmap")?
        .get_item("RESUME")?
        .extract()?;
    let project = settings.project.clone();
    let tracer = Tracer {
        codes: CodeTable::new(resume_opcode),
        threads: Vec::new(),
        ring,
        drained,
        encoded: AlignedVec::new(),
        settings,
        to_ns,
        scratch: Vec::new(),
        pushed: 0,
        last_flush: clock::ticks(),
    };
    engine::arm(py, tool_id, &project, Slot::Tracer, Box::new(tracer))
}

/// Stops recording: disarms the tracer, flushes every thread's run and hands back the ring
/// writer and the exact call counts.
///
/// `Ok(None)` when there is nothing to finish: not recording, or another thread is still inside a
/// callback (it ran Python code that let go of the GIL, e.g. a `__del__`), in which case the
/// tracer is left in place for it, untouched, and the trace ends without its summary.
pub fn stop(py: Python<'_>) -> PyResult<Option<Finished>> {
    let Some(mut tracer) = engine::disarm::<Tracer>(py, Slot::Tracer)? else {
        return Ok(None);
    };
    for t in 0..tracer.threads.len() {
        tracer.flush_thread(t);
        for frame in std::mem::take(&mut tracer.threads[t].stack) {
            release(frame.watched);
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
    let Tracer { ring, pushed, .. } = *tracer;
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
pub fn flush(py: Python<'_>) {
    // A callback busy inside Python code keeps its events.
    engine::with(py, Slot::Tracer, |t: &mut Tracer| {
        for th in 0..t.threads.len() {
            t.flush_thread(th);
        }
        t.ring.flush();
    });
}

/// In a replay's forked child: keeps tracing with the same code table into a private ring
/// nobody drains, so nothing reaches the parent's ring or trace. The parent's pending events
/// and stacks are dropped (the parent has them).
pub fn rehome_in_child(py: Python<'_>) -> std::io::Result<()> {
    // Right after fork no callback is running in this process.
    engine::with(py, Slot::Tracer, |t: &mut Tracer| {
        let path = ring_path().with_extension("replay");
        let ring = RingWriter::create(&path, 1 << 20).map_err(std::io::Error::other)?;
        let _ = std::fs::remove_file(&path);
        // Dropping the parent's writer would publish into its ring.
        std::mem::forget(std::mem::replace(&mut t.ring, ring));
        t.drained = Arc::new(AtomicU64::new(u64::MAX));
        for state in &mut t.threads {
            state.run.clear();
            state.snapshot.clear();
            // The frames' argument references are the parent's too; they stay alive, unused.
            std::mem::forget(std::mem::take(&mut state.stack));
        }
        Ok(())
    })
    .unwrap_or(Ok(()))
}

/// Turns the tracer off without a trace of it: for a forked child, whose ring is the parent's
/// (dropping the tracer would publish into and close it).
pub fn abandon(py: Python<'_>) -> PyResult<()> {
    engine::abandon::<Tracer>(py, Slot::Tracer)
}

/// Drops the references a finished call kept to its arguments, engine busy: dropping an
/// argument can run a `__del__` of the project's, whose callbacks must not touch the state the
/// caller is using.
#[inline(always)]
#[allow(clippy::inline_always)] // at the end of every call of the program
fn release(watched: Option<Box<Watched>>) {
    if let Some(w) = watched {
        release_watched(*w);
    }
}

/// [`release`] of a call's watched arguments.
#[cold]
fn release_watched(w: Watched) {
    engine::set_busy(true);
    for v in w.values {
        // SAFETY: we own these references (or NULL); callers hold the GIL.
        unsafe { ffi::Py_XDECREF(v) };
    }
    engine::set_busy(false);
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
