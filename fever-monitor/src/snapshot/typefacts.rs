//! What the walker decides about a type once per type rather than once per object. For a C
//! type ([`Facts`], here): whether its instances are recorded by their reduction
//! ([`Walker::reduced`](super::walker::Walker)) and which C method makes it, and whether its repr
//! may be called. For a Python class: how its instances are laid out and recorded
//! ([`ClassFacts`](super::classfacts::ClassFacts)). Finding out costs attribute lookups on the
//! type and its MRO, a lookup in `builtins` and string building; a snapshot-heavy program meets
//! the same few types (iterators, generators, `map`, `zip`, its own classes) millions of times.
//!
//! The facts are kept per thread in small direct-mapped [`Table`]s keyed by the type's address
//! *and* its `tp_version_tag`. A version tag is given to one type only (`CPython`'s counter never
//! goes back) and is changed when the type or a base is modified, so a type freed and another
//! allocated at the same address, or a class whose `__reduce__` (or `__slots__`, or bases) is
//! assigned later, never reads the old facts. A type without a tag (`CPython` ran out of them for
//! it) is not cached.

use std::cell::RefCell;
use std::ffi::c_int;

use pyo3::ffi::{PyObject, PyTypeObject};

unsafe extern "C" {
    /// Gives `tp` a version tag if it has none; 1 when it has one (3.12+).
    fn PyUnstable_Type_AssignVersionTag(tp: *mut PyTypeObject) -> c_int;
}

/// One type's facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Facts {
    /// How its instances are recorded by their reduction, if they are.
    pub reduce: Reduction,
    /// Its `repr()` is C code that runs no Python code and says more than `<T object>`.
    pub safe_repr: bool,
}

/// How the reduction of an instance of a C type is made, when the type's `__reduce_ex__` and
/// `__reduce__` are C code that can succeed (outside `itertools`). The method descriptors are
/// borrowed from the dicts of the type's MRO: alive and current as long as the type keeps the
/// version tag its facts were cached under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reduction {
    /// Not recorded by its reduction.
    Never,
    /// `method(obj)`: the type's own C `__reduce__`, which `object.__reduce_ex__` (inherited)
    /// would look up and call.
    Reduce(*mut PyObject),
    /// `method(obj, 2)`: a C `__reduce_ex__` (the type's own, or `object`'s over `object`'s
    /// `__reduce__`).
    ReduceEx(*mut PyObject),
    /// `obj.__reduce_ex__(2)` looked up on the object: C code, but not a method descriptor.
    ByName,
    /// An exact `collections.deque` (whose `__reduce__` is its own C method): its reduction
    /// `(deque, () or ((), maxlen), None, iter(d))` made here. `deque.__reduce__` would make the
    /// same, but its state comes from `object.__getstate__`, which runs `copyreg._slotnames` in
    /// Python each time (it cannot cache `__slotnames__` on the immutable type), ~10,800
    /// instructions a deque.
    Deque,
}

/// What is known of the types met on this thread, in `N` slots (a power of two), each holding
/// the last type seen there.
pub(super) struct Table<T, const N: usize> {
    slots: [RefCell<Entry<T>>; N],
}

struct Entry<T> {
    tp: usize,
    tag: u32,
    value: Option<T>,
}

impl<T: Clone, const N: usize> Table<T, N> {
    pub(super) const fn new() -> Self {
        Self {
            slots: [const {
                RefCell::new(Entry {
                    tp: 0,
                    tag: 0,
                    value: None,
                })
            }; N],
        }
    }

    /// What is known of `tp`, computed by `find` on the first sight of this type at this
    /// version.
    ///
    /// # Safety
    /// GIL held; `tp` is a live type.
    pub(super) unsafe fn get(&self, tp: *mut PyTypeObject, find: impl FnOnce() -> T) -> T {
        // SAFETY: GIL held, live type (caller).
        let tag = unsafe { version_tag(tp) };
        if tag == 0 {
            return find();
        }
        let address = tp as usize;
        let slot = &self.slots[slot_of(address, N)];
        if let Ok(entry) = slot.try_borrow() {
            if entry.tp == address && entry.tag == tag {
                if let Some(value) = &entry.value {
                    return value.clone();
                }
            }
        }
        let value = find();
        // `find` ran C code only (lookups on the type): the tag still holds.
        if let Ok(mut entry) = slot.try_borrow_mut() {
            *entry = Entry {
                tp: address,
                tag,
                value: Some(value.clone()),
            };
        }
        value
    }
}

