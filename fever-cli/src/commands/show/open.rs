//! Opening a trace for `fever show`: every failure becomes one message naming the file.

use std::io;
use std::path::Path;

use anyhow::anyhow;
use fever_core::trace::{TraceError, TraceReader};

/// Reads and validates the trace at `path`; the error reads `PATH: what is wrong`.
pub(super) fn open(path: &Path) -> anyhow::Result<TraceReader> {
    let fail = |message: String| anyhow!("{}: {message}", path.display());
    match std::fs::metadata(path) {
        Err(err) => return Err(fail(io_message(&err))),
        Ok(meta) if meta.is_dir() => {
            return Err(fail("is a directory, not a trace file".to_owned()))
        }
        Ok(_) => {}
    }
    TraceReader::open(path).map_err(|err| {
        fail(match err {
            TraceError::Io(err) => io_message(&err),
            other => other.to_string(),
        })
    })
}

/// What went wrong, in words rather than `(os error N)`.
fn io_message(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::NotFound => "no such file".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => format!("cannot read it: {err}"),
    }
}
