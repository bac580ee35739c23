//! `fever ps` and `fever attach PID`, the client side (no Python in this process).
//!
//! - `ps.rs`: `fever ps`, the processes under fever, children under their parents.
//! - `client.rs`: connecting to a process's control socket, and its requests.
//! - `remote/`: a process not started under fever (Python 3.14+): fever loads itself into it
//!   with `sys.remote_exec` (PEP 768), which opens the same control socket.
//! - `live.rs`: the live table on a terminal (ratatui).
//! - `table.rs`: the final table as text.
//!
//! `fever attach` asks the process to arm its profiler, maps the shared region it counts into
//! (`fever_core::profile`), and reads it every second; the names of new functions come over
//! the socket. At the end (`q`, `--duration`, Ctrl-C) it detaches and prints the final table;
//! when the process exits meanwhile it prints the table so far and fails. With `--record` the
//! process also writes a trace of the attached window, and says how it ended when detached.

mod client;
mod live;
mod ps;
mod remote;
mod table;

pub(crate) use ps::ps;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fever_core::control::{Request, Response};
use fever_core::notice::Notice;
use fever_core::profile::{rows, RegionReader, Row, SortKey};
use fever_core::units;

use crate::config::AttachConfig;
use crate::messages;
use client::Client;

/// How often the table is refreshed.
const REFRESH: Duration = Duration::from_secs(1);
/// Without a terminal, how often the names of functions met since are fetched: a process that
/// exits (a pool's worker at its last task) then leaves at most this long of new functions
/// unnamed in the final table, and its end is noticed as soon.
const NAMES_EVERY: Duration = Duration::from_millis(100);

/// An attached profile: the connection, the shared counters, the names known so far.
struct Profile {
    client: Client,
    region: RegionReader,
    names: Vec<String>,
    started: Instant,
    /// What the process runs (`fever ps`'s command).
    command: String,
}

impl Profile {
    /// Fetches the names of functions met since the last time (in as many answers as the
    /// process needs); false when the process is gone.
    fn refresh(&mut self) -> bool {
        loop {
            let from = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
            match self.client.ask(&Request::Names { from }) {
                Ok(Response::Names { from: at, names }) if at == from && !names.is_empty() => {
                    self.names.extend(names);
                }
                Ok(_) => return true,
                Err(_) => return false,
            }
        }
    }

    fn rows(&self, sort: SortKey, top: usize) -> Vec<Row> {
        let counters = self.region.read(self.names.len());
        rows(&self.names, &counters, self.region.ns_per_tick(), sort, top)
    }
}

/// Why the profile ended.
enum Ended {
    /// `q`, Ctrl-C, or `--duration` passed: detach.
    Done,
    /// The process exited (or closed the connection).
    Gone,
}