thread_local! {
    static C_TYPES: Table<Facts, 256> = const { Table::new() };
}

/// The facts of the C type `tp`, computed by `find` on the first sight of this type at this
/// version.
///
/// # Safety
/// GIL held; `tp` is a live type.
pub(super) unsafe fn facts(tp: *mut PyTypeObject, find: impl FnOnce() -> Facts) -> Facts {
    // SAFETY: GIL held, live type (caller).
    C_TYPES.with(|table| unsafe { table.get(tp, find) })
}

/// The slot of the type at `address` in a table of `n` slots (a power of two): the top bits of
/// a Fibonacci hash, which spread types allocated at regular strides.
fn slot_of(address: usize, n: usize) -> usize {
    let hash = (address as u64 >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    hash.checked_shr(64 - n.trailing_zeros()).unwrap_or(0) as usize
}

/// `tp`'s version tag, given one if it has none; 0 if it cannot have one.
unsafe fn version_tag(tp: *mut PyTypeObject) -> u32 {
    // SAFETY: GIL held, live type (caller).
    unsafe {
        let tag = (*tp).tp_version_tag;
        if tag != 0 {
            return tag;
        }
        if PyUnstable_Type_AssignVersionTag(tp) == 1 {
            (*tp).tp_version_tag
        } else {
            0
        }
    }
}

/// Whether instances of `tp` have a length (`len()` would not raise `TypeError` for want of
/// one): `PyObject_Size` reads exactly these two slots.
///
/// # Safety
/// `tp` is a live type.
pub(super) unsafe fn has_len(tp: *mut PyTypeObject) -> bool {
    // SAFETY: live type (caller); the slot tables are static or the heap type's own.
    unsafe {
        let seq = (*tp).tp_as_sequence;
        let map = (*tp).tp_as_mapping;
        (!seq.is_null() && (*seq).sq_length.is_some())
            || (!map.is_null() && (*map).mp_length.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pyo3::prelude::*;

    /// A new class `C` with a fresh body.
    fn new_class(py: Python<'_>) -> Bound<'_, PyAny> {
        py.eval(c"type('C', (), {})", None, None).unwrap()
    }

    #[test]
    fn a_type_at_a_freed_types_address_gets_its_own_facts() {
        Python::initialize();
        Python::attach(|py| {
            let class = new_class(py);
            let tp = class.as_ptr().cast::<PyTypeObject>();
            let address = tp as usize;
            // SAFETY: GIL held, live type.
            let tag = unsafe { version_tag(tp) };
            assert_ne!(tag, 0, "a fresh class gets a version tag");
            // Whether the allocator gives a freed type's memory to the next type is up to it, so
            // the freed type's entry is planted: same address, the earlier tag it had.
            C_TYPES.with(|table| {
                *table.slots[slot_of(address, 256)].borrow_mut() = Entry {
                    tp: address,
                    tag: tag - 1,
                    value: Some(Facts {
                        reduce: Reduction::ByName,
                        safe_repr: true,
                    }),
                };
            });
            // SAFETY: GIL held, live type.
            let new = unsafe {
                facts(tp, || Facts {
                    reduce: Reduction::Never,
                    safe_repr: false,
                })
            };
            assert!(
                new.reduce == Reduction::Never && !new.safe_repr,
                "the freed type's facts were reused"
            );
            // SAFETY: as above; now cached under this type's own tag.
            let again = unsafe { facts(tp, || unreachable!("cached")) };
            assert_eq!(again, new);
        });
    }

    #[test]
    fn a_modified_type_is_looked_at_again() {
        Python::initialize();
        Python::attach(|py| {
            let class = new_class(py);
            let tp = class.as_ptr().cast::<PyTypeObject>();
            // SAFETY: GIL held, live type.
            unsafe {
                facts(tp, || Facts {
                    reduce: Reduction::ByName,
                    safe_repr: false,
                })
            };
            class.setattr("__reduce__", py.None()).unwrap();
            // SAFETY: as above.
            let after = unsafe {
                facts(tp, || Facts {
                    reduce: Reduction::Never,
                    safe_repr: false,
                })
            };
            assert_eq!(after.reduce, Reduction::Never);
        });
    }
}
