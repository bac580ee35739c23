//! The tracer: the engine's consumer that records the project's calls into the live ring buffer
//! (see `fever_core::live`), and the switch that arms and disarms it.
//!
//! - `callbacks.rs`: what it does at each event (`PY_START`, `PY_RESUME`, `PY_RETURN`, `PY_YIELD`,
//!   `PY_THROW`, `RAISE`, `PY_UNWIND`): little more than append an event to the thread's run (encoded as the trace stores it).
//! - `codes.rs`: the project's code objects as the tracer knows them: ids, parameter names.
//! - `ids.rs`: the trace's code ids, shared by the program's tracer and the drain.
//! - `recorder.rs`: the drain thread that turns ring records into a trace file.
//! - `term.rs`: a recording child ended by SIGTERM pushes its pending calls first.
//!
//! The engine (`crate::engine`) owns the callbacks, the per-code decision and the thread
//! lookup; the tracer's state is touched with the GIL held only (its events, start, stop).

mod callbacks;
mod codes;
mod ids;
pub mod prefault;
pub mod recorder;
mod term;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use fever_core::clock::TickConverter;
use fever_core::control::has_ended;
use fever_core::live::LiveRecord;
use fever_core::ring::RingWriter;
use fever_core::settings::Snapshots;
use fever_core::trace::{CodeCalls, EventKind, EventRun, RunStats};
use fever_core::Project;
use pyo3::ffi::PyObject;
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
/// `FLUSH_TICKS` shifted right by it is `RUN_BYTES` (see [`Tracer::push`]).
const FLUSH_SHIFT: u32 = FLUSH_TICKS.trailing_zeros() - RUN_BYTES.trailing_zeros();
const _: () =
    assert!(RUN_BYTES.is_power_of_two() && FLUSH_TICKS >> FLUSH_SHIFT == RUN_BYTES as u64);

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
    /// The code's entry in the tracer's table.
    entry: u32,
    /// The code's id in the trace (its entry's, kept here for the call's end).
    id: u32,
    recorded: bool,
    /// A generator's or coroutine's frame: counted in its code's [`codes::CodeEntry::live`].
    suspends: bool,
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
    /// Every event is recorded and none has a snapshot (`--snapshots none
    /// --max-calls-per-function 0`): an event reads the clock first (`callbacks::early_ticks`).
    early: bool,
    /// Returned and yielded values are snapshotted (`--snapshots all`).
    snap_values: bool,
    /// Ticks to monotonic nanoseconds.
    to_ns: TickConverter,
    /// `to_ns` has its final rate (see `engine::clock::refined`).
    refined: bool,
    /// Events pushed into the ring (the drain compares with what it wrote to count losses).
    pushed: u64,
    /// Ticks at the last flush forced by time.
    last_flush: u64,
    /// The arguments of the call being snapshotted (empty between calls; kept for its
    /// capacity, so a snapshot allocates nothing for them).
    args: Vec<*mut PyObject>,
}

/// A thread's index in [`Tracer::threads`], made only by [`Tracer::thread`]: always in range
/// (threads are never removed), so [`Tracer::state`] needs no bounds check.
#[derive(Clone, Copy)]
struct Th(usize);

impl Tracer {
    /// The calling thread's state's index (created on first use; the engine's thread indexes
    /// are never reused, so an index in range is this thread's).
    #[inline(always)]
    #[allow(clippy::inline_always)] // twice per call of the program
    fn thread(&mut self, at: &engine::At) -> Th {
        let index = at.thread;
        if index >= self.threads.len() {
            self.new_thread(index, at.ident);
        }
        Th(index)
    }

    /// In a forked child: drops the parent's pending events and stacks (the parent has them),
    /// and with them the counts of its generators' frames ([`codes::CodeEntry::live`]).
    fn drop_parents_threads(&mut self) {
        for state in &mut self.threads {
            state.run.clear();
            state.snapshot.clear();
            // The frames' argument references are the parent's too; they stay alive, unused.
            std::mem::forget(std::mem::take(&mut state.stack));
        }
        for entry in &mut self.codes.entries {
            entry.live = 0;
        }
    }

