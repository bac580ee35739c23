//! A recording child ended by SIGTERM (how a pool's `terminate()`, and so `with Pool(...)`, ends
//! its workers) pushes its pending calls first. When SIGTERM does what it does by default (the
//! program set no handler), a handler that only writes a byte to a pipe is installed; the
//! child's flush thread wakes up on it, pushes the calls with the GIL, puts the default back and
//! sends SIGTERM again, so the child ends as it would have. A SIGTERM that comes while the
//! child's `atexit` handler pushes its calls waits for that push instead. A child that cannot
//! take the GIL (a C call holding it) ends after [`GRACE`] anyway. SIGKILL cannot be caught: a
//! child killed by it loses the calls of its last flush interval.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// How long a terminated child may take to push its calls before it ends regardless.
const GRACE: Duration = Duration::from_millis(200);

/// The pipe's write end, for the handler (-1: not installed).
static WRITE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_term(_signal: libc::c_int) {
    let fd = WRITE.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; a full pipe already holds a wake-up.
        unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
    }
}

/// Installs the handler when SIGTERM has its default action; returns the pipe's read end to
/// wait on ([`wait`]).
pub fn catch() -> Option<OwnedFd> {
    // SAFETY: sigaction and pipe2 on local, initialized structures.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGTERM, std::ptr::null(), &raw mut current) != 0
            || current.sa_sigaction != libc::SIG_DFL
        {
            return None;
        }
        let mut fds = [-1; 2];
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) != 0 {
            return None;
        }
        let read = OwnedFd::from_raw_fd(fds[0]);
        WRITE.store(fds[1], Ordering::SeqCst);
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_term as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&raw mut action.sa_mask);
        if libc::sigaction(libc::SIGTERM, &raw const action, std::ptr::null_mut()) != 0 {
            libc::close(WRITE.swap(-1, Ordering::SeqCst));
            return None;
        }
        Some(read)
    }
}

/// Waits up to `timeout` for SIGTERM; true when it came.
pub fn wait(read: &OwnedFd, timeout: Duration) -> bool {
    let mut poll = libc::pollfd {
        fd: read.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: poll on one local pollfd.
    unsafe { libc::poll(&raw mut poll, 1, ms) > 0 && poll.revents & libc::POLLIN != 0 }
}

/// Ends the process as the SIGTERM it received would have: default action, and SIGTERM again
/// (delivered to a thread that does not block it: fever's own threads block every signal).
/// Also from a thread started now, after [`GRACE`], in case the caller never gets the GIL.
pub fn end_soon() {
    let _ = crate::signals::without_signals(|| {
        std::thread::Builder::new()
            .name("fever-term".into())
            .spawn(|| {
                std::thread::sleep(GRACE);
                end();
            })
    });
}

/// Puts SIGTERM's default action back and sends it to this process.
pub fn end() {
    restore();
    // SAFETY: kill(2) of this process.
    unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
}

/// In a child of `os.fork()` (and before ending): SIGTERM's default action again when the
/// handler is installed (the flush thread it wakes was not copied); the pipe's write end closed.
pub fn restore() {
    let fd = WRITE.swap(-1, Ordering::SeqCst);
    if fd < 0 {
        return;
    }
    // SAFETY: sigaction with a local, initialized action; close of our own fd.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&raw mut action.sa_mask);
        libc::sigaction(libc::SIGTERM, &raw const action, std::ptr::null_mut());
        libc::close(fd);
    }
}
