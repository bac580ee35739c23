//! [`Walker`]: one snapshot being written. Dispatches each object on its exact type, writes
//! built-in values through the concrete C API, tracks the path of containers (depth limit,
//! cycles) and the values walked (node budget), and falls back to a guarded C `repr()`. Instances of other types are in
//! `objects.rs`, arrays and memoryviews in `buffer.rs`.

use fever_core::snapshot::{content_hash, BytesKind, ContentHasher, Encoder, Sink};
use pyo3::ffi::{self, PyObject, PyTypeObject};

use super::pytype::{self, Probe, TypeName};
use super::scalar::Scalar;
use super::{SnapshotLimits, MAX_DEPTH};
use crate::code_object::utf8;
use crate::compat;

/// The built-in types read through the concrete C API (also as the base of subclasses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Builtin {
    Int,
    Float,
    Complex,
    Str,
    Bytes,
    ByteArray,
    Tuple,
    List,
    Dict,
    Set,
    FrozenSet,
    NdArray,
}

impl Builtin {
    /// The built-in `tp` is exactly, if any (`bool` and `None` are handled before).
    pub(super) unsafe fn of(tp: *mut PyTypeObject) -> Option<Self> {
        // SAFETY: comparing addresses of static types; reading a live type's name.
        unsafe {
            Some(if tp == &raw mut ffi::PyLong_Type {
                Self::Int
            } else if tp == &raw mut ffi::PyUnicode_Type {
                Self::Str
            } else if tp == &raw mut ffi::PyFloat_Type {
                Self::Float
            } else if tp == &raw mut ffi::PyTuple_Type {
                Self::Tuple
            } else if tp == &raw mut ffi::PyList_Type {
                Self::List
            } else if tp == &raw mut ffi::PyDict_Type {
                Self::Dict
            } else if tp == &raw mut ffi::PySet_Type {
                Self::Set
            } else if tp == &raw mut ffi::PyFrozenSet_Type {
                Self::FrozenSet
            } else if tp == &raw mut ffi::PyBytes_Type {
                Self::Bytes
            } else if tp == &raw mut ffi::PyByteArray_Type {
                Self::ByteArray
            } else if tp == &raw mut ffi::PyComplex_Type {
                Self::Complex
            } else if libc::strcmp((*tp).tp_name, c"numpy.ndarray".as_ptr()) == 0 {
                Self::NdArray
            } else {
                return None;
            })
        }
    }

    /// The built-in a C type (not a Python class) derives from, e.g. `dict` for `OrderedDict`.
    pub(super) unsafe fn base_of(tp: *mut PyTypeObject) -> Option<Self> {
        // SAFETY: walking a live type's `tp_base` chain.
        unsafe {
            let mut base = (*tp).tp_base;
            while !base.is_null() {
                if let Some(builtin) = Self::of(base) {
                    return Some(builtin);
                }
                base = (*base).tp_base;
            }
            None
        }
    }

    /// Holds other objects (so takes part in depth and cycle tracking).
    fn is_container(self) -> bool {
        matches!(
            self,
            Self::Tuple | Self::List | Self::Dict | Self::Set | Self::FrozenSet
        )
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Int => "int",
            Self::Float => "float",
            Self::Complex => "complex",
            Self::Str => "str",
            Self::Bytes => "bytes",
            Self::ByteArray => "bytearray",
            Self::Tuple => "tuple",
            Self::List => "list",
            Self::Dict => "dict",
            Self::Set => "set",
            Self::FrozenSet => "frozenset",
            Self::NdArray => "numpy.ndarray",
        }
    }
}

/// Why a container is not walked into.
#[derive(Debug, Clone, Copy)]
pub(super) enum Stop {
    /// It is on the current path, this many levels up.
    Cycle(u64),
    /// The depth limit is reached, or the node budget was spent before this value: recorded by
    /// type only.
    Depth,
}

