//! Exports of a trace to standard viewers, each written as a stream while the events are walked.
//!
//! - [`perfetto`]: Perfetto's protobuf trace (the primary export: Perfetto UI opens large runs
//!   that would crash it as JSON), with interned names.
//! - [`chrome`]: Chrome trace-event JSON (`chrome://tracing`, Perfetto), for small runs.
//! - [`speedscope`]: the speedscope file format, one evented profile per thread.
//! - `protobuf.rs` (private): the wire encoding Perfetto's export needs.
//! - `common.rs` (private): what every export shares: names, thread ids, the time origin.
//!
//! Every export takes a validated [`TraceReader`](crate::trace::TraceReader) and any `Write`,
//! buffers it, and returns it flushed. Timestamps count from the trace's first event.

pub mod chrome;
mod common;
pub mod perfetto;
mod protobuf;
pub mod speedscope;
