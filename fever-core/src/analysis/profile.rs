//! [`Profile`]: per function, how often it was called and where the time went.
//!
//! - total (inclusive) time: the time spans of the function ran, calls it made included. A
//!   span that starts while the same function is already running on its thread (recursion)
//!   adds nothing, so recursion never counts time twice.
//! - self time: total minus the time of the spans it contains, which includes the stretches
//!   of generators that ran inside it.
//! - calls: exact counts from the trace's [`RunStats`] when it has them (they include calls the
//!   recorder only counted, past its per-function cap); otherwise the calls in the trace.
//!   A generator's resumed stretches add time, never calls.
//!
//! Rows are sorted by total time, longest first.
//!
//! A trace of `fever record --profile-only` has no events: its profile was counted in the
//! callbacks and is stored whole, as one [`RECORD_PROFILE`] record ([`Profile::encode`]);
//! [`Profile::of_trace`] reads either kind of trace.

use std::convert::Infallible;

use super::spans::{self, Closed, Opened, SpanSink, Thread};
use crate::settings::is_profile_only;
use crate::trace::ids::IdMap;
use crate::trace::{EventRef, RunStats, TraceReader, FIRST_OPAQUE_RECORD};

/// Record kind of a profile stored whole (`fever record --profile-only`).
pub const RECORD_PROFILE: u32 = FIRST_OPAQUE_RECORD + 0x50;

/// Bytes of one row in a [`RECORD_PROFILE`] body: code id (`u32`), calls, total and self
/// nanoseconds (`u64` each), little-endian.
const ROW_BYTES: usize = 4 + 3 * 8;

/// One function's line of the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// Code id of the function.
    pub code: u32,
    /// Calls made (exact when the trace has run statistics).
    pub calls: u64,
    /// Calls whose events are in the trace: the times cover these.
    pub recorded: u64,
    /// Inclusive time, recursion counted once.
    pub total_ns: u64,
    /// Time not spent in other recorded spans.
    pub self_ns: u64,
}

impl Row {
    fn new(code: u32) -> Self {
        Self {
            code,
            calls: 0,
            recorded: 0,
            total_ns: 0,
            self_ns: 0,
        }
    }

    /// Not every call was recorded, so the times cover only some of them.
    pub fn is_partial(&self) -> bool {
        self.recorded < self.calls
    }
}

/// Per-function totals, longest total time first; see the [module docs](self).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// One row per function called.
    pub rows: Vec<Row>,
}

impl Profile {
    /// The profile of the trace `reader` holds: stored whole by `--profile-only` (`None` if
    /// that record is missing or malformed), else computed from its events.
    pub fn of_trace(reader: &TraceReader) -> Option<Self> {
        if !is_profile_only(reader.header()) {
            return Some(Self::build(reader.events(), reader.stats()));
        }
        reader
            .records()
            .find(|record| record.kind() == RECORD_PROFILE)
            .and_then(|record| Self::decode(record.body()))
    }

    /// Rows counted in the callbacks (every call timed), sorted as [`Self::build`] sorts them.
    pub fn counted(rows: impl IntoIterator<Item = Row>) -> Self {
        let mut rows: Vec<Row> = rows.into_iter().filter(|row| row.calls > 0).collect();
        sort(&mut rows);
        Self { rows }
    }

