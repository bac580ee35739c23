//! The trace's code ids, one numbering for the whole recording: the program's tracer (when it
//! meets a code) and the drain (when a child announces one) take ids from the same allocator,
//! keyed by what makes two codes the same code (module, name, file, line and hash). So a code the
//! program and its children run is one code of the trace whichever process runs it first, the
//! ids stay dense from 0, and the program's runs carry the trace's ids as they are (appended
//! whole, no renaming). Only the recording program uses it: a child numbers its codes on its own
//! (the drain renames them), as does a replay's forked child: a lock the drain held at `fork()`
//! never matters.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use fever_core::trace::CodeInfo;

/// What makes two codes the same code, whatever process announced them.
#[derive(Clone, PartialEq, Eq, Hash)]
struct CodeKey(String, String, String, u32, u64);

impl CodeKey {
    fn of(info: &CodeInfo) -> Self {
        Self(
            info.module.clone(),
            info.qualname.clone(),
            info.file.clone(),
            info.first_line,
            info.code_hash,
        )
    }
}

#[derive(Default)]
struct Ids {
    by_key: Option<HashMap<CodeKey, u32>>,
    next: u32,
}

static IDS: Mutex<Ids> = Mutex::new(Ids {
    by_key: None,
    next: 0,
});

/// Starts a new numbering (a new recording).
pub fn reset() {
    *IDS.lock().unwrap_or_else(PoisonError::into_inner) = Ids::default();
}

/// The trace's id of the code `info` (its own `id` ignored): the one it was given already, else
/// the next free one.
pub fn id_of(info: &CodeInfo) -> u32 {
    let mut ids = IDS.lock().unwrap_or_else(PoisonError::into_inner);
    let Ids { by_key, next } = &mut *ids;
    *by_key
        .get_or_insert_with(HashMap::new)
        .entry(CodeKey::of(info))
        .or_insert_with(|| {
            let id = *next;
            *next = next.saturating_add(1);
            id
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(name: &str, hash: u64) -> CodeInfo {
        CodeInfo {
            id: 99,
            module: "m".into(),
            qualname: name.into(),
            file: "m.py".into(),
            first_line: 1,
            code_hash: hash,
        }
    }

    #[test]
    fn the_same_code_gets_one_id_and_others_the_next_ones() {
        reset();
        assert_eq!(id_of(&code("f", 1)), 0);
        assert_eq!(id_of(&code("g", 1)), 1);
        assert_eq!(id_of(&code("f", 1)), 0);
        // Edited: another code.
        assert_eq!(id_of(&code("f", 2)), 2);
        reset();
        assert_eq!(id_of(&code("g", 1)), 0);
    }
}
