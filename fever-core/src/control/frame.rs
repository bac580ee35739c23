//! Framing of control messages: `[len: u32 LE][version: u8][tag: u8][body]`, where `len`
//! counts the payload (version, tag, body) and never exceeds [`MAX_MESSAGE`]. Frames are read
//! from a blocking reader ([`read_frame`]) or split out of the bytes received so far
//! ([`split_frames`]).

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
    tag_and_body(&payload)
}

/// Takes the whole frames at the start of `buffer` out of it, each as its tag and body (or the
/// error [`read_frame`] would give for it), and leaves the bytes of a frame not all there yet
/// for the next call: a reader that gets bytes as they come (a non-blocking socket) appends
/// them to `buffer` and calls this. After an oversized length, the last item, the stream
/// cannot be trusted: `buffer` is emptied.
pub fn split_frames(buffer: &mut Vec<u8>) -> Vec<Result<(u8, Vec<u8>), ControlError>> {
    let mut frames = Vec::new();
    let mut start = 0;
    while let Some(len) = buffer
        .get(start..start + 4)
        .map(|len| u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize)
    {
        if len > MAX_MESSAGE {
            frames.push(Err(ControlError::TooLarge(len as u64)));
            buffer.clear();
            return frames;
        }
        let Some(payload) = buffer.get(start + 4..start + 4 + len) else {
            break;
        };
        frames.push(tag_and_body(payload));
        start += 4 + len;
    }
    buffer.drain(..start);
    frames
}

/// A payload's tag and body, once its version was checked.
fn tag_and_body(payload: &[u8]) -> Result<(u8, Vec<u8>), ControlError> {
    match payload {
        [] | [_] => Err(ControlError::Malformed(format!(
            "a payload of {} bytes has no room for its version and tag",
            payload.len()
        ))),
        [version, ..] if *version != PROTOCOL_VERSION => Err(ControlError::Version(*version)),
        [_, tag, body @ ..] => Ok((*tag, body.to_vec())),
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

    #[test]
    fn whole_frames_are_split_out_and_a_partial_one_waits() {
        let mut stream = Vec::new();
        write_frame(&mut stream, 1, b"one").unwrap();
        write_frame(&mut stream, 2, b"").unwrap();
        write_frame(&mut stream, 3, b"three").unwrap();
        // Fed a byte at a time, then the rest at once: the same frames, in order.
        let mut buffer = Vec::new();
        let mut frames = Vec::new();
        for &byte in &stream[..9] {
            buffer.push(byte);
            frames.extend(split_frames(&mut buffer));
        }
        assert_eq!(frames.len(), 1);
        assert!(buffer.is_empty());
        buffer.extend_from_slice(&stream[9..stream.len() - 1]);
        frames.extend(split_frames(&mut buffer));
        assert_eq!(frames.len(), 2);
        assert_eq!(buffer.len(), 4 + 2 + 5 - 1);
        buffer.push(*stream.last().unwrap());
        frames.extend(split_frames(&mut buffer));
        assert!(buffer.is_empty());
        let frames: Vec<_> = frames.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            frames,
            [
                (1, b"one".to_vec()),
                (2, Vec::new()),
                (3, b"three".to_vec())
            ]
        );
    }

    #[test]
    fn split_frames_reports_bad_frames_like_read_frame() {
        let mut buffer = Vec::new();
        buffer.extend_from_slice(&1u32.to_le_bytes());
        buffer.push(PROTOCOL_VERSION);
        buffer.extend_from_slice(&3u32.to_le_bytes());
        buffer.extend_from_slice(&[PROTOCOL_VERSION + 1, 1, 0]);
        write_frame(&mut buffer, 4, b"ok").unwrap();
        let frames = split_frames(&mut buffer);
        assert!(matches!(frames[0], Err(ControlError::Malformed(_))));
        assert!(matches!(frames[1], Err(ControlError::Version(_))));
        assert_eq!(frames[2].as_ref().unwrap(), &(4, b"ok".to_vec()));
        assert!(buffer.is_empty());
        // An oversized length ends the stream: nothing after it is read.
        buffer.extend_from_slice(&u32::MAX.to_le_bytes());
        write_frame(&mut buffer, 5, b"").unwrap();
        let frames = split_frames(&mut buffer);
        assert!(matches!(frames[..], [Err(ControlError::TooLarge(_))]));
        assert!(buffer.is_empty());
    }
}
