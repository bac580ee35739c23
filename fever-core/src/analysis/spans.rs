//! [`Walker`]: turns the events of a trace into well-nested spans, thread by thread.
//!
//! A span is one stretch of a function running on a thread: from a call (or a generator's
//! resume) to its return, unwind or yield. Events of one thread arrive in order; threads
//! interleave. These rules accept any event sequence (lost events, a trace cut short, a foreign
//! writer) and always produce spans that nest properly within each thread:
//! - `Call` opens a span. `Resume` opens a span marked resumed under whatever runs at that
//!   moment, so each stretch of a generator appears where it ran.
//! - `Return`, `Unwind` and `Yield` close the innermost open span of their code. Spans opened
//!   above it (their own ends were lost) close at the same instant as unfinished. An end that
//!   matches no open span is ignored.
//! - `Raise` marks the innermost open span of its code with its exception: an `Unwind` of that
//!   span reports it. An `Unwind` of a span that raised nothing itself reports the thread's
//!   latest exception, the one propagating through it.
//! - Timestamps never go backwards within a thread (an earlier one is clamped to the latest
//!   seen), so no duration is negative and children lie within their parents.
//! - At the end, spans still open close at their thread's last timestamp, as unfinished.
//!
//! A [`SpanSink`] receives the spans as they open and close; the walker keeps only the open
//! spans of each thread, so sinks decide what to keep (a tree, totals, or nothing: a stream).

use std::collections::HashMap;

use crate::trace::ids::IdMap;
use crate::trace::{EventKind, EventRef, MUTATED_ARGS};

/// An optional snapshot (arguments, value or exception), borrowed from the trace.
pub type Snapshot<'a> = Option<&'a [u8]>;

/// A thread of the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thread {
    /// Position in the order threads first appear, from 0.
    pub index: usize,
    /// The thread's `threading.get_ident()`.
    pub ident: u64,
}

/// The start of a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened<'a> {
    /// Code id of the function.
    pub code: u32,
    /// When the span started (clamped, see the module docs).
    pub start_ns: u64,
    /// The call's argument snapshot; `None` when not recorded, and for resumed spans.
    pub args: Snapshot<'a>,
    /// The span continues a suspended generator or coroutine.
    pub resumed: bool,
}

/// How a span ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// The function returned this value.
    Returned(Snapshot<'a>),
    /// The function exited by this exception.
    Raised(Snapshot<'a>),
    /// The generator or coroutine yielded this value and was suspended.
    Suspended(Snapshot<'a>),
    /// The end was not recorded: lost, or the trace ends first.
    Unfinished,
}

/// The end of a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed<'a> {
    /// When the span ended, never before its start.
    pub end_ns: u64,
    /// How it ended.
    pub outcome: Outcome<'a>,
    /// An argument changed during the call ([`MUTATED_ARGS`]).
    pub mutated_args: bool,
}

/// Receives spans from a [`Walker`]. Within a thread, spans open and close like a stack: every
/// `close` is of the innermost span opened and not yet closed on that thread.
pub trait SpanSink<'a> {
    /// What stops the walk (`std::convert::Infallible` for sinks that cannot fail).
    type Error;

    /// A thread's first event, before any of its spans.
    fn thread(&mut self, thread: Thread, first_ns: u64) -> Result<(), Self::Error> {
        let _ = (thread, first_ns);
        Ok(())
    }

    /// A span opened on `thread`.
    fn open(&mut self, thread: Thread, span: &Opened<'a>) -> Result<(), Self::Error>;

    /// The innermost open span of `thread` closed.
    fn close(
        &mut self,
        thread: Thread,
        span: &Opened<'a>,
        end: &Closed<'a>,
    ) -> Result<(), Self::Error>;
}

/// Feeds every event of `events` to `sink` through a [`Walker`], then closes what is still
/// open. Stops at the sink's first error.
pub fn walk<'a, S: SpanSink<'a>>(
    events: impl IntoIterator<Item = EventRef<'a>>,
    sink: &mut S,
) -> Result<(), S::Error> {
    let mut walker = Walker::default();
    for event in events {
        walker.event(event, sink)?;
    }
    walker.finish(sink)
}

/// The open spans of every thread; see the [module docs](self).
#[derive(Debug, Default)]
pub struct Walker<'a> {
    threads: Vec<ThreadState<'a>>,
    by_ident: HashMap<u64, usize>,
    /// The thread of the previous event: events come in runs of one thread.
    last: Option<(u64, usize)>,
}

#[derive(Debug)]
struct ThreadState<'a> {
    ident: u64,
    last_ns: u64,
    stack: Vec<Frame<'a>>,
    /// How many spans of each code are in `stack`, so an end that matches none is found out
    /// without searching the stack (which keeps any event sequence linear in time).
    open_codes: IdMap<usize>,
    /// The latest exception raised on this thread.
    exception: Snapshot<'a>,
}

