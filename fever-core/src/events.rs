//! What a reload did, as typed events, and how they read on stderr.

use std::fmt::{self, Write as _};
use std::time::Duration;

/// One outcome of applying a saved file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadEvent {
    /// A function's code was swapped in place; `note` says anything unusual.
    Reloaded { name: String, note: Option<String> },
    /// A new function, class or method was defined.
    Added { name: String },
    /// A definition removed from the file was removed from its namespace.
    Deleted { name: String },
    /// A definition was executed again (changed decorators or class header).
    Redefined { name: String, note: String },
    /// A changed or new statement was executed.
    Executed {
        module: String,
        line: usize,
        summary: String,
    },
    /// A change that was deliberately not applied.
    Skipped {
        module: String,
        line: usize,
        reason: String,
    },
    /// A definition moved to another line (only line numbers changed).
    Moved { name: String, line: usize },
    /// Something went wrong; the running code for it is unchanged.
    Error {
        file: String,
        line: Option<usize>,
        message: String,
    },
}

impl ReloadEvent {
    fn is_error(&self) -> bool {
        matches!(self, ReloadEvent::Error { .. })
    }

    /// Shown without `-v`?
    fn is_notable(&self) -> bool {
        !matches!(self, ReloadEvent::Moved { .. })
    }
}

impl fmt::Display for ReloadEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReloadEvent::Reloaded { name, note: None } => write!(f, "reloaded {name}"),
            ReloadEvent::Reloaded {
                name,
                note: Some(note),
            } => write!(f, "reloaded {name} ({note})"),
            ReloadEvent::Added { name } => write!(f, "added {name}"),
            ReloadEvent::Deleted { name } => write!(f, "deleted {name}"),
            ReloadEvent::Redefined { name, note } => write!(f, "redefined {name} ({note})"),
            ReloadEvent::Executed {
                module,
                line,
                summary,
            } => write!(f, "re-executed {module} line {line}: {summary}"),
            ReloadEvent::Skipped {
                module,
                line,
                reason,
            } => write!(f, "skipped {module} line {line}: {reason}"),
            ReloadEvent::Moved { name, line } => write!(f, "moved {name} to line {line}"),
            ReloadEvent::Error {
                file,
                line: Some(line),
                message,
            } => write!(f, "error: {file}:{line}: {message}"),
            ReloadEvent::Error {
                file,
                line: None,
                message,
            } => write!(f, "error: {file}: {message}"),
        }
    }
}

/// More changes than this in one save are summarized in one line (unless verbose).
pub const SUMMARY_THRESHOLD: usize = 10;

/// The stderr lines (without the `fever: ` prefix) for the events of one save. The time the save
/// took is appended to the last non-error line.
pub fn report_lines(events: &[ReloadEvent], verbose: bool, elapsed: Duration) -> Vec<String> {
    let shown: Vec<&ReloadEvent> = events
        .iter()
        .filter(|e| verbose || e.is_notable())
        .collect();
    let changes: Vec<&&ReloadEvent> = shown.iter().filter(|e| !e.is_error()).collect();
    let mut lines: Vec<String> = if !verbose && changes.len() > SUMMARY_THRESHOLD {
        vec![summary(&changes)]
    } else {
        changes.iter().map(ToString::to_string).collect()
    };
    if let Some(last) = lines.last_mut() {
        let _ = write!(last, " ({:.1} ms)", elapsed.as_secs_f64() * 1000.0);
    }
    lines.extend(
        shown
            .iter()
            .filter(|e| e.is_error())
            .map(ToString::to_string),
    );
    lines
}

fn summary(changes: &[&&ReloadEvent]) -> String {
    let count = |pred: fn(&ReloadEvent) -> bool| changes.iter().filter(|e| pred(e)).count();
    let parts = [
        (
            count(|e| {
                matches!(
                    e,
                    ReloadEvent::Reloaded { .. } | ReloadEvent::Redefined { .. }
                )
            }),
            "reloaded",
        ),
        (count(|e| matches!(e, ReloadEvent::Added { .. })), "added"),
        (
            count(|e| matches!(e, ReloadEvent::Deleted { .. })),
            "deleted",
        ),
        (
            count(|e| matches!(e, ReloadEvent::Executed { .. })),
            "statements re-executed",
        ),
        (
            count(|e| matches!(e, ReloadEvent::Skipped { .. })),
            "skipped",
        ),
        (count(|e| matches!(e, ReloadEvent::Moved { .. })), "moved"),
    ];
    let text: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    format!(
        "reloaded {} definitions: {} (-v lists them)",
        changes.len(),
        text.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reloaded(name: &str) -> ReloadEvent {
        ReloadEvent::Reloaded {
            name: name.into(),
            note: None,
        }
    }

    #[test]
    fn one_line_per_change_with_time_on_the_last() {
        let events = [
            reloaded("app.f"),
            ReloadEvent::Added {
                name: "app.g".into(),
            },
        ];
        assert_eq!(
            report_lines(&events, false, Duration::from_micros(1250)),
            ["reloaded app.f", "added app.g (1.2 ms)"]
        );
    }

    #[test]
    fn moves_only_when_verbose() {
        let events = [ReloadEvent::Moved {
            name: "app.f".into(),
            line: 9,
        }];
        assert!(report_lines(&events, false, Duration::ZERO).is_empty());
        assert_eq!(
            report_lines(&events, true, Duration::ZERO),
            ["moved app.f to line 9 (0.0 ms)"]
        );
    }

    #[test]
    fn errors_come_last_and_untimed() {
        let events = [ReloadEvent::Error {
            file: "app.py".into(),
            line: Some(3),
            message: "SyntaxError: invalid syntax".into(),
        }];
        assert_eq!(
            report_lines(&events, false, Duration::ZERO),
            ["error: app.py:3: SyntaxError: invalid syntax"]
        );
    }

    #[test]
    fn many_changes_are_summarized() {
        let events: Vec<ReloadEvent> = (0..12).map(|i| reloaded(&format!("m.f{i}"))).collect();
        let lines = report_lines(&events, false, Duration::from_millis(3));
        assert_eq!(
            lines,
            ["reloaded 12 definitions: 12 reloaded (-v lists them) (3.0 ms)"]
        );
        assert_eq!(report_lines(&events, true, Duration::ZERO).len(), 12);
    }
}
