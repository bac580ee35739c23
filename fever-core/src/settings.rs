//! The settings vocabulary the command line and the engine share: what to run
//! ([`RunConfig`], [`Target`]), how much to say ([`Verbosity`]), each command's settings
//! ([`WatchConfig`], [`RecordConfig`], [`CheckConfig`], which calls `fever replay` keeps
//! ([`Keep`])), how much a snapshot
//! keeps ([`SnapshotLimits`]), and how a recording's settings are written to and read from its
//! trace header.
//!
//! The CLI parses its arguments into these; the engine (`fever-monitor`) runs them.

use std::path::PathBuf;

use crate::replay::CallRef;
use crate::trace::TraceHeader;

/// What `fever run` starts: a script path or a module name (`-m`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Script(PathBuf),
    Module(String),
}

/// How much fever itself says on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// `-q`: errors only.
    Quiet,
    /// Default: reloads and errors.
    Normal,
    /// `-v`: also what is watched and why things were skipped.
    Verbose,
}

/// `fever run [OPTIONS] (SCRIPT | -m MODULE) [ARGS...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunConfig {
    pub target: Target,
    /// The program's arguments, `sys.argv[1:]`.
    pub args: Vec<String>,
    /// Hot reload saved files (false with `--no-watch`).
    pub watch: bool,
    /// What to watch; `None` means the script's directory (or the current directory for `-m`).
    pub root: Option<PathBuf>,
    /// `--python` / `FEVER_PYTHON`: the interpreter the standalone binary starts.
    pub python: Option<PathBuf>,
    pub verbosity: Verbosity,
}

impl RunConfig {
    /// The module name the program's own code answers to, though it runs as `__main__`: a
    /// script's file gives it (`app` for `src/app.py`), `-m MODULE` names it.
    pub fn script_module(&self) -> Option<String> {
        match &self.target {
            Target::Script(path) => path.file_stem().map(|s| s.to_string_lossy().into_owned()),
            Target::Module(name) => Some(name.clone()),
        }
    }
}

/// `fever watch [OPTIONS] (SCRIPT | -m MODULE) [ARGS...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchConfig {
    /// How to run the program (as `fever run`; always watching).
    pub run: RunConfig,
    /// The call cache; `None` with `--no-cache`.
    pub cache: Option<CacheConfig>,
}

/// `fever watch`'s call cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// `--cache-min-ms`: calls at least this slow are cached.
    pub min_duration: std::time::Duration,
    /// `--cache-size`: estimated bytes the cached results may use.
    pub max_bytes: u64,
    /// `--persist-cache`: keep entries in `.fever/cache/` and reuse them after a restart.
    pub persist: bool,
}

/// Default of `--max-calls-per-function`.
pub const DEFAULT_MAX_CALLS: u64 = 10_000;

/// Whether `fever record` records the `call`-th call (from 1) of a function, given
/// `--max-calls-per-function max` (0: every call). The first `max` calls are recorded; past
/// them, a thinning sample reaches the calls made late in a run (a test suite's last tests)
/// at a cost that grows with the logarithm of the count: each doubling of the count past
/// `max` ((max·2^k, max·2^(k+1)]) records `max / 8` calls (at least 1), evenly spaced.
#[must_use]
#[inline]
pub fn records_call(call: u64, max: u64) -> bool {
    max == 0 || call <= max || records_sampled(call, max)
}

/// [`records_call`] past the first `max` calls.
#[cold]
fn records_sampled(call: u64, max: u64) -> bool {
    let per_band = max.div_ceil(8);
    // The band: the largest max·2^k below `call`.
    let mut start = max;
    while start.saturating_mul(2) < call {
        start *= 2;
    }
    let stride = (start / per_band).max(1);
    (call - start).is_multiple_of(stride)
}

/// What `fever record` snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snapshots {
    /// Timings only.
    None,
    /// Call arguments.
    Args,
    /// Arguments, return and yielded values, exceptions.
    All,
}

impl Snapshots {
    /// The name used on the command line and in trace headers.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Args => "args",
            Self::All => "all",
        }
    }
}

/// `fever record [OPTIONS] (SCRIPT | -m MODULE) [ARGS...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordConfig {
    /// How to run the program (as `fever run`).
    pub run: RunConfig,
    /// `-o`: the trace file.
    pub output: PathBuf,
    pub snapshots: Snapshots,
    /// Calls recorded per function before the rest are only counted; 0 means no limit.
    pub max_calls_per_function: u64,
    pub limits: SnapshotLimits,
    /// `--profile-only`: per-function counts and times, no events (the trace then holds the
    /// codes, the run statistics and one profile record).
    pub profile_only: bool,
}

