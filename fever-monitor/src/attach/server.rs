//! The control socket of a process fever runs: 0600, in the user's 0700 control directory; a
//! thread blocked in `accept` (it never holds the GIL, and never wakes while nobody connects);
//! each connection of our user (`SO_PEERCRED`) served by a thread of its own, so `fever ps`
//! is answered while someone is attached. A malformed or unknown request is answered with an
//! error; a frame that breaks the stream ends that connection, never the program.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::Ordering;

use fever_core::control::{control_dir, peer_is_this_user, ControlError, Request, Response};

use super::{attach, detach, status, Attachment, Names, OPEN};

/// Binds `path` (replacing a stale socket of a dead process that had our pid) and starts the
/// accept thread. Nothing else in the directory is looked at: starting costs the same however
/// many sockets it holds (stale ones are removed by listings: `fever ps`, and a program's exit).
pub fn start(path: &Path) -> std::io::Result<()> {
    control_dir()?;
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    crate::signals::without_signals(|| {
        std::thread::Builder::new()
            .name("fever-control".into())
            .spawn(move || accept(&listener))
    })?;
    Ok(())
}

fn accept(listener: &UnixListener) {
    for stream in listener.incoming() {
        if !OPEN.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut stream) = stream else {
            // Out of descriptors, say: do not spin.
            std::thread::sleep(std::time::Duration::from_millis(50));
            continue;
        };
        if !peer_is_this_user(&stream) {
            let _ = Response::Error {
                message: "refused: this process belongs to another user".into(),
            }
            .send(&mut stream);
            continue;
        }
        let _ = crate::signals::without_signals(|| {
            std::thread::Builder::new()
                .name("fever-control-peer".into())
                .spawn(move || serve(stream))
        });
    }
}

/// Answers one connection's requests until it closes; then detaches if it had attached.
fn serve(mut stream: UnixStream) {
    let mut attached: Option<Attachment> = None;
    // The names of the last profile (still answered after `Detach`, for the final table).
    let mut names: Option<Names> = None;
    loop {
        let response = match Request::receive(&mut stream) {
            Ok(request) => answer(&request, &mut attached, &mut names),
            Err(ControlError::Closed) => break,
            Err(err) => {
                let fatal = err.is_fatal();
                let _ = Response::Error {
                    message: err.to_string(),
                }
                .send(&mut stream);
                if fatal {
                    break;
                }
                continue;
            }
        };
        if response.send(&mut stream).is_err() {
            break;
        }
    }
    if let Some(attachment) = attached {
        // Nobody to tell how the trace (if any) ended: the client is gone.
        let _ = detach(attachment);
    }
}

fn answer(
    request: &Request,
    attached: &mut Option<Attachment>,
    names: &mut Option<Names>,
) -> Response {
    let error = |message: &str| Response::Error {
        message: message.to_owned(),
    };
    match request {
        Request::Ping => Response::Pong,
        Request::Status => status().map_or_else(|| error("no status"), Response::Status),
        Request::Children => Response::Children {
            pids: crate::family::top::pids(),
        },
        Request::EndedChildren => Response::EndedChildren {
            pids: crate::family::top::ended_pids(),
        },
        Request::Attach | Request::AttachRecording { .. } if attached.is_some() => {
            error("this connection is attached already")
        }
        Request::Attach => attach_this(None, attached, names),
        Request::AttachRecording { trace } if Path::new(trace).is_absolute() => {
            attach_this(Some(Path::new(trace)), attached, names)
        }
        Request::AttachRecording { .. } => error("the trace's path must be absolute"),
        &Request::Names { from } => match names {
            Some(names) => Response::Names {
                from,
                names: names.from(from),
            },
            None => error("not attached"),
        },
        Request::Detach => match attached.take().map(detach) {
            Some(None) => Response::Detached,
            Some(Some(Ok(summary))) => Response::Recorded {
                calls: summary.calls,
                functions: u64::try_from(summary.functions).unwrap_or(u64::MAX),
                bytes: summary.bytes,
                lost_events: summary.lost_events,
            },
            Some(Some(Err(message))) => error(&format!(
                "detached, but the trace of the attached window is not complete: {message}"
            )),
            None => error("not attached"),
        },
        Request::Replay(_) | Request::Cancel | Request::Quit | Request::Undo => {
            error("this process is not `fever replay`'s program")
        }
    }
}

/// Attaches this connection (recording into `record` when given).
fn attach_this(
    record: Option<&Path>,
    attached: &mut Option<Attachment>,
    names: &mut Option<Names>,
) -> Response {
    match attach(record) {
        Ok(attachment) => {
            *names = Some(attachment.names());
            *attached = Some(attachment);
            Response::Attached {
                region: fever_core::control::process_region(std::process::id())
                    .display()
                    .to_string(),
            }
        }
        Err(message) => Response::Error { message },
    }
}
