//! clap definitions of the command line and their conversion into [`Command`] (`fever show`'s in
//! `args/show.rs`, `fever check`'s in `args/check.rs`, `fever replay`'s in `args/replay.rs`,
//! `fever ps`'s and `fever attach`'s in `args/attach.rs`).

mod attach;
mod check;
mod replay;
mod show;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::config::{
    CacheConfig, Command, RecordConfig, RunConfig, SnapshotLimits, Snapshots, Target, Verbosity,
    WatchConfig, DEFAULT_MAX_CALLS,
};

#[derive(Parser, Debug)]
#[command(
    name = "fever",
    version,
    about = "Instant edit-run loop for Python: hot reload, a re-run loop with a call cache, call recording, trace views, regression replay",
    long_about = "fever runs your Python program and patches every saved function into it while it \
                  runs, without a restart. `fever watch` re-runs a script after every save \
                  and answers its slow, unchanged calls from a cache. It can also record the \
                  program's calls (timings, arguments, results), show them as a call tree, a \
                  profile, or a file for Perfetto or speedscope, and replay the recorded calls as \
                  a regression test.\n\nExamples:\n  fever run app.py --port 8000\n  \
                  fever watch train.py\n  fever record -o run.trace app.py\n  \
                  fever show run.trace --profile\n  fever check run.trace",
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

    /// The develop loop: run a script, then re-run it after every save, answering slow
    /// unchanged calls from a cache.
    #[command(
        long_about = "Runs SCRIPT (or -m MODULE) like `fever run`. When it ends, fever stays alive and \
                      waits; each save of a .py file under the project root reloads the changed code \
                      and runs the script again from the start in the same process.\n\n\
                      Calls of the project's functions that took longer than --cache-min-ms are \
                      cached: a later call with the same arguments, whose code and whose callees' \
                      code did not change, returns a copy of the stored result at once. Editing a \
                      function invalidates every cached call that reached it. Output a cached call \
                      printed is not printed again on a hit (fever warns once).\n\n\
                      Stop with Ctrl-C.",
        after_help = "Examples:\n  fever watch app.py --input data.csv\n  \
                      fever watch --cache-min-ms 20 --cache-size 4G train.py\n  \
                      fever watch --no-cache -m mypkg.report"
    )]
    Watch(WatchArgs),

    /// Show a recorded trace: its call tree, a profile table, or an export for a trace viewer.
    #[command(long_about = show::ABOUT, after_help = show::EXAMPLES)]
    Show(show::ShowArgs),

    /// Re-invoke the calls of a recorded trace and diff their results: a regression test for CI.
    #[command(long_about = check::ABOUT, after_help = check::EXAMPLES)]
    Check(check::CheckArgs),

    /// Run a program once and keep it warm; re-run any segment of it after an edit.
    #[command(long_about = replay::ABOUT, after_help = replay::EXAMPLES)]
    Replay(replay::ReplayArgs),

    /// List your processes running under fever: pid, attached or not, root, command.
    #[command(long_about = attach::PS_ABOUT)]
    Ps,

    /// Profile a process running under fever, exactly, while attached; detach and it runs at
    /// full speed again.
    #[command(long_about = attach::ATTACH_ABOUT, after_help = attach::ATTACH_EXAMPLES)]
    Attach(attach::AttachArgs),

    /// The program side of `fever replay` (started by it; not for direct use).
    #[command(name = "_replay-serve", hide = true)]
    ReplayServe(replay::ServeArgs),
}

#[derive(Args, Debug)]
struct RecordArgs {
    /// Where to write the trace.
    #[arg(short, long, value_name = "TRACE", default_value = "fever.trace")]
    output: PathBuf,

    /// What to snapshot: nothing (timings only), call arguments, or arguments and return values.
    #[arg(long, value_enum, default_value_t = SnapshotArg::All)]
    snapshots: SnapshotArg,

    /// Record the first N calls of each function (0 = all), then N/8 per doubling of the count
    /// (a sample of later calls); every call is still counted exactly.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CALLS)]
    max_calls_per_function: u64,

    /// Snapshots: containers nested deeper than N are recorded by type only.
    #[arg(long, value_name = "N", default_value_t = SnapshotLimits::default().max_depth)]
    snapshot_depth: u32,

    /// Snapshots: items recorded per list, dict, set or object; the rest are counted.
    #[arg(long, value_name = "N", default_value_t = SnapshotLimits::default().max_items)]
    snapshot_items: u32,

