//! The project: its root directory, which files belong to it, and which paths the watcher ignores.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Directory names never watched or reloaded.
const IGNORED_DIRS: [&str; 5] = [
    "__pycache__",
    "site-packages",
    "dist-packages",
    "node_modules",
    "venv",
];

/// The root of a project, as given (absolute) and with symlinks resolved.
#[derive(Debug, Clone)]
pub struct Project {
    canonical_root: PathBuf,
    /// The roots as text without a trailing `/` (`/` is `""`): what a file's name is compared
    /// with (a root that is not UTF-8 holds no file the interpreter names).
    root_texts: Vec<String>,
    /// Files spelled with `..`, resolved once each: in the project or not.
    dotted: Arc<Mutex<HashMap<String, bool>>>,
}

impl Project {
    pub fn new(root: &Path) -> std::io::Result<Project> {
        let root = std::path::absolute(root)?;
        let canonical_root = root.canonicalize()?;
        let mut root_texts: Vec<String> = [&root, &canonical_root]
            .iter()
            .filter_map(|r| r.to_str())
            .map(|r| r.trim_end_matches('/').to_owned())
            .collect();
        root_texts.dedup();
        Ok(Project {
            canonical_root,
            root_texts,
            dotted: Arc::default(),
        })
    }

    /// The root with symlinks resolved (what the watcher watches).
    pub fn canonical_root(&self) -> &Path {
        &self.canonical_root
    }

    /// Is `file` (as a code object or `__file__` names it) a project source file?
    /// A path spelled with `..` (`tools/../src/lib.py`, from a `sys.path` entry built that way)
    /// is compared resolved. Compared as text: this runs for every code and import the
    /// interpreter makes.
    pub fn contains_file(&self, file: &str) -> bool {
        match spelling(file) {
            Spelling::Plain => self.holds(file),
            Spelling::Loose => {
                let plain: PathBuf = Path::new(file).components().collect();
                plain.to_str().is_some_and(|plain| self.holds(plain))
            }
            Spelling::Dotted => self.holds_resolved(file),
        }
    }

    /// [`Self::contains_file`] for a file spelled with `..`: resolved once.
    fn holds_resolved(&self, file: &str) -> bool {
        let mut dotted = self
            .dotted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(&known) = dotted.get(file) {
            return known;
        }
        // A file that does not exist (yet) is not remembered.
        let Ok(resolved) = Path::new(file).canonicalize() else {
            return false;
        };
        let held = resolved.to_str().is_some_and(|r| self.holds(r));
        *dotted.entry(file.to_owned()).or_insert(held)
    }

    /// Is `file` (spelled plainly) under a root, with no ignored name below it?
    fn holds(&self, file: &str) -> bool {
        self.root_texts.iter().any(|root| {
            file.strip_prefix(root.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|relative| {
                    !relative
                        .as_bytes()
                        .split(|&c| c == b'/')
                        .any(is_ignored_name)
                })
        })
    }

    /// Should the watcher look at this path (a `.py` file or a directory under the root that is
    /// not hidden, a virtualenv, a cache or installed packages)?
    pub fn watches(&self, path: &Path) -> bool {
        path.strip_prefix(&self.canonical_root)
            .is_ok_and(|rel| !is_ignored(rel))
    }
}

/// A relative path with a hidden component, a virtualenv or a cache directory in it.
pub fn is_ignored(relative: &Path) -> bool {
    relative.components().any(|component| match component {
        Component::Normal(name) => is_ignored_name(name.as_encoded_bytes()),
        _ => false,
    })
}

/// A hidden name, a virtualenv's or a cache directory's.
fn is_ignored_name(name: &[u8]) -> bool {
    name.first() == Some(&b'.') || IGNORED_DIRS.iter().any(|dir| dir.as_bytes() == name)
}

/// How a file's name is spelled.
#[derive(Debug, PartialEq)]
enum Spelling {
    /// As `Path::components` reads it.
    Plain,
    /// With repeated `/`, a `.` component or a trailing `/`.
    Loose,
    /// With a `..` component.
    Dotted,
}

/// One pass over `file`'s components (the common case, a plain name, allocates nothing).
fn spelling(file: &str) -> Spelling {
    let mut spelling = Spelling::Plain;
    for (i, part) in file.as_bytes().split(|&c| c == b'/').enumerate() {
        match part {
            b".." => return Spelling::Dotted,
            b"." => spelling = Spelling::Loose,
            b"" if i > 0 => spelling = Spelling::Loose,
            _ => {}
        }
    }
    spelling
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignores_hidden_venv_and_caches() {
        assert!(is_ignored(Path::new(".venv/lib/x.py")));
        assert!(is_ignored(Path::new("pkg/__pycache__/x.py")));
        assert!(is_ignored(Path::new(
            "env/lib/python3.12/site-packages/y.py"
        )));
        assert!(is_ignored(Path::new(".hidden.py")));
        assert!(!is_ignored(Path::new("pkg/sub.py")));
    }

    #[test]
    fn files_outside_the_root_are_not_in_the_project() {
        let dir = std::env::temp_dir();
        let project = Project::new(&dir).unwrap();
        assert!(project.contains_file(&dir.join("a.py").to_string_lossy()));
        assert!(!project.contains_file("/somewhere/else.py"));
        assert!(!project.contains_file(&dir.join(".venv/a.py").to_string_lossy()));
        assert!(!project.contains_file(&dir.join("pkg/__pycache__/a.py").to_string_lossy()));
        assert!(!project.contains_file("relative/a.py"));
    }

    #[test]
    fn spellings() {
        assert_eq!(spelling("/a/b.py"), Spelling::Plain);
        assert_eq!(spelling("/a/.hidden/b.py"), Spelling::Plain);
        assert_eq!(spelling("/a//b.py"), Spelling::Loose);
        assert_eq!(spelling("/a/./b.py"), Spelling::Loose);
        assert_eq!(spelling("/a/b/"), Spelling::Loose);
        assert_eq!(spelling("/a/../b.py"), Spelling::Dotted);
        assert_eq!(spelling("../b.py"), Spelling::Dotted);
        assert_eq!(spelling("/a/..b.py"), Spelling::Plain);
    }

    #[test]
    fn files_are_compared_as_their_components_read() {
        let dir = std::env::temp_dir();
        let project = Project::new(&dir).unwrap();
        let root = dir.to_string_lossy();
        assert!(project.contains_file(&format!("{root}//pkg/./a.py")));
        assert!(project.contains_file(&format!("{root}/./pkg//a.py")));
        assert!(!project.contains_file(&format!("{root}//.venv/a.py")));
        // A sibling whose name starts with the root's is not under it.
        assert!(!project.contains_file(&format!("{root}-other/a.py")));
        let slashed = Project::new(Path::new(&format!("{root}/"))).unwrap();
        assert!(slashed.contains_file(&format!("{root}/a.py")));
        assert!(Project::new(Path::new("/")).unwrap().contains_file("/a.py"));
    }

    #[test]
    fn paths_with_dot_dot_are_compared_resolved() {
        let base = std::env::temp_dir().join(format!("fever-dotdot-{}", std::process::id()));
        std::fs::create_dir_all(base.join("src")).unwrap();
        std::fs::create_dir_all(base.join("tools")).unwrap();
        std::fs::write(base.join("src/lib.py"), "").unwrap();
        let project = Project::new(&base.join("src")).unwrap();
        let spelled = base.join("tools/../src/lib.py");
        assert!(project.contains_file(&spelled.to_string_lossy()));
        assert!(!project.contains_file(&base.join("src/../tools/x.py").to_string_lossy()));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
