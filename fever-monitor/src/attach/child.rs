//! A child process of a program under fever listens on a control socket of its own, so
//! `fever attach CHILD` profiles (and records) that child alone: a forked child opens it in its
//! at-fork hook, as its parent's target with its own pid; a `multiprocessing` spawn or
//! forkserver child opens it right after it joined the family ([`listen_as_child`], which
//! `fever._family.join` calls; under `fever run --no-watch`, with no family, it only opens
//! it: [`hook_spawn`]). Either costs one
//! bound socket and one thread blocked in `accept`: nothing runs while nobody connects.
//! `fever ps` names a child by its role, its `multiprocessing` name (`ForkPoolWorker-1`), read
//! when asked.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fever_core::control::process_socket;
use fever_core::Project;
use pyo3::prelude::*;

use super::{
    listen_as, remote, server, set_target, take_recording, target, Target, ARMED, ATTACHED, OPEN,
};
use crate::engine::{self, Slot};
use crate::errors::fever_error;
use crate::profiler::Profiler;

/// How long a child's status waits for its interpreter to say the child's `multiprocessing`
/// name (a long C call may hold the GIL): afterwards the child is named by how it started.
const ROLE_WAIT: Duration = Duration::from_millis(200);

/// In a child of `os.fork()`: the socket and the client are the parent's. The child never
/// counts into the parent's region (its profiler, if armed, is dropped unrun); it opens a socket
/// of its own (silently without one when that fails: the program runs on).
#[pyfunction]
pub(super) fn after_fork_in_child(py: Python<'_>) -> PyResult<()> {
    OPEN.store(false, Ordering::SeqCst);
    ARMED.store(false, Ordering::SeqCst);
    if ATTACHED.swap(false, Ordering::SeqCst) {
        engine::abandon::<Profiler>(py, Slot::Profiler)?;
        // The trace's writer thread and ring are the parent's.
        if let Some(recording) = take_recording() {
            crate::tracer::abandon(py)?;
            std::mem::forget(recording);
        }
    }
    let Some(parent) = target() else {
        return Ok(());
    };
    let pid = std::process::id();
    set_target(
        Target {
            pid,
            command: "forked child".into(),
            child: true,
            ..parent.clone()
        },
        true,
    );
    if server::start(&process_socket(pid)).is_ok() {
        OPEN.store(true, Ordering::SeqCst);
    }
    Ok(())
}

/// `fever._native.listen_as_child(root)`: in a spawned child that joined the family of the
/// project at `root`, opens this process's control socket (with fever's monitoring tool id).
/// Raises `FeverError` when the socket cannot be opened.
#[pyfunction]
pub fn listen_as_child(py: Python<'_>, root: PathBuf) -> PyResult<()> {
    let project = Project::new(&root).map_err(|err| {
        fever_error(format!(
            "cannot use {} as the project: {err}",
            root.display()
        ))
    })?;
    let target = Target {
        pid: std::process::id(),
        command: "spawned child".into(),
        tool_id: crate::monitoring::claim(py)?,
        run: remote::this_program(py, root)?,
        project,
        child: true,
    };
    listen_as(py, target)?
        .map_err(|err| fever_error(format!("cannot open the control socket: {err}")))
}

/// Without a family (`fever run --no-watch` watches no files, so no saves go to children):
/// makes `multiprocessing`'s spawn and forkserver children open their control socket all the
/// same (`fever._family.install` with no family socket).
pub fn hook_spawn(py: Python<'_>, root: &std::path::Path) -> PyResult<()> {
    py.import("fever._family")?.call_method1(
        "install",
        (py.None(), root.display().to_string(), py.None()),
    )?;
    Ok(())
}

/// What `fever ps` calls this child: its `multiprocessing` name, or `started` (how it started)
/// when it has none or its interpreter does not answer within [`ROLE_WAIT`].
pub(super) fn role(started: &str) -> String {
    process_name().unwrap_or_else(|| started.to_owned())
}

/// `multiprocessing`'s name of this process, read with the GIL by a thread of its own (which
/// ends when it gets the GIL, however late).
fn process_name() -> Option<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    crate::signals::without_signals(|| {
        std::thread::Builder::new()
            .name("fever-role".into())
            .spawn(move || {
                if OPEN.load(Ordering::SeqCst) {
                    let _ = tx.send(Python::attach(|py| name(py).ok().flatten()));
                }
            })
    })
    .ok()?;
    rx.recv_timeout(ROLE_WAIT).ok().flatten()
}

/// `multiprocessing.current_process().name`, unless `multiprocessing` is not imported or this
/// is its main process.
fn name(py: Python<'_>) -> PyResult<Option<String>> {
    let modules = py.import("sys")?.getattr("modules")?;
    let Ok(process) = modules.get_item("multiprocessing.process") else {
        return Ok(None);
    };
    let name: String = process
        .call_method0("current_process")?
        .getattr("name")?
        .extract()?;
    Ok((name != "MainProcess").then_some(name))
}
