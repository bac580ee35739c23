//! The top process's side of the family: it opens the family socket (in a private 0700
//! directory), accepts the children that join, sends each save to every member and collects
//! their answers (from all members at once: one poll(2) over their sockets, each member's bytes
//! kept until they make a whole message), and can end them all (`fever watch` before a re-run,
//! and at exit).
//!
//! A forked child that joins after a save it missed gets it: with the save's other answers when
//! they are still being read, else in a line of its own once it answered
//! (`reloaded app.work (0.9 ms, 1 process)`), so every process that has a save is counted.
//!
//! A member (or a child catching up) whose answer says the saved file is still being imported
//! there (named in the save's line) applies it once the import ended, and answers again: that answer is read (the member
//! is out of [`MEMBERS`] meanwhile, like a child catching up) and told in a line of its own,
//! whose errors name the member; then it is sent the saves made meanwhile, and is a member again.

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::os::raw::c_int;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fever_core::control::{
    has_ended, private_dir, split_frames, ChildMessage, ParentMessage, Prepared,
};
use fever_core::{ChildOutcome, ReloadEvent};
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

/// The members not being asked a save (locked before [`LOG`] when both are).
static MEMBERS: Mutex<Vec<Member>> = Mutex::new(Vec::new());
static LOG: Mutex<Log> = Mutex::new(Log::new());
/// The pids of the members that joined, the most recent [`JOINED_KEPT`] (to tell `fever
/// attach` that a pid it is given was a child that ended).
static JOINED: Mutex<VecDeque<u32>> = Mutex::new(VecDeque::new());
const JOINED_KEPT: usize = 1024;

fn members() -> MutexGuard<'static, Vec<Member>> {
    lock(&MEMBERS)
}

fn save_log() -> MutexGuard<'static, Log> {
    lock(&LOG)
}

/// The saves sent to the members and who is answering them: which saves a forked child that
/// joins missed, and which members are out of [`MEMBERS`] while their answers are read.
struct Log {
    /// The number of the last save (0 before the first).
    saves: u64,
    /// The last save of each file (its number, and whether it skipped `__main__`): sent again
    /// to a forked child that joins after it (forked before it, the child runs the older code).
    last: Option<HashMap<PathBuf, (u64, bool)>>,
    /// The save whose answers are being read (0 when none), changed with [`MEMBERS`] locked.
    in_flight: u64,
    /// Forked children that joined while the answers of a save they missed were read:
    /// [`Sent::answers`] sends it to them and reads their answers too.
    late: Vec<Member>,
    /// The pids of the members a save was sent to, while their answers are read.
    answering: Vec<u32>,
    /// The pids of forked children that joined after the saves they missed were answered,
    /// while their answers to them are read.
    catching_up: Vec<u32>,
}

impl Log {
    const fn new() -> Log {
        Log {
            saves: 0,
            last: None,
            in_flight: 0,
            late: Vec::new(),
            answering: Vec::new(),
            catching_up: Vec::new(),
        }
    }

    /// Numbers the save of `path`, records it and makes it the one in flight.
    fn record(&mut self, path: &Path, skip_main: bool) -> u64 {
        self.saves += 1;
        self.last
            .get_or_insert_with(HashMap::new)
            .insert(path.to_path_buf(), (self.saves, skip_main));
        self.in_flight = self.saves;
        self.saves
    }

    /// The saves made after save `seen` but the one in flight, oldest first: the number, file
    /// and `skip_main` of each.
    fn missed(&self, seen: u64) -> Vec<(u64, PathBuf, bool)> {
        let mut missed: Vec<(u64, PathBuf, bool)> = self
            .last
            .iter()
            .flatten()
            .filter(|(_, (seq, _))| *seq > seen && *seq != self.in_flight)
            .map(|(path, (seq, skip_main))| (*seq, path.clone(), *skip_main))
            .collect();
        missed.sort_unstable();
        missed
    }

    /// The children that joined having missed the save in flight, now answering it.
    fn take_late(&mut self) -> Vec<Member> {
        let late = std::mem::take(&mut self.late);
        self.answering.extend(late.iter().map(|m| m.pid));
        late
    }

