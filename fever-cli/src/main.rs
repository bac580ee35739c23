//! The standalone `fever` binary. Commands that need Python re-execute this process as
//! `PYTHON -m fever ARGS` (same pid, no second interpreter); the interpreter comes from `--python`,
//! `FEVER_PYTHON`, or the first `python3` on PATH, and must be 3.12+ with fever installed.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use anyhow::{bail, Context};
use fever_cli::{Host, RunConfig};

struct ExecPython {
    argv: Vec<OsString>,
}

impl Host for ExecPython {
    fn run(&self, config: &RunConfig) -> anyhow::Result<i32> {
        let python = config.python.clone().unwrap_or_else(|| PathBuf::from("python3"));
        check_python(&python)?;
        let err = Process::new(&python).arg("-m").arg("fever").args(&self.argv[1..]).exec();
        Err(err).with_context(|| format!("cannot start {}", python.display()))
    }
}

/// Fails with a clear message when `python` is missing, older than 3.12, or lacks fever.
fn check_python(python: &Path) -> anyhow::Result<()> {
    let probe = "import sys\nif sys.version_info < (3, 12): print('old', sys.version.split()[0]); raise SystemExit\n\
                 try:\n    import fever._native\nexcept ImportError:\n    print('missing'); raise SystemExit\nprint('ok')";
    let output = Process::new(python)
        .args(["-c", probe])
        .output()
        .with_context(|| format!("cannot start Python interpreter {}", python.display()))?;
    let answer = String::from_utf8_lossy(&output.stdout);
    let answer = answer.trim();
    if answer == "ok" {
        return Ok(());
    }
    if let Some(version) = answer.strip_prefix("old ") {
        fever_cli::messages::hint("pass --python /path/to/python3.12 or set FEVER_PYTHON");
        bail!("{} is Python {version}; fever needs Python 3.12 or newer", python.display());
    }
    if answer == "missing" {
        fever_cli::messages::hint(&format!("install it with `{} -m pip install fever`", python.display()));
        bail!("fever is not installed for {}", python.display());
    }
    bail!("{} did not run: {}", python.display(), String::from_utf8_lossy(&output.stderr).trim())
}

fn main() {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let host = ExecPython { argv: argv.clone() };
    std::process::exit(fever_cli::main(argv, &host));
}
