//! What `/proc` says about a process fever may load itself into: its program (an interpreter
//! named `python…`, or a program with `libpython3.X` loaded), whether it turned remote
//! debugging off, and what its main thread is doing. Reading stops at the first file the kernel
//! refuses (a process of another user, or one that is not dumpable): that refusal is the answer.

use std::io;
use std::path::PathBuf;

/// A Python version, major and minor.
pub type Version = (u32, u32);

/// How the process's Python can be reached.
#[derive(Debug, PartialEq, Eq)]
pub enum Program {
    /// The process runs an interpreter binary (`python3.14`, `python3`, …).
    Interpreter(PathBuf),
    /// Another program with `libpython` of this version loaded (an application embedding
    /// Python).
    Embedding(PathBuf, Version),
    /// No Python in it.
    NotPython(PathBuf),
}

/// How the process turned remote debugging off.
#[derive(Debug, PartialEq, Eq)]
pub enum Disabled {
    /// `PYTHON_DISABLE_REMOTE_DEBUG` was set (to a non-empty value) when it started.
    Environment,
    /// It was started with `-X disable-remote-debug`.
    Option,
}

/// What the process is.
#[derive(Debug)]
pub struct Facts {
    pub program: Program,
    /// `None` when the kernel does not show its environment (not dumpable).
    pub disabled: Option<Disabled>,
}

/// Reads the facts of process `pid`; an error when the kernel refuses to show its program.
pub fn read(pid: u32) -> io::Result<Facts> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))?;
    let program = if exe
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|name| name.starts_with("python"))
    {
        Program::Interpreter(exe)
    } else {
        match std::fs::read_to_string(format!("/proc/{pid}/maps"))
            .ok()
            .and_then(|maps| libpython(&maps))
        {
            Some(version) => Program::Embedding(exe, version),
            None => Program::NotPython(exe),
        }
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    Ok(Facts {
        program,
        disabled: disabled(&cmdline, &environ),
    })
}

/// What the process's main thread is doing, in words, from its state in `/proc/PID/stat`
/// (`None` when it cannot be read).
pub fn main_thread_state(pid: u32) -> Option<&'static str> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/stat")).ok()?;
    state_words(&stat)
}

/// The words for the state letter of a `stat` line (after the parenthesized command name,
/// which may hold spaces and parentheses itself).
fn state_words(stat: &str) -> Option<&'static str> {
    let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
    Some(match state {
        "R" => "is running without returning to the interpreter (a long call into C code)",
        "S" | "D" => "is blocked in a system call (such as time.sleep(), a read or a lock)",
        "T" | "t" => "is stopped (SIGSTOP or Ctrl-Z)",
        _ => return None,
    })
}

/// The Python version of a `libpython3.X` mapped into the process (`/proc/PID/maps`).
fn libpython(maps: &str) -> Option<Version> {
    maps.lines().find_map(|line| {
        let name = line.rsplit('/').next()?;
        let rest = name.strip_prefix("libpython")?;
        let (major, rest) = rest.split_once('.')?;
        let minor: String = rest.chars().take_while(char::is_ascii_digit).collect();
        Some((major.parse().ok()?, minor.parse().ok()?))
    })
}

