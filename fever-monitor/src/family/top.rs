//! The top process's side of the family: it opens the family socket (in a private 0700
//! directory), accepts the children that join, sends each save to every member and collects
//! their answers (from all members at once: one poll(2) over their sockets, each member's bytes
//! kept until they make a whole message), and can end them all (`fever watch` before a re-run,
//! and at exit).
//!
//! A forked child that joins after a save it missed gets it: with the save's other answers when
//! they are still being read, else in a line of its own once it answered
//! (`reloaded app.work (0.9 ms, 1 process)`), so every process that has a save is counted.

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::os::raw::c_int;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fever_core::control::{
    has_ended, private_dir, split_frames, ChildMessage, ParentMessage, Prepared,
};
use fever_core::ChildOutcome;
use pyo3::prelude::*;

use super::{Address, ADDRESS, SEEN};
use crate::notices;

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
    /// What it sent that is not a whole message yet (an answer cut at a save's deadline, whose
    /// rest comes later).
    unread: Vec<u8>,
}

static MEMBERS: Mutex<Vec<Member>> = Mutex::new(Vec::new());
/// The pids of the members a save was sent to, while their answers are read (out of
/// [`MEMBERS`] meanwhile).
static ANSWERING: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static SAVES: AtomicU64 = AtomicU64::new(0);
/// The last save of each file sent (its number, and whether it skipped `__main__`): sent again
/// to a forked child that joins after it (forked before it, the child runs the older code).
static SENT: Mutex<Option<HashMap<PathBuf, (u64, bool)>>> = Mutex::new(None);
/// The save whose answers are being read (0 when none), changed with [`MEMBERS`] locked.
static IN_FLIGHT: AtomicU64 = AtomicU64::new(0);
/// Forked children that joined while the answers of a save they missed were read:
/// [`Sent::answers`] sends it to them and reads their answers too.
static LATE: Mutex<Vec<Member>> = Mutex::new(Vec::new());
/// The pids of forked children that joined after the saves they missed were answered, while
/// their answers to them are read (out of [`MEMBERS`] meanwhile).
static CATCHING_UP: Mutex<Vec<u32>> = Mutex::new(Vec::new());
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
        if let Ok(ChildMessage::Hello { pid, seen }) = ChildMessage::receive(&mut stream) {
            let mut joined = lock(&JOINED);
            if joined.len() == JOINED_KEPT {
                joined.pop_front();
            }
            joined.push_back(pid);
            drop(joined);
            admit(
                Member {
                    pid,
                    stream,
                    unread: Vec::new(),
                },
                seen,
            );
        }
    }
}

/// Makes `member` a member. A forked child that last saw save `seen` is first sent the saves
/// made since (it was forked before them, and joined after they were sent): the one whose
/// answers are being read by [`Sent::answers`] reads its answer too; the others' answers are
/// read here ([`catch_up`]), and told in lines of their own, before it becomes a member (and is
/// sent the saves made meanwhile).
fn admit(mut member: Member, seen: Option<u64>) {
    let Some(mut seen) = seen else {
        members().push(member);
        return;
    };
    loop {
        let mut members = members();
        let in_flight = IN_FLIGHT.load(Ordering::SeqCst);
        let mut missed: Vec<(u64, PathBuf, bool)> = lock(&SENT)
            .iter()
            .flatten()
            .filter(|(_, (seq, _))| *seq > seen && *seq != in_flight)
            .map(|(path, (seq, skip_main))| (*seq, path.clone(), *skip_main))
            .collect();
        missed.sort_unstable();
        for (seq, path, skip_main) in &missed {
            let message = ParentMessage::Reload {
                seq: *seq,
                path: path.display().to_string(),
                skip_main: *skip_main,
                prepared: None,
            };
            // A new connection: its socket has room for a few short messages.
            if message.send(&mut member.stream).is_err() {
                return;
            }
        }
        if in_flight > seen {
            lock(&LATE).push(member);
            return;
        }
        let Some(&(last, _, _)) = missed.last() else {
            members.push(member);
            return;
        };
        seen = last;
        drop(members);
        lock(&CATCHING_UP).push(member.pid);
        let started = Instant::now();
        let (answers, unanswered, open) =
            catch_up(&mut member, missed.iter().map(|m| m.0).collect());
        lock(&CATCHING_UP).retain(|&pid| pid != member.pid);
        for events in answers.into_iter().filter(|events| !events.is_empty()) {
            let child = ChildOutcome {
                pid: member.pid,
                events,
            };
            notices::reloaded(&[], vec![child], Vec::new(), started.elapsed());
        }
        if unanswered && open {
            let busy = vec![member.pid];
            notices::reloaded(&[], Vec::new(), busy, started.elapsed());
        }
        if !open {
            return;
        }
    }
}

