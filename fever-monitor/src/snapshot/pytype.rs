//! What the snapshot walker needs to know about a Python type without running Python code:
//! whether it is a class written in Python (and so has a `__dict__`/`__slots__` to read instead
//! of a repr to call), its module and qualified name, lookups in its MRO's dicts, and which slot
//! functions are Python-level. The slot functions are found by address, from a throwaway class
//! built once ([`Probe`]).
//!
//! Everything here needs the GIL; returned `&str`s borrow Python strings owned by a live type.

use std::ffi::{c_char, CStr};
use std::sync::OnceLock;

use pyo3::ffi::{self, PyObject, PyTypeObject};

use crate::code_object::utf8;

unsafe extern "C" {
    /// The type of bound methods (`Include/cpython/classobject.h`).
    pub static mut PyMethod_Type: PyTypeObject;
    /// A bound method's function (borrowed).
    pub fn PyMethod_Function(method: *mut PyObject) -> *mut PyObject;
    /// An exception's `args` (new reference), 3.12+.
    pub fn PyException_GetArgs(exc: *mut PyObject) -> *mut PyObject;
}

/// Addresses of `CPython`'s slot functions and interned attribute names, found once.
pub struct Probe {
    /// `subtype_dealloc`: `tp_dealloc` of every class created by a `class` statement.
    subtype_dealloc: usize,
    /// `slot_tp_repr`: a `__repr__` defined in Python somewhere in the MRO.
    slot_repr: usize,
    /// `slot_tp_str`: a `__str__` defined in Python.
    slot_str: usize,
    /// `object_repr`: `<T object at 0x...>`, useless in a snapshot.
    object_repr: usize,
    module: usize,
    dataclass_fields: usize,
    fields: usize,
    enum_name: usize,
    reduce_ex: usize,
    reduce: usize,
    maxlen: usize,
}

// The interned strings are immortal for the process and only touched with the GIL held.
static PROBE: OnceLock<Option<Probe>> = OnceLock::new();

/// The probe, built on first use; `None` if building it failed (then every object that is not
/// a built-in value is recorded as opaque).
///
/// # Safety
/// The GIL is held.
pub unsafe fn probe() -> Option<&'static Probe> {
    // SAFETY: GIL held (caller).
    PROBE.get_or_init(|| unsafe { build_probe() }).as_ref()
}

unsafe fn intern(name: &CStr) -> Option<usize> {
    // SAFETY: GIL held; a new reference we keep for the life of the process.
    let s = unsafe { ffi::PyUnicode_InternFromString(name.as_ptr()) };
    (!s.is_null()).then_some(s as usize)
}

/// Builds `type('_fever_probe', (), {'__repr__': int, '__str__': int, '__module__': 'fever'})`
/// (any non-wrapper object makes `type` install the generic Python-level slot) and reads its
/// slots.
unsafe fn build_probe() -> Option<Probe> {
    // SAFETY: GIL held (caller); every reference created is released or stolen below.
    unsafe {
        let module = intern(c"__module__")?;
        let dataclass_fields = intern(c"__dataclass_fields__")?;
        let fields = intern(c"_fields")?;
        let enum_name = intern(c"_name_")?;
        let reduce_ex = intern(c"__reduce_ex__")?;
        let reduce = intern(c"__reduce__")?;
        let maxlen = intern(c"maxlen")?;
        let ns = ffi::PyDict_New();
        let name = ffi::PyUnicode_FromString(c"_fever_probe".as_ptr());
        let bases = ffi::PyTuple_New(0);
        let args = ffi::PyTuple_New(3);
        if ns.is_null() || name.is_null() || bases.is_null() || args.is_null() {
            for p in [ns, name, bases, args] {
                ffi::Py_XDECREF(p);
            }
            ffi::PyErr_Clear();
            return None;
        }
        let int_type = (&raw mut ffi::PyLong_Type).cast::<PyObject>();
        let fever = ffi::PyUnicode_FromString(c"fever".as_ptr());
        let ok = !fever.is_null()
            && ffi::PyDict_SetItemString(ns, c"__repr__".as_ptr(), int_type) == 0
            && ffi::PyDict_SetItemString(ns, c"__str__".as_ptr(), int_type) == 0
            && ffi::PyDict_SetItemString(ns, c"__module__".as_ptr(), fever) == 0;
        ffi::Py_XDECREF(fever);
        ffi::PyTuple_SET_ITEM(args, 0, name);
        ffi::PyTuple_SET_ITEM(args, 1, bases);
        ffi::PyTuple_SET_ITEM(args, 2, ns);
        let class = if ok {
            ffi::PyObject_Call(
                (&raw mut ffi::PyType_Type).cast(),
                args,
                std::ptr::null_mut(),
            )
        } else {
            std::ptr::null_mut()
        };
        ffi::Py_DECREF(args);
        if class.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        let tp = class.cast::<PyTypeObject>();
        let probe = Probe {
            subtype_dealloc: (*tp).tp_dealloc.map_or(0, |f| f as usize),
            slot_repr: (*tp).tp_repr.map_or(0, |f| f as usize),
            slot_str: (*tp).tp_str.map_or(0, |f| f as usize),
            object_repr: ffi::PyBaseObject_Type.tp_repr.map_or(0, |f| f as usize),
            module,
            dataclass_fields,
            fields,
            enum_name,
            reduce_ex,
            reduce,
            maxlen,
        };
        ffi::Py_DECREF(class);
        Some(probe)
    }
}

