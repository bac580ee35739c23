//! [`Sink`]: where an [`Encoder`](super::Encoder) writes. A byte vector keeps the snapshot;
//! [`HashOnly`] keeps nothing, for a walk that wants only the summary ([`Snapped`](super::Snapped):
//! the structural hash and flags), such as the tracer's end-of-call check of mutable arguments.

/// The byte output of an [`Encoder`](super::Encoder).
pub trait Sink {
    /// Appends one byte.
    fn byte(&mut self, b: u8);
    /// Appends some bytes.
    fn bytes(&mut self, data: &[u8]);
    /// Appends an unsigned LEB128 varint.
    fn varint(&mut self, v: u64);
    /// Appends a length-prefixed UTF-8 string.
    fn str(&mut self, s: &str);
    /// Bytes written so far (where a snapshot starts, to take it back with [`Sink::rewind`]).
    fn written(&self) -> usize;
    /// Drops everything written after the first `to` bytes.
    fn rewind(&mut self, to: usize);
}

impl Sink for Vec<u8> {
    #[inline]
    fn byte(&mut self, b: u8) {
        self.push(b);
    }

    #[inline]
    fn bytes(&mut self, data: &[u8]) {
        self.extend_from_slice(data);
    }

    #[inline]
    fn varint(&mut self, v: u64) {
        crate::varint::put(self, v);
    }

    #[inline]
    fn str(&mut self, s: &str) {
        crate::varint::put(self, s.len() as u64);
        self.extend_from_slice(s.as_bytes());
    }

    fn written(&self) -> usize {
        self.len()
    }

    fn rewind(&mut self, to: usize) {
        self.truncate(to);
    }
}

/// A [`Sink`] that keeps nothing: the encoder computes the summary alone, with no bytes made.
#[derive(Debug, Clone, Copy, Default)]
pub struct HashOnly;

impl Sink for HashOnly {
    #[inline]
    fn byte(&mut self, _: u8) {}

    #[inline]
    fn bytes(&mut self, _: &[u8]) {}

    #[inline]
    fn varint(&mut self, _: u64) {}

    #[inline]
    fn str(&mut self, _: &str) {}

    fn written(&self) -> usize {
        0
    }

    fn rewind(&mut self, _: usize) {}
}
