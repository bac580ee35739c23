//! [`Value`]: a decoded snapshot as a tree, with [`Value::is_faithful`] and re-encoding (which
//! also gives its structural hash, the same the [`Encoder`] computed when it was recorded).

use super::encode::{ArrayContent, ArrayInfo, Encoder, Snapped, TextRef};
use super::kinds::{reference_is_faithful, BytesKind, ObjectKind, RefKind};

/// A string, whole or cut to its first bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Text {
    /// All of it.
    Full(String),
    /// The start of it.
    Truncated {
        /// The first characters.
        prefix: String,
        /// How many characters were left out.
        omitted_chars: u64,
        /// A content hash of the whole text (xxh3 of its UTF-8, or of its in-memory form for
        /// long non-ASCII strings: see [`Encoder::str_truncated`](super::Encoder::str_truncated)).
        hash: u64,
    },
}

impl Text {
    /// The text, or its recorded start.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Full(s) | Self::Truncated { prefix: s, .. } => s,
        }
    }

    fn as_ref(&self) -> TextRef<'_> {
        match self {
            Self::Full(text) => TextRef::Cut {
                text,
                max_bytes: usize::MAX,
            },
            Self::Truncated {
                prefix,
                omitted_chars,
                hash,
            } => TextRef::Truncated {
                prefix,
                omitted_chars: *omitted_chars,
                hash: *hash,
            },
        }
    }
}

/// The contents of a bytes-like value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blob {
    /// All the bytes.
    Data(Vec<u8>),
    /// Too big to copy: length and content hash.
    Hashed {
        /// Length in bytes.
        len: u64,
        /// [`content_hash`](super::content_hash) of the bytes.
        hash: u64,
    },
}

/// The items of a list, tuple, set or frozenset, or an exception's args.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Seq {
    /// The items recorded (sets in the order they were iterated).
    pub items: Vec<Value>,
    /// How many more items the value had (item limit).
    pub omitted: u64,
}

/// The entries of a dict.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map {
    /// The entries recorded, in insertion order.
    pub entries: Vec<(Value, Value)>,
    /// How many more entries the dict had.
    pub omitted: u64,
}

/// Named values: an object's fields, or a call's arguments.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fields {
    /// The fields recorded, in order.
    pub entries: Vec<(String, Value)>,
    /// How many more there were.
    pub omitted: u64,
}

/// An instance of a class, by its state.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// How the fields were found.
    pub kind: ObjectKind,
    /// The class's `__module__`.
    pub module: String,
    /// The class's `__qualname__`.
    pub qualname: String,
    /// The fields are all of the instance's state (no C-level state that was not recorded).
    pub complete: bool,
    /// The built-in contents of a [`ObjectKind::Subclass`] instance.
    pub base: Option<Box<Value>>,
    /// The attributes.
    pub fields: Fields,
}

impl Object {
    /// Its class as a snapshot names types: `module.qualname`, or `qualname` for built-ins.
    #[must_use]
    pub fn type_name(&self) -> String {
        if self.module == "builtins" || self.module.is_empty() {
            self.qualname.clone()
        } else {
            format!("{}.{}", self.module, self.qualname)
        }
    }
}

/// An exception instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Exception {
    /// The exception class's module.
    pub module: String,
    /// The exception class's qualified name.
    pub qualname: String,
    /// Its `str()`, when it could be taken.
    pub message: Option<Text>,
    /// Its `args`.
    pub args: Seq,
}

/// An n-dimensional array (numpy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Array {
    /// The array's type, `module.qualname`.
    pub type_name: String,
    /// The element type (`float64`).
    pub dtype: String,
    /// The dimensions.
    pub shape: Vec<u64>,
    /// The data, if readable.
    pub data: ArrayData,
}

/// The data of an [`Array`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArrayData {
    /// All of it, in C order.
    Data(Vec<u8>),
    /// Too big to copy.
    Hashed {
        /// Length in bytes.
        nbytes: u64,
        /// [`content_hash`](super::content_hash) of the data in C order.
        hash: u64,
    },
    /// Not readable.
    Unavailable {
        /// Length in bytes, as far as known.
        nbytes: u64,
    },
}