/// `fever attach PID`: returns the exit code.
pub(crate) fn run(config: &AttachConfig) -> anyhow::Result<i32> {
    // The program writes the trace: a relative path is this command's, not the program's.
    let record = match config
        .record
        .as_deref()
        .map(std::path::absolute)
        .transpose()
    {
        Ok(record) => record,
        Err(err) => {
            messages::error(&format!("cannot record: {err}"));
            return Ok(2);
        }
    };
    if let Some(dir) = record
        .as_deref()
        .and_then(Path::parent)
        .filter(|dir| !dir.is_dir())
    {
        messages::error(&format!(
            "cannot record: the directory {} does not exist",
            dir.display()
        ));
        messages::hint(
            "the program writes the trace: give --record a path in an existing directory",
        );
        return Ok(2);
    }
    let mut client = match remote::connect(config.pid) {
        Ok(client) => client,
        Err(refusal) => {
            messages::error(&refusal.message);
            messages::hint(&refusal.hint);
            return Ok(2);
        }
    };
    let command = client.status().map(|s| s.command).unwrap_or_default();
    let request = match &record {
        Some(trace) => Request::AttachRecording {
            trace: trace.display().to_string(),
        },
        None => Request::Attach,
    };
    let region = match client.ask(&request) {
        Ok(Response::Attached { region }) => region,
        Ok(Response::Error { message }) => {
            messages::error(&format!(
                "cannot attach to process {}: {message}",
                config.pid
            ));
            messages::hint("`fever ps` shows whether someone is attached");
            return Ok(2);
        }
        Ok(other) => anyhow::bail!("process {} answered {other:?}", config.pid),
        Err(err) => {
            messages::error(&format!("process {} did not attach: {err}", config.pid));
            messages::hint(
                "its main thread may be stuck in a long call holding the GIL; try again",
            );
            return Ok(2);
        }
    };
    let region = RegionReader::open(Path::new(&region))?;
    let mut profile = Profile {
        client,
        region,
        names: Vec::new(),
        started: Instant::now(),
        command,
    };
    let interactive = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    let mut sort = config.sort;
    let ended = if interactive {
        live::run(&mut profile, config, &mut sort)?
    } else {
        wait(&mut profile, config.duration)
    };
    let elapsed = profile.started.elapsed();
    let (gone, detached) = match ended {
        Ended::Gone => (true, None),
        Ended::Done => {
            let detached = profile.client.ask(&Request::Detach);
            (!profile.refresh(), Some(detached))
        }
    };
    let shown = profile.rows(sort, config.top);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "fever attach {}: {} attached to `{}`, {} functions called",
        config.pid,
        units::duration(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)),
        profile.command,
        profile.rows(sort, usize::MAX).len(),
    )?;
    table::write(&shown, &mut out)?;
    out.flush()?;
    let recorded = match (&record, detached) {
        (Some(trace), Some(Ok(response))) => recorded(trace, response),
        _ => true,
    };
    if gone {
        messages::error(&format!(
            "process {} exited while attached (the table shows the calls until then)",
            config.pid
        ));
        if let Some(trace) = record.filter(|t| t.exists()) {
            messages::info(&format!(
                "the trace of the attached window is in {}",
                trace.display()
            ));
        }
        messages::hint("attach again to a running process: `fever ps` lists them");
        return Ok(2);
    }
    Ok(if recorded { 0 } else { 2 })
}

/// Says how the trace of the attached window ended (the answer to `Detach`); false if it is
/// not complete.
fn recorded(trace: &Path, answer: Response) -> bool {
    match answer {
        Response::Recorded {
            calls,
            functions,
            bytes,
            lost_events,
        } => {
            if lost_events > 0 {
                messages::notice(&Notice::EventsLost { count: lost_events });
            }
            messages::notice(&Notice::Recorded {
                calls,
                functions: usize::try_from(functions).unwrap_or(usize::MAX),
                path: trace.to_path_buf(),
                bytes,
            });
            true
        }
        Response::Error { message } => {
            messages::error(&message);
            false
        }
        other => {
            messages::error(&format!("unexpected answer to detaching: {other:?}"));
            false
        }
    }
}

/// Without a terminal: waits for `--duration`, Ctrl-C/SIGTERM, or the process's end.
fn wait(profile: &mut Profile, duration: Option<Duration>) -> Ended {
    let stop = on_signals();
    let mut last = Instant::now();
    loop {
        if duration.is_some_and(|d| profile.started.elapsed() >= d) || stop.load(Ordering::SeqCst) {
            return Ended::Done;
        }
        if last.elapsed() >= NAMES_EVERY {
            last = Instant::now();
            if !profile.refresh() {
                return Ended::Gone;
            }
        }
        let left = duration.map_or(NAMES_EVERY, |d| d.saturating_sub(profile.started.elapsed()));
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Set by SIGINT and SIGTERM from now on (the profile then ends with its table).
fn on_signals() -> &'static AtomicBool {
    static STOP: AtomicBool = AtomicBool::new(false);
    extern "C" fn stop(_: libc::c_int) {
        STOP.store(true, Ordering::SeqCst);
    }
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: an async-signal-safe handler (an atomic store) installed with a zeroed,
        // then initialized, sigaction.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = stop as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&raw mut action.sa_mask);
            libc::sigaction(signal, &raw const action, std::ptr::null_mut());
        }
    }
    &STOP
}
