//! The private directory control sockets live in: `$XDG_RUNTIME_DIR/fever` (or
//! `$TMPDIR/fever-UID`), mode 0700, owned by the user; inside it, one fresh 0700 directory per
//! session. A directory that exists with another owner, looser permissions, or as a symlink is
//! refused, so no other user can plant or reach a socket.
//!
//! Every process fever runs also listens on `PID.sock` right in the user's control directory
//! (`fever ps` lists them); [`process_socket`] names it, [`processes`] finds the live ones and
//! removes those whose process is gone, and the session directories ([`private_dir`]) of
//! processes that ended without removing theirs (killed ones).

use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Creates a fresh private directory for one session, named `PREFIX-PID-N`, under the user's
/// control directory; returns its path. The caller removes it when done.
pub fn private_dir(prefix: &str) -> io::Result<PathBuf> {
    let base = base_dir();
    ensure_private(&base)?;
    let pid = std::process::id();
    for n in 0..1000u32 {
        let dir = base.join(format!("{prefix}-{pid}-{n}"));
        match DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
    }
    Err(io::Error::other(format!(
        "cannot create a session directory in {}",
        base.display()
    )))
}

/// The user's control directory, created private if missing (refused if it is not private).
pub fn control_dir() -> io::Result<PathBuf> {
    let base = base_dir();
    ensure_private(&base)?;
    Ok(base)
}

/// The control socket of process `pid` (it may not exist).
pub fn process_socket(pid: u32) -> PathBuf {
    base_dir().join(format!("{pid}.sock"))
}

/// The shared profile region of process `pid` while someone is attached.
pub fn process_region(pid: u32) -> PathBuf {
    base_dir().join(format!("{pid}.profile"))
}

/// The pids of the user's processes with a control socket, in order; the sockets and regions
/// of processes that have ended (gone, or zombies) are removed on the way, and so are their
/// session directories (`family-PID-N`, `replay-PID-N`: a killed process leaves its own, and
/// every exit of a program under fever reads this directory).
pub fn processes() -> Vec<u32> {
    let base = base_dir();
    let Ok(entries) = std::fs::read_dir(&base) else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(pid) = name.strip_suffix(".sock").and_then(|p| p.parse().ok()) {
            if has_ended(pid) {
                let _ = std::fs::remove_file(process_socket(pid));
                let _ = std::fs::remove_file(process_region(pid));
            } else {
                pids.push(pid);
            }
        } else if session_dir_owner(name).is_some_and(has_ended) {
            remove_session_dir(&base.join(name));
        }
    }
    pids.sort_unstable();
    pids
}

/// The pid of the process that created session directory `name` (`PREFIX-PID-N` of
/// [`private_dir`] for the prefixes whose directory lives as long as its creator).
fn session_dir_owner(name: &str) -> Option<u32> {
    let rest = name
        .strip_prefix("family-")
        .or_else(|| name.strip_prefix("replay-"))?;
    let (pid, n) = rest.split_once('-')?;
    n.parse::<u32>().ok()?;
    pid.parse().ok()
}

/// Removes a session directory and the files in it (sockets and files only: it has no
/// subdirectories, and a symlink is removed, never followed).
fn remove_session_dir(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Process `pid` exists (ours or another user's).
pub fn is_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// Process `pid` has ended: it no longer exists, or it is a zombie its parent has not reaped.
pub fn has_ended(pid: u32) -> bool {
    !is_alive(pid)
        || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
}

/// The parent of process `pid` (`/proc/PID/stat`), if it exists.
pub fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The peer of a connected Unix socket runs as this user (`SO_PEERCRED`).
pub fn peer_is_this_user(stream: &std::os::unix::net::UnixStream) -> bool {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::ucred>()).unwrap_or(0);
    // SAFETY: a valid socket and an out-buffer of the size given.
    let ok = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &raw mut len,
        )
    } == 0;
    // SAFETY: getuid cannot fail.
    ok && cred.uid == unsafe { libc::getuid() }
}

fn base_dir() -> PathBuf {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() && Path::new(&dir).is_dir() => Path::new(&dir).join("fever"),
        _ => std::env::temp_dir().join(format!("fever-{uid}")),
    }
}

/// Creates `dir` (0700) or checks that the existing one is a real directory of ours with no
/// access for others.
fn ensure_private(dir: &Path) -> io::Result<()> {
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err),
    }
    let meta = std::fs::symlink_metadata(dir)?;
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a private directory of this user (mode {:o}); remove it",
                dir.display(),
                meta.permissions().mode() & 0o7777
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_dirs_are_private_and_fresh() {
        let a = private_dir("test").unwrap();
        let b = private_dir("test").unwrap();
        assert_ne!(a, b);
        for dir in [&a, &b] {
            let mode = std::fs::metadata(dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
            assert_eq!(
                mode & 0o777,
                std::fs::metadata(dir.parent().unwrap())
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777
            );
            std::fs::remove_dir(dir).unwrap();
        }
    }

    #[test]
    fn processes_lists_live_sockets_and_removes_stale_ones() {
        control_dir().unwrap();
        let me = std::process::id();
        // A pid above the kernel's maximum (4194304) never exists.
        let gone = 4_194_999;
        for pid in [me, gone] {
            std::fs::write(process_socket(pid), b"").unwrap();
        }
        std::fs::write(process_region(gone), b"").unwrap();
        let pids = processes();
        assert!(pids.contains(&me) && !pids.contains(&gone));
        assert!(!process_socket(gone).exists() && !process_region(gone).exists());
        std::fs::remove_file(process_socket(me)).unwrap();
        assert!(is_alive(1) && !is_alive(gone) && !is_alive(0));
        assert!(!has_ended(me) && has_ended(gone));
        assert_eq!(parent_pid(me), Some(std::os::unix::process::parent_id()));
        assert_eq!(parent_pid(gone), None);
    }

    #[test]
    fn processes_removes_the_session_dirs_of_ended_processes() {
        let base = control_dir().unwrap();
        // A pid above the kernel's maximum (4194304) never exists.
        let gone = base.join("family-4194998-0");
        let replay = base.join("replay-4194998-3");
        let other = base.join("family-4194998-x");
        for dir in [&gone, &replay, &other] {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join("family.sock"), b"").unwrap();
        }
        let mine = private_dir("family").unwrap();
        processes();
        assert!(!gone.exists() && !replay.exists());
        assert!(mine.exists() && other.exists());
        std::fs::remove_dir_all(&mine).unwrap();
        std::fs::remove_dir_all(&other).unwrap();
        assert_eq!(session_dir_owner("family-12-0"), Some(12));
        assert_eq!(session_dir_owner("replay-7-31"), Some(7));
        assert_eq!(session_dir_owner("remote-7-0"), None);
        assert_eq!(session_dir_owner("family-7"), None);
        assert_eq!(session_dir_owner("12.sock"), None);
    }

    #[test]
    fn the_peer_of_a_socket_pair_is_this_user() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(peer_is_this_user(&a));
    }

    #[test]
    fn a_shared_directory_is_refused() {
        let dir = std::env::temp_dir().join(format!("fever-dir-test-{}", std::process::id()));
        DirBuilder::new().mode(0o755).create(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = ensure_private(&dir).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        ensure_private(&dir).unwrap();
        std::fs::remove_dir(&dir).unwrap();
    }
}
