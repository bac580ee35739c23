//! A program's child processes under fever: every descendant (forked, or started by
//! `multiprocessing`'s spawn or forkserver methods) joins the family of the process that watches
//! files (the top), which sends it each save; the child applies it with the same reload engine
//! at its next safe point and answers what it did, so the top says it once for all.
//!
//! - [`top`]: the top process's side: the family socket, its members (pids and connections),
//!   sending them a save and reading their answers, ending them (`fever watch`'s re-runs).
//! - [`member`]: a child's side: joining (after `os.fork()`, or at the start of a spawned
//!   interpreter), and the thread that applies the top's saves.
//!
//! Spawned interpreters find the family through `python/fever/_family.py`, which adds a call
//! that joins to the preparation data `multiprocessing` pickles for every spawn and forkserver
//! child.

pub mod member;
pub mod top;

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;

/// The family this process belongs to: the top's socket, and the project root.
#[derive(Debug, Clone)]
pub struct Address {
    pub socket: PathBuf,
    pub root: PathBuf,
}

/// Set once: in the top when it opens the socket, in a spawned child when it joins; a forked
/// child inherits it.
static ADDRESS: OnceLock<Address> = OnceLock::new();

/// The number of the last save this process's code has (sent by the top, applied by a
/// member): a forked child inherits it and tells the top, which sends it the saves made
/// between its fork and its joining.
static SEEN: AtomicU64 = AtomicU64::new(0);

/// The family of this process, if it has one.
pub fn address() -> Option<&'static Address> {
    ADDRESS.get()
}
