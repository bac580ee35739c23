//! `fever ps`'s and `fever attach`'s arguments and their conversion into an [`AttachConfig`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use fever_core::profile::SortKey;

use crate::config::AttachConfig;

pub(super) const PS_ABOUT: &str =
    "Lists your processes running under fever (`fever run`, `fever watch`, `fever record`): \
     pid, whether a `fever attach` is attached, the project root and the command. Each of them \
     listens on a private control socket; sockets of processes that were killed are removed.";

pub(super) const ATTACH_ABOUT: &str =
    "Profiles a running process started under fever, exactly: while attached, every call of \
     the project's functions is counted and timed in the process itself (library code is not), \
     and the counts are read through shared memory. On a terminal a live table of the hottest \
     functions is refreshed every second (keys: t, s, c sort by total, self, calls; q quits). \
     Without a terminal, after --duration, or after Ctrl-C, the final table is printed. \
     Detaching (or the client being killed) turns the profiling off at once: the program runs \
     at full speed again.\n\n\
     --record TRACE also writes a trace of the attached window, as `fever record` would (the \
     same calls as the table), which `fever show` reads; the program writes the file.\n\n\
     One client is attached at a time: a second `fever attach` to the same process is refused \
     with an error.\n\n\
     A process not started under fever that runs Python 3.14+ is attached too: fever loads \
     itself into it with sys.remote_exec (PEP 768), from the process's own environment (fever \
     must be installed there), and opens the same control socket, the main script's directory \
     being the project root.";

pub(super) const ATTACH_EXAMPLES: &str = "Examples:\n  \
     fever ps\n  \
     fever attach 4242\n  \
     fever attach 4242 --duration 10 --top 20 --sort self > profile.txt\n  \
     fever attach 4242 --duration 5 --record window.trace && fever show window.trace";

#[derive(Args, Debug)]
pub(super) struct AttachArgs {
    /// The process to profile (`fever ps` lists them).
    #[arg(value_name = "PID")]
    pid: u32,

    /// Detach after S seconds and print the table.
    #[arg(long, value_name = "S")]
    duration: Option<f64>,

    /// Show the N hottest functions.
    #[arg(long, value_name = "N", default_value_t = 20)]
    top: usize,

    /// What the table is sorted by (largest first).
    #[arg(long, value_enum, default_value_t = SortArg::Total)]
    sort: SortArg,

    /// Also write a trace of the attached window to TRACE (`fever show` reads it).
    #[arg(long, value_name = "TRACE")]
    record: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SortArg {
    /// Time in the function and the calls it made.
    Total,
    /// Time in the function's own code.
    #[value(name = "self")]
    SelfTime,
    /// Number of calls.
    Calls,
}

impl AttachArgs {
    pub(super) fn config(self) -> Result<AttachConfig, String> {
        let duration = match self.duration {
            None => None,
            Some(s) if s.is_finite() && s > 0.0 && s < 1e9 => Some(Duration::from_secs_f64(s)),
            Some(_) => return Err("--duration must be a number of seconds above 0".into()),
        };
        if self.top == 0 {
            return Err("--top must be 1 or more".into());
        }
        Ok(AttachConfig {
            pid: self.pid,
            duration,
            top: self.top,
            sort: match self.sort {
                SortArg::Total => SortKey::Total,
                SortArg::SelfTime => SortKey::SelfTime,
                SortArg::Calls => SortKey::Calls,
            },
            record: self.record,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        attach: AttachArgs,
    }

    fn attach(argv: &[&str]) -> Result<AttachConfig, String> {
        let argv = std::iter::once("attach").chain(argv.iter().copied());
        Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .attach
            .config()
    }

    #[test]
    fn defaults_and_every_option() {
        let config = attach(&["42"]).unwrap();
        assert_eq!(
            config,
            AttachConfig {
                pid: 42,
                duration: None,
                top: 20,
                sort: SortKey::Total,
                record: None,
            }
        );
        let config = attach(&[
            "42",
            "--duration",
            "1.5",
            "--top",
            "3",
            "--sort",
            "self",
            "--record",
            "w.trace",
        ])
        .unwrap();
        assert_eq!(config.duration, Some(Duration::from_millis(1500)));
        assert_eq!((config.top, config.sort), (3, SortKey::SelfTime));
        assert_eq!(config.record, Some(PathBuf::from("w.trace")));
        assert_eq!(
            attach(&["42", "--sort", "calls"]).unwrap().sort,
            SortKey::Calls
        );
    }

    #[test]
    fn nonsense_is_refused() {
        for argv in [
            &["42", "--duration", "0"][..],
            &["42", "--duration", "-1"],
            &["42", "--duration", "inf"],
            &["42", "--top", "0"],
            &["42", "--sort", "name"],
            &["pid"],
        ] {
            assert!(attach(argv).is_err(), "{argv:?}");
        }
    }
}
