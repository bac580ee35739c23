//! The small enums a snapshot's tags carry ([`BytesKind`], [`ObjectKind`], [`RefKind`]), shared by
//! the [`Encoder`](super::Encoder) that writes them and the [`Value`](super::Value) tree that
//! reads them.

/// Which bytes-like type a [`Value::Bytes`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BytesKind {
    /// `bytes`.
    Bytes = 0,
    /// `bytearray`.
    ByteArray = 1,
    /// `memoryview` (of its contents, as bytes in C order).
    MemoryView = 2,
}

impl BytesKind {
    pub(super) fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Bytes,
            1 => Self::ByteArray,
            2 => Self::MemoryView,
            _ => return None,
        })
    }

    /// The Python type name.
    pub fn type_name(self) -> &'static str {
        match self {
            Self::Bytes => "bytes",
            Self::ByteArray => "bytearray",
            Self::MemoryView => "memoryview",
        }
    }

    pub(super) fn is_mutable(self) -> bool {
        self != Self::Bytes
    }
}

/// How an [`Object`]'s fields were found, which says how to rebuild and render it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ObjectKind {
    /// An instance of an ordinary class: its `__dict__` then its `__slots__`.
    Plain = 0,
    /// A dataclass instance: its fields in declaration order.
    Dataclass = 1,
    /// A named tuple: its fields in order (the tuple's items, named).
    NamedTuple = 2,
    /// An instance of a subclass of a built-in container or scalar: the built-in contents
    /// ([`Object::base`]), then the instance's attributes.
    Subclass = 3,
    /// An instance of a C type known by its `__reduce_ex__(2)`: the fields `callable` (a
    /// class or function by name), `args`, and `state` and `listitems` when it has them.
    Reduced = 4,
}

impl ObjectKind {
    pub(super) fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Plain,
            1 => Self::Dataclass,
            2 => Self::NamedTuple,
            3 => Self::Subclass,
            4 => Self::Reduced,
            _ => return None,
        })
    }
}

/// What a [`Value::Ref`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RefKind {
    /// A class.
    Class = 0,
    /// A function defined in Python.
    Function = 1,
    /// A built-in (C) function or method.
    Builtin = 2,
    /// A bound method (its `self` is not recorded).
    Method = 3,
    /// A module (`qualname` is empty).
    Module = 4,
    /// A member of an `enum.Enum`: `qualname` is `Class.MEMBER`.
    EnumMember = 5,
}

impl RefKind {
    pub(super) fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Class,
            1 => Self::Function,
            2 => Self::Builtin,
            3 => Self::Method,
            4 => Self::Module,
            5 => Self::EnumMember,
            _ => return None,
        })
    }
}

/// Whether a reference can be looked up again by its names.
pub(super) fn reference_is_faithful(kind: RefKind, qualname: &str) -> bool {
    kind != RefKind::Method && !qualname.contains('<')
}
