//! The program side of the control channel: a thread that listens on the control socket (0600,
//! in the front end's 0700 directory), accepts one front end at a time whose user is ours
//! (`SO_PEERCRED`), reads its framed requests without the GIL and hands them to the main thread
//! as [`Event`]s. Responses are written by the main thread through [`Server::send`]. A request
//! that cannot be decoded is answered at once with an error; a frame that breaks the stream (too
//! large, cut short) ends that connection, never the program. Responses sent while no front end
//! is connected (one that has connected but is not accepted yet, as when a short program finishes
//! first) are held for the next one.

use std::collections::VecDeque;
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
    peer: Arc<Mutex<Peer>>,
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
        let peer = Arc::new(Mutex::new(Peer::default()));
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

    /// Sends `response` to the connected front end, or holds it for the next one.
    pub fn send(&self, response: &Response) {
        lock(&self.peer).send(response);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(stream) = lock(&self.peer).stream.as_ref() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Responses held while no front end is connected, at most (the oldest go first).
const HELD: usize = 256;

/// The front end responses go to.
#[derive(Default)]
struct Peer {
    /// The connected front end's stream (a clone).
    stream: Option<UnixStream>,
    /// Responses sent while none was connected, oldest first.
    held: VecDeque<Response>,
}

impl Peer {
    fn send(&mut self, response: &Response) {
        if let Some(stream) = self.stream.as_mut() {
            let _ = response.send(stream);
        } else {
            if self.held.len() == HELD {
                self.held.pop_front();
            }
            self.held.push_back(response.clone());
        }
    }

    /// `stream` is the front end now: it gets the held responses first.
    fn connect(&mut self, mut stream: UnixStream) {
        for response in self.held.drain(..) {
            let _ = response.send(&mut stream);
        }
        self.stream = Some(stream);
    }
}

fn lock(peer: &Mutex<Peer>) -> std::sync::MutexGuard<'_, Peer> {
    peer.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The answer to an attach request on the replay's control socket: `fever attach` talks to the
/// socket every fever process opens (see `crate::attach`), not to this one.
pub fn attach_refused() -> Response {
    Response::Error {
        message: "`fever attach` talks to a process's own socket".into(),
    }
}

fn serve(listener: &UnixListener, events: &Sender<Event>, stop: &AtomicBool, peer: &Mutex<Peer>) {
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
        lock(peer).connect(writer);
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
        lock(peer).stream = None;
        if stop.load(Ordering::SeqCst) || events.send(Event::Gone).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_sent_before_a_front_end_is_accepted_reach_it_first_in_order() {
        let mut peer = Peer::default();
        peer.send(&Response::Finished { exit_code: 3 });
        peer.send(&Response::Pong);
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        peer.connect(ours);
        peer.send(&Response::Finished { exit_code: 0 });
        for expected in [
            Response::Finished { exit_code: 3 },
            Response::Pong,
            Response::Finished { exit_code: 0 },
        ] {
            assert_eq!(Response::receive(&mut theirs).unwrap(), expected);
        }
        assert!(peer.held.is_empty());
    }

    #[test]
    fn at_most_the_latest_held_responses_are_kept() {
        let mut peer = Peer::default();
        for code in 0..=i32::try_from(HELD).unwrap() {
            peer.send(&Response::Finished { exit_code: code });
        }
        assert_eq!(peer.held.len(), HELD);
        assert_eq!(peer.held[0], Response::Finished { exit_code: 1 });
    }
}
