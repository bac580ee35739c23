//! The pseudo-terminal the program runs on: its follower side is the program's stdin, stdout,
//! stderr and controlling terminal (so a debugger in a replay's child has a real terminal); the
//! UI reads the leader side into the output pane, or relays it to the real terminal while a
//! debugger has the keyboard.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crossbeam_channel::{unbounded, Receiver};

pub struct Pty {
    leader: OwnedFd,
    follower: Option<OwnedFd>,
}

impl Pty {
    /// A new pseudo-terminal of `cols` × `rows`.
    pub fn open(cols: u16, rows: u16) -> io::Result<Self> {
        let (mut leader, mut follower) = (-1, -1);
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: out-pointers to two ints; name and termios may be NULL.
        let r = unsafe {
            libc::openpty(
                &raw mut leader,
                &raw mut follower,
                std::ptr::null_mut(),
                std::ptr::null(),
                &raw const size,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors are new and ours.
        let (leader, follower) =
            unsafe { (OwnedFd::from_raw_fd(leader), OwnedFd::from_raw_fd(follower)) };
        for fd in [&leader, &follower] {
            // SAFETY: setting close-on-exec on our descriptor.
            unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        Ok(Self {
            leader,
            follower: Some(follower),
        })
    }

    /// The follower side, for the program (closed here once the program has it).
    pub fn follower(&self) -> Option<&OwnedFd> {
        self.follower.as_ref()
    }

    /// Closes our copy of the follower side (the program keeps its own).
    pub fn release_follower(&mut self) {
        self.follower = None;
    }

    pub fn resize(&self, cols: u16, rows: u16) {
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: a valid descriptor and winsize.
        unsafe { libc::ioctl(self.leader.as_raw_fd(), libc::TIOCSWINSZ, &raw const size) };
    }

    /// Writes keys to the program's terminal.
    pub fn write(&self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            // SAFETY: writing from our buffer to our descriptor.
            let n =
                unsafe { libc::write(self.leader.as_raw_fd(), rest.as_ptr().cast(), rest.len()) };
            if n <= 0 {
                return;
            }
            rest = &rest[n.unsigned_abs()..];
        }
    }

    /// A thread that reads everything the program writes to its terminal into a channel (it
    /// ends when the program and its children closed the terminal).
    pub fn reader(&self) -> io::Result<Receiver<Vec<u8>>> {
        let fd = self.leader.try_clone()?;
        let (tx, rx) = unbounded();
        std::thread::Builder::new()
            .name("fever-replay-pty".into())
            .spawn(move || {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    // SAFETY: reading into our buffer from our descriptor.
                    let n =
                        unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                    if n <= 0 || tx.send(buf[..n.unsigned_abs()].to_vec()).is_err() {
                        return;
                    }
                }
            })?;
        Ok(rx)
    }
}
