//! The interpreters the standalone `fever` found able to run fever, remembered so the next start
//! skips the probe (a whole Python start-up that imports fever's extension). An entry holds while
//! the interpreter's file and the extension it imported are the ones probed (path, size,
//! modification time); anything else probes again. Only real executables are remembered: a
//! script in front of Python (a pyenv shim) can pick another interpreter each time. The cache is
//! one small text file under `$XDG_CACHE_HOME/fever` (or `~/.cache/fever`); when it cannot be
//! read or written, fever probes every time.

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// At most this many interpreters are remembered (the oldest entry goes).
const ENTRIES: usize = 16;

/// The cache file: `$XDG_CACHE_HOME/fever/interpreters` or `$HOME/.cache/fever/interpreters`.
pub fn cache_file() -> Option<PathBuf> {
    let nonempty = |name| std::env::var_os(name).filter(|value| !value.is_empty());
    let base = nonempty("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| nonempty("HOME").map(|home| Path::new(&home).join(".cache")))?;
    Some(base.join("fever").join("interpreters"))
}

/// What identifies one probe's answer: the interpreter as named (`named`, [`resolve`]d), the
/// file it is, and the extension it imported, each file with its size and modification time.
fn key(named: &Path, extension: &Path) -> Option<String> {
    let real = std::fs::canonicalize(named).ok()?;
    if !is_executable_file(&real) {
        return None;
    }
    let stamp = |path: &Path| {
        let meta = std::fs::metadata(path).ok()?;
        Some(format!(
            "{}\t{}\t{}.{}",
            text(path)?,
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec()
        ))
    };
    Some(format!(
        "{}\t{}\t{}",
        text(named)?,
        stamp(&real)?,
        stamp(extension)?
    ))
}

/// `path` as a line's field (none for a name with a tab, a newline or invalid UTF-8).
fn text(path: &Path) -> Option<&str> {
    path.to_str().filter(|s| !s.contains(['\t', '\n']))
}

/// `python` as the kernel finds it: as given when it has a slash, else the first executable of
/// that name on PATH.
fn resolve(python: &Path) -> Option<PathBuf> {
    if python.as_os_str().as_bytes().contains(&b'/') {
        return std::path::absolute(python).ok();
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(python))
        .find(|candidate| {
            std::fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
        })
}

/// A compiled executable (ELF), not a script that picks the interpreter it starts (nor a Python
/// script: a user used to `py-spy record -- python app.py` may name `python` in the script's
/// place).
pub fn is_executable_file(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

/// The entry in `cache` of `python` (the first field), if any.
fn entry<'a>(cache: &'a str, named: &str) -> Option<&'a str> {
    cache
        .lines()
        .find(|line| line.split('\t').next() == Some(named))
}

/// `python` was probed able to run fever, and neither it nor the extension it imported changed
/// since.
pub fn known_good(cache: &Path, python: &Path) -> bool {
    let Ok(contents) = std::fs::read_to_string(cache) else {
        return false;
    };
    let Some(named) = resolve(python) else {
        return false;
    };
    let Some(line) = named.to_str().and_then(|named| entry(&contents, named)) else {
        return false;
    };
    // The extension's path is the fourth field of the entry.
    let Some(extension) = line.split('\t').nth(4) else {
        return false;
    };
    key(&named, Path::new(extension)).is_some_and(|key| key == line)
}

/// Remembers that `python` can run fever, having imported `extension`; quietly does nothing
/// when the cache cannot be written.
pub fn remember(cache: &Path, python: &Path, extension: &Path) {
    let Some(line) = resolve(python).and_then(|named| key(&named, extension)) else {
        return;
    };
    let named = line.split('\t').next().unwrap_or_default();
    let old = std::fs::read_to_string(cache).unwrap_or_default();
    let mut lines: Vec<&str> = old
        .lines()
        .filter(|l| l.split('\t').next() != Some(named))
        .collect();
    lines.push(&line);
    let keep = &lines[lines.len().saturating_sub(ENTRIES)..];
    let Some(dir) = cache.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    // A private temporary renamed over the cache: a reader sees the old file or the new one.
    let temporary = dir.join(format!(".interpreters-{}", std::process::id()));
    let written = std::fs::write(&temporary, keep.join("\n") + "\n")
        .and_then(|()| std::fs::rename(&temporary, cache));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("fever-interpreters-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A file that stands for an interpreter (only its ELF magic and metadata are read).
    fn fake_python(dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let python = dir.join("python3");
        std::fs::write(&python, b"\x7fELF fake").unwrap();
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
        python
    }

    #[test]
    fn a_remembered_interpreter_holds_until_it_or_its_extension_changes() {
        let dir = TempDir::new("holds");
        let cache = dir.0.join("cache/fever/interpreters");
        let python = fake_python(&dir.0);
        let extension = dir.0.join("_native.so");
        std::fs::write(&extension, b"ext").unwrap();
        assert!(!known_good(&cache, &python));
        remember(&cache, &python, &extension);
        assert!(known_good(&cache, &python));
        // Remembering again replaces the entry.
        remember(&cache, &python, &extension);
        assert_eq!(std::fs::read_to_string(&cache).unwrap().lines().count(), 1);
        std::fs::write(&extension, b"rebuilt").unwrap();
        assert!(!known_good(&cache, &python));
        remember(&cache, &python, &extension);
        std::fs::remove_file(&extension).unwrap();
        assert!(!known_good(&cache, &python));
        remember(&cache, &python, &extension);
        assert!(!known_good(&cache, &python));
    }

    #[test]
    fn scripts_are_not_remembered_and_an_unwritable_cache_is_no_error() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("scripts");
        let cache = dir.0.join("interpreters");
        let shim = dir.0.join("python");
        std::fs::write(&shim, b"#!/bin/sh\nexec python3.13 \"$@\"\n").unwrap();
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        let extension = dir.0.join("_native.so");
        std::fs::write(&extension, b"ext").unwrap();
        remember(&cache, &shim, &extension);
        assert!(!known_good(&cache, &shim) && !cache.exists());
        let python = fake_python(&dir.0);
        // A file where the cache's directory should be.
        let blocked = dir
            .0
            .join("interpreters")
            .join("fever")
            .join("interpreters");
        std::fs::write(dir.0.join("interpreters"), b"").unwrap();
        remember(&blocked, &python, &extension);
        assert!(!known_good(&blocked, &python));
    }

    #[test]
    fn at_most_a_few_interpreters_are_remembered() {
        let dir = TempDir::new("few");
        let cache = dir.0.join("interpreters");
        let extension = dir.0.join("_native.so");
        std::fs::write(&extension, b"ext").unwrap();
        let first = fake_python(&dir.0);
        remember(&cache, &first, &extension);
        for n in 0..ENTRIES {
            let other = dir.0.join(format!("python-{n}"));
            std::fs::copy(&first, &other).unwrap();
            remember(&cache, &other, &extension);
        }
        let contents = std::fs::read_to_string(&cache).unwrap();
        assert_eq!(contents.lines().count(), ENTRIES);
        assert!(!known_good(&cache, &first));
        assert!(known_good(
            &cache,
            &dir.0.join(format!("python-{}", ENTRIES - 1))
        ));
    }
}
