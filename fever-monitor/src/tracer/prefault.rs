//! Faults the live ring's pages into the tracer's mapping ahead of the tracer, from the drain
//! thread.
//!
//! Populating the 16 MiB ring when it is created (`MAP_POPULATE`) cost every `fever record`
//! ~10-30 ms before the program's first line, however little it then recorded; leaving the pages
//! to fault in one by one as the tracer first writes them costs the traced program as much. So
//! the ring is created sparse, and the drain, on another core, populates the tracer's mapping
//! from its start (where the tracer writes first) a step at a time (`MADV_POPULATE_WRITE`,
//! Linux 5.14+; an older kernel refuses it, and the tracer faults its pages in itself). The
//! recording ends with [`Prefault::stop`] before the ring is unmapped; it waits for the step in
//! progress only (the drain's steps follow each other closely, and a lock alone let the drain
//! take it back again and again: a short program's exit waited ~5-10 ms for the steps).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use fever_core::ring::RingWriter;

/// Bytes populated per step: ~1-2 ms of the drain's time.
const STEP: usize = 1 << 20;

/// The part of the tracer's mapping not populated yet (shared by the session and the drain).
#[derive(Clone)]
pub struct Prefault(Arc<Shared>);

struct Shared {
    /// [`Prefault::stop`] was called: no new step starts.
    stopping: AtomicBool,
    pending: Mutex<Pending>,
}

struct Pending {
    next: usize,
    end: usize,
    /// The tracer owns the ring (set by [`Prefault::start`]).
    started: bool,
}

impl Prefault {
    /// For `ring`'s mapping; nothing happens before [`start`](Self::start).
    pub fn of(ring: &RingWriter) -> Self {
        let (next, len) = ring.mapped();
        Self(Arc::new(Shared {
            stopping: AtomicBool::new(false),
            pending: Mutex::new(Pending {
                next,
                end: next + len,
                started: false,
            }),
        }))
    }

    /// Lets [`step`](Self::step) work: the ring now lives until [`stop`](Self::stop).
    pub fn start(&self) {
        self.lock().started = true;
    }

    /// Populates the next step; false when there was nothing (left) to do.
    pub fn step(&self) -> bool {
        if self.0.stopping.load(Ordering::Acquire) {
            return false;
        }
        let mut pending = self.lock();
        if !pending.started
            || pending.next >= pending.end
            || self.0.stopping.load(Ordering::Acquire)
        {
            return false;
        }
        let len = STEP.min(pending.end - pending.next);
        // SAFETY: a page-aligned range (the mapping's start plus whole steps) inside the
        // tracer's mapping, which stays mapped while the lock is held (`stop` takes it before
        // the ring goes); populating writes nothing.
        let done = unsafe {
            libc::madvise(
                pending.next as *mut libc::c_void,
                len,
                libc::MADV_POPULATE_WRITE,
            )
        } == 0;
        pending.next = if done {
            pending.next + len
        } else {
            pending.end
        };
        true
    }

    /// No more steps: call before the ring is unmapped.
    pub fn stop(&self) {
        self.0.stopping.store(true, Ordering::Release);
        let mut pending = self.lock();
        pending.next = pending.end;
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.0
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn populates_the_mapping_in_steps_once_started_and_never_after_stop() {
        let ring = RingWriter::anonymous(4 << 20).unwrap();
        let prefault = Prefault::of(&ring);
        assert!(!prefault.step(), "not started");
        prefault.start();
        let mut steps = 0;
        while prefault.step() {
            steps += 1;
        }
        // Four steps, plus the header's page past them (or one when the kernel refuses).
        assert!(steps == 5 || steps == 1, "{steps} steps");
        let again = Prefault::of(&ring);
        again.start();
        again.stop();
        assert!(!again.step());
    }
}
