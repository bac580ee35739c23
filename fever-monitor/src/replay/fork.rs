//! The warm parent's side of a replay: fork (the checkpoint: `gc.freeze()` first, so the child's
//! collections leave the parent's pages alone), then wait for the child's result on a pipe while
//! still answering the front end (`Cancel` kills the child). The parent's own state is never
//! touched: a replay that raises, hangs, calls `os._exit` or crashes only ends its child.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use fever_core::control::{ReplayRequest, Request, Response};
use pyo3::prelude::*;

use super::control::{Event, Server};

/// Set while a replay forks: the child's at-fork hook then keeps the tracer (see
/// `crate::session`) instead of dropping it.
static FORKING: AtomicBool = AtomicBool::new(false);

/// Is this fork a replay's? (Read in the child's at-fork hook.)
pub fn replay_fork() -> bool {
    FORKING.load(Ordering::SeqCst)
}

/// How a replay in the parent ended, besides its response.
pub enum After {
    /// Go on serving.
    Serve,
    /// The front end asked to quit (or left) during the replay.
    Quit,
}

/// Runs `request` in a forked child and returns its response; requests arriving meanwhile are
/// answered (`Cancel` stops the child). Ctrl-C in the parent stops the child too, then raises.
pub fn replay(
    py: Python<'_>,
    request: &ReplayRequest,
    events: &Receiver<Event>,
    server: &Server,
) -> PyResult<(Response, After)> {
    let started = Instant::now();
    let mut fds = [0 as RawFd; 2];
    // SAFETY: a plain pipe; both ends close on exec.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Ok((
            Response::ReplayFailed {
                reason: format!("cannot create a pipe: {}", std::io::Error::last_os_error()),
            },
            After::Serve,
        ));
    }
    let [read_fd, write_fd] = fds;
    let glue = py.import("fever._replay")?;
    FORKING.store(true, Ordering::SeqCst);
    let forked = glue.call_method0("fork");
    FORKING.store(false, Ordering::SeqCst);
    let pid: i32 = match forked.and_then(|p| p.extract()) {
        Ok(pid) => pid,
        Err(err) => {
            // SAFETY: our descriptors.
            unsafe {
                libc::close(read_fd);
                libc::close(write_fd);
            }
            return Ok((
                Response::ReplayFailed {
                    reason: format!("cannot fork: {err}"),
                },
                After::Serve,
            ));
        }
    };
    if pid == 0 {
        // SAFETY: the child's copy of the read end.
        unsafe { libc::close(read_fd) };
        super::child::run(py, request, write_fd, started);
    }
    // SAFETY: the parent's copy of the write end: closing it lets EOF reach us when the child ends.
    unsafe { libc::close(write_fd) };
    let mut waited = Wait {
        pid,
        read_fd,
        buf: Vec::new(),
        cancelled: false,
        after: After::Serve,
    };
    let status = waited.wait(py, events, server)?;
    let response = match Response::decode_frame(&waited.buf) {
        Some(Ok(response)) => response,
        Some(Err(err)) => Response::ReplayFailed {
            reason: format!("the replay sent a bad result: {err}"),
        },
        None => Response::ReplayFailed {
            reason: if waited.cancelled {
                "cancelled; the warm program is untouched".into()
            } else {
                format!("{}; the warm program is untouched", describe(status))
            },
        },
    };
    Ok((response, waited.after))
}

struct Wait {
    pid: i32,
    read_fd: RawFd,
    buf: Vec<u8>,
    cancelled: bool,
    after: After,
}

impl Wait {
    /// Reads the child's result until EOF, answering requests; returns its wait status.
    fn wait(&mut self, py: Python<'_>, events: &Receiver<Event>, server: &Server) -> PyResult<i32> {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let read = py.detach(|| {
                let mut poll = libc::pollfd {
                    fd: self.read_fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                let ready = unsafe { libc::poll(&raw mut poll, 1, 20) };
                if ready <= 0 {
                    return None;
                }
                // SAFETY: reading into our buffer from our descriptor.
                let n = unsafe { libc::read(self.read_fd, chunk.as_mut_ptr().cast(), chunk.len()) };
                Some(n)
            });
            match read {
                Some(0) => break,
                Some(n) if n > 0 && self.buf.len() <= fever_core::control::MAX_MESSAGE + 8 => {
                    self.buf.extend_from_slice(&chunk[..n.unsigned_abs()]);
                    if whole_frame(&self.buf) {
                        // The result is in: answer now, and let the child's exit (the
                        // teardown of its copy of a big heap takes as long as the fork) be
                        // waited for in the background.
                        // SAFETY: our descriptor.
                        unsafe { libc::close(self.read_fd) };
                        let pid = self.pid;
                        let _ = crate::signals::without_signals(|| {
                            std::thread::Builder::new()
                                .name("fever-replay-reap".into())
                                .spawn(move || reap(pid))
                        });
                        return Ok(0);
                    }
                }
                Some(n) if n > 0 => {}
                Some(_)
                    if std::io::Error::last_os_error().kind()
                        != std::io::ErrorKind::Interrupted =>
                {
                    break
                }
                _ => {}
            }
            for event in events.try_iter() {
                match event {
                    Event::Request(Request::Cancel) => self.kill(),
                    Event::Request(Request::Quit) | Event::Gone => {
                        self.kill();
                        self.after = After::Quit;
                    }
                    Event::Request(Request::Ping) => server.send(&Response::Pong),
                    Event::Request(Request::Replay(_)) => server.send(&Response::Error {
                        message: "a replay is running; cancel it first".into(),
                    }),
                }
            }
            if let Err(err) = py.check_signals() {
                self.kill();
                self.reap(py);
                // SAFETY: our descriptor.
                unsafe { libc::close(self.read_fd) };
                return Err(err);
            }
        }
        // SAFETY: our descriptor.
        unsafe { libc::close(self.read_fd) };
        Ok(self.reap(py))
    }

    fn kill(&mut self) {
        self.cancelled = true;
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
    }

    /// Waits for the child to end; its wait status.
    fn reap(&self, py: Python<'_>) -> i32 {
        let pid = self.pid;
        py.detach(|| reap(pid))
    }
}

/// Waits for child `pid` to end; its wait status.
fn reap(pid: i32) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &raw mut status, 0) };
        if r >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return status;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `buf` holds a whole frame (its length prefix and that many bytes).
fn whole_frame(buf: &[u8]) -> bool {
    buf.get(..4).is_some_and(|len| {
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        buf.len() >= 4 + len
    })
}

/// How a child that sent no result ended, in words.
fn describe(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!(
            "the replay ended with exit code {} before its end call (os._exit?)",
            libc::WEXITSTATUS(status)
        )
    } else if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        // SAFETY: strsignal returns a static or thread-local string.
        let name = unsafe { std::ffi::CStr::from_ptr(libc::strsignal(signal)) }
            .to_string_lossy()
            .into_owned();
        format!("the replay crashed: killed by signal {signal} ({name})")
    } else {
        format!("the replay ended with wait status {status}")
    }
}