    /// Thread `th`'s state.
    #[inline(always)]
    #[allow(clippy::inline_always)] // several times per call of the program
    fn state(&mut self, th: Th) -> &mut ThreadState {
        // SAFETY: `th` is in range (made by `thread`, which makes room; never removed).
        unsafe { self.threads.get_unchecked_mut(th.0) }
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

    /// Appends an event to thread `th`'s run, with the snapshot in its `snapshot` buffer when
    /// `snapshot` is true, at `ticks` (read now when `None`).
    #[inline(always)]
    #[allow(clippy::inline_always)] // twice per call of the program
    fn push(
        &mut self,
        th: Th,
        kind: EventKind,
        entry: u32,
        flags: u32,
        snapshot: bool,
        ticks: Option<u64>,
    ) {
        let ticks = ticks.unwrap_or_else(clock::ticks);
        let t_ns = self.to_ns.to_ns(ticks);
        let since = ticks.wrapping_sub(self.last_flush) >> FLUSH_SHIFT;
        let state = self.state(th);
        let bytes = snapshot.then_some(state.snapshot.as_slice());
        state
            .run
            .push(kind, (state.ident, entry, t_ns), flags, bytes);
        if snapshot {
            state.snapshot.clear();
        }
        // One test for both reasons to flush: the run holds `RUN_BYTES`, or `FLUSH_TICKS`
        // elapsed since the last flush forced by time (scaled down to the same bound).
        if (state.run.byte_len() as u64 | since) >= RUN_BYTES as u64 {
            self.flush_due(th, ticks);
        }
    }

    /// Flushes thread `th`'s full run or, when `FLUSH_TICKS` elapsed, every pending event.
    #[cold]
    #[inline(never)]
    fn flush_due(&mut self, th: Th, ticks: u64) {
        if self.state(th).run.byte_len() >= RUN_BYTES {
            self.flush_thread(th.0);
        } else {
            // A quiet thread's events reach the file within a fraction of a second, so a
            // program killed later loses none of them.
            self.flush_thread(th.0);
            self.ring.flush();
            self.last_flush = ticks;
            if !self.refined {
                self.refine();
            }
        }
    }

    /// Continues the time line at the rate measured since the extension's import, once that
    /// is long enough: recording starts with a provisional rate instead of waiting for it.
    #[cold]
    fn refine(&mut self) {
        if let Some((rate, at)) = clock::refined() {
            self.to_ns = self.to_ns.continued(at, rate);
            self.refined = true;
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
    let resume_opcode = resume_opcode(py)?;
    let project = settings.project.clone();
    ids::reset();
    let tracer = Tracer {
        codes: CodeTable::new(
            resume_opcode,
            project.canonical_root().display().to_string(),
        ),
        threads: Vec::new(),
        ring,
        drained,
        encoded: AlignedVec::new(),
        early: settings.snapshots == Snapshots::None && settings.max_calls == 0,
        snap_values: settings.snapshots == Snapshots::All,
        settings,
        to_ns,
        refined: false,
        pushed: 0,
        // The first flush forced by time comes a quarter of the interval in (~20-70 ms), where
        // the provisional clock rate is refined (`Tracer::refine`).
        last_flush: clock::ticks().wrapping_sub(FLUSH_TICKS - FLUSH_TICKS / 4),
        args: Vec::new(),
    };
    engine::arm(py, tool_id, &project, Slot::Tracer, Box::new(tracer))?;
    Ok(())
}

/// The `RESUME` opcode of this interpreter: the first instruction of an empty module's code.
///
/// Neither `dis` (~200 ms to import on 3.15: `fever attach --record` arms the tracer in a running
/// program, that time would be the attach's) nor `opcode` (~3 M instructions, paid by every
/// recorded process), nor the built-in `compile` (see `module_code`); `opcode.opmap` when the
/// program has it loaded already.
fn resume_opcode(py: Python<'_>) -> PyResult<u8> {
    if let Ok(opcode) = py.import("sys")?.getattr("modules")?.get_item("opcode") {
        return opcode.getattr("opmap")?.get_item("RESUME")?.extract();
    }
    let code = crate::module_code::compile(py, b"", "<fever>")?;
    code.getattr("co_code")?.get_item(0)?.extract()
}

/// Makes the recording just started the program's own (`fever record`, `fever replay`): its
/// forked and spawned children are recorded into the same trace. A `fever attach --record`
/// window is not: a child forked during it is not recorded, and nothing of the window lives on
/// in it.
pub fn record_children() {
    let _ = RECORDING.compare_exchange(0, std::process::id(), Ordering::SeqCst, Ordering::SeqCst);
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
    engine::release_parked(py);
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
        // Anonymous memory: no file to collide with a stale one of a reused pid, none left in
        // /dev/shm when this child is killed.
        let ring = RingWriter::anonymous(1 << 20).map_err(std::io::Error::other)?;
        // Dropping the parent's writer would publish into its ring.
        std::mem::forget(std::mem::replace(&mut t.ring, ring));
        t.drained = Arc::new(AtomicU64::new(u64::MAX));
        // The parent's drain may have held the shared numbering's lock at the fork.
        t.codes.number_on_own();
        t.drop_parents_threads();
        Ok(())
    })
    .unwrap_or(Ok(()))
}

/// The pid of the process whose recording this process belongs to (itself, or the process it
/// was forked from); 0 when nothing is recorded.
static RECORDING: AtomicU32 = AtomicU32::new(0);

/// Where a recording child's exit is: [`RUNNING`], then [`EXIT_FLUSHING`] from its `atexit`
/// handler on (no thread takes the GIL after it), [`EXIT_FLUSHED`] once that handler pushed
/// every pending event.
static EXIT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(RUNNING);
const RUNNING: u8 = 0;
const EXIT_FLUSHING: u8 = 1;
const EXIT_FLUSHED: u8 = 2;

/// Size of a child's ring (its drain is the program's, which reads the program's ring first).
const CHILD_RING_CAPACITY: u64 = 4 << 20;
/// How often a recording child pushes the events its threads have pending into its ring: a
/// child killed by a signal (a pool's `terminate()`) loses at most its last this-long of calls.
const CHILD_FLUSH: std::time::Duration = std::time::Duration::from_millis(50);

/// The directory of the rings of the children of the recording process `top`: one per
/// recording, so the drain's look for new children reads their names only (`/dev/shm` is shared:
/// it can hold thousands of names, `multiprocessing`'s leaked semaphores among them). A child
/// creates it; the drain removes it at its end, or the last child when it outlives the drain.
fn children_dir(top: u32) -> PathBuf {
    rings_dir().join(format!("fever-ring-{top}-children"))
}

/// The ring of child `pid` of the recording process `top`, its directory created.
fn child_ring_path(top: u32, pid: u32) -> std::io::Result<PathBuf> {
    let dir = children_dir(top);
    std::fs::create_dir_all(&dir)?;
    Ok(dir.join(pid.to_string()))
}

/// The rings children of the recording process `top` created, by child pid.
pub fn child_rings(top: u32) -> Vec<(u32, PathBuf)> {
    let dir = children_dir(top);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name();
            let pid = name.to_str()?.parse().ok()?;
            Some((pid, dir.join(name)))
        })
        .collect()
}