/// One snapshot being written (into `S`: a byte vector, or nowhere for the hash alone): the
/// encoder plus the path of containers being walked.
pub(super) struct Walker<'o, 'l, S: Sink = Vec<u8>> {
    pub(super) enc: Encoder<'o, S>,
    pub(super) limits: &'l SnapshotLimits,
    /// Items recorded per container.
    max_items: isize,
    max_depth: usize,
    /// Values walked so far, and how many may be ([`SnapshotLimits::max_nodes`]).
    walked: u32,
    max_nodes: u32,
    pub(super) probe: Option<&'static Probe>,
    /// Containers from the root to the current one, each holding a reference.
    path: [*mut PyObject; MAX_DEPTH],
    depth: usize,
    /// Gathers non-contiguous buffers.
    pub(super) scratch: Vec<u8>,
    /// A type's full name, made for a marker ([`Walker::stopped_at`]).
    pub(super) name: String,
}

impl<'o, 'l, S: Sink> Walker<'o, 'l, S> {
    /// A walker writing one snapshot at the end of `out`.
    ///
    /// # Safety
    /// The GIL is held.
    pub(super) unsafe fn new(out: &'o mut S, limits: &'l SnapshotLimits) -> Self {
        Self {
            enc: Encoder::new(out),
            limits,
            max_items: isize::try_from(limits.max_items).unwrap_or(isize::MAX),
            max_depth: usize::try_from(limits.max_depth).map_or(MAX_DEPTH, |d| d.min(MAX_DEPTH)),
            walked: 0,
            max_nodes: match limits.max_nodes {
                0 => u32::MAX,
                n => n,
            },
            // SAFETY: GIL held (caller).
            probe: unsafe { pytype::probe() },
            path: [std::ptr::null_mut(); MAX_DEPTH],
            depth: 0,
            scratch: Vec::new(),
            name: String::new(),
        }
    }
}

impl<S: Sink> Walker<'_, '_, S> {
    /// Writes any value.
    pub(super) unsafe fn value(&mut self, obj: *mut PyObject) {
        self.walked = self.walked.saturating_add(1);
        // SAFETY: GIL held, live object (callers); exact type checks pick the concrete API.
        unsafe {
            // Scalars, most of what a walk meets, skip the dispatch below (and the frames of
            // `builtin` and `contents`).
            if let Some(scalar) = Scalar::read(obj) {
                scalar.write(&mut self.enc, self.limits);
                return;
            }
            if obj.is_null() {
                self.enc.opaque("NULL");
                return;
            }
            let tp = ffi::Py_TYPE(obj);
            if let Some(builtin) = Builtin::of(tp) {
                self.builtin(obj, builtin);
            } else {
                self.other(obj, tp);
            }
        }
    }

    /// Writes a built-in value (or a subclass instance's built-in contents), entering
    /// containers.
    pub(super) unsafe fn builtin(&mut self, obj: *mut PyObject, builtin: Builtin) {
        // SAFETY: GIL held, `obj` is an instance of `builtin` (callers).
        unsafe {
            if builtin.is_container() {
                if let Err(stop) = self.enter(obj) {
                    self.stopped(stop, builtin.name());
                    return;
                }
                self.contents(obj, builtin);
                self.leave();
            } else {
                self.contents(obj, builtin);
            }
        }
    }

