//! [`decode`]: snapshot bytes (untrusted: they come from a trace file) to a [`Value`] tree.
//!
//! Every length is checked against the bytes that remain before anything is allocated, every
//! item consumes at least one byte, nesting is capped at [`MAX_NESTING`], and only canonical
//! encodings are accepted (one encoding per value, so re-encoding gives the same bytes back).

use super::format::{content, tag, unzigzag, Reader, VERSION};
use super::kinds::{BytesKind, ObjectKind, RefKind};
use super::value::{Array, ArrayData, Blob, Exception, Fields, Map, Object, Seq, Text, Value};

/// Deepest nesting of containers [`decode`] accepts (the tracer's depth limit stays below).
pub const MAX_NESTING: usize = 64;

/// Why snapshot bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The bytes end in the middle of a value.
    #[error("snapshot ends early")]
    UnexpectedEnd,
    /// The first byte is not a known encoding version.
    #[error("unknown snapshot version {0}")]
    BadVersion(u8),
    /// A byte where a value should start is not a value tag.
    #[error("invalid snapshot at byte {offset}: unknown tag {tag:#04x}")]
    BadTag {
        /// The byte.
        tag: u8,
        /// Its offset.
        offset: usize,
    },
    /// Something else is wrong at `offset`.
    #[error("invalid snapshot at byte {offset}: {what}")]
    Invalid {
        /// What is wrong.
        what: &'static str,
        /// Where.
        offset: usize,
    },
    /// Containers nest deeper than [`MAX_NESTING`].
    #[error("snapshot nests deeper than {MAX_NESTING} levels")]
    TooDeep,
    /// Bytes follow the root value.
    #[error("{0} bytes after the end of the snapshot")]
    TrailingBytes(usize),
}

/// Decodes a whole snapshot (version byte, one root value, nothing after it).
pub fn decode(bytes: &[u8]) -> Result<Value, SnapshotError> {
    let mut reader = Reader::new(bytes);
    let version = reader.u8()?;
    if version != VERSION {
        return Err(SnapshotError::BadVersion(version));
    }
    let root = if reader.peek()? == tag::ARGS {
        reader.u8()?;
        Value::Args(fields(&mut reader, 1)?)
    } else {
        value(&mut reader, 0)?
    };
    match reader.remaining() {
        0 => Ok(root),
        n => Err(SnapshotError::TrailingBytes(n)),
    }
}

/// One value; `depth` containers enclose it.
pub(super) fn value(r: &mut Reader<'_>, depth: usize) -> Result<Value, SnapshotError> {
    let offset = r.offset();
    let t = r.u8()?;
    Ok(match t {
        tag::NONE => Value::None,
        tag::FALSE => Value::Bool(false),
        tag::TRUE => Value::Bool(true),
        tag::INT => Value::Int(unzigzag(r.varint()?)),
        tag::BIG_INT => big_int(r)?,
        tag::FLOAT => Value::Float(f64::from_bits(r.u64_le()?)),
        tag::COMPLEX => Value::Complex {
            re: f64::from_bits(r.u64_le()?),
            im: f64::from_bits(r.u64_le()?),
        },
        tag::STR | tag::STR_TRUNCATED => Value::Str(text_after_tag(r, t)?),
        tag::BYTES => Value::Bytes {
            kind: bytes_kind(r)?,
            blob: {
                let len = r.varint()?;
                Blob::Data(r.take(len)?.to_vec())
            },
        },
        tag::BYTES_HASHED => Value::Bytes {
            kind: bytes_kind(r)?,
            blob: Blob::Hashed {
                len: r.varint()?,
                hash: r.u64_le()?,
            },
        },
        tag::LIST | tag::TUPLE | tag::SET | tag::FROZENSET => {
            let items = seq(r, depth + 1)?;
            match t {
                tag::LIST => Value::List(items),
                tag::TUPLE => Value::Tuple(items),
                tag::SET => Value::Set(items),
                _ => Value::FrozenSet(items),
            }
        }
        tag::DICT => Value::Dict(map(r, depth + 1)?),
        tag::OBJECT => Value::Object(object(r, depth + 1)?),
        tag::EXCEPTION => Value::Exception(exception(r, depth + 1)?),
        tag::ARRAY => Value::Array(array(r)?),
        tag::REF => {
            let kind =
                RefKind::from_byte(r.u8()?).ok_or_else(|| r.invalid("unknown reference kind"))?;
            Value::Ref {
                kind,
                module: r.str()?.to_owned(),
                qualname: r.str()?.to_owned(),
            }
        }
        tag::REPR => {
            let type_name = r.str()?.to_owned();
            Value::Repr {
                type_name,
                text: text(r)?,
            }
        }
        tag::UNREPRESENTABLE => Value::Unrepresentable {
            type_name: r.str()?.to_owned(),
        },
        tag::OPAQUE => Value::Opaque {
            type_name: r.str()?.to_owned(),
        },
        tag::DEPTH_LIMIT => Value::DepthLimit {
            type_name: r.str()?.to_owned(),
        },
        tag::CYCLE => Value::Cycle {
            levels: r.varint()?,
        },
        _ => return Err(SnapshotError::BadTag { tag: t, offset }),
    })
}

pub(super) fn check_depth(depth: usize) -> Result<(), SnapshotError> {
    if depth > MAX_NESTING {
        Err(SnapshotError::TooDeep)
    } else {
        Ok(())
    }
}

