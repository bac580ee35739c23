//! LEB128 varints and zigzag codes: the one number encoding of snapshots and trace streams.
//! Reading is strict (at most 10 bytes, no overflow, no redundant trailing zero byte), so every
//! value has exactly one encoding and untrusted bytes never panic.

/// Why bytes are not a canonical varint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarintError {
    /// The bytes end inside the number.
    End,
    /// The value does not fit in 64 bits.
    Overflow,
    /// A redundant trailing zero byte (a second encoding of a shorter number).
    Overlong,
    /// More than 10 bytes.
    TooLong,
}

/// Appends `v` as an unsigned LEB128 varint (1 to 10 bytes).
#[inline]
#[allow(clippy::cast_possible_truncation)] // 7 bits at a time
pub fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads the varint at `bytes[*at..]` and moves `at` past it (also past the bytes read when it
/// fails, which callers use only for error offsets).
#[inline]
pub fn read(bytes: &[u8], at: &mut usize) -> Result<u64, VarintError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at).ok_or(VarintError::End)?;
        *at += 1;
        let bits = u64::from(b & 0x7f);
        if shift == 63 && bits > 1 {
            return Err(VarintError::Overflow);
        }
        value |= bits << shift;
        if b & 0x80 == 0 {
            if b == 0 && shift > 0 {
                return Err(VarintError::Overlong);
            }
            return Ok(value);
        }
    }
    Err(VarintError::TooLong)
}

/// Zigzag: small negative numbers become small unsigned ones.
#[inline]
#[allow(clippy::cast_sign_loss)] // a bit-pattern reinterpretation
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag`].
#[inline]
#[allow(clippy::cast_possible_wrap)] // a bit-pattern reinterpretation
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_the_edges() {
        for v in [
            0,
            1,
            127,
            128,
            300,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put(&mut out, v);
            let mut at = 0;
            assert_eq!(read(&out, &mut at), Ok(v));
            assert_eq!(at, out.len());
        }
        for v in [0, 1, -1, i64::MAX, i64::MIN, 12345, -12345] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn refuses_what_is_not_canonical() {
        let read_all = |bytes: &[u8]| read(bytes, &mut 0);
        assert_eq!(read_all(&[]), Err(VarintError::End));
        assert_eq!(read_all(&[0x80]), Err(VarintError::End));
        assert_eq!(read_all(&[0x80, 0x00]), Err(VarintError::Overlong));
        let mut too_big = vec![0xff; 9];
        too_big.push(0x02);
        assert_eq!(read_all(&too_big), Err(VarintError::Overflow));
        assert_eq!(read_all(&[0x80; 11]), Err(VarintError::TooLong));
    }
}