/// Removes the directory of the children's rings of `top` once it is empty (a child may still
/// be creating its ring in it: then that child's exit removes it).
pub fn remove_children_dir(top: u32) {
    let _ = std::fs::remove_dir(children_dir(top));
}

/// Does this process record (as the program, or as a forked child of it)?
pub fn recording() -> bool {
    RECORDING.load(Ordering::SeqCst) != 0
}

/// In the recording program (or a recorded child), before `os.fork()`: pushes every thread's
/// pending events and publishes what the ring holds, so the drain reads the codes the child
/// inherits, and the calls made before the fork, before anything of the child's own ring (a
/// child that ran and ended while the parent's run was still pending came first in the trace).
pub fn before_fork(py: Python<'_>) {
    if recording() {
        flush(py);
    }
}

/// In a child of `os.fork()` (not a replay's): a recorded parent's child is recorded too
/// ([`follow_in_child`]), or not at all when its ring cannot be made.
pub fn after_fork_in_child(py: Python<'_>) -> PyResult<()> {
    term::restore();
    if recording() && follow_in_child(py).is_err() {
        // Not recorded, rather than writing into the parent's ring.
        abandon(py)?;
    }
    Ok(())
}

/// What a spawned child needs to record into the program's trace (`None` when nothing is
/// recorded): the program's pid and the recording's settings, as one line of words that
/// `multiprocessing`'s preparation data carries to the child ([`record_spawned`]).
pub fn child_settings(py: Python<'_>) -> Option<String> {
    let top = RECORDING.load(Ordering::SeqCst);
    if top == 0 {
        return None;
    }
    engine::with(py, Slot::Tracer, |t: &mut Tracer| {
        let s = &t.settings;
        format!(
            "{top} {} {} {} {} {} {} {}",
            s.snapshots.name(),
            s.max_calls,
            s.limits.max_depth,
            s.limits.max_items,
            s.limits.max_str_bytes,
            s.limits.hash_over_bytes,
            s.limits.max_nodes
        )
    })
}

