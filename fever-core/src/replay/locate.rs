//! [`locate`]: the start call of a segment (its function's N-th call, in the order calls
//! started, across threads and across edited versions of the function) and, within it, the end
//! call (the end function's M-th call that started inside the start call on its thread, the
//! start call itself included), with what each did when recorded. Only the recorded program's
//! own calls count: a replay runs in a fork of the program, and the calls of its child processes
//! (recorded on their own threads, `trace::thread_process`) happened in processes it cannot fork.

use crate::analysis::spans::{self, Closed, Opened, Outcome, Snapshot, SpanSink, Thread};
use crate::trace::ids::IdSet;
use crate::trace::{thread_process, TraceReader};

use super::{same_function, CallRef};

/// A recorded call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallSpan<'a> {
    /// Code id of the function (a function edited while it ran has one per version).
    pub code: u32,
    /// `threading.get_ident()` of its thread.
    pub thread: u64,
    pub start_ns: u64,
    pub end_ns: u64,
    /// Its arguments' snapshot, when recorded.
    pub args: Snapshot<'a>,
    /// How its first span ended (a generator's first `Suspended` at its first yield).
    pub outcome: Outcome<'a>,
}

/// The two calls of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located<'a> {
    pub start: CallSpan<'a>,
    /// `None` when no call of the end function started within the start call's recorded span
    /// (for a generator, only its first span is searched).
    pub end: Option<CallSpan<'a>>,
}

/// Why a segment cannot be found in a trace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocateError {
    /// No code of that name ran; `similar` lists recorded functions whose name ends alike.
    #[error("{name} was never called{}", hint(similar))]
    Unknown { name: String, similar: Vec<String> },
    /// The function ran in child processes of the program only (`pids`, `calls` calls).
    #[error(
        "{name} ran only in child processes ({}; {calls} call{}), and a replay re-runs calls of \
         the program's own process",
        pid_list(pids),
        if *calls == 1 { "" } else { "s" }
    )]
    OnlyInChildren {
        name: String,
        calls: u32,
        pids: Vec<u32>,
    },
    /// The function ran fewer times than asked.
    #[error("{} has no call #{asked}: it was called {calls} time{} (as far as recorded)", name, if *calls == 1 { "" } else { "s" })]
    NoSuchCall {
        name: String,
        asked: u32,
        calls: u32,
    },
}

/// `pid 7` or `pids 7, 9`.
fn pid_list(pids: &[u32]) -> String {
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    format!(
        "pid{} {}",
        if pids.len() == 1 { "" } else { "s" },
        list.join(", ")
    )
}

fn hint(similar: &[String]) -> String {
    if similar.is_empty() {
        String::new()
    } else {
        format!(
            " (recorded functions with that name: {})",
            similar.join(", ")
        )
    }
}

/// Finds `start` and `end` in `trace`; see the [module docs](self). `script_module` is the
/// script's file name without `.py` when the program is a script (it ran as `__main__`).
pub fn locate<'a>(
    trace: &'a TraceReader,
    start: &CallRef,
    end: &CallRef,
    script_module: Option<&str>,
) -> Result<Located<'a>, LocateError> {
    let start_codes = codes_named(trace, &start.function, script_module)?;
    let end_codes = codes_named(trace, &end.function, script_module)?;
    let mut sink = Collect {
        start_codes: &start_codes,
        end_codes: &end_codes,
        starts: Vec::new(),
        ends: Vec::new(),
    };
    match spans::walk(trace.events(), &mut sink) {
        Ok(()) => {}
        Err(never) => match never {},
    }
    let Collect {
        mut starts,
        mut ends,
        ..
    } = sink;
    let in_children: Vec<u32> = starts
        .iter()
        .filter_map(|s| thread_process(s.thread).map(|(pid, _)| pid))
        .collect();
    starts.retain(|s| thread_process(s.thread).is_none());
    if starts.is_empty() && !in_children.is_empty() {
        let calls = u32::try_from(in_children.len()).unwrap_or(u32::MAX);
        let mut pids = in_children;
        pids.sort_unstable();
        pids.dedup();
        return Err(LocateError::OnlyInChildren {
            name: start.function.clone(),
            calls,
            pids,
        });
    }
    starts.sort_by_key(|s| s.start_ns);
    ends.sort_by_key(|s| s.start_ns);
    let calls = u32::try_from(starts.len()).unwrap_or(u32::MAX);
    let Some(first) = starts.get(start.number as usize - 1).copied() else {
        return Err(LocateError::NoSuchCall {
            name: start.function.clone(),
            asked: start.number,
            calls,
        });
    };
    let end = ends
        .into_iter()
        .filter(|e| {
            e.thread == first.thread && e.start_ns >= first.start_ns && e.end_ns <= first.end_ns
        })
        .nth(end.number as usize - 1);
    Ok(Located { start: first, end })
}

