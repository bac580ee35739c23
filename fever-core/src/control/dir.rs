//! The private directory control sockets live in: `$XDG_RUNTIME_DIR/fever` (or
//! `$TMPDIR/fever-UID`), mode 0700, owned by the user; inside it, one fresh 0700 directory per
//! session. A directory that exists with another owner, looser permissions, or as a symlink is
//! refused, so no other user can plant or reach a socket.

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