    /// The pids whose answers are being read.
    fn asked(&self) -> impl Iterator<Item = &u32> {
        self.answering.iter().chain(&self.catching_up)
    }
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
/// read here (by [`read_answers`], like a save's), and told in lines of their own, before it
/// becomes a member (and is sent the saves made meanwhile); when they say a file is still being
/// imported there, its later answers are read and told first ([`read_later`]).
fn admit(mut member: Member, seen: Option<u64>) {
    let Some(mut seen) = seen else {
        members().push(member);
        return;
    };
    loop {
        let mut members = members();
        let mut log = save_log();
        let in_flight = log.in_flight;
        let missed = log.missed(seen);
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
            log.late.push(member);
            return;
        }
        let Some(&(last, _, _)) = missed.last() else {
            members.push(member);
            return;
        };
        seen = last;
        log.catching_up.push(member.pid);
        drop(log);
        drop(members);
        let started = Instant::now();
        let mut asked = vec![Asked::new(member, missed.iter().map(|m| m.0).collect())];
        let answers = read_answers(&mut asked, &[], Instant::now() + ANSWER_TIMEOUT, |_, _| {
            false
        });
        let Some(answered) = asked.pop() else {
            return;
        };
        for child in answers.into_iter().filter(|a| !a.events.is_empty()) {
            notices::reloaded(&[], vec![child], Vec::new(), started.elapsed());
        }
        match answered.state {
            // Still catching up until its later answers are read.
            Answer::Answered if !answered.importing.is_empty() => {
                read_later(answered, started, seen);
                return;
            }
            Answer::Waiting => {
                let busy = vec![answered.member.pid];
                notices::reloaded(&[], Vec::new(), busy, started.elapsed());
            }
            Answer::Answered | Answer::Gone => {}
        }
        member = answered.member;
        save_log().catching_up.retain(|&pid| pid != member.pid);
        if answered.state == Answer::Gone {
            return;
        }
    }
}

/// A save sent to the members, whose answers are still to be read.
pub struct Sent {
    asked: Vec<Asked>,
    /// When it was sent.
    at: Instant,
    /// The message, written to each member (and to a child that joins having missed it).
    frame: Vec<u8>,
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
    let (seq, members) = {
        let mut members = self::members();
        let seq = save_log().record(path, skip_main);
        (seq, std::mem::take(&mut *members))
    };
    SEEN.store(seq, Ordering::SeqCst);
    let mut frame = Vec::new();
    // Framed once, written to each (and to a child that joins while the answers are read).
    let message = ParentMessage::Reload {
        seq,
        path: path.display().to_string(),
        skip_main,
        prepared: prepared.filter(|p| p.size() <= MAX_PREPARED).cloned(),
    };
    let framed = message.send(&mut frame).is_ok();
    let asked: Vec<Asked> = members
        .into_iter()
        .filter(|_| framed)
        .filter_map(|member| {
            let written = write_now(&member.stream, &frame).ok()?;
            let mut asked = Asked::new(member, vec![seq]);
            asked.written = written;
            Some(asked)
        })
        .collect();
    save_log().answering = asked.iter().map(|a| a.member.pid).collect();
    Sent {
        asked,
        at: Instant::now(),
        frame,
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

/// Where a member stands while its answers are read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Answer {
    Waiting,
    Answered,
    Gone,
}

/// A member whose answers are read: the saves it owes an answer to, how much of the save's
/// message it got so far (less than all when its socket was full), and where it stands.
struct Asked {
    member: Member,
    owed: Vec<u64>,
    /// The saves it answered that the file was still being imported: it answers them again.
    importing: Vec<u64>,
    /// Those answers again, when they came with the first ones.
    later: Vec<(u64, ChildOutcome)>,
    written: usize,
    state: Answer,
}

impl Asked {
    fn new(member: Member, owed: Vec<u64>) -> Asked {
        Asked {
            member,
            owed,
            importing: Vec::new(),
            later: Vec::new(),
            written: 0,
            state: Answer::Waiting,
        }
    }