    /// The body of a [`RECORD_PROFILE`] record.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.rows.len() * ROW_BYTES);
        for row in &self.rows {
            body.extend_from_slice(&row.code.to_le_bytes());
            for n in [row.calls, row.total_ns, row.self_ns] {
                body.extend_from_slice(&n.to_le_bytes());
            }
        }
        body
    }

    /// Reads a [`RECORD_PROFILE`] body back; `None` if it is not one.
    pub fn decode(body: &[u8]) -> Option<Self> {
        if !body.len().is_multiple_of(ROW_BYTES) {
            return None;
        }
        let rows: Vec<Row> = body
            .chunks_exact(ROW_BYTES)
            .map(|row| {
                let u64_at =
                    |at: usize| u64::from_le_bytes(row[at..at + 8].try_into().unwrap_or_default());
                let calls = u64_at(4);
                Row {
                    code: u32::from_le_bytes(row[..4].try_into().unwrap_or_default()),
                    calls,
                    recorded: calls,
                    total_ns: u64_at(12),
                    self_ns: u64_at(20),
                }
            })
            .collect();
        Some(Self::counted(rows))
    }

    /// Computes the profile of `events`, with exact call counts from `stats` if given.
    pub fn build<'a>(
        events: impl IntoIterator<Item = EventRef<'a>>,
        stats: Option<&RunStats>,
    ) -> Self {
        let mut totals = Totals::default();
        match spans::walk(events, &mut totals) {
            Ok(()) => {}
            Err(never) => match never {},
        }
        let mut rows = totals.rows;
        for row in &mut rows {
            row.recorded = row.calls;
        }
        if let Some(stats) = stats {
            for counted in &stats.calls {
                let at = match totals.index.get(&counted.code) {
                    Some(&at) => at,
                    None if counted.calls > 0 => {
                        totals.index.insert(counted.code, rows.len());
                        rows.push(Row::new(counted.code));
                        rows.len() - 1
                    }
                    None => continue,
                };
                if let Some(row) = rows.get_mut(at) {
                    row.calls = counted.calls;
                    row.recorded = counted.recorded;
                }
            }
        }
        sort(&mut rows);
        Self { rows }
    }
}

/// Longest total time first (then self time, calls, code id).
fn sort(rows: &mut [Row]) {
    rows.sort_by(|a, b| {
        (b.total_ns, b.self_ns, b.calls)
            .cmp(&(a.total_ns, a.self_ns, a.calls))
            .then(a.code.cmp(&b.code))
    });
}

/// Accumulates rows while the walker opens and closes spans.
#[derive(Default)]
struct Totals {
    rows: Vec<Row>,
    /// Code id to row.
    index: IdMap<usize>,
    /// Per thread: the open spans.
    stacks: Vec<Vec<Open>>,
    /// Per thread, per row: how many spans of that row are open.
    active: Vec<Vec<u32>>,
}

struct Open {
    row: usize,
    start_ns: u64,
    /// Summed duration of the spans closed directly inside this one.
    children_ns: u64,
}

