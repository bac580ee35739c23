//! The program side of `fever replay` (`fever _replay-serve`): listens on the control socket,
//! runs the program recorded like `fever record` (hot reload on, keeping the arguments of the
//! start calls it may replay), says `Finished` when the first run ends, then stays warm and
//! serves replays until the front end quits or leaves.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use crossbeam_channel::RecvTimeoutError;
use fever_core::control::{Request, Response};
use fever_core::notice::Notice;
use fever_core::settings::{Keep, RecordConfig, Verbosity};
use fever_core::{Project, ReloadEvent};
use pyo3::exceptions::{PyKeyboardInterrupt, PySystemExit};
use pyo3::prelude::*;

use super::control::{Event, Server};
use super::fork::{self, After};
use crate::session::{self, Session};
use crate::watcher::{FileWatcher, Loop};
use crate::{functions, monitoring, notices, runner, sources};

/// How long the trace writer may take to catch up when the first run ends.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// The functions a save changed, redefined, added or removed.
fn changed_functions(events: &[ReloadEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match event {
            ReloadEvent::Reloaded { name, .. }
            | ReloadEvent::Added { name }
            | ReloadEvent::Deleted { name }
            | ReloadEvent::Redefined { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect()
}

/// Runs the program side on the project at `root`: records like `record` says (into the trace
/// the front end reads), keeps the start calls `keep` names, listens on the socket `control`;
/// returns the exit code (0 when the front end quits).
pub fn serve(
    py: Python<'_>,
    record: &RecordConfig,
    control: &Path,
    keep: Keep,
    root: &Path,
) -> anyhow::Result<i32> {
    let run = &record.run;
    let Some(tool_id) = monitoring::claim(py).context("cannot register with sys.monitoring")?
    else {
        bail!("cannot replay: sys.monitoring tool ids 3 and 4 are taken by other tools");
    };
    let (server, events) = Server::start(control)
        .with_context(|| format!("cannot listen on {}", control.display()))?;
    super::hooks::activate(keep, run.script_module());
    let project = Project::new(root).with_context(|| format!("cannot read {}", root.display()))?;
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
        let watcher = FileWatcher::start(
            project,
            run.verbosity,
            Some(Loop {
                saves,
                idle: Arc::new(AtomicBool::new(false)),
            }),
        )
        .with_context(|| format!("cannot watch {}", root.display()))?;
        let server = Arc::clone(&server);
        crate::signals::without_signals(|| {
            std::thread::Builder::new()
                .name("fever-replay-reloads".into())
                .spawn(move || {
                    for outcome in outcomes {
                        let functions = changed_functions(&outcome.events);
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
    let ended = runner::run_once(py, &run.target, &run.args)?;
    if !session::sync_trace(py, SYNC_TIMEOUT) {
        notices::emit(&Notice::TraceBehind);
    }
    if run.verbosity >= Verbosity::Normal {
        notices::emit(&Notice::StaysWarm);
    }
    server.send(&Response::Finished {
        exit_code: ended.code(),
    });
    loop {
        let event = py.detach(|| events.recv_timeout(Duration::from_millis(50)));
        match event {
            Ok(Event::Request(Request::Replay(request))) => {
                let (response, after) = fork::replay(py, &request, &events, &server)?;
                server.send(&response);
                if matches!(after, After::Quit) {
                    return Ok(0);
                }
            }
            Ok(Event::Request(Request::Ping)) => server.send(&Response::Pong),
            Ok(Event::Request(Request::Cancel)) => server.send(&Response::Error {
                message: "no replay is running".into(),
            }),
            Ok(Event::Request(Request::Quit) | Event::Gone)
            | Err(RecvTimeoutError::Disconnected) => return Ok(0),
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
