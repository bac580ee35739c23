//! Threads of child processes in a trace: a recording includes the calls of the program's forked
//! children, each child's threads under ids of their own. A Python thread id
//! (`threading.get_ident()`, a `pthread_t` address) never has its top bit set, so the trace
//! names a child's thread `1 << 63 | pid << 20 | n`, where `n` numbers the child's threads in the
//! order they first recorded a call (0 first). Readers that do not know this see extra threads.

/// The top bit: a child's thread.
const CHILD: u64 = 1 << 63;
/// Bits of the thread's number within its process.
const THREAD_BITS: u32 = 20;

/// The trace's id of thread number `n` (from 0) of the child process `pid`.
pub fn child_thread(pid: u32, n: u32) -> u64 {
    CHILD | u64::from(pid) << THREAD_BITS | u64::from(n & ((1 << THREAD_BITS) - 1))
}

/// The child process and thread number of a thread id made by [`child_thread`]; `None` for a
/// thread of the recorded process itself.
pub fn thread_process(ident: u64) -> Option<(u32, u32)> {
    if ident & CHILD == 0 {
        return None;
    }
    let pid = u32::try_from((ident & !CHILD) >> THREAD_BITS).ok()?;
    let n = u32::try_from(ident & ((1 << THREAD_BITS) - 1)).ok()?;
    Some((pid, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_childs_thread_names_its_process() {
        assert_eq!(thread_process(child_thread(4242, 0)), Some((4242, 0)));
        assert_eq!(
            thread_process(child_thread(u32::MAX, 7)),
            Some((u32::MAX, 7))
        );
        assert_ne!(child_thread(4242, 0), child_thread(4243, 0));
        // A real thread id (an address below 2^47).
        assert_eq!(thread_process(0x7f12_3456_7000), None);
    }
}
