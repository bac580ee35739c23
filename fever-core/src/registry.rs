//! Which function objects run which code object, per source file.
//!
//! The registry works on opaque ids (the monitor uses object addresses) and is fed by `CPython`'s
//! function watcher: a function is added when created, moved when its `__code__` is assigned,
//! removed when destroyed. A code entry lives exactly as long as some registered function runs it,
//! so an id in the registry always names a live object.
//!
//! Every function created or destroyed passes through here, so the maps keyed by ids hash them
//! with [`AddressHasher`] (one multiply) instead of `SipHash`.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Identity of a function object.
pub type FunctionId = usize;
/// Identity of a code object.
pub type CodeId = usize;

/// A hash for object addresses (and small integers): a multiply, rotated so that its well-mixed
/// high bits become the low bits the table indexes by (the low bits of a product depend only on
/// the low bits of the address, which alignment keeps zero). Ids are the monitor's own object
/// addresses, never chosen by an attacker.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<AddressHasher>>;
type IdSet<K> = HashSet<K, BuildHasherDefault<AddressHasher>>;

#[derive(Debug, Default)]
struct CodeEntry {
    file: usize,
    /// The code's `co_firstlineno`: a reload looks codes up by it without touching them.
    first_line: usize,
    functions: Vec<FunctionId>,
}

/// The code → functions map of the project's functions.
#[derive(Debug, Default)]
pub struct CodeRegistry {
    files: Vec<String>,
    file_ids: HashMap<String, usize>,
    /// Per file, per first line, the codes.
    codes_by_file: Vec<IdMap<usize, IdSet<CodeId>>>,
    codes: IdMap<CodeId, CodeEntry>,
    functions: IdMap<FunctionId, CodeId>,
}

