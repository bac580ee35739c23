//! [`Encoder`]: writes one snapshot into a caller's buffer, value by value, and computes its
//! structural hash, whether it holds anything mutable and whether it is faithful, on the way.
//!
//! The caller (the tracer, walking live Python objects) calls one method per scalar and a
//! `begin_*` ... [`Encoder::end`] pair per container; a snapshot holds exactly one root value.
//! Misuse (a value where a field name is due, an unclosed container) never produces bytes the
//! decoder rejects: the encoder fills in what is missing, and debug builds assert.

use std::mem::MaybeUninit;

use super::format::{content, tag, zigzag, VERSION};
use super::hash::{content_hash, mix, seed, unordered};
use super::kinds::{reference_is_faithful, BytesKind, ObjectKind, RefKind};
use super::sink::Sink;

/// What a finished snapshot says about its root value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapped {
    /// Structural hash: equal for values Python considers equal in the common cases.
    pub hash: u64,
    /// The value holds something that can change in place in a way its hash would show (list,
    /// dict, set, bytearray, object, array, anything recorded by its repr, or marked with
    /// [`Encoder::changeable`]): worth re-hashing after a call. Values recorded by their type
    /// alone (opaque values, depth limits, cycles) do not count: their hash cannot change.
    pub mutable: bool,
    /// The snapshot can rebuild the value exactly: nothing truncated, hashed, or repr-only (and
    /// so the hash covers all of it).
    pub faithful: bool,
    /// The hash covers all of the value, so equal hashes mean equal values (in the common
    /// cases): nothing was left out or known only by its repr or type. Unlike `faithful`,
    /// content-hashed buffers and cut strings count (their hash covers all their content).
    pub complete: bool,
}

/// An array's description for [`Encoder::array`].
#[derive(Debug, Clone, Copy)]
pub struct ArrayInfo<'s> {
    /// The array's type, `module.qualname` (`numpy.ndarray`).
    pub type_name: &'s str,
    /// The element type (`float64`).
    pub dtype: &'s str,
    /// The dimensions.
    pub shape: &'s [u64],
    /// The data, its hash, or neither.
    pub content: ArrayContent<'s>,
}

/// The data of an array, as far as the tracer could read it.
#[derive(Debug, Clone, Copy)]
pub enum ArrayContent<'s> {
    /// All the bytes, in C order (copied into the snapshot).
    Data(&'s [u8]),
    /// Too big to copy: the [`content_hash`](super::content_hash) of the bytes in C order.
    Hashed {
        /// Length of the data in bytes.
        nbytes: u64,
        /// Content hash of the data.
        hash: u64,
    },
    /// Not readable (object dtype, indirect buffer).
    Unavailable {
        /// Length of the data in bytes, as far as known.
        nbytes: u64,
    },
}

/// Where an open container is in its sequence of children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Next child is an item (list, tuple, set, exception args).
    Item,
    /// Next child is a dict key.
    Key,
    /// Next child is the value of the key just written.
    Value,
    /// Next child is the contents of a built-in base (subclass objects).
    Base,
    /// Next is a field name (objects, arguments).
    Name,
    /// Next child is the value of the field just named.
    FieldValue,
}

/// An open container.
#[derive(Debug, Clone, Copy)]
struct Frame {
    tag: u8,
    slot: Slot,
    /// Ordered part of the hash.
    state: u64,
    /// Unordered part: sum of one word per entry.
    sum: u64,
    /// Hash of the key or field name waiting for its value.
    pending: u64,
    /// Entries written.
    count: u64,
}

/// Writes one snapshot (see the parent module for the layout) into a buffer, appending (or, with
/// the [`HashOnly`](super::HashOnly) sink, only computes its summary).
pub struct Encoder<'a, S: Sink = Vec<u8>> {
    out: &'a mut S,
    stack: Stack,
    root: Option<u64>,
    mutable: bool,
    faithful: bool,
    complete: bool,
}

impl<'a, S: Sink> Encoder<'a, S> {
    /// Starts a snapshot at the end of `out` (writes the version byte).
    #[inline]
    pub fn new(out: &'a mut S) -> Self {
        out.byte(VERSION);
        Self {
            out,
            stack: Stack::default(),
            root: None,
            mutable: false,
            faithful: true,
            complete: true,
        }
    }