/// Reads [`child_settings`]' line: the program's pid and the settings of `project`'s recording.
fn parse_child_settings(line: &str, project: Project) -> Option<(u32, Settings)> {
    let words: Vec<&str> = line.split(' ').collect();
    let [top, snapshots, max_calls, depth, items, str_bytes, hash_over, nodes] = words[..] else {
        return None;
    };
    let snapshots = [Snapshots::None, Snapshots::Args, Snapshots::All]
        .into_iter()
        .find(|s| s.name() == snapshots)?;
    Some((
        top.parse().ok()?,
        Settings {
            project,
            snapshots,
            max_calls: max_calls.parse().ok()?,
            limits: SnapshotLimits {
                max_depth: depth.parse().ok()?,
                max_items: items.parse().ok()?,
                max_str_bytes: str_bytes.parse().ok()?,
                hash_over_bytes: hash_over.parse().ok()?,
                max_nodes: nodes.parse().ok()?,
            },
        },
    ))
}

/// In a spawned child (`multiprocessing`'s spawn or forkserver) of a recording program, with
/// [`child_settings`]' line: records this process into a ring of its own, which the program's
/// drain follows as a forked child's, with the monitoring tool id `tool_id` it claimed. Nothing
/// is recorded when the line cannot be read; `FeverError` when the ring cannot be created.
pub fn record_spawned(py: Python<'_>, line: &str, project: Project, tool_id: u8) -> PyResult<()> {
    let Some((top, settings)) = parse_child_settings(line, project) else {
        return Ok(());
    };
    let path = child_ring_path(top, std::process::id()).map_err(|e| {
        crate::errors::fever_error(format!("cannot create the children's ring directory: {e}"))
    })?;
    let ring = RingWriter::create_sparse(&path, CHILD_RING_CAPACITY).map_err(|e| {
        crate::errors::fever_error(format!("cannot create the ring {}: {e}", path.display()))
    })?;
    RECORDING.store(top, Ordering::SeqCst);
    // Monotonic nanoseconds, as the program's: one time line for the whole family.
    let to_ns = clock::provisional().converter();
    // The drain does not tell a child how far it read: a child never waits for it.
    start(
        py,
        tool_id,
        settings,
        to_ns,
        ring,
        Arc::new(AtomicU64::new(u64::MAX)),
    )?;
    flush_while_running()?;
    flush_at_exit(py)
}

/// In a forked child of a recording process: keeps tracing with the same code table into a
/// ring of its own, which the program's drain finds by name and writes into the same trace as
/// this process's. The parent's pending events and stacks are dropped (the parent has them);
/// the codes are announced again in the new ring, and a thread pushes pending events every
/// [`CHILD_FLUSH`].
pub fn follow_in_child(py: Python<'_>) -> std::io::Result<()> {
    let top = RECORDING.load(Ordering::SeqCst);
    let path = child_ring_path(top, std::process::id())?;
    // Right after fork no callback is running in this process.
    let followed = engine::with(py, Slot::Tracer, |t: &mut Tracer| {
        let ring =
            RingWriter::create_sparse(&path, CHILD_RING_CAPACITY).map_err(std::io::Error::other)?;
        // Dropping the parent's writer would publish into its ring.
        std::mem::forget(std::mem::replace(&mut t.ring, ring));
        // The drain does not tell a child how far it read: a child never waits for it.
        t.drained = Arc::new(AtomicU64::new(u64::MAX));
        t.drop_parents_threads();
        t.codes.number_on_own();
        let infos: Vec<_> = t.codes.entries.iter().map(|e| e.info.clone()).collect();
        for info in infos {
            t.announce(info);
        }
        t.ring.flush();
        Ok(())
    });
    match followed {
        Some(Ok(())) => {}
        Some(Err(err)) => return Err(err),
        None => return Ok(()),
    }
    flush_while_running()?;
    flush_at_exit(py).map_err(std::io::Error::other)
}