/// Reads `member`'s answers to the saves `seqs` (at most [`ANSWER_TIMEOUT`]): what each did, in
/// the order they came, whether some did not answer in time, and whether the member is still
/// there.
fn catch_up(
    member: &mut Member,
    mut seqs: Vec<u64>,
) -> (Vec<Vec<fever_core::ReloadEvent>>, bool, bool) {
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    let mut answers = Vec::new();
    while !seqs.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let mut polled = libc::pollfd {
            fd: member.stream.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let timeout = c_int::try_from(left.as_micros().div_ceil(1000)).unwrap_or(c_int::MAX);
        // SAFETY: poll(2) of one pollfd of a socket we own.
        if unsafe { libc::poll(&raw mut polled, 1, timeout) } < 0 {
            if std::io::Error::last_os_error().kind() == ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        if polled.revents == 0 {
            continue;
        }
        let open = read_now(member);
        for frame in split_frames(&mut member.unread) {
            match frame.and_then(|(tag, body)| ChildMessage::decode(tag, &body)) {
                Ok(ChildMessage::Applied { seq, events }) if seqs.contains(&seq) => {
                    seqs.retain(|&s| s != seq);
                    answers.push(events);
                }
                Err(err) if err.is_fatal() => return (answers, !seqs.is_empty(), false),
                Ok(_) | Err(_) => {}
            }
        }
        if !open {
            return (answers, !seqs.is_empty(), false);
        }
    }
    (answers, !seqs.is_empty(), true)
}

/// A save sent to the members, whose answers are still to be read.
pub struct Sent {
    seq: u64,
    members: Vec<Member>,
    /// The message, and how much of it each member got so far (in the order of `members`):
    /// less than all when its socket was full.
    frame: Vec<u8>,
    written: Vec<usize>,
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
    // Numbered, recorded and in flight with the members taken: a child joining meanwhile is
    // either taken or sees this save (see `admit`).
    let (seq, mut members) = {
        let mut members = self::members();
        let seq = SAVES.fetch_add(1, Ordering::SeqCst) + 1;
        lock(&SENT)
            .get_or_insert_with(HashMap::new)
            .insert(path.to_path_buf(), (seq, skip_main));
        IN_FLIGHT.store(seq, Ordering::SeqCst);
        (seq, std::mem::take(&mut *members))
    };
    SEEN.store(seq, Ordering::SeqCst);
    let mut frame = Vec::new();
    let mut written = Vec::new();
    // Framed once, written to each (and to a child that joins while the answers are read).
    let message = ParentMessage::Reload {
        seq,
        path: path.display().to_string(),
        skip_main,
        prepared: prepared.filter(|p| p.size() <= MAX_PREPARED).cloned(),
    };
    let framed = message.send(&mut frame).is_ok();
    members.retain_mut(|m| {
        if !framed {
            return false;
        }
        match write_now(&m.stream, &frame) {
            Ok(n) => {
                written.push(n);
                true
            }
            Err(_) => false,
        }
    });
    *lock(&ANSWERING) = members.iter().map(|m| m.pid).collect();
    Sent {
        seq,
        members,
        frame,
        written,
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
                stream.as_raw_fd(),
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

/// Appends to `member.unread` what its socket holds now, without waiting; false once the
/// member's end is closed (or its socket failed).
fn read_now(member: &mut Member) -> bool {
    let mut chunk = [0u8; 16 << 10];
    loop {
        // SAFETY: a recv(2) into a live local buffer on a socket we own.
        let n = unsafe {
            libc::recv(
                member.stream.as_raw_fd(),
                chunk.as_mut_ptr().cast(),
                chunk.len(),
                libc::MSG_DONTWAIT,
            )
        };
        match n {
            0 => return false,
            n if n > 0 => member.unread.extend_from_slice(&chunk[..n.cast_unsigned()]),
            _ => match std::io::Error::last_os_error().kind() {
                ErrorKind::WouldBlock => return true,
                ErrorKind::Interrupted => {}
                _ => return false,
            },
        }
    }
}

/// Where a member stands while a save's answers are read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    Waiting,
    Answered,
    Gone,
}

impl Sent {
    /// Waits (at most [`ANSWER_TIMEOUT`]) for what each member did, after writing what
    /// [`send`] could not: all members at once (one poll(2) over their sockets), each message
    /// taken whole from what a member sent so far (the rest of a message cut at the deadline
    /// stays in [`Member::unread`] for the next save). Returns the answers (by pid) and the
    /// pids that did not answer in time.
    pub fn answers(mut self) -> (Vec<ChildOutcome>, Vec<u32>) {
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        let mut state = vec![Answer::Waiting; self.members.len()];
        let mut answers = Vec::new();
        loop {
            self.take_late(&mut state);
            let waiting: Vec<usize> = (0..state.len())
                .filter(|&i| state[i] == Answer::Waiting)
                .collect();
            let left = deadline.saturating_duration_since(Instant::now());
            if waiting.is_empty() || left.is_zero() {
                // Done, unless a child that missed this save joined meanwhile.
                let _members = members();
                if self.take_late(&mut state) && !left.is_zero() {
                    continue;
                }
                IN_FLIGHT.store(0, Ordering::SeqCst);
                break;
            }
            let mut polled: Vec<libc::pollfd> = waiting
                .iter()
                .map(|&i| libc::pollfd {
                    fd: self.members[i].stream.as_raw_fd(),
                    events: if self.written[i] < self.frame.len() {
                        libc::POLLIN | libc::POLLOUT
                    } else {
                        libc::POLLIN
                    },
                    revents: 0,
                })
                .collect();
            let timeout = c_int::try_from(left.as_micros().div_ceil(1000)).unwrap_or(c_int::MAX);
            // SAFETY: poll(2) of a live array of pollfds of sockets we own.
            let ready = unsafe {
                libc::poll(
                    polled.as_mut_ptr(),
                    libc::nfds_t::try_from(polled.len()).unwrap_or(libc::nfds_t::MAX),
                    timeout,
                )
            };
            if ready < 0 {
                if std::io::Error::last_os_error().kind() == ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            for (&i, polled) in waiting.iter().zip(&polled) {
                if polled.revents == 0 {
                    continue;
                }
                state[i] = self.serve(i, polled.revents, &mut answers);
            }
        }
        let mut busy = Vec::new();
        let mut kept = Vec::with_capacity(self.members.len());
        for ((member, state), written) in self.members.drain(..).zip(state).zip(self.written) {
            match state {
                Answer::Gone => continue,
                // A member stopped so long that the message did not fit in its socket: the
                // rest is written before anything else is (it waits, as it would have).
                Answer::Waiting
                    if (&member.stream)
                        .write_all(&self.frame[written.min(self.frame.len())..])
                        .is_err() =>
                {
                    continue
                }
                Answer::Waiting => busy.push(member.pid),
                Answer::Answered => {}
            }
            kept.push(member);
        }
        members().append(&mut kept);
        lock(&ANSWERING).clear();
        answers.sort_by_key(|a| a.pid);
        busy.sort_unstable();
        (answers, busy)
    }

    /// Adds the children that joined having missed this save ([`LATE`]) to its members, the
    /// message still to write to them; false when there were none.
    fn take_late(&mut self, state: &mut Vec<Answer>) -> bool {
        let late = std::mem::take(&mut *lock(&LATE));
        if late.is_empty() {
            return false;
        }
        lock(&ANSWERING).extend(late.iter().map(|m| m.pid));
        for member in late {
            self.members.push(member);
            self.written.push(0);
            state.push(Answer::Waiting);
        }
        true
    }

    /// Member `i`'s socket is ready (`revents`): writes the rest of the save's message, reads
    /// what came, and takes this save's answer from it.
    fn serve(
        &mut self,
        i: usize,
        revents: libc::c_short,
        answers: &mut Vec<ChildOutcome>,
    ) -> Answer {
        let member = &mut self.members[i];
        if revents & libc::POLLOUT != 0 {
            match write_now(&member.stream, &self.frame[self.written[i]..]) {
                Ok(n) => self.written[i] += n,
                Err(_) => return Answer::Gone,
            }
        }
        if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) == 0 {
            return Answer::Waiting;
        }
        let open = read_now(member);
        let mut answer = if open { Answer::Waiting } else { Answer::Gone };
        for frame in split_frames(&mut member.unread) {
            match frame.and_then(|(tag, body)| ChildMessage::decode(tag, &body)) {
                Ok(ChildMessage::Applied { seq, events }) if seq == self.seq => {
                    answers.push(ChildOutcome {
                        pid: member.pid,
                        events,
                    });
                    if open {
                        answer = Answer::Answered;
                    }
                }
                Err(err) if err.is_fatal() => return Answer::Gone,
                // A late answer to an earlier save, or a message of another version.
                Ok(_) | Err(_) => {}
            }
        }
        answer
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
    pids.extend(lock(&CATCHING_UP).iter());
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
            stream.as_raw_fd(),
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
    let mut ending: Vec<u32> = std::mem::take(&mut *members())
        .into_iter()
        .filter(|m| !gone(&m.stream))
        .map(|m| m.pid)
        .collect();
    ending.extend(lock(&CATCHING_UP).iter());
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
    if let Ok(mut guard) = LATE.try_lock() {
        guard.clear();
    }
    if let Ok(mut guard) = CATCHING_UP.try_lock() {
        guard.clear();
    }
}

#[cfg(test)]
mod tests {
    use fever_core::notice::Notice;
    use fever_core::ReloadEvent;

    use super::*;

    static TOLD: Mutex<Vec<Notice>> = Mutex::new(Vec::new());

    fn told(notice: &Notice) {
        lock(&TOLD).push(notice.clone());
    }

    #[test]
    fn a_child_that_joins_after_a_save_was_answered_is_counted_in_a_line_of_its_own() {
        notices::install(told);
        let path = Path::new("/project/work.py");
        // A save nobody answers: done at once.
        let (answers, busy) = send(path, false, None).answers();
        assert!(answers.is_empty() && busy.is_empty());
        let seq = SAVES.load(Ordering::SeqCst);
        let (top_end, mut child_end) = UnixStream::pair().unwrap();
        let child = std::thread::spawn(move || {
            let Ok(ParentMessage::Reload { seq, path, .. }) =
                ParentMessage::receive(&mut child_end)
            else {
                panic!("the save it missed was not sent");
            };
            let events = vec![ReloadEvent::Reloaded {
                name: "work.work".into(),
                note: None,
            }];
            ChildMessage::Applied { seq, events }
                .send(&mut child_end)
                .unwrap();
            (path, child_end)
        });
        // Forked before the save, joining after it was answered.
        let member = Member {
            pid: 4242,
            stream: top_end,
            unread: Vec::new(),
        };
        admit(member, Some(seq - 1));
        let (sent, _child_end) = child.join().unwrap();
        assert_eq!(sent, "/project/work.py");
        let told = lock(&TOLD).clone();
        let [Notice::Reloaded {
            events, children, ..
        }] = told.as_slice()
        else {
            panic!("told {told:?}");
        };
        assert!(events.is_empty());
        assert_eq!(children.len(), 1);
        assert_eq!(children[0].pid, 4242);
        assert!(pids().contains(&4242));
    }
}
