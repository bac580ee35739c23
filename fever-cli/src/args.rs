//! clap definitions of the command line and their conversion into [`Command`] (`fever show`'s in
//! `args/show.rs`, `fever check`'s in `args/check.rs`).

mod check;
mod show;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::config::{
    Command, RecordConfig, RunConfig, SnapshotLimits, Snapshots, Target, Verbosity,
    DEFAULT_MAX_CALLS,
};

#[derive(Parser, Debug)]
#[command(
    name = "fever",
    version,
    about = "Instant edit-run loop for Python: hot reload of saved functions, call recording, trace views",
    long_about = "fever runs your Python program and patches every saved function into it while it \
                  runs, without a restart. It can also record the program's calls (timings, \
                  arguments, results) and show them as a call tree, a profile, or a file for \
                  Perfetto or speedscope, and replay the recorded calls as a regression test.\n\n\
                  Examples:\n  fever run app.py --port 8000\n  \
                  fever record -o run.trace app.py\n  fever show run.trace --profile\n  \
                  fever check run.trace",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// Run a script or module like `python`, hot-reloading saved .py files of the project.
    #[command(
        long_about = "Runs SCRIPT (or -m MODULE) in this Python process exactly as `python SCRIPT ARGS` \
                      would: same sys.argv, __main__, stdio and exit code. While it runs, each save of \
                      a .py file under the project root patches the changed functions into the running \
                      program; a bad save keeps the old code and prints `fever: error: ...`.\n\n\
                      Everything after SCRIPT (or after -m MODULE) is passed to the program.",
        after_help = "Examples:\n  fever run app.py --port 8000\n  fever run -m mypkg.server\n  \
                      fever run --root src tools/job.py"
    )]
    Run(RunArgs),

    /// Run a script like `fever run` and record a trace of the project's calls.
    #[command(
        long_about = "Runs SCRIPT (or -m MODULE) like `fever run` and records every call of the \
                      project's functions (code under the root; libraries are not traced): the call \
                      tree per thread, timings in nanoseconds, and snapshots of arguments and return \
                      values. The trace is complete even when the program raises, exits or is \
                      interrupted with Ctrl-C. Read it with `fever show TRACE`.",
        after_help = "Examples:\n  fever record -o run.trace app.py --input data.csv\n  \
                      fever record --snapshots none -o fast.trace -m mypkg.job\n  \
                      fever show run.trace --profile"
    )]
    Record(RecordArgs),

    /// Show a recorded trace: its call tree, a profile table, or an export for a trace viewer.
    #[command(long_about = show::ABOUT, after_help = show::EXAMPLES)]
    Show(show::ShowArgs),

    /// Re-invoke the calls of a recorded trace and diff their results: a regression test for CI.
    #[command(long_about = check::ABOUT, after_help = check::EXAMPLES)]
    Check(check::CheckArgs),
}

#[derive(Args, Debug)]
struct RecordArgs {
    /// Where to write the trace.
    #[arg(short, long, value_name = "TRACE", default_value = "fever.trace")]
    output: PathBuf,

    /// What to snapshot: nothing (timings only), call arguments, or arguments and return values.
    #[arg(long, value_enum, default_value_t = SnapshotArg::All)]
    snapshots: SnapshotArg,

    /// Record at most N calls of each function (0 = all); later calls are still counted exactly.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CALLS)]
    max_calls_per_function: u64,

    /// Snapshots: containers nested deeper than N are recorded by type only.
    #[arg(long, value_name = "N", default_value_t = SnapshotLimits::default().depth)]
    snapshot_depth: u32,

    /// Snapshots: items recorded per list, dict, set or object; the rest are counted.
    #[arg(long, value_name = "N", default_value_t = SnapshotLimits::default().items)]
    snapshot_items: u32,