/// A type's module and qualified name.
#[derive(Debug, Clone, Copy)]
pub struct TypeName<'t> {
    pub module: &'t str,
    pub qualname: &'t str,
}

impl TypeName<'_> {
    /// `module.qualname`, or just `qualname` for built-ins.
    pub fn full(&self) -> String {
        let mut full = String::new();
        self.full_into(&mut full);
        full
    }

    /// [`TypeName::full`] written into `out` (cleared first).
    pub fn full_into(&self, out: &mut String) {
        out.clear();
        if !(self.module == "builtins" || self.module.is_empty()) {
            out.push_str(self.module);
            out.push('.');
        }
        out.push_str(self.qualname);
    }
}

impl Probe {
    /// The class was created by a `class` statement (or `type(...)`): its instances keep their
    /// state in `__dict__` and `__slots__`, and its dunder methods may be Python code.
    ///
    /// # Safety
    /// `tp` is a live type.
    pub unsafe fn is_python_class(&self, tp: *mut PyTypeObject) -> bool {
        // SAFETY: live type (caller).
        unsafe { (*tp).tp_dealloc.map_or(0, |f| f as usize) == self.subtype_dealloc }
    }

    /// The first base of `tp` that is not a Python class (the type that decides the instances'
    /// C layout): `object`, a built-in, or an extension type.
    ///
    /// # Safety
    /// `tp` is a live type.
    pub unsafe fn solid_base(&self, tp: *mut PyTypeObject) -> *mut PyTypeObject {
        let mut base = tp;
        // SAFETY: live types; a Python class always has a base.
        unsafe {
            while self.is_python_class(base) && !(*base).tp_base.is_null() {
                base = (*base).tp_base;
            }
        }
        base
    }

    /// `name` looked up in the dicts of the Python classes of `tp`'s MRO (no descriptors run,
    /// no metaclass `__getattr__`); borrowed.
    ///
    /// # Safety
    /// GIL held; `tp` is a live type; `name` an interned str.
    unsafe fn lookup(&self, tp: *mut PyTypeObject, name: usize) -> *mut PyObject {
        // SAFETY: GIL held; tp_mro is a tuple of types (or NULL before `PyType_Ready`).
        unsafe {
            let mro = (*tp).tp_mro;
            if mro.is_null() || ffi::PyTuple_Check(mro) == 0 {
                return std::ptr::null_mut();
            }
            for i in 0..ffi::PyTuple_GET_SIZE(mro) {
                let t = ffi::PyTuple_GET_ITEM(mro, i).cast::<PyTypeObject>();
                if !self.is_python_class(t) || (*t).tp_dict.is_null() {
                    continue;
                }
                let found = ffi::PyDict_GetItem((*t).tp_dict, name as *mut PyObject);
                if !found.is_null() {
                    return found;
                }
            }
            std::ptr::null_mut()
        }
    }

    /// The interned name `__reduce_ex__`.
    pub fn reduce_ex_name(&self) -> *mut PyObject {
        self.reduce_ex as *mut PyObject
    }

    /// The interned name `__reduce__`.
    pub fn reduce_name(&self) -> *mut PyObject {
        self.reduce as *mut PyObject
    }

    /// The interned name `maxlen` (a `deque`'s).
    pub fn maxlen_name(&self) -> *mut PyObject {
        self.maxlen as *mut PyObject
    }

    /// `tp` or a base is a dataclass.
    ///
    /// # Safety
    /// GIL held; `tp` is a live type.
    pub unsafe fn is_dataclass(&self, tp: *mut PyTypeObject) -> bool {
        // SAFETY: as above.
        unsafe { !self.lookup(tp, self.dataclass_fields).is_null() }
    }

    /// A named tuple class's `_fields` (borrowed tuple of str), if it has them.
    ///
    /// # Safety
    /// GIL held; `tp` is a live type.
    pub unsafe fn named_tuple_fields(&self, tp: *mut PyTypeObject) -> Option<*mut PyObject> {
        // SAFETY: as above; the tuple's items are checked to be str.
        unsafe {
            let fields = self.lookup(tp, self.fields);
            if fields.is_null() || ffi::PyTuple_CheckExact(fields) == 0 {
                return None;
            }
            (0..ffi::PyTuple_GET_SIZE(fields))
                .all(|i| ffi::PyUnicode_CheckExact(ffi::PyTuple_GET_ITEM(fields, i)) != 0)
                .then_some(fields)
        }
    }

