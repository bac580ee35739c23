//! `fever check`'s decisions, without Python: which recorded calls to re-invoke, whether what
//! they do now matches the recording, and what to tell the user and CI about it. The Python
//! side (fever-monitor) only rebuilds arguments, calls the functions and snapshots results.
//!
//! - [`select`](mod@select): the [`Case`]s of a trace (outermost calls of non-test code,
//!   `--depth`, `--select`), with their recorded [`Outcome`] and why a call cannot be replayed
//!   (nondeterministic, code reloaded while recording, a generator, nothing recorded), and why
//!   the other calls were not selected.
//! - [`compare`]: [`same_outcome`] with a float tolerance, order-free dicts, sets and fields.
//! - [`same_name`]: which of the functions sharing a qualname (a property's getter and setter)
//!   a recorded code is.
//! - [`set_text`]: texts (exception messages) that list a set of strings in another order.
//! - [`patched`]: a recorded result holding a mock its arguments do not (a test's patch).
//! - [`report`]: [`judge`] → [`Verdict`] (a failure's unified diff), [`Summary`].
//! - [`junit`]: `--junit`, `JUnit` XML.
//! - [`update`]: `--update`, the trace rewritten with new outcomes, atomically.
//! - [`layout`]: the directories and files the recorded modules were imported from.
//! - [`relocate`]: the recorded project root mapped to where the project is now (`--root`).

pub mod compare;
pub mod junit;
pub mod layout;
pub mod patched;
pub mod relocate;
pub mod report;
pub mod same_name;
pub mod select;
pub mod set_text;
pub mod update;

pub use compare::{
    differs_in_string_order, equal_iterators, holds_string_set, same_outcome, Outcome,
    DEFAULT_REL_TOL,
};
pub use junit::{junit_xml, Tested};
pub use layout::Layout;
pub use patched::patched_result;
pub use relocate::Relocation;
pub use report::{failure_without_result, judge, judge_yields, Checked, Summary, Verdict};
pub use select::{
    is_test_file, select, Case, FirstWalk, Options, Selection, Unselected, MAX_YIELDS,
};
pub use update::rewrite_file;

/// Why calls could not be selected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckError {
    /// A `--select` pattern is not a valid glob.
    #[error("invalid --select pattern '{pattern}': {reason}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl From<std::convert::Infallible> for CheckError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}