    /// Snapshots: bytes recorded per string; longer ones keep their start and a hash.
    #[arg(long, value_name = "BYTES", default_value_t = SnapshotLimits::default().string_bytes)]
    snapshot_string_bytes: usize,

    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum SnapshotArg {
    None,
    Args,
    All,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Run library module MODULE as a script (like `python -m`); the rest are its arguments.
    #[arg(
        short = 'm',
        value_name = "MODULE",
        num_args = 1..,
        allow_hyphen_values = true,
        conflicts_with = "script"
    )]
    module: Option<Vec<String>>,

    /// Do not watch files: run with hot reload off.
    #[arg(long)]
    no_watch: bool,

    /// Directory whose .py files are watched [default: the script's directory, or . with -m].
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,

    /// Python interpreter to start (standalone binary only) [env: `FEVER_PYTHON`].
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,

    /// Print only errors.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,

    /// Also print what is watched and why changes were skipped.
    #[arg(short, long, action = ArgAction::Count)]
    verbose: u8,

    /// The script to run, then its arguments.
    #[arg(
        value_name = "SCRIPT [ARGS]...",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required_unless_present = "module"
    )]
    script: Vec<String>,
}

/// Why parsing did not produce a command: help, version or a usage error was already printed.
pub enum ParseOutcome {
    Exit(i32),
}

pub fn parse<I, T>(argv: I) -> Result<Command, ParseOutcome>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::try_parse_from(argv).map_err(|err| {
        let _ = err.print();
        ParseOutcome::Exit(if err.use_stderr() { 2 } else { 0 })
    })?;
    let name = match &cli.command {
        Sub::Run(_) => "run",
        Sub::Record(_) => "record",
        Sub::Show(_) => "show",
        Sub::Check(_) => "check",
    };
    convert(cli).map_err(|message| {
        crate::messages::error(&message);
        crate::messages::hint(&format!("see `fever {name} --help`"));
        ParseOutcome::Exit(2)
    })
}

fn convert(cli: Cli) -> Result<Command, String> {
    match cli.command {
        Sub::Run(run) => Ok(Command::Run(run_config(run)?)),
        Sub::Record(record) => Ok(Command::Record(RecordConfig {
            run: run_config(record.run)?,
            output: record.output,
            snapshots: match record.snapshots {
                SnapshotArg::None => Snapshots::None,
                SnapshotArg::Args => Snapshots::Args,
                SnapshotArg::All => Snapshots::All,
            },
            max_calls_per_function: record.max_calls_per_function,
            limits: SnapshotLimits {
                depth: record.snapshot_depth,
                items: record.snapshot_items,
                string_bytes: record.snapshot_string_bytes,
            },
        })),
        Sub::Show(args) => Ok(Command::Show(args.config()?)),
        Sub::Check(args) => Ok(Command::Check(args.config()?)),
    }
}

fn run_config(run: RunArgs) -> Result<RunConfig, String> {
    let (target, args) = match (run.module, run.script) {
        (Some(mut module), _) => {
            let name = module.remove(0);
            (Target::Module(name), module)
        }
        (None, mut script) => {
            let first = script.remove(0);
            // `-mNAME` (no space) reaches us as the first positional value.
            if let Some(name) = first.strip_prefix("-m").filter(|name| !name.is_empty()) {
                (Target::Module(name.to_owned()), script)
            } else if first.starts_with('-') && first != "-" {
                return Err(format!("unknown option '{first}' before the script"));
            } else {
                (Target::Script(PathBuf::from(first)), script)
            }
        }
    };
    if let Target::Module(name) = &target {
        if name.is_empty() || name.starts_with('-') {
            return Err(format!("-m needs a module name, got '{name}'"));
        }
    }
    Ok(RunConfig {
        target,
        args,
        watch: !run.no_watch,
        root: run.root,
        python: python_or_env(run.python),
        verbosity: verbosity(run.quiet, run.verbose),
    })
}

/// `-q` / `-v` (`-q` and `-v` conflict in clap).
fn verbosity(quiet: bool, verbose: u8) -> Verbosity {
    if quiet {
        Verbosity::Quiet
    } else if verbose > 0 {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    }
}

