//! Argument and return-value snapshots: a safe, bounded model of Python values, its compact
//! binary encoding with a structural hash, decoding and rendering.
//!
//! The tracer (`fever-monitor`) walks live Python objects on the hot path and writes them with
//! an [`Encoder`] straight into a reused `Vec<u8>`; the bytes travel in trace events
//! ([`Event`](crate::trace::Event)) as opaque payloads. Readers render them as one line with
//! [`render_short`] (call trees, exports: straight from the bytes), or [`decode`] them into a
//! [`Value`] tree and render it with [`render_pretty`] (diffs).
//!
//! # Contents
//! - `format.rs`: tag bytes, varints, the bounds-checked reader.
//! - [`encode`](Encoder): the [`Encoder`] and the [`Snapped`] summary (hash, mutable, faithful).
//! - `sink.rs`: [`Sink`], the encoder's output: a byte vector, or [`HashOnly`] (summary only).
//! - `hash.rs`: the structural hash's mixing functions; [`content_hash`] (xxh3).
//! - `kinds.rs`: the kinds a snapshot's tags carry ([`BytesKind`], [`ObjectKind`], [`RefKind`]).
//! - `value.rs`: the [`Value`] tree and [`Value::is_faithful`].
//! - `decode.rs`: [`decode`] and [`SnapshotError`].
//! - `render.rs`, `pyfmt.rs`: text forms of a decoded tree; Python's repr of scalars.
//! - `short.rs`: [`render_short`] and [`render_args_short`], the one-line form straight from
//!   the bytes, stopping at its character budget.
//!
//! # Structural hash
//! Every value has a 64-bit hash, computed by the encoder as it writes and recomputed from a
//! decoded tree by [`Value::hash`] (the same number). Values Python considers equal hash equal
//! in the common cases: dict, set, frozenset and object fields combine their entries
//! commutatively (insertion order does not matter); list, tuple and arguments are ordered.
//! Types are kept apart by tag: `1`, `True`, `1.0` and `'1'` all differ, as do list and tuple.
//! Floats hash by bit pattern (`0.0` and `-0.0` differ, which a call cache needs). Strings,
//! bytes and buffers hash by their whole content even when only a prefix or a content hash is
//! recorded. A value cut by the item or depth limit or the node budget hashes only what was
//! recorded (plus the count left out): only a [faithful](Snapped::faithful) snapshot's hash covers all of it.
//!
//! # Encoding (version 1)
//! A snapshot is the version byte `0x01` and one root value; a call's arguments are an `ARGS`
//! container at the root. Every value starts with a tag byte. Varints are unsigned LEB128
//! (canonical: no redundant zero byte); `zz` marks a zigzag varint; `str` is a varint byte length
//! and UTF-8; `u64` and `f64` are 8 bytes little-endian. Containers end with `END` and a varint
//! count of entries left out by limits.
//!
//! ```text
//! 00 NONE   01 FALSE   02 TRUE
//! 03 INT            zz
//! 04 BIG_INT        u8 negative, varint len, magnitude big-endian (canonical: no leading
//!                   zero, and only for ints outside i64)
//! 05 FLOAT          f64                       06 COMPLEX   f64 re, f64 im
//! 07 STR            str
//! 08 STR_TRUNCATED  str prefix, varint characters left out, u64 content hash of the whole text
//! 09 BYTES          u8 kind (0 bytes, 1 bytearray, 2 memoryview), varint len, the bytes
//! 0a BYTES_HASHED   u8 kind, varint len, u64 xxh3 of the bytes
//! 10 LIST | 11 TUPLE | 12 SET | 13 FROZENSET   value* END
//! 14 DICT           (key value)* END
//! 15 OBJECT         u8 kind (0 plain, 1 dataclass, 2 named tuple, 3 subclass of a built-in),
//!                   u8 complete (0/1), str module, str qualname,
//!                   [value: the built-in contents, kind 3 only], (FIELD str value)* END
//! 16 EXCEPTION      str module, str qualname, message (NONE, STR or STR_TRUNCATED), value* END
//!                   (the items are its args)
//! 17 ARGS           (FIELD str value)* END    root only; `*args`, `**kwargs` named with stars
//! 18 ARRAY          str type, str dtype, varint ndim, varint dim*, u8 content, varint nbytes,
//!                   then content 0: nothing (unreadable), 1: u64 xxh3, 2: the bytes (C order)
//! 19 REF            u8 kind (0 class, 1 function, 2 builtin, 3 bound method, 4 module,
//!                   5 enum member), str module, str qualname
//! 1a REPR           str type, STR or STR_TRUNCATED (repr text)
//! 1b UNREPRESENTABLE str type (its repr raised)      1c OPAQUE       str type (not looked into)
//! 1d DEPTH_LIMIT    str type (below the depth limit, or an argument past the node budget)
//! 1e CYCLE          varint levels up (1 = parent)
//! fe FIELD          (marker before a name)           ff END          varint entries left out
//! ```

mod decode;
mod encode;
mod format;
mod hash;
mod kinds;
mod pyfmt;
mod render;
mod short;
mod sink;
mod value;

pub use decode::{decode, SnapshotError, MAX_NESTING};
pub use encode::{ArrayContent, ArrayInfo, Encoder, Snapped};
pub use format::VERSION;
pub use hash::{content_hash, ContentHasher};
pub use kinds::{BytesKind, ObjectKind, RefKind};
pub use render::{render_pretty, render_value_short};
pub use short::{render_args_short, render_short};
pub use sink::{HashOnly, Sink};
pub use value::{Array, ArrayData, Blob, Exception, Fields, Map, Object, Seq, Text, Value};

#[cfg(test)]
mod tests;
