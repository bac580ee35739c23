//! Which recorded calls `fever check` re-invokes: [`select`] walks a trace's spans once and
//! returns one [`Case`] per selected call, with what it returned or raised and, when it cannot
//! be replayed at all, why.
//!
//! A call's *level* is the number of its open ancestors (on its thread) that match the
//! patterns; module bodies (`<module>`) never match. Calls that match and whose level is at most
//! [`Options::depth`] are selected: by default (pattern `*`, depth 0) the outermost calls of the
//! project's functions; `--select` makes the outermost calls of the matching functions level 0.
//! Module bodies, class bodies ([`Options::class_bodies`]) and generator expressions are not
//! calls; a generator's resumptions are part of its call.
//!
//! A call is marked nondeterministic when another call of the same code with the same argument
//! snapshot (byte for byte) ended differently during the recording.

use std::collections::{HashMap, HashSet};

use super::compare::same_snapshot;
use super::{CheckError, Outcome};
use crate::analysis::spans::{Closed, Opened, Outcome as SpanOutcome, SpanSink, Thread, Walker};
use crate::snapshot::content_hash;
use crate::trace::{CodeInfo, TraceReader};

/// Which calls to select; the default is the outermost calls of every function.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--select` globs on `module.qualname`; empty means every function.
    pub patterns: Vec<String>,
    /// `--depth`: also select calls up to this many matching levels below the outermost ones.
    pub depth: usize,
    /// Codes that are class bodies, which are not calls (the trace does not say; whoever can
    /// import the code can).
    pub class_bodies: HashSet<u32>,
}

/// One selected call.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Stable id: `module.qualname[k]`, the k-th selected call of that function (from 1).
    pub id: String,
    /// The function.
    pub code: CodeInfo,
    /// The recorded argument snapshot.
    pub args: Option<Vec<u8>>,
    /// What the call did during the recording, when it was recorded.
    pub expected: Option<Outcome>,
    /// Why it cannot be replayed, decided from the trace alone.
    pub skip: Option<String>,
    /// Index (among the trace's events, in file order) of the event that ended the call.
    pub end_event: usize,
}

impl Case {
    /// `module.qualname`.
    pub fn name(&self) -> String {
        self.code.full_name()
    }

    /// `file:line` of the function.
    pub fn location(&self) -> String {
        format!("{}:{}", self.code.file, self.code.first_line)
    }
}

