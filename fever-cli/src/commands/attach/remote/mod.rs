//! `fever attach PID` on a process that was not started under fever: on Python 3.14+, fever
//! loads itself into it through `sys.remote_exec` (PEP 768), and the attach goes on over the
//! control socket it opens, as with any process under fever.
//!
//! - `target.rs`: what `/proc` says about the process (its interpreter, remote debugging off).
//! - `inject.rs`: an interpreter of the process's version hands it the bootstrap.
//! - `bootstrap.rs` (and `bootstrap.py`): the script the process runs on its main thread at its
//!   next safe point: it imports fever from the process's own environment (or says that fever
//!   is not installed there) and opens the control socket, with the main script's directory
//!   (the current directory for `-m`, `-c` or a REPL) as the project root; and its status.
//!
//! Every way this can fail is a [`Refusal`] in words: no Python, Python before 3.14, remote
//! debugging turned off, another Python version, the kernel refusing (ptrace rules), a main
//! thread that does not reach a safe point within [`SAFE_POINT_TIMEOUT`], fever missing.

mod bootstrap;
mod inject;
mod target;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fever_core::control::{is_alive, process_socket};

use super::client::{Client, Refusal};
use crate::messages;
use bootstrap::{Bootstrap, Report, Status};
use inject::Refused;
use target::{Disabled, Program, Version};

/// How long the main thread gets to reach a safe point and start the bootstrap.
const SAFE_POINT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the bootstrap gets, once started, to import fever and open the socket.
const BOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the bootstrap's status is looked at.
const POLL: Duration = Duration::from_millis(2);

/// The oldest Python with `sys.remote_exec`.
const PEP_768: Version = (3, 14);

const UNDER_FEVER: &str =
    "start the program with `fever run` (or `fever watch`, `fever record`) to attach to it later";

/// Connects to process `pid`: to its control socket, or, when it has none, to the one fever
/// opens after loading itself into it (Python 3.14+).
pub fn connect(pid: u32) -> Result<Client, Refusal> {
    Client::reachable(pid)?;
    if let Ok(client) = Client::connect_to(pid, &process_socket(pid)) {
        return Ok(client);
    }
    let socket = load_fever(pid)?;
    Client::connect_to(pid, &socket).map_err(|err| Refusal {
        message: format!(
            "fever opened its control socket in process {pid} at {}, but it cannot be reached \
             from here ({err})",
            socket.display()
        ),
        hint: "the process may run in another mount namespace (a container): run `fever \
               attach` in there"
            .into(),
    })
}

/// Loads fever into process `pid` (not under fever) and has it open its control socket;
/// returns the socket's path.
fn load_fever(pid: u32) -> Result<PathBuf, Refusal> {
    let facts = target::read(pid).map_err(|err| match err.kind() {
        std::io::ErrorKind::PermissionDenied => denied(pid, &err.to_string()),
        _ => refusal(
            format!("process {pid} is not running under fever, and fever cannot see its program ({err})"),
            UNDER_FEVER,
        ),
    })?;
    let python = match facts.program {
        Program::NotPython(exe) => {
            return Err(refusal(
                format!(
                    "process {pid} is not running under fever, and it is not a Python process \
                     ({})",
                    exe.display()
                ),
                UNDER_FEVER,
            ))
        }
        Program::Interpreter(exe) => {
            if let Some(version) = named_version(&exe).filter(|v| *v < PEP_768) {
                return Err(too_old(pid, &format!("{}.{}", version.0, version.1)));
            }
            exe
        }
        Program::Embedding(_, version) if version < PEP_768 => {
            return Err(too_old(pid, &format!("{}.{}", version.0, version.1)));
        }
        Program::Embedding(_, (major, minor)) => std::env::var_os("FEVER_PYTHON").map_or_else(
            || PathBuf::from(format!("python{major}.{minor}")),
            PathBuf::from,
        ),
    };
    if let Some(how) = facts.disabled {
        return Err(disabled(pid, Some(&how)));
    }
    let bootstrap = Bootstrap::write(pid).map_err(|err| {
        refusal(
            format!("cannot write fever's bootstrap for process {pid}: {err}"),
            UNDER_FEVER,
        )
    })?;
    if let Err(refused) = inject::send(&python, pid, &bootstrap.script()) {
        bootstrap.remove();
        return Err(refused_words(pid, &python, refused));
    }
    let status = wait(pid, &bootstrap);
    // A request the process has not run yet keeps its script: see `Bootstrap::cancel`.
    if bootstrap.report().is_some() || !is_alive(pid) {
        bootstrap.remove();
    }
    match status? {
        Status::Listening { socket, root } => {
            messages::info(&format!(
                "loaded fever into process {pid} with sys.remote_exec (PEP 768); project root: \
                 {root}"
            ));
            Ok(socket)
        }
        Status::Missing { executable, error } => Err(refusal(
            format!(
                "fever is not installed in the environment of process {pid} (its Python is \
                 {executable}; import fever: {error})"
            ),
            &format!(
                "install it there (`{executable} -m pip install fever`) and attach again, or \
                 {UNDER_FEVER}"
            ),
        )),
        Status::Unsupported { message, hint } => Err(refusal(
            format!("fever cannot run in process {pid}: {message}"),
            &hint,
        )),
        Status::Failed(message) => Err(refusal(
            format!("fever could not open its control socket in process {pid}: {message}"),
            UNDER_FEVER,
        )),
    }
}

