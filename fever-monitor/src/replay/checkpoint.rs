//! The checkpoint of a replay: a fork of the warm program (`gc.freeze()` first, so the child's
//! collections leave the parent's pages alone; see `fever._replay.fork`). A child is forked
//! when a replay is asked ([`fork_now`]) or ahead of it: a [`Standby`] is forked while the
//! program idles and waits on a pipe for its request, so a replay does not wait for the fork.
//! Forking copies the page tables, which takes time in proportion to the memory the program
//! holds (tens to hundreds of milliseconds for a gigabyte).
//!
//! A standby is a picture of the program at the moment it was forked: it is only kept while
//! nothing else can change the program, that is after the first run, with no thread of the
//! program's own alive, and until the next reload (the caller drops it then).

use std::fs::File;
use std::os::fd::{FromRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use fever_core::control::{ReplayRequest, Request};
use pyo3::prelude::*;

/// Set while a replay forks: the child's at-fork hook then keeps the tracer (see
/// `crate::session`) instead of dropping it.
static FORKING: AtomicBool = AtomicBool::new(false);

/// Is this fork a replay's? (Read in the child's at-fork hook.)
pub fn replay_fork() -> bool {
    FORKING.load(Ordering::SeqCst)
}

/// A pipe, both ends close-on-exec: (read end, write end).
fn pipe() -> Result<(RawFd, RawFd), String> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: a plain pipe.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!(
            "cannot create a pipe: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok((fds[0], fds[1]))
}

fn close(fds: &[RawFd]) {
    for fd in fds {
        // SAFETY: our descriptors, closed once.
        unsafe { libc::close(*fd) };
    }
}

/// Forks the warm program: the child's pid in the parent, 0 in the child.
fn fork(py: Python<'_>) -> Result<i32, String> {
    let glue = py
        .import("fever._replay")
        .map_err(|err| format!("cannot fork: {err}"))?;
    FORKING.store(true, Ordering::SeqCst);
    let forked = glue.call_method0("fork");
    FORKING.store(false, Ordering::SeqCst);
    forked
        .and_then(|p| p.extract())
        .map_err(|err| format!("cannot fork: {err}"))
}

/// Forks a child that runs `request` at once; returns its pid and the read end of the pipe its
/// result comes on.
pub fn fork_now(py: Python<'_>, request: &ReplayRequest) -> Result<(i32, RawFd), String> {
    let started = Instant::now();
    let (read_fd, write_fd) = pipe()?;
    let pid = match fork(py) {
        Ok(pid) => pid,
        Err(reason) => {
            close(&[read_fd, write_fd]);
            return Err(reason);
        }
    };
    if pid == 0 {
        close(&[read_fd]);
        super::child::run(py, request, write_fd, started);
    }
    // Closing our copy of the write end lets EOF reach us when the child ends.
    close(&[write_fd]);
    Ok((pid, read_fd))
}

/// A child forked ahead, waiting for its request. Dropping it ends the child.
pub struct Standby {
    pid: i32,
    /// Where its request goes.
    request_fd: RawFd,
    /// Where its result comes from.
    result_fd: RawFd,
    /// `crate::reload::history::generation()` when it was forked.
    pub generation: u64,
}

impl Standby {
    /// Forks a standby child now.
    pub fn fork(py: Python<'_>, generation: u64) -> Result<Self, String> {
        let (request_read, request_write) = pipe()?;
        let (result_read, result_write) = match pipe() {
            Ok(fds) => fds,
            Err(reason) => {
                close(&[request_read, request_write]);
                return Err(reason);
            }
        };
        let pid = match fork(py) {
            Ok(pid) => pid,
            Err(reason) => {
                close(&[request_read, request_write, result_read, result_write]);
                return Err(reason);
            }
        };
        if pid == 0 {
            close(&[request_write, result_read]);
            wait_for_request(py, request_read, result_write);
        }
        close(&[request_read, result_write]);
        Ok(Self {
            pid,
            request_fd: request_write,
            result_fd: result_read,
            generation,
        })
    }

    /// Hands `request` to the child; returns its pid and the read end of its result pipe.
    pub fn start(self, request: &ReplayRequest) -> Result<(i32, RawFd), String> {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: our write end; the File closes it when dropped (EOF for the child after the
        // request).
        let mut pipe = unsafe { File::from_raw_fd(this.request_fd) };
        match Request::Replay(request.clone()).send(&mut pipe) {
            Ok(()) => Ok((this.pid, this.result_fd)),
            Err(err) => {
                drop(pipe);
                close(&[this.result_fd]);
                end(this.pid);
                Err(format!("cannot reach the standby replay: {err}"))
            }
        }
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        close(&[self.request_fd, self.result_fd]);
        end(self.pid);
    }
}

/// Kills child `pid` and waits for it in the background.
fn end(pid: i32) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    reap_later(pid);
}

/// Waits for child `pid` in the background (the teardown of a big heap's copy takes as long
/// as the fork).
pub fn reap_later(pid: i32) {
    let _ = crate::signals::without_signals(|| {
        std::thread::Builder::new()
            .name("fever-replay-reap".into())
            .spawn(move || reap(pid))
    });
}

/// Waits for child `pid` to end; its wait status.
pub fn reap(pid: i32) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &raw mut status, 0) };
        if r >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return status;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// In a standby child: waits for the request, then runs it; leaves when the parent lets go.
fn wait_for_request(py: Python<'_>, request_fd: RawFd, result_fd: RawFd) -> ! {
    // SAFETY: the child's read end, ours alone.
    let mut pipe = unsafe { File::from_raw_fd(request_fd) };
    match Request::receive(&mut pipe) {
        Ok(Request::Replay(request)) => {
            drop(pipe);
            // A signal the terminal's process group got while this child waited (Ctrl-C in a
            // debugger) was not meant for the replay.
            let _ = py.check_signals();
            super::child::run(py, &request, result_fd, Instant::now());
        }
        // SAFETY: ends this child, which was never used, at once.
        _ => unsafe { libc::_exit(0) },
    }
}
