//! `fever watch`: the develop loop. Runs the program; when it ends, waits for a save; the
//! watcher thread reloads the changed code (leaving `__main__` alone between runs); then runs
//! the script again from the start in this process, with the call cache answering slow calls
//! whose code did not change. Ctrl-C or SIGTERM while waiting ends it with exit code 0. A save
//! applied once its module's import ended (`reload::later`) reaches the loop like any save.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError};
use fever_core::notice::{Notice, Without};
use fever_core::settings::{RunConfig, Verbosity, WatchConfig};
use fever_core::{Outcome, Project, ReloadEvent};
use pyo3::exceptions::{PyKeyboardInterrupt, PySystemExit};
use pyo3::prelude::*;

use crate::runner::{self, Ended};
use crate::session::{self, Session};
use crate::watcher::{FileWatcher, Loop};
use crate::{cache, family, functions, monitoring, notices, reload, sources};

/// Exit code after SIGTERM ended a run (128 + 15, as a shell reports it).
const TERMINATED_CODE: i32 = 143;

static TERMINATED: AtomicBool = AtomicBool::new(false);

/// Runs the develop loop on the project at `root` until Ctrl-C or SIGTERM; returns the exit code.
pub fn run(py: Python<'_>, config: &WatchConfig, root: &Path) -> anyhow::Result<i32> {
    let run = &config.run;
    let verbosity = run.verbosity;
    let project = Project::new(root).with_context(|| format!("cannot watch {}", root.display()))?;
    let tool_id = monitoring::claim(py).context("cannot register with sys.monitoring")?;
    functions::install(py, project.clone())?;
    sources::install(py, project.clone())?;
    let cache_on = match (&config.cache, tool_id) {
        (Some(cache), Some(id)) => {
            cache::start(
                py,
                id,
                cache::Settings {
                    project: project.clone(),
                    min_duration: cache.min_duration,
                    max_bytes: cache.max_bytes,
                    verbosity,
                    persist: cache.persist.then(|| root.to_path_buf()),
                },
            )?;
            true
        }
        (Some(_), None) => {
            notices::emit(&Notice::NoToolId {
                without: Without::CallCache,
            });
            false
        }
        (None, _) => false,
    };
    let (saves_tx, saves) = unbounded();
    reload::later::report_to(saves_tx.clone());
    let idle = Arc::new(AtomicBool::new(false));
    let watcher = FileWatcher::start(
        project,
        verbosity,
        Some(Loop {
            saves: saves_tx,
            idle: Arc::clone(&idle),
        }),
    )
    .with_context(|| format!("cannot watch {}", root.display()))?;
    crate::family::top::hook_spawn(py)?;
    session::keep(py, Session::new(Some(watcher), tool_id, cache_on))?;
    crate::attach::open(py, tool_id, root, "watch", run)?;
    let signal = py.import("signal")?;
    signal.call_method1(
        "signal",
        (
            signal.getattr("SIGTERM")?,
            wrap_pyfunction!(on_sigterm, py)?,
        ),
    )?;
    let say = |notice: Notice| {
        if verbosity >= Verbosity::Normal {
            notices::emit(&notice);
        }
    };
    let ended = develop(py, run, &idle, &saves, &say);
    // The children of the last run never outlive the loop.
    py.detach(family::top::end_all);
    ended
}

/// Runs the program, again after each save that calls for it, until Ctrl-C or SIGTERM.
fn develop(
    py: Python<'_>,
    run: &RunConfig,
    idle: &AtomicBool,
    saves: &Receiver<Outcome>,
    say: &impl Fn(Notice),
) -> anyhow::Result<i32> {
    loop {
        idle.store(false, Ordering::SeqCst);
        cache::begin_run(py);
        let ended = runner::run_once(py, &run.target, &run.args)?;
        idle.store(true, Ordering::SeqCst);
        cache::end_run(py);
        if TERMINATED.load(Ordering::SeqCst) {
            return Ok(TERMINATED_CODE);
        }
        match ended {
            Ended::Interrupted => return Ok(ended.code()),
            Ended::Exited(code) if code != 0 => {
                say(Notice::ProgramExited { code });
            }
            _ => {}
        }
        // A run that failed (a syntax error in the script, say) is run again by any save of
        // the project, also one that puts back the text it had.
        let failed = ended != Ended::Exited(0);
        // Saves made while it ran were applied to it; run again with all of them.
        let mut again = false;
        for outcome in saves.try_iter() {
            again |= accept(py, &outcome, failed);
        }
        if !again {
            say(Notice::WaitingForChanges);
            if !wait(py, saves, failed)? {
                return Ok(0);
            }
        }
        // The next run starts afresh: the children the last one left running end now.
        py.detach(family::top::end_all);
        say(Notice::Rerunning {
            target: run.target.clone(),
        });
    }
}

/// Tells the cache about a save; true when it calls for a new run: nothing was rejected, and
/// the text changed, or a rejected save was undone, or the last run `failed`.
fn accept(py: Python<'_>, outcome: &Outcome, failed: bool) -> bool {
    cache::after_save(py, outcome);
    (outcome.changed || outcome.recovered || (failed && outcome.file.is_some()))
        && !outcome
            .events
            .iter()
            .any(|e| matches!(e, ReloadEvent::Error { .. }))
}

/// Waits for a save that calls for a new run; false after Ctrl-C or SIGTERM.
fn wait(py: Python<'_>, saves: &Receiver<Outcome>, failed: bool) -> PyResult<bool> {
    loop {
        match py.detach(|| saves.recv_timeout(Duration::from_millis(100))) {
            Ok(outcome) => {
                if accept(py, &outcome, failed) {
                    return Ok(true);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(false),
        }
        if let Err(err) = py.check_signals() {
            if err.is_instance_of::<PyKeyboardInterrupt>(py)
                || err.is_instance_of::<PySystemExit>(py)
            {
                return Ok(false);
            }
            return Err(err);
        }
    }
}

/// SIGTERM: end the run in progress like `sys.exit` would (cleanup runs), then stop.
#[pyfunction]
fn on_sigterm(_signum: i32, _frame: &Bound<'_, PyAny>) -> PyResult<()> {
    TERMINATED.store(true, Ordering::SeqCst);
    Err(PySystemExit::new_err(TERMINATED_CODE))
}
