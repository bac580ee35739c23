//! `fever ps`'s and `fever attach`'s arguments and their conversion into an [`AttachConfig`].

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
     One client is attached at a time: a second `fever attach` to the same process is refused \
     with an error.";

pub(super) const ATTACH_EXAMPLES: &str = "Examples:\n  \
     fever ps\n  \
     fever attach 4242\n  \
     fever attach 4242 --duration 10 --top 20 --sort self > profile.txt";

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
        })
    }
}