/// The selected calls of `reader`, in the order their calls appear in the trace.
pub fn select(reader: &TraceReader, options: &Options) -> Result<Vec<Case>, CheckError> {
    let patterns = options
        .patterns
        .iter()
        .map(|p| {
            glob::Pattern::new(p).map_err(|e| CheckError::Pattern {
                pattern: p.clone(),
                reason: e.msg.to_owned(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let matching: HashMap<u32, bool> = reader
        .codes()
        .iter()
        .map(|code| {
            let name = code.full_name();
            let matches = is_call(&code.qualname)
                && !options.class_bodies.contains(&code.id)
                && (patterns.is_empty() || patterns.iter().any(|p| p.matches(&name)));
            (code.id, matches)
        })
        .collect();
    let mut sink = Selector {
        matching: &matching,
        depth: options.depth,
        stacks: HashMap::new(),
        event: 0,
        found: Vec::new(),
        results: HashMap::new(),
    };
    let mut walker = Walker::default();
    for (index, event) in reader.events().enumerate() {
        sink.event = index;
        walker.event(event, &mut sink)?;
    }
    walker.finish(&mut sink)?;
    let Selector { found, results, .. } = sink;
    // Numbered by name, not code: a function edited during the recording has two codes.
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut cases = Vec::with_capacity(found.len());
    for call in found {
        let Some(code) = reader.code(call.code) else {
            continue;
        };
        let name = code.full_name();
        let k = counts.entry(name.clone()).or_default();
        *k += 1;
        let nondeterministic = call
            .args
            .is_some_and(|args| results.get(&(call.code, content_hash(args))) == Some(&None));
        let skip = if nondeterministic {
            Some("nondeterministic: the same arguments gave different results".to_owned())
        } else {
            skip_reason(code, call.args, call.end.as_ref())
        };
        cases.push(Case {
            id: format!("{name}[{k}]"),
            code: code.clone(),
            args: call.args.map(<[u8]>::to_vec),
            expected: call.end.as_ref().and_then(Outcome::from_span),
            skip,
            end_event: call.end_event,
        });
    }
    Ok(cases)
}

/// Code that runs as a call of its own: not a module body, nor a generator expression (a
/// detail of the function it is in).
fn is_call(qualname: &str) -> bool {
    qualname != "<module>" && !qualname.ends_with("<genexpr>")
}

/// Why a call cannot be replayed, judged from its code and recorded snapshots.
fn skip_reason(
    code: &CodeInfo,
    args: Option<&[u8]>,
    end: Option<&SpanOutcome<'_>>,
) -> Option<String> {
    if code.qualname.contains('<') {
        return Some(format!(
            "{} is not reachable by name (a nested function, lambda or comprehension)",
            code.qualname
        ));
    }
    if args.is_none() {
        return Some("its arguments were not recorded (fever record --snapshots none)".into());
    }
    match end {
        Some(SpanOutcome::Suspended(_)) => Some("a generator or coroutine".into()),
        Some(SpanOutcome::Returned(None) | SpanOutcome::Raised(None)) => {
            Some("its result was not recorded (fever record --snapshots args)".into())
        }
        Some(SpanOutcome::Unfinished) | None => {
            Some("it did not finish during the recording".into())
        }
        Some(SpanOutcome::Returned(Some(_)) | SpanOutcome::Raised(Some(_))) => None,
    }
}

/// A selected call while the walk goes on.
struct Found<'a> {
    code: u32,
    args: Option<&'a [u8]>,
    end: Option<SpanOutcome<'a>>,
    end_event: usize,
}

/// One open span: the index of its entry in `found` if selected, and whether it counts as a
/// level for the calls below it.
#[derive(Clone, Copy)]
struct Open {
    found: Option<usize>,
    matches: bool,
}

/// The [`SpanSink`] of [`select`].
struct Selector<'m, 'a> {
    matching: &'m HashMap<u32, bool>,
    depth: usize,
    /// Open spans per thread index, and how many of them match.
    stacks: HashMap<usize, (Vec<Open>, usize)>,
    /// Index of the event being walked.
    event: usize,
    found: Vec<Found<'a>>,
    /// `(code, hash of the argument bytes)` → the first outcome seen, `None` once an outcome
    /// that does not match it was seen.
    results: HashMap<(u32, u64), Option<Recorded<'a>>>,
}

/// An outcome in the trace: raised (or returned), and its snapshot.
type Recorded<'a> = (bool, &'a [u8]);

impl<'a> Selector<'_, 'a> {
    fn note_result(&mut self, code: u32, args: &[u8], end: &SpanOutcome<'a>) {
        let outcome = match end {
            SpanOutcome::Returned(Some(bytes)) => (false, *bytes),
            SpanOutcome::Raised(Some(bytes)) => (true, *bytes),
            _ => return,
        };
        let seen = self
            .results
            .entry((code, content_hash(args)))
            .or_insert(Some(outcome));
        // The comparison `fever check` makes, exactly (a repr's address is not a difference).
        if let Some((raised, first)) = *seen {
            if raised != outcome.0 || !same_snapshot(first, outcome.1, 0.0) {
                *seen = None;
            }
        }
    }
}

impl<'a> SpanSink<'a> for Selector<'_, 'a> {
    type Error = CheckError;

    fn open(&mut self, thread: Thread, span: &Opened<'a>) -> Result<(), CheckError> {
        let matches = self.matching.get(&span.code).copied().unwrap_or(false);
        let (stack, level) = self.stacks.entry(thread.index).or_default();
        // A generator resuming is not a call: its call was its first stretch.
        let found = (matches && !span.resumed && *level <= self.depth).then(|| {
            self.found.push(Found {
                code: span.code,
                args: span.args,
                end: None,
                end_event: self.event,
            });
            self.found.len() - 1
        });
        stack.push(Open { found, matches });
        *level += usize::from(matches);
        Ok(())
    }

    fn close(
        &mut self,
        thread: Thread,
        span: &Opened<'a>,
        end: &Closed<'a>,
    ) -> Result<(), CheckError> {
        let Some((stack, level)) = self.stacks.get_mut(&thread.index) else {
            return Ok(());
        };
        let Some(open) = stack.pop() else {
            return Ok(());
        };
        *level -= usize::from(open.matches);
        if let Some(found) = open.found.and_then(|i| self.found.get_mut(i)) {
            found.end = Some(end.outcome);
            found.end_event = self.event;
        }
        if let (Some(args), false) = (span.args, span.resumed) {
            self.note_result(span.code, args, &end.outcome);
        }
        Ok(())
    }
}

impl Outcome {
    /// The outcome of a span that returned or raised with a snapshot.
    fn from_span(end: &SpanOutcome<'_>) -> Option<Self> {
        match end {
            SpanOutcome::Returned(Some(bytes)) => Some(Self::Returned(bytes.to_vec())),
            SpanOutcome::Raised(Some(bytes)) => Some(Self::Raised(bytes.to_vec())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Event, TraceHeader, TraceWriter};

    fn code(id: u32, qualname: &str) -> CodeInfo {
        CodeInfo {
            id,
            module: "m".into(),
            qualname: qualname.into(),
            file: "m.py".into(),
            first_line: id + 1,
            code_hash: 0,
        }
    }

    fn call(code: u32, args: &[u8]) -> Event {
        Event::Call {
            code,
            thread: 1,
            t_ns: 0,
            args: Some(args.to_vec()),
        }
    }

    fn ret(code: u32, value: &[u8]) -> Event {
        Event::Return {
            code,
            flags: 0,
            thread: 1,
            t_ns: 0,
            value: Some(value.to_vec()),
        }
    }

    /// Codes: 0 `<module>`, 1 `main`, 2 `load`, 3 `parse`, 4 `f.<locals>.g`.
    fn trace(events: &[Event]) -> TraceReader {
        let mut writer = TraceWriter::new(Vec::new(), &TraceHeader::default()).unwrap();
        for (id, name) in ["<module>", "main", "load", "parse", "f.<locals>.g"]
            .iter()
            .enumerate()
        {
            writer
                .add_code(code(u32::try_from(id).unwrap(), name))
                .unwrap();
        }
        for event in events {
            writer.write_event(event).unwrap();
        }
        TraceReader::from_bytes(&writer.finish().unwrap()).unwrap()
    }

    fn ids(reader: &TraceReader, patterns: &[&str], depth: usize) -> Vec<String> {
        let options = Options {
            patterns: patterns.iter().map(|p| (*p).to_owned()).collect(),
            depth,
            ..Options::default()
        };
        select(reader, &options)
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect()
    }

    /// `<module>` → main(load(parse, parse), load(parse)), then a top-level parse.
    fn nested() -> TraceReader {
        trace(&[
            call(0, b"m"),
            call(1, b"a"),
            call(2, b"x"),
            call(3, b"p1"),
            ret(3, b"r1"),
            call(3, b"p2"),
            ret(3, b"r2"),
            ret(2, b"l1"),
            call(2, b"y"),
            call(3, b"p3"),
            ret(3, b"r3"),
            ret(2, b"l2"),
            ret(1, b"done"),
            call(3, b"p4"),
            ret(3, b"r4"),
            ret(0, b"none"),
        ])
    }

    #[test]
    fn outermost_calls_by_default_and_depth_goes_deeper() {
        let reader = nested();
        assert_eq!(ids(&reader, &[], 0), ["m.main[1]", "m.parse[1]"]);
        assert_eq!(
            ids(&reader, &[], 1),
            ["m.main[1]", "m.load[1]", "m.load[2]", "m.parse[1]"]
        );
        assert_eq!(ids(&reader, &[], 2).len(), 7);
    }

    #[test]
    fn class_bodies_are_not_calls() {
        let reader = nested();
        let options = Options {
            class_bodies: HashSet::from([1]),
            ..Options::default()
        };
        let ids: Vec<String> = select(&reader, &options)
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(ids, ["m.load[1]", "m.load[2]", "m.parse[1]"]);
    }

    #[test]
    fn select_makes_the_outermost_matching_calls_level_zero() {
        let reader = nested();
        assert_eq!(ids(&reader, &["m.load"], 0), ["m.load[1]", "m.load[2]"]);
        assert_eq!(ids(&reader, &["*.parse"], 0).len(), 4);
        assert_eq!(ids(&reader, &["m.l*", "m.main"], 0), ["m.main[1]"]);
        assert_eq!(ids(&reader, &["m.l*", "m.main"], 1).len(), 3);
        assert!(ids(&reader, &["other.*"], 5).is_empty());
        let err = select(
            &reader,
            &Options {
                patterns: vec!["m.[".into()],
                depth: 0,
                ..Options::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("m.["), "{err}");
    }

    #[test]
    fn outcomes_end_events_and_skip_reasons() {
        let reader = trace(&[
            call(2, b"x"),
            Event::Raise {
                code: 2,
                thread: 1,
                t_ns: 0,
                exception: Some(b"boom".to_vec()),
            },
            Event::Unwind {
                code: 2,
                flags: 0,
                thread: 1,
                t_ns: 0,
            },
            call(4, b"x"),
            ret(4, b"v"),
            Event::Call {
                code: 3,
                thread: 1,
                t_ns: 0,
                args: None,
            },
            ret(3, b"v"),
            call(1, b"x"),
        ]);
        let cases = select(&reader, &Options::default()).unwrap();
        assert_eq!(cases.len(), 4);
        assert_eq!(cases[0].expected, Some(Outcome::Raised(b"boom".to_vec())));
        assert_eq!(cases[0].end_event, 2);
        assert_eq!(cases[0].skip, None);
        assert!(cases[1].skip.as_ref().unwrap().contains("not reachable"));
        assert!(cases[2]
            .skip
            .as_ref()
            .unwrap()
            .contains("arguments were not"));
        assert!(cases[3].skip.as_ref().unwrap().contains("did not finish"));
        assert_eq!(cases[3].location(), "m.py:2");
    }

    #[test]
    fn ids_number_the_calls_of_a_function_across_its_edited_versions() {
        let mut writer = TraceWriter::new(Vec::new(), &TraceHeader::default()).unwrap();
        writer.add_code(code(0, "f")).unwrap();
        writer.add_code(code(1, "f")).unwrap();
        for event in [call(0, b"a"), ret(0, b"1"), call(1, b"a"), ret(1, b"2")] {
            writer.write_event(&event).unwrap();
        }
        let reader = TraceReader::from_bytes(&writer.finish().unwrap()).unwrap();
        let cases = select(&reader, &Options::default()).unwrap();
        let ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["m.f[1]", "m.f[2]"]);
        // Different versions of the code may return different results.
        assert!(cases.iter().all(|c| c.skip.is_none()));
    }

    #[test]
    fn generator_expressions_and_resumptions_are_not_calls() {
        let mut writer = TraceWriter::new(Vec::new(), &TraceHeader::default()).unwrap();
        writer.add_code(code(0, "gen")).unwrap();
        writer.add_code(code(1, "<genexpr>")).unwrap();
        let yielded = |code| Event::Yield {
            code,
            thread: 1,
            t_ns: 0,
            value: Some(b"y".to_vec()),
        };
        let resume = |code| Event::Resume {
            code,
            thread: 1,
            t_ns: 0,
        };
        for event in [
            call(0, b"g"),
            yielded(0),
            call(1, b"e"),
            yielded(1),
            resume(1),
            ret(1, b"n"),
            resume(0),
            ret(0, b"n"),
        ] {
            writer.write_event(&event).unwrap();
        }
        let reader = TraceReader::from_bytes(&writer.finish().unwrap()).unwrap();
        let cases = select(&reader, &Options::default()).unwrap();
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].id, "m.gen[1]");
        assert_eq!(cases[0].skip.as_deref(), Some("a generator or coroutine"));
    }

    #[test]
    fn different_results_for_the_same_arguments_are_nondeterministic() {
        let reader = trace(&[
            call(2, b"same"),
            ret(2, b"1"),
            call(2, b"same"),
            ret(2, b"2"),
            call(2, b"other"),
            ret(2, b"1"),
            call(3, b"same"),
            ret(3, b"1"),
            call(3, b"same"),
            ret(3, b"1"),
        ]);
        let cases = select(&reader, &Options::default()).unwrap();
        let skipped: Vec<bool> = cases.iter().map(|c| c.skip.is_some()).collect();
        assert_eq!(skipped, [true, true, false, false, false]);
        assert!(cases[0]
            .skip
            .as_ref()
            .unwrap()
            .starts_with("nondeterministic"));
    }
}