/// How much of each argument and return value a snapshot keeps (`fever record`'s
/// `--snapshot-*`; the call cache and `fever check` choose their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotLimits {
    /// Containers nested deeper than this are recorded by type only (default 6; at most 32).
    pub max_depth: u32,
    /// Items, entries or fields recorded per container; the rest are counted (default 32).
    pub max_items: u32,
    /// Bytes of UTF-8 recorded per str or repr (default 1024); the hash covers all of it.
    pub max_str_bytes: usize,
    /// Bytes-like and array data longer than this are recorded by length and xxh3, not copied,
    /// and ints longer than this by type only (default [`DEFAULT_HASH_OVER_BYTES`]).
    pub hash_over_bytes: usize,
    /// Values walked per snapshot, all levels together (default [`DEFAULT_MAX_NODES`]; 0: no
    /// limit): once spent, the containers being walked count the rest of their items as left
    /// out, as past the item limit, and a later argument that holds other values is recorded by
    /// type only, as below the depth limit. Bounds the cost of wide and deep values (linked
    /// nodes, caches) that the depth and item limits multiply out.
    pub max_nodes: u32,
}

/// Default [`SnapshotLimits::max_nodes`].
pub const DEFAULT_MAX_NODES: u32 = 300;

/// Default [`SnapshotLimits::hash_over_bytes`]: copying and compressing large buffers at every
/// call that passes them costs far more than hashing them.
pub const DEFAULT_HASH_OVER_BYTES: usize = 64 << 10;

/// [`SnapshotLimits::hash_over_bytes`] of the traces recorded before it was an option.
const HASH_OVER_BYTES_BEFORE: usize = 1 << 20;

impl Default for SnapshotLimits {
    fn default() -> Self {
        Self {
            max_depth: 6,
            max_items: 32,
            max_str_bytes: 1024,
            hash_over_bytes: DEFAULT_HASH_OVER_BYTES,
            max_nodes: DEFAULT_MAX_NODES,
        }
    }
}

impl SnapshotLimits {
    /// The limits a trace was recorded with (its header's options), so new results are
    /// snapshotted the same way; the default for a limit the header does not state, except the
    /// node budget and the bytes limit: a trace that does not state them was recorded before
    /// they were options (no node budget, bytes copied up to 1 MiB).
    pub fn recorded(header: &TraceHeader) -> Self {
        let defaults = Self::default();
        Self {
            max_depth: parsed(header, SNAPSHOT_DEPTH).unwrap_or(defaults.max_depth),
            max_items: parsed(header, SNAPSHOT_ITEMS).unwrap_or(defaults.max_items),
            max_str_bytes: parsed(header, SNAPSHOT_STRING_BYTES).unwrap_or(defaults.max_str_bytes),
            hash_over_bytes: parsed(header, SNAPSHOT_BYTES).unwrap_or(HASH_OVER_BYTES_BEFORE),
            max_nodes: parsed(header, SNAPSHOT_NODES).unwrap_or(0),
        }
    }
}

/// The trace header's option keys of a recording's settings.
const SNAPSHOTS: &str = "snapshots";
const MAX_CALLS_PER_FUNCTION: &str = "max_calls_per_function";
const SNAPSHOT_DEPTH: &str = "snapshot_depth";
const SNAPSHOT_ITEMS: &str = "snapshot_items";
const SNAPSHOT_STRING_BYTES: &str = "snapshot_string_bytes";
const SNAPSHOT_NODES: &str = "snapshot_nodes";
const SNAPSHOT_BYTES: &str = "snapshot_bytes";
/// The [`TraceHeader::options`] key whose value is the main thread's ident, in decimal.
pub const MAIN_THREAD_OPTION: &str = "main_thread";
const CLOCK: &str = "clock";
const CWD: &str = "cwd";
const PROFILE_ONLY: &str = "profile_only";

/// The facts of a recording's process that its trace header states beside the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedProcess {
    /// `threading.main_thread().ident`.
    pub main_thread: u64,
    /// The clock the timings come from.
    pub clock: String,
    /// The working directory, where relative paths pointed: `fever check` runs the calls
    /// from there.
    pub cwd: String,
}

impl RecordConfig {
    /// The trace header's options of this recording of `process`.
    pub fn header_options(&self, process: &RecordedProcess) -> Vec<(String, String)> {
        [
            (SNAPSHOTS, self.snapshots.name().to_owned()),
            (
                MAX_CALLS_PER_FUNCTION,
                self.max_calls_per_function.to_string(),
            ),
            (SNAPSHOT_DEPTH, self.limits.max_depth.to_string()),
            (SNAPSHOT_ITEMS, self.limits.max_items.to_string()),
            (SNAPSHOT_STRING_BYTES, self.limits.max_str_bytes.to_string()),
            (SNAPSHOT_NODES, self.limits.max_nodes.to_string()),
            (SNAPSHOT_BYTES, self.limits.hash_over_bytes.to_string()),
            (MAIN_THREAD_OPTION, process.main_thread.to_string()),
            (CLOCK, process.clock.clone()),
            (CWD, process.cwd.clone()),
        ]
        .into_iter()
        .chain(self.profile_only.then(|| (PROFILE_ONLY, "true".to_owned())))
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
    }
}

/// Whether the trace was recorded with `fever record --profile-only` (it holds no events).
pub fn is_profile_only(header: &TraceHeader) -> bool {
    option(header, PROFILE_ONLY) == Some("true")
}

