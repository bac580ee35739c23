//! The byte vocabulary of the snapshot encoding: tag bytes, LEB128 varints, and [`Reader`], the
//! bounds-checked cursor the decoder reads with. The layout itself is documented in the parent
//! module.

use super::SnapshotError;
use crate::varint::VarintError;

/// First byte of every snapshot: the encoding version.
pub const VERSION: u8 = 1;

/// One byte before every value (and the two structural markers [`FIELD`] and [`END`]).
pub(super) mod tag {
    pub const NONE: u8 = 0x00;
    pub const FALSE: u8 = 0x01;
    pub const TRUE: u8 = 0x02;
    pub const INT: u8 = 0x03;
    pub const BIG_INT: u8 = 0x04;
    pub const FLOAT: u8 = 0x05;
    pub const COMPLEX: u8 = 0x06;
    pub const STR: u8 = 0x07;
    pub const STR_TRUNCATED: u8 = 0x08;
    pub const BYTES: u8 = 0x09;
    pub const BYTES_HASHED: u8 = 0x0a;
    pub const LIST: u8 = 0x10;
    pub const TUPLE: u8 = 0x11;
    pub const SET: u8 = 0x12;
    pub const FROZENSET: u8 = 0x13;
    pub const DICT: u8 = 0x14;
    pub const OBJECT: u8 = 0x15;
    pub const EXCEPTION: u8 = 0x16;
    pub const ARGS: u8 = 0x17;
    pub const ARRAY: u8 = 0x18;
    pub const REF: u8 = 0x19;
    pub const REPR: u8 = 0x1a;
    pub const UNREPRESENTABLE: u8 = 0x1b;
    pub const OPAQUE: u8 = 0x1c;
    pub const DEPTH_LIMIT: u8 = 0x1d;
    pub const CYCLE: u8 = 0x1e;
    /// Before each named entry of an object or an arguments container.
    pub const FIELD: u8 = 0xfe;
    /// Closes a container; followed by a varint: how many entries were left out.
    pub const END: u8 = 0xff;
}

/// Array content byte: what follows the array's byte length.
pub(super) mod content {
    /// Nothing: the data could not be read (not faithful).
    pub const UNAVAILABLE: u8 = 0;
    /// An xxh3 of the data (8 bytes, little-endian).
    pub const HASHED: u8 = 1;
    /// The data itself, in C order.
    pub const DATA: u8 = 2;
}

pub(super) use crate::varint::{unzigzag, zigzag};

/// A cursor over untrusted bytes: every read checks the remaining length first.
#[derive(Clone)]
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Offset of the next byte, for error messages.
    pub(super) fn offset(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub(super) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(super) fn invalid(&self, what: &'static str) -> SnapshotError {
        SnapshotError::Invalid {
            what,
            offset: self.pos,
        }
    }

    pub(super) fn u8(&mut self) -> Result<u8, SnapshotError> {
        let b = *self.buf.get(self.pos).ok_or(SnapshotError::UnexpectedEnd)?;
        self.pos += 1;
        Ok(b)
    }

    /// The next byte without consuming it.
    pub(super) fn peek(&self) -> Result<u8, SnapshotError> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or(SnapshotError::UnexpectedEnd)
    }

    pub(super) fn take(&mut self, len: u64) -> Result<&'a [u8], SnapshotError> {
        let len = usize::try_from(len).map_err(|_| SnapshotError::UnexpectedEnd)?;
        if len > self.remaining() {
            return Err(SnapshotError::UnexpectedEnd);
        }
        let bytes = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(bytes)
    }

    pub(super) fn u64_le(&mut self) -> Result<u64, SnapshotError> {
        let bytes = self.take(8)?;
        let mut array = [0; 8];
        array.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(array))
    }

    /// A canonical LEB128 varint (see [`crate::varint`]).
    pub(super) fn varint(&mut self) -> Result<u64, SnapshotError> {
        let start = self.pos;
        crate::varint::read(self.buf, &mut self.pos).map_err(|e| match e {
            VarintError::End => SnapshotError::UnexpectedEnd,
            VarintError::Overflow => SnapshotError::Invalid {
                what: "varint overflows 64 bits",
                offset: start,
            },
            VarintError::Overlong => SnapshotError::Invalid {
                what: "overlong varint",
                offset: start,
            },
            VarintError::TooLong => SnapshotError::Invalid {
                what: "varint longer than 10 bytes",
                offset: start,
            },
        })
    }

    /// A length-prefixed UTF-8 string.
    pub(super) fn str(&mut self) -> Result<&'a str, SnapshotError> {
        let len = self.varint()?;
        let start = self.pos;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|_| SnapshotError::Invalid {
            what: "string is not UTF-8",
            offset: start,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_varints_are_snapshot_errors() {
        assert_eq!(Reader::new(&[0x05]).varint(), Ok(5));
        assert_eq!(
            Reader::new(&[0x80]).varint(),
            Err(SnapshotError::UnexpectedEnd)
        );
        assert!(matches!(
            Reader::new(&[0x80, 0x00]).varint(),
            Err(SnapshotError::Invalid {
                what: "overlong varint",
                offset: 0
            })
        ));
        assert!(Reader::new(&[0xff; 10]).varint().is_err());
    }

    #[test]
    fn reads_never_pass_the_end() {
        let mut reader = Reader::new(&[5, b'a', b'b']);
        assert_eq!(reader.str(), Err(SnapshotError::UnexpectedEnd));
        assert_eq!(
            Reader::new(&[1, 2]).u64_le(),
            Err(SnapshotError::UnexpectedEnd)
        );
        assert_eq!(
            Reader::new(&[2, 0xff, 0xfe]).str().unwrap_err().to_string(),
            "invalid snapshot at byte 1: string is not UTF-8"
        );
    }
}
