//! numpy arrays and memoryviews, read through the buffer protocol: shape, element type, and
//! the bytes in C order, read in place when contiguous and gathered by strides otherwise;
//! copied when small, content-hashed when big.

use std::ffi::{c_char, CStr};

use fever_core::snapshot::{content_hash, ArrayContent, ArrayInfo, BytesKind, ContentHasher, Sink};
use pyo3::ffi::{self, PyObject};

use super::walker::Walker;

/// `PyBuffer_IsContiguous`'s order argument for C order (`'C'`; `c_char` is signed on some
/// targets, unsigned on others).
#[allow(clippy::cast_possible_wrap)] // ASCII
const C_ORDER: c_char = b'C' as c_char;

/// An acquired buffer, released on drop (the GIL must be held for the whole life of it).
struct Buffer {
    view: ffi::Py_buffer,
}

impl Buffer {
    /// Asks `obj` for a strided, formatted, read-only view; `None` (error cleared) if it has
    /// none (object arrays, released memoryviews).
    ///
    /// # Safety
    /// GIL held; `obj` is live.
    unsafe fn get(obj: *mut PyObject) -> Option<Self> {
        let mut view = ffi::Py_buffer::new();
        // SAFETY: GIL held; `view` is released by Drop only when acquired.
        unsafe {
            if ffi::PyObject_GetBuffer(obj, &raw mut view, ffi::PyBUF_RECORDS_RO) != 0 {
                ffi::PyErr_Clear();
                return None;
            }
        }
        Some(Self { view })
    }

    fn dims(&self, p: *const ffi::Py_ssize_t) -> &[ffi::Py_ssize_t] {
        let ndim = usize::try_from(self.view.ndim).unwrap_or(0);
        if p.is_null() || ndim == 0 {
            return &[];
        }
        // SAFETY: the exporter provides `ndim` entries while the view is held.
        unsafe { std::slice::from_raw_parts(p, ndim) }
    }

    /// The dimensions (empty for a scalar view).
    fn shape(&self) -> Vec<u64> {
        self.dims(self.view.shape)
            .iter()
            .map(|&d| u64::try_from(d).unwrap_or(0))
            .collect()
    }

    /// The struct-module format of one element (`d`, `<i4`, `B`...).
    fn format(&self) -> &str {
        if self.view.format.is_null() {
            return "B";
        }
        // SAFETY: a NUL-terminated string owned by the exporter while the view is held.
        unsafe { CStr::from_ptr(self.view.format.cast::<c_char>()) }
            .to_str()
            .unwrap_or("?")
    }

    /// The elements are (or contain) object pointers (`O`), whose bytes are addresses, not
    /// data.
    fn holds_objects(&self) -> bool {
        self.format().contains('O')
    }

    /// Bytes per element.
    fn itemsize(&self) -> usize {
        usize::try_from(self.view.itemsize).unwrap_or(0)
    }

    /// Length of the data in bytes.
    fn nbytes(&self) -> u64 {
        u64::try_from(self.view.len).unwrap_or(0)
    }

    /// The data as one slice when it is C-contiguous.
    fn contiguous(&self) -> Option<&[u8]> {
        // SAFETY: the view is held; `buf` spans `len` bytes when C-contiguous.
        unsafe {
            if ffi::PyBuffer_IsContiguous(&raw const self.view, C_ORDER) == 0 {
                return None;
            }
            let len = usize::try_from(self.view.len).ok()?;
            if len == 0 {
                return Some(&[]);
            }
            Some(std::slice::from_raw_parts(self.view.buf.cast::<u8>(), len))
        }
    }

