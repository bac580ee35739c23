//! What the walker needs to record the instances of a Python class, found once per class and
//! version ([`Table`]) rather than once per instance: whether it is an enum, the built-in part
//! its instances carry (from its solid base), whether it is a dataclass or a named tuple (and the
//! `_fields`), and the `__slots__` of its MRO with how to read each. Finding these out walks the
//! MRO's dicts (every entry of every class, for the slots) and the metaclass's MRO; a program
//! passes instances of the same few classes millions of times.
//!
//! Everything borrowed here (the `_fields` tuple, slot names and descriptors) is held by the
//! dicts of the class's MRO, which stay as they are while the class keeps its version tag (a
//! change to any of them gives it a new one). The metaclass is not covered by the tag: the facts
//! remember the one they were found with, and are found again for another.

use std::rc::Rc;

use fever_core::snapshot::ObjectKind;
use pyo3::ffi::{self, PyObject, PyTypeObject};

use super::pytype::Probe;
use super::typefacts::Table;
use super::walker::Builtin;
use crate::code_object::utf8;

/// What is known of one Python class.
pub(super) struct ClassFacts {
    /// The metaclass these facts were found with.
    meta: *mut PyTypeObject,
    /// Instances are enum members (recorded by name).
    pub is_enum: bool,
    /// The built-in part of the instances: of the solid base itself, or of a C subclass of a
    /// built-in (`OrderedDict`).
    pub base: Option<Builtin>,
    /// The solid base is a built-in or `object`: the instances' whole state is recorded.
    pub complete: bool,
    /// `tp` or a base is a dataclass.
    dataclass: bool,
    /// A named tuple's `_fields` (borrowed tuple of str), or NULL.
    named_fields: *mut PyObject,
    /// The `__slots__` of the Python classes of the MRO, in MRO order.
    pub slots: Box<[Slot]>,
}

/// One `__slots__` entry: a member descriptor in the dict of a Python class of the MRO.
pub(super) struct Slot {
    /// Its name (a str, the dict's key; borrowed).
    name: *mut PyObject,
    read: Read,
}

/// How a slot's value is read.
enum Read {
    /// An object pointer at this offset of the instance, NULL when unset: what the member
    /// descriptor's getter reads for a plain `__slots__` entry, without the `AttributeError`
    /// it raises for an unset one.
    At(isize),
    /// Through the member descriptor's getter (borrowed descriptor).
    Getter(*mut PyObject),
}

thread_local! {
    /// A program's own classes and those of the libraries its values reach (a test's `self`
    /// reaches pytest's) are many more than the C types met.
    static CLASSES: Table<Rc<ClassFacts>, 1024> = const { Table::new() };
}

impl ClassFacts {
    /// The facts of Python class `tp`, found on the first sight of it at this version.
    ///
    /// # Safety
    /// GIL held; `tp` is a live Python class.
    pub(super) unsafe fn of(tp: *mut PyTypeObject, probe: &Probe) -> Rc<ClassFacts> {
        // SAFETY: GIL held, live class (caller); finding out runs C code only.
        unsafe {
            let facts = CLASSES.with(|table| table.get(tp, || Rc::new(Self::find(tp, probe))));
            if facts.meta == ffi::Py_TYPE(tp.cast()) {
                facts
            } else {
                // Its `__class__` was assigned: not cached.
                Rc::new(Self::find(tp, probe))
            }
        }
    }

    unsafe fn find(tp: *mut PyTypeObject, probe: &Probe) -> ClassFacts {
        // SAFETY: GIL held, live class (caller).
        unsafe {
            let solid = probe.solid_base(tp);
            let exact_base = Builtin::of(solid);
            let base = exact_base.or_else(|| Builtin::base_of(solid));
            let named_fields = if base == Some(Builtin::Tuple) {
                probe.named_tuple_fields(tp)
            } else {
                None
            };
            let slots = if (*tp).tp_basicsize > (*solid).tp_basicsize {
                slots(tp, probe)
            } else {
                Vec::new()
            };
            ClassFacts {
                meta: ffi::Py_TYPE(tp.cast()),
                is_enum: probe.is_enum(tp),
                base,
                complete: exact_base.is_some() || solid == &raw mut ffi::PyBaseObject_Type,
                dataclass: base.is_none() && probe.is_dataclass(tp),
                named_fields: named_fields.unwrap_or(std::ptr::null_mut()),
                slots: slots.into_boxed_slice(),
            }
        }
    }

