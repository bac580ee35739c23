//! fever's pure-Rust core: everything that can be decided without a Python interpreter.
//!
//! - [`source`]: reading Python source as Python does (PEP 263 decoding) and a tokenizer-level scan
//!   that indexes a file's definitions by qualified name with content hashes.
//! - [`plan`]: the difference between the running text's index and the saved text's index, as a
//!   list of typed changes the reload engine applies (swap code, shift lines, execute, delete).
//! - [`history`]: the history of applied reloads (each file's text before and after) that undo
//!   walks back.
//! - [`events`]: what a reload did (one save's outcome, typed events) and their one-line messages.
//! - [`project`]: the project root, which files belong to it, which paths the watcher ignores.
//! - [`notice`]: what the engine tells the user (reloads, cache hits, a recording's summary,
//!   warnings) as typed notices the command line puts into words.
//! - [`parameters`]: where a code object's parameters sit in its `co_varnames`.
//! - [`profile`]: `fever attach`'s shared counter region and the table made of it.
//! - [`reindex`]: a save as a change of the running text: the saved text's index and the plan,
//!   at a cost that grows with the change (only the touched items are indexed again).
//! - [`ring`]: the file-backed ring buffer of records (one writer, readers in any process).
//! - [`live`]: the tracer's records in the ring (per-thread event batches, code announcements)
//!   and their conversion into trace events.
//! - [`trace`]: the trace file format: header, code table, checksummed chunks of records.
//! - [`snapshot`]: argument and return-value snapshots: the bounded value model, its binary
//!   encoding with a structural hash, decoding and rendering.
//! - [`analysis`]: what `fever show` computes from a trace: call trees, profiles, exports to
//!   Perfetto, Chrome trace-event JSON and speedscope.
//! - [`cache`]: `fever watch`'s call cache index (validity, LRU eviction) and trampoline source.
//! - [`check`]: what `fever check` decides: which recorded calls to re-invoke, comparing
//!   results with a float tolerance, diffs, `JUnit` XML, rewriting a trace with new results.
//! - [`python`]: which Python interpreters fever supports (versions, free-threaded builds).
//! - [`units`]: durations and sizes for people (powers of 1000).
//! - [`clock`]: the tracer's tick arithmetic: ticks to monotonic nanoseconds, tick rates.
//! - [`varint`]: LEB128 varints and zigzag codes, the number encoding of snapshots and traces.
//! - [`control`]: the control channel between a front end and a program under fever: a private
//!   Unix socket, framed, versioned, size-capped messages.
//! - [`replay`]: `fever replay`'s pure decisions: call references `module.qualname#N`, finding a
//!   segment in a trace, argument probes, recorded-against-replayed diffs.
//! - [`settings`]: the settings vocabulary the CLI and the engine share (what to run, snapshot
//!   limits, each command's settings) and a recording's settings in its trace header.
//! - [`registry`]: bookkeeping of which function objects run which code object, fed by `CPython`'s
//!   function watcher in `fever-monitor`.
//!
//! Errors: each module that can fail has its own `thiserror` enum, named for it and returned by
//! its functions ([`SourceError`], [`trace::TraceError`], [`snapshot::SnapshotError`],
//! [`ring::RingError`], [`control::ControlError`], [`check::CheckError`], ...), with lower
//! modules' errors as sources (`PersistError::Ring`); no caller handles errors of several
//! modules as one, so there is no crate-wide enum.

pub mod analysis;
pub mod cache;
pub mod check;
pub mod clock;
pub mod control;
pub mod events;
pub mod history;
pub mod live;
pub mod notice;
pub mod parameters;
pub mod plan;
pub mod profile;
pub mod project;
pub mod python;
pub mod registry;
pub mod reindex;
pub mod replay;
pub mod ring;
pub mod settings;
pub mod snapshot;
pub mod source;
pub mod trace;
pub mod units;
pub mod varint;

pub use events::{family_lines, report_lines, ChildOutcome, Outcome, Rebinds, ReloadEvent};
pub use plan::{plan_reload, Change, Plan, Redefinition};
pub use project::Project;
pub use registry::CodeRegistry;
pub use reindex::{reindex, Reindexed};
pub use source::{decode_source, decode_source_owned, Definition, Index, Kind, SourceError};
