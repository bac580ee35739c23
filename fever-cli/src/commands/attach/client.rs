//! The client end of a process's control socket: connecting (with the reason in words when it
//! cannot: no such pid, another user's process, a process not under fever) and one request at a
//! time, each answered within [`ANSWER_TIMEOUT`].

use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use fever_core::control::{
    has_ended, process_socket, processes, ControlError, ProcessStatus, Request, Response,
};

/// How long a process may take to answer (arming waits for the GIL).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the user finds the processes they can attach to.
const PS: &str = "`fever ps` lists your processes running under fever";

/// Why a process cannot be reached, and what to do about it.
pub struct Refusal {
    pub message: String,
    pub hint: String,
}

/// A connection to one process.
pub struct Client {
    pub pid: u32,
    stream: UnixStream,
}

impl Client {
    /// Connects to process `pid`'s control socket.
    pub fn connect(pid: u32) -> Result<Self, Refusal> {
        Self::reachable(pid)?;
        Self::connect_to(pid, &process_socket(pid)).map_err(|err| Refusal {
            message: format!("process {pid} is not running under fever ({err})"),
            hint: format!(
                "start the program with `fever run` (or `fever watch`, `fever record`) to attach \
                 to it later; {PS}"
            ),
        })
    }

    /// Process `pid` exists (not ended) and is ours.
    pub fn reachable(pid: u32) -> Result<(), Refusal> {
        if has_ended(pid) {
            return Err(ended_child(pid).unwrap_or_else(|| Refusal {
                message: format!("no process has pid {pid}"),
                hint: PS.into(),
            }));
        }
        // SAFETY: getuid cannot fail.
        let me = unsafe { libc::getuid() };
        if let Ok(meta) = std::fs::metadata(format!("/proc/{pid}")) {
            if meta.uid() != me {
                return Err(Refusal {
                    message: format!("process {pid} belongs to another user (uid {})", meta.uid()),
                    hint: "run `fever attach` as the user who started it".into(),
                });
            }
        }
        Ok(())
    }

    /// Connects to process `pid` at `socket`.
    pub fn connect_to(pid: u32, socket: &Path) -> std::io::Result<Self> {
        let stream = UnixStream::connect(socket)?;
        let _ = stream.set_read_timeout(Some(ANSWER_TIMEOUT));
        Ok(Self { pid, stream })
    }

    /// Sends `request` and reads its answer.
    pub fn ask(&mut self, request: &Request) -> Result<Response, ControlError> {
        request.send(&mut self.stream)?;
        Response::receive(&mut self.stream)
    }

    /// What the process says about itself.
    pub fn status(&mut self) -> Result<ProcessStatus, String> {
        match self.ask(&Request::Status) {
            Ok(Response::Status(status)) => Ok(status),
            Ok(Response::Error { message }) => Err(message),
            Ok(other) => Err(format!("unexpected answer {other:?}")),
            Err(err) => Err(err.to_string()),
        }
    }

    /// The process's children under fever; none from a fever that does not know the question.
    pub fn children(&mut self) -> Vec<u32> {
        match self.ask(&Request::Children) {
            Ok(Response::Children { pids }) => pids,
            _ => Vec::new(),
        }
    }

    /// The process's children under fever that have ended (the most recent ones).
    fn ended_children(&mut self) -> Vec<u32> {
        match self.ask(&Request::EndedChildren) {
            Ok(Response::EndedChildren { pids }) => pids,
            _ => Vec::new(),
        }
    }
}

/// Why `pid`, which has ended, cannot be reached, when it was a child of a process still under
/// fever: which one, and the children it has now.
fn ended_child(pid: u32) -> Option<Refusal> {
    processes().into_iter().find_map(|top| {
        let mut client = Client::connect_to(top, &process_socket(top)).ok()?;
        if !client.ended_children().contains(&pid) {
            return None;
        }
        let command = client.status().map(|s| s.command).unwrap_or_default();
        let live = client.children();
        let hint = if live.is_empty() {
            format!("process {top} has no child process running now; {PS}")
        } else {
            let pids: Vec<String> = live.iter().map(u32::to_string).collect();
            format!(
                "the children of process {top} running now: {}; {PS}",
                pids.join(", ")
            )
        };
        Some(Refusal {
            message: format!(
                "process {pid} has ended: it was a child process of {top} (`{command}`)"
            ),
            hint,
        })
    })
}
