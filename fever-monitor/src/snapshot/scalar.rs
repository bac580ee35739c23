//! The fast path for the most common snapshots: a value that is `None`, a bool, an exact int
//! that fits in 64 bits, an exact float or an exact compact-ASCII str, and arguments that are
//! all such values (or none at all). These are read through the concrete C API without
//! running Python code, raising or panicking, so they skip what the general path sets up per
//! snapshot (the pending exception set aside, `catch_unwind`, a [`Walker`](super::walker::Walker))
//! and go straight to an [`Encoder`]. They write the same bytes and the same [`Snapped`] as the
//! walker does; anything else says `None` and the caller takes the general path.

use fever_core::snapshot::{Encoder, Sink, Snapped};
use pyo3::ffi::{self, PyObject};

use super::SnapshotLimits;
use crate::compat;

/// A value the fast path records, read from its object.
#[derive(Debug, Clone, Copy)]
pub(super) enum Scalar<'a> {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// ASCII text (its own UTF-8), whole: the encoder cuts it to the str limit.
    Str(&'a str),
}

impl Scalar<'_> {
    /// Reads `obj` if it is one of the fast path's values (exact types only, so no subclass
    /// can override anything). Sets no error.
    ///
    /// # Safety
    /// The GIL is held; `obj` is NULL or a live object that outlives the result.
    #[inline]
    pub(super) unsafe fn read<'a>(obj: *mut PyObject) -> Option<Scalar<'a>> {
        // SAFETY: GIL held, live object (caller); exact type checks pick the concrete API.
        unsafe {
            if obj.is_null() {
                return None;
            }
            if obj == ffi::Py_None() {
                return Some(Scalar::None);
            }
            let tp = ffi::Py_TYPE(obj);
            if tp == &raw mut ffi::PyLong_Type {
                let mut overflow = 0;
                let v = ffi::PyLong_AsLongLongAndOverflow(obj, &raw mut overflow);
                // -1 may be an error, and big ints take the walker's path.
                (overflow == 0 && v != -1).then_some(Scalar::Int(v))
            } else if tp == &raw mut ffi::PyUnicode_Type {
                compat::unicode::compact_ascii(obj).map(Scalar::Str)
            } else if tp == &raw mut ffi::PyBool_Type {
                Some(Scalar::Bool(obj == ffi::Py_True()))
            } else if tp == &raw mut ffi::PyFloat_Type {
                Some(Scalar::Float(ffi::PyFloat_AS_DOUBLE(obj)))
            } else {
                None
            }
        }
    }

    /// Writes the value as the walker would.
    #[inline]
    pub(super) fn write<S: Sink>(self, enc: &mut Encoder<'_, S>, limits: &SnapshotLimits) {
        match self {
            Scalar::None => enc.none(),
            Scalar::Bool(b) => enc.bool(b),
            Scalar::Int(v) => enc.int(v),
            Scalar::Float(v) => enc.float(v),
            Scalar::Str(s) => enc.str_limited(s, limits.max_str_bytes),
        }
    }
}

/// The snapshot of `obj` appended to `out`, if it is a fast-path value.
///
/// # Safety
/// The GIL is held; `obj` is NULL or a live object.
#[inline]
pub(super) unsafe fn value<S: Sink>(
    obj: *mut PyObject,
    limits: &SnapshotLimits,
    out: &mut S,
) -> Option<Snapped> {
    // SAFETY: GIL held, live object (caller).
    let scalar = unsafe { Scalar::read(obj) }?;
    let mut enc = Encoder::new(out);
    scalar.write(&mut enc, limits);
    Some(enc.finish())
}

/// The snapshot of a call's arguments appended to `out`, if every non-NULL value is a
/// fast-path value (otherwise nothing is left written).
///
/// # Safety
/// The GIL is held; every non-NULL value is a live object.
#[inline]
pub(super) unsafe fn args<N: AsRef<str>, S: Sink>(
    names: &[N],
    values: &[*mut PyObject],
    limits: &SnapshotLimits,
    out: &mut S,
) -> Option<Snapped> {
    let start = out.written();
    let mut enc = Encoder::new(out);
    enc.begin_args();
    for (name, &value) in names.iter().zip(values) {
        if value.is_null() {
            continue;
        }
        // SAFETY: GIL held, live value (caller).
        let Some(scalar) = (unsafe { Scalar::read(value) }) else {
            drop(enc);
            out.rewind(start);
            return None;
        };
        enc.field(name.as_ref());
        scalar.write(&mut enc, limits);
    }
    enc.end(0);
    Some(enc.finish())
}