    /// Its socket is ready (`revents`): writes the rest of `frame`, reads what came, and takes
    /// the answers it owes from it (into `answers`).
    fn serve(&mut self, frame: &[u8], revents: libc::c_short, answers: &mut Vec<ChildOutcome>) {
        if revents & libc::POLLOUT != 0 {
            let Ok(n) = write_now(&self.member.stream, &frame[self.written..]) else {
                self.state = Answer::Gone;
                return;
            };
            self.written += n;
        }
        if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) == 0 {
            return;
        }
        let open = read_now(&mut self.member);
        for frame in split_frames(&mut self.member.unread) {
            match frame.and_then(|(tag, body)| ChildMessage::decode(tag, &body)) {
                Ok(ChildMessage::Applied { seq, events }) if self.owed.contains(&seq) => {
                    self.owed.retain(|&s| s != seq);
                    if ReloadEvent::any_importing(&events) {
                        self.importing.push(seq);
                    }
                    answers.push(ChildOutcome {
                        pid: self.member.pid,
                        events,
                    });
                }
                Ok(ChildMessage::Applied { seq, events })
                    if self.importing.contains(&seq)
                        && !self.later.iter().any(|(s, _)| *s == seq) =>
                {
                    let pid = self.member.pid;
                    self.later.push((seq, ChildOutcome { pid, events }));
                }
                Err(err) if err.is_fatal() => {
                    self.state = Answer::Gone;
                    return;
                }
                // A late answer to an earlier save, or a message of another version.
                Ok(_) | Err(_) => {}
            }
        }
        self.state = match (open, self.owed.is_empty()) {
            (false, _) => Answer::Gone,
            (true, true) => Answer::Answered,
            (true, false) => Answer::Waiting,
        };
    }
}

/// Reads the answers of the members `asked` until each answered every save it owes, or
/// `deadline`: all at once (one poll(2) over their sockets, which also writes what they did not
/// get yet of `frame`), each message taken whole from what a member sent so far (the rest of a
/// message cut at the deadline stays in [`Member::unread`]). `join(asked, ending)` adds the
/// children that joined meanwhile owing these saves, and says whether it did: it is called
/// before each wait (`ending` `None`), and once none is waiting, the deadline passed or poll(2)
/// failed, with `Some(time_left)`: the reading then ends unless it added some and there is
/// time left. Returns the answers in the order they came.
fn read_answers(
    asked: &mut Vec<Asked>,
    frame: &[u8],
    deadline: Instant,
    mut join: impl FnMut(&mut Vec<Asked>, Option<bool>) -> bool,
) -> Vec<ChildOutcome> {
    let mut answers = Vec::new();
    loop {
        join(asked, None);
        let waiting: Vec<usize> = (0..asked.len())
            .filter(|&i| asked[i].state == Answer::Waiting)
            .collect();
        let left = deadline.saturating_duration_since(Instant::now());
        let mut polled: Vec<libc::pollfd> = waiting
            .iter()
            .map(|&i| libc::pollfd {
                fd: asked[i].member.stream.as_raw_fd(),
                events: if asked[i].written < frame.len() {
                    libc::POLLIN | libc::POLLOUT
                } else {
                    libc::POLLIN
                },
                revents: 0,
            })
            .collect();
        let failed = !waiting.is_empty() && !left.is_zero() && {
            let timeout = c_int::try_from(left.as_micros().div_ceil(1000)).unwrap_or(c_int::MAX);
            // SAFETY: poll(2) of a live array of pollfds of sockets we own.
            let ready = unsafe {
                libc::poll(
                    polled.as_mut_ptr(),
                    libc::nfds_t::try_from(polled.len()).unwrap_or(libc::nfds_t::MAX),
                    timeout,
                )
            };
            if ready < 0 && std::io::Error::last_os_error().kind() == ErrorKind::Interrupted {
                continue;
            }
            ready < 0
        };
        if waiting.is_empty() || left.is_zero() || failed {
            // Done, unless a child that missed these saves joined meanwhile.
            let time_left = !left.is_zero() && !failed;
            if join(asked, Some(time_left)) && time_left {
                continue;
            }
            return answers;
        }
        for (&i, polled) in waiting.iter().zip(&polled) {
            if polled.revents != 0 {
                asked[i].serve(frame, polled.revents, &mut answers);
            }
        }
    }
}

