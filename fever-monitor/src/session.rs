//! The session of `fever run`, `record`, `watch` and the replay's program side: what lives until
//! the interpreter exits (the file watcher, the tool id, the recording), kept by [`keep`] and torn
//! down at interpreter exit (after the program's non-daemon threads finished, so reloads keep
//! reaching them), or let go of in a forked child; and starting and ending a recording.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use fever_core::notice::Notice;
use fever_core::ring::{RingReader, RingWriter};
use fever_core::settings::{RecordConfig, Verbosity};
use fever_core::Project;
use pyo3::prelude::*;

use crate::engine::clock;
use crate::profile_only::{self, ProfileRun};
use crate::tracer::prefault::Prefault;
use crate::tracer::recorder::{Recorder, Summary};
use crate::watcher::FileWatcher;
use crate::{monitoring, notices};
use crate::{trace_header, tracer};

/// Size of the live ring the tracer writes into (on tmpfs; its pages are faulted in by the drain:
/// see `tracer::prefault`).
const RING_CAPACITY: u64 = 16 << 20;

/// Makes everything the program did so far readable in the trace file (pending events pushed,
/// drained and flushed); false if the trace writer did not confirm within `timeout`.
pub fn sync_trace(py: Python<'_>, timeout: std::time::Duration) -> bool {
    tracer::flush(py);
    let guard = SESSION
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(recording) = guard.as_ref().and_then(|s| s.recording.as_ref()) else {
        return false;
    };
    py.detach(|| recording.recorder.sync(timeout))
}

/// What lives until the interpreter exits.
pub struct Session {
    pub watcher: Option<FileWatcher>,
    pub tool_id: Option<u8>,
    recording: Option<Recording>,
    /// `fever record --profile-only`'s profile.
    profiling: Option<ProfileRun>,
    /// `fever watch`'s call cache is on.
    pub cache: bool,
}

impl Session {
    /// A session without a recording.
    pub fn new(watcher: Option<FileWatcher>, tool_id: Option<u8>, cache: bool) -> Self {
        Self {
            watcher,
            tool_id,
            recording: None,
            profiling: None,
            cache,
        }
    }

    /// This session, profiling (`fever record --profile-only`).
    pub fn with_profile(self, profiling: ProfileRun) -> Self {
        Self {
            profiling: Some(profiling),
            ..self
        }
    }

    /// This session, recording.
    pub fn with_recording(self, recording: Recording) -> Self {
        Self {
            recording: Some(recording),
            ..self
        }
    }
}

/// A trace being recorded.
pub struct Recording {
    recorder: Recorder,
    /// Stopped before the ring is unmapped.
    prefault: Prefault,
    output: PathBuf,
    verbosity: Verbosity,
}

static SESSION: Mutex<Option<Session>> = Mutex::new(None);

/// Keeps `session` until the interpreter exits (then [`shutdown`] ends it).
pub fn keep(py: Python<'_>, session: Session) -> PyResult<()> {
    *SESSION
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(session);
    py.import("atexit")?
        .call_method1("register", (wrap_pyfunction!(shutdown, py)?,))?;
    let at_fork = pyo3::types::PyDict::new(py);
    at_fork.set_item("before", wrap_pyfunction!(before_fork, py)?)?;
    at_fork.set_item("after_in_child", wrap_pyfunction!(after_fork_in_child, py)?)?;
    py.import("os")?
        .call_method("register_at_fork", (), Some(&at_fork))?;
    Ok(())
}

/// In the program (or a child of it), before `os.fork()`: what a recording child needs of its
/// parent's ring is published.
#[pyfunction]
fn before_fork(py: Python<'_>) {
    tracer::before_fork(py);
}

/// In a child of `os.fork()` (at any depth): the watcher and trace-writer threads were not
/// copied, and the live ring and the cache file are the parent's, so the child lets go of all of
/// it without touching any: a recording child records into a ring of its own that the program's
/// drain follows (`tracer::follow_in_child`); its cache stays in its memory; it joins the
/// program's family, which sends it each save.
#[pyfunction]
fn after_fork_in_child(py: Python<'_>) -> PyResult<()> {
    let session = SESSION
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    let replay = crate::replay::replay_fork();
    if replay {
        // A replay's child keeps tracing (its end call is found by replay's checkpoints),
        // into a ring of its own.
        if session.is_some() {
            tracer::rehome_in_child(py)?;
        }
    } else {
        tracer::after_fork_in_child(py)?;
    }
    if session.as_ref().is_some_and(|s| s.cache) {
        crate::cache::after_fork_in_child(py);
    }
    if session.as_ref().is_some_and(|s| s.profiling.is_some()) {
        profile_only::stop_in_child(py)?;
    }
    if !replay {
        crate::family::member::after_fork_in_child();
    }
    std::mem::forget(session);
    Ok(())
}

