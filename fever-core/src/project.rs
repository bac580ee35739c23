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
    root: PathBuf,
    canonical_root: PathBuf,
    /// Files spelled with `..`, resolved once each: in the project or not.
    dotted: Arc<Mutex<HashMap<String, bool>>>,
}

impl Project {
    pub fn new(root: &Path) -> std::io::Result<Project> {
        let root = std::path::absolute(root)?;
        let canonical_root = root.canonicalize()?;
        Ok(Project {
            root,
            canonical_root,
            dotted: Arc::default(),
        })
    }

    /// The root with symlinks resolved (what the watcher watches).
    pub fn canonical_root(&self) -> &Path {
        &self.canonical_root
    }

    /// Is `file` (as a code object or `__file__` names it) a project source file?
    /// A path spelled with `..` (`tools/../src/lib.py`, from a `sys.path` entry built that way)
    /// is compared resolved.
    pub fn contains_file(&self, file: &str) -> bool {
        let path = Path::new(file);
        let under = |path: &Path| {
            [&self.root, &self.canonical_root]
                .iter()
                .any(|root| path.strip_prefix(root).is_ok_and(|rel| !is_ignored(rel)))
        };
        if !file.contains("..") || !path.components().any(|c| c == Component::ParentDir) {
            return under(path);
        }
        let mut dotted = self
            .dotted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(&known) = dotted.get(file) {
            return known;
        }
        // A file that does not exist (yet) is not remembered.
        let Ok(resolved) = path.canonicalize() else {
            return false;
        };
        *dotted.entry(file.to_owned()).or_insert(under(&resolved))
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
        Component::Normal(name) => {
            let name = name.to_string_lossy();
            name.starts_with('.') || IGNORED_DIRS.contains(&name.as_ref())
        }
        _ => false,
    })
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
