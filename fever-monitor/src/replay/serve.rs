//! The program side of `fever replay` (`fever _replay-serve`): listens on the control socket,
//! runs the program recorded like `fever record` (hot reload on, keeping the arguments of the
//! start calls it may replay), says `Finished` when the first run ends (after a post-mortem
//! debugger on its uncaught exception, when asked), then stays warm and serves replays and
//! undos of reloads until the front end quits or leaves. While the first run goes on, a thread
//! of its own serves the same requests: a replay then forks the program as it is at that moment
//! (only the forking thread lives on in the child, and runs the start call). The front end hears
//! of each save's changed functions, also of a save applied once its module's import ended.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use fever_core::control::{Request, Response};
use fever_core::notice::Notice;
use fever_core::settings::{Keep, RecordConfig, Verbosity};
use fever_core::Project;
use pyo3::exceptions::{PyKeyboardInterrupt, PySystemExit};
use pyo3::prelude::*;

use super::checkpoint::Standby;
use super::control::{attach_refused, Event, Server};
use super::fork::{self, After};
use crate::session::{self, Session};
use crate::watcher::{FileWatcher, Loop};
use crate::{functions, monitoring, notices, reload, runner, sources};

/// How long the trace writer may take to catch up when the first run ends.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the program side on the project at `root`: records like `record` says (into the trace
/// the front end reads), keeps the start calls `keep` names, listens on the socket `control`,
/// opens the debugger `post_mortem` names on the first run's uncaught exception; returns the
/// exit code (0 when the front end quits).
pub fn serve(
    py: Python<'_>,
    record: &RecordConfig,
    control: &Path,
    keep: Keep,
    post_mortem: Option<&str>,
    root: &Path,
) -> anyhow::Result<i32> {
    let run = &record.run;
    let Some(tool_id) = monitoring::claim(py).context("cannot register with sys.monitoring")?
    else {
        bail!("cannot replay: sys.monitoring tool ids 3 and 4 are taken by other tools");
    };
    let (server, events) = Server::start(control)
        .with_context(|| format!("cannot listen on {}", control.display()))?;
    let project = Project::new(root).with_context(|| format!("cannot read {}", root.display()))?;
    super::hooks::activate(py, tool_id, &project, keep, run.script_module())?;
    // The code registry finds the function objects of kept calls (and serves reloads).
    functions::install(py, project.clone())?;
    sources::install(py, project.clone())?;
    // The trace is the front end's: no summary line about it at exit.
    let mut record = record.clone();
    record.run.verbosity = Verbosity::Quiet;
    let recording = session::start_recording(py, &record, root, tool_id)?;
    let server = Arc::new(server);
    let watcher = if run.watch {
        // Saves reach the program as under `fever run` (`__main__` included: it stays loaded),
        // and the front end hears which functions changed.
        let (saves, outcomes) = crossbeam_channel::unbounded();
        // A save applied once its module's import ended is heard like any.
        reload::later::report_to(saves.clone());
        let watcher = FileWatcher::start(
            project,
            run.verbosity,
            Some(Loop {
                saves,
                idle: Arc::new(AtomicBool::new(false)),
            }),
        )
        .with_context(|| format!("cannot watch {}", root.display()))?;
        // Spawned children join too: they get the saves, and are recorded.
        crate::family::top::hook_spawn(py)?;
        // Not kept alive by this thread (the channel never closes: `report_to` keeps a sender),
        // the server closes its socket when `serve` returns.
        let server = Arc::downgrade(&server);
        crate::signals::without_signals(|| {
            std::thread::Builder::new()
                .name("fever-replay-reloads".into())
                .spawn(move || {
                    for outcome in outcomes {
                        let functions =
                            Python::attach(|py| super::edited::changed(py, &outcome.events));
                        let Some(server) = server.upgrade() else {
                            return;
                        };
                        if !functions.is_empty() {
                            server.send(&Response::Reloaded { functions });
                        }
                    }
                })
        })?;
        Some(watcher)
    } else {
        None
    };
    session::keep(
        py,
        Session::new(watcher, Some(tool_id), false).with_recording(recording),
    )?;
    let first_run_done = Arc::new(AtomicBool::new(false));
    let early = serve_during_first_run(events.clone(), Arc::clone(&server), &first_run_done)?;
    let ended = runner::run_once(py, &run.target, &run.args);
    first_run_done.store(true, Ordering::SeqCst);
    let _ = py.detach(|| early.join());
    let ended = ended?;
    if let (runner::Ended::Raised, Some(debugger)) = (ended, post_mortem) {
        open_post_mortem(py, &server, debugger);
    }
    if !session::sync_trace(py, SYNC_TIMEOUT) {
        notices::emit(&Notice::TraceBehind);
    }
    if run.verbosity >= Verbosity::Normal {
        notices::emit(&Notice::StaysWarm);
    }
    server.send(&Response::Finished {
        exit_code: ended.code(),
    });
    let mut standby = None;
    loop {
        keep_standby(py, &mut standby);
        let event = py.detach(|| events.recv_timeout(Duration::from_millis(50)));
        match event {
            Ok(event) => {
                // A replay takes the standby, unless a reload since it was forked (none can run
                // now: we hold the GIL) made it stale.
                let ready = match event {
                    Event::Request(Request::Replay(_)) => standby
                        .take()
                        .filter(|s| s.generation == reload::history::generation()),
                    _ => None,
                };
                if matches!(handle(py, event, ready, &events, &server)?, After::Quit) {
                    return Ok(0);
                }
            }
            Err(RecvTimeoutError::Disconnected) => return Ok(0),
            Err(RecvTimeoutError::Timeout) => {}
        }
        if let Err(err) = py.check_signals() {
            if err.is_instance_of::<PyKeyboardInterrupt>(py) {
                return Ok(130);
            }
            if err.is_instance_of::<PySystemExit>(py) {
                return Ok(0);
            }
            return Err(err.into());
        }
    }
}

