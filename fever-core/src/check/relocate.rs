//! A trace recorded in one checkout and checked in another (a developer's machine, then CI):
//! [`Relocation`] maps the recorded project root, and the files under it, to where the project
//! is now.

use std::path::{Path, PathBuf};

/// From the recorded project root to the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relocation {
    /// The root the trace names.
    pub recorded: PathBuf,
    /// Where the project is now.
    pub now: PathBuf,
}

impl Relocation {
    /// The root now: `given` (`--root`), else the recorded root if it is still a directory,
    /// else `cwd`.
    pub fn choose(recorded: &str, given: Option<&Path>, cwd: &Path) -> Self {
        let recorded = PathBuf::from(recorded);
        let now = match given {
            Some(root) => root.to_path_buf(),
            None if recorded.is_dir() => recorded.clone(),
            None => cwd.to_path_buf(),
        };
        Self { recorded, now }
    }

    /// Where the recorded `path` is now: moved along with the root when it was under it,
    /// unchanged otherwise.
    pub fn apply(&self, path: &str) -> PathBuf {
        match Path::new(path).strip_prefix(&self.recorded) {
            Ok(relative) => self.now.join(relative),
            Err(_) => PathBuf::from(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_under_the_recorded_root_move_with_it() {
        let moved = Relocation {
            recorded: "/home/dev/proj".into(),
            now: "/ci/build".into(),
        };
        assert_eq!(
            moved.apply("/home/dev/proj/pkg/a.py"),
            Path::new("/ci/build/pkg/a.py")
        );
        assert_eq!(moved.apply("/home/dev/proj"), Path::new("/ci/build"));
        assert_eq!(
            moved.apply("/home/dev/project2/a.py"),
            Path::new("/home/dev/project2/a.py")
        );
        assert_eq!(moved.apply("<string>"), Path::new("<string>"));
    }

    #[test]
    fn the_root_is_given_else_recorded_if_it_exists_else_the_current_directory() {
        let here = std::env::temp_dir();
        let cwd = Path::new("/somewhere");
        let gone = "/no/such/recorded/root";
        assert_eq!(Relocation::choose(gone, None, cwd).now, cwd);
        assert_eq!(
            Relocation::choose(gone, Some(Path::new("/given")), cwd).now,
            Path::new("/given")
        );
        let existing = here.to_str().unwrap();
        assert_eq!(Relocation::choose(existing, None, cwd).now, here);
    }
}
