//! `fever check`'s arguments and their one conversion into a [`CheckConfig`].

use std::path::PathBuf;

use clap::{ArgAction, Args};

use crate::config::{CheckAction, CheckConfig};

/// `--timeout`'s default, in seconds: long enough for any unit of work a test suite makes,
/// short enough for a CI job to survive a call that hangs.
pub const DEFAULT_TIMEOUT: f64 = 60.0;

pub(super) const ABOUT: &str =
    "Re-invokes the calls recorded in TRACE (by `fever record`) against the current code and \
     compares their results with the recorded ones: a regression test for CI.\n\n\
     The project's modules are imported in this interpreter without running their __main__ \
     blocks (the recorded script is loaded under another name), with sys.path as when the \
     program ran; a trace recorded in another checkout finds the project in --root or the \
     current directory. By default the outermost calls of the project's functions are checked \
     (for a recorded test suite: the outermost calls the tests made into the code under test, \
     not the tests); --depth N also checks the calls up to N levels below them, and --select \
     keeps the calls whose module.qualname matches a glob (the outermost matching calls become \
     the top level; a recorded script's functions match under its file name too). Calls that \
     did not return in the recording (interrupted by Ctrl-C) are never selected. --list prints \
     what would be checked and why the other calls are not. \
     Each call gets its recorded arguments back, rebuilt from their snapshots: numbers, strings, \
     bytes, containers, dataclasses, named tuples, enum members and instances of importable \
     classes. A call whose arguments cannot be rebuilt exactly, a generator, a call that \
     returned different results for the same arguments while recording, or one that ran code \
     reloaded later in the recording is skipped, with its reason under -v. So is a call whose \
     result differs after it used random without a fixed seed, the clock, uuid or os.urandom, \
     or read a frame above its own or the exception its caller was handling (nondeterministic, \
     naming the source), or, with --twice, one whose two runs differ. Each \
     call runs within --timeout seconds; past it, it fails as timed out and the check goes on.\n\n\
     Results are compared as snapshots, with the limits of the recording: floats within \
     --rel-tol, dicts, sets and object fields in any order, exceptions by type and message. Each \
     difference is printed on stdout as a unified diff headed by the call and its source \
     location, and the summary `fever: N passed, M failed, K skipped` goes to stderr. While a \
     call runs, its stdin is empty and what it prints is discarded.\n\n\
     Exit codes: 0 when every checked call matched (or --update accepted the differences), 1 \
     when one differs, 2 for an unreadable or incomplete trace or a usage error.";

pub(super) const EXAMPLES: &str = "Examples:\n  \
     fever record -o run.trace pipeline.py data.csv   # once, when the results are right\n  \
     fever check run.trace                            # in CI\n  \
     fever check run.trace --list                     # what is checked, what is not and why\n  \
     fever check run.trace --depth 1 --select 'pipeline.*' -v\n  \
     fever check run.trace --rel-tol 1e-6 --junit report.xml\n  \
     fever check run.trace --update                   # accept deliberate changes\n  \
     pytest --fever-trace run.trace -n auto           # the same, as pytest items";

#[derive(Args, Debug)]
#[allow(clippy::struct_excessive_bools)] // one per command-line flag
pub(super) struct CheckArgs {
    /// The trace file, written by `fever record`.
    #[arg(value_name = "TRACE")]
    trace: PathBuf,

    /// Check only calls whose module.qualname matches this glob (e.g. 'shop.Cart.*');
    /// repeat to match any of several.
    #[arg(long, value_name = "PATTERN")]
    select: Vec<String>,

    /// Also check the calls up to N levels below the outermost selected ones.
    #[arg(long, value_name = "N", default_value_t = 0)]
    depth: usize,

    /// Floats match when they differ by at most X times the larger one (0: exactly).
    #[arg(long, value_name = "X", default_value = "1e-9")]
    rel_tol: f64,

    /// Write the new results of the calls that differ into TRACE (atomically), accepting them.
    #[arg(long)]
    update: bool,

    /// Also write the results as JUnit XML to FILE.
    #[allow(clippy::doc_markdown)] // help text, not code docs
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,

    /// The project's directory, when the trace was recorded in another checkout [default: the
    /// recorded root if it exists, else the current directory].
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,

    /// Python interpreter to start (standalone binary only) [env: `FEVER_PYTHON`].
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,

