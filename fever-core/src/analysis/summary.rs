//! [`Summary`]: the facts of a trace's one-line summary, from its run statistics and the time
//! range the reader found while validating (a pass over the events only without statistics).

use std::collections::HashSet;

use crate::trace::{EventKind, TraceReader};

/// How much a trace holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Calls made: exact from the run statistics when the trace has them, else the calls
    /// recorded.
    pub calls: u64,
    /// Functions called at least once.
    pub functions: usize,
    /// Earliest and latest event timestamp, if there are events.
    pub span_ns: Option<(u64, u64)>,
}

impl Summary {
    /// Summarizes `reader`'s trace.
    pub fn of(reader: &TraceReader) -> Self {
        let span_ns = reader.time_range();
        if let Some(stats) = reader.stats() {
            return Self {
                calls: stats.calls.iter().map(|c| c.calls).sum(),
                functions: stats.calls.iter().filter(|c| c.calls > 0).count(),
                span_ns,
            };
        }
        let mut calls = 0;
        let mut functions = HashSet::new();
        for event in reader.events() {
            if event.kind() == EventKind::Call {
                calls += 1;
                functions.insert(event.code());
            }
        }
        Self {
            calls,
            functions: functions.len(),
            span_ns,
        }
    }

    /// Time from the first event to the last.
    pub fn duration_ns(&self) -> u64 {
        self.span_ns.map_or(0, |(first, last)| last - first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::spans::tests::{call, ret, trace};

    #[test]
    fn counts_recorded_calls_without_stats() {
        let reader = trace(&[
            call(1, 0, 50),
            call(2, 1, 20),
            ret(2, 1, 30),
            call(1, 0, 60),
            ret(1, 0, 90),
        ]);
        assert_eq!(
            Summary::of(&reader),
            Summary {
                calls: 3,
                functions: 2,
                span_ns: Some((20, 90)),
            }
        );
        assert_eq!(Summary::of(&reader).duration_ns(), 70);
        assert_eq!(Summary::of(&trace(&[])).duration_ns(), 0);
    }
}