    /// Writes the built-in part of `obj` (already entered, for containers).
    pub(super) unsafe fn contents(&mut self, obj: *mut PyObject, builtin: Builtin) {
        // SAFETY: GIL held; `obj` is an instance (maybe a subclass) of `builtin`.
        unsafe {
            match builtin {
                Builtin::Int => self.int(obj),
                Builtin::Float => self.enc.float(ffi::PyFloat_AS_DOUBLE(obj)),
                Builtin::Complex => self.enc.complex(
                    ffi::PyComplex_RealAsDouble(obj),
                    ffi::PyComplex_ImagAsDouble(obj),
                ),
                Builtin::Str => self.str(obj),
                Builtin::Bytes => {
                    let data = raw_slice(ffi::PyBytes_AS_STRING(obj).cast(), ffi::Py_SIZE(obj));
                    self.bytes(BytesKind::Bytes, data);
                }
                Builtin::ByteArray => {
                    let data = raw_slice(
                        ffi::PyByteArray_AS_STRING(obj).cast_const().cast(),
                        ffi::PyByteArray_GET_SIZE(obj),
                    );
                    self.bytes(BytesKind::ByteArray, data);
                }
                Builtin::Tuple => self.tuple(obj),
                Builtin::List => self.list(obj),
                Builtin::Dict => self.dict(obj),
                Builtin::Set | Builtin::FrozenSet => self.set(obj, builtin == Builtin::Set),
                Builtin::NdArray => self.array(obj, "numpy.ndarray"),
            }
        }
    }

    /// Whether another item of `shown` so far fits in the container being written: under the
    /// item limit, and the node budget not spent. Items that do not are counted as left out.
    #[inline]
    pub(super) fn room(&self, shown: isize) -> bool {
        shown < self.max_items && self.walked < self.max_nodes
    }

    /// Pushes container `obj` on the path (holding a reference), or says why not. NULL stands
    /// for a container made up for the snapshot, which no value can be. Past the node budget
    /// (only values no container's [`Walker::room`] is asked for get there: later arguments),
    /// nothing is entered.
    pub(super) unsafe fn enter(&mut self, obj: *mut PyObject) -> Result<(), Stop> {
        if !obj.is_null() {
            if let Some(at) = self.path[..self.depth].iter().rposition(|&p| p == obj) {
                return Err(Stop::Cycle((self.depth - at) as u64));
            }
        }
        if self.depth >= self.max_depth || self.walked > self.max_nodes {
            return Err(Stop::Depth);
        }
        // SAFETY: GIL held; the reference is dropped in `leave`.
        unsafe { ffi::Py_XINCREF(obj) };
        self.path[self.depth] = obj;
        self.depth += 1;
        Ok(())
    }

    pub(super) unsafe fn leave(&mut self) {
        self.depth -= 1;
        // SAFETY: the reference taken in `enter`.
        unsafe { ffi::Py_XDECREF(self.path[self.depth]) };
    }

    pub(super) fn stopped(&mut self, stop: Stop, type_name: &str) {
        match stop {
            Stop::Cycle(levels) => self.enc.cycle(levels),
            Stop::Depth => self.enc.depth_limit(type_name),
        }
    }

    /// [`Walker::stopped`] at an object of the type named `name`, whose full name is made only
    /// for a depth limit (in [`Walker::name`], no allocation once it is big enough).
    pub(super) fn stopped_at(&mut self, stop: Stop, name: TypeName<'_>) {
        match stop {
            Stop::Cycle(levels) => self.enc.cycle(levels),
            Stop::Depth => {
                name.full_into(&mut self.name);
                self.enc.depth_limit(&self.name);
            }
        }
    }

    #[inline]
    pub(super) unsafe fn int(&mut self, obj: *mut PyObject) {
        // SAFETY: GIL held; `obj` is an int (maybe a subclass: read as int, no `__index__`).
        unsafe {
            let mut overflow = 0;
            let v = ffi::PyLong_AsLongLongAndOverflow(obj, &raw mut overflow);
            if overflow == 0 && v != -1 {
                self.enc.int(v);
            } else {
                self.int_rest(obj, v, overflow);
            }
        }
    }

    /// [`Walker::int`] of an int that read as -1 (maybe an error) or is outside i64.
    #[cold]
    #[inline(never)]
    unsafe fn int_rest(&mut self, obj: *mut PyObject, v: i64, overflow: std::ffi::c_int) {
        // SAFETY: GIL held; `obj` is an int.
        unsafe {
            if overflow == 0 {
                if ffi::PyErr_Occurred().is_null() {
                    self.enc.int(v);
                } else {
                    ffi::PyErr_Clear();
                    self.enc.opaque("int");
                }
                return;
            }
            // Outside i64: via hex, which is linear and has no digit limit.
            let hex = ffi::PyNumber_ToBase(obj, 16);
            if let Some((negative, magnitude)) =
                utf8(hex).and_then(|s| parse_hex(s, self.limits.hash_over_bytes))
            {
                self.enc.big_int(negative, &magnitude);
            } else {
                ffi::PyErr_Clear();
                self.enc.opaque("int");
            }
            ffi::Py_XDECREF(hex);
        }
    }