/// Consumes an `END` marker if one is next; returns its omitted count.
pub(super) fn end(r: &mut Reader<'_>) -> Result<Option<u64>, SnapshotError> {
    if r.peek()? == tag::END {
        r.u8()?;
        Ok(Some(r.varint()?))
    } else {
        Ok(None)
    }
}

fn seq(r: &mut Reader<'_>, depth: usize) -> Result<Seq, SnapshotError> {
    check_depth(depth)?;
    let mut items = Vec::new();
    loop {
        if let Some(omitted) = end(r)? {
            return Ok(Seq { items, omitted });
        }
        items.push(value(r, depth)?);
    }
}

fn map(r: &mut Reader<'_>, depth: usize) -> Result<Map, SnapshotError> {
    check_depth(depth)?;
    let mut entries = Vec::new();
    loop {
        if let Some(omitted) = end(r)? {
            return Ok(Map { entries, omitted });
        }
        let key = value(r, depth)?;
        entries.push((key, value(r, depth)?));
    }
}

fn fields(r: &mut Reader<'_>, depth: usize) -> Result<Fields, SnapshotError> {
    check_depth(depth)?;
    let mut entries = Vec::new();
    loop {
        if let Some(omitted) = end(r)? {
            return Ok(Fields { entries, omitted });
        }
        if r.u8()? != tag::FIELD {
            return Err(r.invalid("expected a field name"));
        }
        let name = r.str()?.to_owned();
        entries.push((name, value(r, depth)?));
    }
}

fn object(r: &mut Reader<'_>, depth: usize) -> Result<Object, SnapshotError> {
    check_depth(depth)?;
    let kind = ObjectKind::from_byte(r.u8()?).ok_or_else(|| r.invalid("unknown object kind"))?;
    let complete = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(r.invalid("object flag is not 0 or 1")),
    };
    let module = r.str()?.to_owned();
    let qualname = r.str()?.to_owned();
    let base = if kind == ObjectKind::Subclass {
        Some(Box::new(value(r, depth)?))
    } else {
        None
    };
    Ok(Object {
        kind,
        module,
        qualname,
        complete,
        base,
        fields: fields(r, depth)?,
    })
}

fn exception(r: &mut Reader<'_>, depth: usize) -> Result<Exception, SnapshotError> {
    check_depth(depth)?;
    let module = r.str()?.to_owned();
    let qualname = r.str()?.to_owned();
    let message = if r.peek()? == tag::NONE {
        r.u8()?;
        None
    } else {
        Some(text(r)?)
    };
    Ok(Exception {
        module,
        qualname,
        message,
        args: seq(r, depth)?,
    })
}

fn array(r: &mut Reader<'_>) -> Result<Array, SnapshotError> {
    let type_name = r.str()?.to_owned();
    let dtype = r.str()?.to_owned();
    let ndim = r.varint()?;
    if ndim > r.remaining() as u64 {
        return Err(SnapshotError::UnexpectedEnd);
    }
    let shape = (0..ndim)
        .map(|_| r.varint())
        .collect::<Result<Vec<_>, _>>()?;
    let content_offset = r.offset();
    let content_kind = r.u8()?;
    let nbytes = r.varint()?;
    let data = match content_kind {
        content::DATA => ArrayData::Data(r.take(nbytes)?.to_vec()),
        content::HASHED => ArrayData::Hashed {
            nbytes,
            hash: r.u64_le()?,
        },
        content::UNAVAILABLE => ArrayData::Unavailable { nbytes },
        _ => {
            return Err(SnapshotError::Invalid {
                what: "unknown array content",
                offset: content_offset,
            })
        }
    };
    Ok(Array {
        type_name,
        dtype,
        shape,
        data,
    })
}

fn big_int(r: &mut Reader<'_>) -> Result<Value, SnapshotError> {
    let negative = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(r.invalid("int sign is not 0 or 1")),
    };
    let len = r.varint()?;
    let offset = r.offset();
    let magnitude = r.take(len)?;
    // Canonical: no leading zero, and too big for 64 bits (smaller ints are INT).
    let fits = magnitude.len() < 8
        || (magnitude.len() == 8
            && (magnitude[0] < 0x80 || (negative && magnitude == [0x80, 0, 0, 0, 0, 0, 0, 0])));
    if matches!(magnitude.first(), None | Some(0)) || fits {
        return Err(SnapshotError::Invalid {
            what: "non-canonical big int",
            offset,
        });
    }
    Ok(Value::BigInt {
        negative,
        magnitude: magnitude.to_vec(),
    })
}

fn bytes_kind(r: &mut Reader<'_>) -> Result<BytesKind, SnapshotError> {
    BytesKind::from_byte(r.u8()?).ok_or_else(|| r.invalid("unknown bytes kind"))
}

/// A `STR` or `STR_TRUNCATED` value (repr text, exception message).
pub(super) fn text(r: &mut Reader<'_>) -> Result<Text, SnapshotError> {
    let t = r.u8()?;
    if t != tag::STR && t != tag::STR_TRUNCATED {
        return Err(r.invalid("expected a str"));
    }
    text_after_tag(r, t)
}

fn text_after_tag(r: &mut Reader<'_>, t: u8) -> Result<Text, SnapshotError> {
    let s = r.str()?.to_owned();
    if t == tag::STR {
        return Ok(Text::Full(s));
    }
    Ok(Text::Truncated {
        prefix: s,
        omitted_chars: r.varint()?,
        hash: r.u64_le()?,
    })
}
