//! The reload engine: a saved path → the modules running it → a plan (fever-core) → applied in
//! the real namespaces → typed events for the CLI to print.
//!
//! - [`compile`]: synthetic sources that compile one definition at its real lines and inside its
//!   enclosing classes, and code-object surgery (line shifts).
//! - [`apply`]: carries out a plan on one module: swaps `__code__`, executes definitions and
//!   statements, deletes names.
//! - [`modules`]: which loaded modules run a given file.

mod apply;
mod compile;
mod modules;

use std::path::Path;

use fever_core::{plan_reload, Index, ReloadEvent};
use pyo3::prelude::*;

use crate::sources;

/// Reloads the modules running `path` after a save; returns what happened.
pub fn reload_path(py: Python<'_>, path: &Path) -> Vec<ReloadEvent> {
    let modules = modules::running(py, path);
    if modules.is_empty() {
        return Vec::new();
    }
    let file = modules[0].file.clone();
    // Deleted or renamed away: the running code stays as it is.
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    match reload_bytes(py, &modules, &bytes) {
        Ok(events) => events,
        // One save can arrive as several events: report a rejected content once.
        Err(error) if sources::reject(&file, &bytes) => vec![error],
        Err(_) => Vec::new(),
    }
}

/// Applies the saved `bytes` to `modules` (all running the same file), or returns the error that
/// rejected them with nothing changed.
fn reload_bytes(
    py: Python<'_>,
    modules: &[modules::LoadedModule<'_>],
    bytes: &[u8],
) -> Result<Vec<ReloadEvent>, ReloadEvent> {
    let file = &modules[0].file;
    let display = display_path(file);
    let text = sources::decode(py, bytes)
        .map_err(|message| error(&display, line_of_decode_error(&message), message))?;
    let running = sources::get(file).ok_or_else(|| {
        error(
            &display,
            None,
            "fever did not see this module being imported; restart to reload it".into(),
        )
    })?;
    if running.text == text {
        sources::accept(file);
        return Ok(Vec::new());
    }
    let index = Index::build(&text);
    if index.broken.is_some() {
        if let Some(event) = compile::whole_file_error(py, &text, file, &display) {
            return Err(event);
        }
    }
    let plan = plan_reload(&running.index, &index);
    let mut events = Vec::new();
    for module in modules {
        events.append(&mut apply::apply(py, module, &text, &plan, &display)?);
    }
    sources::set(file, text);
    Ok(events)
}

/// `file` relative to the current directory when it is under it.
fn display_path(file: &str) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            Path::new(file)
                .strip_prefix(cwd)
                .ok()
                .map(|p| p.display().to_string())
        })
        .unwrap_or_else(|| file.to_owned())
}

fn line_of_decode_error(message: &str) -> Option<usize> {
    message
        .strip_prefix("line ")?
        .split(':')
        .next()?
        .parse()
        .ok()
}

fn error(file: &str, line: Option<usize>, message: String) -> ReloadEvent {
    let message = message
        .strip_prefix(&format!("line {}: ", line.unwrap_or(0)))
        .map(str::to_owned)
        .unwrap_or(message);
    ReloadEvent::Error {
        file: file.to_owned(),
        line,
        message,
    }
}
