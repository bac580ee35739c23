//! The primitive encoding of message bodies: fixed-width little-endian integers, booleans as
//! one byte, byte strings and strings prefixed with their `u32` length, lists prefixed with
//! their `u32` count. [`Reader`] checks every length against what is left, so no input can make
//! it allocate more than the frame holds or read past its end.

use super::ControlError;

/// Appends primitives to a body.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.buf.extend_from_slice(v);
        self
    }

    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    pub fn count(&mut self, n: usize) -> &mut Self {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX))
    }
}

/// Reads primitives from a body.
pub struct Reader<'a> {
    rest: &'a [u8],
}

fn malformed(what: &str) -> ControlError {
    ControlError::Malformed(what.to_owned())
}

impl<'a> Reader<'a> {
    pub fn new(body: &'a [u8]) -> Self {
        Self { rest: body }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ControlError> {
        if self.rest.len() < n {
            return Err(malformed(&format!(
                "{what} runs past the end of the message"
            )));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub fn u8(&mut self, what: &str) -> Result<u8, ControlError> {
        Ok(self.take(1, what)?[0])
    }

    pub fn bool(&mut self, what: &str) -> Result<bool, ControlError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(malformed(&format!("{what} is {other}, not a boolean"))),
        }
    }

    pub fn u32(&mut self, what: &str) -> Result<u32, ControlError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i32(&mut self, what: &str) -> Result<i32, ControlError> {
        let b = self.take(4, what)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self, what: &str) -> Result<u64, ControlError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub fn bytes(&mut self, what: &str) -> Result<Vec<u8>, ControlError> {
        let n = self.u32(what)? as usize;
        Ok(self.take(n, what)?.to_vec())
    }

    pub fn str(&mut self, what: &str) -> Result<String, ControlError> {
        String::from_utf8(self.bytes(what)?).map_err(|_| malformed(&format!("{what} is not UTF-8")))
    }

    /// A list's item count, refused when even one byte per item would not fit.
    pub fn count(&mut self, what: &str) -> Result<usize, ControlError> {
        let n = self.u32(what)? as usize;
        if n > self.rest.len() {
            return Err(malformed(&format!("{what} announces {n} items")));
        }
        Ok(n)
    }

    /// Fails unless every byte was read.
    pub fn end(&self) -> Result<(), ControlError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(malformed(&format!(
                "{} bytes left over after the message",
                self.rest.len()
            )))
        }
    }
}
