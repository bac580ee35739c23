//! `fever replay`'s engine, the program side: the program runs recorded under the tracer, stays
//! warm when it ends, and re-runs a segment of itself on request in a forked child.
//!
//! - `serve.rs`: `fever _replay-serve`: run, record, then serve requests until told to quit.
//! - `control.rs`: the control socket's thread (requests in, responses out, garbage refused).
//! - `hooks.rs`: the checkpoints, the monitoring engine's consumer at the project's calls: keep a
//!   start call's arguments, notice the end call.
//! - `names.rs`: which recorded function a name asked by the front end means.
//! - `kept.rs`: kept start calls (function, argument objects, probes) and their preparation.
//! - `checkpoint.rs`: the fork: a child forked for a replay, or a standby forked ahead.
//! - `fork.rs`: the warm parent's side of a replay: start the child, wait, cancel.
//! - `child.rs`: the forked child's side: run the start call, stop at the end call, report.
//! - `edited.rs`: the code changed functions run after a reload, for the front end's marks.
//!
//! The protocol, call references and diffs are `fever_core::control` and
//! `fever_core::replay`'s; the debugger and the fork itself go through `fever._replay`.

mod checkpoint;
mod child;
mod control;
mod edited;
mod fork;
mod hooks;
mod kept;
mod names;
mod serve;

pub use checkpoint::replay_fork;
pub use serve::serve;