    /// Closes anything left open and returns the root value's summary. Call it once, last
    /// (it takes `&mut self` so that the encoder, which keeps its first frames inline, is not
    /// copied).
    #[inline]
    pub fn finish(&mut self) -> Snapped {
        if !self.stack.is_empty() || self.root.is_none() {
            self.repair();
        }
        Snapped {
            hash: self.root.unwrap_or_default(),
            mutable: self.mutable,
            faithful: self.faithful,
            complete: self.complete,
        }
    }

    /// Makes an unfinished snapshot whole: closes open containers, writes a missing root.
    #[cold]
    fn repair(&mut self) {
        debug_assert!(self.stack.is_empty(), "unclosed container");
        while !self.stack.is_empty() {
            self.end(0);
        }
        if self.root.is_none() {
            debug_assert!(false, "snapshot without a value");
            self.none();
        }
    }

    /// `None`.
    #[inline]
    pub fn none(&mut self) {
        self.scalar(tag::NONE, seed(tag::NONE));
    }

    /// `True` or `False`.
    #[inline]
    pub fn bool(&mut self, value: bool) {
        let t = if value { tag::TRUE } else { tag::FALSE };
        self.scalar(t, seed(t));
    }

    /// An int that fits in 64 bits.
    #[inline]
    pub fn int(&mut self, value: i64) {
        self.before_value();
        self.out.byte(tag::INT);
        self.out.varint(zigzag(value));
        self.complete(mix(seed(tag::INT), zigzag(value)));
    }

    /// Any int, as sign and big-endian magnitude; ints that fit in 64 bits are written as
    /// [`Encoder::int`], so each int has one encoding.
    pub fn big_int(&mut self, negative: bool, magnitude: &[u8]) {
        let start = magnitude
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(magnitude.len());
        let magnitude = &magnitude[start..];
        if magnitude.len() <= 8 {
            let mut word = [0u8; 8];
            word[8 - magnitude.len()..].copy_from_slice(magnitude);
            let abs = u64::from_be_bytes(word);
            let small = if negative {
                0i64.checked_sub_unsigned(abs)
            } else {
                i64::try_from(abs).ok()
            };
            if let Some(v) = small {
                self.int(v);
                return;
            }
        }
        self.before_value();
        self.out.byte(tag::BIG_INT);
        self.out.byte(u8::from(negative));
        self.out.varint(magnitude.len() as u64);
        self.out.bytes(magnitude);
        let h = mix(
            mix(seed(tag::BIG_INT), u64::from(negative)),
            content_hash(magnitude),
        );
        self.complete(h);
    }

    /// A float (hashed by bit pattern, so `0.0` and `-0.0` differ).
    #[inline]
    pub fn float(&mut self, value: f64) {
        self.before_value();
        self.out.byte(tag::FLOAT);
        self.out.bytes(&value.to_bits().to_le_bytes());
        self.complete(mix(seed(tag::FLOAT), value.to_bits()));
    }

    /// A complex number.
    pub fn complex(&mut self, re: f64, im: f64) {
        self.before_value();
        self.out.byte(tag::COMPLEX);
        self.out.bytes(&re.to_bits().to_le_bytes());
        self.out.bytes(&im.to_bits().to_le_bytes());
        self.complete(mix(mix(seed(tag::COMPLEX), re.to_bits()), im.to_bits()));
    }

    /// A str, whole.
    pub fn str(&mut self, value: &str) {
        self.str_limited(value, usize::MAX);
    }

    /// A str, cut to at most `max_bytes` of UTF-8 (at a character boundary); the hash still
    /// covers all of it.
    #[inline]
    pub fn str_limited(&mut self, value: &str, max_bytes: usize) {
        self.before_value();
        // The short case, most strs, inlined into the tracer's walker.
        let h = if value.len() <= max_bytes {
            self.whole_text(value)
        } else {
            self.text(TextRef::Cut {
                text: value,
                max_bytes,
            })
        };
        self.complete(h);
    }

    /// A str the caller cut itself: its first characters `prefix`, `omitted_chars` characters
    /// left out, and `hash`, a content hash of the whole text (equal texts must get equal
    /// hashes; [`Encoder::str_limited`] uses [`content_hash`](super::content_hash) of the UTF-8).
    pub fn str_truncated(&mut self, prefix: &str, omitted_chars: u64, hash: u64) {
        self.str_text(TextRef::Truncated {
            prefix,
            omitted_chars,
            hash,
        });
    }

