//! Framing of control messages: `[len: u32 LE][version: u8][tag: u8][body]`, where `len`
//! counts the payload (version, tag, body) and never exceeds [`MAX_MESSAGE`].

use std::io::{ErrorKind, Read, Write};

use super::ControlError;

/// The protocol version this fever speaks; a payload with another version is refused.
pub const PROTOCOL_VERSION: u8 = 2;

/// Largest payload accepted (snapshots are bounded; 16 MiB leaves room for many locals).
pub const MAX_MESSAGE: usize = 16 << 20;

/// Writes one frame holding `tag` and `body` (prefixed with [`PROTOCOL_VERSION`]).
pub fn write_frame(out: &mut impl Write, tag: u8, body: &[u8]) -> Result<(), ControlError> {
    let len = body.len() + 2;
    if len > MAX_MESSAGE {
        return Err(ControlError::TooLarge(len as u64));
    }
    let mut frame = Vec::with_capacity(len + 4);
    frame.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
    frame.push(PROTOCOL_VERSION);
    frame.push(tag);
    frame.extend_from_slice(body);
    out.write_all(&frame)?;
    out.flush()?;
    Ok(())
}

/// Reads one frame; returns its tag and body. The version is checked after the whole payload
/// was read, so a message of an unknown version leaves the stream usable.
pub fn read_frame(input: &mut impl Read) -> Result<(u8, Vec<u8>), ControlError> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(err) if err.kind() == ErrorKind::UnexpectedEof => return Err(ControlError::Closed),
        Err(err) => return Err(err.into()),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_MESSAGE {
        return Err(ControlError::TooLarge(len as u64));
    }
    let mut payload = vec![0u8; len];
    input.read_exact(&mut payload)?;
    match payload.as_slice() {
        [] | [_] => Err(ControlError::Malformed(format!(
            "a payload of {len} bytes has no room for its version and tag"
        ))),
        [version, ..] if *version != PROTOCOL_VERSION => Err(ControlError::Version(*version)),
        [_, tag, ..] => {
            let tag = *tag;
            payload.drain(..2);
            Ok((tag, payload))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips() {
        let mut buf = Vec::new();
        write_frame(&mut buf, 7, b"hello").unwrap();
        assert_eq!(&buf[..4], &7u32.to_le_bytes());
        let (tag, body) = read_frame(&mut buf.as_slice()).unwrap();
        assert_eq!((tag, body.as_slice()), (7, &b"hello"[..]));
    }

    #[test]
    fn an_oversized_length_is_refused_before_reading_it() {
        let buf = u32::MAX.to_le_bytes();
        assert!(matches!(
            read_frame(&mut buf.as_slice()),
            Err(ControlError::TooLarge(_))
        ));
        let body = vec![0u8; MAX_MESSAGE];
        assert!(matches!(
            write_frame(&mut Vec::new(), 1, &body),
            Err(ControlError::TooLarge(_))
        ));
    }

    #[test]
    fn short_empty_and_foreign_frames_are_errors() {
        assert!(matches!(
            read_frame(&mut &[][..]),
            Err(ControlError::Closed)
        ));
        assert!(matches!(
            read_frame(&mut &[5, 0][..]),
            Err(ControlError::Closed)
        ));
        let cut = [9, 0, 0, 0, 1, 2];
        assert!(matches!(
            read_frame(&mut &cut[..]),
            Err(ControlError::Io(_))
        ));
        assert!(matches!(
            read_frame(&mut &[1, 0, 0, 0, 1][..]),
            Err(ControlError::Malformed(_))
        ));
        let mut other = Vec::new();
        other.extend_from_slice(&3u32.to_le_bytes());
        other.extend_from_slice(&[PROTOCOL_VERSION + 1, 1, 0]);
        other.extend_from_slice(&3u32.to_le_bytes());
        other.extend_from_slice(&[PROTOCOL_VERSION, 1, 0]);
        let mut input = other.as_slice();
        let err = read_frame(&mut input).unwrap_err();
        assert!(matches!(err, ControlError::Version(_)) && !err.is_fatal());
        // The stream is still usable after a message of another version.
        assert_eq!(read_frame(&mut input).unwrap(), (1, vec![0]));
    }
}
