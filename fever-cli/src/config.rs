//! The configuration the rest of fever uses, converted once from the parsed arguments: the
//! settings the engine runs (fever-core's [`settings`](fever_core::settings)) and those of the
//! commands that need no Python.

use std::path::PathBuf;

use anyhow::bail;
use fever_core::replay::CallRef;
pub use fever_core::settings::{
    CacheConfig, CheckAction, CheckConfig, Keep, RecordConfig, RunConfig, SnapshotLimits,
    Snapshots, Target, Verbosity, WatchConfig, DEFAULT_MAX_CALLS,
};

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
    Ps,
    Attach(AttachConfig),
}

/// `fever attach PID [--duration S] [--top N] [--sort KEY] [--record TRACE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachConfig {
    pub pid: u32,
    /// Detach after this long (else at `q`, Ctrl-C, or the process's exit).
    pub duration: Option<std::time::Duration>,
    /// Rows of the table.
    pub top: usize,
    pub sort: fever_core::profile::SortKey,
    /// `--record`: also write a trace of the attached window here (the program writes it).
    pub record: Option<PathBuf>,
}

/// The project root: `--root`, else the script's directory, else (`-m`) the current directory.
pub fn project_root(config: &RunConfig) -> anyhow::Result<PathBuf> {
    if let Target::Script(script) = &config.target {
        if crate::interpreters::is_executable_file(script) {
            bail!(
                "{} is a program, not a Python script: fever starts Python itself \
                 (`fever run script.py ARGS` or `fever run -m module ARGS`)",
                script.display()
            );
        }
    }
    let root = match (&config.root, &config.target) {
        (Some(root), _) => root.clone(),
        // A directory with a `__main__.py` runs as `python DIR` runs it, and is its own root.
        (None, Target::Script(dir)) if dir.is_dir() => std::path::absolute(dir)?,
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

/// The program side of `fever replay` (the hidden `fever _replay-serve`): runs the program
/// recorded, then stays warm and serves replays on the control socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// How to run and record the program; `record.output` is the trace the front end reads.
    pub record: RecordConfig,
    /// The control socket to listen on (in a private directory the front end made).
    pub control: PathBuf,
    pub keep: Keep,
    /// Open this debugger post-mortem when the first run raises (the UI: its terminal can
    /// hand over the keyboard), instead of only printing the traceback.
    pub post_mortem: Option<Debugger>,
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
        if let Some(debugger) = self.post_mortem {
            args.extend(["--post-mortem".into(), debugger.name().into()]);
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
        assert_eq!(
            project_root(&run_config(Target::Script(dir.join("src")), None)).unwrap(),
            dir.join("src")
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
        std::fs::write(dir.join("python"), b"\x7fELF\x02\x01\x01\0").unwrap();
        let program = run_config(Target::Script(dir.join("python")), None);
        assert!(project_root(&program)
            .unwrap_err()
            .to_string()
            .ends_with("is a program, not a Python script: fever starts Python itself (`fever run script.py ARGS` or `fever run -m module ARGS`)"));
        let not_a_dir = run_config(Target::Module("app".into()), Some(dir.join("src/app.py")));
        assert!(project_root(&not_a_dir)
            .unwrap_err()
            .to_string()
            .ends_with("is not a directory"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
