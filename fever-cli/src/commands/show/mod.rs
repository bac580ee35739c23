//! `fever show TRACE`: reads and validates the trace, says what it holds on stderr, and writes
//! the view asked for to stdout or a file.
//!
//! - `open.rs`: reading the trace, with errors that name the file.
//! - `report.rs`: the summary line and the warnings, on stderr.
//! - `tree.rs`: the call tree as text.
//! - `profile.rs`: the profile table.
//! - `output.rs`: stdout, or a file written whole or not at all; a closed pipe ends quietly.
//!
//! The computing (trees, collapsing, profiles, exports) is `fever_core::analysis`'s.

mod open;
pub(crate) mod output;
mod profile;
mod report;
mod tree;

use std::io::{self, Write};

use fever_core::analysis::export::{chrome, perfetto, speedscope};
use fever_core::settings::is_profile_only;

use crate::config::{ExportFormat, ShowConfig, ShowView};
use crate::messages;
use output::Delivered;

/// Runs `fever show`; returns the exit code (errors become `fever: error: ...` and exit 2).
pub(crate) fn run(config: &ShowConfig) -> anyhow::Result<i32> {
    output::check_not_the_trace(&config.output, &config.trace)?;
    let reader = open::open(&config.trace)?;
    if is_profile_only(reader.header()) && !matches!(config.view, ShowView::Profile { .. }) {
        anyhow::bail!(
            "{} was recorded with `fever record --profile-only`: it holds each function's \
             calls and times, not the calls themselves\nhint: show it with `fever show {} \
             --profile`, or record the program again without --profile-only for this view",
            config.trace.display(),
            config.trace.display()
        );
    }
    report::summary(&config.trace, &reader);
    if config.view == ShowView::Export(ExportFormat::Chrome) {
        report::json_size(&config.trace, &reader);
    }
    let write = |out: &mut dyn Write| -> io::Result<()> {
        match config.view {
            ShowView::Tree { depth, max_lines } => tree::write(&reader, depth, max_lines, out),
            ShowView::Profile { limit } => profile::write(&reader, limit, out),
            ShowView::Export(ExportFormat::Perfetto) => perfetto::write(&reader, out).map(drop),
            ShowView::Export(ExportFormat::Chrome) => chrome::write(&reader, out).map(drop),
            ShowView::Export(ExportFormat::Speedscope) => speedscope::write(&reader, out).map(drop),
        }
    };
    if let Delivered::File { path, bytes } = output::deliver(&config.output, write)? {
        let wrote = format!(
            "wrote {} ({})",
            path.display(),
            fever_core::units::size(bytes)
        );
        messages::info(&match config.view {
            ShowView::Export(format) => format!("{wrote}: open it at {}", viewer(format)),
            ShowView::Tree { .. } | ShowView::Profile { .. } => wrote,
        });
    }
    Ok(0)
}

/// Where to open an export.
fn viewer(format: ExportFormat) -> &'static str {
    match format {
        ExportFormat::Perfetto => "https://ui.perfetto.dev",
        ExportFormat::Chrome => "https://ui.perfetto.dev or chrome://tracing",
        ExportFormat::Speedscope => "https://www.speedscope.app",
    }
}
