//! What a trace says about itself: the [`TraceHeader`] at the start of the file, the
//! [`CodeInfo`] entries that name the code ids events refer to (also carried by the live ring,
//! hence rkyv), and the [`RunStats`] near the end.

use rkyv::{Archive, Deserialize, Serialize};

/// Who recorded the trace, of what, and when. Written once, at the start of the file.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceHeader {
    /// `sys.version` of the recorded interpreter, e.g. `3.12.1 (main, ...) [GCC 11.4.0]`.
    pub python_version: String,
    /// Version of the fever that recorded the trace.
    pub fever_version: String,
    /// The project root: the script's directory or `--root`.
    pub root: String,
    /// The recorded program's `sys.argv` (the script or `-m module` first).
    pub argv: Vec<String>,
    /// Process id of the recorded program.
    pub pid: u32,
    /// Wall-clock start of the recording, nanoseconds since the Unix epoch.
    pub started_unix_ns: u64,
    /// The monotonic clock at the same instant. Events carry monotonic timestamps; an event at
    /// `t_ns` happened at `started_unix_ns + (t_ns - started_monotonic_ns)` wall-clock time.
    pub started_monotonic_ns: u64,
    /// Free-form settings of the recording, e.g. `("snapshots", "args")`, so a new setting does
    /// not need a new format version.
    pub options: Vec<(String, String)>,
}

/// One entry of the code table: a Python code object the trace refers to by `id`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CodeInfo {
    /// The id events use for this code (unique within a trace).
    pub id: u32,
    /// Module name, e.g. `shop.cart`.
    pub module: String,
    /// Qualified name, e.g. `Cart.total` or `load.<locals>.parse`.
    pub qualname: String,
    /// Source file path as the interpreter saw it (`co_filename`).
    pub file: String,
    /// First line number (`co_firstlineno`).
    pub first_line: u32,
    /// fever's content hash of the code (the source index's hash of the definition).
    pub code_hash: u64,
}

impl CodeInfo {
    /// A code `fN` of module `m` in `m.py`, for tests that need codes to point events at.
    #[cfg(test)]
    pub(crate) fn sample(id: u32) -> Self {
        CodeInfo {
            id,
            module: "m".into(),
            qualname: format!("f{id}"),
            file: "m.py".into(),
            first_line: 1,
            code_hash: 7,
        }
    }
}

/// How the recording went, written once near the end: exact call counts per code (the tracer
/// may record only the first calls of a hot function, see `--max-calls-per-function`) and what
/// was lost. A trace cut short by a crash has none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStats {
    /// One entry per code that was called, in code-id order.
    pub calls: Vec<CodeCalls>,
    /// Events the ring buffer overwrote before they reached the file.
    pub lost_events: u64,
}

impl RunStats {
    /// A finished recording's statistics: `calls` gives each code's (id, calls, recorded calls)
    /// by code id (codes never called are left out); `pushed` events went into the ring and
    /// `written` reached the file (the rest were lost); `in_file` says whether a code's
    /// announcement reached the file (a code whose announcement was lost has no events there).
    pub fn of_recording(
        calls: impl IntoIterator<Item = (u32, u64, u64)>,
        pushed: u64,
        written: u64,
        in_file: impl Fn(u32) -> bool,
    ) -> Self {
        Self {
            calls: calls
                .into_iter()
                .filter(|&(code, calls, _)| calls > 0 && in_file(code))
                .map(|(code, calls, recorded)| CodeCalls {
                    code,
                    calls,
                    recorded,
                })
                .collect(),
            lost_events: pushed.saturating_sub(written),
        }
    }

    /// Calls made in all.
    pub fn total_calls(&self) -> u64 {
        self.calls.iter().map(|c| c.calls).sum()
    }
}

/// Calls of one code: how many happened and how many have events in the trace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CodeCalls {
    /// Code id.
    pub code: u32,
    /// Calls made (exact, including those not recorded).
    pub calls: u64,
    /// Calls whose events were recorded.
    pub recorded: u64,
}

impl CodeInfo {
    /// `module.qualname`, the name messages and profiles show.
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.module, self.qualname)
    }
}

impl From<&ArchivedCodeInfo> for CodeInfo {
    fn from(a: &ArchivedCodeInfo) -> Self {
        Self {
            id: a.id.to_native(),
            module: a.module.as_str().to_owned(),
            qualname: a.qualname.as_str().to_owned(),
            file: a.file.as_str().to_owned(),
            first_line: a.first_line.to_native(),
            code_hash: a.code_hash.to_native(),
        }
    }
}

impl From<&ArchivedTraceHeader> for TraceHeader {
    fn from(a: &ArchivedTraceHeader) -> Self {
        Self {
            python_version: a.python_version.as_str().to_owned(),
            fever_version: a.fever_version.as_str().to_owned(),
            root: a.root.as_str().to_owned(),
            argv: a.argv.iter().map(|s| s.as_str().to_owned()).collect(),
            pid: a.pid.to_native(),
            started_unix_ns: a.started_unix_ns.to_native(),
            started_monotonic_ns: a.started_monotonic_ns.to_native(),
            options: a
                .options
                .iter()
                .map(|t| (t.0.as_str().to_owned(), t.1.as_str().to_owned()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_counts_calls_of_codes_in_the_file_and_lost_events() {
        let stats = RunStats::of_recording(
            [(0, 5, 5), (1, 0, 0), (2, 20_000, 10_000), (3, 7, 7)],
            1_000,
            990,
            |code| code != 3,
        );
        assert_eq!(
            stats.calls,
            [
                CodeCalls {
                    code: 0,
                    calls: 5,
                    recorded: 5
                },
                CodeCalls {
                    code: 2,
                    calls: 20_000,
                    recorded: 10_000
                }
            ]
        );
        assert_eq!(stats.lost_events, 10);
        assert_eq!(stats.total_calls(), 20_005);
        // More written than pushed (never expected) loses nothing.
        assert_eq!(RunStats::of_recording([], 5, 9, |_| true).lost_events, 0);
    }
}
