//! The standalone `fever` binary. `fever show` runs right here, with no interpreter (see
//! `fever_cli::main`). Commands that need Python re-execute this process as what
//! `PYTHON -m fever ARGS` runs (same pid, no second interpreter); the interpreter comes from `--python`,
//! `FEVER_PYTHON`, or the first `python3` on PATH, and must be one fever supports
//! (`fever_core::python`) with fever installed.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use anyhow::Context;
use fever_cli::{
    interpreters, CheckConfig, CheckPolicy, Host, RecordConfig, RunConfig, ServeConfig, WatchConfig,
};
use fever_core::python::Interpreter;

struct ExecPython {
    argv: Vec<OsString>,
}

impl Host for ExecPython {
    fn run(&self, config: &RunConfig) -> anyhow::Result<i32> {
        self.exec_python(config.python.as_deref())
    }

    fn record(&self, config: &RecordConfig) -> anyhow::Result<i32> {
        self.exec_python(config.run.python.as_deref())
    }

    fn check(&self, config: &CheckConfig, _policy: CheckPolicy<'_>) -> anyhow::Result<i32> {
        self.exec_python(config.python.as_deref())
    }

    fn watch(&self, config: &WatchConfig) -> anyhow::Result<i32> {
        self.exec_python(config.run.python.as_deref())
    }

    fn serve(&self, config: &ServeConfig) -> anyhow::Result<i32> {
        self.exec_python(config.record.run.python.as_deref())
    }

    fn python(&self, requested: Option<&Path>) -> anyhow::Result<PathBuf> {
        let python = requested.map_or_else(|| PathBuf::from("python3"), Path::to_path_buf);
        check_python(&python)
            .map_err(|problem| anyhow::anyhow!("{}\nhint: {}", problem.message, problem.hint))?;
        Ok(python)
    }
}

impl ExecPython {
    /// Replaces this process with `PYTHON -m fever ARGS` (its `-c` equivalent) for `python`
    /// (`--python` or `FEVER_PYTHON`), else the first `python3` on PATH.
    fn exec_python(&self, python: Option<&Path>) -> anyhow::Result<i32> {
        let python = python.map_or_else(|| PathBuf::from("python3"), Path::to_path_buf);
        if let Err(problem) = check_python(&python) {
            fever_cli::messages::error(&problem.message);
            fever_cli::messages::hint(&problem.hint);
            return Ok(2);
        }
        // What `python -m fever` runs, without `runpy` (and the `importlib` modules it imports:
        // ~4 M instructions a start); `fever` is the program name clap's messages use. An
        // interpreter remembered from an earlier probe can have lost fever since (another
        // `PYTHONPATH`, a venv made again around the same files): it says so as the probe would.
        let missing = not_installed(&python);
        let said = fever_cli::messages::error_line(&missing.message)
            + &fever_cli::messages::hint_line(&missing.hint);
        let code = format!(
            "import sys\n\
             sys.argv[0] = 'fever'\n\
             try:\n    from fever.__main__ import main\n\
             except ImportError as e:\n    \
                 if not (e.name or '').startswith('fever'):\n        raise\n    \
                 sys.stderr.write(bytes.fromhex('{}').decode())\n    \
                 sys.exit(2)\n\
             main()",
            hex(said.as_bytes())
        );
        let err = Process::new(&python)
            .arg("-c")
            .arg(code)
            .args(&self.argv[1..])
            .exec();
        Err(err).with_context(|| format!("cannot start {}", python.display()))
    }
}

/// Why an interpreter cannot run fever, and what to do about it.
struct Unusable {
    message: String,
    hint: String,
}

/// What to say of an interpreter that cannot import fever.
fn not_installed(python: &Path) -> Unusable {
    Unusable {
        message: format!("fever is not installed for {}", python.display()),
        hint: format!(
            "install it with `{} -m pip install fever`, or {CHOOSE}",
            python.display()
        ),
    }
}

/// The way out of an interpreter fever cannot use.
const CHOOSE: &str = "pass --python /path/to/python3.X (3.12 to 3.15) or set FEVER_PYTHON";

/// `bytes` as lowercase hexadecimal digits (for Python's `bytes.fromhex`).
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Fails with a clear message when `python` is missing, not a version fever supports (3.12 to
/// 3.15, not free-threaded: `fever_core::python`), or lacks fever. An interpreter that passed
/// before and did not change since is not probed again (`fever_cli::interpreters`).
fn check_python(python: &Path) -> Result<(), Unusable> {
    let cache = interpreters::cache_file();
    if cache
        .as_deref()
        .is_some_and(|cache| interpreters::known_good(cache, python))
    {
        return Ok(());
    }
    let choose = CHOOSE.to_owned();
    // Line 1: version and ABI flags; line 2: whether fever's extension imports (`ok PATH` of
    // the extension, or `missing`). Written for any Python 3 (and it must not import fever on a
    // version fever refuses).
    let probe = "import sys\nprint('%d.%d.%d' % tuple(sys.version_info[:3]), getattr(sys, 'abiflags', '') or '-')\n\
                 sys.stdout.flush()\n\
                 try:\n    import fever._native\nexcept Exception:\n    print('missing')\nelse:\n    print('ok', fever._native.__file__)";
    let output = Process::new(python)
        .args(["-c", probe])
        .output()
        .map_err(|err| Unusable {
            message: format!(
                "cannot start Python interpreter {}: {err}",
                python.display()
            ),
            hint: choose.clone(),
        })?;
    let answer = String::from_utf8_lossy(&output.stdout);
    let mut lines = answer.lines();
    let interpreter = lines.next().and_then(Interpreter::parse);
    if let Some(interpreter) = &interpreter {
        if let Err(unsupported) = interpreter.check() {
            return Err(Unusable {
                message: format!("{}: {}", python.display(), unsupported.message),
                hint: unsupported.hint,
            });
        }
        match lines
            .next()
            .map(str::trim)
            .map(|l| l.split_once(' ').unwrap_or((l, "")))
        {
            Some(("ok", extension)) => {
                if let (Some(cache), false) = (cache, extension.is_empty()) {
                    interpreters::remember(&cache, python, Path::new(extension));
                }
                return Ok(());
            }
            Some(("missing", _)) => return Err(not_installed(python)),
            _ => {}
        }
    }
    Err(Unusable {
        message: format!(
            "{} did not run: {}",
            python.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        hint: choose,
    })
}

fn main() {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let host = ExecPython { argv: argv.clone() };
    std::process::exit(fever_cli::main(argv, &host));
}
