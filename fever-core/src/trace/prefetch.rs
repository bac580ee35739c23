//! [`Prefetch`]: a trace's chunks loaded one ahead on a thread of their own, so that reading and
//! decompressing the next chunk overlaps with decoding the current one (zstd is about a third
//! of the time `fever show` spends walking a large trace).

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread;

/// Loads chunk `index` into the second buffer (cleared by the loader), with the first as
/// scratch space; false if it could not be loaded as validated.
pub(crate) type Load = dyn Fn(usize, &mut Vec<u8>, &mut Vec<u8>) -> bool + Send + Sync;

/// Hands out chunks `0..count` in order; see the [module docs](self).
pub(crate) struct Prefetch {
    inner: Inner,
}

enum Inner {
    /// The loading thread: chunks arrive on `ready` (`None` for one that failed, after which
    /// the thread stops); buffers done with go back on `spare`. Dropping the receiver stops
    /// the thread after the chunk it is loading.
    Thread {
        ready: Receiver<Option<Vec<u8>>>,
        spare: Sender<Vec<u8>>,
    },
    /// No thread could be started: each chunk is loaded when asked for.
    Here {
        load: Arc<Load>,
        next: usize,
        count: usize,
        payload: Vec<u8>,
    },
}

impl Prefetch {
    /// Starts loading chunks `0..count` with `load`.
    pub fn start(count: usize, load: Arc<Load>) -> Self {
        let (ready_tx, ready) = mpsc::sync_channel(1);
        let (spare, spare_rx) = mpsc::channel::<Vec<u8>>();
        let thread_load = Arc::clone(&load);
        let spawned = thread::Builder::new()
            .name("fever-prefetch".into())
            .spawn(move || {
                let mut payload = Vec::new();
                for index in 0..count {
                    let mut buf = spare_rx.try_recv().unwrap_or_default();
                    let ok = thread_load(index, &mut payload, &mut buf);
                    if ready_tx.send(ok.then_some(buf)).is_err() || !ok {
                        return;
                    }
                }
            });
        let inner = match spawned {
            Ok(_) => Inner::Thread { ready, spare },
            Err(_) => Inner::Here {
                load,
                next: 0,
                count,
                payload: Vec::new(),
            },
        };
        Self { inner }
    }

    /// The next chunk in place of `done` (the previous one, whose buffer is reused): `None`
    /// past the last chunk, `Some(false)` if it could not be loaded (nothing follows then).
    pub fn next(&mut self, done: &mut Vec<u8>) -> Option<bool> {
        match &mut self.inner {
            Inner::Thread { ready, spare } => {
                let Some(chunk) = ready.recv().ok()? else {
                    return Some(false);
                };
                let _ = spare.send(std::mem::replace(done, chunk));
                Some(true)
            }
            Inner::Here {
                load,
                next,
                count,
                payload,
            } => {
                if *next >= *count {
                    return None;
                }
                let ok = load(*next, payload, done);
                *next = if ok { *next + 1 } else { *count };
                Some(ok)
            }
        }
    }
}

impl std::fmt::Debug for Prefetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on_thread = matches!(self.inner, Inner::Thread { .. });
        f.debug_struct("Prefetch")
            .field("on_thread", &on_thread)
            .finish_non_exhaustive()
    }
}