    #[inline]
    pub(super) unsafe fn str(&mut self, obj: *mut PyObject) {
        // SAFETY: GIL held; `obj` is a str (maybe a subclass), ready (PEP 393).
        unsafe {
            if let Some(text) = compat::unicode::compact_ascii(obj) {
                self.enc.str_limited(text, self.limits.max_str_bytes);
            } else {
                self.non_ascii_str(obj);
            }
        }
    }

    /// [`Walker::str`] of a str that is not compact ASCII.
    #[inline(never)]
    unsafe fn non_ascii_str(&mut self, obj: *mut PyObject) {
        // SAFETY: GIL held; `obj` is a ready str.
        unsafe {
            let len = usize::try_from(ffi::PyUnicode_GET_LENGTH(obj)).unwrap_or(0);
            let max = self.limits.max_str_bytes;
            if len <= max {
                if let Some(s) = utf8(obj) {
                    self.enc.str_limited(s, max);
                    return;
                }
            } else if self.long_str(obj, len) {
                return;
            }
            // Lone surrogates have no UTF-8: str's own (C) repr escapes them.
            self.c_repr(obj, "str");
        }
    }

    /// A non-ASCII str longer than the limit: the start converted to UTF-8, the whole hashed in
    /// its in-memory form (no UTF-8 copy of all of it is made and cached in the object).
    pub(super) unsafe fn long_str(&mut self, obj: *mut PyObject, len: usize) -> bool {
        // SAFETY: GIL held; `obj` is a ready non-ASCII str of `len` characters.
        unsafe {
            let max = self.limits.max_str_bytes;
            let head = ffi::PyUnicode_Substring(obj, 0, isize::try_from(max).unwrap_or(isize::MAX));
            let Some(head_text) = utf8(head) else {
                ffi::Py_XDECREF(head);
                ffi::PyErr_Clear();
                return false;
            };
            let mut cut = head_text.len().min(max);
            while !head_text.is_char_boundary(cut) {
                cut -= 1;
            }
            let prefix = &head_text[..cut];
            // 1, 2 or 4 bytes per character.
            let kind = ffi::PyUnicode_KIND(obj);
            let mut hasher = ContentHasher::new();
            hasher.update(&kind.to_le_bytes());
            hasher.update(std::slice::from_raw_parts(
                ffi::PyUnicode_DATA(obj).cast::<u8>(),
                len * kind as usize,
            ));
            let omitted = (len - prefix.chars().count()) as u64;
            self.enc.str_truncated(prefix, omitted, hasher.finish());
            ffi::Py_DECREF(head);
            true
        }
    }

    fn bytes(&mut self, kind: BytesKind, data: &[u8]) {
        if data.len() <= self.limits.hash_over_bytes {
            self.enc.bytes(kind, data);
        } else {
            let hash = content_hash(data);
            self.enc.bytes_hashed(kind, data.len() as u64, hash);
        }
    }

    pub(super) unsafe fn tuple(&mut self, obj: *mut PyObject) {
        // SAFETY: GIL held; a tuple (held on the path) keeps its items alive.
        unsafe {
            let n = ffi::PyTuple_GET_SIZE(obj);
            self.enc.begin_tuple();
            let mut i = 0;
            while i < n && self.room(i) {
                self.value(ffi::PyTuple_GET_ITEM(obj, i));
                i += 1;
            }
            self.enc.end(left_out(n, i));
        }
    }

