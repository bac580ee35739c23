//! What `fever check` says about each call: [`judge`] turns a re-invoked call's outcome into a
//! [`Verdict`], a failure carrying a unified diff (the `similar` crate) of the pretty-printed
//! snapshots; [`Summary`] counts verdicts for the summary line.

use std::fmt;

use similar::TextDiff;

use super::compare::{same_outcome, Outcome};
use super::select::Case;
use crate::analysis::text;
use crate::snapshot::{decode, render_pretty};

/// Characters of arguments shown in a failure's heading.
const HEADING_ARGS_CHARS: usize = 120;

/// The result of checking one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It did what the recording says.
    Passed,
    /// It did something else: the report (heading and diff).
    Failed(String),
    /// It was not run, for this reason.
    Skipped(String),
}

/// What checking one call found.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The verdict.
    pub verdict: Verdict,
    /// What the call did now, when it ran.
    pub now: Option<Outcome>,
}

/// Compares what `case` did now (`actual`) with the recording.
pub fn judge(case: &Case, actual: &Outcome, rel_tol: f64) -> Verdict {
    let Some(expected) = &case.expected else {
        return Verdict::Skipped("its result was not recorded".into());
    };
    if same_outcome(expected, actual, rel_tol) {
        Verdict::Passed
    } else {
        Verdict::Failed(failure_report(case, expected, actual))
    }
}

/// Compares what the generator call `case` yields now (`yielded`, then how it ended, if it did
/// within them) with its recorded [`Case::yields`] and end ([`Case::expected`], when known).
/// `yielded` holds at most one value more than recorded, taken to see whether it ends there.
pub fn judge_yields(
    case: &Case,
    yielded: &[Vec<u8>],
    end: Option<&Outcome>,
    rel_tol: f64,
) -> Verdict {
    let recorded = case.yields.as_deref().unwrap_or_default();
    let heading = text::call(&case.name(), case.args.as_deref(), HEADING_ARGS_CHARS);
    let failed = |what: String| Verdict::Failed(format!("{heading}  {}\n{what}", case.location()));
    for (k, (old, new)) in recorded.iter().zip(yielded).enumerate() {
        let (old, new) = (
            Outcome::Returned(old.clone()),
            Outcome::Returned(new.clone()),
        );
        if !same_outcome(&old, &new, rel_tol) {
            let diff = recorded_vs_now(&render_outcome(&old), &render_outcome(&new), "values");
            return failed(format!("value {} it yielded differs:\n{diff}", k + 1));
        }
    }
    if yielded.len() < recorded.len() {
        let how = end.map_or_else(|| "?".into(), render_outcome);
        return failed(format!(
            "it yielded {} values, then ended ({}), where {} were recorded\n",
            yielded.len(),
            how.trim_end(),
            recorded.len()
        ));
    }
    let Some(expected) = &case.expected else {
        return Verdict::Passed;
    };
    if let Some(extra) = yielded.get(recorded.len()) {
        let extra = render_outcome(&Outcome::Returned(extra.clone()));
        return failed(format!(
            "it yields more than the {} values recorded before it ended: then {}\n",
            recorded.len(),
            extra.trim_end()
        ));
    }
    match end {
        Some(now) if same_outcome(expected, now, rel_tol) => Verdict::Passed,
        Some(now) => {
            let diff = recorded_vs_now(&render_outcome(expected), &render_outcome(now), "ends");
            failed(format!(
                "its end after the {} values differs (a return is its StopIteration value):\n{diff}",
                recorded.len()
            ))
        }
        None => failed("it did not end where the recording did\n".into()),
    }
}

/// `module.qualname(args)  file:line`, then the unified diff from the recorded outcome to the
/// new one.
pub fn failure_report(case: &Case, expected: &Outcome, actual: &Outcome) -> String {
    let heading = text::call(&case.name(), case.args.as_deref(), HEADING_ARGS_CHARS);
    let body = recorded_vs_now(
        &render_outcome(expected),
        &render_outcome(actual),
        "results",
    );
    format!("{heading}  {}\n{body}", case.location())
}

/// The unified diff (`--- recorded` / `+++ now`) of two values' pretty forms that compared
/// unequal; when their text is the same (a tolerance of 0 and floats that print alike), says so
/// with the new text: `the {noun} print alike but differ:`.
pub fn recorded_vs_now(old: &str, new: &str, noun: &str) -> String {
    let diff = TextDiff::from_lines(old, new);
    let mut unified = diff.unified_diff();
    let body = unified.header("recorded", "now").to_string();
    if body.is_empty() {
        format!("the {noun} print alike but differ:\n{new}")
    } else {
        body
    }
}

