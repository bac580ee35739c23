//! fever's bootstrap for a process not started under fever: `bootstrap.py`, written into a
//! fresh private directory (`remote-PID-…` in the user's control directory) for
//! `sys.remote_exec` to run, and the status it reports there. A directory stays behind only
//! for a request the process has not run yet (its main thread never reached a safe point):
//! the script removes it when it runs, and the next remote attach removes those of processes
//! that are gone.

use std::fmt::Write;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use fever_core::control::{control_dir, is_alive, private_dir};

/// The script; `@DIRECTORY@` becomes the directory's path, in hex (any bytes survive).
const SCRIPT: &str = include_str!("bootstrap.py");

/// What the script reported so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Report {
    /// It runs (importing fever may take a moment).
    Started,
    /// It finished.
    Done(Status),
}

/// How the script ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Status {
    /// The control socket is open at `socket`, with `root` as the project.
    Listening { socket: PathBuf, root: String },
    /// `import fever` failed in the process, whose interpreter is `executable`.
    Missing { executable: String, error: String },
    /// fever does not run on the process's interpreter.
    Unsupported { message: String, hint: String },
    /// Opening the socket failed.
    Failed(String),
}

impl Report {
    /// Parses the status file's lines (`None` for anything else).
    fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        let word = lines.next()?;
        let mut next = || lines.next().map(str::to_owned);
        Some(Self::Done(match word {
            "started" => return Some(Self::Started),
            "ok" => Status::Listening {
                socket: PathBuf::from(next()?),
                root: next()?,
            },
            "missing" => Status::Missing {
                executable: next()?,
                error: next()?,
            },
            "unsupported" => Status::Unsupported {
                message: next()?,
                hint: next()?,
            },
            "error" => Status::Failed(next()?),
            _ => return None,
        }))
    }
}

/// The bootstrap of one attach.
pub struct Bootstrap {
    dir: PathBuf,
}

impl Bootstrap {
    /// Writes the script for process `pid` into a fresh private directory.
    pub fn write(pid: u32) -> io::Result<Self> {
        remove_abandoned();
        let dir = private_dir(&format!("remote-{pid}"))?;
        let script = SCRIPT.replace("@DIRECTORY@", &hex(dir.as_os_str().as_bytes()));
        let bootstrap = Self { dir };
        if let Err(err) = std::fs::write(bootstrap.script(), script) {
            bootstrap.remove();
            return Err(err);
        }
        Ok(bootstrap)
    }

    /// The script's path.
    pub fn script(&self) -> PathBuf {
        self.dir.join("bootstrap.py")
    }

    /// What the script reported last (`None` before it ran).
    pub fn report(&self) -> Option<Report> {
        Report::parse(&std::fs::read_to_string(self.dir.join("status")).ok()?)
    }

    /// `fever attach` stops waiting: should the script run later, it does nothing but remove
    /// the directory (removing it now would make the process print that its debugger script
    /// is missing).
    pub fn cancel(&self) {
        let _ = std::fs::write(self.dir.join("cancelled"), b"");
    }

    /// Removes the directory (the process read the script when it started running it).
    pub fn remove(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `bytes` in hex digits.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

/// Removes the directories of requests to processes that are gone.
fn remove_abandoned() {
    let Ok(entries) = control_dir().and_then(std::fs::read_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("remote-"))
            .and_then(|n| n.split('-').next())
            .and_then(|pid| pid.parse().ok())
        else {
            continue;
        };
        if !is_alive(pid) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_digits() {
        assert_eq!(hex(b"/tmp/\xff"), "2f746d702fff");
    }

    #[test]
    fn the_status_lines() {
        assert_eq!(Report::parse("started\n"), Some(Report::Started));
        assert_eq!(
            Report::parse("ok\n/run/fever/42.sock\n/home/me/app\n"),
            Some(Report::Done(Status::Listening {
                socket: "/run/fever/42.sock".into(),
                root: "/home/me/app".into()
            }))
        );
        assert_eq!(
            Report::parse("missing\n/usr/bin/python3.14\nNo module named 'fever'\n"),
            Some(Report::Done(Status::Missing {
                executable: "/usr/bin/python3.14".into(),
                error: "No module named 'fever'".into()
            }))
        );
        assert_eq!(
            Report::parse("unsupported\ntoo new\nchoose\n"),
            Some(Report::Done(Status::Unsupported {
                message: "too new".into(),
                hint: "choose".into()
            }))
        );
        assert_eq!(
            Report::parse("error\nFeverError: no\n"),
            Some(Report::Done(Status::Failed("FeverError: no".into())))
        );
        for garbage in ["", "ok\n", "ok\n/s\n", "missing\nx\n", "what\n"] {
            assert_eq!(Report::parse(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn the_script_knows_its_directory_and_a_gone_processs_directory_is_removed() {
        let bootstrap = Bootstrap::write(std::process::id()).unwrap();
        let script = std::fs::read_to_string(bootstrap.script()).unwrap();
        let hex = hex(bootstrap.dir.as_os_str().as_bytes());
        assert!(script.contains(&format!("bytes.fromhex(\"{hex}\")")));
        assert!(!script.contains("@DIRECTORY@"));
        assert_eq!(bootstrap.report(), None);
        // A pid above the kernel's maximum (4194304) never exists.
        let gone = private_dir("remote-4194999").unwrap();
        std::fs::write(gone.join("bootstrap.py"), "").unwrap();
        let again = Bootstrap::write(std::process::id()).unwrap();
        assert!(!gone.exists() && bootstrap.dir.exists());
        bootstrap.remove();
        again.remove();
    }
}
