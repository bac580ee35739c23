//! What a reload did: the [`Outcome`] of one save, its typed [`ReloadEvent`]s, and how they read
//! on stderr.

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};
use std::time::Duration;

/// What one save did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// What was applied (or the error that rejected the save).
    pub events: Vec<ReloadEvent>,
    /// The file as the program's code names it (`co_filename`), when a loaded module runs it.
    pub file: Option<String>,
    /// The running text changed (false for an identical save or a rejected one).
    pub changed: bool,
    /// What new or changed top-level statements (module level or class body) rebind.
    pub rebinds: Rebinds,
    /// The save brought back the running text after a rejected one (an undone syntax error).
    pub recovered: bool,
}

/// The names a save's changed statements bind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub enum Rebinds {
    /// No statement changed.
    #[default]
    Nothing,
    /// These names.
    Names(BTreeSet<String>),
    /// Unknown (`from m import *`, a file fever had not seen).
    Anything,
}

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
    /// A module-level name another module copied with `from m import NAME` was rebound, and
    /// that copy (still the old object) now holds the new value too.
    CopyUpdated {
        /// `module.NAME` that changed.
        name: String,
        /// `other.ALIAS`, the copy.
        copy: String,
    },
    /// The same, but the copy was rebound since it was imported: left as it is.
    CopyKept { name: String, copy: String },
    /// A changed function is running right now (on a thread, or a suspended generator or
    /// coroutine): that call goes on with the code it started with.
    Running {
        /// Its qualified name.
        name: String,
        /// Where: `thread NAME at FILE:LINE` or `suspended coroutine at FILE:LINE`.
        frames: Vec<String>,
    },
    /// The saved file looks like a save in progress (empty) even after waiting: nothing of it
    /// was applied.
    Held { file: String, what: String },
    /// Every module running the saved file was still being imported (its code not run yet, the
    /// text it runs perhaps read before the save): the save is applied once the import ends.
    Importing { file: String },
    /// Something went wrong; the running code for it is unchanged.
    Error {
        file: String,
        line: Option<usize>,
        message: String,
    },
}

impl ReloadEvent {
    /// Did a save with these events find its file still being imported (and so applies it
    /// again once the import ends)?
    pub fn any_importing(events: &[ReloadEvent]) -> bool {
        events
            .iter()
            .any(|e| matches!(e, ReloadEvent::Importing { .. }))
    }

    fn is_error(&self) -> bool {
        matches!(self, ReloadEvent::Error { .. })
    }

    /// Says something about the program rather than a change made to it (printed after the
    /// changes, untimed).
    fn is_note(&self) -> bool {
        matches!(
            self,
            ReloadEvent::Running { .. }
                | ReloadEvent::CopyKept { .. }
                | ReloadEvent::Held { .. }
                | ReloadEvent::Importing { .. }
        )
    }

    /// Shown without `-v`?
    fn is_notable(&self) -> bool {
        !matches!(
            self,
            ReloadEvent::Moved { .. } | ReloadEvent::CopyKept { .. }
        )
    }

    /// The line for this event; `verbose` adds details some events have.
    pub fn line(&self, verbose: bool) -> String {
        match self {
            ReloadEvent::Running { name, frames } if verbose && !frames.is_empty() => format!(
                "{name}() is running ({}); its new code applies from its next call",
                frames.join("; ")
            ),
            _ => self.to_string(),
        }
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
            ReloadEvent::CopyUpdated { name, copy } => {
                write!(f, "updated {copy} (imported from {name})")
            }
            ReloadEvent::CopyKept { name, copy } => write!(
                f,
                "left {copy} alone (imported from {name}, but rebound since)"
            ),
            ReloadEvent::Running { name, .. } => write!(
                f,
                "{name}() is running; its new code applies from its next call"
            ),
            ReloadEvent::Held { file, what } => {
                write!(f, "{file} {what}; the running code stays as it is")
            }
            ReloadEvent::Importing { file } => write!(
                f,
                "{file} is still being imported; the save applies once the import ends"
            ),
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
    lines_timed(events, verbose, Some(&milliseconds(elapsed)))
}

fn milliseconds(elapsed: Duration) -> String {
    format!("{:.1} ms", elapsed.as_secs_f64() * 1000.0)
}

/// A child process's answer to a save: what the save did there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildOutcome {
    pub pid: u32,
    pub events: Vec<ReloadEvent>,
}

