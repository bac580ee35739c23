//! `fever replay`'s arguments, and those of the hidden `fever _replay-serve` (the program side
//! that the front end starts), with their conversion into [`ReplayConfig`] / [`ServeConfig`].

use std::path::PathBuf;

use clap::Args;
use fever_core::replay::CallRef;

use super::{program_config, ProgramArgs};
use crate::config::{
    Debugger, Keep, RecordConfig, ReplayConfig, ServeConfig, SnapshotLimits, Snapshots,
    DEFAULT_MAX_CALLS,
};

pub const ABOUT: &str = "Runs SCRIPT (or -m MODULE) once, recorded, and keeps the finished program \
    warm in memory. Then any segment of it can be re-run with the code as it is now: from a start \
    call, which runs again with the very argument objects it first had, to the return of an end \
    call. Each replay runs in a fork of the warm program, so it changes nothing there: two replays \
    in a row start from the same state, and a replay that raises, hangs or crashes costs nothing.\n\n\
    With --start, fever replays that one segment without a UI and prints the end call's local \
    variables and its return value next to the recorded one (a diff when they differ), or the \
    traceback. --break-at-end opens the debugger in the end call's frame at its return (or where \
    it raised). Without --start, fever replay needs a terminal.\n\n\
    A call is written module.qualname#N: the N-th call of that function (default: the first), \
    e.g. app.summarize#2 or shop.Cart.total.";

pub const EXAMPLES: &str = "Examples:\n  fever replay --start app.summarize app.py\n  \
    fever replay --start 'app.main#1' --end app.summarize --break-at-end app.py\n  \
    fever replay --start 'pipeline.step#3' --timeout 10 -m pipeline";

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum DebuggerArg {
    Pdb,
    Pdbpp,
    Ipdb,
    Pudb,
}

impl From<DebuggerArg> for Debugger {
    fn from(arg: DebuggerArg) -> Self {
        match arg {
            DebuggerArg::Pdb => Debugger::Pdb,
            DebuggerArg::Pdbpp => Debugger::Pdbpp,
            DebuggerArg::Ipdb => Debugger::Ipdb,
            DebuggerArg::Pudb => Debugger::Pudb,
        }
    }
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Replay from this call without the UI: module.qualname#N (N-th call, default 1).
    #[arg(long, value_name = "CALL")]
    start: Option<String>,

    /// Stop after this call returns (module.qualname#N, counted within the start call)
    /// [default: the start call].
    #[arg(long, value_name = "CALL", requires = "start")]
    end: Option<String>,

    /// Open the debugger in the end call's frame when it returns.
    #[arg(long)]
    break_at_end: bool,

    /// The debugger to open (pdbpp, ipdb and pudb must be installed in the program's Python).
    #[arg(long, value_enum, default_value_t = DebuggerArg::Pdb)]
    debugger: DebuggerArg,

    /// Stop a replay still running after SECONDS (the warm program is untouched).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<f64>,

    /// Do not watch files: no hot reload while the program is warm.
    #[arg(long)]
    no_watch: bool,

    #[command(flatten)]
    program: ProgramArgs,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[arg(long, value_name = "PATH")]
    control: PathBuf,

    #[arg(long, value_name = "PATH")]
    trace: PathBuf,

    #[arg(long, value_name = "CALL", conflicts_with = "keep_first")]
    keep: Option<String>,

    #[arg(long, value_name = "N")]
    keep_first: Option<u32>,

    #[arg(long)]
    no_watch: bool,

    #[arg(long, value_enum, value_name = "DEBUGGER")]
    post_mortem: Option<DebuggerArg>,

    #[command(flatten)]
    program: ProgramArgs,
}

fn call(text: &str, option: &str) -> Result<CallRef, String> {
    CallRef::parse(text).map_err(|err| format!("{option}: {err}"))
}