/// A snapshot of one Python value (or, at the root only, of a call's arguments).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An int that fits in 64 bits.
    Int(i64),
    /// An int that does not fit in 64 bits.
    BigInt {
        /// Below zero.
        negative: bool,
        /// Absolute value, big-endian, no leading zero byte, more than 64 bits' worth.
        magnitude: Vec<u8>,
    },
    /// A float.
    Float(f64),
    /// A complex number.
    Complex {
        /// Real part.
        re: f64,
        /// Imaginary part.
        im: f64,
    },
    /// A str.
    Str(Text),
    /// `bytes`, `bytearray` or `memoryview` contents.
    Bytes {
        /// Which type.
        kind: BytesKind,
        /// The contents.
        blob: Blob,
    },
    /// A list.
    List(Seq),
    /// A tuple.
    Tuple(Seq),
    /// A set.
    Set(Seq),
    /// A frozenset.
    FrozenSet(Seq),
    /// A dict.
    Dict(Map),
    /// An instance of a class.
    Object(Object),
    /// An exception.
    Exception(Exception),
    /// An n-dimensional array.
    Array(Array),
    /// A class, function, module or enum member, by name.
    Ref {
        /// What the names refer to.
        kind: RefKind,
        /// The module.
        module: String,
        /// The qualified name inside the module (empty for a module).
        qualname: String,
    },
    /// Known only by its `repr()`.
    Repr {
        /// Its type, `module.qualname` (built-ins without module).
        type_name: String,
        /// The repr.
        text: Text,
    },
    /// Its `repr()` raised.
    Unrepresentable {
        /// Its type.
        type_name: String,
    },
    /// Not looked into.
    Opaque {
        /// Its type.
        type_name: String,
    },
    /// A container below the depth limit (or an argument past the node budget), not looked into.
    DepthLimit {
        /// Its type.
        type_name: String,
    },
    /// A container inside itself, `levels` levels up (1 = the parent).
    Cycle {
        /// How many containers up the repeated one is.
        levels: u64,
    },
    /// The arguments of a call, in parameter order (only ever the root).
    Args(Fields),
}

impl Value {
    /// The snapshot can rebuild the value exactly: nothing in it was truncated, hashed instead
    /// of copied, recorded by repr or type only, or cut by the depth limit.
    pub fn is_faithful(&self) -> bool {
        match self {
            Self::None
            | Self::Bool(_)
            | Self::Int(_)
            | Self::BigInt { .. }
            | Self::Float(_)
            | Self::Complex { .. } => true,
            Self::Str(text) => matches!(text, Text::Full(_)),
            Self::Bytes { blob, .. } => matches!(blob, Blob::Data(_)),
            Self::List(seq) | Self::Tuple(seq) | Self::Set(seq) | Self::FrozenSet(seq) => {
                seq.omitted == 0 && seq.items.iter().all(Self::is_faithful)
            }
            Self::Dict(map) => {
                map.omitted == 0
                    && map
                        .entries
                        .iter()
                        .all(|(k, v)| k.is_faithful() && v.is_faithful())
            }
            Self::Object(object) => {
                object.complete
                    && match &object.base {
                        Some(base) => base.is_faithful(),
                        None => true,
                    }
                    && fields_faithful(&object.fields)
            }
            Self::Array(array) => matches!(array.data, ArrayData::Data(_)),
            Self::Ref { kind, qualname, .. } => reference_is_faithful(*kind, qualname),
            Self::Args(fields) => fields_faithful(fields),
            Self::Exception(_)
            | Self::Repr { .. }
            | Self::Unrepresentable { .. }
            | Self::Opaque { .. }
            | Self::DepthLimit { .. }
            | Self::Cycle { .. } => false,
        }
    }

    /// The structural hash, as the [`Encoder`] computed it when the value was recorded.
    pub fn hash(&self) -> u64 {
        self.encode(&mut Vec::new()).hash
    }

