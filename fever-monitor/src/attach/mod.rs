//! The target side of `fever ps` and `fever attach`: every process fever runs (`run`, `watch`,
//! `record`) listens on its control socket (`fever_core::control::process_socket`), and arms the
//! profiler while a client is attached.
//!
//! - `server.rs`: the socket, its accept thread (blocked in `accept`, without the GIL: no
//!   wake-ups while nobody connects), and one thread per connection answering its requests.
//! - `../profiler.rs` (shared with `fever record --profile-only`): the engine consumer counting
//!   calls and time into the shared region.
//! - `remote.rs`: a process not started under fever opens its socket late, when `fever attach`
//!   runs fever's bootstrap in it through `sys.remote_exec` (PEP 768, Python 3.14+).
//! - `child.rs`: each child process of a program under fever (forked, or spawned by
//!   `multiprocessing`) opens a socket of its own, so `fever attach CHILD` profiles that child
//!   alone; `fever ps` shows it under its parent with its role (`ForkPoolWorker-1`).
//!
//! `fever attach --record TRACE` also arms `fever record`'s tracer for the attached window,
//! with the profiler and in the same hold of the GIL, and disarms both together, so the trace
//! and the table count the same calls. A process that `fever record` records already is refused
//! (its own trace has every call).
//!
//! One client is attached at a time; a second `Attach` is answered with an error naming that
//! the process is already attached. A client that goes away (detach, exit, SIGKILL) closes its
//! connection, and its thread disarms the profiler at once: the program runs at dormant speed
//! again. At exit the socket and any region are removed (by the process that created them); a
//! child that ends with `os._exit` (a pool's worker) or a signal leaves its socket, which the
//! next listing removes: `fever ps`, or the exit of a program fever started (opening a socket
//! reads nothing else in the directory, so starting a process costs the same however many
//! sockets are there).

pub mod child;
mod remote;
mod server;

pub use child::listen_as_child;
pub use remote::listen_for_attach;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fever_core::control::{process_region, process_socket, processes, ProcessStatus};
use fever_core::notice::Notice;
use fever_core::settings::{
    RecordConfig, RunConfig, SnapshotLimits, Snapshots, Target as Program, Verbosity,
    DEFAULT_MAX_CALLS,
};
use fever_core::Project;
use pyo3::prelude::*;

use crate::engine::{self, Slot};
use crate::notices;
use crate::profiler::Profiler;
use crate::session::{self, Recording};
use crate::tracer::recorder::Summary;

/// Names sent in one answer at most (the client asks again for the rest), far below the
/// message size cap.
const NAMES_PER_ANSWER: usize = 4096;

/// How long arming or disarming waits for the engine to be free (a consumer running Python code
/// from a callback, e.g. the call cache storing a result).
const BUSY_WAIT: Duration = Duration::from_secs(2);

/// What this process is, for the connections' threads.
#[derive(Clone)]
struct Target {
    pid: u32,
    command: String,
    /// How it was started (a recording's header repeats it).
    run: RunConfig,
    project: Project,
    tool_id: Option<u8>,
    /// A child of a program under fever (`command` then says how it started).
    child: bool,
}

/// This process's [`Target`], set once per process: a forked child replaces the one it
/// inherited (each is leaked: one small struct per process).
static TARGET: AtomicPtr<Target> = AtomicPtr::new(std::ptr::null_mut());

/// This process's target, if it listens (or listened).
fn target() -> Option<&'static Target> {
    // SAFETY: the pointer is null or a leaked `Box<Target>`, never freed.
    unsafe { TARGET.load(Ordering::SeqCst).as_ref() }
}