#[derive(Debug)]
struct Frame<'a> {
    span: Opened<'a>,
    /// The exception of the latest `Raise` in this span, if there was one.
    raised: Option<Snapshot<'a>>,
}

impl<'a> Walker<'a> {
    /// Applies one event.
    pub fn event<S: SpanSink<'a>>(
        &mut self,
        event: EventRef<'a>,
        sink: &mut S,
    ) -> Result<(), S::Error> {
        let index = self.thread_index(event.thread(), event.t_ns(), sink)?;
        let Some(state) = self.threads.get_mut(index) else {
            return Ok(());
        };
        let thread = Thread {
            index,
            ident: state.ident,
        };
        let t = event.t_ns().max(state.last_ns);
        state.last_ns = t;
        let code = event.code();
        let mutated = event.flags() & MUTATED_ARGS != 0;
        match event.kind() {
            EventKind::Call => state.open(thread, code, t, event.snapshot(), false, sink),
            EventKind::Resume => state.open(thread, code, t, None, true, sink),
            EventKind::Raise => {
                state.exception = event.snapshot();
                let innermost = state.innermost(code);
                if let Some(frame) = innermost.and_then(|at| state.stack.get_mut(at)) {
                    frame.raised = Some(event.snapshot());
                }
                Ok(())
            }
            EventKind::Return => {
                let value = event.snapshot();
                state.close(thread, code, t, mutated, |_| Outcome::Returned(value), sink)
            }
            EventKind::Yield => {
                let value = event.snapshot();
                state.close(thread, code, t, false, |_| Outcome::Suspended(value), sink)
            }
            EventKind::Unwind => {
                let propagating = state.exception;
                let outcome =
                    |frame: &Frame<'a>| Outcome::Raised(frame.raised.unwrap_or(propagating));
                state.close(thread, code, t, mutated, outcome, sink)
            }
        }
    }

    /// Closes every span still open, innermost first, at its thread's last timestamp.
    pub fn finish<S: SpanSink<'a>>(mut self, sink: &mut S) -> Result<(), S::Error> {
        for (index, state) in self.threads.iter_mut().enumerate() {
            let thread = Thread {
                index,
                ident: state.ident,
            };
            while let Some(frame) = state.pop() {
                let end = Closed {
                    end_ns: state.last_ns,
                    outcome: Outcome::Unfinished,
                    mutated_args: false,
                };
                sink.close(thread, &frame.span, &end)?;
            }
        }
        Ok(())
    }

    /// The index of thread `ident`, announcing it to `sink` on its first event.
    fn thread_index<S: SpanSink<'a>>(
        &mut self,
        ident: u64,
        t_ns: u64,
        sink: &mut S,
    ) -> Result<usize, S::Error> {
        if let Some((last, index)) = self.last {
            if last == ident {
                return Ok(index);
            }
        }
        let index = if let Some(&index) = self.by_ident.get(&ident) {
            index
        } else {
            let index = self.threads.len();
            self.by_ident.insert(ident, index);
            self.threads.push(ThreadState {
                ident,
                last_ns: t_ns,
                stack: Vec::new(),
                open_codes: IdMap::default(),
                exception: None,
            });
            sink.thread(Thread { index, ident }, t_ns)?;
            index
        };
        self.last = Some((ident, index));
        Ok(index)
    }
}

