//! Hands a script to a process with `sys.remote_exec` (PEP 768). This process has no Python,
//! so an interpreter does it (`-I -S`: nothing of its environment is imported); it must be of
//! the target's own major.minor version. The answer comes back as one line, classified here.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use wait_timeout::ChildExt;

use super::target::Version;

/// Run by the interpreter with the pid and the script's path: its version, then the outcome.
const PROBE: &str = r#"import sys
print("%d.%d.%d" % tuple(sys.version_info[:3]), flush=True)
if sys.version_info >= (3, 14):
    try:
        sys.remote_exec(int(sys.argv[1]), sys.argv[2])
    except PermissionError as err:
        print("denied", err)
    except Exception as err:
        said = []
        while err is not None and len(said) < 4:
            said.append(str(err))
            err = err.__cause__ or err.__context__
        print("failed", " / ".join(said).replace("\n", " "))
    else:
        print("sent")
"#;

/// How long the interpreter may take (it starts, reads a few pages of the target, exits).
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the script could not be handed over.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The interpreter is older than 3.14 (no `sys.remote_exec`); its version.
    TooOld(Version, String),
    /// The kernel refused to let us write into the target (`EPERM`).
    Denied(String),
    /// The target turned remote debugging off (or its Python was built without it).
    Disabled,
    /// The interpreter's version is not the target's (`sys.remote_exec`'s words).
    OtherVersion(String),
    /// No Python runtime was found in the target.
    NotPython(String),
    /// Anything else `sys.remote_exec` said, or why the interpreter did not run.
    Failed(String),
}

/// Has `python` hand `script` to process `pid`, which runs it at its main thread's next safe
/// point.
pub fn send(python: &Path, pid: u32, script: &Path) -> Result<(), Refused> {
    let child = Command::new(python)
        .args(["-I", "-S", "-c", PROBE, &pid.to_string()])
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) => {
            return Err(Refused::Failed(format!(
                "cannot start {}: {err}",
                python.display()
            )))
        }
    };
    if !matches!(child.wait_timeout(PROBE_TIMEOUT), Ok(Some(_))) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Refused::Failed(format!(
            "{} did not finish within {} s",
            python.display(),
            PROBE_TIMEOUT.as_secs()
        )));
    }
    let (mut stdout, mut stderr) = (String::new(), String::new());
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    classify(&stdout).unwrap_or_else(|| {
        Err(Refused::Failed(format!(
            "{} did not run: {}",
            python.display(),
            stderr.trim()
        )))
    })
}

/// The outcome the probe printed (`None` when it printed nothing sensible).
fn classify(stdout: &str) -> Option<Result<(), Refused>> {
    let mut lines = stdout.lines();
    let full = lines.next()?.trim();
    let mut parts = full.split('.');
    let version: Version = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
    if version < (3, 14) {
        return Some(Err(Refused::TooOld(version, full.to_owned())));
    }
    let (word, said) = lines.next().map(|l| l.split_once(' ').unwrap_or((l, "")))?;
    let said = said.trim().to_owned();
    Some(Err(match word {
        "sent" => return Some(Ok(())),
        "denied" => Refused::Denied(said),
        "failed" if said.contains("Remote debugging is not enabled") => Refused::Disabled,
        "failed" if said.contains("Can't send commands from a Python") => {
            Refused::OtherVersion(said.split(" / ").next().unwrap_or_default().to_owned())
        }
        "failed" if said.contains("PyRuntime") => Refused::NotPython(said),
        "failed" => Refused::Failed(said),
        _ => return None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probes_answers() {
        assert_eq!(classify("3.14.10\nsent\n"), Some(Ok(())));
        assert_eq!(
            classify("3.13.0\n"),
            Some(Err(Refused::TooOld((3, 13), "3.13.0".into())))
        );
        assert_eq!(
            classify("3.14.1\ndenied [Errno 1] Operation not permitted\n"),
            Some(Err(Refused::Denied(
                "[Errno 1] Operation not permitted".into()
            )))
        );
        assert_eq!(
            classify("3.14.1\nfailed Remote debugging is not enabled in the remote process\n"),
            Some(Err(Refused::Disabled))
        );
        assert_eq!(
            classify(
                "3.15.2\nfailed Can't send commands from a Python 3.15 process to a Python 3.14 \
                 process / more\n"
            ),
            Some(Err(Refused::OtherVersion(
                "Can't send commands from a Python 3.15 process to a Python 3.14 process".into()
            )))
        );
        assert!(matches!(
            classify("3.14.1\nfailed PyRuntime address lookup failed / Failed to find\n"),
            Some(Err(Refused::NotPython(_)))
        ));
        assert_eq!(
            classify("3.14.1\nfailed boom\n"),
            Some(Err(Refused::Failed("boom".into())))
        );
        for garbage in ["", "hello\n", "3.14.1\n", "3.14.1\nwhat\n"] {
            assert_eq!(classify(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn an_interpreter_that_does_not_start_is_said() {
        let outcome = send(Path::new("/nonexistent/python3.14"), 1, Path::new("/x.py"));
        assert!(
            matches!(&outcome, Err(Refused::Failed(m)) if m.contains("cannot start /nonexistent")),
            "{outcome:?}"
        );
    }
}
