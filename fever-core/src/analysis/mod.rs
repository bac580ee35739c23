//! What `fever show` computes from a trace: call trees, profiles and exports to standard viewers.
//!
//! Everything starts from [`spans`], the one place that decides how a thread's raw events
//! (calls, returns, yields, resumes, raises, unwinds — possibly lost, cut short or out of order)
//! become well-nested spans. The rest consume those spans:
//! - [`spans`]: the [`Walker`](spans::Walker) and the [`SpanSink`](spans::SpanSink) it feeds.
//! - [`calltree`]: per-thread call trees that borrow snapshots from the trace.
//! - [`collapse`]: the tree's lines, with repeated sibling calls collapsed into counted groups.
//! - [`profile`]: per-function calls, total and self time.
//! - [`summary`]: the one-line facts about a trace (calls, functions, duration).
//! - [`text`]: names, thread labels and shortened snapshots as the views show them.
//! - [`export`]: Perfetto protobuf, Chrome trace-event JSON and speedscope JSON, streamed.

pub mod calltree;
pub mod collapse;
pub mod export;
pub mod profile;
pub mod spans;
pub mod summary;
pub mod text;