/// How remote debugging was turned off, from the process's NUL-separated command line and
/// environment. `-X disable_remote_debug` (underscore) does not count: Python ignores it; nor
/// does the environment variable under `-E` or `-I`.
fn disabled(cmdline: &[u8], environ: &[u8]) -> Option<Disabled> {
    let mut ignores_environment = false;
    // Interpreter options come before the script, `-c` or `-m`; short ones may be combined
    // (`-IuX value`), and `-W`/`-X` take a value (the rest of the word, or the next one).
    let mut args = cmdline.split(|&b| b == 0).skip(1);
    'args: while let Some(arg) = args.next() {
        let Some(flags) = arg.strip_prefix(b"-") else {
            break;
        };
        if flags.is_empty() || flags.starts_with(b"-") {
            break;
        }
        for (i, flag) in flags.iter().enumerate() {
            match flag {
                b'c' | b'm' => break 'args,
                b'E' | b'I' => ignores_environment = true,
                b'W' | b'X' => {
                    let value = match &flags[i + 1..] {
                        [] => args.next().unwrap_or_default(),
                        rest => rest,
                    };
                    if *flag == b'X' && value == b"disable-remote-debug" {
                        return Some(Disabled::Option);
                    }
                    continue 'args;
                }
                _ => {}
            }
        }
    }
    let set = environ.split(|&b| b == 0).any(|var| {
        var.strip_prefix(b"PYTHON_DISABLE_REMOTE_DEBUG=")
            .is_some_and(|value| !value.is_empty())
    });
    (set && !ignores_environment).then_some(Disabled::Environment)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nul(words: &[&str]) -> Vec<u8> {
        words
            .iter()
            .flat_map(|w| [w.as_bytes(), b"\0"])
            .flatten()
            .copied()
            .collect()
    }

    #[test]
    fn remote_debugging_turned_off_by_the_environment_or_the_option() {
        let plain = nul(&["python3.14", "app.py"]);
        assert_eq!(disabled(&plain, &nul(&["HOME=/root", "PATH=/bin"])), None);
        assert_eq!(
            disabled(&plain, &nul(&["PYTHON_DISABLE_REMOTE_DEBUG=1"])),
            Some(Disabled::Environment)
        );
        // Set but empty does not count, nor with the environment ignored.
        assert_eq!(
            disabled(&plain, &nul(&["PYTHON_DISABLE_REMOTE_DEBUG="])),
            None
        );
        for argv in [
            &["python3.14", "-E", "app.py"][..],
            &["python3.14", "-uI", "app.py"],
        ] {
            assert_eq!(
                disabled(&nul(argv), &nul(&["PYTHON_DISABLE_REMOTE_DEBUG=1"])),
                None
            );
        }
        for argv in [
            &["python3.14", "-X", "disable-remote-debug", "app.py"][..],
            &["python3.14", "-u", "-Xdisable-remote-debug", "app.py"],
            &[
                "python3.14",
                "-W",
                "error",
                "-X",
                "disable-remote-debug",
                "-m",
                "app",
            ],
            &["python3.14", "-uX", "disable-remote-debug", "app.py"],
        ] {
            assert_eq!(
                disabled(&nul(argv), b""),
                Some(Disabled::Option),
                "{argv:?}"
            );
        }
        for argv in [
            // Python ignores the underscore spelling.
            &["python3.14", "-X", "disable_remote_debug", "app.py"][..],
            // The program's own arguments are not the interpreter's.
            &["python3.14", "app.py", "-X", "disable-remote-debug"],
            &["python3.14", "-c", "pass", "-Xdisable-remote-debug"],
            &["python3.14", "-W", "-X", "app.py"],
            &["python3.14", "-uc", "pass", "-X", "disable-remote-debug"],
            &["python3.14", "--", "-X", "disable-remote-debug"],
            &["python3.14"],
            &[],
        ] {
            assert_eq!(disabled(&nul(argv), b""), None, "{argv:?}");
        }
    }

    #[test]
    fn libpython_gives_an_embedding_programs_version() {
        let maps = "7f00-7f01 r--p 00000000 08:01 42 /usr/lib/x86_64-linux-gnu/libc.so.6\n\
                    7f02-7f03 r-xp 00001000 08:01 43 /usr/lib/libpython3.14.so.1.0\n";
        assert_eq!(libpython(maps), Some((3, 14)));
        assert_eq!(
            libpython("7f-7f r-xp 0 0:0 1 /opt/py/lib/libpython3.13d.so\n"),
            Some((3, 13))
        );
        assert_eq!(
            libpython("7f-7f r-xp 0 0:0 1 /usr/bin/sleep\n[heap]\n"),
            None
        );
    }

    #[test]
    fn the_main_threads_state_in_words() {
        assert!(state_words("42 (python3.14) S 1 42 42 0")
            .unwrap()
            .contains("system call"));
        assert!(state_words("42 (a (b) c) R 1").unwrap().contains("into C"));
        assert!(state_words("42 (x) T 1").unwrap().contains("stopped"));
        assert_eq!(state_words("42 (x) Z 1"), None);
        assert_eq!(state_words("garbage"), None);
    }

    #[test]
    fn this_process_is_read() {
        let facts = read(std::process::id()).unwrap();
        assert!(matches!(facts.program, Program::NotPython(_)), "{facts:?}");
        assert!(main_thread_state(std::process::id()).is_some());
    }
}