    /// A str given as a [`TextRef`].
    pub(super) fn str_text(&mut self, text: TextRef<'_>) {
        self.before_value();
        let h = self.text(text);
        self.complete(h);
    }

    /// `bytes`, `bytearray` or `memoryview` contents, copied.
    #[inline]
    pub fn bytes(&mut self, kind: BytesKind, data: &[u8]) {
        self.before_value();
        self.out.byte(tag::BYTES);
        self.out.byte(kind as u8);
        self.out.varint(data.len() as u64);
        self.out.bytes(data);
        self.mutable |= kind.is_mutable();
        self.complete(Self::bytes_hash(kind, content_hash(data)));
    }

    /// `bytes`-like contents too big to copy: their length and content hash.
    pub fn bytes_hashed(&mut self, kind: BytesKind, len: u64, hash: u64) {
        self.before_value();
        self.out.byte(tag::BYTES_HASHED);
        self.out.byte(kind as u8);
        self.out.varint(len);
        self.out.bytes(&hash.to_le_bytes());
        self.mutable |= kind.is_mutable();
        self.faithful = false;
        self.complete(Self::bytes_hash(kind, hash));
    }

    fn bytes_hash(kind: BytesKind, content: u64) -> u64 {
        mix(mix(seed(tag::BYTES), kind as u64), content)
    }

    /// Opens a list: items follow, then [`Encoder::end`].
    #[inline]
    pub fn begin_list(&mut self) {
        self.mutable = true;
        self.open(tag::LIST, Slot::Item, seed(tag::LIST));
    }

    /// Opens a tuple: items follow, then [`Encoder::end`].
    #[inline]
    pub fn begin_tuple(&mut self) {
        self.open(tag::TUPLE, Slot::Item, seed(tag::TUPLE));
    }

    /// Opens a set: items follow, then [`Encoder::end`].
    pub fn begin_set(&mut self) {
        self.mutable = true;
        self.open(tag::SET, Slot::Item, seed(tag::SET));
    }

    /// Opens a frozenset: items follow, then [`Encoder::end`].
    pub fn begin_frozenset(&mut self) {
        self.open(tag::FROZENSET, Slot::Item, seed(tag::FROZENSET));
    }

    /// Opens a dict: key, value, key, value... follow, then [`Encoder::end`].
    #[inline]
    pub fn begin_dict(&mut self) {
        self.mutable = true;
        self.open(tag::DICT, Slot::Key, seed(tag::DICT));
    }

    /// Opens an instance of a class: for [`ObjectKind::Subclass`] the built-in contents come
    /// first (one value), then [`Encoder::field`] + value pairs, then [`Encoder::end`].
    /// `complete` says the fields are all of the instance's state (no C-level state missing).
    pub fn begin_object(&mut self, kind: ObjectKind, module: &str, qualname: &str, complete: bool) {
        self.before_value();
        self.out.byte(tag::OBJECT);
        self.out.byte(kind as u8);
        self.out.byte(u8::from(complete));
        self.out.str(module);
        self.out.str(qualname);
        self.mutable = true;
        self.faithful &= complete;
        self.complete &= complete;
        let state = mix(
            mix(
                mix(mix(seed(tag::OBJECT), kind as u64), u64::from(complete)),
                content_hash(module.as_bytes()),
            ),
            content_hash(qualname.as_bytes()),
        );
        let slot = if kind == ObjectKind::Subclass {
            Slot::Base
        } else {
            Slot::Name
        };
        self.push(tag::OBJECT, slot, state);
    }

    /// Opens an exception: its `args` follow as items, then [`Encoder::end`]. `message` is its
    /// `str()`, when known, cut to `max_bytes`.
    pub fn begin_exception(
        &mut self,
        module: &str,
        qualname: &str,
        message: Option<&str>,
        max_bytes: usize,
    ) {
        let message = message.map(|text| TextRef::Cut { text, max_bytes });
        self.begin_exception_text(module, qualname, message);
    }

    pub(super) fn begin_exception_text(
        &mut self,
        module: &str,
        qualname: &str,
        message: Option<TextRef<'_>>,
    ) {
        self.before_value();
        self.out.byte(tag::EXCEPTION);
        self.out.str(module);
        self.out.str(qualname);
        let message_hash = if let Some(text) = message {
            self.text(text)
        } else {
            self.out.byte(tag::NONE);
            seed(tag::NONE)
        };
        self.mutable = true;
        self.faithful = false;
        let state = mix(
            mix(
                mix(seed(tag::EXCEPTION), content_hash(module.as_bytes())),
                content_hash(qualname.as_bytes()),
            ),
            message_hash,
        );
        self.push(tag::EXCEPTION, Slot::Item, state);
    }