    /// Calls `f` with the data in C order, in pieces; `false` if the layout is indirect
    /// (suboffsets), which this does not follow.
    fn for_each_piece(&self, f: &mut dyn FnMut(&[u8])) -> bool {
        if !self.view.suboffsets.is_null() {
            return false;
        }
        let Ok(itemsize) = usize::try_from(self.view.itemsize) else {
            return false;
        };
        let shape = self.dims(self.view.shape);
        let strides = self.dims(self.view.strides);
        if strides.len() != shape.len() || shape.iter().any(|&d| d <= 0) {
            return strides.len() == shape.len();
        }
        // SAFETY: the exporter guarantees every index within `shape` addresses `itemsize`
        // readable bytes at `buf + sum(index * stride)` while the view is held.
        unsafe { walk(self.view.buf.cast::<u8>(), shape, strides, itemsize, f) };
        true
    }

    /// The data for a snapshot: copied (into `scratch` when not contiguous) up to `max_copy`
    /// bytes, hashed above that; `Unavailable` for indirect layouts.
    fn content<'s>(&'s self, max_copy: usize, scratch: &'s mut Vec<u8>) -> ArrayContent<'s> {
        let nbytes = self.nbytes();
        if let Some(data) = self.contiguous() {
            return if data.len() <= max_copy {
                ArrayContent::Data(data)
            } else {
                ArrayContent::Hashed {
                    nbytes,
                    hash: content_hash(data),
                }
            };
        }
        if usize::try_from(nbytes).is_ok_and(|n| n <= max_copy) {
            scratch.clear();
            if self.for_each_piece(&mut |piece| scratch.extend_from_slice(piece)) {
                return ArrayContent::Data(scratch);
            }
        } else {
            let mut hasher = ContentHasher::new();
            if self.for_each_piece(&mut |piece| hasher.update(piece)) {
                return ArrayContent::Hashed {
                    nbytes,
                    hash: hasher.finish(),
                };
            }
        }
        ArrayContent::Unavailable { nbytes }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: acquired in `get`; the GIL is held for the whole life of a Buffer.
        unsafe { ffi::PyBuffer_Release(&raw mut self.view) };
    }
}

/// Visits a strided block in C order; rows whose elements are adjacent go in one piece.
unsafe fn walk(
    base: *const u8,
    shape: &[ffi::Py_ssize_t],
    strides: &[ffi::Py_ssize_t],
    itemsize: usize,
    f: &mut dyn FnMut(&[u8]),
) {
    match (shape, strides) {
        ([], _) => {
            // SAFETY: one element (caller's contract).
            f(unsafe { std::slice::from_raw_parts(base, itemsize) });
        }
        ([n], [stride]) if usize::try_from(*stride).ok() == Some(itemsize) => {
            let len = usize::try_from(*n).unwrap_or(0) * itemsize;
            // SAFETY: `n` adjacent elements.
            f(unsafe { std::slice::from_raw_parts(base, len) });
        }
        ([n, inner_shape @ ..], [stride, inner_strides @ ..]) => {
            for i in 0..*n {
                // SAFETY: within the exporter's block (caller's contract).
                unsafe {
                    walk(
                        base.offset(i * stride),
                        inner_shape,
                        inner_strides,
                        itemsize,
                        f,
                    );
                }
            }
        }
        _ => {}
    }
}

impl<S: Sink> Walker<'_, '_, S> {
    pub(super) unsafe fn array(&mut self, obj: *mut PyObject, type_name: &str) {
        // SAFETY: GIL held; the buffer is released before returning.
        unsafe {
            let Some(buffer) = Buffer::get(obj).filter(|b| !b.holds_objects()) else {
                self.unreadable_array(obj, type_name);
                return;
            };
            let shape = buffer.shape();
            let dtype = dtype_name(buffer.format(), buffer.itemsize())
                .or_else(|| array_typestr(obj))
                .unwrap_or_else(|| buffer.format().to_owned());
            let mut scratch = std::mem::take(&mut self.scratch);
            let content = buffer.content(self.limits.hash_over_bytes, &mut scratch);
            self.enc.array(&ArrayInfo {
                type_name,
                dtype: &dtype,
                shape: &shape,
                content,
            });
            self.scratch = scratch;
        }
    }

