//! Which Python interpreters fever supports: `CPython` 3.12 to 3.15 with the GIL. The standalone
//! `fever` binary asks an interpreter for its version and ABI flags and decides here; the Python
//! package makes the same check before it imports the extension (`python/fever/_support.py`,
//! whose bounds a test below keeps equal to these).

/// Oldest and newest supported `(major, minor)`: 3.12 brought `sys.monitoring` (PEP 669); a
/// version newer than the last one fever was tested on may have changed what fever relies on.
pub const OLDEST: (u32, u32) = (3, 12);
pub const NEWEST: (u32, u32) = (3, 15);

/// An interpreter as it describes itself: `sys.version_info[:3]` and `sys.abiflags`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpreter {
    pub version: (u32, u32, u32),
    pub abiflags: String,
}

/// Why fever cannot run on an interpreter: a message and the next step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    pub message: String,
    pub hint: String,
}

impl Interpreter {
    /// Parses the probe's line `"3.14.2 t"` (version, then the ABI flags or `-` for none).
    pub fn parse(line: &str) -> Option<Self> {
        let mut words = line.split_whitespace();
        let mut numbers = words.next()?.split('.').map(str::parse::<u32>);
        let version = (
            numbers.next()?.ok()?,
            numbers.next()?.ok()?,
            numbers.next().unwrap_or(Ok(0)).ok()?,
        );
        let abiflags = words.next().unwrap_or("-");
        Some(Self {
            version,
            abiflags: if abiflags == "-" {
                String::new()
            } else {
                abiflags.to_owned()
            },
        })
    }

    /// A free-threaded build (`python3.13t`, `python3.14t`): ABI flag `t`.
    pub fn free_threaded(&self) -> bool {
        self.abiflags.contains('t')
    }

    /// Ok when fever runs on this interpreter; else what is wrong and what to do.
    pub fn check(&self) -> Result<(), Unsupported> {
        let (major, minor, micro) = self.version;
        let range = format!(
            "fever supports Python {}.{} to {}.{}",
            OLDEST.0, OLDEST.1, NEWEST.0, NEWEST.1
        );
        let choose = format!(
            "choose a Python {}.{} to {}.{} with --python or FEVER_PYTHON",
            OLDEST.0, OLDEST.1, NEWEST.0, NEWEST.1
        );
        if (major, minor) < OLDEST {
            return Err(Unsupported {
                message: format!("Python {major}.{minor}.{micro} is too old: {range} (sys.monitoring arrived in 3.12)"),
                hint: choose,
            });
        }
        if (major, minor) > NEWEST {
            return Err(Unsupported {
                message: format!(
                    "Python {major}.{minor}.{micro} is newer than fever knows: {range}"
                ),
                hint: format!("{choose}, or look for a newer fever"),
            });
        }
        if self.free_threaded() {
            return Err(Unsupported {
                message: format!(
                    "Python {major}.{minor}.{micro} is a free-threaded build ({major}.{minor}t), which fever does not support yet"
                ),
                hint: format!("use the regular build (python{major}.{minor}, not python{major}.{minor}t) with --python or FEVER_PYTHON"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interpreter(line: &str) -> Interpreter {
        Interpreter::parse(line).unwrap()
    }

    #[test]
    fn supported_versions_pass() {
        for line in ["3.12.1 -", "3.13.0", "3.14.10 -", "3.15.2 -"] {
            assert_eq!(interpreter(line).check(), Ok(()), "{line}");
        }
    }

    #[test]
    fn too_old_too_new_and_free_threaded_are_refused_with_a_hint() {
        let old = interpreter("3.11.9 -").check().unwrap_err();
        assert!(
            old.message.starts_with("Python 3.11.9 is too old"),
            "{}",
            old.message
        );
        let new = interpreter("3.16.0 -").check().unwrap_err();
        assert!(
            new.message.contains("newer than fever knows"),
            "{}",
            new.message
        );
        assert!(new.message.contains("3.12 to 3.15"), "{}", new.message);
        let nogil = interpreter("3.14.2 t").check().unwrap_err();
        assert!(nogil.message.contains("free-threaded"), "{}", nogil.message);
        assert!(nogil.hint.contains("python3.14t"), "{}", nogil.hint);
        // Debug builds (`d`) are not free-threaded.
        assert_eq!(interpreter("3.13.0 d").check(), Ok(()));
    }

    #[test]
    fn unreadable_probe_lines_are_none() {
        assert_eq!(Interpreter::parse(""), None);
        assert_eq!(Interpreter::parse("Python 3.12"), None);
        assert_eq!(interpreter("3.12 -").version, (3, 12, 0));
    }

    /// The Python package refuses the same interpreters before importing the extension.
    #[test]
    fn the_python_package_has_the_same_bounds() {
        let support = include_str!("../../python/fever/_support.py");
        assert!(support.contains(&format!("OLDEST = ({}, {})", OLDEST.0, OLDEST.1)));
        assert!(support.contains(&format!("NEWEST = ({}, {})", NEWEST.0, NEWEST.1)));
    }
}