/// `--python`, else a non-empty `FEVER_PYTHON`.
fn python_or_env(python: Option<PathBuf>) -> Option<PathBuf> {
    python.or_else(|| {
        std::env::var_os("FEVER_PYTHON")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

#[cfg(test)]
#[allow(clippy::match_wildcard_for_single_variants)] // helpers pick one command out of all
mod tests {
    use super::*;

    fn run(argv: &[&str]) -> Result<RunConfig, String> {
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        match convert(cli)? {
            Command::Run(config) => Ok(config),
            other => Err(format!("not a run command: {other:?}")),
        }
    }

    fn record(argv: &[&str]) -> Result<RecordConfig, String> {
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        match convert(cli)? {
            Command::Record(config) => Ok(config),
            other => Err(format!("not a record command: {other:?}")),
        }
    }

    #[test]
    fn record_defaults_and_options() {
        let c = record(&["fever", "record", "app.py", "-o", "x"]).unwrap();
        // Everything after the script belongs to the program.
        assert_eq!(c.output, PathBuf::from("fever.trace"));
        assert_eq!(c.run.args, ["-o", "x"]);
        assert_eq!(c.snapshots, Snapshots::All);
        assert_eq!(c.max_calls_per_function, DEFAULT_MAX_CALLS);
        let c = record(&[
            "fever",
            "record",
            "-o",
            "run.trace",
            "--snapshots",
            "none",
            "--max-calls-per-function",
            "0",
            "--no-watch",
            "-m",
            "pkg.job",
            "--fast",
        ])
        .unwrap();
        assert_eq!(c.output, PathBuf::from("run.trace"));
        assert_eq!(c.snapshots, Snapshots::None);
        assert_eq!(c.max_calls_per_function, 0);
        assert_eq!(c.limits, SnapshotLimits::default());
        assert!(!c.run.watch);
        assert_eq!(c.run.target, Target::Module("pkg.job".into()));
        assert_eq!(c.run.args, ["--fast"]);
        let limited = record(&[
            "fever",
            "record",
            "--snapshot-items",
            "5",
            "--snapshot-depth",
            "2",
            "a.py",
        ])
        .unwrap();
        assert_eq!((limited.limits.items, limited.limits.depth), (5, 2));
        assert!(record(&["fever", "record", "--snapshots", "some", "a.py"]).is_err());
    }

    #[test]
    fn script_arguments_are_passed_verbatim() {
        let config = run(&[
            "fever", "run", "-v", "app.py", "-v", "--root", "x", "-m", "y",
        ])
        .unwrap();
        assert_eq!(config.target, Target::Script("app.py".into()));
        assert_eq!(config.args, ["-v", "--root", "x", "-m", "y"]);
        assert_eq!(config.verbosity, Verbosity::Verbose);
        assert!(config.watch);
        assert_eq!(config.root, None);
    }

    #[test]
    fn module_takes_the_rest_of_the_line() {
        let config = run(&["fever", "run", "--no-watch", "-m", "pkg.mod", "-q", "a"]).unwrap();
        assert_eq!(config.target, Target::Module("pkg.mod".into()));
        assert_eq!(config.args, ["-q", "a"]);
        assert_eq!(config.verbosity, Verbosity::Normal);
        assert!(!config.watch);
    }

    #[test]
    fn module_without_space() {
        let config = run(&["fever", "run", "-mpkg", "a"]).unwrap();
        assert_eq!(config.target, Target::Module("pkg".into()));
        assert_eq!(config.args, ["a"]);
    }

    #[test]
    fn root_and_quiet() {
        let config = run(&["fever", "run", "--root", "src", "-q", "main.py"]).unwrap();
        assert_eq!(config.root, Some(PathBuf::from("src")));
        assert_eq!(config.verbosity, Verbosity::Quiet);
    }

    #[test]
    fn missing_target_is_a_usage_error() {
        assert!(run(&["fever", "run"]).is_err());
        assert!(run(&["fever", "run", "--bogus", "x.py"]).is_err());
    }
}