/// Stops the watcher (joined with the GIL released) and frees the tool id; runs from `atexit`.
#[pyfunction]
fn shutdown(py: Python<'_>) -> PyResult<()> {
    let session = SESSION
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(Session {
        watcher,
        tool_id,
        recording,
        profiling,
        cache,
    }) = session
    {
        // Every step runs whatever the others did: an unfinished trace must not keep the
        // watcher from being stopped with the GIL released, nor the tool id from being freed.
        let recorded = recording.is_some() && tool_id.is_some();
        let finished = match (recording, profiling, tool_id) {
            (Some(recording), _, Some(_)) => finish_recording(py, recording),
            (None, Some(profiling), Some(_)) => profile_only::finish(py, profiling),
            _ => Ok(()),
        };
        let cache_stopped = if cache {
            crate::cache::stop(py)
        } else {
            Ok(())
        };
        if !recorded {
            tell_altered(py);
        }
        py.detach(move || drop(watcher));
        let released = tool_id.map_or(Ok(()), |id| monitoring::release(py, id));
        finished.and(cache_stopped).and(released)?;
    }
    Ok(())
}

/// Creates the trace file and the live ring, and turns the tracer on: `fever record`'s (and
/// `fever replay`'s) recording of the whole program, once per process.
pub fn start_recording(
    py: Python<'_>,
    record: &RecordConfig,
    root: &std::path::Path,
    tool_id: u8,
) -> anyhow::Result<Recording> {
    static RECORDED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if RECORDED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        bail!("fever record can record once per process");
    }
    let recording = begin_recording(py, record, root, tool_id)?;
    tracer::record_children();
    Ok(recording)
}

/// Creates the trace file and the live ring, and turns the tracer on (its slot must be free:
/// see `engine::armed`); `fever attach --record` records each attached window this way.
pub fn begin_recording(
    py: Python<'_>,
    record: &RecordConfig,
    root: &std::path::Path,
    tool_id: u8,
) -> anyhow::Result<Recording> {
    let project = Project::new(root).with_context(|| format!("cannot read {}", root.display()))?;
    let to_ns = clock::provisional().converter();
    let header = trace_header::of(py, record, &project)?;
    let ring_path = tracer::ring_path();
    let ring = RingWriter::create_sparse(&ring_path, RING_CAPACITY)
        .with_context(|| format!("cannot create the live ring {}", ring_path.display()))?;
    let prefault = Prefault::of(&ring);
    let reader = RingReader::open(&ring_path);
    // Both sides have it mapped; the name is not needed any more.
    let _ = std::fs::remove_file(&ring_path);
    // Absolute, so the summary finds the file after the program changed directory.
    let output = std::path::absolute(&record.output).unwrap_or_else(|_| record.output.clone());
    let drained = Arc::new(AtomicU64::new(0));
    let progress = record.run.verbosity >= Verbosity::Normal;
    let recorder = Recorder::start(
        &output,
        &header,
        reader?,
        Arc::clone(&drained),
        progress,
        prefault.clone(),
    )?;
    tracer::start(
        py,
        tool_id,
        tracer::Settings {
            project,
            snapshots: record.snapshots,
            max_calls: record.max_calls_per_function,
            limits: record.limits,
        },
        to_ns,
        ring,
        drained,
    )?;
    prefault.start();
    Ok(Recording {
        recorder,
        prefault,
        output: record.output.clone(),
        verbosity: record.run.verbosity,
    })
}

/// Tells what the program did to fever's sys.monitoring tool, if anything (once the engine's
/// consumers are disarmed: the last look at it).
fn tell_altered(py: Python<'_>) {
    if let Some((tool_id, what)) = crate::engine::altered(py) {
        notices::emit(&Notice::ToolAltered { tool_id, what });
    }
}

/// Turns the tracer off and completes the trace file; prints the summary line.
fn finish_recording(py: Python<'_>, recording: Recording) -> PyResult<()> {
    let output = recording.output.clone();
    let verbosity = recording.verbosity;
    let ended = end_recording(py, recording)?;
    tell_altered(py);
    let Some(ended) = ended else {
        notices::emit(&Notice::TracerBusyAtExit);
        return Ok(());
    };
    match ended {
        Ok(summary) => {
            if summary.lost_events > 0 {
                notices::emit(&Notice::EventsLost {
                    count: summary.lost_events,
                });
            }
            if summary.corrupt_records > 0 {
                notices::emit(&Notice::CorruptRecordsSkipped {
                    count: summary.corrupt_records,
                });
            }
            if verbosity >= Verbosity::Normal {
                notices::emit(&Notice::Recorded {
                    calls: summary.calls,
                    functions: summary.functions,
                    path: output,
                    bytes: summary.bytes,
                });
            }
        }
        Err(err) => notices::emit(&Notice::RecordingFailed {
            error: format!("{err:#}"),
        }),
    }
    Ok(())
}

/// Turns the tracer off and completes the trace file (the GIL released while the writer
/// finishes): its summary, or why it could not be completed. `Ok(None)` when a thread is still
/// inside the tracer: the trace ends without its summary.
pub fn end_recording(
    py: Python<'_>,
    recording: Recording,
) -> PyResult<Option<anyhow::Result<Summary>>> {
    let Some(finished) = tracer::stop(py)? else {
        return Ok(None);
    };
    let tracer::Finished {
        stats,
        pushed,
        ring,
    } = finished;
    recording.prefault.stop();
    ring.close();
    let recorder = recording.recorder;
    Ok(Some(py.detach(move || recorder.finish(stats, pushed))))
}
