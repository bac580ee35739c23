//! `fever check` in this interpreter: the Python half of replaying a trace. fever-core decides
//! which calls, compares and reports; this module only rebuilds arguments, imports and calls.
//!
//! - [`command`]: the trace opened for `fever check` (the CLI checks its calls and reports).
//! - [`py`]: `CheckSession`, the same checks for the pytest plugin.
//! - [`checker`]: [`Checker`](checker::Checker), one trace being replayed, call by call.
//! - `argv.rs`: the recorded `sys.argv` while the check imports and calls.
//! - `imports.rs`: the program's modules, its `__main__` loaded without its main block.
//! - `invoke.rs`: calling with stdio isolated and a time limit, snapshotting the outcome.
//! - `caller.rs`: calls made from a frame of the recorded caller's module.
//! - `sources.rs` (+ `sources.py`): the sources of nondeterminism watched while calls run.
//! - `state.rs` (+ `state.py`): the module state a call that differs depended on.

mod argv;
mod caller;
pub mod checker;
pub mod command;
mod imports;
mod invoke;
pub mod py;
mod sources;
mod state;
