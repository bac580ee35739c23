//! The warm parent's side of a replay: start its child (`checkpoint.rs`: a standby forked ahead,
//! or a fork now), then wait for the child's result on a pipe while still answering the front
//! end (`Cancel` kills the child). The child may say [`Response::Debugging`] before its result:
//! that is passed on to the front end at once. The parent's own state is never touched: a
//! replay that raises, hangs, calls `os._exit` or crashes only ends its child. A child that
//! does not say it is ready within [`READY_TIMEOUT`] is killed (a standby is replaced by a
//! fresh fork, once).

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use fever_core::control::{ReplayRequest, Request, Response};
use pyo3::prelude::*;

use super::checkpoint::{self, Standby};
use super::control::{attach_refused, Event, Server};

/// How long a child may take, from its request to running the start call (fever's own
/// preparation: a few milliseconds). One that takes longer is stuck and killed; a standby is
/// then replaced by a fresh fork.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// How a replay in the parent ended, besides its response.
pub enum After {
    /// Go on serving.
    Serve,
    /// The front end asked to quit (or left) during the replay.
    Quit,
}

/// Runs `request` in a forked child (`standby`, or one forked now) and returns its response;
/// requests arriving meanwhile are answered (`Cancel` stops the child). Ctrl-C in the parent
/// stops the child too, then raises.
pub fn replay(
    py: Python<'_>,
    request: &ReplayRequest,
    standby: Option<Standby>,
    events: &Receiver<Event>,
    server: &Server,
) -> PyResult<(Response, After)> {
    let mut standby = standby;
    loop {
        let from_standby = standby.is_some();
        let started = match standby.take() {
            Some(standby) => standby.start(request),
            None => checkpoint::fork_now(py, request),
        };
        let (pid, read_fd) = match started {
            Ok(started) => started,
            Err(reason) => return Ok((Response::ReplayFailed { reason }, After::Serve)),
        };
        let mut waited = Wait {
            pid,
            read_fd,
            since: Instant::now(),
            ready: false,
            buf: Vec::new(),
            result: None,
            cancelled: false,
            stuck: false,
            after: After::Serve,
        };
        let status = waited.wait(py, events, server)?;
        if waited.stuck && from_standby {
            // A standby forked earlier that never got ready: the replay runs in a fresh fork.
            continue;
        }
        let response = match waited.result.take() {
            Some(Ok(response)) => response,
            Some(Err(err)) => Response::ReplayFailed {
                reason: format!("the replay sent a bad result: {err}"),
            },
            None => Response::ReplayFailed {
                reason: if waited.stuck {
                    format!(
                        "the replay's process did not get ready within {} s; the warm program is untouched",
                        READY_TIMEOUT.as_secs()
                    )
                } else if waited.cancelled {
                    "cancelled; the warm program is untouched".into()
                } else {
                    format!("{}; the warm program is untouched", describe(status))
                },
            },
        };
        return Ok((response, waited.after));
    }
}

struct Wait {
    pid: i32,
    read_fd: RawFd,
    /// When the child was given the request.
    since: Instant,
    /// The child said it is ready to run the start call.
    ready: bool,
    buf: Vec<u8>,
    /// The child's result, once a whole frame of it arrived.
    result: Option<Result<Response, fever_core::control::ControlError>>,
    cancelled: bool,
    /// Killed for not getting ready within [`READY_TIMEOUT`].
    stuck: bool,
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
                    while let Some(len) = whole_frame(&self.buf) {
                        let frame: Vec<u8> = self.buf.drain(..len).collect();
                        match Response::decode_frame(&frame) {
                            Some(Ok(Response::Pong)) => self.ready = true,
                            Some(Ok(Response::Debugging)) => server.send(&Response::Debugging),
                            decoded => {
                                self.result = decoded;
                                break;
                            }
                        }
                    }
                    if self.result.is_some() {
                        // The result is in: answer now, and let the child's exit (the
                        // teardown of its copy of a big heap takes as long as the fork) be
                        // waited for in the background.
                        // SAFETY: our descriptor.
                        unsafe { libc::close(self.read_fd) };
                        checkpoint::reap_later(self.pid);
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
            if !self.ready && !self.cancelled && self.since.elapsed() > READY_TIMEOUT {
                self.stuck = true;
                self.kill();
            }
            for event in events.try_iter() {
                match event {
                    Event::Request(Request::Cancel) => self.kill(),
                    Event::Request(Request::Quit) | Event::Gone => {
                        self.kill();
                        self.after = After::Quit;
                    }
                    Event::Request(Request::Ping) => server.send(&Response::Pong),
                    Event::Request(
                        Request::Status
                        | Request::Attach
                        | Request::AttachRecording { .. }
                        | Request::Names { .. }
                        | Request::Detach
                        | Request::Children
                        | Request::EndedChildren,
                    ) => server.send(&attach_refused()),
                    Event::Request(Request::Replay(_) | Request::Undo) => {
                        server.send(&Response::Error {
                            message: "a replay is running; cancel it first".into(),
                        });
                    }
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
        py.detach(|| checkpoint::reap(pid))
    }
}

/// The length of the whole frame (its length prefix and that many bytes) `buf` starts with.
fn whole_frame(buf: &[u8]) -> Option<usize> {
    let len = buf.get(..4)?;
    let len = 4 + u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    (buf.len() >= len).then_some(len)
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