impl ReplayArgs {
    pub fn config(self) -> Result<ReplayConfig, String> {
        let timeout = match self.timeout {
            None => None,
            Some(s) if s.is_finite() && s > 0.0 => Some(std::time::Duration::from_secs_f64(s)),
            Some(_) => return Err("--timeout must be a number of seconds over 0".into()),
        };
        let mut run = program_config(self.program)?;
        run.watch = !self.no_watch;
        Ok(ReplayConfig {
            run,
            start: self
                .start
                .as_deref()
                .map(|s| call(s, "--start"))
                .transpose()?,
            end: self.end.as_deref().map(|s| call(s, "--end")).transpose()?,
            break_at_end: self.break_at_end,
            debugger: self.debugger.into(),
            timeout,
        })
    }
}

impl ServeArgs {
    pub fn config(self) -> Result<ServeConfig, String> {
        let keep = match (self.keep, self.keep_first) {
            (Some(c), _) => Keep::Call(call(&c, "--keep")?),
            (None, Some(n)) => Keep::First(n),
            (None, None) => Keep::First(0),
        };
        let mut run = program_config(self.program)?;
        run.watch = !self.no_watch;
        Ok(ServeConfig {
            record: RecordConfig {
                run,
                output: self.trace,
                snapshots: Snapshots::All,
                max_calls_per_function: DEFAULT_MAX_CALLS,
                limits: SnapshotLimits::default(),
                profile_only: false,
            },
            control: self.control,
            keep,
            post_mortem: self.post_mortem.map(Into::into),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{convert, Cli};
    use crate::config::{Command, Keep, Target, Verbosity};
    use clap::Parser;

    fn parse(argv: &[&str]) -> Result<Command, String> {
        convert(Cli::try_parse_from(argv).map_err(|e| e.to_string())?)
    }

    #[test]
    fn headless_replay_options() {
        let Ok(Command::Replay(c)) = parse(&[
            "fever",
            "replay",
            "--start",
            "app.f#2",
            "--end",
            "app.g",
            "--break-at-end",
            "--timeout",
            "1.5",
            "app.py",
            "--start",
            "x",
        ]) else {
            panic!("not a replay")
        };
        assert_eq!(c.start.unwrap().to_string(), "app.f#2");
        assert_eq!(c.end.unwrap().to_string(), "app.g#1");
        assert!(c.break_at_end);
        assert_eq!(c.timeout, Some(std::time::Duration::from_millis(1500)));
        assert_eq!(c.run.args, ["--start", "x"]);
        assert!(parse(&["fever", "replay", "--start", "nodot", "a.py"])
            .unwrap_err()
            .contains("--start"));
        assert!(parse(&["fever", "replay", "--end", "a.f", "a.py"]).is_err());
        assert!(parse(&[
            "fever",
            "replay",
            "--start",
            "a.f",
            "--timeout",
            "0",
            "a.py"
        ])
        .is_err());
    }

    #[test]
    fn the_serve_command_line_parses_back() {
        let Ok(Command::Replay(replay)) = parse(&[
            "fever",
            "replay",
            "-q",
            "--root",
            "src",
            "--no-watch",
            "-m",
            "pkg",
            "a",
            "-v",
        ]) else {
            panic!("not a replay")
        };
        for (keep, post_mortem) in [
            (Keep::First(16), Some(crate::config::Debugger::Ipdb)),
            (
                Keep::Call(fever_core::replay::CallRef::parse("m.f#3").unwrap()),
                None,
            ),
        ] {
            let serve = crate::config::ServeConfig {
                record: crate::config::RecordConfig {
                    run: replay.run.clone(),
                    output: "/tmp/x/run.trace".into(),
                    snapshots: crate::config::Snapshots::All,
                    max_calls_per_function: crate::config::DEFAULT_MAX_CALLS,
                    limits: crate::config::SnapshotLimits::default(),
                    profile_only: false,
                },
                control: "/tmp/x/control.sock".into(),
                keep,
                post_mortem,
            };
            let mut argv: Vec<std::ffi::OsString> = vec!["fever".into()];
            argv.extend(serve.to_args());
            let Ok(Command::ReplayServe(back)) = convert(Cli::try_parse_from(argv).unwrap()) else {
                panic!("not a serve command")
            };
            assert_eq!(back, serve);
        }
        assert_eq!(replay.run.target, Target::Module("pkg".into()));
        assert_eq!(replay.run.verbosity, Verbosity::Quiet);
        assert!(!replay.run.watch);
    }
}
