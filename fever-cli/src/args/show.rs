//! `fever show`'s arguments and their one conversion into a [`ShowConfig`].

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use crate::config::{ExportFormat, Output, ShowConfig, ShowView};

/// Default of `--max-lines`.
const DEFAULT_MAX_LINES: usize = 2000;
/// Default of `--limit`.
const DEFAULT_LIMIT: usize = 50;

pub(super) const ABOUT: &str =
    "Reads TRACE (written by `fever record`) and prints its call tree on stdout: a section per \
     thread, a line per call with its arguments, its return value (or the exception it raised) \
     and its time, indented by depth. Consecutive calls of the same function collapse into one \
     line with a count, [×N], and the calls they made are added up under it. A summary of the \
     recording and any warnings (a trace cut short, lost events) go to stderr.\n\n\
     --profile prints a table of the functions instead, and --format writes the trace for a \
     viewer: Perfetto (best for large runs), Chrome's trace-event JSON, or speedscope.\n\n\
     No Python interpreter is needed. A trace that is missing, empty, cut short inside its \
     header, corrupted or not a fever trace is an error (exit code 2); one whose recording was \
     cut short later is shown up to where it ends, with a warning.";

pub(super) const EXAMPLES: &str = "Examples:\n  \
     fever show run.trace\n  \
     fever show run.trace --depth 3 --max-lines 200\n  \
     fever show run.trace --profile --limit 20\n  \
     fever show run.trace --format perfetto        # writes run.pftrace\n  \
     fever show run.trace --format speedscope -o /tmp/flame.json\n  \
     fever show run.trace --format chrome -o - | gzip > run.json.gz";

#[derive(Args, Debug)]
pub(super) struct ShowArgs {
    /// The trace file, written by `fever record`.
    #[arg(value_name = "TRACE")]
    trace: PathBuf,

    /// Print a profile instead of the tree: per function, its calls, total time (calls it made
    /// included), self time and total time per call, longest total first. Calls past
    /// `fever record --max-calls-per-function` are counted but not timed: their rows are marked *.
    #[arg(long, conflicts_with_all = ["depth", "max_lines"])]
    profile: bool,

    /// What to write: the call tree as text, or a file for a trace viewer.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = FormatArg::Tree)]
    format: FormatArg,

    /// Write to FILE (`-` for stdout). Text goes to stdout by default; an export goes next to
    /// the trace, its extension replaced: run.pftrace, run.chrome.json, run.speedscope.json.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Show calls down to N levels deep (1: only the top-level calls) [default: all].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    depth: Option<u32>,

    /// Print at most N lines of the tree, then say how many more there are (0: no limit)
    /// [default: 2000].
    #[arg(long, value_name = "N")]
    max_lines: Option<usize>,

    /// Print the N functions with the most total time (0: all) [default: 50].
    #[arg(long, value_name = "N", requires = "profile")]
    limit: Option<usize>,
}

/// `--format`'s values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum FormatArg {
    #[value(help = "The call tree as text (or the table, with --profile)")]
    Tree,
    #[value(
        help = "Perfetto's protobuf trace, for https://ui.perfetto.dev; handles runs of \
                    millions of calls"
    )]
    Perfetto,
    #[value(help = "Chrome's trace-event JSON, for chrome://tracing or Perfetto; for small runs")]
    Chrome,
    #[value(help = "speedscope's format, for flame graphs at https://www.speedscope.app")]
    Speedscope,
}

/// `None` for 0, which the options use to mean "no limit".
fn limit(n: usize) -> Option<usize> {
    (n > 0).then_some(n)
}

impl ShowArgs {
    pub(super) fn config(self) -> Result<ShowConfig, String> {
        let export = match self.format {
            FormatArg::Tree => None,
            FormatArg::Perfetto => Some(ExportFormat::Perfetto),
            FormatArg::Chrome => Some(ExportFormat::Chrome),
            FormatArg::Speedscope => Some(ExportFormat::Speedscope),
        };
        let view = match export {
            Some(format) if self.profile => {
                return Err(format!(
                    "--profile prints a table; it cannot be combined with --format {}",
                    format_name(format)
                ))
            }
            Some(format) if self.depth.is_some() || self.max_lines.is_some() => {
                return Err(format!(
                    "--depth and --max-lines shape the printed tree; --format {} exports every call",
                    format_name(format)
                ))
            }
            Some(format) => ShowView::Export(format),
            None if self.profile => ShowView::Profile {
                limit: limit(self.limit.unwrap_or(DEFAULT_LIMIT)),
            },
            None => ShowView::Tree {
                depth: self.depth.and_then(|d| usize::try_from(d).ok()),
                max_lines: limit(self.max_lines.unwrap_or(DEFAULT_MAX_LINES)),
            },
        };
        let output = match (self.output, export) {
            (Some(path), _) if path.as_os_str() == "-" => Output::Stdout,
            (Some(path), _) => Output::File(path),
            (None, Some(format)) => Output::File(export_path(&self.trace, format)),
            (None, None) => Output::Stdout,
        };
        Ok(ShowConfig {
            trace: self.trace,
            view,
            output,
        })
    }
}

