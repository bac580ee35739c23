//! The top process's side of the family: it opens the family socket (in a private 0700
//! directory), accepts the children that join, sends each save to every member and collects
//! their answers, and can end them all (`fever watch` before a re-run, and at exit).

use std::collections::VecDeque;
use std::io::{ErrorKind, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fever_core::control::{
    has_ended, private_dir, ChildMessage, ControlError, ParentMessage, Prepared,
};
use fever_core::ChildOutcome;
use pyo3::prelude::*;

use super::{Address, ADDRESS};

/// How long a save waits for the members' answers; a member busy longer (in a C call holding
/// the GIL) applies the save later, and is named as such.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a joining child may take to say who it is.
const HELLO_TIMEOUT: Duration = Duration::from_secs(2);
/// How long members get to exit after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_millis(500);
/// The most a save's prepared part may add to its message (far below the channel's limit);
/// beyond it, each member reads and compiles the save itself.
const MAX_PREPARED: usize = 4 << 20;

/// A child process in the family.
struct Member {
    pid: u32,
    stream: UnixStream,
}

static MEMBERS: Mutex<Vec<Member>> = Mutex::new(Vec::new());
/// The pids of the members a save was sent to, while their answers are read (out of
/// [`MEMBERS`] meanwhile).
static ANSWERING: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static SAVES: AtomicU64 = AtomicU64::new(0);
/// The pids of the members that joined, the most recent [`JOINED_KEPT`] (to tell `fever
/// attach` that a pid it is given was a child that ended).
static JOINED: Mutex<VecDeque<u32>> = Mutex::new(VecDeque::new());
const JOINED_KEPT: usize = 1024;

fn members() -> MutexGuard<'static, Vec<Member>> {
    lock(&MEMBERS)
}

