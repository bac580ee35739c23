//! The program side of the control channel: a thread that listens on the control socket (0600,
//! in the front end's 0700 directory), accepts one front end at a time whose user is ours
//! (`SO_PEERCRED`), reads its framed requests without the GIL and hands them to the main thread
//! as [`Event`]s. Responses are written by the main thread through [`Server::send`]. A request
//! that cannot be decoded is answered at once with an error; a frame that breaks the stream (too
//! large, cut short) ends that connection, never the program.

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};
use fever_core::control::{peer_is_this_user, ControlError, Request, Response};

/// What the control thread hands to the main thread.
pub enum Event {
    Request(Request),
    /// The front end closed the connection.
    Gone,
}

/// The listening socket and its thread; dropping it stops the thread and removes the socket.
pub struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    /// The connected front end's stream (a clone), for responses.
    peer: Arc<Mutex<Option<UnixStream>>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Listens on `path`; requests arrive on the returned receiver.
    pub fn start(path: &Path) -> std::io::Result<(Self, Receiver<Event>)> {
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        let (events, receiver) = unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let peer = Arc::new(Mutex::new(None));
        let thread = {
            let (stop, peer) = (Arc::clone(&stop), Arc::clone(&peer));
            crate::signals::without_signals(|| {
                std::thread::Builder::new()
                    .name("fever-control".into())
                    .spawn(move || serve(&listener, &events, &stop, &peer))
            })?
        };
        Ok((
            Self {
                path: path.to_path_buf(),
                stop,
                peer,
                thread: Some(thread),
            },
            receiver,
        ))
    }

    /// Sends `response` to the connected front end (dropped when none is connected).
    pub fn send(&self, response: &Response) {
        let mut peer = self
            .peer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(stream) = peer.as_mut() {
            let _ = response.send(stream);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(stream) = self
            .peer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The answer to an attach request on the replay's control socket: `fever attach` talks to the
/// socket every fever process opens (see `crate::attach`), not to this one.
pub fn attach_refused() -> Response {
    Response::Error {
        message: "`fever attach` talks to a process's own socket".into(),
    }
}

fn serve(
    listener: &UnixListener,
    events: &Sender<Event>,
    stop: &AtomicBool,
    peer: &Mutex<Option<UnixStream>>,
) {
    while !stop.load(Ordering::SeqCst) {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(err) if err.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(_) => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if !peer_is_this_user(&stream) || stream.set_nonblocking(false).is_err() {
            continue;
        }
        let Ok(writer) = stream.try_clone() else {
            continue;
        };
        *peer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(writer);
        let mut reader = stream;
        loop {
            match Request::receive(&mut reader) {
                Ok(request) => {
                    if events.send(Event::Request(request)).is_err() {
                        return;
                    }
                }
                Err(err) if err.is_fatal() => {
                    if !matches!(err, ControlError::Closed) {
                        let _ = Response::Error {
                            message: err.to_string(),
                        }
                        .send(&mut reader);
                    }
                    break;
                }
                Err(err) => {
                    // The frame was whole: answer and read on.
                    let _ = Response::Error {
                        message: err.to_string(),
                    }
                    .send(&mut reader);
                }
            }
        }
        *peer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        if stop.load(Ordering::SeqCst) || events.send(Event::Gone).is_err() {
            return;
        }
    }
}
