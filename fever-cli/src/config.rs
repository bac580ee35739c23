//! The configuration the rest of fever uses, converted once from the parsed arguments.

use std::path::PathBuf;

/// One parsed `fever` invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run(RunConfig),
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
