//! A save in progress is not an edit. Editors and formatters write files in steps (truncate,
//! then write; or two saves back to back), and the watcher may read the file in between: an
//! empty file, or one suddenly much shorter than the running text, is read again for a few tens
//! of milliseconds until it looks complete. Ordinary saves are never delayed: they are read once.

use std::path::Path;
use std::time::{Duration, Instant};

/// How long a file that looks half-written is waited out.
const HOLD: Duration = Duration::from_millis(60);
/// How often it is read again meanwhile.
const POLL: Duration = Duration::from_millis(5);

/// Does `bytes` look like a save in progress of a file running `running` bytes of text?
pub fn in_progress(bytes: &[u8], running: usize) -> bool {
    running > 0 && (is_blank(bytes) || bytes.len() * 2 < running)
}

/// Nothing but whitespace.
pub fn is_blank(bytes: &[u8]) -> bool {
    bytes.trim_ascii().is_empty()
}

/// Reads `path` again until it no longer looks like a save in progress, for at most [`HOLD`];
/// returns the last content read (`None` when the file went away meanwhile).
pub fn wait_out(path: &Path, running: usize) -> Option<Vec<u8>> {
    let deadline = Instant::now() + HOLD;
    loop {
        std::thread::sleep(POLL);
        let bytes = std::fs::read(path).ok()?;
        if !in_progress(&bytes, running) || Instant::now() >= deadline {
            return Some(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_or_much_shorter_looks_in_progress() {
        assert!(in_progress(b"", 100));
        assert!(in_progress(b"  \n", 100));
        assert!(in_progress(b"def f():\n", 100));
        assert!(!in_progress(&[b'x'; 60], 100));
        // A new file fever runs nothing of is taken as it is.
        assert!(!in_progress(b"", 0));
    }

    #[test]
    fn the_file_is_read_again() {
        let path = std::env::temp_dir().join(format!("fever-settle-{}.py", std::process::id()));
        // The writer finished after the first read: the next read has it all.
        std::fs::write(&path, [b'x'; 100]).unwrap();
        assert_eq!(wait_out(&path, 100).unwrap().len(), 100);
        // A file that stays empty is given back as it is once the hold is over.
        std::fs::write(&path, b"").unwrap();
        assert_eq!(wait_out(&path, 100).unwrap(), b"");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(wait_out(&path, 100), None, "gone meanwhile");
    }
}
