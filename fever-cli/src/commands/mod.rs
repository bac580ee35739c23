//! The commands that run right in this process, with no Python interpreter.
//!
//! - [`show`]: `fever show TRACE`: the call tree, the profile table, exports to trace viewers.

pub(crate) mod show;
