//! Threads fever starts never take the program's signals. A process-directed signal (Ctrl-C's
//! SIGINT, SIGTERM) goes to any thread that does not block it; if one of fever's threads took it,
//! Python's handler would only run once the main thread next executes bytecode, and a main
//! thread asleep in `time.sleep` or blocked in `input()` would not wake up. Threads inherit the
//! signal mask of the thread that creates them, so fever creates its threads with every signal
//! blocked.

/// Runs `spawn` (which starts threads) with all signals blocked on the calling thread, so the
/// threads it starts never receive signals; the calling thread's mask is restored afterwards.
pub fn without_signals<T>(spawn: impl FnOnce() -> T) -> T {
    // SAFETY: plain libc calls on local, initialized signal sets.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&raw mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &raw const all, &raw mut previous);
        let result = spawn();
        libc::pthread_sigmask(libc::SIG_SETMASK, &raw const previous, std::ptr::null_mut());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(signal: libc::c_int) -> bool {
        // SAFETY: reads the calling thread's mask into a local set.
        unsafe {
            let mut current: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &raw mut current);
            libc::sigismember(&raw const current, signal) == 1
        }
    }

    #[test]
    fn spawned_threads_block_signals_and_the_caller_is_restored() {
        assert!(!blocked(libc::SIGINT));
        let child = without_signals(|| std::thread::spawn(|| blocked(libc::SIGINT)));
        assert!(child.join().unwrap());
        assert!(!blocked(libc::SIGINT));
    }
}