    /// Opens the arguments of a call (root only): [`Encoder::field`] + value pairs in parameter
    /// order, then [`Encoder::end`]. Name `*args` and `**kwargs` entries with their stars.
    #[inline]
    pub fn begin_args(&mut self) {
        debug_assert!(
            self.stack.is_empty() && self.root.is_none(),
            "arguments must be the root"
        );
        self.open(tag::ARGS, Slot::Name, seed(tag::ARGS));
    }

    /// Names the next value of an object or arguments container.
    #[inline]
    pub fn field(&mut self, name: &str) {
        let Some(top) = self.stack.last_mut() else {
            debug_assert!(false, "field outside a container");
            return;
        };
        match top.slot {
            Slot::Name => {}
            Slot::Base => {
                // No base contents were written: stand in None for them.
                debug_assert!(false, "subclass object without its base contents");
                self.none();
            }
            _ => {
                debug_assert!(false, "field in a container without names");
                return;
            }
        }
        let top = self.stack.last_mut().expect("checked above");
        top.pending = content_hash(name.as_bytes());
        top.slot = Slot::FieldValue;
        self.out.byte(tag::FIELD);
        self.out.str(name);
    }

    /// Closes the innermost container; `omitted` entries were left out (limits).
    #[inline]
    pub fn end(&mut self, omitted: u64) {
        let Some(top) = self.stack.last() else {
            debug_assert!(false, "end without an open container");
            return;
        };
        match top.slot {
            Slot::Item | Slot::Key | Slot::Name => {}
            Slot::Value | Slot::FieldValue | Slot::Base => {
                debug_assert!(false, "container closed before its last value");
                self.none();
            }
        }
        let frame = self.stack.pop().expect("checked above");
        self.out.byte(tag::END);
        self.out.varint(omitted);
        if omitted > 0 {
            self.faithful = false;
            self.complete = false;
        }
        self.complete(mix(mix(mix(frame.state, frame.sum), frame.count), omitted));
    }

    /// A numpy-like array.
    pub fn array(&mut self, info: &ArrayInfo<'_>) {
        self.before_value();
        self.out.byte(tag::ARRAY);
        self.out.str(info.type_name);
        self.out.str(info.dtype);
        self.out.varint(info.shape.len() as u64);
        let mut h = mix(
            mix(seed(tag::ARRAY), content_hash(info.type_name.as_bytes())),
            content_hash(info.dtype.as_bytes()),
        );
        h = mix(h, info.shape.len() as u64);
        for &dim in info.shape {
            self.out.varint(dim);
            h = mix(h, dim);
        }
        let (nbytes, data_hash) = match info.content {
            ArrayContent::Data(data) => {
                self.out.byte(content::DATA);
                self.out.varint(data.len() as u64);
                self.out.bytes(data);
                (data.len() as u64, content_hash(data))
            }
            ArrayContent::Hashed { nbytes, hash } => {
                self.out.byte(content::HASHED);
                self.out.varint(nbytes);
                self.out.bytes(&hash.to_le_bytes());
                self.faithful = false;
                (nbytes, hash)
            }
            ArrayContent::Unavailable { nbytes } => {
                self.out.byte(content::UNAVAILABLE);
                self.out.varint(nbytes);
                self.faithful = false;
                self.complete = false;
                (nbytes, 0)
            }
        };
        self.mutable = true;
        self.complete(mix(mix(h, nbytes), data_hash));
    }

    /// A class, function, module or enum member, by name. Faithful when the name can be looked
    /// up again (no `<locals>` or `<lambda>` in it) and the kind is not a bound method.
    pub fn reference(&mut self, kind: RefKind, module: &str, qualname: &str) {
        self.before_value();
        self.out.byte(tag::REF);
        self.out.byte(kind as u8);
        self.out.str(module);
        self.out.str(qualname);
        if !reference_is_faithful(kind, qualname) {
            self.faithful = false;
            self.complete = false;
        }
        let h = mix(
            mix(
                mix(seed(tag::REF), kind as u64),
                content_hash(module.as_bytes()),
            ),
            content_hash(qualname.as_bytes()),
        );
        self.complete(h);
    }