impl CodeRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `function` (created now, or found by a scan) runs `code` from the file whose
    /// id is `file` ([`CodeRegistry::file_id`]: the monitor keeps it per code object), and whose
    /// first line is `first_line`.
    pub fn add(&mut self, function: FunctionId, code: CodeId, file: usize, first_line: usize) {
        if self.functions.contains_key(&function) {
            self.remove(function);
        }
        let entry = self.codes.entry(code).or_insert_with(|| CodeEntry {
            file,
            first_line,
            functions: Vec::new(),
        });
        entry.functions.push(function);
        self.codes_by_file[entry.file]
            .entry(entry.first_line)
            .or_default()
            .insert(code);
        self.functions.insert(function, code);
    }

    /// Forgets `function` (it is being destroyed). Unknown functions are ignored.
    pub fn remove(&mut self, function: FunctionId) {
        let Some(code) = self.functions.remove(&function) else {
            return;
        };
        let Some(entry) = self.codes.get_mut(&code) else {
            return;
        };
        entry.functions.retain(|&f| f != function);
        if entry.functions.is_empty() {
            let (file, line) = (entry.file, entry.first_line);
            self.codes.remove(&code);
            let by_line = &mut self.codes_by_file[file];
            if let Some(codes) = by_line.get_mut(&line) {
                codes.remove(&code);
                if codes.is_empty() {
                    by_line.remove(&line);
                }
            }
        }
    }

    /// `function`'s `__code__` is being set to `code` from a file (its id) at a first line: keeps
    /// it registered under the new code when it belongs to a project file, forgets it otherwise.
    pub fn code_changed(
        &mut self,
        function: FunctionId,
        code: CodeId,
        file: Option<(usize, usize)>,
    ) {
        match file {
            Some((file, first_line)) => self.add(function, code, file, first_line),
            None => self.remove(function),
        }
    }

    /// Is `function` registered?
    pub fn contains(&self, function: FunctionId) -> bool {
        self.functions.contains_key(&function)
    }

    /// The code objects of `file` that some function runs.
    pub fn codes_in(&self, file: &str) -> Vec<CodeId> {
        self.file_ids
            .get(file)
            .map(|&id| self.codes_by_file[id].values().flatten().copied().collect())
            .unwrap_or_default()
    }

    /// The code objects of `file` starting at `first_line` that some function runs.
    pub fn codes_at(&self, file: &str, first_line: usize) -> Vec<CodeId> {
        self.file_ids
            .get(file)
            .and_then(|&id| self.codes_by_file[id].get(&first_line))
            .map(|codes| codes.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The functions running `code`.
    pub fn functions_of(&self, code: CodeId) -> &[FunctionId] {
        self.codes
            .get(&code)
            .map_or(&[], |entry| entry.functions.as_slice())
    }

    /// Number of registered functions.
    pub fn len(&self) -> usize {
        self.functions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }

    /// The id of `file` when it was given one already.
    pub fn known_file(&self, file: &str) -> Option<usize> {
        self.file_ids.get(file).copied()
    }

    /// The id of `file`, given on first sight and kept for good.
    pub fn file_id(&mut self, file: &str) -> usize {
        if let Some(&id) = self.file_ids.get(file) {
            return id;
        }
        let id = self.files.len();
        self.files.push(file.to_owned());
        self.file_ids.insert(file.to_owned(), id);
        self.codes_by_file.push(IdMap::default());
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(
        registry: &mut CodeRegistry,
        function: FunctionId,
        code: CodeId,
        file: &str,
        line: usize,
    ) {
        let file = registry.file_id(file);
        registry.add(function, code, file, line);
    }

    #[test]
    fn a_file_is_known_once_given_an_id() {
        let mut registry = CodeRegistry::new();
        assert_eq!(registry.known_file("/p/a.py"), None);
        let id = registry.file_id("/p/a.py");
        assert_eq!(registry.known_file("/p/a.py"), Some(id));
        assert_eq!(registry.known_file("/p/b.py"), None);
    }

    #[test]
    fn functions_follow_their_code() {
        let mut registry = CodeRegistry::new();
        add(&mut registry, 1, 100, "/p/a.py", 3);
        add(&mut registry, 2, 100, "/p/a.py", 3);
        add(&mut registry, 3, 200, "/p/b.py", 3);
        assert_eq!(registry.functions_of(100), [1, 2]);
        assert_eq!(registry.codes_in("/p/a.py"), [100]);

        let file = registry.file_id("/p/a.py");
        registry.code_changed(1, 101, Some((file, 7)));
        assert_eq!(registry.functions_of(100), [2]);
        assert_eq!(registry.functions_of(101), [1]);
        let mut codes = registry.codes_in("/p/a.py");
        codes.sort_unstable();
        assert_eq!(codes, [100, 101]);
        assert_eq!(registry.codes_at("/p/a.py", 7), [101]);
        assert_eq!(registry.codes_at("/p/a.py", 3), [100]);
        assert!(registry.codes_at("/p/a.py", 4).is_empty());
        assert!(registry.codes_at("/p/c.py", 3).is_empty());
    }

    #[test]
    fn code_entries_die_with_their_last_function() {
        let mut registry = CodeRegistry::new();
        add(&mut registry, 1, 100, "/p/a.py", 1);
        registry.remove(1);
        assert!(registry.functions_of(100).is_empty());
        assert!(registry.codes_in("/p/a.py").is_empty());
        assert!(registry.is_empty());
        registry.remove(42);
    }

    #[test]
    fn code_from_outside_the_project_unregisters() {
        let mut registry = CodeRegistry::new();
        add(&mut registry, 1, 100, "/p/a.py", 1);
        registry.code_changed(1, 300, None);
        assert!(!registry.contains(1));
        assert!(registry.codes_in("/p/a.py").is_empty());
    }

    #[test]
    fn file_ids_are_kept() {
        let mut registry = CodeRegistry::new();
        let a = registry.file_id("/p/a.py");
        assert_eq!(registry.file_id("/p/a.py"), a);
        assert_ne!(registry.file_id("/p/b.py"), a);
    }

    #[test]
    fn aligned_addresses_spread() {
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<AddressHasher>::default();
        let buckets: HashSet<u64> = (0..64usize)
            .map(|i| build.hash_one(0x7f00_0000_0000 + i * 64) & 63)
            .collect();
        assert!(buckets.len() > 32, "{} of 64 buckets", buckets.len());
    }

    #[test]
    fn re_adding_moves_a_function() {
        let mut registry = CodeRegistry::new();
        add(&mut registry, 1, 100, "/p/a.py", 1);
        add(&mut registry, 1, 200, "/p/b.py", 1);
        assert_eq!(registry.len(), 1);
        assert!(registry.codes_in("/p/a.py").is_empty());
        assert_eq!(registry.functions_of(200), [1]);
    }
}