/// The working directory a trace was recorded in, if its header says.
pub fn recorded_cwd(header: &TraceHeader) -> Option<&str> {
    option(header, CWD)
}

fn option<'h>(header: &'h TraceHeader, key: &str) -> Option<&'h str> {
    header
        .options
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn parsed<T: std::str::FromStr>(header: &TraceHeader, key: &str) -> Option<T> {
    option(header, key).and_then(|v| v.trim().parse().ok())
}

/// What `fever check` does with the selected calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckAction {
    /// Check them, report the differences.
    Check,
    /// `--update`: check them and write the new results of those that differ into the trace.
    Update,
    /// `--list`: print them, and why the other calls are not selected; check nothing.
    List,
}

/// `fever check [OPTIONS] TRACE`.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckConfig {
    /// The trace file to replay.
    pub trace: PathBuf,
    /// `--select` globs on `module.qualname`; empty selects every function.
    pub select: Vec<String>,
    /// `--depth`: levels below the outermost selected calls also checked.
    pub depth: usize,
    /// `--rel-tol`: relative tolerance for floats.
    pub rel_tol: f64,
    /// Check (the default), `--update` or `--list`.
    pub action: CheckAction,
    /// `--junit`: where to write `JUnit` XML.
    pub junit: Option<PathBuf>,
    /// `--root`: where the project is now; `None`: where it was recorded, else the current
    /// directory.
    pub root: Option<PathBuf>,
    /// `--python` / `FEVER_PYTHON`: the interpreter the standalone binary starts.
    pub python: Option<PathBuf>,
    /// `--timeout`: seconds each call may run; `None`: no limit.
    pub timeout: Option<f64>,
    /// `--twice`: run each call twice and skip those whose two results differ.
    pub twice: bool,
    pub verbosity: Verbosity,
}

/// Which start calls the program keeps the arguments of, so they can be replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    /// Just this call (headless replay).
    Call(CallRef),
    /// The first N calls of every project function (the UI).
    First(u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_past_the_limit_are_sampled_thinner_at_each_doubling() {
        let recorded = |max: u64, upto: u64| -> Vec<u64> {
            (1..=upto).filter(|&n| records_call(n, max)).collect()
        };
        assert_eq!(recorded(4, 40), [1, 2, 3, 4, 8, 16, 32]);
        assert_eq!(recorded(0, 5), [1, 2, 3, 4, 5]);
        // max / 8 per doubling: 1250 between 10000 and 20000, 1250 more up to 40000.
        assert_eq!(recorded(10_000, 20_000).len(), 11_250);
        assert_eq!(recorded(10_000, 40_000).len(), 12_500);
        // No overflow at the end of the range.
        let _ = records_call(u64::MAX, 10_000);
        assert!(records_call(u64::MAX, u64::MAX));
    }

    fn record_config() -> RecordConfig {
        RecordConfig {
            run: RunConfig {
                target: Target::Script("app.py".into()),
                args: Vec::new(),
                watch: false,
                root: None,
                python: None,
                verbosity: Verbosity::Normal,
            },
            output: "run.trace".into(),
            snapshots: Snapshots::Args,
            max_calls_per_function: 7,
            limits: SnapshotLimits {
                max_depth: 3,
                max_items: 5,
                max_str_bytes: 64,
                max_nodes: 40,
                hash_over_bytes: 4096,
            },
            profile_only: false,
        }
    }

    #[test]
    fn a_recordings_settings_read_back_from_its_header() {
        let process = RecordedProcess {
            main_thread: 140_234,
            clock: "monotonic".into(),
            cwd: "/work".into(),
        };
        let header = TraceHeader {
            options: record_config().header_options(&process),
            ..TraceHeader::default()
        };
        assert_eq!(SnapshotLimits::recorded(&header), record_config().limits);
        assert_eq!(recorded_cwd(&header), Some("/work"));
        assert_eq!(crate::analysis::text::main_thread(&header), Some(140_234));
        assert_eq!(option(&header, SNAPSHOTS), Some("args"));
        assert_eq!(option(&header, MAX_CALLS_PER_FUNCTION), Some("7"));
        assert_eq!(option(&header, CLOCK), Some("monotonic"));
    }

    #[test]
    fn limits_a_header_does_not_state_are_the_defaults_but_no_node_budget_and_bytes_to_1_mib() {
        let mut header = TraceHeader::default();
        let unbudgeted = SnapshotLimits {
            max_nodes: 0,
            hash_over_bytes: HASH_OVER_BYTES_BEFORE,
            ..SnapshotLimits::default()
        };
        assert_eq!(SnapshotLimits::recorded(&header), unbudgeted);
        header.options = vec![
            (SNAPSHOT_DEPTH.into(), "3".into()),
            (SNAPSHOT_ITEMS.into(), "x".into()),
            (SNAPSHOT_STRING_BYTES.into(), " 64 ".into()),
        ];
        assert_eq!(
            SnapshotLimits::recorded(&header),
            SnapshotLimits {
                max_depth: 3,
                max_str_bytes: 64,
                ..unbudgeted
            }
        );
    }
}
