//! fever's own messages on stderr: `fever: ...`, `fever: warning: ...`, `fever: error: ...`,
//! `hint: ...`.

use std::io::Write;

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
    emit(&format!("fever: error: {message}\n"));
}

/// Prints `hint: MESSAGE` on stderr (after an error with an obvious next step).
pub fn hint(message: &str) {
    emit(&format!("hint: {message}\n"));
}

fn emit(line: &str) {
    // One write call per line, so lines from different threads do not interleave.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
