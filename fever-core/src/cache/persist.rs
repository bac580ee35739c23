//! The call cache on disk (`fever watch --persist-cache`): a ring file (see [`crate::ring`])
//! under `.fever/cache/` whose records are cache entries with their results as snapshots.
//!
//! A record is the xxh3 checksum of the rest (8 bytes, little-endian) followed by an
//! rkyv-serialized [`StoredCall`]. [`load`] validates everything — the ring framing, every
//! checksum, the rkyv archive — and rejects the whole file at the first inconsistency: a cache
//! is only worth trusting when all of it is intact, and dropping it costs one slow run.

use std::path::Path;

use rkyv::rancor;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::ring::{ReadOutcome, RingError, RingReader, RingWriter};

/// File name of the cache ring in the cache directory.
pub const FILE_NAME: &str = "calls.ring";

/// One function a stored call reached, by name, and the code hash it had.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ReachedCode {
    pub file: String,
    pub qualname: String,
    pub hash: u64,
}

/// A cached call as the cache file keeps it.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct StoredCall {
    /// Content hash of the called function's code.
    pub code: u64,
    /// Structural hash of its arguments.
    pub args: u64,
    /// Qualified name, for messages.
    pub name: String,
    /// Every project function the call reached.
    pub reached: Vec<ReachedCode>,
    /// How long the real call took.
    pub cost_ns: u64,
    /// Estimated memory of the result.
    pub bytes: u64,
    pub printed: bool,
    pub wrote_files: bool,
    /// The result's snapshot (fever-core's snapshot encoding, faithful).
    pub result: Vec<u8>,
}

/// Why a cache file was not used.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error(transparent)]
    Ring(#[from] RingError),
    #[error("record {0} is damaged ({1})")]
    Damaged(u64, &'static str),
    #[error("the file lost {0} records while it was read")]
    Lost(u64),
}

/// The record for `call`.
pub fn encode(call: &StoredCall) -> Vec<u8> {
    let archived = rkyv::to_bytes::<rancor::Error>(call)
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let mut record = Vec::with_capacity(8 + archived.len());
    record.extend_from_slice(&xxh3_64(&archived).to_le_bytes());
    record.extend_from_slice(&archived);
    record
}

/// The call in `record`, validated.
pub fn decode(record: &[u8], sequence: u64) -> Result<StoredCall, PersistError> {
    let (sum, body) = record
        .split_at_checked(8)
        .ok_or(PersistError::Damaged(sequence, "too short"))?;
    let mut expected = [0u8; 8];
    expected.copy_from_slice(sum);
    if u64::from_le_bytes(expected) != xxh3_64(body) {
        return Err(PersistError::Damaged(sequence, "checksum mismatch"));
    }
    let mut aligned = AlignedVec::<16>::with_capacity(body.len());
    aligned.extend_from_slice(body);
    let archived = rkyv::access::<ArchivedStoredCall, rancor::Error>(&aligned)
        .map_err(|_| PersistError::Damaged(sequence, "not a cache entry"))?;
    rkyv::deserialize::<StoredCall, rancor::Error>(archived)
        .map_err(|_| PersistError::Damaged(sequence, "not a cache entry"))
}

/// Every call stored in the cache file at `path`, oldest first. A missing file is an empty
/// cache; anything else that is not an intact cache file is an error.
pub fn load(path: &Path) -> Result<Vec<StoredCall>, PersistError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut reader = RingReader::open(path)?;
    let mut calls = Vec::new();
    let mut buf = Vec::new();
    loop {
        match reader.next_record(&mut buf)? {
            ReadOutcome::Record(sequence) => calls.push(decode(&buf, sequence)?),
            ReadOutcome::Empty => return Ok(calls),
            ReadOutcome::Lost(n) => return Err(PersistError::Lost(n)),
        }
    }
}

/// The cache file being written: starts afresh (replacing any old file atomically) with the
/// calls worth keeping, then takes each new one.
pub struct CacheFile {
    writer: RingWriter,
}

impl CacheFile {
    /// Creates the cache file at `path` with room for `capacity` bytes (rounded up to a power
    /// of two) and writes `calls` into it.
    pub fn create(path: &Path, capacity: u64, calls: &[StoredCall]) -> Result<Self, RingError> {
        let capacity = capacity
            .clamp(crate::ring::MIN_CAPACITY, crate::ring::MAX_CAPACITY)
            .next_power_of_two();
        let mut file = Self {
            // Sparse: start-up costs what the file holds, not its capacity.
            writer: RingWriter::create_sparse(path, capacity)?.publish_every(1),
        };
        for call in calls {
            file.append(call);
        }
        Ok(file)
    }

    /// Adds `call` (the oldest records go when the file is full); false when it is larger than
    /// a record may be.
    pub fn append(&mut self, call: &StoredCall) -> bool {
        let pushed = self.writer.push(&encode(call)).is_some();
        self.writer.flush();
        pushed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(n: u64) -> StoredCall {
        StoredCall {
            code: n,
            args: n * 7,
            name: format!("load_{n}"),
            reached: vec![ReachedCode {
                file: "/p/app.py".into(),
                qualname: "load".into(),
                hash: 42,
            }],
            cost_ns: 1_500_000_000,
            bytes: 100,
            printed: n.is_multiple_of(2),
            wrote_files: false,
            result: vec![1, 2, 3, u8::try_from(n).unwrap_or(0)],
        }
    }

    #[test]
    fn round_trip_and_restart() {
        let dir = std::env::temp_dir().join(format!("fever-persist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(FILE_NAME);
        assert!(load(&path).unwrap().is_empty(), "no file is an empty cache");
        let mut file = CacheFile::create(&path, 4096, &[call(1)]).unwrap();
        assert!(file.append(&call(2)));
        drop(file);
        assert_eq!(load(&path).unwrap(), vec![call(1), call(2)]);
        // A restart rewrites the file with what it keeps.
        drop(CacheFile::create(&path, 4096, &[call(2)]).unwrap());
        assert_eq!(load(&path).unwrap(), vec![call(2)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn damage_is_an_error_never_a_panic() {
        let dir = std::env::temp_dir().join(format!("fever-persist-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(FILE_NAME);
        std::fs::write(&path, b"garbage").unwrap();
        assert!(load(&path).is_err());
        drop(CacheFile::create(&path, 4096, &[call(1), call(2)]).unwrap());
        let clean = std::fs::read(&path).unwrap();
        // Flip every byte of the data area in turn (outside the header, which the ring checks).
        for i in (256..clean.len()).step_by(7) {
            let mut bytes = clean.clone();
            bytes[i] ^= 0x5a;
            std::fs::write(&path, &bytes).unwrap();
            if let Ok(calls) = load(&path) {
                // Only padding or unused space was hit.
                assert_eq!(calls, vec![call(1), call(2)], "byte {i}");
            }
        }
        assert!(decode(&encode(&call(3))[..5], 0).is_err());
        let mut record = encode(&call(3));
        let last = record.len() - 1;
        record[last] ^= 1;
        assert!(decode(&record, 0).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
