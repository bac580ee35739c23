//! What `fever show` says about a trace on stderr before showing it: one summary line, then a
//! warning for a trace cut short or events lost while recording, or too big for a JSON export.

use std::path::Path;

use fever_core::analysis::summary::Summary;
use fever_core::trace::TraceReader;
use fever_core::units;

use crate::messages;

/// `fever: run.trace: Python 3.12.1, app.py --port 80, 1234 calls of 12 functions, 1.52 s`,
/// and the warnings.
pub(super) fn summary(path: &Path, reader: &TraceReader) {
    let header = reader.header();
    let facts = Summary::of(reader);
    let python = header
        .python_version
        .split_whitespace()
        .next()
        .map_or_else(|| "Python ?".to_owned(), |v| format!("Python {v}"));
    let argv = if header.argv.is_empty() {
        "(no command line)".to_owned()
    } else {
        header
            .argv
            .iter()
            .map(|arg| quoted(arg))
            .collect::<Vec<_>>()
            .join(" ")
    };
    messages::info(&format!(
        "{}: {python}, {argv}, {} of {}, {}",
        path.display(),
        plural(facts.calls, "call"),
        plural(facts.functions as u64, "function"),
        units::duration(facts.duration_ns)
    ));
    if let Some(incomplete) = reader.incomplete() {
        messages::warning(&format!(
            "{} is incomplete (the recording was cut short); showing the {} before byte {}",
            path.display(),
            plural(reader.event_count(), "event"),
            incomplete.readable_len
        ));
    }
    if let Some(lost) = reader.stats().map(|s| s.lost_events).filter(|&n| n > 0) {
        messages::warning(&format!(
            "{}: {} lost while recording (the recorder fell behind); calls around them may \
             show as unfinished",
            path.display(),
            if lost == 1 {
                "1 event was".to_owned()
            } else {
                format!("{lost} events were")
            }
        ));
    }
}

/// Events from which a JSON export gets too big for viewers to load comfortably (about 170 MB).
const BIG_FOR_JSON: u64 = 2_000_000;

/// Before a JSON export: a warning when the trace is too big for viewers to load as JSON.
pub(super) fn json_size(path: &Path, reader: &TraceReader) {
    if reader.event_count() > BIG_FOR_JSON {
        messages::warning(&format!(
            "{} has {} events: trace viewers may fail to open JSON this large; \
             --format perfetto handles it",
            path.display(),
            reader.event_count()
        ));
    }
}

/// `1 call`, `2 calls`.
fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// An argument as a shell would need it: as is when plain, else in single quotes.
fn quoted(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_quoted_only_when_needed() {
        assert_eq!(quoted("app.py"), "app.py");
        assert_eq!(quoted("--port=80"), "--port=80");
        assert_eq!(quoted("two words"), "'two words'");
        assert_eq!(quoted(""), "''");
        assert_eq!(quoted("it's"), r"'it'\''s'");
        assert_eq!(plural(1, "call"), "1 call");
        assert_eq!(plural(0, "call"), "0 calls");
    }
}