    pub(super) unsafe fn list(&mut self, obj: *mut PyObject) {
        // SAFETY: GIL held; the size is re-read and each item held while it is written, since a
        // C repr below could run code that changes the list.
        unsafe {
            self.enc.begin_list();
            let mut i = 0;
            while self.room(i) && i < ffi::PyList_GET_SIZE(obj) {
                let item = ffi::PyList_GET_ITEM(obj, i);
                ffi::Py_INCREF(item);
                self.value(item);
                ffi::Py_DECREF(item);
                i += 1;
            }
            self.enc.end(left_out(ffi::PyList_GET_SIZE(obj), i));
        }
    }

    pub(super) unsafe fn dict(&mut self, obj: *mut PyObject) {
        // SAFETY: GIL held; PyDict_Next reads the table directly (no overridden methods run);
        // keys and values are held while written.
        unsafe {
            self.enc.begin_dict();
            let mut pos: ffi::Py_ssize_t = 0;
            let mut key = std::ptr::null_mut();
            let mut value = std::ptr::null_mut();
            let mut shown = 0;
            while self.room(shown)
                && ffi::PyDict_Next(obj, &raw mut pos, &raw mut key, &raw mut value) != 0
            {
                ffi::Py_INCREF(key);
                ffi::Py_INCREF(value);
                self.value(key);
                self.value(value);
                ffi::Py_DECREF(key);
                ffi::Py_DECREF(value);
                shown += 1;
            }
            self.enc.end(left_out(ffi::PyDict_Size(obj), shown));
        }
    }

    pub(super) unsafe fn set(&mut self, obj: *mut PyObject, mutable: bool) {
        // SAFETY: GIL held; `set`'s own (C) iterator, whatever a subclass's `__iter__` says.
        unsafe {
            if mutable {
                self.enc.begin_set();
            } else {
                self.enc.begin_frozenset();
            }
            let iter = match ffi::PySet_Type.tp_iter {
                Some(set_iter) => set_iter(obj),
                None => std::ptr::null_mut(),
            };
            let mut shown = 0;
            if !iter.is_null() {
                shown = self.items_of(iter);
                ffi::Py_DECREF(iter);
            }
            ffi::PyErr_Clear();
            self.enc.end(left_out(ffi::PySet_Size(obj), shown));
        }
    }

    /// The items of iterator `iter` (consumed) written as a list, as `list(iter)` would be,
    /// without making that list. An item that fails to come ends the list there (error
    /// cleared).
    pub(super) unsafe fn iterated_list(&mut self, iter: *mut PyObject) {
        // SAFETY: GIL held; `iter` is a live iterator. The list has no identity on the path
        // (it could not be one of the values' ancestors), but counts as a level.
        unsafe {
            if let Err(stop) = self.enter(std::ptr::null_mut()) {
                self.stopped(stop, Builtin::List.name());
                return;
            }
            self.enc.begin_list();
            self.items_of(iter);
            // What `list()` would have held past the limit.
            let mut rest = 0;
            loop {
                let item = ffi::PyIter_Next(iter);
                if item.is_null() {
                    break;
                }
                ffi::Py_DECREF(item);
                rest += 1;
            }
            ffi::PyErr_Clear();
            self.enc.end(rest);
            self.leave();
        }
    }

    /// Writes the next items of iterator `iter` while there is [room](Walker::room); returns how
    /// many. Stops
    /// early at its end or an error (left set).
    unsafe fn items_of(&mut self, iter: *mut PyObject) -> isize {
        // SAFETY: GIL held; each item is held while it is written.
        unsafe {
            let mut shown = 0;
            while self.room(shown) {
                let item = ffi::PyIter_Next(iter);
                if item.is_null() {
                    break;
                }
                self.value(item);
                ffi::Py_DECREF(item);
                shown += 1;
            }
            shown
        }
    }