impl Sent {
    /// Waits (at most [`ANSWER_TIMEOUT`]) for what each member did ([`read_answers`], with
    /// the children that join having missed this save). Returns the answers (by pid) and the
    /// pids that did not answer in time.
    pub fn answers(mut self) -> (Vec<ChildOutcome>, Vec<u32>) {
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        let mut answers = read_answers(&mut self.asked, &self.frame, deadline, |asked, ending| {
            // The end is decided with the members locked: a child joining meanwhile is either
            // taken here or sees no save in flight.
            let _members = ending.is_some().then(members);
            let mut log = save_log();
            let late = log.take_late();
            let took = !late.is_empty();
            asked.extend(
                late.into_iter()
                    .map(|member| Asked::new(member, vec![log.in_flight])),
            );
            if ending.is_some_and(|time_left| !(took && time_left)) {
                log.in_flight = 0;
            }
            took
        });
        let mut busy = Vec::new();
        let mut kept = Vec::with_capacity(self.asked.len());
        let mut importing = Vec::new();
        for asked in self.asked {
            match asked.state {
                Answer::Gone => continue,
                Answer::Answered if !asked.importing.is_empty() => {
                    importing.push(asked);
                    continue;
                }
                // A member stopped so long that the message did not fit in its socket: the
                // rest is written before anything else is (it waits, as it would have).
                Answer::Waiting
                    if (&asked.member.stream)
                        .write_all(&self.frame[asked.written.min(self.frame.len())..])
                        .is_err() =>
                {
                    continue
                }
                Answer::Waiting => busy.push(asked.member.pid),
                Answer::Answered => {}
            }
            kept.push(asked.member);
        }
        members().append(&mut kept);
        {
            let mut log = save_log();
            log.answering.clear();
            log.catching_up
                .extend(importing.iter().map(|a| a.member.pid));
        }
        for asked in importing {
            let seen = asked.importing.iter().copied().max().unwrap_or(0);
            read_later(asked, self.at, seen);
        }
        answers.sort_by_key(|a| a.pid);
        busy.sort_unstable();
        (answers, busy)
    }
}

/// Has [`after_import`] read, in a thread of its own, the later answers of a member `answered`
/// that answered saves (sent `at`, the last it was sent `seen`) that their file was still being
/// imported there: a member of [`Log::catching_up`] meanwhile.
fn read_later(answered: Asked, at: Instant, seen: u64) {
    let pid = answered.member.pid;
    {
        let mut log = save_log();
        if !log.catching_up.contains(&pid) {
            log.catching_up.push(pid);
        }
    }
    let started = crate::signals::without_signals(|| {
        std::thread::Builder::new()
            .name("fever-family-later".into())
            .spawn(move || after_import(answered, at, seen))
    });
    if started.is_err() {
        // It leaves the family: its connection was closed with the thread not started.
        save_log().catching_up.retain(|&p| p != pid);
    }
}