    /// The named tuple fields of instance `obj` (a tuple), if its class has as many as it has
    /// items.
    ///
    /// # Safety
    /// GIL held; `obj` is a live instance of the class, a tuple subclass.
    pub(super) unsafe fn named_fields(&self, obj: *mut PyObject) -> Option<*mut PyObject> {
        // SAFETY: `named_fields` is a live tuple (see the module doc), `obj` a tuple.
        unsafe {
            (!self.named_fields.is_null()
                && ffi::PyTuple_GET_SIZE(self.named_fields) == ffi::PyTuple_GET_SIZE(obj))
            .then_some(self.named_fields)
        }
    }

    /// How an instance is recorded, given whether it is a named tuple.
    pub(super) fn kind(&self, named: bool) -> ObjectKind {
        if named {
            ObjectKind::NamedTuple
        } else if self.base.is_some() {
            ObjectKind::Subclass
        } else if self.dataclass {
            ObjectKind::Dataclass
        } else {
            ObjectKind::Plain
        }
    }
}

impl Slot {
    /// The slot's name.
    ///
    /// # Safety
    /// GIL held; the class's facts are current (see the module doc).
    pub(super) unsafe fn name<'a>(&self) -> Option<&'a str> {
        // SAFETY: a live str (caller).
        unsafe { utf8(self.name) }
    }

    /// The slot's value in instance `obj` of class `tp` (new reference), or NULL when it is
    /// unset or cannot be read (error cleared).
    ///
    /// # Safety
    /// GIL held; `obj` is a live instance of `tp`, whose facts hold this slot and are current.
    pub(super) unsafe fn value(&self, obj: *mut PyObject, tp: *mut PyTypeObject) -> *mut PyObject {
        // SAFETY: the offset is one of `tp`'s layout (a base's member, checked when found);
        // member descriptors' getters are C.
        unsafe {
            match self.read {
                Read::At(offset) => {
                    let value = *obj.byte_offset(offset).cast::<*mut PyObject>();
                    ffi::Py_XINCREF(value);
                    value
                }
                Read::Getter(descr) => {
                    let Some(get) = (*ffi::Py_TYPE(descr)).tp_descr_get else {
                        return std::ptr::null_mut();
                    };
                    let value = get(descr, obj, tp.cast());
                    if value.is_null() {
                        ffi::PyErr_Clear();
                    }
                    value
                }
            }
        }
    }
}

/// The member descriptors in the dicts of the Python classes of `tp`'s MRO, in MRO and dict
/// order, with str names.
unsafe fn slots(tp: *mut PyTypeObject, probe: &Probe) -> Vec<Slot> {
    // SAFETY: GIL held; MRO entries are types; dict entries are borrowed from live dicts.
    unsafe {
        let mut found = Vec::new();
        let mro = (*tp).tp_mro;
        if mro.is_null() {
            return found;
        }
        for i in 0..ffi::PyTuple_GET_SIZE(mro) {
            let t = ffi::PyTuple_GET_ITEM(mro, i).cast::<PyTypeObject>();
            if !probe.is_python_class(t) || (*t).tp_dict.is_null() {
                continue;
            }
            let mut pos: ffi::Py_ssize_t = 0;
            let mut key = std::ptr::null_mut();
            let mut descr = std::ptr::null_mut();
            while ffi::PyDict_Next((*t).tp_dict, &raw mut pos, &raw mut key, &raw mut descr) != 0 {
                if ffi::Py_TYPE(descr) != &raw mut ffi::PyMemberDescr_Type || utf8(key).is_none() {
                    continue;
                }
                let member = descr.cast::<ffi::PyMemberDescrObject>();
                let def = (*member).d_member;
                // A plain `__slots__` entry of this class (not a descriptor copied from
                // elsewhere, whose offset is another type's).
                let plain = (*member).d_common.d_type == t
                    && !def.is_null()
                    && (*def).type_code == ffi::Py_T_OBJECT_EX
                    && (*def).flags & !ffi::Py_READONLY == 0;
                found.push(Slot {
                    name: key,
                    read: if plain {
                        Read::At((*def).offset)
                    } else {
                        Read::Getter(descr)
                    },
                });
            }
        }
        found
    }
}
