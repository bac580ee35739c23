//! The drain: a thread that follows the live ring while the program runs and writes what it reads
//! into the trace file (codes, and each thread's runs of events, appended whole: the callbacks
//! encoded them), with a progress line on a terminal; at the end, the run statistics and the code
//! table.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use fever_core::live::{ArchivedLiveRecord, LiveRecord};
use fever_core::ring::{ReadOutcome, RingReader};
use fever_core::trace::{CodeInfo, RunStats, TraceError, TraceHeader, TraceWriter};
use rkyv::util::AlignedVec;

/// How long the drain sleeps when it has caught up with the tracer.
const IDLE: Duration = Duration::from_millis(2);
/// How often the drain writes the chunk it is filling and flushes, busy or idle, so a killed
/// program leaves a readable trace of all but its last quarter second (chunks cut short this
/// way compress a little less well; a busy recording fills whole chunks in between).
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// No progress line for runs shorter than this.
const PROGRESS_AFTER: Duration = Duration::from_secs(2);

type Writer = TraceWriter<BufWriter<File>>;

/// What the drain wrote.
struct Drained {
    writer: Writer,
    events: u64,
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
                    drain(ring, writer, &flag, &drained, &asked, progress)
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
        let drained = self
            .drain
            .join()
            .map_err(|_| anyhow!("the trace writer thread failed"))?
            .with_context(|| format!("cannot write the trace {}", self.path.display()))?;
        let Drained { mut writer, events } = drained;
        let stats = RunStats::of_recording(
            counted
                .calls
                .into_iter()
                .map(|c| (c.code, c.calls, c.recorded)),
            pushed,
            events,
            |code| writer.has_code(code),
        );
        writer.write_stats(&stats)?;
        writer
            .finish()
            .with_context(|| format!("cannot write the trace {}", self.path.display()))?;
        Ok(Summary {
            calls: stats.total_calls(),
            functions: stats.calls.len(),
            bytes: std::fs::metadata(&self.path).map_or(0, |m| m.len()),
            lost_events: stats.lost_events,
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
    let mut closing = false;
    let started = Instant::now();
    let mut flushed = Instant::now();
    // A sync asked for, seen once with the ring empty: it is done at the next empty read, which
    // sees everything published before it was asked.
    let mut seen_sync = 0u64;
    loop {
        if flushed.elapsed() >= FLUSH_EVERY {
            writer.flush()?;
            flushed = Instant::now();
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
                        let _ = writer.add_code(CodeInfo::from(info));
                    }
                    Ok(ArchivedLiveRecord::Events(run)) => match writer.write_run(run.as_ref()) {
                        Ok(n) => events += n,
                        Err(TraceError::WriterFailed | TraceError::Io(_)) => {
                            return Err(TraceError::WriterFailed);
                        }
                        // A run that cannot be written (never expected) is counted lost.
                        Err(_) => {}
                    },
                    Err(_) => {}
                }
            }
            Ok(ReadOutcome::Lost(_)) | Err(_) => {}
            Ok(ReadOutcome::Empty) => {
                if closing {
                    break;
                }
                if stop.load(Ordering::Acquire) && ring.writer_closed() {
                    // One more pass: the writer may have published between our read and close.
                    closing = true;
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
                    }
                    continue;
                }
                if started.elapsed() >= PROGRESS_AFTER {
                    progress.show(events, writer.bytes_written());
                }
                std::thread::sleep(IDLE);
            }
        }
    }
    progress.clear();
    Ok(Drained { writer, events })
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