    /// A value known only by its `repr()` (cut to `max_bytes`).
    pub fn repr(&mut self, type_name: &str, text: &str, max_bytes: usize) {
        self.repr_text(type_name, TextRef::Cut { text, max_bytes });
    }

    pub(super) fn repr_text(&mut self, type_name: &str, text: TextRef<'_>) {
        self.before_value();
        self.out.byte(tag::REPR);
        self.out.str(type_name);
        let text_hash = self.text(text);
        self.opaque_flags();
        self.complete(mix(
            mix(seed(tag::REPR), content_hash(type_name.as_bytes())),
            text_hash,
        ));
    }

    /// A value whose `repr()` raised: `<unrepresentable T>` (its repr may work next time:
    /// [`Snapped::mutable`]).
    pub fn unrepresentable(&mut self, type_name: &str) {
        self.named(tag::UNREPRESENTABLE, type_name);
        self.mutable = true;
    }

    /// A value fever does not look into: `<T object>`.
    pub fn opaque(&mut self, type_name: &str) {
        self.named(tag::OPAQUE, type_name);
    }

    /// A container below the depth limit, not looked into.
    pub fn depth_limit(&mut self, type_name: &str) {
        self.named(tag::DEPTH_LIMIT, type_name);
    }

    /// Says the snapshot is worth re-hashing after a call ([`Snapped::mutable`]) though what was
    /// written may not show it: a value recorded by type alone that a later walk could record
    /// otherwise.
    pub fn changeable(&mut self) {
        self.mutable = true;
    }

    /// A container that is one of its own ancestors, `levels` levels up (1 = the parent).
    pub fn cycle(&mut self, levels: u64) {
        self.before_value();
        self.out.byte(tag::CYCLE);
        self.out.varint(levels);
        self.type_only_flags();
        self.complete(mix(seed(tag::CYCLE), levels));
    }

    fn named(&mut self, t: u8, type_name: &str) {
        self.before_value();
        self.out.byte(t);
        self.out.str(type_name);
        self.type_only_flags();
        self.complete(mix(seed(t), content_hash(type_name.as_bytes())));
    }

    /// A value the snapshot does not hold, but its text: it may be anything, mutable included.
    fn opaque_flags(&mut self) {
        self.mutable = true;
        self.type_only_flags();
    }

    /// A value the snapshot holds by its type alone (the hash of which cannot change).
    fn type_only_flags(&mut self) {
        self.faithful = false;
        self.complete = false;
    }

    /// Writes a text (`STR` or `STR_TRUNCATED`) and returns its value hash.
    fn text(&mut self, text: TextRef<'_>) -> u64 {
        let (value, max_bytes) = match text {
            TextRef::Cut { text, max_bytes } => (text, max_bytes),
            TextRef::Truncated {
                prefix,
                omitted_chars,
                hash,
            } => return self.text_parts(prefix, omitted_chars, hash),
        };
        if value.len() <= max_bytes {
            return self.whole_text(value);
        }
        let mut cut = max_bytes;
        while !value.is_char_boundary(cut) {
            cut -= 1;
        }
        let omitted = value[cut..].chars().count() as u64;
        self.text_parts(&value[..cut], omitted, content_hash(value.as_bytes()))
    }

    /// Writes a text kept whole (`STR`) and returns its value hash.
    #[inline]
    fn whole_text(&mut self, value: &str) -> u64 {
        self.out.byte(tag::STR);
        self.out.str(value);
        mix(seed(tag::STR), content_hash(value.as_bytes()))
    }

    fn text_parts(&mut self, prefix: &str, omitted_chars: u64, hash: u64) -> u64 {
        self.out.byte(tag::STR_TRUNCATED);
        self.out.str(prefix);
        self.out.varint(omitted_chars);
        self.out.bytes(&hash.to_le_bytes());
        self.faithful = false;
        mix(seed(tag::STR), hash)
    }

    fn scalar(&mut self, t: u8, h: u64) {
        self.before_value();
        self.out.byte(t);
        self.complete(h);
    }

    fn open(&mut self, t: u8, slot: Slot, state: u64) {
        self.before_value();
        self.out.byte(t);
        self.push(t, slot, state);
    }