    /// Snapshots: bytes recorded per string; longer ones keep their start and a hash.
    #[arg(long, value_name = "BYTES", default_value_t = SnapshotLimits::default().max_str_bytes)]
    snapshot_string_bytes: usize,

    /// Snapshots: bytes, bytearray, memoryview and array data longer than BYTES are recorded by
    /// their length and a hash, not copied, and ints longer than BYTES by type only (0 = no
    /// limit); `fever check` does not re-run a call with such an argument.
    #[arg(long, value_name = "BYTES", default_value_t = SnapshotLimits::default().hash_over_bytes)]
    snapshot_bytes: usize,

    /// Snapshots: values walked per snapshot, all levels together (0 = no limit); past it, the
    /// rest of each container is counted, not recorded.
    #[arg(long, value_name = "N", default_value_t = SnapshotLimits::default().max_nodes)]
    snapshot_nodes: u32,

    /// Count each function's calls and time it, with no trace of the calls themselves: the
    /// cheapest exact profile, for `fever show --profile` (the call tree, the exports, `fever
    /// check` and `fever replay` need a full recording).
    #[arg(long, conflicts_with_all = ["snapshots", "max_calls_per_function"])]
    profile_only: bool,

    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args, Debug)]
struct WatchArgs {
    /// Re-run everything: no call cache.
    #[arg(long)]
    no_cache: bool,

    /// Cache calls that take at least MS milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 100.0)]
    cache_min_ms: f64,

    /// Memory the cached results may use (estimated; least recently used entries go first),
    /// e.g. 512M, 4G.
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = parse_size)]
    cache_size: u64,

    /// Keep the cache in .fever/cache/ under the project root and reuse it after a restart.
    #[arg(long)]
    persist_cache: bool,

    #[command(flatten)]
    program: ProgramArgs,
}

/// A size with an optional binary unit: `1G`, `512M`, `64K`, `1.5GiB`, `1000`.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let upper = text.to_ascii_uppercase();
    let number_end = upper
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(upper.len());
    let (number, unit) = upper.split_at(number_end);
    let factor: u64 = match unit.trim().trim_end_matches("IB").trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("'{text}' is not a size (e.g. 512M, 4G)")),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size (e.g. 512M, 4G)"))?;
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let bytes = (value * factor as f64) as u64;
    if bytes == 0 {
        return Err("the cache size must be more than 0 (use --no-cache to turn it off)".into());
    }
    Ok(bytes)
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum SnapshotArg {
    None,
    Args,
    All,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Do not watch files: run with hot reload off.
    #[arg(long)]
    no_watch: bool,

    #[command(flatten)]
    program: ProgramArgs,
}

/// What to run and how fever talks about it: shared by run, record and watch.
#[derive(Args, Debug)]
struct ProgramArgs {
    /// Run library module MODULE as a script (like `python -m`); the rest are its arguments.
    #[arg(
        short = 'm',
        value_name = "MODULE",
        num_args = 1..,
        allow_hyphen_values = true,
        conflicts_with = "script"
    )]
    module: Option<Vec<String>>,

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
        Sub::Watch(_) => "watch",
        Sub::Show(_) => "show",
        Sub::Check(_) => "check",
        Sub::Replay(_) | Sub::ReplayServe(_) => "replay",
        Sub::Ps => "ps",
        Sub::Attach(_) => "attach",
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
                max_depth: record.snapshot_depth,
                max_items: record.snapshot_items,
                max_str_bytes: record.snapshot_string_bytes,
                hash_over_bytes: match record.snapshot_bytes {
                    0 => usize::MAX,
                    bytes => bytes,
                },
                max_nodes: record.snapshot_nodes,
            },
            profile_only: record.profile_only,
        })),
        Sub::Watch(watch) => {
            if !watch.cache_min_ms.is_finite() || watch.cache_min_ms < 0.0 {
                return Err("--cache-min-ms must be a number of milliseconds, 0 or more".into());
            }
            Ok(Command::Watch(WatchConfig {
                run: program_config(watch.program)?,
                cache: (!watch.no_cache).then(|| CacheConfig {
                    min_duration: std::time::Duration::from_secs_f64(watch.cache_min_ms / 1000.0),
                    max_bytes: watch.cache_size,
                    persist: watch.persist_cache,
                }),
            }))
        }
        Sub::Show(args) => Ok(Command::Show(args.config()?)),
        Sub::Check(args) => Ok(Command::Check(args.config()?)),
        Sub::Replay(args) => Ok(Command::Replay(args.config()?)),
        Sub::ReplayServe(args) => Ok(Command::ReplayServe(args.config()?)),
        Sub::Ps => Ok(Command::Ps),
        Sub::Attach(args) => Ok(Command::Attach(args.config()?)),
    }
}

