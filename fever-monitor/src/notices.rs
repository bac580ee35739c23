//! How the engine speaks: it emits typed [`Notice`]s to the sink its host installed (the
//! command line, which puts them into words on stderr), and never prints itself.

use std::sync::OnceLock;

use fever_core::notice::Notice;

static SINK: OnceLock<fn(&Notice)> = OnceLock::new();

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
