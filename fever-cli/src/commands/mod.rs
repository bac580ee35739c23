//! The commands that run right in this process, with no Python interpreter, or whose policy
//! does (what to print, which files to write, the exit code).
//!
//! - [`attach`]: `fever ps` and `fever attach PID`: the processes under fever, and a live
//!   profile of one of them over its control socket.
//! - [`check`]: `fever check TRACE`'s printing, `--junit`, `--update` and exit codes (the
//!   calls are checked by the host's [`Checks`](crate::Checks)).
//! - [`show`]: `fever show TRACE`: the call tree, the profile table, exports to trace viewers.
//! - [`replay`]: `fever replay`'s front end: the program side as a child, replays over the
//!   control channel.

pub(crate) mod attach;
pub(crate) mod check;
pub(crate) mod replay;
pub(crate) mod show;
