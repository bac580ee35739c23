//! Hash maps and sets keyed by code ids (and interned snapshots' content hashes), with a
//! cheap multiplicative hash instead of `SipHash`.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;

/// Code id to index in the code table. Looked up once per event while validating, so it uses
/// [`IdHasher`] rather than `SipHash` (ids are written by fever, not chosen by an attacker, and
/// a file with colliding ids costs time, never correctness).
pub(crate) type IdMap<V> = HashMap<u32, V, BuildHasherDefault<IdHasher>>;
/// A set of code ids; see [`IdMap`].
pub(crate) type IdSet = HashSet<u32, BuildHasherDefault<IdHasher>>;

/// A multiplicative hash for `u32` ids.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u32(u32::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    /// Interned snapshots are keyed by a 128-bit content hash: half of it is hash enough.
    #[allow(clippy::cast_possible_truncation)]
    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}