/// The stderr lines for one save applied in this process (`events`) and in its child processes
/// (`children`; `busy` did not answer in time), each said once: the changes every process made
/// alike get one report with the count of processes (`reloaded app.work (1.2 ms, 3 processes)`);
/// a child that did something else (an error, say) is named in its own lines, and so are the
/// children whose errors are said when this process ran none of the file.
pub fn family_lines(
    events: &[ReloadEvent],
    children: &[ChildOutcome],
    busy: &[u32],
    verbose: bool,
    elapsed: Duration,
) -> Vec<String> {
    let changes = |events: &[ReloadEvent]| -> Vec<ReloadEvent> {
        events.iter().filter(|e| !e.is_note()).cloned().collect()
    };
    let own = changes(events);
    // What most processes did: this one's changes, or a child's when this one runs none of it.
    let base = if own.is_empty() {
        children
            .iter()
            .map(|c| changes(&c.events))
            .find(|c| !c.is_empty())
            .unwrap_or_default()
    } else {
        own.clone()
    };
    let alike: Vec<&ChildOutcome> = children
        .iter()
        .filter(|c| changes(&c.events) == base)
        .collect();
    let processes = usize::from(own == base) + alike.len();
    let timing = if processes == 1 && own == base {
        milliseconds(elapsed)
    } else {
        format!(
            "{}, {processes} process{}",
            milliseconds(elapsed),
            if processes == 1 { "" } else { "es" }
        )
    };
    let mut lines = if own == base {
        lines_timed(events, verbose, Some(&timing))
    } else {
        // Taken from children: its errors name them (the changes have their count).
        let (errors, changes): (Vec<ReloadEvent>, Vec<ReloadEvent>) =
            base.iter().cloned().partition(ReloadEvent::is_error);
        let mut first = lines_timed(&changes, verbose, Some(&timing));
        let pids: Vec<u32> = alike.iter().map(|c| c.pid).collect();
        first.extend(errors.iter().map(|e| named(&e.line(verbose), &pids)));
        first.extend(lines_timed(events, verbose, None));
        first
    };
    // What children said besides, each line once with the processes that said it.
    let said: BTreeSet<String> = lines_timed(events, verbose, None).into_iter().collect();
    let mut extra: Vec<(String, Vec<u32>)> = Vec::new();
    for child in children {
        let differs = changes(&child.events) != base;
        for event in child.events.iter().filter(|e| differs || e.is_note()) {
            let line = event.line(verbose);
            if !(verbose || event.is_notable()) || said.contains(&line) {
                continue;
            }
            match extra.iter_mut().find(|(l, _)| *l == line) {
                Some((_, pids)) => pids.push(child.pid),
                None => extra.push((line, vec![child.pid])),
            }
        }
    }
    for (line, pids) in extra {
        lines.push(named(&line, &pids));
    }
    for pid in busy {
        lines.push(format!(
            "process {pid} has not answered yet; it applies the save when it next runs Python code"
        ));
    }
    lines
}