/// Answers one request from the front end.
fn handle(
    py: Python<'_>,
    event: Event,
    standby: Option<Standby>,
    events: &Receiver<Event>,
    server: &Server,
) -> PyResult<After> {
    match event {
        Event::Request(Request::Replay(request)) => {
            let (response, after) = fork::replay(py, &request, standby, events, server)?;
            server.send(&response);
            return Ok(after);
        }
        Event::Request(Request::Ping) => server.send(&Response::Pong),
        Event::Request(Request::Undo) => server.send(&undo(py)),
        Event::Request(Request::Cancel) => server.send(&Response::Error {
            message: "no replay is running".into(),
        }),
        Event::Request(Request::Quit) | Event::Gone => return Ok(After::Quit),
        Event::Request(
            Request::Status
            | Request::Attach
            | Request::AttachRecording { .. }
            | Request::Names { .. }
            | Request::Detach
            | Request::Children
            | Request::EndedChildren,
        ) => server.send(&attach_refused()),
    }
    Ok(After::Serve)
}

/// Keeps a standby replay child forked ahead while the program idles (see `checkpoint.rs`):
/// drops it when a reload made it stale, forks one when there is none and no thread of the
/// program's own could change the program meanwhile.
fn keep_standby(py: Python<'_>, standby: &mut Option<Standby>) {
    let generation = reload::history::generation();
    if standby.as_ref().is_some_and(|s| s.generation != generation) {
        *standby = None;
    }
    if standby.is_some() {
        return;
    }
    let alone = py
        .import("threading")
        .and_then(|t| t.call_method0("active_count"))
        .and_then(|n| n.extract::<usize>())
        .is_ok_and(|n| n == 1);
    if alone {
        *standby = Standby::fork(py, generation).ok();
    }
}

/// A thread that answers the front end while the first run goes on (until `done`). Quitting
/// then ends the process at once: the program is in the middle of its run.
fn serve_during_first_run(
    events: Receiver<Event>,
    server: Arc<Server>,
    done: &Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let done = Arc::clone(done);
    crate::signals::without_signals(|| {
        std::thread::Builder::new()
            .name("fever-replay-early".into())
            .spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    let event = match events.recv_timeout(Duration::from_millis(20)) {
                        Ok(event) => event,
                        Err(RecvTimeoutError::Timeout) => continue,
                        Err(RecvTimeoutError::Disconnected) => return,
                    };
                    let after = Python::attach(|py| handle(py, event, None, &events, &server));
                    if !matches!(after, Ok(After::Serve)) {
                        let _ = std::io::Write::flush(&mut std::io::stdout());
                        // SAFETY: ends the process the front end is leaving.
                        unsafe { libc::_exit(0) };
                    }
                }
            })
    })
}

/// Opens `debugger` post-mortem on the first run's uncaught exception (its traceback was
/// printed, and kept as `sys.last_traceback`), once the front end was told to hand it the
/// keyboard.
fn open_post_mortem(py: Python<'_>, server: &Server, debugger: &str) {
    server.send(&Response::Debugging);
    let opened = py.import("sys").and_then(|sys| {
        let tb = sys.getattr("last_traceback")?;
        py.import("fever._replay")?
            .call_method1("debug", (debugger, py.None(), tb))
    });
    if let Err(err) = opened {
        notices::emit(&Notice::DebuggerFailed {
            name: debugger.to_owned(),
            error: err.to_string(),
        });
    }
}

/// Undoes the last reload, says so, and answers with what changed.
fn undo(py: Python<'_>) -> Response {
    match reload::history::undo(py) {
        Ok(undone) => {
            let file = reload::display_path(&undone.file);
            let functions = super::edited::changed(py, &undone.events);
            notices::emit(&Notice::Undone {
                file: file.clone(),
                functions: functions.iter().map(|f| f.name.clone()).collect(),
            });
            Response::Undone { file, functions }
        }
        Err(message) => Response::Error { message },
    }
}
