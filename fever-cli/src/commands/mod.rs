//! The commands that run right in this process, with no Python interpreter.
//!
//! - [`show`]: `fever show TRACE`: the call tree, the profile table, exports to trace viewers.
//! - [`replay`]: `fever replay`'s front end: the program side as a child, replays over the
//!   control channel.

pub(crate) mod replay;
pub(crate) mod show;