/// Makes `target` this process's, unless it has one (`replace`: a forked child's replaces the
/// parent's); false when it had one and kept it.
fn set_target(target: Target, replace: bool) -> bool {
    let new = Box::into_raw(Box::new(target));
    let old = TARGET.load(Ordering::SeqCst);
    if (old.is_null() || replace)
        && TARGET
            .compare_exchange(old, new, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    {
        return true;
    }
    // SAFETY: `new` was never shared.
    drop(unsafe { Box::from_raw(new) });
    false
}
/// The socket is open (false from interpreter exit on: no thread takes the GIL any more).
static OPEN: AtomicBool = AtomicBool::new(false);
/// A client is attached (the profiler is armed, or being armed, or being disarmed).
static ATTACHED: AtomicBool = AtomicBool::new(false);
/// What `fever ps` says: the profiler (and tracer) armed, from the moment data flows until
/// detaching is over (the trace complete).
static ARMED: AtomicBool = AtomicBool::new(false);
/// The trace of the attached window (`--record`), while it is recorded: here rather than in the
/// connection's thread, so that an exit while attached still completes it.
static RECORDING: Mutex<Option<Recording>> = Mutex::new(None);

/// Takes the recording of the attached window, if any (the lock is not held afterwards: ending
/// a recording lets go of the GIL).
fn take_recording() -> Option<Recording> {
    RECORDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
}

/// Opens this process's control socket; `fever ps` shows it as `fever COMMAND` with `run`'s
/// target and arguments. A failure is a warning: the program runs on without it.
pub fn open(
    py: Python<'_>,
    tool_id: Option<u8>,
    root: &Path,
    command: &str,
    run: &RunConfig,
) -> PyResult<()> {
    let Ok(project) = Project::new(root) else {
        return Ok(());
    };
    if let Err(err) = listen(py, tool_id, project, command_line(command, run), run)? {
        notices::emit(&Notice::NoControlSocket {
            error: err.to_string(),
        });
    }
    Ok(())
}

/// Opens this process's control socket for `project`, `fever ps` showing `command`; the inner
/// error says why the socket could not be opened (a process listens once: a second call
/// changes nothing).
fn listen(
    py: Python<'_>,
    tool_id: Option<u8>,
    project: Project,
    command: String,
    run: &RunConfig,
) -> PyResult<std::io::Result<()>> {
    listen_as(
        py,
        Target {
            pid: std::process::id(),
            command,
            run: run.clone(),
            project,
            tool_id,
            child: false,
        },
    )
}

/// Opens this process's control socket as `target` (once per process).
fn listen_as(py: Python<'_>, target: Target) -> PyResult<std::io::Result<()>> {
    let pid = target.pid;
    if !set_target(target, false) {
        return Ok(Ok(()));
    }
    if let Err(err) = server::start(&process_socket(pid)) {
        return Ok(Err(err));
    }
    OPEN.store(true, Ordering::SeqCst);
    py.import("atexit")?
        .call_method1("register", (wrap_pyfunction!(close, py)?,))?;
    let at_fork = pyo3::types::PyDict::new(py);
    at_fork.set_item(
        "after_in_child",
        wrap_pyfunction!(child::after_fork_in_child, py)?,
    )?;
    py.import("os")?
        .call_method("register_at_fork", (), Some(&at_fork))?;
    Ok(Ok(()))
}

/// What `fever ps` shows for a process started as `fever COMMAND` with `run`.
fn command_line(command: &str, run: &RunConfig) -> String {
    let target = match &run.target {
        Program::Script(path) => path.display().to_string(),
        Program::Module(name) => format!("-m {name}"),
    };
    std::iter::once(format!("fever {command} {target}"))
        .chain(run.args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// At interpreter exit: no more attaching, the profiler off, the trace of the attached window
/// completed, the socket and region removed.
#[pyfunction]
fn close(py: Python<'_>) {
    OPEN.store(false, Ordering::SeqCst);
    let Some(target) = target() else { return };
    if target.pid != std::process::id() {
        return;
    }
    if !engine::busy() {
        if ATTACHED.load(Ordering::SeqCst) {
            let _ = engine::disarm::<Profiler>(py, Slot::Profiler);
        }
        if let Some(recording) = take_recording() {
            let _ = session::end_recording(py, recording);
        }
    }
    let _ = std::fs::remove_file(process_socket(target.pid));
    let _ = std::fs::remove_file(process_region(target.pid));
    if !target.child {
        // Removes the sockets its workers left (`os._exit`), and any other stale ones.
        processes();
    }
}

/// What this process says to `fever ps`.
fn status() -> Option<ProcessStatus> {
    let target = target()?;
    Some(ProcessStatus {
        pid: target.pid,
        command: if target.child {
            child::role(&target.command)
        } else {
            target.command.clone()
        },
        root: target.project.canonical_root().display().to_string(),
        attached: ARMED.load(Ordering::SeqCst),
    })
}

/// A profile in progress (owned by the connection that attached).
pub struct Attachment {
    names: Names,
}

impl Attachment {
    /// The names of its entries (they stay readable after detaching).
    pub fn names(&self) -> Names {
        self.names.clone()
    }
}

/// The names of a profile's entries, by entry (the profiler appends as it meets functions).
#[derive(Clone)]
pub struct Names(Arc<Mutex<Vec<String>>>);

impl Names {
    /// Names of entries `from..`, [`NAMES_PER_ANSWER`] at most.
    pub fn from(&self, from: u32) -> Vec<String> {
        let names = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let rest = names.get(from as usize..).unwrap_or_default();
        rest[..rest.len().min(NAMES_PER_ANSWER)].to_vec()
    }
}

/// Runs `f` with the GIL while the engine is free (not busy), giving up after [`BUSY_WAIT`] or
/// when the interpreter is exiting.
fn with_engine<R>(mut f: impl FnMut(Python<'_>) -> R) -> Result<R, String> {
    let deadline = std::time::Instant::now() + BUSY_WAIT;
    loop {
        if !OPEN.load(Ordering::SeqCst) {
            return Err("the program is exiting".into());
        }
        if let Some(done) = Python::attach(|py| (!engine::busy()).then(|| f(py))) {
            return Ok(done);
        }
        if std::time::Instant::now() >= deadline {
            return Err("the program's monitoring stayed busy; try again".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Arms the profiler, and the tracer writing `record` (an absolute path) when given; the region
/// is at [`process_region`].
pub fn attach(record: Option<&Path>) -> Result<Attachment, String> {
    let target = target().ok_or("this process has no project")?;
    let Some(tool_id) = target.tool_id else {
        return Err(
            "sys.monitoring tool ids 3 and 4 are taken by other tools in this process".into(),
        );
    };
    if ATTACHED.swap(true, Ordering::SeqCst) {
        return Err(format!(
            "process {} is already attached by another `fever attach`",
            target.pid
        ));
    }
    let armed = (|| {
        let path = process_region(target.pid);
        let names = Arc::new(Mutex::new(Vec::new()));
        let profiler = Profiler::create(&path, Arc::clone(&names))
            .map_err(|err| format!("cannot create {}: {err}", path.display()))?;
        let mut profiler = Some(Box::new(profiler));
        // `with_engine` calls this once (it is not called while the engine is busy).
        with_engine(|py| {
            let Some(profiler) = profiler.take() else {
                return Ok(());
            };
            if engine::armed(py, Slot::Profiler) {
                return Err(format!(
                    "process {} is profiled by `fever record --profile-only` already",
                    target.pid
                ));
            }
            if let Some(trace) = record {
                let started = start_recording(py, target, tool_id, trace)?;
                *RECORDING
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(started);
            }
            engine::arm(py, tool_id, &target.project, Slot::Profiler, profiler).map_err(|err| {
                if let Some(recording) = take_recording() {
                    let _ = session::end_recording(py, recording);
                }
                format!("cannot turn profiling on: {err}")
            })
        })??;
        Ok(Attachment {
            names: Names(names),
        })
    })();
    match armed {
        Ok(_) => ARMED.store(true, Ordering::SeqCst),
        Err(_) => ATTACHED.store(false, Ordering::SeqCst),
    }
    armed
}

/// `fever record`'s tracer, for the attached window, into `trace`.
fn start_recording(
    py: Python<'_>,
    target: &Target,
    tool_id: u8,
    trace: &Path,
) -> Result<Recording, String> {
    if engine::armed(py, Slot::Tracer) {
        return Err(format!(
            "process {} is recorded by `fever record` already (its own trace will have every \
             call); attach without --record",
            target.pid
        ));
    }
    let record = RecordConfig {
        run: RunConfig {
            verbosity: Verbosity::Quiet,
            ..target.run.clone()
        },
        output: trace.to_path_buf(),
        snapshots: Snapshots::All,
        max_calls_per_function: DEFAULT_MAX_CALLS,
        limits: SnapshotLimits::default(),
        profile_only: false,
    };
    session::begin_recording(py, &record, target.project.canonical_root(), tool_id)
        .map_err(|err| format!("cannot record: {err:#}"))
}

/// Disarms the profiler (and the tracer, with `--record`) and removes the region; with
/// `--record`, the trace's summary, or why the trace could not be completed.
pub fn detach(attachment: Attachment) -> Option<Result<Summary, String>> {
    drop(attachment);
    let ended = with_engine(|py| {
        let _ = engine::disarm::<Profiler>(py, Slot::Profiler);
        let recording = take_recording()?;
        Some(match session::end_recording(py, recording) {
            Ok(Some(Ok(summary))) => Ok(summary),
            Ok(Some(Err(err))) => Err(format!("{err:#}")),
            Ok(None) => Err("a thread was still inside fever's tracer: the trace ends \
                             without its summary"
                .into()),
            Err(err) => Err(err.to_string()),
        })
    });
    if let Some(target) = target() {
        let _ = std::fs::remove_file(process_region(target.pid));
    }
    ARMED.store(false, Ordering::SeqCst);
    ATTACHED.store(false, Ordering::SeqCst);
    match ended {
        Ok(ended) => ended,
        // The program is exiting (it completes the trace then), or its monitoring stayed busy.
        Err(err) => RECORDING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
            .then(|| {
                Err(format!(
                    "{err}; the trace is completed when the program exits"
                ))
            }),
    }
}