/// `module.qualname(args)  file:line`, then `what` went wrong instead of a result (a time
/// limit passed, the module does not import any more).
pub fn failure_without_result(case: &Case, what: &str) -> String {
    let heading = text::call(&case.name(), case.args.as_deref(), HEADING_ARGS_CHARS);
    format!("{heading}  {}\n{what}\n", case.location())
}

/// The pretty form of an outcome; a raised exception is prefixed with `raised `.
fn render_outcome(outcome: &Outcome) -> String {
    let (prefix, bytes) = match outcome {
        Outcome::Returned(bytes) => ("", bytes),
        Outcome::Raised(bytes) => ("raised ", bytes),
    };
    match decode(bytes) {
        Ok(value) => format!("{prefix}{}", render_pretty(&value)),
        Err(err) => format!("{prefix}<corrupt snapshot: {err}>\n"),
    }
}

/// Verdicts counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Calls that did what the recording says.
    pub passed: usize,
    /// Calls that did something else.
    pub failed: usize,
    /// Calls not run.
    pub skipped: usize,
}

impl Summary {
    /// Counts one verdict.
    pub fn add(&mut self, verdict: &Verdict) {
        match verdict {
            Verdict::Passed => self.passed += 1,
            Verdict::Failed(_) => self.failed += 1,
            Verdict::Skipped(_) => self.skipped += 1,
        }
    }

    /// The process exit code: 1 when a call failed, else 0.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.failed > 0)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Fields, Seq, Value};
    use crate::trace::CodeInfo;

    fn snap(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        value.encode(&mut out);
        out
    }

    fn case(expected: &Value) -> Case {
        Case {
            id: "shop.total[1]".into(),
            code: CodeInfo {
                id: 0,
                module: "shop".into(),
                qualname: "total".into(),
                file: "/src/shop.py".into(),
                first_line: 12,
                code_hash: 0,
            },
            args: Some(snap(&Value::Args(Fields {
                entries: vec![("n".into(), Value::Int(3))],
                omitted: 0,
            }))),
            expected: Some(Outcome::Returned(snap(expected))),
            skip: None,
            end_event: 0,
            callers: Vec::new(),
            yields: None,
        }
    }

    fn list(items: &[i64]) -> Value {
        Value::List(Seq {
            items: items.iter().map(|&i| Value::Int(i)).collect(),
            omitted: 0,
        })
    }

    #[test]
    fn a_changed_result_fails_with_a_unified_diff() {
        let c = case(&list(&[1, 2, 3]));
        assert_eq!(
            judge(&c, &Outcome::Returned(snap(&list(&[1, 2, 3]))), 0.0),
            Verdict::Passed
        );
        let Verdict::Failed(report) = judge(&c, &Outcome::Returned(snap(&list(&[1, 5, 3]))), 0.0)
        else {
            panic!("expected a failure");
        };
        assert!(
            report.starts_with("shop.total(n=3)  /src/shop.py:12\n--- recorded\n+++ now\n@@"),
            "{report}"
        );
        assert!(report.contains("\n-    2,\n+    5,\n"), "{report}");
    }

    #[test]
    fn a_raised_exception_is_marked_in_the_diff() {
        let c = case(&Value::Int(1));
        let error = Value::Exception(crate::snapshot::Exception {
            module: "builtins".into(),
            qualname: "ValueError".into(),
            message: None,
            args: Seq::default(),
        });
        let Verdict::Failed(report) = judge(&c, &Outcome::Raised(snap(&error)), 0.0) else {
            panic!("expected a failure");
        };
        assert!(report.contains("\n-1\n+raised ValueError"), "{report}");
    }

    #[test]
    fn the_summary_counts_and_decides_the_exit_code() {
        let mut summary = Summary::default();
        summary.add(&Verdict::Passed);
        summary.add(&Verdict::Skipped("x".into()));
        assert_eq!(summary.to_string(), "1 passed, 0 failed, 1 skipped");
        assert_eq!(summary.exit_code(), 0);
        summary.add(&Verdict::Failed("d".into()));
        assert_eq!(summary.exit_code(), 1);
    }
}
