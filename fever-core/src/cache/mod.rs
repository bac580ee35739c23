//! `fever watch`'s call cache, without Python: which cached calls exist, when they stop being
//! valid, and which go when memory runs out.
//!
//! - [`index`]: the entries (function code hash + argument hash → stored result), each with the
//!   code it reached during the call (and the classes its result holds instances of);
//!   invalidation when any of that changes; LRU eviction under a byte budget.
//! - [`persist`]: the cache file under `.fever/cache/` (`--persist-cache`): entries with their
//!   results as snapshots, in a ring file, validated on load.
//! - [`reached`]: a thread's stack of calls with the code each reached (bitsets merged into the
//!   caller's).
//! - [`trampoline`]: the Python source of the trampoline that replaces a cached function's code.

pub mod index;
pub mod persist;
pub mod reached;
pub mod trampoline;

pub use index::{class_slot_name, slot_class, CacheIndex, CodeSlot, Entry, Evicted, Key, Reached};
pub use trampoline::Signature;