/// Waits for the bootstrap's final status.
fn wait(pid: u32, bootstrap: &Bootstrap) -> Result<Status, Refusal> {
    let mut deadline = Instant::now() + SAFE_POINT_TIMEOUT;
    let mut started = false;
    let mut cancelled = false;
    loop {
        let report = bootstrap.report();
        if let Some(Report::Done(status)) = report {
            return Ok(status);
        }
        if report.is_some() && !started {
            started = true;
            deadline = Instant::now() + BOOTSTRAP_TIMEOUT;
        }
        if report.is_none() && cancelled {
            let state = target::main_thread_state(pid)
                .map(|state| format!(": it {state}"))
                .unwrap_or_default();
            return Err(refusal(
                format!(
                    "process {pid}'s main thread did not reach a point where it can run \
                     fever's bootstrap within {} s{state}",
                    SAFE_POINT_TIMEOUT.as_secs()
                ),
                &format!(
                    "sys.remote_exec runs code between two Python instructions of the main \
                     thread; attach again while it runs Python code (the request left pending \
                     does nothing when it runs), or {UNDER_FEVER}"
                ),
            ));
        }
        if !is_alive(pid) {
            return Err(refusal(
                format!("process {pid} exited before fever was loaded into it"),
                "`fever ps` lists your processes running under fever",
            ));
        }
        if Instant::now() >= deadline {
            if started {
                return Err(refusal(
                    format!(
                        "fever's bootstrap in process {pid} did not finish within {} s",
                        BOOTSTRAP_TIMEOUT.as_secs()
                    ),
                    "attach again: if it opened the control socket meanwhile, the attach \
                     connects at once",
                ));
            }
            // Look once more after cancelling: the bootstrap may have started meanwhile.
            bootstrap.cancel();
            cancelled = true;
            continue;
        }
        std::thread::sleep(POLL);
    }
}

/// The words for a script `python` could not hand over.
fn refused_words(pid: u32, python: &Path, refused: Refused) -> Refusal {
    let python_name = python.display();
    match refused {
        Refused::TooOld(_, full) => too_old(pid, &full),
        Refused::Denied(said) => denied(pid, &said),
        Refused::Disabled => disabled(pid, None),
        Refused::OtherVersion(said) => refusal(
            format!(
                "process {pid} runs another Python version than {python_name}, which fever \
                 found to attach with: {said}"
            ),
            "sys.remote_exec works only between interpreters of the same major.minor version: \
             set FEVER_PYTHON to the process's interpreter",
        ),
        Refused::NotPython(said) => refusal(
            format!(
                "process {pid} is not running under fever, and no Python runtime was found in it \
                 ({said})"
            ),
            UNDER_FEVER,
        ),
        Refused::Failed(said) => refusal(
            format!("cannot load fever into process {pid}: {said}"),
            UNDER_FEVER,
        ),
    }
}