/// Starts the thread that pushes a recording child's pending events every [`CHILD_FLUSH`],
/// and when SIGTERM ends the child (`term`).
fn flush_while_running() -> std::io::Result<()> {
    let terminated = term::catch();
    crate::signals::without_signals(|| {
        std::thread::Builder::new()
            .name("fever-child-flush".into())
            .spawn(move || loop {
                let term = if let Some(read) = &terminated {
                    term::wait(read, CHILD_FLUSH)
                } else {
                    std::thread::sleep(CHILD_FLUSH);
                    false
                };
                if term {
                    term::end_soon();
                }
                // From interpreter exit on, no thread takes the GIL any more.
                let exiting = EXIT.load(Ordering::SeqCst) != RUNNING;
                if !exiting {
                    Python::attach(flush);
                } else if term {
                    // SIGTERM while the exit pushes the calls (a pool's worker takes its
                    // sentinel as the pool terminates it): it ends once they are pushed, or
                    // at `end_soon`'s grace.
                    while EXIT.load(Ordering::SeqCst) != EXIT_FLUSHED {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                }
                if term {
                    term::end();
                }
                if exiting {
                    // Nothing waits on the handler's pipe any more.
                    term::restore();
                    return;
                }
            })
    })?;
    Ok(())
}

/// Makes a recording child push its pending events at its end: at interpreter exit, and in
/// `os._exit` (how `multiprocessing` ends its workers), which `os` then calls as before.
fn flush_at_exit(py: Python<'_>) -> PyResult<()> {
    use pyo3::types::{PyCFunction, PyDict, PyTuple};
    let os = py.import("os")?;
    let exit = os.getattr("_exit")?.unbind();
    let flushing_exit = PyCFunction::new_closure(
        py,
        Some(c"_exit"),
        Some(c"os._exit, after fever pushed this child's recorded calls."),
        move |args: &Bound<'_, PyTuple>,
              kwargs: Option<&Bound<'_, PyDict>>|
              -> PyResult<Py<PyAny>> {
            flush(args.py());
            remove_unread_rings();
            exit.call(args.py(), args, kwargs)
        },
    )?;
    os.setattr("_exit", flushing_exit)?;
    let at_exit = PyCFunction::new_closure(
        py,
        None,
        None,
        |args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>| {
            EXIT.store(EXIT_FLUSHING, Ordering::SeqCst);
            flush(args.py());
            remove_unread_rings();
            EXIT.store(EXIT_FLUSHED, Ordering::SeqCst);
        },
    )?;
    py.import("atexit")?.call_method1("register", (at_exit,))?;
    Ok(())
}

/// A recording child at its end, once the program it records for has ended: no drain will read
/// the rings of that program's children any more, so this child's own ring and those of its
/// siblings already gone (a child killed by SIGKILL cannot remove its own) are removed from
/// `/dev/shm`. While the program runs, its drain removes each ring's name when it opens it, and
/// the names left at its end.
fn remove_unread_rings() {
    let top = RECORDING.load(Ordering::SeqCst);
    let me = std::process::id();
    if top == 0 || top == me || !has_ended(top) {
        return;
    }
    for (pid, path) in child_rings(top) {
        if pid == me || has_ended(pid) {
            let _ = std::fs::remove_file(path);
        }
    }
    remove_children_dir(top);
}

/// Turns the tracer off without a trace of it: for a forked child, whose ring is the parent's
/// (dropping the tracer would publish into and close it).
pub fn abandon(py: Python<'_>) -> PyResult<()> {
    engine::abandon::<Tracer>(py, Slot::Tracer)
}

/// Lets go of the references a finished call kept to its arguments: parked with the engine,
/// which drops them once the callback is done with the tracer (dropping an argument can run a
/// `__del__` of the project's, whose events reach the tracer, and which may block).
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
    engine::park(w.values);
}

/// A temporary path for the live ring: on tmpfs when there is one, so the kernel never writes
/// its pages to disk.
pub fn ring_path() -> std::path::PathBuf {
    rings_dir().join(format!("fever-ring-{}", std::process::id()))
}

/// Where live rings go: `/dev/shm` when there is one, else the temporary directory.
fn rings_dir() -> PathBuf {
    let dir = Path::new("/dev/shm");
    if dir.is_dir() {
        dir.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}
