//! fever's command line: clap arguments parsed once into a [`Command`] config, then handed to a
//! [`Host`] that knows how to run Python.
//!
//! The crate has no Python inside. Two hosts exist: the extension `fever._native` runs commands
//! inside the interpreter it is loaded in (that is what `.venv/bin/fever` and `python -m fever` use),
//! and the standalone binary (`src/main.rs`) re-executes itself as `python -m fever` for commands
//! that need an interpreter.
//!
//! Commands that need no interpreter ([`commands`]: `fever show`, `fever ps`, `fever attach`,
//! `fever replay`'s front end) run right here; the front end starts the program side with
//! [`Host::python`]. Beside them: `args` (clap) and `config` (what it is parsed into),
//! [`messages`] (how fever speaks on stderr), `terminal` (the full-screen views' terminal) and
//! `columns` (aligned text tables); [`interpreters`] remembers which interpreters the standalone
//! binary found able to run fever.

mod args;
mod columns;
mod commands;
mod config;
pub mod interpreters;
pub mod messages;
mod terminal;

/// For `benches/replay_ui.rs`, which measures the replay UI; not an API.
#[doc(hidden)]
pub use commands::replay::{frame_costs, FrameCosts};
pub use config::project_root;
pub use config::{
    AttachConfig, CacheConfig, CheckAction, CheckConfig, Command, Debugger, ExportFormat, Keep,
    Output, RecordConfig, ReplayConfig, RunConfig, ServeConfig, ShowConfig, ShowView,
    SnapshotLimits, Snapshots, Target, Verbosity, WatchConfig,
};

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use fever_core::check::{Case, Checked, Unselected};
use fever_core::trace::TraceReader;

/// What runs the commands that need a Python interpreter.
pub trait Host {
    /// Runs a script or module under fever; returns the process exit code.
    fn run(&self, config: &RunConfig) -> anyhow::Result<i32>;
    /// Runs a program like [`run`](Self::run) while recording a trace; returns the exit code.
    fn record(&self, config: &RecordConfig) -> anyhow::Result<i32>;
    /// Runs a program again after every save, with the call cache; returns the exit code.
    fn watch(&self, config: &WatchConfig) -> anyhow::Result<i32>;
    /// Opens the trace of `config` in an interpreter, with the project's modules imported, and
    /// hands its calls to `policy` (`None` after Ctrl-C while importing), which checks them and
    /// reports; returns the exit code (0 all matched, 1 a difference, 2 an unreadable trace).
    fn check(&self, config: &CheckConfig, policy: CheckPolicy<'_>) -> anyhow::Result<i32>;
    /// The program side of `fever replay`: runs the program recorded, then serves replays on
    /// the control socket until told to quit; returns the exit code.
    fn serve(&self, config: &ServeConfig) -> anyhow::Result<i32>;
    /// The interpreter that runs the program side of `fever replay` (`requested` is `--python`
    /// or `FEVER_PYTHON`); fails with a clear message when it cannot run fever.
    fn python(&self, requested: Option<&Path>) -> anyhow::Result<PathBuf>;
}

/// What `fever check` does with the opened trace's calls (`None`: interrupted while opening).
pub type CheckPolicy<'a> = &'a dyn Fn(Option<&mut dyn Checks>) -> anyhow::Result<i32>;

/// The calls of an opened trace, re-invoked in an interpreter one at a time.
pub trait Checks {
    /// The selected calls, in order.
    fn cases(&self) -> &[Case];
    /// How many calls were not selected, by reason.
    fn unselected(&self) -> &BTreeMap<Unselected, usize>;
    /// The trace being checked.
    fn reader(&self) -> &TraceReader;
    /// Re-invokes call `index` and judges it; `None` when Ctrl-C interrupted it.
    fn check(&mut self, index: usize) -> anyhow::Result<Option<Checked>>;
}

/// Parses `argv` (program name first) and executes the command on `host`; returns the exit code.
/// Usage errors print clap's message and return 2; other errors print `fever: error: ...` and
/// return 2.
pub fn main<I, T>(argv: I, host: &dyn Host) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let command = match args::parse(argv) {
        Ok(command) => command,
        Err(args::ParseOutcome::Exit(code)) => return code,
    };
    let result = match &command {
        Command::Run(config) => host.run(config),
        Command::Record(config) => host.record(config),
        Command::Watch(config) => host.watch(config),
        Command::Show(config) => commands::show::run(config),
        Command::Check(config) => {
            host.check(config, &|checks| commands::check::run(config, checks))
        }
        Command::Replay(config) => commands::replay::run(config, host),
        Command::ReplayServe(config) => host.serve(config),
        Command::Ps => commands::attach::ps(),
        Command::Attach(config) => commands::attach::run(config),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            messages::error(&format!("{err:#}"));
            2
        }
    }
}
