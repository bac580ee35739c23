//! What `fever replay` decides without Python: which call a `module.qualname#N` names, where a
//! segment's start and end calls are in a trace (and what the end call did when recorded),
//! whether a kept argument may differ from the one the call first had, and how a replayed value
//! differs from the recorded one.
//!
//! - `call_ref.rs`: [`CallRef`], a function's N-th call (`app.summarize#2`).
//! - `locate.rs`: [`locate`] the start call and the end call within it in a trace.
//! - `probe.rs`: [`Probe`]s of an argument (hash, generator state, file position) taken when
//!   the call started and again at replay, and what a difference between them means.
//! - `diff.rs`: [`value_diff`], recorded against replayed, as a unified diff.

mod call_ref;
mod diff;
mod locate;
mod probe;

pub use call_ref::{same_function, CallRef, CallRefError};
pub use diff::{outcome_text, value_diff};
pub use locate::{locate, CallSpan, LocateError, Located};
pub use probe::{Difference, Probe};
