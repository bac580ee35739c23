//! The program side as the front end sees it: a child process (`PYTHON -m fever _replay-serve`)
//! that runs the program recorded and then serves replays, reached over the control socket in a
//! private session directory. Dropping a [`Program`] asks it to quit, kills it if it does not,
//! and removes the directory.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use fever_core::control::{private_dir, ControlError, Request, Response};

use crate::config::{
    Debugger, Keep, RecordConfig, RunConfig, ServeConfig, SnapshotLimits, Snapshots,
};

/// How long the program may take to open its control socket.
const CONNECT_TIMEOUT: Duration = Duration::from_mins(1);
/// How long a program asked to quit may take before it is killed.
const QUIT_GRACE: Duration = Duration::from_secs(5);

/// A running program side.
pub struct Program {
    child: Child,
    stream: UnixStream,
    dir: PathBuf,
    trace: PathBuf,
}

/// What ended the wait for a message.
pub enum Heard {
    Response(Response),
    /// The program process is gone (its exit status, if known).
    Gone(Option<ExitStatus>),
}

impl Program {
    /// Starts `python -m fever _replay-serve` for `run`, keeping the arguments of `keep` (and
    /// opening `post_mortem` on the first run's uncaught exception), and connects to it. With `terminal` (a pseudo-terminal's follower side), the program runs in
    /// a session of its own with that terminal as its stdin, stdout, stderr and controlling
    /// terminal; else it shares ours.
    pub fn start(
        python: &Path,
        run: &RunConfig,
        keep: Keep,
        post_mortem: Option<Debugger>,
        terminal: Option<&OwnedFd>,
    ) -> anyhow::Result<Self> {
        let dir = private_dir("replay").context("cannot create fever's private directory")?;
        let serve = ServeConfig {
            record: RecordConfig {
                run: run.clone(),
                output: dir.join("run.trace"),
                snapshots: Snapshots::All,
                max_calls_per_function: crate::config::DEFAULT_MAX_CALLS,
                limits: SnapshotLimits::default(),
                profile_only: false,
            },
            control: dir.join("control.sock"),
            keep,
            post_mortem,
        };
        let mut command = Command::new(python);
        command.args(["-m", "fever"]).args(serve.to_args());
        if let Some(terminal) = terminal {
            command
                .stdin(Stdio::from(terminal.try_clone()?))
                .stdout(Stdio::from(terminal.try_clone()?))
                .stderr(Stdio::from(terminal.try_clone()?));
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                command.pre_exec(|| {
                    if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = match command.spawn() {
            Ok(child) => child,
            Err(err) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(err).with_context(|| format!("cannot start {}", python.display()));
            }
        };
        let mut started = Starting {
            child: Some(child),
            dir: dir.clone(),
        };
        let stream = started.connect(&serve.control)?;
        let child = started.child.take().expect("connected");
        Ok(Self {
            child,
            stream,
            dir,
            trace: serve.record.output,
        })
    }

    /// The trace the program records into.
    pub fn trace(&self) -> &Path {
        &self.trace
    }

    pub fn send(&mut self, request: &Request) -> anyhow::Result<()> {
        request
            .send(&mut self.stream)
            .context("cannot talk to the program")
    }

    /// Waits for the next message, at most until `deadline`; `Ok(None)` at the deadline.
    pub fn hear(&mut self, deadline: Option<Instant>) -> anyhow::Result<Option<Heard>> {
        let timeout = deadline.map(|d| {
            d.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        });
        self.stream.set_read_timeout(timeout)?;
        match Response::receive(&mut self.stream) {
            Ok(response) => Ok(Some(Heard::Response(response))),
            Err(ControlError::Io(err))
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(ControlError::Closed | ControlError::Io(_)) => {
                let status = wait_for(&mut self.child, QUIT_GRACE);
                Ok(Some(Heard::Gone(status)))
            }
            Err(err) => Err(err).context("the program sent a bad message"),
        }
    }

    /// A thread that reads every message from now on into the returned channel (for an event
    /// loop); `Heard::Gone` comes last.
    pub fn listen(&mut self) -> anyhow::Result<crossbeam_channel::Receiver<Heard>> {
        let mut stream = self.stream.try_clone()?;
        stream.set_read_timeout(None)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        std::thread::Builder::new()
            .name("fever-replay-listen".into())
            .spawn(move || {
                while let Ok(response) = Response::receive(&mut stream) {
                    if tx.send(Heard::Response(response)).is_err() {
                        return;
                    }
                }
                let _ = tx.send(Heard::Gone(None));
            })?;
        Ok(rx)
    }

    /// Asks the program to quit and waits for it (killing it after a grace period); returns its
    /// exit status.
    pub fn quit(mut self) -> Option<ExitStatus> {
        let _ = Request::Quit.send(&mut self.stream);
        let status = wait_for(&mut self.child, QUIT_GRACE);
        if status.is_none() {
            let _ = self.child.kill();
            return self.child.wait().ok();
        }
        status
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Request::Quit.send(&mut self.stream);
            if wait_for(&mut self.child, QUIT_GRACE).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A child not connected yet: killed and its directory removed if connecting fails.
struct Starting {
    child: Option<Child>,
    dir: PathBuf,
}

impl Starting {
    fn connect(&mut self, socket: &Path) -> anyhow::Result<UnixStream> {
        let started = Instant::now();
        loop {
            if let Ok(stream) = UnixStream::connect(socket) {
                return Ok(stream);
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    // It printed why (a missing script, a bad option).
                    return Err(Ended(status).into());
                }
            }
            if started.elapsed() > CONNECT_TIMEOUT {
                bail!(
                    "the program did not open its control socket within {} s",
                    CONNECT_TIMEOUT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The program side ended before it could serve; it already said why.
#[derive(Debug)]
pub struct Ended(pub ExitStatus);

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the program ended ({})", self.0)
    }
}

impl std::error::Error for Ended {}

/// Waits up to `timeout` for `child` to exit.
fn wait_for(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if started.elapsed() < timeout => std::thread::sleep(Duration::from_millis(5)),
            _ => return None,
        }
    }
}
