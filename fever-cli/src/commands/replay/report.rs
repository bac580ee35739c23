//! A replay's result in words. Data goes to `out` (stdout): the end call's locals, its return
//! value or exception and traceback, and the diff against the recorded value; the notes about
//! arguments that may differ and the timing line go to stderr as `fever:` messages.

use std::io::{self, Write};

use fever_core::analysis::spans::Outcome;
use fever_core::control::{EndOutcome, ReplayResult};
use fever_core::replay::{outcome_text, value_diff, CallRef};
use fever_core::snapshot::render_short;

use crate::messages;

/// Characters of one local's value on its line.
const LOCAL_CHARS: usize = 200;

/// Prints `result` of the replay of `start`..`end`; `recorded` is how the end call ended when
/// the program first ran (`None`: not found in the recording).
pub fn print(
    out: &mut impl Write,
    start: &CallRef,
    end: &CallRef,
    result: &ReplayResult,
    recorded: Option<Outcome<'_>>,
) -> io::Result<()> {
    for note in &result.notes {
        messages::warning(&format!(
            "argument {} of {start} may differ from the original: {}",
            note.name, note.reason
        ));
    }
    #[allow(clippy::cast_precision_loss)]
    let ms = result.elapsed_ns as f64 / 1e6;
    messages::info(&format!(
        "replayed {start} to the end of {end} in {ms:.1} ms"
    ));
    if !result.locals.is_empty() || !matches!(result.outcome, EndOutcome::NotReached { .. }) {
        writeln!(out, "locals of {end}:")?;
        for (name, value) in &result.locals {
            writeln!(out, "  {name} = {}", render_short(value, LOCAL_CHARS))?;
        }
    }
    let now: (&str, &[u8]) = match &result.outcome {
        EndOutcome::Returned(value) => {
            writeln!(out, "return value: {}", render_short(value, LOCAL_CHARS))?;
            ("", value)
        }
        EndOutcome::Raised {
            exception,
            traceback,
        } => {
            writeln!(out, "raised: {}", render_short(exception, LOCAL_CHARS))?;
            write!(out, "{traceback}")?;
            ("raised ", exception)
        }
        EndOutcome::NotReached { how } => {
            messages::warning(&format!("{end} was not reached: {how}"));
            return Ok(());
        }
    };
    let recorded: Option<(&str, &[u8])> = match recorded {
        Some(Outcome::Returned(Some(v))) => Some(("", v)),
        Some(Outcome::Raised(Some(v))) => Some(("raised ", v)),
        _ => None,
    };
    match recorded {
        None => writeln!(out, "recorded: (not in the recording)")?,
        Some(recorded) => match value_diff(recorded, now) {
            None => writeln!(out, "recorded: the same")?,
            Some(diff) => {
                writeln!(
                    out,
                    "recorded: {}",
                    outcome_text(recorded.0, recorded.1).trim_end()
                )?;
                write!(out, "{diff}")?;
            }
        },
    }
    Ok(())
}

/// 0 when the end call returned, 1 otherwise.
pub fn exit_code(result: &ReplayResult) -> i32 {
    i32::from(!matches!(result.outcome, EndOutcome::Returned(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fever_core::snapshot::Value;

    fn snap(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        v.encode(&mut out);
        out
    }

    fn text(result: &ReplayResult, recorded: Option<Outcome<'_>>) -> String {
        let mut out = Vec::new();
        let call = CallRef::parse("app.f").unwrap();
        print(&mut out, &call, &call, result, recorded).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn locals_return_value_and_diff() {
        let old = snap(&Value::Int(1));
        let new = snap(&Value::Int(2));
        let result = ReplayResult {
            outcome: EndOutcome::Returned(new.clone()),
            locals: vec![("x".into(), snap(&Value::Int(7)))],
            notes: vec![],
            elapsed_ns: 1_000_000,
        };
        let t = text(&result, Some(Outcome::Returned(Some(&old))));
        assert!(t.starts_with("locals of app.f#1:\n  x = 7\nreturn value: 2\nrecorded: 1\n--- recorded\n+++ now\n"), "{t}");
        assert!(t.contains("-1\n+2\n"), "{t}");
        let same = text(&result, Some(Outcome::Returned(Some(&new))));
        assert!(
            same.ends_with("return value: 2\nrecorded: the same\n"),
            "{same}"
        );
        let unknown = text(&result, None);
        assert!(
            unknown.ends_with("recorded: (not in the recording)\n"),
            "{unknown}"
        );
        assert_eq!(exit_code(&result), 0);
    }
}
