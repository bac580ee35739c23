//! A child's side of the family: joining the top (after `os.fork()`, from the at-fork hook;
//! in a spawned interpreter, from the call `multiprocessing`'s preparation data carries), and
//! the thread that receives the top's saves, has each applied with the reload engine at the
//! interpreter's next safe point (by the main thread's next pending-call check, or by this
//! thread once it holds the GIL, whichever comes first; with the bytes and code the top read and
//! compiled for it, when they fit this process) and answers what it did. A member watches no
//! files itself. A save that finds the file still being imported here is answered so
//! ([`ReloadEvent::Importing`]), and answered again with what it did once the import ended.

use std::os::fd::{AsRawFd, RawFd};
use std::os::raw::{c_int, c_void};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fever_core::control::{ChildMessage, ParentMessage};
use fever_core::{Outcome, Project, ReloadEvent};
use pyo3::prelude::*;

use super::{address, top, Address, ADDRESS, SEEN};
use crate::errors::fever_error;
use crate::reload::{self, Scope, Shared};
use crate::{functions, sources, tracer};

/// This process's connection to the top, to close in its own forked children.
static CONNECTION: AtomicI32 = AtomicI32::new(-1);
/// The saves (number and file) that found their file still being imported here, answered
/// again once the import ended.
static IMPORTING: Mutex<Vec<(u64, PathBuf)>> = Mutex::new(Vec::new());

fn importing() -> MutexGuard<'static, Vec<(u64, PathBuf)>> {
    IMPORTING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// In a child of `os.fork()`: closes the connections inherited from the parent and joins the
/// family on its own (when the parent belonged to one).
pub fn after_fork_in_child() {
    // The saves waiting for an import in the parent (its own, as the top or as a member) are
    // the parent's to answer; the import goes on here with the text it read before them, so
    // this process has not seen them yet: the top sends them again.
    let mut waiting = top::last_saves_at_fork(&reload::later::waiting_at_fork());
    top::forget_in_child();
    if let Ok(mut guard) = IMPORTING.try_lock() {
        waiting.extend(guard.iter().map(|&(seq, _)| seq));
        guard.clear();
    }
    SEEN.store(
        seen_at_fork(SEEN.load(Ordering::SeqCst), &waiting),
        Ordering::SeqCst,
    );
    let inherited = CONNECTION.swap(-1, Ordering::SeqCst);
    if inherited >= 0 {
        // SAFETY: the fd was the parent's connection; no thread of this process uses it.
        unsafe { libc::close(inherited) };
    }
    if let Some(address) = address() {
        let _ = join(address, Some(SEEN.load(Ordering::SeqCst)));
    }
}

