//! Chrome's trace-event JSON (`chrome://tracing`, also opened by Perfetto UI), for small runs:
//! viewers load the whole file into memory, so big runs belong in the Perfetto export.
//!
//! One JSON object: `displayTimeUnit`, `otherData` (the recording), and `traceEvents`:
//! `process_name`/`thread_name` metadata events (`"ph":"M"`), then per span a `"B"` event
//! (name = `module.qualname`, `args` = the call's arguments) and an `"E"` event (`args` = the
//! return value, exception or yielded value), written in the order the walk produces them so
//! they nest per thread. Timestamps are microseconds with nanosecond decimals, from the first
//! event. Strings are escaped by `serde_json`.

use std::io::{self, BufWriter, Write};

use super::common::{Context, VALUE_CHARS};
use crate::analysis::spans::{self, Closed, Opened, Outcome, SpanSink, Thread};
use crate::analysis::text;
use crate::trace::TraceReader;

/// Writes the trace of `reader` to `out` as trace-event JSON; returns `out`, flushed.
pub fn write<W: Write>(reader: &TraceReader, out: W) -> io::Result<W> {
    let mut sink = Chrome {
        out: BufWriter::with_capacity(1 << 16, out),
        context: Context::new(reader),
    };
    sink.start(&reader.header().python_version)?;
    spans::walk(reader.events(), &mut sink)?;
    sink.out.write_all(b"\n]}\n")?;
    sink.out
        .into_inner()
        .map_err(io::IntoInnerError::into_error)
}

struct Chrome<'r, W: Write> {
    out: BufWriter<W>,
    context: Context<'r>,
}

/// A value in an event's `args`.
enum Arg {
    Text(String),
    True,
}

impl<W: Write> Chrome<'_, W> {
    fn string(&mut self, s: &str) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, s).map_err(io::Error::from)
    }

    /// The opening of the document, up to and including the process's metadata event.
    fn start(&mut self, python: &str) -> io::Result<()> {
        self.out
            .write_all(b"{\"displayTimeUnit\":\"ns\",\"otherData\":{\"python\":")?;
        self.string(python)?;
        self.out.write_all(b",\"command\":")?;
        let command = self.context.command.clone();
        self.string(&command)?;
        self.out.write_all(b",\"exporter\":")?;
        self.string(concat!("fever ", env!("CARGO_PKG_VERSION")))?;
        let pid = self.context.pid;
        write!(
            self.out,
            "}},\"traceEvents\":[\n{{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":{pid},\"tid\":{pid},\"args\":{{\"name\":"
        )?;
        self.string(&command)?;
        self.out.write_all(b"}}")
    }

    /// `,\n{"ph":PH,"pid":P,"tid":T` — the common start of an event; the caller closes it.
    fn event(&mut self, ph: char, thread: Thread) -> io::Result<()> {
        let (pid, tid) = (self.context.pid(thread), self.context.tid(thread));
        write!(self.out, ",\n{{\"ph\":\"{ph}\",\"pid\":{pid},\"tid\":{tid}")
    }

    fn ts(&mut self, t_ns: u64) -> io::Result<()> {
        let t = self.context.time(t_ns);
        write!(self.out, ",\"ts\":{}.{:03}", t / 1000, t % 1000)
    }

    /// `,"args":{...}}` — the event's arguments and the end of the event.
    fn args(&mut self, args: &[(&str, Arg)]) -> io::Result<()> {
        self.out.write_all(b",\"args\":{")?;
        for (i, (key, value)) in args.iter().enumerate() {
            if i > 0 {
                self.out.write_all(b",")?;
            }
            self.string(key)?;
            self.out.write_all(b":")?;
            match value {
                Arg::Text(text) => self.string(text)?,
                Arg::True => self.out.write_all(b"true")?,
            }
        }
        self.out.write_all(b"}}")
    }
}

