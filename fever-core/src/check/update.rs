//! `--update`: a copy of a trace with the recorded outcome of some calls replaced by what they
//! do now, written to a temporary file and renamed over the original ([`rewrite_file`]).
//!
//! Every record is copied as it is (code announcements, run statistics, opaque records) except
//! the event that ended a replaced call ([`Case::end_event`](super::Case::end_event)): a new
//! return value replaces the `Return` (or the `Unwind`, turning it into a return); a new
//! exception becomes a `Raise` in that call followed by its `Unwind`. A trace whose recording
//! was cut short is written complete, up to where it ended.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::io::Write;
use std::path::Path;

use super::compare::Outcome;
use crate::trace::{
    AtomicFile, Event, TraceError, TraceReader, TraceWriter, RECORD_CODE, RECORD_EVENT,
    RECORD_STATS,
};

/// Writes `reader`'s trace to `out` with the outcomes in `new` (keyed by the index of the event
/// that ended the call) replaced; returns `out`.
pub fn rewrite<W: Write, S: BuildHasher>(
    reader: &TraceReader,
    new: &HashMap<usize, Outcome, S>,
    out: W,
) -> Result<W, TraceError> {
    let mut writer = TraceWriter::new(out, reader.header())?;
    let mut index = 0;
    for record in reader.records() {
        match record.kind() {
            RECORD_EVENT => {
                let Some(archived) = record.event() else {
                    continue;
                };
                let event = Event::from(archived);
                match new.get(&index) {
                    Some(outcome) => {
                        for replaced in replace(&event, outcome) {
                            writer.write_event(&replaced)?;
                        }
                    }
                    None => writer.write_event(&event)?,
                }
                index += 1;
            }
            RECORD_CODE => {
                if let Some(code) = record.code() {
                    writer.add_code(code.clone())?;
                }
            }
            RECORD_STATS => {
                if let Some(stats) = reader.stats() {
                    writer.write_stats(stats)?;
                }
            }
            kind => writer.write_record(kind, record.body())?,
        }
    }
    writer.finish()
}

/// Rewrites the trace file at `path` (read into `reader`) with the outcomes in `new` replaced:
/// written to `PATH.tmp`, then renamed over `path`, so `path` is always a whole trace. The
/// temporary file is removed if writing fails.
pub fn rewrite_file<S: BuildHasher>(
    reader: &TraceReader,
    new: &HashMap<usize, Outcome, S>,
    path: &Path,
) -> Result<(), TraceError> {
    let file = AtomicFile::create(path)?;
    let temp = file.temp_path().to_path_buf();
    let result = rewrite(reader, new, file).and_then(|file| Ok(file.commit()?));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.map(|_| ())
}

/// The events that record `outcome` in place of `end` (a call's `Return` or `Unwind`).
fn replace(end: &Event, outcome: &Outcome) -> Vec<Event> {
    let (code, thread, t_ns, flags) = (end.code(), end.thread(), end.t_ns(), end.flags());
    match outcome {
        Outcome::Returned(value) => vec![Event::Return {
            code,
            flags,
            thread,
            t_ns,
            value: Some(value.clone()),
        }],
        Outcome::Raised(exception) => vec![
            Event::Raise {
                code,
                thread,
                t_ns,
                exception: Some(exception.clone()),
            },
            Event::Unwind {
                code,
                flags,
                thread,
                t_ns,
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{select, Options};
    use crate::trace::{CodeInfo, RunStats, TraceHeader};

    fn trace() -> TraceReader {
        let header = TraceHeader {
            argv: vec!["app.py".into()],
            ..TraceHeader::default()
        };
        let mut writer = TraceWriter::with_chunk_size(Vec::new(), &header, 0).unwrap();
        for id in 0..2 {
            writer.add_code(CodeInfo::sample(id)).unwrap();
        }
        let call = |code| Event::Call {
            code,
            thread: 1,
            t_ns: 1,
            args: Some(vec![1, 0]),
        };
        writer.write_event(&call(0)).unwrap();
        writer
            .write_event(&Event::Return {
                code: 0,
                flags: 0,
                thread: 1,
                t_ns: 2,
                value: Some(b"old".to_vec()),
            })
            .unwrap();
        writer.write_event(&call(1)).unwrap();
        writer
            .write_event(&Event::Unwind {
                code: 1,
                flags: 0,
                thread: 1,
                t_ns: 3,
            })
            .unwrap();
        writer.write_record(0x123, b"opaque!!").unwrap();
        writer.write_stats(&RunStats::default()).unwrap();
        TraceReader::from_bytes(&writer.finish().unwrap()).unwrap()
    }

    fn outcomes(reader: &TraceReader) -> Vec<Option<Outcome>> {
        select(reader, &Options::default())
            .unwrap()
            .cases
            .into_iter()
            .map(|c| c.expected)
            .collect()
    }

    #[test]
    fn replaced_outcomes_read_back_and_everything_else_is_kept() {
        let reader = trace();
        let cases = select(&reader, &Options::default()).unwrap().cases;
        assert_eq!(cases[1].expected, None);
        let new = HashMap::from([
            (cases[0].end_event, Outcome::Raised(b"boom".to_vec())),
            (cases[1].end_event, Outcome::Returned(b"new".to_vec())),
        ]);
        let bytes = rewrite(&reader, &new, Vec::new()).unwrap();
        let again = TraceReader::from_bytes(&bytes).unwrap();
        assert_eq!(
            outcomes(&again),
            [
                Some(Outcome::Raised(b"boom".to_vec())),
                Some(Outcome::Returned(b"new".to_vec()))
            ]
        );
        assert_eq!(again.header(), reader.header());
        assert_eq!(again.codes(), reader.codes());
        assert_eq!(again.stats(), reader.stats());
        assert!(again
            .records()
            .any(|r| r.kind() == 0x123 && r.body() == b"opaque!!"));
        // Nothing replaced: the same records.
        let copy = rewrite(&reader, &HashMap::new(), Vec::new()).unwrap();
        let copy = TraceReader::from_bytes(&copy).unwrap();
        assert_eq!(copy.event_count(), reader.event_count());
        assert_eq!(outcomes(&copy), outcomes(&reader));
    }

    #[test]
    fn the_file_is_replaced_whole_and_no_temporary_file_is_left() {
        let dir = std::env::temp_dir().join(format!("fever-update-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("run.trace");
        let reader = trace();
        let end = select(&reader, &Options::default()).unwrap().cases[0].end_event;
        let new = HashMap::from([(end, Outcome::Returned(b"v2".to_vec()))]);
        rewrite_file(&reader, &new, &path).unwrap();
        let again = TraceReader::open(&path).unwrap();
        assert_eq!(outcomes(&again)[0], Some(Outcome::Returned(b"v2".to_vec())));
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["run.trace"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