/// The last save a child forked now has: the parent's (`seen`), but for the saves still
/// waiting for an import to end (`waiting`), which the child's copy of the import does not run.
fn seen_at_fork(seen: u64, waiting: &[u64]) -> u64 {
    waiting
        .iter()
        .map(|&seq| seq.saturating_sub(1))
        .fold(seen, u64::min)
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
        join(address, None).map_err(|e| fever_error(format!("cannot join the family: {e}")))?;
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

/// Connects to the top, says who this process is (and, forked, the last save it has), and
/// starts the thread that serves saves.
fn join(address: &Address, seen: Option<u64>) -> std::io::Result<()> {
    let mut stream = UnixStream::connect(&address.socket)?;
    ChildMessage::Hello {
        pid: std::process::id(),
        seen,
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

fn serve(stream: UnixStream) {
    let stream = Arc::new(stream);
    let answers = Arc::clone(&stream);
    reload::later::report_with(Arc::new(
        move |_: Python<'_>, path: &Path, outcome: Outcome, _: Duration| {
            answer_later(&answers, path, outcome);
        },
    ));
    while let Ok(ParentMessage::Reload {
        seq,
        path,
        skip_main,
        prepared,
    }) = ParentMessage::receive(&mut &*stream)
    {
        let scope = if skip_main {
            Scope::SkipMain
        } else {
            Scope::All
        };
        let job = Arc::new(Job {
            pid: std::process::id(),
            save: Mutex::new(Some(Save {
                seq,
                path: PathBuf::from(path),
                scope,
                prepared,
            })),
            stream: Arc::clone(&stream),
        });
        // SAFETY: `pending` takes back the reference handed over here; the call may be made
        // from any thread.
        let queued = unsafe {
            pyo3::ffi::Py_AddPendingCall(
                Some(pending),
                Arc::into_raw(Arc::clone(&job)) as *mut c_void,
            )
        };
        if queued != 0 {
            // Not queued: the reference stays ours.
            // SAFETY: made by `Arc::into_raw` above and not taken by `pending`.
            drop(unsafe { Arc::from_raw(Arc::as_ptr(&job)) });
        }
        if !Python::attach(|py| job.run(py)) {
            return;
        }
    }
}

/// A save from the top, to apply once.
struct Save {
    seq: u64,
    path: PathBuf,
    scope: Scope,
    prepared: Option<fever_core::control::Prepared>,
}

/// A save waiting to be applied by whichever thread holds the GIL first: the interpreter's
/// main thread at its next pending-call check (`Py_AddPendingCall`: within a few bytecodes while
/// it runs Python, where a thread waiting for the GIL waits for the switch interval, 5 ms by
/// default), or the member's thread (when the main thread waits in C code, where pending calls
/// wait too). Whoever applies it answers the top.
struct Job {
    /// The process that queued it: a fork copies the interpreter's pending calls, and the
    /// child's copy is not its to apply.
    pid: u32,
    save: Mutex<Option<Save>>,
    stream: Arc<UnixStream>,
}

impl Job {
    /// Applies the save unless it was already, and answers; false when the top is gone.
    fn run(&self, py: Python<'_>) -> bool {
        if self.pid != std::process::id() {
            return true;
        }
        let Some(Save {
            seq,
            path,
            scope,
            prepared,
        }) = self
            .save
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        else {
            return true;
        };
        let events = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let shared = prepared.map(|prepared| Shared::received(py, prepared));
            reload::reload_shared(py, &path, scope, shared).events
        }))
        .unwrap_or_else(|_| {
            vec![ReloadEvent::Error {
                file: path.display().to_string(),
                line: None,
                message: "internal error in fever's reload engine; the running code is unchanged"
                    .into(),
            }]
        });
        SEEN.fetch_max(seq, Ordering::SeqCst);
        if ReloadEvent::any_importing(&events) {
            // The GIL, held until the answer is sent, keeps the later answer after this one.
            importing().push((seq, path));
        }
        (ChildMessage::Applied { seq, events })
            .send(&mut &*self.stream)
            .is_ok()
    }
}

/// Answers the saves of `path` that found it still being imported with what applying it once
/// the import ended did (all of it in the last one's answer); called holding the GIL, as every
/// answer is written, so that answers never interleave.
fn answer_later(stream: &UnixStream, path: &Path, outcome: Outcome) {
    let seqs: Vec<u64> = {
        let mut importing = importing();
        let (these, others): (Vec<_>, Vec<_>) = importing.drain(..).partition(|(_, p)| p == path);
        *importing = others;
        these.into_iter().map(|(seq, _)| seq).collect()
    };
    let mut events = Some(outcome.events);
    for (i, &seq) in seqs.iter().enumerate() {
        let events = if i + 1 == seqs.len() {
            events.take().unwrap_or_default()
        } else {
            Vec::new()
        };
        if (ChildMessage::Applied { seq, events })
            .send(&mut &*stream)
            .is_err()
        {
            return;
        }
    }
}

/// The pending call: runs in the main thread, with the GIL.
extern "C" fn pending(job: *mut c_void) -> c_int {
    // SAFETY: `serve` handed over this reference with `Arc::into_raw`.
    let job = unsafe { Arc::from_raw(job as *const Job) };
    // SAFETY: pending calls run with the GIL held.
    let py = unsafe { Python::assume_attached() };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(py)));
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_forked_during_an_import_has_not_seen_the_saves_waiting_for_it() {
        assert_eq!(seen_at_fork(7, &[]), 7);
        assert_eq!(seen_at_fork(7, &[5, 3]), 2);
        assert_eq!(seen_at_fork(1, &[5, 3]), 1);
    }
}
