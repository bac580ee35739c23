//! `fever replay`'s front end (no Python here): starts the program side under fever, waits for
//! its first run to end, and asks it for replays over the control channel.
//!
//! - `program.rs`: the program side as a child process, and its control connection.
//! - `headless.rs`: `--start`: one replay, printed.
//! - `ui/`: the full-screen UI (without `--start`).
//! - `report.rs`: a replay's result in words: the end call's locals, its return value next to
//!   the recorded one (a diff when they differ), the traceback, the arguments that may differ.

mod headless;
mod program;
mod report;
mod ui;

pub use ui::measure::{frame_costs, FrameCosts};

use std::io::IsTerminal;

use anyhow::bail;

use crate::config::ReplayConfig;
use crate::Host;

/// Runs `fever replay`; returns the exit code.
pub(crate) fn run(config: &ReplayConfig, host: &dyn Host) -> anyhow::Result<i32> {
    if let Some(start) = &config.start {
        return headless::run(config, start, host);
    }
    if !std::io::stdout().is_terminal() {
        bail!(
            "fever replay shows a full-screen UI and needs a terminal; to replay one segment \
             without it, pass --start 'module.function#N' (and --end)"
        );
    }
    ui::run(config, host)
}