    /// An array without readable data (object dtype...): shape and dtype from its C attributes.
    unsafe fn unreadable_array(&mut self, obj: *mut PyObject, type_name: &str) {
        // SAFETY: GIL held; `shape` on an exact ndarray is numpy's C getter.
        unsafe {
            let shape_obj = ffi::PyObject_GetAttrString(obj, c"shape".as_ptr());
            let mut shape = Vec::new();
            if !shape_obj.is_null() && ffi::PyTuple_Check(shape_obj) != 0 {
                for i in 0..ffi::PyTuple_GET_SIZE(shape_obj) {
                    let dim = ffi::PyLong_AsLongLong(ffi::PyTuple_GET_ITEM(shape_obj, i));
                    shape.push(u64::try_from(dim).unwrap_or(0));
                }
            }
            ffi::Py_XDECREF(shape_obj);
            ffi::PyErr_Clear();
            let dtype = array_typestr(obj).unwrap_or_else(|| "?".to_owned());
            self.enc.array(&ArrayInfo {
                type_name,
                dtype: &dtype,
                shape: &shape,
                content: ArrayContent::Unavailable { nbytes: 0 },
            });
        }
    }

    pub(super) unsafe fn memoryview(&mut self, obj: *mut PyObject) {
        // SAFETY: GIL held; the buffer is released before returning.
        unsafe {
            let Some(buffer) = Buffer::get(obj).filter(|b| !b.holds_objects()) else {
                self.enc.opaque("memoryview");
                return;
            };
            let mut scratch = std::mem::take(&mut self.scratch);
            match buffer.content(self.limits.hash_over_bytes, &mut scratch) {
                ArrayContent::Data(data) => self.enc.bytes(BytesKind::MemoryView, data),
                ArrayContent::Hashed { nbytes, hash } => {
                    self.enc.bytes_hashed(BytesKind::MemoryView, nbytes, hash);
                }
                ArrayContent::Unavailable { .. } => self.enc.opaque("memoryview"),
            }
            self.scratch = scratch;
        }
    }
}

/// An ndarray's `dtype.str` (`<f8`, `|O`), numpy's own C getters.
unsafe fn array_typestr(obj: *mut PyObject) -> Option<String> {
    // SAFETY: GIL held; attributes of an exact ndarray and its dtype are C getters.
    unsafe {
        let dtype = ffi::PyObject_GetAttrString(obj, c"dtype".as_ptr());
        let typestr = if dtype.is_null() {
            std::ptr::null_mut()
        } else {
            ffi::PyObject_GetAttrString(dtype, c"str".as_ptr())
        };
        let result = crate::code_object::utf8(typestr).map(str::to_owned);
        ffi::Py_XDECREF(typestr);
        ffi::Py_XDECREF(dtype);
        ffi::PyErr_Clear();
        result
    }
}

/// numpy's name for an element of struct-module format `format` and `itemsize` bytes (`<d`, 8
/// -> `float64`), when it is a plain number type; `None` for records and anything unusual.
fn dtype_name(format: &str, itemsize: usize) -> Option<String> {
    let code = format.trim_start_matches(['<', '>', '=', '@', '!', '|']);
    let kind = match code {
        "?" => return Some("bool".to_owned()),
        "b" | "h" | "i" | "l" | "q" | "n" => "int",
        "B" | "H" | "I" | "L" | "Q" | "N" => "uint",
        "e" | "f" | "d" | "g" => "float",
        "Zf" | "Zd" | "Zg" => "complex",
        _ => return None,
    };
    Some(format!("{kind}{}", itemsize * 8))
}

#[cfg(test)]
mod tests {
    use super::dtype_name;

    #[test]
    fn formats_map_to_numpy_names() {
        assert_eq!(dtype_name("<d", 8).as_deref(), Some("float64"));
        assert_eq!(dtype_name("B", 1).as_deref(), Some("uint8"));
        assert_eq!(dtype_name("l", 8).as_deref(), Some("int64"));
        assert_eq!(dtype_name("Zd", 16).as_deref(), Some("complex128"));
        assert_eq!(dtype_name("T{<i:a:}", 4), None);
    }
}