    /// Appends this value's snapshot encoding to `out` (byte for byte what was decoded).
    pub fn encode(&self, out: &mut Vec<u8>) -> Snapped {
        let mut encoder = Encoder::new(out);
        self.write(&mut encoder);
        encoder.finish()
    }

    fn write(&self, enc: &mut Encoder<'_>) {
        match self {
            Self::None => enc.none(),
            Self::Bool(b) => enc.bool(*b),
            Self::Int(v) => enc.int(*v),
            Self::BigInt {
                negative,
                magnitude,
            } => enc.big_int(*negative, magnitude),
            Self::Float(v) => enc.float(*v),
            Self::Complex { re, im } => enc.complex(*re, *im),
            Self::Str(text) => enc.str_text(text.as_ref()),
            Self::Bytes {
                kind,
                blob: Blob::Data(data),
            } => enc.bytes(*kind, data),
            Self::Bytes {
                kind,
                blob: Blob::Hashed { len, hash },
            } => {
                enc.bytes_hashed(*kind, *len, *hash);
            }
            Self::List(seq) => {
                enc.begin_list();
                write_seq(enc, seq);
            }
            Self::Tuple(seq) => {
                enc.begin_tuple();
                write_seq(enc, seq);
            }
            Self::Set(seq) => {
                enc.begin_set();
                write_seq(enc, seq);
            }
            Self::FrozenSet(seq) => {
                enc.begin_frozenset();
                write_seq(enc, seq);
            }
            Self::Dict(map) => {
                enc.begin_dict();
                for (key, value) in &map.entries {
                    key.write(enc);
                    value.write(enc);
                }
                enc.end(map.omitted);
            }
            Self::Object(object) => {
                enc.begin_object(
                    object.kind,
                    &object.module,
                    &object.qualname,
                    object.complete,
                );
                if let Some(base) = &object.base {
                    base.write(enc);
                }
                write_fields(enc, &object.fields);
            }
            Self::Exception(exception) => {
                write_exception(enc, exception);
            }
            Self::Array(array) => {
                let content = match &array.data {
                    ArrayData::Data(data) => ArrayContent::Data(data),
                    ArrayData::Hashed { nbytes, hash } => ArrayContent::Hashed {
                        nbytes: *nbytes,
                        hash: *hash,
                    },
                    ArrayData::Unavailable { nbytes } => {
                        ArrayContent::Unavailable { nbytes: *nbytes }
                    }
                };
                enc.array(&ArrayInfo {
                    type_name: &array.type_name,
                    dtype: &array.dtype,
                    shape: &array.shape,
                    content,
                });
            }
            Self::Ref {
                kind,
                module,
                qualname,
            } => enc.reference(*kind, module, qualname),
            Self::Repr { type_name, text } => enc.repr_text(type_name, text.as_ref()),
            Self::Unrepresentable { type_name } => enc.unrepresentable(type_name),
            Self::Opaque { type_name } => enc.opaque(type_name),
            Self::DepthLimit { type_name } => enc.depth_limit(type_name),
            Self::Cycle { levels } => enc.cycle(*levels),
            Self::Args(fields) => {
                enc.begin_args();
                write_fields(enc, fields);
            }
        }
    }
}

fn fields_faithful(fields: &Fields) -> bool {
    fields.omitted == 0 && fields.entries.iter().all(|(_, v)| v.is_faithful())
}

fn write_seq(enc: &mut Encoder<'_>, seq: &Seq) {
    for item in &seq.items {
        item.write(enc);
    }
    enc.end(seq.omitted);
}

fn write_fields(enc: &mut Encoder<'_>, fields: &Fields) {
    for (name, value) in &fields.entries {
        enc.field(name);
        value.write(enc);
    }
    enc.end(fields.omitted);
}

fn write_exception(enc: &mut Encoder<'_>, exception: &Exception) {
    let message = exception.message.as_ref().map(Text::as_ref);
    enc.begin_exception_text(&exception.module, &exception.qualname, message);
    write_seq(enc, &exception.args);
}