fn refusal(message: String, hint: &str) -> Refusal {
    Refusal {
        message,
        hint: hint.to_owned(),
    }
}

fn too_old(pid: u32, version: &str) -> Refusal {
    refusal(
        format!(
            "process {pid} is not running under fever, and it runs Python {version}: attaching to \
             a process not started under fever needs Python 3.14 or later (PEP 768)"
        ),
        &format!("{UNDER_FEVER}, or run it on Python 3.14+"),
    )
}

fn disabled(pid: u32, how: Option<&Disabled>) -> Refusal {
    let how = match how {
        Some(Disabled::Environment) => "PYTHON_DISABLE_REMOTE_DEBUG is set in its environment",
        Some(Disabled::Option) => "it was started with -X disable-remote-debug",
        None => {
            "by PYTHON_DISABLE_REMOTE_DEBUG, -X disable-remote-debug, or a Python built \
             --without-remote-debug"
        }
    };
    refusal(
        format!(
            "process {pid} has remote debugging turned off ({how}): fever cannot load itself \
             into it"
        ),
        &format!("{UNDER_FEVER}, or restart it without turning remote debugging off"),
    )
}

/// The kernel refused us the process's memory.
fn denied(pid: u32, said: &str) -> Refusal {
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()
        .map(|s| format!(" (it is {} here)", s.trim()))
        .unwrap_or_default();
    let capability = if has_cap_sys_ptrace() { "has" } else { "lacks" };
    refusal(
        format!("the kernel refused to let fever into process {pid} ({said})"),
        &format!(
            "PEP 768 needs the rights of a debugger (ptrace) over the process, and this fever \
             {capability} CAP_SYS_PTRACE. Yama's /proc/sys/kernel/yama/ptrace_scope{scope} \
             allows it to the process's parents only when 1 (`echo 0 | sudo tee \
             /proc/sys/kernel/yama/ptrace_scope`, or start the program with `setpriv --ptracer \
             any`), to CAP_SYS_PTRACE only when 2, never when 3; a container needs \
             `--cap-add=SYS_PTRACE`; a process in another PID namespace is attached from inside \
             it; or {UNDER_FEVER}"
        ),
    )
}

/// This process may ptrace any process (`CAP_SYS_PTRACE` in its effective set).
fn has_cap_sys_ptrace() -> bool {
    const CAP_SYS_PTRACE: u32 = 19;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let caps = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
            u64::from_str_radix(caps.trim(), 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_PTRACE) != 0)
}

/// The version in an interpreter's file name (`python3.13` gives 3.13; `python3` nothing).
fn named_version(exe: &Path) -> Option<Version> {
    let name = exe.file_name()?.to_str()?.strip_prefix("python")?;
    let (major, minor) = name.split_once('.')?;
    let minor: String = minor.chars().take_while(char::is_ascii_digit).collect();
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_in_interpreter_names() {
        assert_eq!(
            named_version(Path::new("/usr/bin/python3.13")),
            Some((3, 13))
        );
        assert_eq!(named_version(Path::new("python3.14t")), Some((3, 14)));
        assert_eq!(named_version(Path::new("/usr/bin/python3")), None);
        assert_eq!(named_version(Path::new("/usr/bin/sleep")), None);
    }

    #[test]
    fn a_missing_pid_and_a_program_without_python_are_refused_in_words() {
        // A pid above the kernel's maximum (4194304) never exists.
        let refused = connect(4_194_999).err().unwrap();
        assert_eq!(refused.message, "no process has pid 4194999");
        let refused = load_fever(std::process::id()).err().unwrap();
        assert!(
            refused.message.contains("is not a Python process"),
            "{}",
            refused.message
        );
        assert!(refused
            .hint
            .starts_with("start the program with `fever run`"));
    }
}
