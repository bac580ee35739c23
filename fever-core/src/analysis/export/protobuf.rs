//! The protocol buffers wire format, as much as the Perfetto export needs: varint and
//! length-delimited fields, and nested messages
//! (<https://protobuf.dev/programming-guides/encoding/>).

/// Wire type of `uint32`, `uint64`, `int32`, `int64`, `bool` and enums.
const VARINT: u32 = 0;
/// Wire type of `string`, `bytes` and nested messages.
const LEN: u32 = 2;

/// Appends `value` as a base-128 varint.
#[allow(clippy::cast_possible_truncation)] // each byte is masked to 7 bits first
pub(super) fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

/// A message being encoded; reused (see [`clear`](Self::clear)) so encoding allocates only
/// while the largest message grows the buffer.
#[derive(Debug, Default)]
pub(super) struct Message {
    buf: Vec<u8>,
    /// Scratch space for the key and length of a nested message.
    head: Vec<u8>,
}

impl Message {
    /// Empties the message, keeping its buffers.
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// The encoded bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    fn key(&mut self, field: u32, wire_type: u32) {
        put_varint(&mut self.buf, u64::from(field << 3 | wire_type));
    }

    /// A varint field: unsigned integer, enum, bool, or a non-negative `int32`/`int64`.
    pub fn uint(&mut self, field: u32, value: u64) {
        self.key(field, VARINT);
        put_varint(&mut self.buf, value);
    }

    /// A `string` field.
    pub fn string(&mut self, field: u32, value: &str) {
        self.key(field, LEN);
        put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(value.as_bytes());
    }

    /// A nested message field whose fields `body` writes.
    pub fn message(&mut self, field: u32, body: impl FnOnce(&mut Self)) {
        let start = self.buf.len();
        body(self);
        let len = self.buf.len() - start;
        let mut head = std::mem::take(&mut self.head);
        head.clear();
        put_varint(&mut head, u64::from(field << 3 | LEN));
        put_varint(&mut head, len as u64);
        // Messages are small (one trace packet), so shifting the body is cheap: the head goes
        // at the end, and a rotation brings it before the body.
        self.buf.extend_from_slice(&head);
        self.buf[start..].rotate_right(head.len());
        self.head = head;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_the_protobuf_documentation() {
        // Examples from the encoding guide: 150 in field 1 is 08 96 01; "testing" in field 2
        // is 12 07 74 65 73 74 69 6e 67; a message with field 1 = 150 in field 3 is 1a 03 08 96 01.
        let mut m = Message::default();
        m.uint(1, 150);
        assert_eq!(m.bytes(), [0x08, 0x96, 0x01]);
        m.clear();
        m.string(2, "testing");
        assert_eq!(m.bytes(), b"\x12\x07testing");
        m.clear();
        m.message(3, |m| m.uint(1, 150));
        assert_eq!(m.bytes(), [0x1a, 0x03, 0x08, 0x96, 0x01]);
        m.clear();
        m.message(1, |m| m.message(2, |_| {}));
        assert_eq!(m.bytes(), [0x0a, 0x02, 0x12, 0x00]);
    }

    #[test]
    fn varints_cover_every_width() {
        let mut buf = Vec::new();
        put_varint(&mut buf, u64::MAX);
        assert_eq!(buf.len(), 10);
        assert_eq!(buf[9], 1);
        buf.clear();
        put_varint(&mut buf, 0);
        assert_eq!(buf, [0]);
    }
}
