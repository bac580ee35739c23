//! The mixing functions of the structural hash. Every value's hash starts from a seed derived
//! from its tag; ordered containers chain their items with [`mix`]; unordered ones (dict, set,
//! object fields) add up one well-mixed word per entry, so the order of entries does not matter.

/// xxh3-64 (seed 0) of some bytes: the content hash of strings, bytes, names and buffers.
#[inline]
pub fn content_hash(data: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(data)
}

/// A streaming [`content_hash`], for content that arrives in pieces (a strided buffer).
#[derive(Clone, Default)]
pub struct ContentHasher(xxhash_rust::xxh3::Xxh3Default);

impl ContentHasher {
    /// An empty hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next piece.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The hash of everything fed so far; equal to [`content_hash`] of the concatenation.
    pub fn finish(&self) -> u64 {
        self.0.digest()
    }
}

/// The 128-bit product of `a` and `b`, folded to 64 bits (wyhash's mixing step): one multiply.
#[inline]
#[allow(clippy::cast_possible_truncation)] // the fold keeps both halves
fn fold_mul(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

/// Combines a running state with the next word (one multiply; both words matter, in order).
#[inline]
pub(super) fn mix(state: u64, word: u64) -> u64 {
    fold_mul(state ^ 0xa076_1d64_78bd_642f, word ^ 0xe703_7ed1_a0b4_28db)
}

/// The starting state of a value with tag `tag`.
#[inline]
pub(super) fn seed(tag: u8) -> u64 {
    mix(u64::from(tag), 0x2545_f491_4f6c_dd1d)
}

/// The word an unordered container adds for one element.
#[inline]
pub(super) fn unordered(h: u64) -> u64 {
    mix(h, 0x6a09_e667_f3bc_c909)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_hash_equals_one_shot() {
        let data: Vec<u8> = (0..3_000u32).flat_map(u32::to_le_bytes).collect();
        let mut hasher = ContentHasher::new();
        for piece in data.chunks(333) {
            hasher.update(piece);
        }
        assert_eq!(hasher.finish(), content_hash(&data));
    }

    #[test]
    fn mix_depends_on_order_and_both_words() {
        assert_ne!(mix(mix(seed(1), 1), 2), mix(mix(seed(1), 2), 1));
        assert_ne!(mix(0, 0), mix(0, 1));
        assert_ne!(mix(0, 0), mix(1, 0));
        assert_ne!(seed(1), seed(2));
    }
}