impl<'a> ThreadState<'a> {
    fn open<S: SpanSink<'a>>(
        &mut self,
        thread: Thread,
        code: u32,
        t_ns: u64,
        args: Snapshot<'a>,
        resumed: bool,
        sink: &mut S,
    ) -> Result<(), S::Error> {
        let span = Opened {
            code,
            start_ns: t_ns,
            args,
            resumed,
        };
        sink.open(thread, &span)?;
        *self.open_codes.entry(code).or_default() += 1;
        self.stack.push(Frame { span, raised: None });
        Ok(())
    }

    fn pop(&mut self) -> Option<Frame<'a>> {
        let frame = self.stack.pop()?;
        if let Some(count) = self.open_codes.get_mut(&frame.span.code) {
            *count -= 1;
            if *count == 0 {
                self.open_codes.remove(&frame.span.code);
            }
        }
        Some(frame)
    }

    /// The innermost open span of `code`, if any.
    fn innermost(&self, code: u32) -> Option<usize> {
        if !self.open_codes.contains_key(&code) {
            return None;
        }
        self.stack.iter().rposition(|f| f.span.code == code)
    }

    /// Closes the innermost open span of `code` with the outcome `outcome` gives it, after
    /// closing the spans above it as unfinished; does nothing if no span of `code` is open.
    fn close<S: SpanSink<'a>>(
        &mut self,
        thread: Thread,
        code: u32,
        t_ns: u64,
        mutated_args: bool,
        outcome: impl FnOnce(&Frame<'a>) -> Outcome<'a>,
        sink: &mut S,
    ) -> Result<(), S::Error> {
        let Some(at) = self.innermost(code) else {
            return Ok(());
        };
        while self.stack.len() > at + 1 {
            let Some(frame) = self.pop() else { break };
            let end = Closed {
                end_ns: t_ns,
                outcome: Outcome::Unfinished,
                mutated_args: false,
            };
            sink.close(thread, &frame.span, &end)?;
        }
        let Some(frame) = self.pop() else {
            return Ok(());
        };
        let end = Closed {
            end_ns: t_ns,
            outcome: outcome(&frame),
            mutated_args,
        };
        sink.close(thread, &frame.span, &end)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::trace::{CodeInfo, Event, TraceHeader, TraceReader, TraceWriter};
    use proptest::prelude::*;
    use std::convert::Infallible;

    /// A validated trace holding `events`, with codes 0..8 defined.
    pub(crate) fn trace(events: &[Event]) -> TraceReader {
        let mut writer = TraceWriter::new(Vec::new(), &TraceHeader::default()).unwrap();
        for id in 0..8 {
            writer
                .add_code(CodeInfo {
                    id,
                    module: "m".into(),
                    qualname: format!("f{id}"),
                    file: "m.py".into(),
                    first_line: id + 1,
                    code_hash: 0,
                })
                .unwrap();
        }
        for event in events {
            writer.write_event(event).unwrap();
        }
        TraceReader::from_bytes(&writer.finish().unwrap()).unwrap()
    }

    pub(crate) fn call(thread: u64, code: u32, t_ns: u64) -> Event {
        Event::Call {
            code,
            thread,
            t_ns,
            args: None,
        }
    }

    pub(crate) fn ret(thread: u64, code: u32, t_ns: u64) -> Event {
        Event::Return {
            code,
            flags: 0,
            thread,
            t_ns,
            value: None,
        }
    }

    /// Everything a sink sees, as text, checking the stack discipline on the way.
    #[derive(Default)]
    struct Log {
        lines: Vec<String>,
        stacks: HashMap<usize, Vec<(u32, u64)>>,
    }

    impl SpanSink<'_> for Log {
        type Error = Infallible;

        fn thread(&mut self, thread: Thread, first_ns: u64) -> Result<(), Infallible> {
            self.lines.push(format!(
                "thread {} {} @{first_ns}",
                thread.index, thread.ident
            ));
            Ok(())
        }

        fn open(&mut self, thread: Thread, span: &Opened<'_>) -> Result<(), Infallible> {
            let stack = self.stacks.entry(thread.index).or_default();
            if let Some(&(_, parent_start)) = stack.last() {
                assert!(parent_start <= span.start_ns);
            }
            stack.push((span.code, span.start_ns));
            let resumed = if span.resumed { " resumed" } else { "" };
            self.lines.push(format!(
                "{} open f{} @{}{resumed}",
                thread.ident, span.code, span.start_ns
            ));
            Ok(())
        }

        fn close(
            &mut self,
            thread: Thread,
            span: &Opened<'_>,
            end: &Closed<'_>,
        ) -> Result<(), Infallible> {
            let top = self.stacks.get_mut(&thread.index).and_then(Vec::pop);
            assert_eq!(top, Some((span.code, span.start_ns)));
            assert!(end.end_ns >= span.start_ns);
            let outcome = match end.outcome {
                Outcome::Returned(v) => format!("returned {v:?}"),
                Outcome::Raised(e) => format!("raised {e:?}"),
                Outcome::Suspended(v) => format!("suspended {v:?}"),
                Outcome::Unfinished => "unfinished".into(),
            };
            let mutated = if end.mutated_args { " mutated" } else { "" };
            self.lines.push(format!(
                "{} close f{} @{} {outcome}{mutated}",
                thread.ident, span.code, end.end_ns
            ));
            Ok(())
        }
    }

    fn log(events: &[Event]) -> Vec<String> {
        let reader = trace(events);
        let mut sink = Log::default();
        match walk(reader.events(), &mut sink) {
            Ok(()) => {}
            Err(never) => match never {},
        }
        assert!(sink.stacks.values().all(Vec::is_empty), "spans left open");
        sink.lines
    }

    #[test]
    fn nested_calls_on_two_threads() {
        let lines = log(&[
            call(1, 0, 10),
            call(2, 1, 11),
            call(1, 2, 12),
            Event::Return {
                code: 2,
                flags: MUTATED_ARGS,
                thread: 1,
                t_ns: 15,
                value: Some(vec![7]),
            },
            ret(2, 1, 16),
            ret(1, 0, 20),
        ]);
        assert_eq!(
            lines,
            [
                "thread 0 1 @10",
                "1 open f0 @10",
                "thread 1 2 @11",
                "2 open f1 @11",
                "1 open f2 @12",
                "1 close f2 @15 returned Some([7]) mutated",
                "2 close f1 @16 returned None",
                "1 close f0 @20 returned None",
            ]
        );
    }

    #[test]
    fn generators_suspend_and_resume_where_they_run() {
        let lines = log(&[
            call(1, 0, 0),
            call(1, 1, 1),
            Event::Yield {
                code: 1,
                thread: 1,
                t_ns: 2,
                value: Some(vec![1]),
            },
            call(1, 2, 3),
            Event::Resume {
                code: 1,
                thread: 1,
                t_ns: 4,
            },
            ret(1, 1, 5),
            ret(1, 2, 6),
            ret(1, 0, 7),
        ]);
        assert_eq!(
            lines[1..],
            [
                "1 open f0 @0",
                "1 open f1 @1",
                "1 close f1 @2 suspended Some([1])",
                "1 open f2 @3",
                "1 open f1 @4 resumed",
                "1 close f1 @5 returned None",
                "1 close f2 @6 returned None",
                "1 close f0 @7 returned None",
            ]
        );
    }

    #[test]
    fn an_exception_unwinds_two_frames() {
        let raise = |code, t_ns, exception| Event::Raise {
            code,
            thread: 1,
            t_ns,
            exception,
        };
        let unwind = |code, t_ns| Event::Unwind {
            code,
            flags: 0,
            thread: 1,
            t_ns,
        };
        let lines = log(&[
            call(1, 0, 0),
            call(1, 1, 1),
            call(1, 2, 2),
            raise(2, 3, Some(vec![9])),
            unwind(2, 4),
            unwind(1, 5),
            raise(0, 6, Some(vec![8])),
            ret(1, 0, 7),
        ]);
        assert_eq!(
            lines[4..],
            [
                "1 close f2 @4 raised Some([9])",
                "1 close f1 @5 raised Some([9])",
                "1 close f0 @7 returned None",
            ]
        );
    }

    #[test]
    fn lost_ends_close_as_unfinished_and_stray_ends_are_ignored() {
        let lines = log(&[
            ret(1, 3, 0),
            call(1, 0, 10),
            call(1, 1, 11),
            call(1, 2, 12),
            ret(1, 0, 13),
            ret(1, 0, 14),
            call(1, 4, 20),
            call(1, 5, 5),
            ret(1, 7, 30),
        ]);
        assert_eq!(
            lines,
            [
                "thread 0 1 @0",
                "1 open f0 @10",
                "1 open f1 @11",
                "1 open f2 @12",
                "1 close f2 @13 unfinished",
                "1 close f1 @13 unfinished",
                "1 close f0 @13 returned None",
                "1 open f4 @20",
                // Time never goes backwards; the end of the trace closes what is open.
                "1 open f5 @20",
                "1 close f5 @30 unfinished",
                "1 close f4 @30 unfinished",
            ]
        );
    }

    pub(crate) fn any_event() -> impl Strategy<Value = Event> {
        let snap = proptest::option::of(proptest::collection::vec(any::<u8>(), 0..4));
        (0..6u8, 0..3u64, 0..8u32, 0..1000u64, snap, 0..2u32).prop_map(
            |(kind, thread, code, t_ns, snapshot, flags)| match kind {
                0 => Event::Call {
                    code,
                    thread,
                    t_ns,
                    args: snapshot,
                },
                1 => Event::Return {
                    code,
                    flags,
                    thread,
                    t_ns,
                    value: snapshot,
                },
                2 => Event::Yield {
                    code,
                    thread,
                    t_ns,
                    value: snapshot,
                },
                3 => Event::Resume { code, thread, t_ns },
                4 => Event::Raise {
                    code,
                    thread,
                    t_ns,
                    exception: snapshot,
                },
                _ => Event::Unwind {
                    code,
                    flags,
                    thread,
                    t_ns,
                },
            },
        )
    }

    proptest! {
        /// Any sequence gives spans that nest per thread, end after they start, and all close;
        /// `Log` asserts the stack discipline on every call.
        #[test]
        fn any_event_sequence_gives_well_nested_spans(
            events in proptest::collection::vec(any_event(), 0..120)
        ) {
            let lines = log(&events);
            let opens = lines.iter().filter(|l| l.contains(" open ")).count();
            let closes = lines.iter().filter(|l| l.contains(" close ")).count();
            prop_assert_eq!(opens, closes);
            let starts = events.iter().filter(|e| matches!(e, Event::Call { .. } | Event::Resume { .. })).count();
            prop_assert_eq!(opens, starts);
        }
    }
}
