//! The speedscope file format (<https://www.speedscope.app>, schema at
//! `https://www.speedscope.app/file-format-schema.json`), for flame graphs and sandwich views.
//!
//! `shared.frames` lists every code of the trace (`module.qualname`, file, first line); each
//! thread is an `"evented"` profile in nanoseconds whose `O`/`C` events open and close frames.
//! A profile's events must all be written together while the trace interleaves threads, so
//! the walk first collects each thread's events compactly (16 bytes per event), then writes
//! the file in one streaming pass. The main thread's profile is the one shown first.

use std::convert::Infallible;
use std::io::{self, BufWriter, Write};

use super::common::Context;
use crate::analysis::spans::{self, Closed, Opened, SpanSink, Thread};
use crate::trace::TraceReader;

/// Writes the trace of `reader` to `out` in speedscope's format; returns `out`, flushed.
pub fn write<W: Write>(reader: &TraceReader, out: W) -> io::Result<W> {
    let context = Context::new(reader);
    let mut collect = Collect {
        context: &context,
        threads: Vec::new(),
    };
    match spans::walk(reader.events(), &mut collect) {
        Ok(()) => {}
        Err(never) => match never {},
    }
    let threads = collect.threads;
    let mut out = BufWriter::with_capacity(1 << 16, out);
    out.write_all(b"{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\"")?;
    out.write_all(b",\"exporter\":")?;
    string(&mut out, concat!("fever ", env!("CARGO_PKG_VERSION")))?;
    out.write_all(b",\"name\":")?;
    string(&mut out, &context.command)?;
    let active = threads
        .iter()
        .position(|t| context.main == Some(t.thread.ident))
        .unwrap_or(0);
    write!(
        out,
        ",\"activeProfileIndex\":{active},\"shared\":{{\"frames\":["
    )?;
    for (i, code) in context.codes.iter().enumerate() {
        out.write_all(if i == 0 {
            b"\n{\"name\":"
        } else {
            b",\n{\"name\":"
        })?;
        string(&mut out, context.name(i))?;
        out.write_all(b",\"file\":")?;
        string(&mut out, &code.file)?;
        write!(out, ",\"line\":{}}}", code.first_line)?;
    }
    out.write_all(b"]},\"profiles\":[")?;
    for (i, profile) in threads.iter().enumerate() {
        out.write_all(if i == 0 {
            b"\n{\"type\":\"evented\",\"name\":"
        } else {
            b",\n{\"type\":\"evented\",\"name\":"
        })?;
        string(&mut out, &context.thread_label(profile.thread))?;
        write!(
            out,
            ",\"unit\":\"nanoseconds\",\"startValue\":{},\"endValue\":{},\"events\":[",
            profile.start, profile.end
        )?;
        for (j, &(at, frame, open)) in profile.events.iter().enumerate() {
            let kind = if open { 'O' } else { 'C' };
            let comma = if j == 0 { "" } else { "," };
            write!(
                out,
                "{comma}{{\"type\":\"{kind}\",\"frame\":{frame},\"at\":{at}}}"
            )?;
        }
        out.write_all(b"]}")?;
    }
    out.write_all(b"\n]}\n")?;
    out.into_inner().map_err(io::IntoInnerError::into_error)
}

fn string(out: &mut impl Write, s: &str) -> io::Result<()> {
    serde_json::to_writer(out, s).map_err(io::Error::from)
}

/// One thread's events: (time, frame, opens).
struct ThreadEvents {
    thread: Thread,
    start: u64,
    end: u64,
    events: Vec<(u64, u32, bool)>,
}

struct Collect<'c, 'r> {
    context: &'c Context<'r>,
    threads: Vec<ThreadEvents>,
}

impl Collect<'_, '_> {
    fn push(&mut self, thread: Thread, t_ns: u64, code: u32, open: bool) {
        let at = self.context.time(t_ns);
        let frame = u32::try_from(self.context.position(code)).unwrap_or(u32::MAX);
        if let Some(t) = self.threads.get_mut(thread.index) {
            t.end = t.end.max(at);
            t.events.push((at, frame, open));
        }
    }
}

impl SpanSink<'_> for Collect<'_, '_> {
    type Error = Infallible;

    fn thread(&mut self, thread: Thread, first_ns: u64) -> Result<(), Infallible> {
        let start = self.context.time(first_ns);
        self.threads.push(ThreadEvents {
            thread,
            start,
            end: start,
            events: Vec::new(),
        });
        Ok(())
    }

    fn open(&mut self, thread: Thread, span: &Opened<'_>) -> Result<(), Infallible> {
        self.push(thread, span.start_ns, span.code, true);
        Ok(())
    }

    fn close(
        &mut self,
        thread: Thread,
        span: &Opened<'_>,
        end: &Closed<'_>,
    ) -> Result<(), Infallible> {
        self.push(thread, end.end_ns, span.code, false);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::spans::tests::{call, ret, trace};
    use serde_json::Value;

    #[test]
    fn one_evented_profile_per_thread_with_shared_frames() {
        let reader = trace(&[
            call(1, 0, 100),
            call(2, 3, 150),
            call(1, 1, 200),
            ret(1, 1, 300),
            ret(1, 0, 400),
            ret(2, 3, 500),
        ]);
        let doc: Value = serde_json::from_slice(&write(&reader, Vec::new()).unwrap()).unwrap();
        let frames = doc["shared"]["frames"].as_array().unwrap();
        assert_eq!(frames.len(), 8);
        assert_eq!(frames[1]["name"], "m.f1");
        assert_eq!(frames[1]["file"], "m.py");
        assert_eq!(frames[1]["line"], 2);
        let profiles = doc["profiles"].as_array().unwrap();
        assert_eq!(profiles.len(), 2);
        let p = &profiles[0];
        assert_eq!(p["type"], "evented");
        assert_eq!(p["unit"], "nanoseconds");
        assert_eq!(p["name"], "thread 1");
        assert_eq!(
            (p["startValue"].as_u64(), p["endValue"].as_u64()),
            (Some(0), Some(300))
        );
        let events: Vec<(String, u64, u64)> = p["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["type"].as_str().unwrap().to_owned(),
                    e["frame"].as_u64().unwrap(),
                    e["at"].as_u64().unwrap(),
                )
            })
            .collect();
        let expected = [("O", 0, 0), ("O", 1, 100), ("C", 1, 200), ("C", 0, 300)];
        assert_eq!(
            events,
            expected.map(|(k, f, a)| (k.to_owned(), f, a)).to_vec()
        );
        assert_eq!(profiles[1]["startValue"], 50);
        assert_eq!(profiles[1]["events"][0]["frame"], 3);
    }
}