/// Reads the answers of a member `answered` to the saves (sent `at`) it answered that their
/// file was still being imported there, as long as it takes; tells them (its errors naming it),
/// then makes it a member again (sending it the saves made after save `seen`).
fn after_import(answered: Asked, at: Instant, seen: u64) {
    let pid = answered.member.pid;
    let owed = answered
        .importing
        .iter()
        .copied()
        .filter(|seq| !answered.later.iter().any(|(s, _)| s == seq))
        .collect();
    let mut answers: Vec<ChildOutcome> = answered.later.into_iter().map(|(_, a)| a).collect();
    let mut asked = vec![Asked::new(answered.member, owed)];
    if asked[0].owed.is_empty() {
        asked[0].state = Answer::Answered;
    }
    while asked[0].state == Answer::Waiting {
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        answers.extend(read_answers(&mut asked, &[], deadline, |_, _| false));
        if asked[0].state == Answer::Waiting && Instant::now() < deadline {
            // poll(2) failed: it is a member again, whose answer is not told.
            break;
        }
    }
    for child in answers.into_iter().filter(|a| !a.events.is_empty()) {
        notices::reloaded(&[], vec![child], Vec::new(), at.elapsed());
    }
    save_log().catching_up.retain(|&p| p != pid);
    if let Some(Asked { member, state, .. }) = asked.pop() {
        if state != Answer::Gone {
            admit(member, Some(seen));
        }
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
    pids.extend(save_log().asked());
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
    ending.extend(save_log().catching_up.iter());
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

/// In a child of `os.fork()` of the top: the numbers of the last saves of `files` (those whose
/// save waits for an import that goes on in the child), read without waiting for a lock
/// another thread may have held at the fork.
pub fn last_saves_at_fork(files: &[PathBuf]) -> Vec<u64> {
    let Ok(log) = LOG.try_lock() else {
        return Vec::new();
    };
    files
        .iter()
        .filter_map(|file| Some(log.last.as_ref()?.get(file)?.0))
        .collect()
}

/// In a child of `os.fork()`: the top's members are the parent's; their connections are
/// closed here without waiting for a lock another thread may have held at the fork.
pub fn forget_in_child() {
    if let Ok(mut guard) = MEMBERS.try_lock() {
        guard.clear();
    }
    if let Ok(mut guard) = LOG.try_lock() {
        guard.last = None;
        guard.late.clear();
        guard.answering.clear();
        guard.catching_up.clear();
    }
    if let Ok(mut guard) = JOINED.try_lock() {
        guard.clear();
    }
}

#[cfg(test)]
mod tests {
    use fever_core::notice::Notice;
    use fever_core::ReloadEvent;

    use super::*;

    static TOLD: Mutex<Vec<Notice>> = Mutex::new(Vec::new());
    /// Held by the tests that send saves and tell notices (the family's state is global).
    static SERIAL: Mutex<()> = Mutex::new(());

    /// The notices told about `pid`'s answers, waiting (at most 10 s) until there are `count`.
    fn told_about(pid: u32, count: usize) -> Vec<Vec<ReloadEvent>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let told: Vec<Vec<ReloadEvent>> = lock(&TOLD)
                .iter()
                .filter_map(|notice| match notice {
                    Notice::Reloaded { children, .. } => children
                        .iter()
                        .find(|c| c.pid == pid)
                        .map(|c| c.events.clone()),
                    _ => None,
                })
                .collect();
            if told.len() >= count || Instant::now() > deadline {
                return told;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn member(pid: u32) -> (Member, UnixStream) {
        let (top_end, child_end) = UnixStream::pair().unwrap();
        let member = Member {
            pid,
            stream: top_end,
            unread: Vec::new(),
        };
        (member, child_end)
    }

    fn applied(seq: u64, name: &str) -> ChildMessage {
        let events = vec![ReloadEvent::Reloaded {
            name: name.into(),
            note: None,
        }];
        ChildMessage::Applied { seq, events }
    }

    #[test]
    fn the_log_numbers_saves_and_keeps_the_last_of_each_file() {
        let mut log = Log::new();
        assert_eq!(log.record(Path::new("a.py"), false), 1);
        assert_eq!(log.record(Path::new("b.py"), true), 2);
        assert_eq!(log.record(Path::new("a.py"), false), 3);
        assert_eq!((log.saves, log.in_flight), (3, 3));
        // The save in flight is not missed: its answers are still read.
        assert_eq!(log.missed(0), vec![(2, PathBuf::from("b.py"), true)]);
        log.in_flight = 0;
        assert_eq!(
            log.missed(0),
            vec![
                (2, PathBuf::from("b.py"), true),
                (3, PathBuf::from("a.py"), false)
            ]
        );
        assert_eq!(log.missed(2), vec![(3, PathBuf::from("a.py"), false)]);
        assert!(log.missed(3).is_empty());
    }

    #[test]
    fn the_log_counts_late_joiners_and_catching_up_children_as_asked() {
        let mut log = Log::new();
        log.answering = vec![1];
        log.catching_up = vec![5];
        log.late.push(member(3).0);
        let late = log.take_late();
        assert_eq!(late.iter().map(|m| m.pid).collect::<Vec<_>>(), vec![3]);
        assert!(log.late.is_empty() && log.take_late().is_empty());
        assert_eq!(log.asked().copied().collect::<Vec<_>>(), vec![1, 3, 5]);
    }

    #[test]
    fn answers_are_read_whole_in_the_order_they_came_and_only_those_owed() {
        let (top_end, mut child_end) = member(7);
        let mut asked = vec![Asked::new(top_end, vec![1, 2])];
        let mut bytes = Vec::new();
        applied(2, "b").send(&mut bytes).unwrap();
        applied(9, "other").send(&mut bytes).unwrap();
        applied(1, "a").send(&mut bytes).unwrap();
        // The last message cut: its rest comes later.
        let cut = bytes.len() - 3;
        child_end.write_all(&bytes[..cut]).unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            child_end.write_all(&bytes[cut..]).unwrap();
            child_end
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let answers = read_answers(&mut asked, &[], deadline, |_, _| false);
        let _child_end = writer.join().unwrap();
        let names: Vec<_> = answers
            .iter()
            .map(|a| (a.pid, format!("{:?}", a.events)))
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names[0].1.contains("\"b\"") && names[1].1.contains("\"a\""));
        assert_eq!(asked[0].state, Answer::Answered);
        assert!(asked[0].owed.is_empty());
    }

    #[test]
    fn a_member_still_importing_is_answered_twice_and_both_answers_are_kept() {
        let (top_end, mut child_end) = member(8);
        let mut asked = vec![Asked::new(top_end, vec![3])];
        let importing = vec![ReloadEvent::Importing {
            file: "work.py".into(),
        }];
        // Both answers at once: the import ended before the first was read.
        ChildMessage::Applied {
            seq: 3,
            events: importing.clone(),
        }
        .send(&mut child_end)
        .unwrap();
        applied(3, "work").send(&mut child_end).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let answers = read_answers(&mut asked, &[], deadline, |_, _| false);
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0].events, importing);
        assert_eq!(asked[0].state, Answer::Answered);
        assert_eq!(asked[0].importing, vec![3]);
        assert_eq!(asked[0].later.len(), 1);
        assert!(format!("{:?}", asked[0].later[0].1.events).contains("\"work\""));
    }

    #[test]
    fn a_member_that_leaves_or_does_not_answer_in_time_is_told_apart() {
        let (gone, gone_end) = member(1);
        let (silent, _silent_end) = member(2);
        drop(gone_end);
        let mut asked = vec![Asked::new(gone, vec![1]), Asked::new(silent, vec![1])];
        let mut endings = Vec::new();
        let deadline = Instant::now() + Duration::from_millis(50);
        let answers = read_answers(&mut asked, &[], deadline, |_, ending| {
            endings.extend(ending);
            false
        });
        assert!(answers.is_empty());
        assert_eq!(asked[0].state, Answer::Gone);
        assert_eq!(asked[1].state, Answer::Waiting);
        assert_eq!(endings, vec![false]);
    }

    #[test]
    fn a_child_joining_before_the_end_is_read_too() {
        let (first, mut first_end) = member(1);
        let (second, mut second_end) = member(2);
        applied(4, "w").send(&mut first_end).unwrap();
        applied(4, "w").send(&mut second_end).unwrap();
        let mut asked = vec![Asked::new(first, vec![4])];
        let mut late = Some(second);
        let deadline = Instant::now() + Duration::from_secs(10);
        let answers = read_answers(&mut asked, &[], deadline, |asked, ending| {
            // Joins only when the reading would end.
            let Some(member) = late.take_if(|_| ending.is_some()) else {
                return false;
            };
            asked.push(Asked::new(member, vec![4]));
            true
        });
        assert_eq!(
            answers.iter().map(|a| a.pid).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert!(asked.iter().all(|a| a.state == Answer::Answered));
    }

    fn told(notice: &Notice) {
        lock(&TOLD).push(notice.clone());
    }

    #[test]
    fn a_child_that_joins_after_a_save_was_answered_is_counted_in_a_line_of_its_own() {
        let _serial = lock(&SERIAL);
        notices::install(told);
        let path = Path::new("/project/work.py");
        // A save nobody answers: done at once.
        let (answers, busy) = send(path, false, None).answers();
        assert!(answers.is_empty() && busy.is_empty());
        let seq = save_log().saves;
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
        let told = told_about(4242, 1);
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(format!("{:?}", told[0]).contains("\"work.work\""));
        assert!(pids().contains(&4242));
    }

    #[test]
    fn a_child_catching_up_while_importing_the_file_has_its_later_answer_told() {
        let _serial = lock(&SERIAL);
        notices::install(told);
        let path = Path::new("/project/slow.py");
        let (answers, busy) = send(path, false, None).answers();
        assert!(answers.is_empty() && busy.is_empty());
        let seq = save_log().saves;
        let (top_end, mut child_end) = UnixStream::pair().unwrap();
        let (go_on, wait) = std::sync::mpsc::channel::<()>();
        let child = std::thread::spawn(move || {
            let Ok(ParentMessage::Reload { seq, .. }) = ParentMessage::receive(&mut child_end)
            else {
                panic!("the save it missed was not sent");
            };
            let importing = vec![ReloadEvent::Importing {
                file: "slow.py".into(),
            }];
            ChildMessage::Applied {
                seq,
                events: importing,
            }
            .send(&mut child_end)
            .unwrap();
            // The import ends after the first answer was told.
            wait.recv().unwrap();
            applied(seq, "slow.work").send(&mut child_end).unwrap();
            child_end
        });
        admit(
            Member {
                pid: 4343,
                stream: top_end,
                unread: Vec::new(),
            },
            Some(seq - 1),
        );
        let first = told_about(4343, 1);
        assert!(
            first.len() == 1 && ReloadEvent::any_importing(&first[0]),
            "{first:?}"
        );
        // Still counted while its later answer is read.
        assert!(pids().contains(&4343));
        go_on.send(()).unwrap();
        let told = told_about(4343, 2);
        assert_eq!(told.len(), 2, "{told:?}");
        assert!(format!("{:?}", told[1]).contains("\"slow.work\""));
        let _child_end = child.join().unwrap();
    }
}
