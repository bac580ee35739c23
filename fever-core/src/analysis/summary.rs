//! [`Summary`]: the facts of a trace's one-line summary, from its run statistics and the time
//! range the reader found while validating (a pass over the events only without statistics).
//! A `fever record --profile-only` trace has no events: its duration is the longest inclusive
//! time of its profile, the module body of the script (which the profiler times like any other
//! code of the project), i.e. the run.

use std::collections::HashSet;

use super::profile::Profile;
use crate::settings::is_profile_only;
use crate::trace::{EventKind, TraceReader};

/// How much a trace holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Calls made: exact from the run statistics when the trace has them, else the calls
    /// recorded.
    pub calls: u64,
    /// Functions called at least once.
    pub functions: usize,
    /// Time the run took: from the first event to the last, or the profile's longest total
    /// (see the [module docs](self)); 0 without either.
    pub duration_ns: u64,
}

impl Summary {
    /// Summarizes `reader`'s trace.
    pub fn of(reader: &TraceReader) -> Self {
        let duration_ns = if is_profile_only(reader.header()) {
            Profile::of_trace(reader)
                .and_then(|profile| profile.rows.iter().map(|row| row.total_ns).max())
                .unwrap_or(0)
        } else {
            reader
                .time_range()
                .map_or(0, |(first, last)| last.saturating_sub(first))
        };
        if let Some(stats) = reader.stats() {
            return Self {
                calls: stats.calls.iter().map(|c| c.calls).sum(),
                functions: stats.calls.iter().filter(|c| c.calls > 0).count(),
                duration_ns,
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
            duration_ns,
        }
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
                duration_ns: 70,
            }
        );
        assert_eq!(Summary::of(&trace(&[])).duration_ns, 0);
    }

    #[test]
    fn a_profile_only_trace_lasts_as_long_as_its_longest_function() {
        use crate::analysis::profile::{Row, RECORD_PROFILE};
        use crate::trace::{CodeCalls, CodeInfo, RunStats, TraceHeader, TraceWriter};
        let header = TraceHeader {
            options: vec![("profile_only".into(), "true".into())],
            ..TraceHeader::default()
        };
        let mut writer = TraceWriter::new(Vec::new(), &header).unwrap();
        let row = |code, calls, total_ns| Row {
            code,
            calls,
            recorded: calls,
            total_ns,
            self_ns: total_ns / 2,
        };
        for id in 0..2 {
            writer
                .add_code(CodeInfo {
                    id,
                    ..CodeInfo::default()
                })
                .unwrap();
        }
        let profile = Profile::counted([row(0, 1, 2_500_000), row(1, 40, 900_000)]);
        let calls = profile.rows.iter().map(|row| CodeCalls {
            code: row.code,
            calls: row.calls,
            recorded: row.calls,
        });
        writer
            .write_stats(&RunStats {
                calls: calls.collect(),
                lost_events: 0,
            })
            .unwrap();
        writer
            .write_record(RECORD_PROFILE, &profile.encode())
            .unwrap();
        let reader = TraceReader::from_bytes(&writer.finish().unwrap()).unwrap();
        assert_eq!(
            Summary::of(&reader),
            Summary {
                calls: 41,
                functions: 2,
                duration_ns: 2_500_000,
            }
        );
    }
}