fn lock<T>(mutex: &'static Mutex<T>) -> MutexGuard<'static, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The open family socket and the thread accepting members; closed (and its directory
/// removed) on drop.
pub struct Family {
    dir: PathBuf,
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Family {
    /// Opens the family socket of the project at `root` (once per process: a second call
    /// returns `None`).
    pub fn open(root: &Path) -> std::io::Result<Option<Family>> {
        if ADDRESS.get().is_some() {
            return Ok(None);
        }
        let dir = private_dir("family")?;
        let socket = dir.join("family.sock");
        let listener = UnixListener::bind(&socket)?;
        let _ = ADDRESS.set(Address {
            socket: socket.clone(),
            root: root.to_path_buf(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = crate::signals::without_signals(|| {
            std::thread::Builder::new()
                .name("fever-family".into())
                .spawn(move || accept(&listener, &stopped))
        })?;
        Ok(Some(Family {
            dir,
            socket,
            stop,
            thread: Some(thread),
        }))
    }
}

impl Drop for Family {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread up.
        let _ = UnixStream::connect(&self.socket);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn accept(listener: &UnixListener, stop: &AtomicBool) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(HELLO_TIMEOUT));
        if let Ok(ChildMessage::Hello { pid }) = ChildMessage::receive(&mut stream) {
            let mut joined = lock(&JOINED);
            if joined.len() == JOINED_KEPT {
                joined.pop_front();
            }
            joined.push_back(pid);
            drop(joined);
            members().push(Member { pid, stream });
        }
    }
}

/// A save sent to the members, whose answers are still to be read.
pub struct Sent {
    seq: u64,
    members: Vec<Member>,
    /// The message, and how much of it each member whose socket was full got so far (by pid).
    frame: Vec<u8>,
    unsent: Vec<(u32, usize)>,
}

/// Has the family any member (is a save worth preparing for them)?
pub fn has_members() -> bool {
    !members().is_empty()
}

/// Sends the save of `path` to every member (who apply it while this process applies it too),
/// with what this process `prepared` for it unless that is too large for one message;
/// [`Sent::answers`] reads what they did. Never waits: what does not fit in a member's socket
/// now is written by [`Sent::answers`] (so this may be called holding the GIL). A member that
/// exited meanwhile leaves the family without a word: that is no error.
pub fn send(path: &Path, skip_main: bool, prepared: Option<&Prepared>) -> Sent {
    let mut members = std::mem::take(&mut *self::members());
    let seq = SAVES.fetch_add(1, Ordering::SeqCst) + 1;
    let mut frame = Vec::new();
    let mut unsent = Vec::new();
    if !members.is_empty() {
        let message = ParentMessage::Reload {
            seq,
            path: path.display().to_string(),
            skip_main,
            prepared: prepared.filter(|p| p.size() <= MAX_PREPARED).cloned(),
        };
        // Framed once, written to each.
        let framed = message.send(&mut frame).is_ok();
        members.retain_mut(|m| {
            if !framed {
                return false;
            }
            match write_now(&m.stream, &frame) {
                Ok(written) if written < frame.len() => {
                    unsent.push((m.pid, written));
                    true
                }
                Ok(_) => true,
                Err(_) => false,
            }
        });
    }
    *lock(&ANSWERING) = members.iter().map(|m| m.pid).collect();
    Sent {
        seq,
        members,
        frame,
        unsent,
    }
}

/// Writes as much of `frame` to `stream` as fits without waiting; returns how much.
fn write_now(stream: &UnixStream, frame: &[u8]) -> std::io::Result<usize> {
    let mut written = 0;
    while written < frame.len() {
        let rest = &frame[written..];
        // SAFETY: a send(2) of a live slice on a socket we own.
        let n = unsafe {
            libc::send(
                std::os::fd::AsRawFd::as_raw_fd(stream),
                rest.as_ptr().cast(),
                rest.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            match err.kind() {
                ErrorKind::WouldBlock => return Ok(written),
                ErrorKind::Interrupted => continue,
                _ => return Err(err),
            }
        }
        written += n.cast_unsigned();
    }
    Ok(written)
}

impl Sent {
    /// Waits (at most [`ANSWER_TIMEOUT`]) for what each member did, after writing what
    /// [`send`] could not; returns the answers (by pid) and the pids that did not answer in
    /// time.
    pub fn answers(mut self) -> (Vec<ChildOutcome>, Vec<u32>) {
        let (frame, unsent) = (&self.frame, &self.unsent);
        self.members.retain_mut(|m| {
            unsent
                .iter()
                .find(|(pid, _)| *pid == m.pid)
                .is_none_or(|(_, written)| m.stream.write_all(&frame[*written..]).is_ok())
        });
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        let mut answers = Vec::new();
        let mut busy = Vec::new();
        let seq = self.seq;
        self.members.retain_mut(|m| loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || m.stream.set_read_timeout(Some(left)).is_err() {
                busy.push(m.pid);
                return true;
            }
            match ChildMessage::receive(&mut m.stream) {
                Ok(ChildMessage::Applied {
                    seq: answered,
                    events,
                }) if answered == seq => {
                    answers.push(ChildOutcome { pid: m.pid, events });
                    return true;
                }
                // A late answer to an earlier save.
                Ok(_) => {}
                Err(ControlError::Io(err))
                    if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    busy.push(m.pid);
                    return true;
                }
                Err(_) => return false,
            }
        });
        members().append(&mut self.members);
        lock(&ANSWERING).clear();
        answers.sort_by_key(|a| a.pid);
        busy.sort_unstable();
        (answers, busy)
    }
}

/// Makes `multiprocessing`'s spawn and forkserver children join this family
/// (`fever._family.install`), and be recorded when this process records: call once the family
/// is open (and the recording started).
pub fn hook_spawn(py: Python<'_>) -> PyResult<()> {
    let Some(address) = ADDRESS.get() else {
        return Ok(());
    };
    py.import("fever._family")?.call_method1(
        "install",
        (
            address.socket.display().to_string(),
            address.root.display().to_string(),
            crate::tracer::child_settings(py),
        ),
    )?;
    Ok(())
}

/// The pids of the family's members that are still connected (for the control channel), in
/// ascending order.
pub fn pids() -> Vec<u32> {
    let mut pids: Vec<u32> = {
        let mut guard = members();
        guard.retain(|m| !gone(&m.stream));
        guard.iter().map(|m| m.pid).collect()
    };
    pids.extend(lock(&ANSWERING).iter());
    pids.sort_unstable();
    pids
}

/// The pids of the members that joined and have left (ended), in ascending order (the most
/// recent ones: see [`JOINED_KEPT`]).
pub fn ended_pids() -> Vec<u32> {
    let live = pids();
    let mut ended: Vec<u32> = lock(&JOINED)
        .iter()
        .copied()
        .filter(|pid| live.binary_search(pid).is_err())
        .collect();
    ended.sort_unstable();
    ended.dedup();
    ended
}

/// Python's view of [`pids`]: `fever._native.family_pids()`.
#[pyfunction]
pub fn family_pids() -> Vec<u32> {
    pids()
}

/// Has the member at the other end of `stream` exited (its end closed)?
fn gone(stream: &UnixStream) -> bool {
    let mut byte = [0u8; 1];
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    // SAFETY: a peek into a local one-byte buffer on a socket we own.
    let n = unsafe {
        libc::recv(
            std::os::fd::AsRawFd::as_raw_fd(stream),
            byte.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK,
        )
    };
    let errno = std::io::Error::last_os_error().kind();
    let _ = stream.set_nonblocking(false);
    n == 0 || (n < 0 && errno != ErrorKind::WouldBlock)
}

/// Ends every member still running: SIGTERM, SIGKILL after [`TERM_GRACE`], and reaps those
/// that are this process's own children, so none is left a zombie or an orphan.
pub fn end_all() {
    let ending: Vec<u32> = std::mem::take(&mut *members())
        .into_iter()
        .filter(|m| !gone(&m.stream))
        .map(|m| m.pid)
        .collect();
    if ending.is_empty() {
        return;
    }
    let mut left = ending;
    for signal in [libc::SIGTERM, libc::SIGKILL] {
        signal_all(&left, signal);
        let deadline = Instant::now() + TERM_GRACE;
        while !left.is_empty() && Instant::now() < deadline {
            left.retain(|&pid| !ended(pid));
            if !left.is_empty() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        if left.is_empty() {
            return;
        }
    }
}

fn signal_all(pids: &[u32], signal: libc::c_int) {
    for &pid in pids {
        if let Ok(pid) = libc::pid_t::try_from(pid) {
            // SAFETY: a plain kill(2) of a member's pid.
            unsafe { libc::kill(pid, signal) };
        }
    }
}

/// Has `pid` ended? Reaps it when it is this process's child.
fn ended(pid: u32) -> bool {
    let Ok(raw) = libc::pid_t::try_from(pid) else {
        return true;
    };
    let mut status = 0;
    // SAFETY: waitpid on a pid, with a local status.
    match unsafe { libc::waitpid(raw, &raw mut status, libc::WNOHANG) } {
        0 => false,
        p if p == raw => true,
        // Not our child: it ended when it no longer exists or is a zombie (its parent's).
        _ => has_ended(pid),
    }
}

/// In a child of `os.fork()`: the top's members are the parent's; their connections are
/// closed here without waiting for a lock another thread may have held at the fork.
pub fn forget_in_child() {
    if let Ok(mut guard) = MEMBERS.try_lock() {
        guard.clear();
    }
    if let Ok(mut guard) = ANSWERING.try_lock() {
        guard.clear();
    }
    if let Ok(mut guard) = JOINED.try_lock() {
        guard.clear();
    }
}