/// The ids of the codes recorded as `name` (`module.qualname`).
fn codes_named(
    trace: &TraceReader,
    name: &str,
    script_module: Option<&str>,
) -> Result<IdSet, LocateError> {
    let codes: IdSet = trace
        .codes()
        .iter()
        .filter(|c| same_function(&format!("{}.{}", c.module, c.qualname), name, script_module))
        .map(|c| c.id)
        .collect();
    if codes.is_empty() {
        let last = name.rsplit('.').next().unwrap_or(name);
        let mut similar: Vec<String> = trace
            .codes()
            .iter()
            .filter(|c| c.qualname.rsplit('.').next() == Some(last))
            .map(|c| format!("{}.{}", c.module, c.qualname))
            .collect();
        similar.sort();
        similar.dedup();
        return Err(LocateError::Unknown {
            name: name.to_owned(),
            similar,
        });
    }
    Ok(codes)
}

/// Keeps the calls (not the resumed spans) of the start and end functions.
struct Collect<'c, 'a> {
    start_codes: &'c IdSet,
    end_codes: &'c IdSet,
    starts: Vec<CallSpan<'a>>,
    ends: Vec<CallSpan<'a>>,
}

impl<'a> SpanSink<'a> for Collect<'_, 'a> {
    type Error = std::convert::Infallible;

    fn open(&mut self, _thread: Thread, _span: &Opened<'a>) -> Result<(), Self::Error> {
        Ok(())
    }

    fn close(
        &mut self,
        thread: Thread,
        span: &Opened<'a>,
        end: &Closed<'a>,
    ) -> Result<(), Self::Error> {
        if span.resumed {
            return Ok(());
        }
        let call = CallSpan {
            code: span.code,
            thread: thread.ident,
            start_ns: span.start_ns,
            end_ns: end.end_ns,
            args: span.args,
            outcome: end.outcome,
        };
        if self.start_codes.contains(&span.code) {
            self.starts.push(call);
        }
        if self.end_codes.contains(&span.code) {
            self.ends.push(call);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::spans::tests::{call, ret, trace};

    fn r(text: &str) -> CallRef {
        CallRef::parse(text).unwrap()
    }

    #[test]
    fn the_nth_start_and_the_end_inside_it() {
        // f0 calls f1 twice; f0 runs twice (the second time on another thread, earlier).
        let t = trace(&[
            call(1, 0, 100),
            call(1, 1, 110),
            ret(1, 1, 120),
            call(1, 1, 130),
            ret(1, 1, 140),
            ret(1, 0, 150),
            call(2, 0, 50),
            call(2, 1, 60),
            ret(2, 1, 70),
            ret(2, 0, 80),
        ]);
        let found = locate(&t, &r("m.f0#2"), &r("m.f1#2"), None).unwrap();
        assert_eq!((found.start.thread, found.start.start_ns), (1, 100));
        assert_eq!(found.end.unwrap().start_ns, 130);
        let found = locate(&t, &r("m.f0"), &r("m.f1"), None).unwrap();
        assert_eq!((found.start.thread, found.end.unwrap().start_ns), (2, 60));
        // The end defaults to the start itself.
        let found = locate(&t, &r("m.f0#2"), &r("m.f0"), None).unwrap();
        assert_eq!(found.end, Some(found.start));
        // An end call that does not happen within the start call.
        assert_eq!(locate(&t, &r("m.f1"), &r("m.f0"), None).unwrap().end, None);
        assert_eq!(
            locate(&t, &r("m.f0"), &r("m.f1#2"), None).unwrap().end,
            None
        );
    }

    #[test]
    fn unknown_functions_and_missing_calls() {
        let t = trace(&[call(1, 0, 100), ret(1, 0, 150)]);
        let err = locate(&t, &r("m.f0#3"), &r("m.f0"), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "m.f0 has no call #3: it was called 1 time (as far as recorded)"
        );
        let err = locate(&t, &r("other.f0"), &r("m.f0"), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "other.f0 was never called (recorded functions with that name: m.f0)"
        );
        let err = locate(&t, &r("m.f0"), &r("m.nope"), None).unwrap_err();
        assert_eq!(err.to_string(), "m.nope was never called");
    }

    #[test]
    fn calls_of_child_processes_are_not_counted() {
        let child = crate::trace::child_thread(4242, 0);
        // f0 runs in a child first, then in the program; f1 only in the child.
        let t = trace(&[
            call(child, 0, 10),
            call(child, 1, 11),
            ret(child, 1, 12),
            ret(child, 0, 20),
            call(1, 0, 100),
            ret(1, 0, 150),
        ]);
        let found = locate(&t, &r("m.f0"), &r("m.f0"), None).unwrap();
        assert_eq!((found.start.thread, found.start.start_ns), (1, 100));
        let err = locate(&t, &r("m.f0#2"), &r("m.f0"), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "m.f0 has no call #2: it was called 1 time (as far as recorded)"
        );
        let err = locate(&t, &r("m.f1"), &r("m.f1"), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "m.f1 ran only in child processes (pid 4242; 1 call), and a replay re-runs calls of \
             the program's own process"
        );
    }
}
