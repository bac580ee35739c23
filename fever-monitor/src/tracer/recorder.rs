//! The drain: a thread that follows the live ring while the program runs and writes what it reads
//! into the trace file (codes, and each thread's runs of events), with a progress line on a
//! terminal; at the end, the run statistics and the code table.
//!
//! The program's forked and spawned children record into rings of their own
//! (`super::follow_in_child`, `super::record_spawned`), which the drain finds by name next to the
//! program's ring and follows too.
//!
//! How codes are named. The program's runs are appended whole (`TraceWriter::write_run`: the
//! callbacks encoded them, no work per event here), so they carry the trace's code ids: the
//! program's tracer and this drain take ids from one allocator (`super::ids`), keyed by what
//! makes two codes the same code. A child numbers its codes on its own, so its runs are decoded
//! event by event (`TraceWriter::write_run_as`): each code id becomes the trace's (the shared
//! allocator's id for that code), each thread one of the child's own
//! (`fever_core::trace::child_thread`). A code the program and a child both run is thus one code
//! of the trace, whichever announces it first, and ids never collide.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::prefault::Prefault;
use anyhow::{anyhow, Context};
use fever_core::control::has_ended;
use fever_core::live::{ArchivedLiveRecord, LiveRecord};
use fever_core::ring::{ReadOutcome, RingReader};
use fever_core::trace::{
    child_thread, CodeInfo, EventKind, EventRef, RunRef, RunStats, TraceError, TraceHeader,
    TraceWriter,
};
use rkyv::util::AlignedVec;

/// How long the drain sleeps when it has caught up with the tracer (unless woken).
const IDLE: Duration = Duration::from_millis(2);
/// How often the drain writes the chunk it is filling and flushes, busy or idle, so a killed
/// program leaves a readable trace of all but its last quarter second (chunks cut short this
/// way compress a little less well; a busy recording fills whole chunks in between).
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// How long the drain reads the rings of children still running once the program ended.
const CHILDREN_AT_END: Duration = Duration::from_millis(500);
/// No progress line for runs shorter than this.
const PROGRESS_AFTER: Duration = Duration::from_secs(2);

type Writer = TraceWriter<BufWriter<File>>;

/// What the drain wrote.
struct Drained {
    writer: Writer,
    /// Events of the program's own ring.
    events: u64,
    /// Records the children's rings lost (overwritten before the drain read them).
    children_lost: u64,
    /// Calls the children's rings brought, by trace code id.
    children_calls: HashMap<u32, u64>,
    /// Records of every ring skipped as corrupt.
    corrupt: u64,
}

/// A trace being written.
pub struct Recorder {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    /// Flushes asked for ([`Recorder::sync`]) and done by the drain.
    syncs: Arc<Syncs>,
    drain: JoinHandle<Result<Drained, TraceError>>,
}

/// Counters of the flushes asked of the drain and done by it.
#[derive(Default)]
struct Syncs {
    asked: AtomicU64,
    done: AtomicU64,
}

/// What a finished recording says about itself.
pub struct Summary {
    pub calls: u64,
    pub functions: usize,
    pub bytes: u64,
    pub lost_events: u64,
    /// Records read from the live rings that were corrupt, skipped (their events are counted
    /// lost too).
    pub corrupt_records: u64,
}

