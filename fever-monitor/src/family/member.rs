//! A child's side of the family: joining the top (after `os.fork()`, from the at-fork hook;
//! in a spawned interpreter, from the call `multiprocessing`'s preparation data carries), and
//! the thread that receives the top's saves, applies each with the reload engine once it holds
//! the GIL (the interpreter's next safe point; with the bytes and code the top read and compiled
//! for it, when they fit this process) and answers what it did. A member watches no
//! files itself.

use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use fever_core::control::{ChildMessage, ParentMessage};
use fever_core::{Project, ReloadEvent};
use pyo3::prelude::*;

use super::{address, top, Address, ADDRESS};
use crate::errors::fever_error;
use crate::reload::{self, Scope, Shared};
use crate::{functions, sources, tracer};

/// This process's connection to the top, to close in its own forked children.
static CONNECTION: AtomicI32 = AtomicI32::new(-1);

/// In a child of `os.fork()`: closes the connections inherited from the parent and joins the
/// family on its own (when the parent belonged to one).
pub fn after_fork_in_child() {
    top::forget_in_child();
    let inherited = CONNECTION.swap(-1, Ordering::SeqCst);
    if inherited >= 0 {
        // SAFETY: the fd was the parent's connection; no thread of this process uses it.
        unsafe { libc::close(inherited) };
    }
    if let Some(address) = address() {
        let _ = join(address);
    }
}

/// `fever._native.join_family(socket, root, record)`: a spawned interpreter (a
/// `multiprocessing` spawn or forkserver child) joins the family of the top whose socket is
/// `socket`: fever's code registry and source recorder start here as in the top, and this
/// process's own forks join too. `record` (`tracer::child_settings`' line) when the top records: this process is recorded
/// into the same trace. Raises `FeverError` when fever cannot join.
#[pyfunction]
#[pyo3(signature = (socket, root, record=None))]
pub fn join_family(
    py: Python<'_>,
    socket: PathBuf,
    root: PathBuf,
    record: Option<String>,
) -> PyResult<()> {
    if ADDRESS.get().is_some() {
        return Ok(());
    }
    let project = Project::new(&root)
        .map_err(|e| fever_error(format!("cannot use {} as the project: {e}", root.display())))?;
    let _ = ADDRESS.set(Address { socket, root });
    functions::install(py, project.clone())?;
    sources::install(py, project.clone())?;
    // A forkserver imported the program's modules before its children joined.
    if sources::record_loaded(py)? > 0 {
        functions::adopt_existing(py)?;
    }
    if let Some(record) = record {
        if let Some(tool_id) = crate::monitoring::claim(py)? {
            tracer::record_spawned(py, &record, project, tool_id)?;
        }
    }
    let at_fork = pyo3::types::PyDict::new(py);
    at_fork.set_item("before", wrap_pyfunction!(forking, py)?)?;
    at_fork.set_item("after_in_child", wrap_pyfunction!(forked, py)?)?;
    py.import("os")?
        .call_method("register_at_fork", (), Some(&at_fork))?;
    if let Some(address) = address() {
        join(address).map_err(|e| fever_error(format!("cannot join the family: {e}")))?;
    }
    Ok(())
}

/// The before-fork hook of a spawned member.
#[pyfunction]
fn forking(py: Python<'_>) {
    tracer::before_fork(py);
}

/// The at-fork hook of a spawned member (in the child).
#[pyfunction]
fn forked(py: Python<'_>) -> PyResult<()> {
    tracer::after_fork_in_child(py)?;
    after_fork_in_child();
    Ok(())
}

/// Connects to the top, says who this process is, and starts the thread that serves saves.
fn join(address: &Address) -> std::io::Result<()> {
    let mut stream = UnixStream::connect(&address.socket)?;
    ChildMessage::Hello {
        pid: std::process::id(),
    }
    .send(&mut stream)
    .map_err(std::io::Error::other)?;
    let fd: RawFd = stream.as_raw_fd();
    CONNECTION.store(fd, Ordering::SeqCst);
    crate::signals::without_signals(|| {
        std::thread::Builder::new()
            .name("fever-member".into())
            .spawn(move || serve(stream))
    })?;
    Ok(())
}

fn serve(mut stream: UnixStream) {
    while let Ok(ParentMessage::Reload {
        seq,
        path,
        skip_main,
        prepared,
    }) = ParentMessage::receive(&mut stream)
    {
        let scope = if skip_main {
            Scope::SkipMain
        } else {
            Scope::All
        };
        let path = Path::new(&path);
        let events = std::panic::catch_unwind(|| {
            Python::attach(|py| {
                let shared = prepared.map(|prepared| Shared::received(py, prepared));
                reload::reload_shared(py, path, scope, shared).events
            })
        })
        .unwrap_or_else(|_| {
            vec![ReloadEvent::Error {
                file: path.display().to_string(),
                line: None,
                message: "internal error in fever's reload engine; the running code is unchanged"
                    .into(),
            }]
        });
        if (ChildMessage::Applied { seq, events })
            .send(&mut stream)
            .is_err()
        {
            return;
        }
    }
}