    /// Seconds each call may run before it fails as timed out (0: no limit).
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_TIMEOUT)]
    timeout: f64,

    /// Run each call twice; a call whose two runs differ is skipped as nondeterministic.
    #[arg(long)]
    twice: bool,

    /// Print the calls that would be checked, and why the others are not; check nothing.
    #[arg(long, conflicts_with_all = ["update", "junit"])]
    list: bool,

    /// Print only the differences (no summary).
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,

    /// Also print why calls were skipped.
    #[arg(short, long, action = ArgAction::Count)]
    verbose: u8,
}

impl CheckArgs {
    pub(super) fn config(self) -> Result<CheckConfig, String> {
        if !self.rel_tol.is_finite() || self.rel_tol < 0.0 {
            return Err(format!(
                "--rel-tol must be a number >= 0, got {}",
                self.rel_tol
            ));
        }
        if !self.timeout.is_finite() || self.timeout < 0.0 {
            return Err(format!(
                "--timeout must be a number of seconds >= 0, got {}",
                self.timeout
            ));
        }
        if let Some(empty) = self.select.iter().find(|p| p.trim().is_empty()) {
            return Err(format!("--select needs a pattern, got '{empty}'"));
        }
        Ok(CheckConfig {
            trace: self.trace,
            select: self.select,
            depth: self.depth,
            rel_tol: self.rel_tol,
            action: if self.update {
                CheckAction::Update
            } else if self.list {
                CheckAction::List
            } else {
                CheckAction::Check
            },
            junit: self.junit,
            root: self.root,
            python: super::python_or_env(self.python),
            timeout: (self.timeout > 0.0).then_some(self.timeout),
            twice: self.twice,
            verbosity: super::verbosity(self.quiet, self.verbose),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Verbosity;
    use clap::Parser;
    use fever_core::check::DEFAULT_REL_TOL;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        check: CheckArgs,
    }

    fn check(argv: &[&str]) -> Result<CheckConfig, String> {
        let argv = std::iter::once("check").chain(argv.iter().copied());
        Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .check
            .config()
    }

    #[test]
    fn defaults() {
        let c = check(&["run.trace"]).unwrap();
        // The help text states the default as written; it must be the comparison's default.
        assert_eq!(c.trace, PathBuf::from("run.trace"));
        assert!(c.select.is_empty());
        assert_eq!(c.depth, 0);
        assert!((c.rel_tol - DEFAULT_REL_TOL).abs() < f64::EPSILON);
        assert!(c.action == CheckAction::Check);
        assert_eq!((c.junit, c.root), (None, None));
        assert_eq!(c.verbosity, Verbosity::Normal);
        assert_eq!(c.timeout, Some(DEFAULT_TIMEOUT));
        assert!(!c.twice);
    }

    #[test]
    fn every_option() {
        let c = check(&[
            "--select",
            "a.*",
            "--select",
            "b.f",
            "--depth",
            "2",
            "--rel-tol",
            "1e-3",
            "--update",
            "--junit",
            "r.xml",
            "--root",
            "/ci/proj",
            "--timeout",
            "2.5",
            "--twice",
            "-v",
            "t",
        ])
        .unwrap();
        assert_eq!(c.timeout, Some(2.5));
        assert!(c.twice);
        assert_eq!(check(&["t", "--timeout", "0"]).unwrap().timeout, None);
        assert_eq!(check(&["t", "--list"]).unwrap().action, CheckAction::List);
        assert_eq!(c.select, ["a.*", "b.f"]);
        assert_eq!(c.depth, 2);
        assert!((c.rel_tol - 1e-3).abs() < f64::EPSILON);
        assert!(c.action == CheckAction::Update);
        assert_eq!(c.junit, Some(PathBuf::from("r.xml")));
        assert_eq!(c.root, Some(PathBuf::from("/ci/proj")));
        assert_eq!(c.verbosity, Verbosity::Verbose);
        assert_eq!(check(&["-q", "t"]).unwrap().verbosity, Verbosity::Quiet);
    }

    #[test]
    fn bad_values_are_usage_errors() {
        assert!(check(&[]).is_err());
        assert!(check(&["t", "--rel-tol", "-1"]).is_err());
        assert!(check(&["t", "--rel-tol", "nan"]).is_err());
        assert!(check(&["t", "--depth", "-1"]).is_err());
        assert!(check(&["t", "--select", " "]).is_err());
        assert!(check(&["t", "-q", "-v"]).is_err());
        assert!(check(&["t", "--timeout", "-1"]).is_err());
        assert!(check(&["t", "--timeout", "inf"]).is_err());
        assert!(check(&["t", "--list", "--update"]).is_err());
        assert!(check(&["t", "--allow-pickle"]).is_err());
    }
}