impl Recorder {
    /// Creates the trace file at `path` (failing before the program runs if it cannot) and
    /// starts draining the ring at `ring`; `progress`: show the progress line on a terminal.
    /// The drain publishes its read position in the ring to `drained`, which the tracer
    /// watches to never get more than half a ring ahead.
    pub fn start(
        path: &Path,
        header: &TraceHeader,
        ring: RingReader,
        drained: Arc<AtomicU64>,
        progress: bool,
        prefault: Prefault,
    ) -> anyhow::Result<Self> {
        let writer = TraceWriter::create(path, header)
            .and_then(|mut w| w.flush().map(|()| w))
            .with_context(|| format!("cannot write the trace {}", path.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let syncs = Arc::new(Syncs::default());
        let asked = Arc::clone(&syncs);
        let drain = crate::signals::without_signals(|| {
            std::thread::Builder::new()
                .name("fever-drain".into())
                .spawn(move || {
                    let progress = Progress::new(progress);
                    drain(ring, writer, &flag, &drained, &asked, progress, &prefault)
                })
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            stop,
            syncs,
            drain,
        })
    }

    /// Waits (at most `timeout`) until the drain has written to the file everything published in
    /// the ring before this call; false on timeout or when the drain ended.
    pub fn sync(&self, timeout: Duration) -> bool {
        let ticket = self.syncs.asked.fetch_add(1, Ordering::SeqCst) + 1;
        self.drain.thread().unpark();
        let started = Instant::now();
        while self.syncs.done.load(Ordering::SeqCst) < ticket {
            if self.drain.is_finished() || started.elapsed() > timeout {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// Waits for the drain to read everything the (closed) ring holds, then writes the run's
    /// statistics (`counted`: the tracer's exact counts) and the end of the file. `pushed` is
    /// how many events the tracer put in the ring.
    pub fn finish(self, counted: RunStats, pushed: u64) -> anyhow::Result<Summary> {
        self.stop.store(true, Ordering::Release);
        // Not to wait out its idle sleep.
        self.drain.thread().unpark();
        let drained = self
            .drain
            .join()
            .map_err(|_| anyhow!("the trace writer thread failed"))?
            .with_context(|| format!("cannot write the trace {}", self.path.display()))?;
        let Drained {
            mut writer,
            events,
            children_lost,
            children_calls,
            corrupt,
        } = drained;
        // The children's calls are those their rings brought (their tracers' exact counts
        // stay in them).
        let mut calls: HashMap<u32, (u64, u64)> = children_calls
            .into_iter()
            .map(|(code, n)| (code, (n, n)))
            .collect();
        for c in counted.calls {
            // Two code objects of the same code (a function reloaded unchanged) share an id.
            let entry = calls.entry(c.code).or_default();
            entry.0 += c.calls;
            entry.1 += c.recorded;
        }
        let mut calls: Vec<(u32, u64, u64)> = calls
            .into_iter()
            .map(|(code, (calls, recorded))| (code, calls, recorded))
            .collect();
        calls.sort_unstable();
        let mut stats = RunStats::of_recording(calls, pushed, events, |code| writer.has_code(code));
        stats.lost_events += children_lost;
        writer.write_stats(&stats)?;
        writer
            .finish()
            .with_context(|| format!("cannot write the trace {}", self.path.display()))?;
        Ok(Summary {
            calls: stats.total_calls(),
            functions: stats.calls.len(),
            bytes: std::fs::metadata(&self.path).map_or(0, |m| m.len()),
            lost_events: stats.lost_events,
            corrupt_records: corrupt,
        })
    }
}

fn drain(
    mut ring: RingReader,
    mut writer: Writer,
    stop: &AtomicBool,
    drained: &AtomicU64,
    syncs: &Syncs,
    mut progress: Progress,
    prefault: &Prefault,
) -> Result<Drained, TraceError> {
    /// Tells the tracer, however the drain ends, to stop waiting for it.
    struct Gone<'a>(&'a AtomicU64);
    impl Drop for Gone<'_> {
        fn drop(&mut self) {
            self.0.store(u64::MAX, Ordering::Release);
        }
    }
    let _gone = Gone(drained);
    let mut buf = Vec::new();
    let mut aligned = AlignedVec::<16>::new();
    let mut events = 0u64;
    let mut corrupt = 0u64;
    let mut children = Children::new(std::process::id());
    let mut closing = None;
    let started = Instant::now();
    let mut flushed = Instant::now();
    // A sync asked for, seen once with the ring empty: it is done at the next empty read, which
    // sees everything published before it was asked (the children's rings included).
    let mut seen_sync = 0u64;
    loop {
        if flushed.elapsed() >= FLUSH_EVERY {
            writer.flush()?;
            flushed = Instant::now();
            children.find();
        }
        let outcome = ring.next_record(&mut buf);
        drained.store(ring.position(), Ordering::Release);
        match outcome {
            Ok(ReadOutcome::Record(_)) => {
                aligned.clear();
                aligned.extend_from_slice(&buf);
                match LiveRecord::access(&aligned) {
                    Ok(ArchivedLiveRecord::Code(info)) => {
                        // A code the ring lost is reported by its events going missing.
                        // The program's tracer took the id from the shared allocator; a child
                        // may have announced the same code first.
                        let info = CodeInfo::from(info);
                        if !writer.has_code(info.id) {
                            // A code that cannot be written loses its events (counted lost).
                            let _ = writer.add_code(info);
                        }
                    }
                    Ok(ArchivedLiveRecord::Events(run)) => {
                        events += written(writer.write_run(run.as_ref()), &mut corrupt)?;
                    }
                    Err(_) => corrupt += 1,
                }
            }
            Ok(ReadOutcome::Lost(_)) => {}
            // The reader moved on past the bad bytes.
            Err(_) => corrupt += 1,
            Ok(ReadOutcome::Empty) => {
                // Children that outlive the program are read a little longer, not forever.
                let late = closing.is_some_and(|at: Instant| at.elapsed() >= CHILDREN_AT_END);
                if !late && children.drain(&mut writer, &mut buf)? {
                    continue;
                }
                if closing.is_some() {
                    break;
                }
                if stop.load(Ordering::Acquire) && ring.writer_closed() {
                    // One more pass: the writer may have published between our read and close;
                    // children that forked lately are found now.
                    closing = Some(Instant::now());
                    children.find();
                    continue;
                }
                let asked = syncs.asked.load(Ordering::SeqCst);
                if asked > syncs.done.load(Ordering::SeqCst) {
                    if seen_sync == asked {
                        writer.flush()?;
                        flushed = Instant::now();
                        syncs.done.store(asked, Ordering::SeqCst);
                    } else {
                        seen_sync = asked;
                        // Children forked since the last look: what they pushed belongs to
                        // the sync too (a pool that ended before then, say).
                        children.find();
                    }
                    continue;
                }
                if started.elapsed() >= PROGRESS_AFTER {
                    progress.show(events + children.events, writer.bytes_written());
                }
                // Idle: the tracer's next pages, else a nap (woken early by `finish` and `sync`).
                if !prefault.step() {
                    std::thread::park_timeout(IDLE);
                }
            }
        }
    }
    progress.clear();
    children.remove_unread();
    Ok(Drained {
        writer,
        events,
        children_lost: children.lost,
        children_calls: children.calls,
        corrupt: corrupt + children.corrupt,
    })
}

/// The events a run wrote; a failed write of the file ends the drain, a run that cannot be
/// written (never expected) is skipped, its events counted lost, and a corrupt one counted in
/// `corrupt` too.
fn written(result: Result<u64, TraceError>, corrupt: &mut u64) -> Result<u64, TraceError> {
    result.or_else(|err| match err {
        TraceError::WriterFailed | TraceError::Io(_) => Err(TraceError::WriterFailed),
        TraceError::InvalidRun(_) => {
            *corrupt += 1;
            Ok(0)
        }
        _ => Ok(0),
    })
}

/// The children's rings the drain follows.
struct Children {
    /// The program's pid, which names its children's rings.
    top: u32,
    rings: Vec<ChildRing>,
    /// Events written from the children's rings.
    events: u64,
    /// Records the children's rings lost (each is a batch of events: a lower bound).
    lost: u64,
    /// Calls written from the children's rings, by trace code id.
    calls: HashMap<u32, u64>,
    /// Records of the children's rings skipped as corrupt.
    corrupt: u64,
}

/// A child's ring.
struct ChildRing {
    pid: u32,
    ring: RingReader,
    /// The child's code ids, as the trace names them.
    codes: HashMap<u32, u32>,
    /// The child's thread idents, in the order they first recorded events.
    threads: Vec<u64>,
    /// The child was seen gone.
    ended: bool,
}

/// Records read from one child's ring before the drain looks at the program's ring again.
const CHILD_RECORDS_PER_PASS: usize = 256;

impl Children {
    fn new(top: u32) -> Self {
        Self {
            top,
            rings: Vec::new(),
            events: 0,
            lost: 0,
            calls: HashMap::new(),
            corrupt: 0,
        }
    }

    /// Opens the rings children created since the last look (and removes their names: both
    /// sides have them mapped).
    fn find(&mut self) {
        for (pid, path) in super::child_rings(self.top) {
            if let Ok(ring) = RingReader::open(&path) {
                let _ = std::fs::remove_file(&path);
                self.rings.push(ChildRing {
                    pid,
                    ring,
                    codes: HashMap::new(),
                    threads: Vec::new(),
                    ended: false,
                });
            }
        }
    }

    /// At the drain's end: the names of rings no drain will read (a child forked after the last
    /// look) are removed; such a child writes on into memory freed when it exits.
    fn remove_unread(&self) {
        for (_, path) in super::child_rings(self.top) {
            let _ = std::fs::remove_file(path);
        }
        super::remove_children_dir(self.top);
    }

    /// Reads what the children's rings hold (a bounded pass); true when it found anything.
    /// A ring found empty after its child ended is closed.
    fn drain(&mut self, writer: &mut Writer, buf: &mut Vec<u8>) -> Result<bool, TraceError> {
        let mut aligned = AlignedVec::<16>::new();
        let mut found = false;
        let mut i = 0;
        while i < self.rings.len() {
            let mut ended = false;
            for _ in 0..CHILD_RECORDS_PER_PASS {
                match self.rings[i].ring.next_record(buf) {
                    Ok(ReadOutcome::Record(_)) => {
                        found = true;
                        aligned.clear();
                        aligned.extend_from_slice(buf);
                        match LiveRecord::access(&aligned) {
                            Ok(ArchivedLiveRecord::Code(info)) => {
                                self.add_code(i, CodeInfo::from(info), writer);
                            }
                            Ok(ArchivedLiveRecord::Events(run)) => {
                                let run = self.write(i, run.as_ref(), writer);
                                self.events += written(run, &mut self.corrupt)?;
                            }
                            Err(_) => self.corrupt += 1,
                        }
                    }
                    Ok(ReadOutcome::Lost(n)) => self.lost += n.max(1),
                    outcome @ (Ok(ReadOutcome::Empty) | Err(_)) => {
                        // Bad bytes: the reader moved on to the newest record.
                        self.corrupt += u64::from(outcome.is_err());
                        let child = &mut self.rings[i];
                        // Read once more after seeing it end: it may have published last.
                        if child.ended {
                            ended = true;
                        } else if has_ended(child.pid) {
                            child.ended = true;
                            continue;
                        }
                        break;
                    }
                }
            }
            if ended {
                self.rings.swap_remove(i);
            } else {
                i += 1;
            }
        }
        Ok(found)
    }

    /// A code child `i` announced: the trace's id of the same code (given now if it has none
    /// yet), written now if it was not.
    fn add_code(&mut self, i: usize, mut info: CodeInfo, writer: &mut Writer) {
        let child_id = info.id;
        let id = super::ids::id_of(&info);
        if !writer.has_code(id) {
            info.id = id;
            if writer.add_code(info).is_err() {
                return;
            }
        }
        self.rings[i].codes.insert(child_id, id);
    }

    /// Writes a run of child `i`'s ring, its codes and threads renamed to the trace's.
    fn write(&mut self, i: usize, run: RunRef<'_>, writer: &mut Writer) -> Result<u64, TraceError> {
        let child = &mut self.rings[i];
        let mut calls = Vec::new();
        let written = writer.write_run_as(run, |e| {
            let ident = e.thread();
            let n = if let Some(n) = child.threads.iter().position(|&t| t == ident) {
                n
            } else {
                child.threads.push(ident);
                child.threads.len() - 1
            };
            let thread = child_thread(child.pid, u32::try_from(n).unwrap_or(u32::MAX));
            let code = child.codes.get(&e.code()).copied()?;
            if e.kind() == EventKind::Call {
                calls.push(code);
            }
            Some(renamed(e, code, thread))
        })?;
        for code in calls {
            *self.calls.entry(code).or_default() += 1;
        }
        Ok(written)
    }
}

/// `event` in code `code` on thread `thread`.
fn renamed(event: EventRef<'_>, code: u32, thread: u64) -> EventRef<'_> {
    EventRef::from_parts(
        event.kind(),
        code,
        thread,
        event.t_ns(),
        event.flags(),
        event.snapshot(),
    )
}

/// The `fever: recording ...` line, redrawn in place once a second on a terminal only.
struct Progress {
    enabled: bool,
    last: Option<Instant>,
}

impl Progress {
    fn new(wanted: bool) -> Self {
        Self {
            enabled: wanted && std::io::stderr().is_terminal(),
            last: None,
        }
    }

    fn show(&mut self, events: u64, bytes: u64) {
        if !self.enabled
            || self
                .last
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.last = Some(Instant::now());
        let line = format!(
            "\rfever: recording... {} events, {}\x1b[K",
            events,
            fever_core::units::size(bytes)
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn clear(&self) {
        if self.enabled && self.last.is_some() {
            let _ = std::io::stderr().lock().write_all(b"\r\x1b[K");
        }
    }
}
