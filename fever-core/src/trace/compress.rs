//! Chunk compression: each chunk's record stream is one zstd frame, or stored as is when
//! compressing would not make it smaller.
//!
//! Measured on the 541 MB record stream of more-itertools' test suite (6.1 M events;
//! `FEVER_TRACE=PATH cargo bench -p fever-core --bench trace`): LZ4 (`lz4_flex`) leaves 155 MB at
//! any chunk size; zstd level 1 leaves 58 MB with 1 MiB chunks and 56 MB with 4 MiB ones; level 3
//! with 4 MiB chunks leaves 30 MB, since its window reaches back 2 MB. Level 1 with a 4 MiB
//! window (a whole chunk) keeps most of that: on the 548 MB stream of the same suite (10.5.0,
//! 6.2 M events, 4 MiB chunks, a loaded 2-core machine) 33.2 MB at 540 to 680 MB/s against level
//! 3's 31.7 MB at 410 MB/s, so the drain thread, which competes with the program for the cores,
//! spends about a third less time compressing for 5% more bytes.
//!
//! Level -1 (fast, no Huffman literals) then costs the drain thread fewer instructions per call:
//! callgrind on recursive fib (`--snapshots none --max-calls-per-function 0`, difference between
//! 150 k and 1.03 M calls) gives levels 1 / -1 / -3 / -5 243 / 206 / 188 / 142 drain-thread
//! instructions per call (219 / 182 / 164 / 116 in zstd) for fib traces of 3.75 / 4.36 / 4.64
//! / 5.20 B per call, and `fever record` traces of more-itertools 10.5.0's suite (491 k calls)
//! of 25.2 / 30.7 / 49.7 / 71.1 MB (51 / 62 / 101 / 145 B per call). -1 keeps sizes far below
//! the 200 B per call goal; -5 would halve zstd's share for almost three times the bytes.

use super::format::Codec;

/// zstd level and window (log2 of its size in bytes; see the module docs).
const LEVEL: i32 = -1;
const WINDOW_LOG: u32 = 22;

/// The writer's compressor, kept across chunks to reuse its context.
pub(crate) struct Compressor {
    zstd: Option<zstd::bulk::Compressor<'static>>,
}

impl Compressor {
    pub fn new() -> Self {
        Self {
            zstd: zstd::bulk::Compressor::new(LEVEL).ok().and_then(|mut z| {
                z.set_parameter(zstd::zstd_safe::CParameter::WindowLog(WINDOW_LOG))
                    .ok()?;
                Some(z)
            }),
        }
    }

    /// How to store `raw`: [`Codec::Zstd`] with the compressed bytes in `out` when that is
    /// smaller, else [`Codec::Stored`] (`out` is then meaningless).
    pub fn compress(&mut self, raw: &[u8], out: &mut Vec<u8>) -> Codec {
        let Some(zstd) = self.zstd.as_mut() else {
            return Codec::Stored;
        };
        out.clear();
        out.reserve(zstd::zstd_safe::compress_bound(raw.len()));
        match zstd.compress_to_buffer(raw, out) {
            Ok(n) if n < raw.len() => Codec::Zstd,
            _ => Codec::Stored,
        }
    }
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor").finish_non_exhaustive()
    }
}

/// Puts the `raw_len` bytes `payload` decompresses to in `out` (replacing what it held), or
/// says what is wrong. Decompresses in one call into `out`'s memory, after checking that the
/// frame says it holds `raw_len` bytes, so a lying `raw_len` allocates nothing.
pub(crate) fn decompress_into(
    codec: Codec,
    payload: &[u8],
    raw_len: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    out.clear();
    match codec {
        Codec::Stored => {
            out.extend_from_slice(payload);
            Ok(())
        }
        Codec::Zstd => {
            if zstd::zstd_safe::find_frame_compressed_size(payload) != Ok(payload.len()) {
                return Err("not exactly one zstd frame".into());
            }
            match zstd::zstd_safe::get_frame_content_size(payload) {
                Ok(Some(n)) if n == raw_len as u64 => {}
                Ok(Some(n)) => {
                    return Err(format!(
                        "decompresses to {n} bytes, the chunk header says {raw_len}"
                    ))
                }
                _ => return Err("the zstd frame does not say its decompressed size".into()),
            }
            out.reserve_exact(raw_len);
            let got = zstd::bulk::Decompressor::new()
                .and_then(|mut d| d.decompress_to_buffer(payload, out))
                .map_err(|e| format!("cannot decompress: {e}"))?;
            if got == raw_len {
                Ok(())
            } else {
                Err(format!(
                    "decompresses to {got} bytes, the chunk header says {raw_len}"
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_incompressible_data_is_stored() {
        let mut c = Compressor::new();
        let raw = vec![7u8; 10_000];
        let mut stored = Vec::new();
        let codec = c.compress(&raw, &mut stored);
        assert_eq!(codec, Codec::Zstd);
        assert!(stored.len() < 100);
        let mut out = vec![1];
        decompress_into(codec, &stored, raw.len(), &mut out).unwrap();
        assert_eq!(out, raw);
        // A wrong length either way is an error.
        for wrong in [raw.len() - 1, raw.len() + 1] {
            assert!(decompress_into(codec, &stored, wrong, &mut Vec::new()).is_err());
        }
        assert!(
            decompress_into(codec, &stored[..stored.len() - 1], 10_000, &mut Vec::new()).is_err()
        );
        let tiny = [1u8, 2, 3];
        assert_eq!(c.compress(&tiny, &mut Vec::new()), Codec::Stored);
    }

    #[test]
    fn a_lying_length_does_not_allocate_it() {
        let mut c = Compressor::new();
        let raw = vec![0u8; 1000];
        let mut stored = Vec::new();
        c.compress(&raw, &mut stored);
        let mut out = Vec::new();
        assert!(decompress_into(Codec::Zstd, &stored, u32::MAX as usize, &mut out).is_err());
        assert!(out.capacity() < 1 << 20);
        assert!(decompress_into(Codec::Zstd, b"garbage", 7, &mut out).is_err());
    }
}