    /// `repr()` of an object whose type's repr is C code from a module known to run no Python
    /// code in it ([`SAFE_REPR_MODULES`]); `<unrepresentable T>` if it raises, `<T object>`
    /// otherwise. (Some C reprs call Python: asyncio's Future and Task, or `deque` and `partial`
    /// through what they hold. Python code can release the GIL in the middle of a callback.)
    pub(super) unsafe fn c_repr(&mut self, obj: *mut PyObject, type_name: &str) {
        // SAFETY: GIL held; `obj` is live.
        unsafe {
            let tp = ffi::Py_TYPE(obj);
            let safe =
                safe_repr_type(tp, type_name) && self.probe.is_some_and(|p| p.has_c_repr(tp));
            self.repr_if(obj, type_name, safe);
        }
    }

    /// [`Walker::c_repr`] once its type is known to be `safe` or not.
    pub(super) unsafe fn repr_if(&mut self, obj: *mut PyObject, type_name: &str, safe: bool) {
        // SAFETY: GIL held; the repr is C code (the caller checked), its error cleared.
        unsafe {
            if !safe {
                self.enc.opaque(type_name);
                return;
            }
            let text = ffi::PyObject_Repr(obj);
            if let Some(s) = utf8(text) {
                self.enc.repr(type_name, s, self.limits.max_str_bytes);
            } else {
                ffi::PyErr_Clear();
                self.enc.unrepresentable(type_name);
            }
            ffi::Py_XDECREF(text);
        }
    }
}

/// Modules whose C types' reprs are called for snapshots (besides real builtins).
const SAFE_REPR_MODULES: [&str; 4] = ["datetime", "decimal", "_decimal", "_thread"];

/// Is `tp` (named `type_name`) a type whose repr runs no Python code: one of the builtins (looked
/// up by name, since some static types have no module in their name on 3.12, e.g. `deque`), or a
/// type of [`SAFE_REPR_MODULES`]?
pub(super) unsafe fn safe_repr_type(tp: *mut ffi::PyTypeObject, type_name: &str) -> bool {
    if let Some((module, _)) = type_name.rsplit_once('.') {
        return SAFE_REPR_MODULES.contains(&module);
    }
    let Ok(name) = std::ffi::CString::new(type_name) else {
        return false;
    };
    // SAFETY: GIL held (caller); both calls return borrowed references or NULL.
    unsafe {
        let builtins = ffi::PyEval_GetBuiltins();
        !builtins.is_null()
            && ffi::PyDict_GetItemString(builtins, name.as_ptr()) == tp.cast::<PyObject>()
    }
}

/// `len` bytes at `data` (empty for a NULL or negative length).
unsafe fn raw_slice<'a>(data: *const u8, len: ffi::Py_ssize_t) -> &'a [u8] {
    match usize::try_from(len) {
        // SAFETY: the object's buffer of `len` bytes, alive while the object is.
        Ok(len) if len > 0 && !data.is_null() => unsafe { std::slice::from_raw_parts(data, len) },
        _ => &[],
    }
}

/// Parses `int.__format__`-style hex (`-0x1f`) into sign and big-endian magnitude; `None` if
/// the magnitude is longer than `max_bytes`.
pub(super) fn parse_hex(text: &str, max_bytes: usize) -> Option<(bool, Vec<u8>)> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let digits = rest.strip_prefix("0x")?.as_bytes();
    if digits.len().div_ceil(2) > max_bytes {
        return None;
    }
    let nibble = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut magnitude = Vec::with_capacity(digits.len().div_ceil(2));
    let (head, tail) = digits.split_at(digits.len() % 2);
    if let [c] = head {
        magnitude.push(nibble(*c)?);
    }
    for pair in tail.chunks_exact(2) {
        magnitude.push(nibble(pair[0])? << 4 | nibble(pair[1])?);
    }
    Some((negative, magnitude))
}

/// How many of `n` entries were left out when `shown` were written.
pub(super) fn left_out(n: ffi::Py_ssize_t, shown: ffi::Py_ssize_t) -> u64 {
    u64::try_from(n.saturating_sub(shown)).unwrap_or(0)
}