fn format_name(format: ExportFormat) -> &'static str {
    match format {
        ExportFormat::Perfetto => "perfetto",
        ExportFormat::Chrome => "chrome",
        ExportFormat::Speedscope => "speedscope",
    }
}

/// The trace's path with its extension replaced by the format's (`run.trace` → `run.pftrace`);
/// never the trace itself.
fn export_path(trace: &Path, format: ExportFormat) -> PathBuf {
    let path = trace.with_extension(format.extension());
    if path == trace {
        let mut name = trace.as_os_str().to_owned();
        name.push(".");
        name.push(format.extension());
        PathBuf::from(name)
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        show: ShowArgs,
    }

    fn show(argv: &[&str]) -> Result<ShowConfig, String> {
        let argv = std::iter::once("show").chain(argv.iter().copied());
        Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .show
            .config()
    }

    #[test]
    fn the_tree_is_the_default_on_stdout() {
        let config = show(&["run.trace"]).unwrap();
        assert_eq!(config.trace, PathBuf::from("run.trace"));
        assert_eq!(
            config.view,
            ShowView::Tree {
                depth: None,
                max_lines: Some(2000)
            }
        );
        assert_eq!(config.output, Output::Stdout);
        let config = show(&["run.trace", "--depth", "3", "--max-lines", "0"]).unwrap();
        assert_eq!(
            config.view,
            ShowView::Tree {
                depth: Some(3),
                max_lines: None
            }
        );
    }

    #[test]
    fn profile_and_limit() {
        let config = show(&["--profile", "run.trace"]).unwrap();
        assert_eq!(config.view, ShowView::Profile { limit: Some(50) });
        let config = show(&["--profile", "--limit", "0", "run.trace"]).unwrap();
        assert_eq!(config.view, ShowView::Profile { limit: None });
        let config = show(&["--profile", "--format", "tree", "-o", "p.txt", "x"]).unwrap();
        assert_eq!(config.output, Output::File("p.txt".into()));
        assert!(show(&["--limit", "3", "run.trace"]).is_err());
        assert!(show(&["--profile", "--depth", "3", "run.trace"]).is_err());
    }

    #[test]
    fn exports_go_next_to_the_trace_by_default() {
        for (format, expected) in [
            ("perfetto", "dir/run.pftrace"),
            ("chrome", "dir/run.chrome.json"),
            ("speedscope", "dir/run.speedscope.json"),
        ] {
            let config = show(&["dir/run.trace", "--format", format]).unwrap();
            assert_eq!(config.output, Output::File(expected.into()), "{format}");
        }
        let config = show(&["run", "--format", "perfetto"]).unwrap();
        assert_eq!(config.output, Output::File("run.pftrace".into()));
        let config = show(&["x.pftrace", "--format", "perfetto"]).unwrap();
        assert_eq!(config.output, Output::File("x.pftrace.pftrace".into()));
        let config = show(&["run.trace", "--format", "chrome", "-o", "-"]).unwrap();
        assert_eq!(config.view, ShowView::Export(ExportFormat::Chrome));
        assert_eq!(config.output, Output::Stdout);
    }

    #[test]
    fn contradictions_are_usage_errors() {
        let err = show(&["--profile", "--format", "perfetto", "run.trace"]).unwrap_err();
        assert!(err.contains("--format perfetto"), "{err}");
        let err = show(&["--format", "chrome", "--depth", "2", "run.trace"]).unwrap_err();
        assert!(err.contains("--format chrome"), "{err}");
        assert!(show(&["--depth", "0", "run.trace"]).is_err());
        assert!(show(&[]).is_err());
        assert!(show(&["run.trace", "--format", "svg"]).is_err());
    }
}
