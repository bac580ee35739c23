//! The byte layout of a trace file (see the table in the [module docs](super)): constants, and
//! encoders and decoders of the fixed-size parts. Decoders take exactly-sized arrays, so callers
//! do the bounds checks once with `get` and nothing here can index out of bounds.

use xxhash_rust::xxh3::xxh3_64;

/// The first 8 bytes of every trace file.
pub const MAGIC: [u8; 8] = *b"FEVERTRC";
/// The last 8 bytes of a complete trace file.
pub(crate) const END_MAGIC: [u8; 8] = *b"FEVEREND";
/// The format version this fever writes, and the only one it reads (version 1 traces, written
/// before chunks were compressed, are refused as recorded by an older fever).
pub const FORMAT_VERSION: u32 = 2;

/// Alignment of every section, archive and record body, in bytes.
pub(crate) const ALIGN: usize = 8;
pub(crate) const FILE_HEADER_LEN: usize = 32;
pub(crate) const BLOCK_HEADER_LEN: usize = 40;
pub(crate) const FOOTER_LEN: usize = 56;

/// Block kind: a chunk of records.
pub(crate) const CHUNK_KIND: [u8; 4] = *b"FVCH";
/// Block kind: the code table written at the end.
pub(crate) const CODE_TABLE_KIND: [u8; 4] = *b"FVCT";

/// Record kind of an [`Event`](super::Event).
pub const RECORD_EVENT: u32 = 1;
/// Record kind of a [`CodeInfo`](super::CodeInfo).
pub const RECORD_CODE: u32 = 2;
/// Record kind of the [`RunStats`](super::RunStats) (at most one per trace).
pub const RECORD_STATS: u32 = 3;
/// Record kinds from this one up are opaque to the trace layer: framed and checksummed, never
/// interpreted. Kinds 0 and 4 up to this one are reserved.
pub const FIRST_OPAQUE_RECORD: u32 = 0x100;

/// Largest record body, in bytes (2 GiB).
pub const MAX_RECORD_LEN: usize = 1 << 31;
/// Largest chunk size a writer accepts (1 GiB), so a full chunk plus one maximal record still
/// fits the u32 payload length.
pub const MAX_CHUNK_SIZE: usize = 1 << 30;

/// `n` rounded up to a multiple of [`ALIGN`], or `None` on overflow.
pub(crate) fn align_up(n: usize) -> Option<usize> {
    n.checked_add(ALIGN - 1).map(|m| m & !(ALIGN - 1))
}

/// xxh3-64 with seed 0, the only checksum of the format.
pub(crate) fn checksum(bytes: &[u8]) -> u64 {
    xxh3_64(bytes)
}

fn u32_at<const N: usize>(bytes: &[u8; N], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at<const N: usize>(bytes: &[u8; N], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// The fixed part at offset 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileHeader {
    pub header_len: u32,
    pub header_xxh3: u64,
}

impl FileHeader {
    pub fn encode(self) -> [u8; FILE_HEADER_LEN] {
        let mut out = [0u8; FILE_HEADER_LEN];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&self.header_len.to_le_bytes());
        out[16..24].copy_from_slice(&self.header_xxh3.to_le_bytes());
        let sum = checksum(&out[0..24]);
        out[24..32].copy_from_slice(&sum.to_le_bytes());
        out
    }

    /// Decodes a file header whose magic and version the caller has already checked; `None` if
    /// its checksum fails.
    pub fn decode(bytes: &[u8; FILE_HEADER_LEN]) -> Option<Self> {
        if checksum(&bytes[0..24]) != u64_at(bytes, 24) {
            return None;
        }
        Some(Self {
            header_len: u32_at(bytes, 12),
            header_xxh3: u64_at(bytes, 16),
        })
    }

    /// The version field of a file header (bytes 8..12), readable before anything else is known.
    pub fn version(bytes: [u8; 4]) -> u32 {
        u32::from_le_bytes(bytes)
    }
}

/// How a block's payload is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    /// As is.
    Stored = 0,
    /// One zstd frame.
    Zstd = 1,
}

/// The header of a block (a chunk of records or the code table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockHeader {
    pub kind: [u8; 4],
    /// Length of the payload as stored in the file.
    pub payload_len: u32,
    pub index: u32,
    pub count: u32,
    /// Length of the payload once decompressed.
    pub raw_len: u32,
    pub codec: Codec,
    pub payload_xxh3: u64,
}

impl BlockHeader {
    pub fn encode(self) -> [u8; BLOCK_HEADER_LEN] {
        let mut out = [0u8; BLOCK_HEADER_LEN];
        out[0..4].copy_from_slice(&self.kind);
        out[4..8].copy_from_slice(&self.payload_len.to_le_bytes());
        out[8..12].copy_from_slice(&self.index.to_le_bytes());
        out[12..16].copy_from_slice(&self.count.to_le_bytes());
        out[16..20].copy_from_slice(&self.raw_len.to_le_bytes());
        out[20..24].copy_from_slice(&(self.codec as u32).to_le_bytes());
        out[24..32].copy_from_slice(&self.payload_xxh3.to_le_bytes());
        let sum = checksum(&out[0..32]);
        out[32..40].copy_from_slice(&sum.to_le_bytes());
        out
    }

