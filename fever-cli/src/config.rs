//! The configuration the rest of fever uses, converted once from the parsed arguments.

use std::path::PathBuf;

use anyhow::bail;

use fever_core::replay::CallRef;

/// One parsed `fever` invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Run(RunConfig),
    Record(RecordConfig),
    Watch(WatchConfig),
    Show(ShowConfig),
    Check(CheckConfig),
    Replay(ReplayConfig),
    ReplayServe(ServeConfig),
}

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
    /// The module name a script's file gives (`app` for `src/app.py`); it runs as `__main__`.
    pub fn script_module(&self) -> Option<String> {
        match &self.target {
            Target::Script(path) => path.file_stem().map(|s| s.to_string_lossy().into_owned()),
            Target::Module(_) => None,
        }
    }
}

/// The project root: `--root`, else the script's directory, else (`-m`) the current directory.
pub fn project_root(config: &RunConfig) -> anyhow::Result<PathBuf> {
    let root = match (&config.root, &config.target) {
        (Some(root), _) => root.clone(),
        (None, Target::Script(script)) => {
            if !script.is_file() {
                let abs = std::path::absolute(script).unwrap_or_else(|_| script.clone());
                bail!(
                    "can't open file '{}': No such file or directory",
                    abs.display()
                );
            }
            std::path::absolute(script)?
                .parent()
                .map_or_else(|| PathBuf::from("."), PathBuf::from)
        }
        (None, Target::Module(_)) => std::env::current_dir()?,
    };
    if !root.is_dir() {
        bail!("--root {} is not a directory", root.display());
    }
    Ok(root)
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
}

/// How much of each argument and return value a snapshot keeps (`--snapshot-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotLimits {
    /// Containers nested deeper are recorded by type only.
    pub depth: u32,
    /// Items recorded per container.
    pub items: u32,
    /// Bytes recorded per string.
    pub string_bytes: usize,
}

impl Default for SnapshotLimits {
    fn default() -> Self {
        Self {
            depth: 6,
            items: 32,
            string_bytes: 1024,
        }
    }
}

/// `fever show [OPTIONS] TRACE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShowConfig {
    /// The trace file to read.
    pub trace: PathBuf,
    /// What to produce.
    pub view: ShowView,
    /// Where to write it.
    pub output: Output,
}

/// What `fever show` produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShowView {
    /// The call tree as text.
    Tree {
        /// `--depth`: levels shown; `None` shows all.
        depth: Option<usize>,
        /// `--max-lines`: lines printed before the rest is only counted; `None` prints all.
        max_lines: Option<usize>,
    },
    /// `--profile`: the table of functions by total time.
    Profile {
        /// `--limit`: rows printed; `None` prints all.
        limit: Option<usize>,
    },
    /// `--format perfetto|chrome|speedscope`.
    Export(ExportFormat),
}

/// A trace viewer's file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Perfetto's protobuf trace.
    Perfetto,
    /// Chrome's trace-event JSON.
    Chrome,
    /// speedscope's JSON file format.
    Speedscope,
}

impl ExportFormat {
    /// The extension an export gets by default, replacing the trace's: `run.trace` becomes
    /// `run.pftrace`.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Perfetto => "pftrace",
            Self::Chrome => "chrome.json",
            Self::Speedscope => "speedscope.json",
        }
    }
}

/// Where a command writes its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Standard output (`-o -`, and the default for text).
    Stdout,
    /// A file, written to a temporary name and renamed into place when complete.
    File(PathBuf),
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
    /// `--allow-pickle` (traces hold no pickles: accepted, changes nothing).
    pub allow_pickle: bool,
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

/// `fever replay [OPTIONS] (SCRIPT | -m MODULE) [ARGS...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayConfig {
    /// How to run the program (as `fever run`).
    pub run: RunConfig,
    /// `--start`: replay this call without the UI (headless); `None` opens the UI.
    pub start: Option<CallRef>,
    /// `--end`: where the replay stops; defaults to the start call.
    pub end: Option<CallRef>,
    /// `--break-at-end`: open the debugger in the end call's frame when it returns.
    pub break_at_end: bool,
    pub debugger: Debugger,
    /// `--timeout`: a headless replay still running after this long is stopped.
    pub timeout: Option<std::time::Duration>,
}

/// The debugger a replay opens (`--debugger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Debugger {
    Pdb,
    Pdbpp,
    Ipdb,
    Pudb,
}

impl Debugger {
    /// The name on the command line and in the control protocol.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pdb => "pdb",
            Self::Pdbpp => "pdbpp",
            Self::Ipdb => "ipdb",
            Self::Pudb => "pudb",
        }
    }
}

/// Which start calls the program keeps the arguments of, so they can be replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    /// Just this call (headless replay).
    Call(CallRef),
    /// The first N calls of every project function (the UI).
    First(u32),
}

/// The program side of `fever replay` (the hidden `fever _replay-serve`): runs the program
/// recorded, then stays warm and serves replays on the control socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// How to run and record the program; `record.output` is the trace the front end reads.
    pub record: RecordConfig,
    /// The control socket to listen on (in a private directory the front end made).
    pub control: PathBuf,
    pub keep: Keep,
}

impl ServeConfig {
    /// The command line (after the program name) that parses back into this config.
    pub fn to_args(&self) -> Vec<std::ffi::OsString> {
        let run = &self.record.run;
        let mut args: Vec<std::ffi::OsString> = vec![
            "_replay-serve".into(),
            "--control".into(),
            self.control.clone().into(),
            "--trace".into(),
            self.record.output.clone().into(),
        ];
        match &self.keep {
            Keep::Call(call) => args.extend(["--keep".into(), call.to_string().into()]),
            Keep::First(n) => args.extend(["--keep-first".into(), n.to_string().into()]),
        }
        if let Some(root) = &run.root {
            args.extend(["--root".into(), root.clone().into()]);
        }
        if !run.watch {
            args.push("--no-watch".into());
        }
        match run.verbosity {
            Verbosity::Quiet => args.push("-q".into()),
            Verbosity::Verbose => args.push("-v".into()),
            Verbosity::Normal => {}
        }
        match &run.target {
            Target::Script(path) => args.push(path.clone().into()),
            Target::Module(name) => args.extend(["-m".into(), name.into()]),
        }
        args.extend(run.args.iter().map(Into::into));
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_config(target: Target, root: Option<PathBuf>) -> RunConfig {
        RunConfig {
            target,
            args: Vec::new(),
            watch: true,
            root,
            python: None,
            verbosity: Verbosity::Normal,
        }
    }

    #[test]
    fn the_project_root_is_the_root_option_else_the_scripts_directory() {
        let dir = std::env::temp_dir().join(format!("fever-root-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("src/app.py"), "").unwrap();
        let script = Target::Script(dir.join("src/app.py"));
        assert_eq!(
            project_root(&run_config(script.clone(), None)).unwrap(),
            dir.join("src")
        );
        assert_eq!(
            project_root(&run_config(script, Some(dir.clone()))).unwrap(),
            dir
        );
        let module = Target::Module("app".into());
        assert_eq!(
            project_root(&run_config(module, None)).unwrap(),
            std::env::current_dir().unwrap()
        );
        let missing = run_config(Target::Script(dir.join("missing.py")), None);
        assert!(project_root(&missing)
            .unwrap_err()
            .to_string()
            .starts_with("can't open file"));
        let not_a_dir = run_config(Target::Module("app".into()), Some(dir.join("src/app.py")));
        assert!(project_root(&not_a_dir)
            .unwrap_err()
            .to_string()
            .ends_with("is not a directory"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
