//! `--persist-cache`: the cache file under `.fever/cache/` (format in
//! `fever_core::cache::persist`). At start the stored calls are loaded into the index as
//! snapshots (rebuilt into Python objects at their first hit); each new entry whose result a
//! snapshot holds faithfully is appended. A damaged file is replaced with a warning.

use std::path::{Path, PathBuf};

use fever_core::cache::persist::{self, CacheFile, StoredCall};
use fever_core::notice::Notice;
use fever_core::snapshot::decode;
use pyo3::prelude::*;

use crate::notices;
use crate::rebuild::{self, Lookup};
use crate::snapshot::{snapshot_value, SnapshotLimits};

/// Largest and smallest cache file (the ring's data area).
const MAX_FILE: u64 = 1 << 30;
const MIN_FILE: u64 = 16 << 20;

/// The calls stored in `dir`, and the file that keeps taking new ones (`None` when it can't be
/// written: the cache then lives in memory only).
pub fn open(dir: &Path, budget: u64) -> (Vec<StoredCall>, Option<CacheFile>) {
    let path = dir.join(persist::FILE_NAME);
    let calls = match persist::load(&path) {
        Ok(calls) => calls,
        Err(err) => {
            notices::emit(&Notice::CacheDiscarded {
                path: path.clone(),
                error: err.to_string(),
            });
            Vec::new()
        }
    };
    let file = prepare(dir).map_err(|e| e.to_string()).and_then(|()| {
        CacheFile::create(&path, budget.clamp(MIN_FILE, MAX_FILE), &calls)
            .map_err(|e| e.to_string())
    });
    match file {
        Ok(file) => (calls, Some(file)),
        Err(err) => {
            notices::emit(&Notice::CacheInMemoryOnly { error: err });
            (calls, None)
        }
    }
}

/// Creates the cache directory, with a `.gitignore` in `.fever/` so it is never committed.
fn prepare(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    if let Some(fever_dir) = dir.parent() {
        let ignore = fever_dir.join(".gitignore");
        if !ignore.exists() {
            std::fs::write(ignore, "*\n")?;
        }
    }
    Ok(())
}

/// The cache directory of a project root.
pub fn dir_of(root: &Path) -> PathBuf {
    root.join(".fever").join("cache")
}

/// The snapshot of `result` when it holds all of it (so it rebuilds faithfully).
pub fn snapshot(result: &Bound<'_, PyAny>) -> Option<Vec<u8>> {
    let limits = SnapshotLimits {
        max_depth: 32,
        max_items: u32::MAX,
        max_str_bytes: usize::MAX,
        hash_over_bytes: usize::MAX,
        max_nodes: 0,
    };
    let mut out = Vec::new();
    // SAFETY: GIL held (`result` is bound), live object.
    let snapped = unsafe { snapshot_value(result.as_ptr(), &limits, &mut out) };
    snapped.faithful.then_some(out)
}

/// The Python object a stored result's snapshot stands for.
pub fn rebuild<'py>(py: Python<'py>, snapshot: &[u8]) -> Result<Bound<'py, PyAny>, String> {
    let value = decode(snapshot).map_err(|e| e.to_string())?;
    rebuild::rebuild(py, &value, &mut Modules)
}

/// Finds classes and functions in the modules the program has loaded (`__main__` is the
/// current run's script), importing a module that is not loaded yet.
struct Modules;

impl Lookup for Modules {
    fn lookup<'py>(
        &mut self,
        py: Python<'py>,
        module: &str,
        qualname: &str,
    ) -> Result<Bound<'py, PyAny>, String> {
        let loaded = py
            .import("sys")
            .and_then(|sys| sys.getattr("modules"))
            .and_then(|modules| modules.get_item(module));
        let object = match loaded {
            Ok(object) => object,
            Err(_) => py.import(module).map_err(|e| e.to_string())?.into_any(),
        };
        rebuild::member(object, module, qualname)
    }
}