/// `line` said by the processes `pids`: `process 12: LINE`, `error: processes 12, 14: ...`.
fn named(line: &str, pids: &[u32]) -> String {
    let who = match pids {
        [pid] => format!("process {pid}"),
        _ => format!(
            "processes {}",
            pids.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    match line.strip_prefix("error: ") {
        Some(error) => format!("error: {who}: {error}"),
        None => format!("{who}: {line}"),
    }
}

fn lines_timed(events: &[ReloadEvent], verbose: bool, timing: Option<&str>) -> Vec<String> {
    let shown: Vec<&ReloadEvent> = events
        .iter()
        .filter(|e| verbose || e.is_notable())
        .collect();
    let changes: Vec<&&ReloadEvent> = shown
        .iter()
        .filter(|e| !e.is_error() && !e.is_note())
        .collect();
    let mut lines: Vec<String> = if !verbose && changes.len() > SUMMARY_THRESHOLD {
        vec![summary(&changes)]
    } else {
        changes.iter().map(|e| e.line(verbose)).collect()
    };
    if let (Some(last), Some(timing)) = (lines.last_mut(), timing) {
        let _ = write!(last, " ({timing})");
    }
    for shown_last in [ReloadEvent::is_note, ReloadEvent::is_error] {
        lines.extend(
            shown
                .iter()
                .filter(|e| shown_last(e))
                .map(|e| e.line(verbose)),
        );
    }
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
        (
            count(|e| matches!(e, ReloadEvent::CopyUpdated { .. })),
            "imported copies updated",
        ),
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
    fn running_frames_and_copies() {
        let events = [
            reloaded("app.main"),
            ReloadEvent::Running {
                name: "main".into(),
                frames: vec!["thread MainThread at app.py:9".into()],
            },
            ReloadEvent::CopyUpdated {
                name: "config.RATE".into(),
                copy: "app.RATE".into(),
            },
            ReloadEvent::CopyKept {
                name: "config.RATE".into(),
                copy: "other.RATE".into(),
            },
        ];
        assert_eq!(
            report_lines(&events, false, Duration::from_millis(1)),
            [
                "reloaded app.main",
                "updated app.RATE (imported from config.RATE) (1.0 ms)",
                "main() is running; its new code applies from its next call",
            ]
        );
        assert_eq!(
            report_lines(&events, true, Duration::from_millis(1))[2..],
            [
                "main() is running (thread MainThread at app.py:9); its new code applies from its next call",
                "left other.RATE alone (imported from config.RATE, but rebound since)",
            ]
        );
    }

    #[test]
    fn a_save_applied_alike_in_children_is_said_once_with_the_count() {
        let child = |pid, events| ChildOutcome { pid, events };
        let events = [reloaded("app.work")];
        let children = [
            child(11, vec![reloaded("app.work")]),
            child(12, vec![reloaded("app.work")]),
        ];
        assert_eq!(
            family_lines(&events, &children, &[], false, Duration::from_micros(1250)),
            ["reloaded app.work (1.2 ms, 3 processes)"]
        );
        assert_eq!(
            family_lines(&events, &[], &[], false, Duration::from_micros(1250)),
            ["reloaded app.work (1.2 ms)"]
        );
    }

    #[test]
    fn a_child_that_differs_is_named() {
        let events = [reloaded("app.work")];
        let error = ReloadEvent::Error {
            file: "app.py".into(),
            line: Some(3),
            message: "NameError: x".into(),
        };
        let children = [
            ChildOutcome {
                pid: 11,
                events: vec![reloaded("app.work")],
            },
            ChildOutcome {
                pid: 12,
                events: vec![error.clone()],
            },
            ChildOutcome {
                pid: 14,
                events: vec![error],
            },
        ];
        assert_eq!(
            family_lines(&events, &children, &[13], false, Duration::from_millis(2)),
            [
                "reloaded app.work (2.0 ms, 2 processes)",
                "error: processes 12, 14: app.py:3: NameError: x",
                "process 13 has not answered yet; it applies the save when it next runs Python code",
            ]
        );
    }

    #[test]
    fn a_module_only_children_run_is_reported_from_them() {
        let children = [ChildOutcome {
            pid: 11,
            events: vec![reloaded("work.f")],
        }];
        assert_eq!(
            family_lines(&[], &children, &[], false, Duration::from_millis(1)),
            ["reloaded work.f (1.0 ms, 1 process)"]
        );
    }

    #[test]
    fn an_error_only_children_had_names_them() {
        let error = |line| ReloadEvent::Error {
            file: "work.py".into(),
            line: Some(line),
            message: "SyntaxError: invalid syntax".into(),
        };
        let child = |pid, events| ChildOutcome { pid, events };
        // This process does not run the file; one child says so, both failed alike.
        let children = [child(11, vec![error(3)]), child(12, vec![error(3)])];
        assert_eq!(
            family_lines(&[], &children[..1], &[], false, Duration::from_millis(1)),
            ["error: process 11: work.py:3: SyntaxError: invalid syntax"]
        );
        assert_eq!(
            family_lines(&[], &children, &[], false, Duration::from_millis(1)),
            ["error: processes 11, 12: work.py:3: SyntaxError: invalid syntax"]
        );
        // Part applied, part rejected: the changes counted, the error named.
        let partly = vec![reloaded("work.f"), error(9)];
        let children = [child(11, partly.clone()), child(12, vec![error(3)])];
        assert_eq!(
            family_lines(&[], &children, &[], false, Duration::from_millis(1)),
            [
                "reloaded work.f (1.0 ms, 1 process)",
                "error: process 11: work.py:9: SyntaxError: invalid syntax",
                "error: process 12: work.py:3: SyntaxError: invalid syntax",
            ]
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
