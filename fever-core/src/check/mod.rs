//! `fever check`'s decisions, without Python: which recorded calls to re-invoke, whether what
//! they do now matches the recording, and what to tell the user and CI about it. The Python
//! side (fever-monitor) only rebuilds arguments, calls the functions and snapshots results.
//!
//! - [`select`](mod@select): the [`Case`]s of a trace (outermost calls of non-test code,
//!   `--depth`, `--select`), with their recorded [`Outcome`] and why a call cannot be replayed
//!   (nondeterministic, code reloaded while recording, a generator, nothing recorded), and why
//!   the other calls were not selected.
//! - [`compare`]: [`same_outcome`] with a float tolerance, order-free dicts, sets and fields.
//! - [`report`]: [`judge`] → [`Verdict`] (a failure's unified diff), [`Summary`].
//! - [`junit`]: `--junit`, `JUnit` XML.
//! - [`update`]: `--update`, the trace rewritten with new outcomes, atomically.
//! - [`layout`]: the directories and files the recorded modules were imported from.
//! - [`relocate`]: the recorded project root mapped to where the project is now (`--root`).

pub mod compare;
pub mod junit;
pub mod layout;
pub mod relocate;
pub mod report;
pub mod select;
pub mod update;

pub use compare::{differs_in_string_order, same_outcome, Outcome, DEFAULT_REL_TOL};
pub use junit::{junit_xml, Tested};
pub use layout::Layout;
pub use relocate::Relocation;
pub use report::{failure_without_result, judge, Summary, Verdict};
pub use select::{is_test_file, select, Case, Options, Selection, Unselected};
pub use update::rewrite_file;

use crate::trace::TraceHeader;

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

/// The snapshot limits a trace was recorded with (its header's `snapshot_depth`,
/// `snapshot_items` and `snapshot_string_bytes` options), so new results are snapshotted the
/// same way; `None` for a limit the header does not state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordedLimits {
    /// Depth limit.
    pub depth: Option<u32>,
    /// Items per container.
    pub items: Option<u32>,
    /// Bytes per string.
    pub string_bytes: Option<usize>,
}

impl RecordedLimits {
    /// The limits stated in `header`.
    pub fn of(header: &TraceHeader) -> Self {
        let option = |key: &str| {
            header
                .options
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.trim())
        };
        Self {
            depth: option("snapshot_depth").and_then(|v| v.parse().ok()),
            items: option("snapshot_items").and_then(|v| v.parse().ok()),
            string_bytes: option("snapshot_string_bytes").and_then(|v| v.parse().ok()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_come_from_the_header_options() {
        let mut header = TraceHeader::default();
        assert_eq!(RecordedLimits::of(&header), RecordedLimits::default());
        header.options = vec![
            ("snapshot_depth".into(), "3".into()),
            ("snapshot_items".into(), "x".into()),
            ("snapshot_string_bytes".into(), " 64 ".into()),
        ];
        assert_eq!(
            RecordedLimits::of(&header),
            RecordedLimits {
                depth: Some(3),
                items: None,
                string_bytes: Some(64)
            }
        );
    }
}