fn run_config(run: RunArgs) -> Result<RunConfig, String> {
    Ok(RunConfig {
        watch: !run.no_watch,
        ..program_config(run.program)?
    })
}

fn program_config(run: ProgramArgs) -> Result<RunConfig, String> {
    let (target, args) = match (run.module, run.script) {
        (Some(mut module), _) => {
            let name = module.remove(0);
            (Target::Module(name), module)
        }
        (None, mut script) => {
            let first = script.remove(0);
            // `-mNAME` (no space) reaches us as the first positional value, and so does
            // `-- -m NAME` (typed as for py-spy: `fever record -- -m pytest`).
            if let Some(name) = first.strip_prefix("-m").filter(|name| !name.is_empty()) {
                (Target::Module(name.to_owned()), script)
            } else if first == "-m" {
                if script.is_empty() {
                    return Err("-m needs a module name".to_owned());
                }
                let name = script.remove(0);
                (Target::Module(name), script)
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
        watch: true,
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
            "--snapshot-nodes",
            "40",
            "--snapshot-bytes",
            "100",
            "a.py",
        ])
        .unwrap();
        assert_eq!(
            (
                limited.limits.max_items,
                limited.limits.max_depth,
                limited.limits.max_nodes,
                limited.limits.hash_over_bytes
            ),
            (5, 2, 40, 100)
        );
        let unlimited = record(&["fever", "record", "--snapshot-bytes", "0", "a.py"]).unwrap();
        assert_eq!(unlimited.limits.hash_over_bytes, usize::MAX);
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
    fn module_after_a_double_dash() {
        let config = run(&["fever", "run", "--", "-m", "pytest", "-q"]).unwrap();
        assert_eq!(config.target, Target::Module("pytest".into()));
        assert_eq!(config.args, ["-q"]);
        let c = record(&["fever", "record", "-o", "t.trace", "--", "-m", "pkg", "a"]).unwrap();
        assert_eq!(c.output, PathBuf::from("t.trace"));
        assert_eq!(c.run.target, Target::Module("pkg".into()));
        assert_eq!(c.run.args, ["a"]);
        assert_eq!(
            run(&["fever", "run", "--", "-m"]).unwrap_err(),
            "-m needs a module name"
        );
    }

    #[test]
    fn root_and_quiet() {
        let config = run(&["fever", "run", "--root", "src", "-q", "main.py"]).unwrap();
        assert_eq!(config.root, Some(PathBuf::from("src")));
        assert_eq!(config.verbosity, Verbosity::Quiet);
    }

    fn watch(argv: &[&str]) -> Result<WatchConfig, String> {
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        match convert(cli)? {
            Command::Watch(config) => Ok(config),
            other => Err(format!("not a watch command: {other:?}")),
        }
    }

    #[test]
    fn watch_defaults_and_options() {
        let c = watch(&["fever", "watch", "app.py", "--no-cache"]).unwrap();
        assert_eq!(c.run.args, ["--no-cache"]);
        let cache = c.cache.unwrap();
        assert_eq!(cache.max_bytes, 1 << 30);
        assert_eq!(cache.min_duration, std::time::Duration::from_millis(100));
        assert!(!cache.persist);
        let c = watch(&[
            "fever",
            "watch",
            "--cache-size",
            "10M",
            "--cache-min-ms",
            "20",
            "--persist-cache",
            "-m",
            "pkg",
        ])
        .unwrap();
        let cache = c.cache.unwrap();
        assert_eq!(cache.max_bytes, 10 << 20);
        assert_eq!(cache.min_duration, std::time::Duration::from_millis(20));
        assert!(cache.persist);
        assert_eq!(c.run.target, Target::Module("pkg".into()));
        assert!(watch(&["fever", "watch", "--no-cache", "a.py"])
            .unwrap()
            .cache
            .is_none());
        assert!(watch(&["fever", "watch", "--no-watch", "a.py"]).is_err());
        assert!(watch(&["fever", "watch", "--cache-min-ms", "-1", "a.py"]).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("2GB"), Ok(2 << 30));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("G").is_err());
    }

    #[test]
    fn missing_target_is_a_usage_error() {
        assert!(run(&["fever", "run"]).is_err());
        assert!(run(&["fever", "run", "--bogus", "x.py"]).is_err());
    }
}
