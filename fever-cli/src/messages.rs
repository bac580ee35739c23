//! fever's own messages on stderr: `fever: ...`, `fever: warning: ...`, `fever: error: ...`,
//! `hint: ...`; and the words for the engine's [`Notice`]s.

use std::io::Write;

use fever_core::family_lines;
use fever_core::notice::{Alteration, Effect, Notice, Without};
use fever_core::settings::Target;

use fever_core::units;

/// Puts one of the engine's notices into words on stderr.
pub fn notice(notice: &Notice) {
    match notice {
        Notice::Watching { root } => info(&format!(
            "watching the directories of {}'s modules as they are imported",
            root.display()
        )),
        Notice::Removed { path } => info(&format!(
            "{} was removed; its running code stays as it is",
            path.display()
        )),
        Notice::Reloaded {
            events,
            children,
            busy,
            verbose,
            elapsed,
        } => {
            for line in family_lines(events, children, busy, *verbose, *elapsed) {
                info(&line);
            }
        }
        Notice::CacheHit {
            function,
            count,
            saved,
        } => {
            let times = if *count > 1 {
                format!(" ×{count}")
            } else {
                String::new()
            };
            info(&format!(
                "cache hit {function}(){times} saved {:.2} s",
                saved.as_secs_f64()
            ));
        }
        Notice::CacheHitSkips { function, effect } => warning(&match effect {
            Effect::Output => format!("{function}() printed output when it ran; cache hits skip it"),
            Effect::Files => format!("{function}() wrote files when it ran; cache hits skip that"),
        }),
        Notice::CacheEvicted { function, bytes } => info(&format!(
            "cache full: evicted {function}() ({})",
            units::size(*bytes)
        )),
        Notice::CacheDropped { count, file } => info(&format!(
            "dropped {count} cached call(s): a top-level statement of {file} they depend on changed"
        )),
        Notice::NotCaching { function, reason } => {
            info(&format!("not caching {function}(): {reason}"));
        }
        Notice::CacheDiscarded { path, error } => warning(&format!(
            "the call cache {} is damaged and was discarded ({error})",
            path.display()
        )),
        Notice::CacheInMemoryOnly { error } => warning(&format!(
            "cannot write the call cache ({error}); it is kept in memory only"
        )),
        Notice::CacheSetupFailed { error } => warning(&format!(
            "could not set up the call cache for a function: {error}"
        )),
        Notice::NoToolId {
            without: Without::Tracing,
        } => info(
            "sys.monitoring tool ids 3 and 4 are taken by other tools; running without tracing",
        ),
        Notice::NoToolId {
            without: Without::CallCache,
        } => warning(
            "sys.monitoring tool ids 3 and 4 are taken by other tools; running without the call cache",
        ),
        Notice::ProgramExited { code } => info(&format!("the program exited with code {code}")),
        Notice::WaitingForChanges => info("waiting for changes"),
        Notice::Rerunning { target } => info(&format!(
            "re-running {}",
            match target {
                Target::Script(path) => path.display().to_string(),
                Target::Module(name) => format!("-m {name}"),
            }
        )),
        Notice::StaysWarm => info("the program finished; it stays warm for replays"),
        Notice::TraceBehind => warning(
            "the recording may miss the last calls (the trace writer did not catch up)",
        ),
        Notice::TracerBusyAtExit => warning(
            "a thread was still inside fever's tracer at exit: the trace ends without its summary",
        ),
        Notice::NoControlSocket { error } => warning(&format!(
            "`fever attach` cannot reach this process: no control socket ({error})"
        )),
        Notice::EventsLost { count } => warning(&format!(
            "{count} events were lost (the trace writer fell behind)"
        )),
        Notice::CorruptRecordsSkipped { count } => warning(&format!(
            "skipped {count} corrupt {} of recorded events (their calls are missing from the trace)",
            if *count == 1 { "batch" } else { "batches" }
        )),
        Notice::Recorded {
            calls,
            functions,
            path,
            bytes,
        } => info(&format!(
            "recorded {calls} calls of {functions} functions to {} ({})",
            path.display(),
            units::size(*bytes)
        )),
        Notice::RecordingFailed { error } => self::error(error),
        Notice::Undone { file, functions } => info(&format!(
            "undid the last reload of {file}: {} run their previous code (the file on disk is unchanged)",
            if functions.is_empty() {
                "its statements".to_owned()
            } else {
                functions.join(", ")
            }
        )),
        Notice::ToolAltered { tool_id, what } => {
            let what = match what {
                Alteration::Freed => format!(
                    "freed fever's sys.monitoring tool {tool_id} (sys.monitoring.free_tool_id)"
                ),
                Alteration::Taken => format!(
                    "gave fever's sys.monitoring tool id {tool_id} to another tool"
                ),
                Alteration::EventsChanged => format!(
                    "changed the events of fever's sys.monitoring tool {tool_id} (sys.monitoring.set_events)"
                ),
                Alteration::CallbacksReplaced => format!(
                    "replaced the callbacks of fever's sys.monitoring tool {tool_id} (sys.monitoring.register_callback)"
                ),
            };
            warning(&format!(
                "the program {what}: calls after that point may be missing"
            ));
        }
        Notice::DebuggerFailed { name, error } => {
            self::error(&format!("cannot open the debugger {name}: {error}"));
        }
    }
}

/// Prints `fever: MESSAGE` on stderr.
pub fn info(message: &str) {
    emit(&format!("fever: {message}\n"));
}

/// Prints `fever: warning: MESSAGE` on stderr.
pub fn warning(message: &str) {
    emit(&format!("fever: warning: {message}\n"));
}

/// Prints `fever: error: MESSAGE` on stderr.
pub fn error(message: &str) {
    emit(&error_line(message));
}

/// Prints `hint: MESSAGE` on stderr (after an error with an obvious next step).
pub fn hint(message: &str) {
    emit(&hint_line(message));
}

/// The line [`error`] prints (for what another process prints in fever's place).
pub fn error_line(message: &str) -> String {
    format!("fever: error: {message}\n")
}

/// The line [`hint`] prints.
pub fn hint_line(message: &str) -> String {
    format!("hint: {message}\n")
}

fn emit(line: &str) {
    // One write call per line, so lines from different threads do not interleave.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