    /// `None` if the kind or codec is unknown, a stored payload's two lengths differ, or the
    /// header's checksum fails.
    pub fn decode(bytes: &[u8; BLOCK_HEADER_LEN]) -> Option<Self> {
        let mut kind = [0u8; 4];
        kind.copy_from_slice(&bytes[0..4]);
        if kind != CHUNK_KIND && kind != CODE_TABLE_KIND {
            return None;
        }
        if checksum(&bytes[0..32]) != u64_at(bytes, 32) {
            return None;
        }
        let codec = match u32_at(bytes, 20) {
            0 => Codec::Stored,
            1 => Codec::Zstd,
            _ => return None,
        };
        let header = Self {
            kind,
            payload_len: u32_at(bytes, 4),
            index: u32_at(bytes, 8),
            count: u32_at(bytes, 12),
            raw_len: u32_at(bytes, 16),
            codec,
            payload_xxh3: u64_at(bytes, 24),
        };
        if codec == Codec::Stored && header.raw_len != header.payload_len {
            return None;
        }
        Some(header)
    }
}

/// The footer, the last [`FOOTER_LEN`] bytes of a complete file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footer {
    pub code_table_offset: u64,
    pub code_table_len: u64,
    pub code_table_xxh3: u64,
    pub chunk_count: u64,
    pub record_count: u64,
}

impl Footer {
    pub fn encode(self) -> [u8; FOOTER_LEN] {
        let mut out = [0u8; FOOTER_LEN];
        out[0..8].copy_from_slice(&self.code_table_offset.to_le_bytes());
        out[8..16].copy_from_slice(&self.code_table_len.to_le_bytes());
        out[16..24].copy_from_slice(&self.code_table_xxh3.to_le_bytes());
        out[24..32].copy_from_slice(&self.chunk_count.to_le_bytes());
        out[32..40].copy_from_slice(&self.record_count.to_le_bytes());
        let sum = checksum(&out[0..40]);
        out[40..48].copy_from_slice(&sum.to_le_bytes());
        out[48..56].copy_from_slice(&END_MAGIC);
        out
    }

    /// Decodes a footer, or says what is wrong with it.
    pub fn decode(bytes: &[u8; FOOTER_LEN]) -> Result<Self, &'static str> {
        if bytes[48..56] != END_MAGIC {
            return Err("bad end magic");
        }
        if checksum(&bytes[0..40]) != u64_at(bytes, 40) {
            return Err("checksum mismatch");
        }
        Ok(Self {
            code_table_offset: u64_at(bytes, 0),
            code_table_len: u64_at(bytes, 8),
            code_table_xxh3: u64_at(bytes, 16),
            chunk_count: u64_at(bytes, 24),
            record_count: u64_at(bytes, 32),
        })
    }
}

/// The fixed-size array at `bytes[at..at + N]`, or `None` if it is out of bounds.
pub(crate) fn array_at<const N: usize>(bytes: &[u8], at: usize) -> Option<&[u8; N]> {
    let end = at.checked_add(N)?;
    bytes.get(at..end)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_parts_round_trip() {
        let h = FileHeader {
            header_len: 77,
            header_xxh3: 5,
        };
        let bytes = h.encode();
        assert_eq!(bytes[0..8], MAGIC);
        assert_eq!(FileHeader::decode(&bytes), Some(h));
        let b = BlockHeader {
            kind: CHUNK_KIND,
            payload_len: 64,
            index: 3,
            count: 2,
            raw_len: 100,
            codec: Codec::Zstd,
            payload_xxh3: 9,
        };
        assert_eq!(BlockHeader::decode(&b.encode()), Some(b));
        let stored = BlockHeader {
            raw_len: 64,
            codec: Codec::Stored,
            ..b
        };
        assert_eq!(BlockHeader::decode(&stored.encode()), Some(stored));
        let wrong = BlockHeader {
            codec: Codec::Stored,
            ..b
        };
        assert_eq!(BlockHeader::decode(&wrong.encode()), None);
        let f = Footer {
            code_table_offset: 1,
            code_table_len: 2,
            code_table_xxh3: 3,
            chunk_count: 4,
            record_count: 5,
        };
        assert_eq!(Footer::decode(&f.encode()), Ok(f));
    }

    #[test]
    fn every_bit_of_the_fixed_parts_is_checked() {
        let h = FileHeader {
            header_len: 77,
            header_xxh3: 5,
        }
        .encode();
        // Bytes 0..12 (magic, version) are checked by value by the reader.
        for bit in 12 * 8..FILE_HEADER_LEN * 8 {
            let mut x = h;
            x[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(FileHeader::decode(&x), None, "bit {bit}");
        }
        let b = BlockHeader {
            kind: CODE_TABLE_KIND,
            payload_len: 64,
            index: 3,
            count: 2,
            raw_len: 64,
            codec: Codec::Stored,
            payload_xxh3: 9,
        }
        .encode();
        for bit in 0..BLOCK_HEADER_LEN * 8 {
            let mut x = b;
            x[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(BlockHeader::decode(&x), None, "bit {bit}");
        }
        let f = Footer {
            code_table_offset: 1,
            code_table_len: 2,
            code_table_xxh3: 3,
            chunk_count: 4,
            record_count: 5,
        }
        .encode();
        for bit in 0..FOOTER_LEN * 8 {
            let mut x = f;
            x[bit / 8] ^= 1 << (bit % 8);
            assert!(Footer::decode(&x).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn align_and_array_at_never_overflow() {
        assert_eq!(align_up(0), Some(0));
        assert_eq!(align_up(1), Some(8));
        assert_eq!(align_up(16), Some(16));
        assert_eq!(align_up(usize::MAX), None);
        assert_eq!(array_at::<4>(&[1, 2, 3], 0), None);
        assert_eq!(array_at::<2>(&[1, 2, 3], 1), Some(&[2, 3]));
        assert_eq!(array_at::<2>(&[1, 2, 3], usize::MAX), None);
    }
}
