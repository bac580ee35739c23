//! Where the recorded program imported its modules from, read off the trace's code table, so
//! `fever check` imports them the same way whatever put their directories on `sys.path` while
//! the program ran (pytest's `prepend` and `append` import modes insert each test file's
//! `rootdir`-relative base directory, a `conftest.py` its own; a script its directory).
//!
//! A code of module `a.b` in file `D/a/b.py` (or `D/a/b/__init__.py`) was imported from `D`:
//! [`Layout::search_path`] lists those directories under the project root, in the order the
//! trace first names them. Modules whose name does not follow their path (pytest's `importlib`
//! mode, a loader of the program's own) are loaded from their file ([`Layout::files`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::Relocation;
use crate::trace::CodeInfo;

/// The recorded modules' import directories and files, where the project is now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// Directories under the root that the recorded modules were imported from.
    pub search_path: Vec<PathBuf>,
    /// Each recorded module's file (`__main__` excluded).
    pub files: HashMap<String, PathBuf>,
}

impl Layout {
    /// The layout of the modules that `codes` belong to.
    pub fn of(codes: &[CodeInfo], relocation: &Relocation) -> Self {
        let mut layout = Self::default();
        for code in codes {
            if code.module == "__main__" || layout.files.contains_key(&code.module) {
                continue;
            }
            let file = relocation.apply(&code.file);
            if let Some(base) = import_base(&code.module, &file) {
                if base.starts_with(&relocation.now) && !layout.search_path.contains(&base) {
                    layout.search_path.push(base);
                }
            }
            layout.files.insert(code.module.clone(), file);
        }
        layout
    }
}

/// The directory module `module` was imported from, when its `file` follows its name.
fn import_base(module: &str, file: &Path) -> Option<PathBuf> {
    let mut dir = file.parent()?;
    let stem = file.file_stem()?.to_str()?;
    let mut parts: Vec<&str> = module.split('.').collect();
    if stem != "__init__" && parts.pop()? != stem {
        return None;
    }
    while let Some(part) = parts.pop() {
        if dir.file_name()?.to_str()? != part {
            return None;
        }
        dir = dir.parent()?;
    }
    Some(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(module: &str, file: &str) -> CodeInfo {
        CodeInfo {
            module: module.into(),
            file: file.into(),
            ..CodeInfo::default()
        }
    }

    #[test]
    fn import_directories_follow_module_names_and_move_with_the_root() {
        let relocation = Relocation {
            recorded: "/dev/p".into(),
            now: "/ci/p".into(),
        };
        let codes = [
            code("__main__", "/dev/p/run.py"),
            code("pkg.mod", "/dev/p/src/pkg/mod.py"),
            code("pkg", "/dev/p/src/pkg/__init__.py"),
            code("test_utils", "/dev/p/tests/test_utils.py"),
            code("conftest", "/dev/p/conftest.py"),
            code("tests.test_a", "/dev/p/tests/test_a.py"),
            code("json.decoder", "/usr/lib/python3/json/decoder.py"),
            code("test_x_abc123", "/dev/p/other/test_x.py"),
        ];
        let layout = Layout::of(&codes, &relocation);
        let expected: Vec<PathBuf> = ["/ci/p/src", "/ci/p/tests", "/ci/p"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(layout.search_path, expected);
        assert_eq!(
            layout.files.get("test_x_abc123"),
            Some(&PathBuf::from("/ci/p/other/test_x.py"))
        );
        assert!(!layout.files.contains_key("__main__"));
    }

    #[test]
    fn names_that_do_not_follow_the_path_give_no_directory() {
        assert_eq!(import_base("a.b", Path::new("/x/a/c.py")), None);
        assert_eq!(import_base("a.b", Path::new("/x/z/b.py")), None);
        assert_eq!(
            import_base("a.b", Path::new("/x/a/b/__init__.py")),
            Some(PathBuf::from("/x"))
        );
    }
}