    fn push(&mut self, t: u8, slot: Slot, state: u64) {
        self.stack.push(Frame {
            tag: t,
            slot,
            state,
            sum: 0,
            pending: 0,
            count: 0,
        });
    }

    /// Makes sure a value may come next: a field name is written for a nameless value.
    #[inline]
    fn before_value(&mut self) {
        if let Some(top) = self.stack.last() {
            if top.slot == Slot::Name {
                debug_assert!(false, "value without a field name");
                self.field("");
            }
        } else {
            debug_assert!(self.root.is_none(), "second root value");
        }
    }

    /// A child value with hash `h` is complete: feed it to the open container.
    #[inline]
    fn complete(&mut self, h: u64) {
        let Some(top) = self.stack.last_mut() else {
            self.root = Some(h);
            return;
        };
        match top.slot {
            Slot::Item => {
                if matches!(top.tag, tag::SET | tag::FROZENSET) {
                    top.sum = top.sum.wrapping_add(unordered(h));
                } else {
                    top.state = mix(top.state, h);
                }
                top.count += 1;
            }
            Slot::Key => {
                top.pending = h;
                top.slot = Slot::Value;
            }
            Slot::Value => {
                top.sum = top.sum.wrapping_add(mix(top.pending, h));
                top.slot = Slot::Key;
                top.count += 1;
            }
            Slot::Base => {
                top.state = mix(top.state, h);
                top.slot = Slot::Name;
            }
            Slot::FieldValue => {
                let entry = mix(top.pending, h);
                if top.tag == tag::ARGS {
                    top.state = mix(top.state, entry);
                } else {
                    top.sum = top.sum.wrapping_add(entry);
                }
                top.slot = Slot::Name;
                top.count += 1;
            }
            Slot::Name => debug_assert!(false, "before_value writes the missing name"),
        }
    }
}

/// A text to write: whole (cut to a byte limit by the encoder) or already cut.
#[derive(Debug, Clone, Copy)]
pub(super) enum TextRef<'s> {
    /// The whole text; the encoder keeps at most `max_bytes` of it.
    Cut {
        /// The text.
        text: &'s str,
        /// Byte limit.
        max_bytes: usize,
    },
    /// A text cut before (a decoded [`Text::Truncated`](super::Text::Truncated)).
    Truncated {
        /// The first characters.
        prefix: &'s str,
        /// Characters left out.
        omitted_chars: u64,
        /// Content hash of the whole text.
        hash: u64,
    },
}

/// Open containers: the first few inline (a snapshot of small arguments allocates nothing and
/// initialises nothing up front), deeper ones in a vector.
#[derive(Debug)]
struct Stack {
    /// Slots `0..min(len, INLINE_FRAMES)` are initialised.
    inline: [MaybeUninit<Frame>; INLINE_FRAMES],
    len: usize,
    spill: Vec<Frame>,
}

/// Frames kept without allocating: the arguments container and the tracer's default depth.
const INLINE_FRAMES: usize = 8;

impl Default for Stack {
    #[inline]
    fn default() -> Self {
        Self {
            inline: [const { MaybeUninit::uninit() }; INLINE_FRAMES],
            len: 0,
            spill: Vec::new(),
        }
    }
}

impl Stack {
    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn push(&mut self, frame: Frame) {
        if self.len < INLINE_FRAMES {
            self.inline[self.len].write(frame);
        } else {
            self.spill.push(frame);
        }
        self.len += 1;
    }

    fn pop(&mut self) -> Option<Frame> {
        self.len = self.len.checked_sub(1)?;
        if self.len < INLINE_FRAMES {
            // SAFETY: slots below the old length were written by `push`.
            Some(unsafe { self.inline[self.len].assume_init() })
        } else {
            self.spill.pop()
        }
    }

    fn last(&self) -> Option<&Frame> {
        match self.len {
            0 => None,
            // SAFETY: slots below `len` were written by `push`.
            n if n <= INLINE_FRAMES => Some(unsafe { self.inline[n - 1].assume_init_ref() }),
            _ => self.spill.last(),
        }
    }

    fn last_mut(&mut self) -> Option<&mut Frame> {
        match self.len {
            0 => None,
            // SAFETY: slots below `len` were written by `push`.
            n if n <= INLINE_FRAMES => Some(unsafe { self.inline[n - 1].assume_init_mut() }),
            _ => self.spill.last_mut(),
        }
    }
}