    /// The module and qualified name of `tp`, read from its dict and heap-type fields, or from
    /// `tp_name` (`module.name`) for static types.
    ///
    /// # Safety
    /// GIL held; `tp` is a live type that outlives `'t`.
    pub unsafe fn type_name<'t>(&self, tp: *mut PyTypeObject) -> TypeName<'t> {
        // SAFETY: GIL held; heap types are `PyHeapTypeObject`s.
        unsafe {
            let static_name = || {
                let name = CStr::from_ptr((*tp).tp_name.cast::<c_char>())
                    .to_str()
                    .unwrap_or("?");
                match name.rsplit_once('.') {
                    Some((module, qualname)) => TypeName { module, qualname },
                    None => TypeName {
                        module: "builtins",
                        qualname: name,
                    },
                }
            };
            if ffi::PyType_HasFeature(tp, ffi::Py_TPFLAGS_HEAPTYPE) == 0 {
                return static_name();
            }
            let heap = tp.cast::<ffi::PyHeapTypeObject>();
            let qualname = utf8((*heap).ht_qualname);
            let module = if (*tp).tp_dict.is_null() {
                None
            } else {
                utf8(ffi::PyDict_GetItem(
                    (*tp).tp_dict,
                    self.module as *mut PyObject,
                ))
            };
            match (module, qualname) {
                (Some(module), Some(qualname)) => TypeName { module, qualname },
                _ => static_name(),
            }
        }
    }

    /// A function's `__module__` and `__qualname__`.
    ///
    /// # Safety
    /// GIL held; `func` is a live `PyFunction` that outlives `'t`.
    pub unsafe fn function_name<'t>(func: *mut PyObject) -> TypeName<'t> {
        // SAFETY: PyFunction layout (caller checked the type).
        unsafe {
            let f = func.cast::<ffi::PyFunctionObject>();
            TypeName {
                module: utf8((*f).func_module).unwrap_or(""),
                qualname: utf8((*f).func_qualname).unwrap_or("?"),
            }
        }
    }

    /// `tp` is an `enum.Enum` class (its metaclass derives from `enum.EnumType`).
    ///
    /// # Safety
    /// GIL held; `tp` is a live type.
    pub unsafe fn is_enum(&self, tp: *mut PyTypeObject) -> bool {
        // SAFETY: GIL held; the metaclass MRO is a tuple of types.
        unsafe {
            let meta = ffi::Py_TYPE(tp.cast());
            if meta == &raw mut ffi::PyType_Type {
                return false;
            }
            let mro = (*meta).tp_mro;
            if mro.is_null() {
                return false;
            }
            (0..ffi::PyTuple_GET_SIZE(mro)).any(|i| {
                let t = ffi::PyTuple_GET_ITEM(mro, i).cast::<PyTypeObject>();
                let name = self.type_name(t);
                self.is_python_class(t) && name.module == "enum" && name.qualname == "EnumType"
            })
        }
    }

    /// An enum member's name (`_name_`, read from its `__dict__`, NULL if it has none).
    ///
    /// # Safety
    /// GIL held; `dict` is a live dict or NULL, and outlives `'t`.
    pub unsafe fn enum_member<'t>(&self, dict: *mut PyObject) -> Option<&'t str> {
        // SAFETY: GIL held; a borrowed value of the dict.
        unsafe {
            if dict.is_null() {
                return None;
            }
            utf8(ffi::PyDict_GetItem(dict, self.enum_name as *mut PyObject))
        }
    }

    /// `repr()` of an instance of `tp` may be called: it is implemented in C and is not
    /// `object.__repr__` (whose `<T object at 0x...>` says nothing).
    ///
    /// # Safety
    /// `tp` is a live type.
    pub unsafe fn has_c_repr(&self, tp: *mut PyTypeObject) -> bool {
        // SAFETY: live type (caller).
        let repr = unsafe { (*tp).tp_repr.map_or(0, |f| f as usize) };
        repr != 0 && repr != self.slot_repr && repr != self.object_repr
    }

    /// `str()` of an instance of `tp` is implemented in C.
    ///
    /// # Safety
    /// `tp` is a live type.
    pub unsafe fn has_c_str(&self, tp: *mut PyTypeObject) -> bool {
        // SAFETY: live type (caller).
        let s = unsafe { (*tp).tp_str.map_or(0, |f| f as usize) };
        s != 0 && s != self.slot_str
    }
}
