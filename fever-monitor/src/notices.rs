//! How the engine speaks: it emits typed [`Notice`]s to the sink its host installed (the
//! command line, which puts them into words on stderr), and never prints itself.

use std::sync::OnceLock;
use std::time::Duration;

use fever_core::notice::Notice;
use fever_core::settings::Verbosity;
use fever_core::{ChildOutcome, ReloadEvent};

static SINK: OnceLock<fn(&Notice)> = OnceLock::new();
/// How much [`reloaded`] tells (the watcher's `-q`/`-v`).
static VERBOSITY: OnceLock<Verbosity> = OnceLock::new();

/// Sends every notice to `sink` from now on (the first sink installed stays).
pub fn install(sink: fn(&Notice)) {
    let _ = SINK.set(sink);
}

/// Tells the user `notice` (nothing happens before a sink is installed).
pub fn emit(notice: &Notice) {
    if let Some(sink) = SINK.get() {
        sink(notice);
    }
}

/// Sets how much [`reloaded`] tells from now on (the first setting stays).
pub fn set_verbosity(verbosity: Verbosity) {
    let _ = VERBOSITY.set(verbosity);
}

/// Tells what one save did here (`events`) and in the child processes that answered
/// (`children`; `busy` ones did not in time), in `elapsed`, as much as the verbosity set shows.
pub fn reloaded(
    events: &[ReloadEvent],
    children: Vec<ChildOutcome>,
    busy: Vec<u32>,
    elapsed: Duration,
) {
    let verbosity = VERBOSITY.get().copied().unwrap_or(Verbosity::Normal);
    let shown = |events: &[ReloadEvent]| -> Vec<ReloadEvent> {
        match verbosity {
            Verbosity::Quiet => events
                .iter()
                .filter(|e| matches!(e, ReloadEvent::Error { .. }))
                .cloned()
                .collect(),
            _ => events.to_vec(),
        }
    };
    emit(&Notice::Reloaded {
        events: shown(events),
        children: children
            .into_iter()
            .map(|c| ChildOutcome {
                pid: c.pid,
                events: shown(&c.events),
            })
            .collect(),
        busy: if verbosity == Verbosity::Quiet {
            Vec::new()
        } else {
            busy
        },
        verbose: verbosity >= Verbosity::Verbose,
        elapsed,
    });
}