impl<'a, W: Write> SpanSink<'a> for Chrome<'_, W> {
    type Error = io::Error;

    fn thread(&mut self, thread: Thread, _first_ns: u64) -> io::Result<()> {
        let label = self.context.thread_label(thread);
        if let Some(name) = self.context.child_name(thread) {
            // A child process's name, said with each of its threads (viewers keep one).
            self.event('M', thread)?;
            self.out.write_all(b",\"name\":\"process_name\"")?;
            self.args(&[("name", Arg::Text(name))])?;
        }
        self.event('M', thread)?;
        self.out.write_all(b",\"name\":\"thread_name\"")?;
        self.args(&[("name", Arg::Text(label))])?;
        self.event('M', thread)?;
        self.out.write_all(b",\"name\":\"thread_sort_index\"")?;
        write!(self.out, ",\"args\":{{\"sort_index\":{}}}}}", thread.index)
    }

    fn open(&mut self, thread: Thread, span: &Opened<'a>) -> io::Result<()> {
        self.event('B', thread)?;
        self.ts(span.start_ns)?;
        let position = self.context.position(span.code);
        self.out.write_all(b",\"cat\":\"python\",\"name\":")?;
        serde_json::to_writer(&mut self.out, self.context.name(position))
            .map_err(io::Error::from)?;
        let mut args = Vec::new();
        if let Some(text) = text::args(span.args, VALUE_CHARS) {
            args.push(("args", Arg::Text(text)));
        }
        if span.resumed {
            args.push(("resumed", Arg::True));
        }
        self.args(&args)
    }

    fn close(&mut self, thread: Thread, _span: &Opened<'a>, end: &Closed<'a>) -> io::Result<()> {
        self.event('E', thread)?;
        self.ts(end.end_ns)?;
        let shown = |snapshot| text::value(snapshot, VALUE_CHARS).unwrap_or_else(|| "?".into());
        let mut args = Vec::new();
        match end.outcome {
            Outcome::Returned(value) => {
                if let Some(value) = text::value(value, VALUE_CHARS) {
                    args.push(("return", Arg::Text(value)));
                }
            }
            Outcome::Raised(exception) => args.push(("exception", Arg::Text(shown(exception)))),
            Outcome::Suspended(value) => args.push(("yield", Arg::Text(shown(value)))),
            Outcome::Unfinished => args.push(("unfinished", Arg::True)),
        }
        if end.mutated_args {
            args.push(("mutated_args", Arg::True));
        }
        self.args(&args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::spans::tests::{call, ret, trace};
    use crate::trace::Event;
    use serde_json::Value;

    #[test]
    fn writes_valid_json_with_nested_begin_end_pairs() {
        let reader = trace(&[
            call(1, 0, 1_000),
            call(2, 1, 1_500),
            Event::Call {
                code: 2,
                thread: 1,
                t_ns: 2_000,
                args: Some(vec![1]),
            },
            Event::Unwind {
                code: 2,
                flags: 1,
                thread: 1,
                t_ns: 3_250,
            },
            ret(1, 0, 5_000),
        ]);
        let out = write(&reader, Vec::new()).unwrap();
        let doc: Value = serde_json::from_slice(&out).unwrap();
        let events = doc["traceEvents"].as_array().unwrap();
        let phases: String = events.iter().map(|e| e["ph"].as_str().unwrap()).collect();
        // Process name; thread 1 (name, sort index); B f0; thread 2; B f1; B f2; E f2; E f0;
        // E f1 (unfinished, at the end).
        assert_eq!(phases, "MMMBMMBBEEE");
        let f2_begin = &events[7];
        assert_eq!(f2_begin["name"], "m.f2");
        assert!((f2_begin["ts"].as_f64().unwrap() - 1.0).abs() < 1e-9);
        assert!(f2_begin["args"]["args"].is_string());
        let f2_end = &events[8];
        assert!((f2_end["ts"].as_f64().unwrap() - 2.25).abs() < 1e-9);
        assert_eq!(f2_end["args"]["exception"], "?");
        assert_eq!(f2_end["args"]["mutated_args"], true);
        assert_eq!(events[10]["args"]["unfinished"], true);
        assert_eq!(events[1]["args"]["name"], "thread 1");
        assert_eq!(events[1]["tid"], events[3]["tid"]);
        assert_ne!(events[3]["tid"], events[6]["tid"]);
    }

    proptest::proptest! {
        /// Whatever the events, the output is JSON with a begin and an end per span.
        #[test]
        fn any_events_give_balanced_json(
            events in proptest::collection::vec(crate::analysis::spans::tests::any_event(), 0..100)
        ) {
            let reader = trace(&events);
            let doc: Value = serde_json::from_slice(&write(&reader, Vec::new()).unwrap()).unwrap();
            let events = doc["traceEvents"].as_array().unwrap();
            let count = |ph: &str| events.iter().filter(|e| e["ph"] == ph).count();
            proptest::prop_assert_eq!(count("B"), count("E"));
        }
    }

    #[test]
    fn strings_are_escaped() {
        let mut writer =
            crate::trace::TraceWriter::new(Vec::new(), &crate::trace::TraceHeader::default())
                .unwrap();
        writer
            .add_code(crate::trace::CodeInfo {
                module: "we\"ird\n".into(),
                qualname: "f\\<\u{1}>".into(),
                ..crate::trace::CodeInfo::default()
            })
            .unwrap();
        writer.write_event(&call(1, 0, 0)).unwrap();
        let reader = crate::trace::TraceReader::from_bytes(&writer.finish().unwrap()).unwrap();
        let doc: Value = serde_json::from_slice(&write(&reader, Vec::new()).unwrap()).unwrap();
        assert_eq!(doc["traceEvents"][3]["name"], "we\"ird\n.f\\<\u{1}>");
    }
}