impl SpanSink<'_> for Totals {
    type Error = Infallible;

    fn thread(&mut self, _thread: Thread, _first_ns: u64) -> Result<(), Infallible> {
        self.stacks.push(Vec::new());
        self.active.push(Vec::new());
        Ok(())
    }

    fn open(&mut self, thread: Thread, span: &Opened<'_>) -> Result<(), Infallible> {
        let rows = &mut self.rows;
        let row = *self.index.entry(span.code).or_insert_with(|| {
            rows.push(Row::new(span.code));
            rows.len() - 1
        });
        if !span.resumed {
            if let Some(r) = self.rows.get_mut(row) {
                r.calls += 1;
            }
        }
        if let Some(active) = self.active.get_mut(thread.index) {
            if active.len() <= row {
                active.resize(row + 1, 0);
            }
            if let Some(count) = active.get_mut(row) {
                *count += 1;
            }
        }
        if let Some(stack) = self.stacks.get_mut(thread.index) {
            stack.push(Open {
                row,
                start_ns: span.start_ns,
                children_ns: 0,
            });
        }
        Ok(())
    }

    fn close(
        &mut self,
        thread: Thread,
        _span: &Opened<'_>,
        end: &Closed<'_>,
    ) -> Result<(), Infallible> {
        let Some(stack) = self.stacks.get_mut(thread.index) else {
            return Ok(());
        };
        let Some(open) = stack.pop() else {
            return Ok(());
        };
        let duration = end.end_ns.saturating_sub(open.start_ns);
        if let Some(parent) = stack.last_mut() {
            parent.children_ns = parent.children_ns.saturating_add(duration);
        }
        let outermost = match self
            .active
            .get_mut(thread.index)
            .and_then(|a| a.get_mut(open.row))
        {
            Some(count) => {
                *count = count.saturating_sub(1);
                *count == 0
            }
            None => true,
        };
        if let Some(row) = self.rows.get_mut(open.row) {
            if outermost {
                row.total_ns = row.total_ns.saturating_add(duration);
            }
            row.self_ns = row
                .self_ns
                .saturating_add(duration.saturating_sub(open.children_ns));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::spans::tests::{call, ret, trace};
    use crate::trace::{CodeCalls, Event};

    fn rows(events: &[Event], stats: Option<&RunStats>) -> Vec<(u32, u64, u64, u64, u64)> {
        let reader = trace(events);
        Profile::build(reader.events(), stats)
            .rows
            .iter()
            .map(|r| (r.code, r.calls, r.recorded, r.total_ns, r.self_ns))
            .collect()
    }

    #[test]
    fn nested_calls() {
        // f0 [0, 100] calls f1 [10, 40] and f2 [50, 60]; f1 calls f2 [20, 25].
        let events = [
            call(1, 0, 0),
            call(1, 1, 10),
            call(1, 2, 20),
            ret(1, 2, 25),
            ret(1, 1, 40),
            call(1, 2, 50),
            ret(1, 2, 60),
            ret(1, 0, 100),
        ];
        assert_eq!(
            rows(&events, None),
            [(0, 1, 1, 100, 60), (1, 1, 1, 30, 25), (2, 2, 2, 15, 15)]
        );
    }

    #[test]
    fn recursion_counts_time_once() {
        // f0 [0, 100] -> f0 [10, 90] -> f0 [20, 80]; f1 [30, 40] inside the innermost.
        let events = [
            call(1, 0, 0),
            call(1, 0, 10),
            call(1, 0, 20),
            call(1, 1, 30),
            ret(1, 1, 40),
            ret(1, 0, 80),
            ret(1, 0, 90),
            ret(1, 0, 100),
        ];
        assert_eq!(rows(&events, None), [(0, 3, 3, 100, 90), (1, 1, 1, 10, 10)]);
    }

    #[test]
    fn threads_are_accounted_separately() {
        // The same function running on two threads at once is not recursion.
        let events = [call(1, 0, 0), call(2, 0, 5), ret(1, 0, 10), ret(2, 0, 25)];
        assert_eq!(rows(&events, None), [(0, 2, 2, 30, 30)]);
    }

    #[test]
    fn generator_stretches_add_time_not_calls() {
        // f0 [0, 100] runs generator f1: [10, 20] then resumed [50, 55].
        let events = [
            call(1, 0, 0),
            call(1, 1, 10),
            Event::Yield {
                code: 1,
                thread: 1,
                t_ns: 20,
                value: None,
            },
            Event::Resume {
                code: 1,
                thread: 1,
                t_ns: 50,
            },
            ret(1, 1, 55),
            ret(1, 0, 100),
        ];
        assert_eq!(rows(&events, None), [(0, 1, 1, 100, 85), (1, 1, 1, 15, 15)]);
    }

    #[test]
    fn run_stats_give_exact_counts() {
        let events = [call(1, 0, 0), ret(1, 0, 10), call(1, 1, 20), ret(1, 1, 21)];
        let stats = RunStats {
            calls: vec![
                CodeCalls {
                    code: 0,
                    calls: 1,
                    recorded: 1,
                },
                CodeCalls {
                    code: 1,
                    calls: 500,
                    recorded: 1,
                },
                CodeCalls {
                    code: 2,
                    calls: 7,
                    recorded: 0,
                },
                CodeCalls {
                    code: 3,
                    calls: 0,
                    recorded: 0,
                },
            ],
            lost_events: 0,
        };
        let reader = trace(&events);
        let profile = Profile::build(reader.events(), Some(&stats));
        let got: Vec<_> = profile
            .rows
            .iter()
            .map(|r| (r.code, r.calls, r.recorded, r.is_partial()))
            .collect();
        assert_eq!(got, [(0, 1, 1, false), (1, 500, 1, true), (2, 7, 0, true)]);
    }
}
